//! `burst-idle`: does memory go back after a burst? Four threads allocate
//! `size` MiB in total of mixed small objects (16..=512 B), filled; each
//! checks and frees all of its own objects; then, with the threads still
//! alive (as in a thread pool), the process sleeps 200 ms and reads its
//! resident set (`VmRSS`), reported besides the peak.
//!
//! Operations: every object is allocated and freed once, and each thread's
//! object vector is counted as it grows and is freed.

use super::block::{check, filled};
use super::ops::{grew, owns};
use super::procfs::status_kib;
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Tally, Workload};
use std::sync::Barrier;
use std::time::Duration;

pub const WORKLOAD: Workload = Workload {
    name: "burst-idle",
    about: "4 threads allocate size MiB of 16..512 B objects, free all, idle 200 ms (threads alive), read VmRSS; size = MiB",
    threads: |_| THREADS,
    sizes: Sizes {
        smoke: 8,
        quick: 256,
        full: 1024,
    },
    group: super::Group::Main,
    scaling: None,
    run,
};

const THREADS: usize = 4;
const IDLE: Duration = Duration::from_millis(200);

fn burst(t: usize, bytes: usize) -> Tally {
    let mut rng = Rng::new(600 + t as u64);
    let mut objects: Vec<(Box<[u8]>, u64)> = Vec::with_capacity(bytes / 264 + 1);
    let mut ops = 1;
    let mut total = 0usize;
    let mut tag = (t as u64) << 40;
    while total < bytes {
        let size = rng.range(16, 512);
        let cap = objects.capacity();
        objects.push((filled(size, tag).into_boxed_slice(), tag));
        ops += 1 + grew(cap, objects.capacity());
        total += size;
        tag += 1;
    }
    let checksum = objects
        .iter()
        .fold(0u64, |s, (b, tag)| s.wrapping_add(check(b, *tag)));
    ops += objects.len() as u64 + owns(objects.capacity());
    drop(objects);
    Tally { checksum, ops }
}

fn run(p: &Params) -> Outcome {
    let bytes = (p.size as usize) << 20;
    let freed = Barrier::new(THREADS + 1);
    let measured = Barrier::new(THREADS + 1);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (freed, measured) = (&freed, &measured);
                s.spawn(move || {
                    let sum = burst(t, bytes / THREADS);
                    freed.wait();
                    measured.wait();
                    sum
                })
            })
            .collect();
        freed.wait();
        std::thread::sleep(IDLE);
        let rss = status_kib("VmRSS");
        measured.wait();
        let tally = workers
            .into_iter()
            .map(|w| w.join().expect("burst thread panicked"))
            .sum::<Tally>();
        Outcome {
            checksum: tally.checksum,
            ops: tally.ops,
            rss_after_idle_kib: rss,
        }
    })
}

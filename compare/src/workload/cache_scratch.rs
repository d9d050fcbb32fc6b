//! `cache-scratch`: passive false sharing. The main thread allocates one
//! 8-byte object per worker, back to back (so they likely share a cache
//! line), and hands one to each worker. Each worker frees it, then `size`
//! times allocates an 8-byte object, writes to it 1,000 times in a tight
//! loop and frees it. An allocator that gives a worker memory next to
//! another worker's (e.g. by reusing the freed object) makes the cores
//! fight over a cache line.
//!
//! Operations: the handed objects (and the vector that holds them) are
//! allocated and freed once, and each worker's objects too.

use super::rng::Rng;
use super::{Outcome, Params, Sizes, Workload};
use std::hint::black_box;

pub const WORKLOAD: Workload = Workload {
    name: "cache-scratch",
    about: "workers free an object the main thread allocated, then allocate 8 B objects and write each 1,000 times; size = objects per worker",
    threads: super::as_asked,
    sizes: Sizes {
        smoke: 2_000,
        quick: 100_000,
        full: 400_000,
    },
    group: super::Group::Main,
    scaling: None,
    run,
};

const WRITES: usize = 1000;

fn worker(handed: Box<[u8; 8]>, t: usize, objects: u64) -> u64 {
    assert_eq!(*handed, [t as u8; 8], "handed object changed");
    drop(handed);
    let mut rng = Rng::new(40 + t as u64);
    let mut sum = 0u64;
    for _ in 0..objects {
        let mut b = Box::new([rng.next_u64() as u8; 8]);
        for w in 0..WRITES {
            b[w & 7] = b[w & 7].wrapping_add(w as u8);
            black_box(&mut b);
        }
        sum = sum.wrapping_add(b.iter().map(|&x| u64::from(x)).sum::<u64>());
    }
    sum
}

fn run(p: &Params) -> Outcome {
    let handed: Vec<Box<[u8; 8]>> = (0..p.threads).map(|t| Box::new([t as u8; 8])).collect();
    let checksum = std::thread::scope(|s| {
        let workers: Vec<_> = handed
            .into_iter()
            .enumerate()
            .map(|(t, obj)| s.spawn(move || worker(obj, t, p.size)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker panicked"))
            .fold(0u64, u64::wrapping_add)
    });
    let (t, objects) = (p.threads as u64, p.size);
    Outcome {
        checksum,
        ops: 2 * t + 2 + 2 * objects * t,
        ..Outcome::default()
    }
}

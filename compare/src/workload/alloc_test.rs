//! `alloc-test-1t` and `alloc-test-Nt`: sizes from a Pareto-like
//! distribution (8 B..1 KiB, mostly small) through a window of live
//! objects: each thread keeps the last 10,000 objects it allocated and
//! frees the oldest as it allocates a new one, checking it first. One
//! thread, and `threads` threads each doing the same.
//!
//! Operations: every object is allocated and freed once, and the window's
//! deque is allocated and freed once per thread.

use super::block::{check, filled};
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Tally, Workload, on_threads};
use std::collections::VecDeque;

const SIZES: Sizes = Sizes {
    smoke: 20_000,
    quick: 15_000_000,
    full: 60_000_000,
};

pub const ONE_THREAD: Workload = Workload {
    name: "alloc-test-1t",
    about: "Pareto-like 8 B..1 KiB objects through a FIFO window of 10,000 live ones, 1 thread; size = allocations",
    threads: super::one,
    sizes: SIZES,
    group: super::Group::Main,
    scaling: None,
    run: |p| run(p.size, 1),
};

pub const N_THREADS: Workload = Workload {
    name: "alloc-test-Nt",
    about: "as alloc-test-1t on every thread; size = allocations per thread",
    threads: super::as_asked,
    sizes: SIZES,
    group: super::Group::Main,
    scaling: Some(super::as_asked),
    run: |p: &Params| run(p.size, p.threads),
};

const WINDOW: usize = 10_000;

fn run(allocations: u64, threads: usize) -> Outcome {
    on_threads(threads, |t| {
        let mut rng = Rng::new(10 + t as u64);
        let mut window: VecDeque<(Vec<u8>, u64)> = VecDeque::with_capacity(WINDOW);
        let mut sum = 0u64;
        for tag in 0..allocations {
            if window.len() == WINDOW {
                let (old, old_tag) = window.pop_front().expect("window is full");
                sum = sum.wrapping_add(check(&old, old_tag));
            }
            window.push_back((filled(rng.pareto(8, 1024, 1.0), tag), tag));
        }
        let checksum = window
            .iter()
            .fold(sum, |s, (b, tag)| s.wrapping_add(check(b, *tag)));
        Tally {
            checksum,
            ops: 2 * allocations + 2,
        }
    })
    .into()
}

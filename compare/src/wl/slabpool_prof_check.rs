//! Workload binary for the heap profiler's accuracy check (`slabpool-compare
//! --prof-accuracy`, never timed): slabpool with its `prof` feature, run
//! with `SLABPOOL_PROF=1`, under a global allocator that counts the bytes of
//! every live block exactly, in the unit the profiler estimates (a small
//! block's class size, a large or huge block's request). A thread reads
//! that count and the profiler's estimate (`prof::stats().live_bytes`)
//! every 2 ms and keeps the pair at the highest count; at the end it prints
//! them with the live samples and `slabpool::stats()`'s figure at the same
//! moment (`allocated` plus the profiler's sampled blocks, which live
//! outside it):
//!
//! `prof_true=<bytes>`, `prof_est=<bytes>`, `prof_sd=<bytes>` (the
//! estimate's standard deviation, from its samples' weights),
//! `prof_live_samples=<n>`, `prof_stats=<bytes>`, `prof_samples=<n>`
//! (every sample taken).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// Counters, one per thread (modulo), each on a cache line of its own.
#[repr(align(128))]
struct Shard(AtomicI64);

const SHARDS: usize = 64;
static COUNTS: [Shard; SHARDS] = [const { Shard(AtomicI64::new(0)) }; SHARDS];
static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn shard() -> &'static AtomicI64 {
    let i = INDEX.with(|c| {
        if c.get() == usize::MAX {
            c.set(NEXT.fetch_add(1, Relaxed) % SHARDS);
        }
        c.get()
    });
    &COUNTS[i].0
}

/// The bytes the profiler's estimate counts for the live block `p`.
fn bytes_of(p: *mut u8, layout: Layout) -> i64 {
    let usable = slabpool::raw::usable_size(p);
    // Small blocks are their class's size (at most 32 KiB); the others
    // what was asked.
    if usable <= 32 << 10 {
        usable as i64
    } else {
        layout.size() as i64
    }
}

struct Counting;

// SAFETY: forwards every call to `SlabPool` unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { slabpool::SlabPool.alloc(layout) };
        if !p.is_null() {
            shard().fetch_add(bytes_of(p, layout), Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { slabpool::SlabPool.alloc_zeroed(layout) };
        if !p.is_null() {
            shard().fetch_add(bytes_of(p, layout), Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        shard().fetch_sub(bytes_of(p, layout), Relaxed);
        // SAFETY: forwarded contract.
        unsafe { slabpool::SlabPool.dealloc(p, layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = bytes_of(p, layout);
        // SAFETY: forwarded contract.
        let q = unsafe { slabpool::SlabPool.realloc(p, layout, new_size) };
        if !q.is_null() {
            // SAFETY: the caller's layout with the new size is valid.
            let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            shard().fetch_add(bytes_of(q, new) - old, Relaxed);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// What the poller keeps: the figures at the highest count.
#[derive(Default, Clone, Copy)]
struct AtPeak {
    truth: i64,
    est: f64,
    sd: f64,
    live_samples: u64,
    stats: usize,
}

fn main() -> std::process::ExitCode {
    static STOP: AtomicBool = AtomicBool::new(false);
    let poller = std::thread::spawn(|| {
        let mut best = AtPeak::default();
        loop {
            let stop = STOP.load(Relaxed);
            let truth: i64 = COUNTS.iter().map(|s| s.0.load(Relaxed)).sum();
            if truth > best.truth {
                let p = slabpool::prof::stats();
                best = AtPeak {
                    truth,
                    est: p.live_bytes,
                    sd: p.live_bytes_sd,
                    live_samples: p.live_samples,
                    stats: slabpool::stats().allocated + p.pool_bytes,
                };
            }
            if stop {
                return best;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let code = slabpool_compare::child_main();
    STOP.store(true, Relaxed);
    let best = poller.join().unwrap_or_default();
    println!("prof_true={}", best.truth);
    println!("prof_est={:.0}", best.est);
    println!("prof_sd={:.0}", best.sd);
    println!("prof_live_samples={}", best.live_samples);
    println!("prof_stats={}", best.stats);
    println!("prof_samples={}", slabpool::prof::stats().samples);
    code
}

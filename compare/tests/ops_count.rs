//! Every workload's operation count (what it reports as `ops`, counted in
//! its code) against what the allocator actually sees: this test binary's
//! global allocator counts every allocation, reallocation and free while a
//! workload runs at its smoke size on 2 and on 5 threads. The counts may
//! differ only by what the workloads do not count — the standard library's
//! thread start-up and channel buffers, for rust-idioms the B-tree's
//! nodes and reallocations inside `format!`, for sp-btree the B-tree's
//! nodes — and the test bounds that.

use slabpool_compare::workload::{ALL, Params};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

struct Counting;

static CALLS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to System with the same arguments; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds alloc's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CALLS.fetch_add(1, Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How far a workload's count may be from the allocator's: a share of the
/// count, plus a few calls per thread and per thread start for the
/// standard library's bookkeeping.
fn allowed(name: &str, seen: u64, spawns: u64) -> u64 {
    let share = match name {
        "rust-idioms" => 0.10,
        "sp-btree" => 0.15,
        _ => 0.01,
    };
    (seen as f64 * share) as u64 + 16 * spawns + 64
}

#[test]
fn reported_ops_match_the_allocator_calls() {
    let mut worst = Vec::new();
    for w in ALL {
        for threads in [2, 5] {
            let p = Params {
                size: w.sizes.smoke,
                threads,
            };
            let before = CALLS.load(Relaxed);
            let out = (w.run)(&p);
            let seen = CALLS.load(Relaxed) - before;
            let diff = seen.abs_diff(out.ops);
            // larson and mstress start threads over and over.
            let spawns = 64 * threads as u64;
            eprintln!(
                "{:<14} {threads} threads: reported {:>9}, allocator saw {:>9} ({:+.2}%)",
                w.name,
                out.ops,
                seen,
                100.0 * (out.ops as f64 - seen as f64) / seen as f64
            );
            if diff > allowed(w.name, seen, spawns) {
                worst.push(format!("{} at {threads}: {} vs {seen}", w.name, out.ops));
            }
        }
    }
    assert!(worst.is_empty(), "counts too far off: {worst:?}");
}

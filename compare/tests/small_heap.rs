//! The small programs' defining property: at the quick suite's size each
//! one's live heap peaks between 1 and 10 MiB. This test binary's global
//! allocator counts the bytes requested (before any allocator's rounding)
//! and keeps their highest total while each program runs; it prints them
//! (`cargo test -p slabpool-compare --test small_heap -- --nocapture`).

use slabpool_compare::workload::{ALL, Params};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grow(by: usize) {
    let live = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(live, Relaxed);
}

// SAFETY: every method forwards to System with the same arguments; the
// counters have no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds alloc's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Relaxed);
        grow(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn small_programs_peak_between_1_and_10_mib() {
    const MIB: usize = 1 << 20;
    let mut outside = Vec::new();
    for w in ALL.iter().filter(|w| w.small()) {
        let base = LIVE.load(Relaxed);
        PEAK.store(base, Relaxed);
        (w.run)(&Params {
            size: w.sizes.quick,
            threads: 1,
        });
        let peak = PEAK.load(Relaxed) - base;
        eprintln!(
            "{:<14} live heap peak {:6.2} MiB",
            w.name,
            peak as f64 / MIB as f64
        );
        if !(MIB..=10 * MIB).contains(&peak) {
            outside.push(format!("{}: {peak} B", w.name));
        }
    }
    assert!(outside.is_empty(), "outside 1..10 MiB: {outside:?}");
}

//! The allocator never allocates through the global allocator.
//!
//! This binary's global allocator is a wrapper around `SlabPool` that counts
//! how deeply it is entered on each thread. If any slabpool path (a slow
//! path, thread registration, thread exit, a large or huge block) called the
//! global allocator, the wrapper would see itself entered while already
//! inside, and count a violation. A second test makes the wrapper allocate
//! on purpose, to show that the guard does catch a nested entry.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Guarded;

static CALLS: AtomicUsize = AtomicUsize::new(0);
static VIOLATIONS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Set on the thread of the test of the test: the wrapper itself
    /// allocates inside `alloc`, and nested entries count in `CAUGHT`.
    static MISBEHAVE: Cell<bool> = const { Cell::new(false) };
    static CAUGHT: Cell<u32> = const { Cell::new(0) };
}

fn enter() {
    CALLS.fetch_add(1, Ordering::Relaxed);
    DEPTH.with(|d| {
        if d.get() > 0 {
            if MISBEHAVE.with(Cell::get) {
                CAUGHT.with(|c| c.set(c.get() + 1));
            } else {
                VIOLATIONS.fetch_add(1, Ordering::Relaxed);
            }
        }
        d.set(d.get() + 1);
    });
}

fn leave() {
    DEPTH.with(|d| d.set(d.get() - 1));
}

// SAFETY: every call is forwarded to SlabPool with the same arguments.
unsafe impl GlobalAlloc for Guarded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        enter();
        if layout.size() == 12345 && MISBEHAVE.with(Cell::get) {
            // A nested allocation, as a buggy slow path would make.
            drop(std::hint::black_box(Box::new([0u8; 100])));
        }
        // SAFETY: forwarded contract.
        let p = unsafe { slabpool::SlabPool.alloc(layout) };
        leave();
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        enter();
        // SAFETY: forwarded contract.
        unsafe { slabpool::SlabPool.dealloc(p, layout) };
        leave();
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        enter();
        // SAFETY: forwarded contract.
        let p = unsafe { slabpool::SlabPool.alloc_zeroed(layout) };
        leave();
        p
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        enter();
        // SAFETY: forwarded contract.
        let q = unsafe { slabpool::SlabPool.realloc(p, layout, new_size) };
        leave();
        q
    }
}

#[global_allocator]
static A: Guarded = Guarded;

/// Every path: fast and slow small paths (bursts beyond a cache), large and
/// huge blocks, realloc across routes, zeroed blocks, cross-thread frees and
/// thread exit (the cache flush).
#[test]
fn no_allocator_path_reenters_the_global_allocator() {
    let before = CALLS.load(Ordering::Relaxed);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut keep = Vec::new();
                for round in 0..20 {
                    let burst: Vec<Vec<u8>> = (0..5000)
                        .map(|i| vec![t as u8; 1 + (i * 37 + round) % 40_000])
                        .collect();
                    keep.push(burst);
                    let mut v = vec![0u8; 10];
                    for size in [100, 5000, 100_000, 3 << 20, 9 << 20, 50] {
                        v.resize(size, 1);
                    }
                    let z = vec![0u64; 1 << 20];
                    assert!(z.iter().all(|&x| x == 0));
                }
                keep
            })
        })
        .collect();
    // Blocks allocated by the workers are freed here, by another thread.
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    drop(results);
    let calls = CALLS.load(Ordering::Relaxed) - before;
    assert!(
        calls > 400_000,
        "the workload went through the wrapper: {calls} calls"
    );
    assert_eq!(
        VIOLATIONS.load(Ordering::Relaxed),
        0,
        "slabpool re-entered the global allocator"
    );
}

/// The guard is able to fail: a deliberately nested allocation is caught.
#[test]
fn guard_catches_a_nested_allocation() {
    MISBEHAVE.with(|m| m.set(true));
    // SAFETY: valid layout, freed below.
    unsafe {
        let l = Layout::from_size_align(12345, 8).unwrap();
        let p = std::hint::black_box(std::alloc::alloc(l));
        std::alloc::dealloc(p, l);
    }
    MISBEHAVE.with(|m| m.set(false));
    // The nested Box is allocated and freed: two nested entries.
    assert_eq!(CAUGHT.with(Cell::get), 2, "the nested entries were counted");
}

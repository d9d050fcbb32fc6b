//! What the fuzz targets (`fuzz/`) and `tests/fuzz_replay.rs` see of
//! slabpool's internals: built under `cfg(fuzzing)` or the `invariants` feature
//! only, and hidden from the documentation. Not an API.
//!
//! A target drives its own [`Backend`] with several [`ThreadCache`]s (one real
//! thread simulating several) and calls [`Backend::check`] after every
//! operation; the global-allocator target checks the process heap with
//! [`check_global`] between operations, and each worker thread its own
//! cache with [`check_thread_cache`]. Time is the fake clock of
//! [`advance_clock`] once a target has called it.

pub use crate::backend::{Backend, BackendCheck, LARGE_LIMIT, Route, route};
pub use crate::layout::SEGMENT_SIZE;
pub use crate::os::PAGE;
pub use crate::size_class::{CLASSES, NUM_CLASSES, SMALL_LIMIT, SizeClass, class_of};
pub use crate::tcache::{CacheState, ThreadCache};

/// Whether this build carries the injected bug (`--cfg
/// slabpool_inject_bug` in a fuzzing build; see FUZZ.md).
pub const INJECTED_BUG: bool = cfg!(all(fuzzing, slabpool_inject_bug));

/// Freezes slabpool's clock (the first time) and moves it `ms` forward.
pub fn advance_clock(ms: u32) {
    crate::sync::clock::advance(ms, crate::os::now_ms());
}

/// Checks live huge block `p` of `size` bytes at `align` (see
/// `huge::check_block`).
///
/// # Safety
/// `p` must be a live huge block.
pub unsafe fn check_huge_block(p: *mut u8, size: usize, align: usize) {
    // SAFETY: forwarded contract.
    unsafe { crate::huge::check_block(p, size, align) }
}

/// What the C door's `free(p)` would report (see `raw::free_error`): a
/// target frees a block, then checks it is reported as freed.
///
/// # Safety
/// As for `raw::free_error`.
pub unsafe fn free_error(p: *mut u8) -> Option<crate::lookup::Invalid> {
    // SAFETY: forwarded contract.
    unsafe { crate::pointer::free_error(p) }
}

/// Whether `p` is a sampled small block of the heap profiler (in its
/// pool, where `raw::find` does not look).
#[cfg(feature = "prof")]
pub fn is_sampled(p: *const u8) -> bool {
    crate::global::sampled(p)
}

/// Checks the process heap ([`Backend::check`], without the thread caches).
///
/// # Safety
/// No other thread may be inside the allocator meanwhile.
pub unsafe fn check_global() -> BackendCheck {
    crate::global::heap().check(None)
}

/// Checks the calling thread's cache of the process heap; returns its
/// cached and published counts per class (zero for an inactive cache).
pub fn check_thread_cache() -> ([u32; NUM_CLASSES], [u32; NUM_CLASSES]) {
    let counts = crate::global::check_thread_cache();
    (counts.cached, counts.published)
}

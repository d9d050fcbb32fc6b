//! The stand-in for the native port on every other target (anything but
//! Linux on x86_64 and aarch64: see `build.rs`): [`SlabPool`] forwards each
//! call to the system allocator, [`std::alloc::System`], and the public
//! functions exist with zero figures, so a program written for slabpool
//! compiles unchanged there. Its configuration is accepted and unused.
//!
//! The native port's tests compile this module too (without its
//! `GlobalAlloc`, which would clash with the native one) and check it.

#[cfg(not(native))]
use crate::SlabPool;
use crate::stats::{GuardStats, Stats};
#[cfg(not(native))]
use core::alloc::{GlobalAlloc, Layout};
#[cfg(not(native))]
use std::alloc::System;

/// The number of size classes of the native port (the rows of
/// [`Stats::classes`], all zero here).
pub const NUM_CLASSES: usize = 44;

/// Nothing to return to the OS here: the system allocator manages its own.
pub fn collect() {}

/// All zero: the system allocator keeps no figures for slabpool to report.
pub fn stats() -> Stats {
    Stats::default()
}

/// All zero: there is no guard pool here.
pub fn guard_stats() -> GuardStats {
    GuardStats::default()
}

// SAFETY: every call forwards to `System`, whose contract is the trait's;
// a block goes back to the allocator it came from.
#[cfg(not(native))]
unsafe impl GlobalAlloc for SlabPool {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: `p` came from `System` with `layout` (the caller's
        // contract, and every block of this allocator is `System`'s).
        unsafe { System.dealloc(p, layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `dealloc`, and `new_size` is valid for `layout`'s
        // alignment (the caller's contract).
        unsafe { System.realloc(p, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_zero_and_shaped_as_the_native_ones() {
        assert_eq!(NUM_CLASSES, crate::size_class::NUM_CLASSES);
        assert_eq!(stats(), Stats::default());
        assert_eq!(stats().classes().len(), NUM_CLASSES);
        assert_eq!(guard_stats(), GuardStats::default());
        collect();
    }
}

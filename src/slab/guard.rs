//! The hardened build's guard page after each slab (see the top of
//! `slab.rs`): which slabs get one, setting it when a slab is carved and
//! lifting it before the slab's span goes back to its arena.
//!
//! Invariant: a slab's `guarded` flag is set exactly while its last page
//! is inaccessible, and `LIVE_GUARDS` counts those slabs (plus, for an
//! instant, one being set).

use super::{Slab, SlabLock};
use crate::os::{self, PAGE};
use crate::sync::Ordering::Relaxed;
use crate::sync::unmodeled::AtomicUsize;

/// Pages a slab's span has past its blocks: the hardened build's guard
/// between slab runs (see the top of `slab.rs`); 0 otherwise.
#[inline]
pub fn guard_pages() -> usize {
    usize::from(cfg!(feature = "hardened") && os::page_size() == PAGE)
}

/// Slab guard pages set at most at once: each splits its segment's mapping
/// in up to three, and the kernel allows a process 65,530 mappings by
/// default (`vm.max_map_count`), which the heap's own mappings also need.
/// Slabs carved while this many guards are up (a heap of about 1 GiB in
/// small blocks) run without one.
const MAX_LIVE_GUARDS: usize = 16 << 10;

/// Slab guard pages currently set.
static LIVE_GUARDS: AtomicUsize = AtomicUsize::new(0);

impl Slab {
    /// Sets the guard of a freshly initialised slab, if it has a guard
    /// page and the budget allows; otherwise it runs without one.
    pub(super) fn set_guard(&self, lock: &mut SlabLock) {
        if guard_pages() != 0 && LIVE_GUARDS.fetch_add(1, Relaxed) < MAX_LIVE_GUARDS {
            // SAFETY: the guard is the span's last page, past every block,
            // and the span is this fresh slab's alone.
            let fenced = unsafe { os::fence(self.guard(), PAGE, false) };
            self.st(lock).guarded = fenced;
            if !fenced {
                LIVE_GUARDS.fetch_sub(1, Relaxed);
            }
        } else if guard_pages() != 0 {
            // Over the budget: this slab runs without a guard.
            LIVE_GUARDS.fetch_sub(1, Relaxed);
        }
    }

    /// The first byte of the slab's guard page (past its blocks).
    pub(super) fn guard(&self) -> *mut u8 {
        self.0.start().wrapping_add(self.block_pages() * PAGE)
    }

    /// Pages of the span that hold blocks (all but the guard).
    pub(super) fn block_pages(&self) -> usize {
        self.0.pages() - guard_pages()
    }

    /// Makes the guard page accessible again, before the empty slab's span
    /// goes back to its arena. False if the kernel refused: the span must
    /// then not be reused.
    pub fn lift_guard(&self, lock: &mut SlabLock) -> bool {
        if !self.st(lock).guarded {
            return true;
        }
        // SAFETY: the guard page is this slab's, past every block; the
        // slab is empty, so nothing reads or writes the span.
        if !unsafe { os::fence(self.guard(), PAGE, true) } {
            return false;
        }
        self.st(lock).guarded = false;
        LIVE_GUARDS.fetch_sub(1, Relaxed);
        true
    }
}

//! The arena's segment bookkeeping in the headers: the witness that a
//! thread holds the arena lock (`SegmentLinks`) and the purge queue of
//! segments with dirty free pages, ordered by deadline (`SegmentQueue`).
//!
//! Invariant: a segment is on its arena's queue iff its `queued` flag is
//! set; the queue's links and the flag change only under the arena lock
//! (the `&mut` of the queue, which lives in the arena's locked state).

use super::{SegmentHeader, SegmentRef};
use core::ptr::{self, NonNull};

/// The right to the arena-lock fields of segment headers (the segment list
/// links and the purge time): a witness. Each arena keeps its one
/// `SegmentLinks` in its locked state, so only the holder of its lock can
/// lend it, and the methods that read or write those fields take it as an
/// argument (`&mut` to write). The segments must be the arena's own.
pub struct SegmentLinks(());

impl SegmentLinks {
    /// A witness.
    ///
    /// # Safety
    /// At most one exists per arena, kept where only the holder of the
    /// arena's lock reaches it; or the segments it is used on are unlinked
    /// from every arena and private to the caller.
    pub const unsafe fn new() -> Self {
        SegmentLinks(())
    }
}

/// A FIFO of segments through their purge links, ordered by deadline (each
/// segment enters with `now + delay`, and the delay is fixed).
pub struct SegmentQueue {
    head: *mut SegmentHeader,
    tail: *mut SegmentHeader,
}

// SAFETY: the queue is only touched under its arena's lock.
unsafe impl Send for SegmentQueue {}

impl SegmentQueue {
    pub const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
        }
    }

    pub fn front(&self) -> Option<SegmentRef> {
        NonNull::new(self.head).map(SegmentRef)
    }

    /// Appends `seg` (not queued) with deadline `at`.
    pub fn push_back(&mut self, seg: SegmentRef, at: u32) {
        // SAFETY: the arena lock is held; `seg` and the tail are live
        // segments of this arena.
        unsafe {
            let h = seg.hdr();
            debug_assert!(!(*h).queued);
            (*h).purge_at = at;
            (*h).queued = true;
            (*h).purge_next = ptr::null_mut();
            (*h).purge_prev = self.tail;
            if self.tail.is_null() {
                self.head = h;
            } else {
                (*self.tail).purge_next = h;
            }
            self.tail = h;
        }
    }

    /// Removes `seg`, which must be queued here.
    pub fn remove(&mut self, seg: SegmentRef) {
        // SAFETY: as in `push_back`; `seg` is on this queue.
        unsafe {
            let h = seg.hdr();
            debug_assert!((*h).queued);
            let (prev, next) = ((*h).purge_prev, (*h).purge_next);
            if prev.is_null() {
                self.head = next;
            } else {
                (*prev).purge_next = next;
            }
            if next.is_null() {
                self.tail = prev;
            } else {
                (*next).purge_prev = prev;
            }
            (*h).queued = false;
            (*h).purge_next = ptr::null_mut();
            (*h).purge_prev = ptr::null_mut();
        }
    }
}

impl Default for SegmentQueue {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(any(test, fuzzing, feature = "invariants"))]
impl SegmentQueue {
    /// Checks the links and the `queued` flags; returns the length.
    pub fn check(&self) -> usize {
        let (mut prev, mut n) = (ptr::null_mut(), 0);
        let mut cur = self.head;
        while !cur.is_null() {
            // SAFETY: queued segments are live; the arena lock is held.
            unsafe {
                assert!((*cur).queued, "purge queue: segment not marked queued");
                assert_eq!((*cur).purge_prev, prev, "purge queue: prev link");
                prev = cur;
                cur = (*cur).purge_next;
            }
            n += 1;
        }
        assert_eq!(prev, self.tail, "purge queue: tail");
        n
    }
}

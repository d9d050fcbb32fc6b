//! A segment's dirty bitmap (one bit per page: written since it was last
//! decommitted or mapped) and the decommit of free pages, in whole OS
//! pages. The bitmap is what lets a zeroed request skip clearing clean
//! pages and what purge walks to find the pages worth decommitting.
//!
//! Invariant: a page whose bit is clear reads as zero; header pages are
//! never dirty.

use super::{PAGES, SegmentRef};
use crate::os::{self, PAGE, PAGE_SHIFT};
use crate::sync::{AtomicU64, Ordering};

/// The dirty bitmap and the decommit of free pages.
impl SegmentRef {
    #[inline]
    fn dirty_word(self, w: usize) -> &'static AtomicU64 {
        // SAFETY: callers pass `w < DIRTY_WORDS`; the header lives as long
        // as the segment, which outlives every use of this reference.
        unsafe { &(*self.hdr()).dirty[w] }
    }

    /// Calls `f(word, mask)` for each bitmap word meeting pages
    /// `[first, first + n)`, with the mask of those pages in it.
    fn for_each_word(first: usize, n: usize, mut f: impl FnMut(usize, u64)) {
        debug_assert!(first + n <= PAGES);
        let end = first + n;
        let mut page = first;
        while page < end {
            let w = page / 64;
            let lo = page % 64;
            let hi = (end - w * 64).min(64);
            let mask = (u64::MAX >> (64 - (hi - lo))) << lo;
            f(w, mask);
            page = w * 64 + hi;
        }
    }

    /// Marks pages `[first, first + n)` dirty; returns how many were clean.
    pub fn mark_dirty(self, first: usize, n: usize) -> usize {
        let mut newly = 0;
        Self::for_each_word(first, n, |w, mask| {
            let old = self.dirty_word(w).fetch_or(mask, Ordering::Relaxed);
            newly += (mask & !old).count_ones() as usize;
        });
        newly
    }

    /// Whether none of pages `[first, first + n)` may be resident, so they
    /// all read as zero.
    pub fn is_clean(self, first: usize, n: usize) -> bool {
        let mut clean = true;
        Self::for_each_word(first, n, |w, mask| {
            clean &= self.dirty_word(w).load(Ordering::Relaxed) & mask == 0;
        });
        clean
    }

    /// Pages of `[first, first + n)` that may be resident.
    pub fn dirty_pages_in(self, first: usize, n: usize) -> usize {
        let mut dirty = 0;
        Self::for_each_word(first, n, |w, mask| {
            dirty += (self.dirty_word(w).load(Ordering::Relaxed) & mask).count_ones() as usize;
        });
        dirty
    }

    /// Pages of the segment that may be resident.
    pub fn dirty_pages(self) -> usize {
        self.dirty_pages_in(0, PAGES)
    }

    /// The first page in `[from, end)` whose dirty bit equals `dirty`.
    fn find_page(self, from: usize, end: usize, dirty: bool) -> Option<usize> {
        let flip = if dirty { 0 } else { u64::MAX };
        let mut w = from / 64;
        let mut word =
            (self.dirty_word(w).load(Ordering::Relaxed) ^ flip) & (u64::MAX << (from % 64));
        loop {
            if word != 0 {
                let page = w * 64 + word.trailing_zeros() as usize;
                return (page < end).then_some(page);
            }
            w += 1;
            if w * 64 >= end {
                return None;
            }
            word = self.dirty_word(w).load(Ordering::Relaxed) ^ flip;
        }
    }

    /// Calls `f(first_page, pages)` for each maximal run of dirty pages in
    /// `[first, first + n)`.
    pub fn dirty_runs(self, first: usize, n: usize, mut f: impl FnMut(usize, usize)) {
        let end = first + n;
        let mut page = first;
        while page < end {
            let Some(start) = self.find_page(page, end, true) else {
                return;
            };
            let stop = self.find_page(start, end, false).unwrap_or(end);
            f(start, stop - start);
            page = stop;
        }
    }

    /// Decommits the dirty pages of `[first, first + n)`, which must hold
    /// nothing anybody needs, and marks them clean: with the OS page (see
    /// [`decommit_in`](Self::decommit_in)). Returns the dirty pages
    /// decommitted and the number of `madvise` calls.
    pub fn decommit(self, first: usize, n: usize) -> (usize, usize) {
        self.decommit_in(first, n, os::page_size())
    }

    /// [`decommit`](Self::decommit) for an OS page of `os_page` bytes (a
    /// power of two, at least [`PAGE`]): only the whole OS pages inside
    /// `[first, first + n)` are given back, each maximal run of them that
    /// holds a dirty page in one call, and only their bits cleared. A
    /// dirty page at either end, sharing its OS page with a page outside
    /// the range, stays dirty.
    pub fn decommit_in(self, first: usize, n: usize, os_page: usize) -> (usize, usize) {
        let k = os_page / PAGE;
        let (lo, hi) = os::whole_pages(first, first + n, k);
        if lo >= hi {
            return (0, 0);
        }
        let (mut pages, mut calls) = (0, 0);
        let mut give_back = |(a, b): (usize, usize)| {
            // SAFETY: `[a, b)` is whole OS pages (the segment is aligned to
            // far more than an OS page) inside `[first, first + n)`, which
            // lies in this segment's usable pages and, by the caller's
            // contract, holds nothing in use.
            let ok =
                unsafe { os::decommit(self.base().add(a << PAGE_SHIFT), (b - a) << PAGE_SHIFT) };
            calls += 1;
            if ok {
                Self::for_each_word(a, b - a, |w, mask| {
                    let old = self.dirty_word(w).fetch_and(!mask, Ordering::Relaxed);
                    pages += (old & mask).count_ones() as usize;
                });
            }
        };
        // Each dirty run widened to its OS pages, which stay in `[lo, hi)`
        // (both ends are OS page boundaries); runs that then meet are one.
        let mut pending: Option<(usize, usize)> = None;
        self.dirty_runs(lo, hi - lo, |start, len| {
            let (a, b) = (start & !(k - 1), os::align_up(start + len, k));
            match pending {
                Some((from, to)) if a <= to => pending = Some((from, b)),
                Some(run) => {
                    give_back(run);
                    pending = Some((a, b));
                }
                None => pending = Some((a, b)),
            }
        });
        if let Some(run) = pending {
            give_back(run);
        }
        (pages, calls)
    }
}

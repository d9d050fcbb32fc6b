//! Large and huge blocks: allocated, freed and resized through the
//! backend (large ones as page runs of the home shard's arena, huge ones as
//! their own mappings, with the huge cache), with a release-and-retry when
//! the OS refuses memory.

use super::{Backend, LARGE_LIMIT, is_large};
use crate::huge;
use crate::os::PAGE;
use crate::poison;
use crate::segment::{SegmentRef, SpanKind};
use crate::sync::Ordering;
use core::ptr;

impl Backend {
    /// Allocates a request that is not small (large or huge). Null when out
    /// of memory.
    pub fn alloc_big(&self, size: usize, align: usize, zero: bool, home: usize) -> *mut u8 {
        self.tick();
        if !is_large(size, align) {
            return self.retry_after_release(
                || huge::alloc(size, align, zero, &self.huge),
                |p| p.is_null(),
            );
        }
        let pages = size.div_ceil(PAGE);
        let align_pages = (align / PAGE).max(1);
        let arena = &self.shards[home].arena;
        let Some(new) = self.retry_after_release(
            || arena.alloc_span(home, pages, align_pages, SpanKind::Large),
            Option::is_none,
        ) else {
            return ptr::null_mut();
        };
        let span = new.span;
        self.large_bytes.fetch_add(span.bytes(), Ordering::Relaxed);
        let p = span.start();
        poison::unpoison(p, || span.bytes());
        if zero && !new.zero {
            // Only the pages that may hold old data need clearing.
            let seg = span.segment();
            let first = span.first_page();
            seg.dirty_runs(first, pages, |start, len| {
                let from = (start - first) * PAGE;
                let to = ((start - first + len) * PAGE).min(size);
                // SAFETY: [from, to) lies inside the span, which is ours.
                unsafe { p.add(from).write_bytes(0, to - from) };
            });
        }
        p
    }

    /// Frees a block returned by `alloc_big` for this size and alignment.
    ///
    /// # Safety
    /// `p` must be live and have been allocated with a `(size, align)` that
    /// routes the same way as this one.
    #[cfg_attr(feature = "hardened", allow(dead_code))] // `GlobalAlloc`'s only
    pub unsafe fn free_big(&self, p: *mut u8, size: usize, align: usize) {
        if is_large(size, align) {
            // SAFETY: by contract `p` is a live large block.
            unsafe { self.free_large(p) }
        } else {
            // SAFETY: by contract `p` is a live huge block.
            unsafe { self.free_huge(p) }
        }
    }

    /// Frees large block `p`.
    ///
    /// # Safety
    /// `p` must be a live large block of this heap.
    pub unsafe fn free_large(&self, p: *mut u8) {
        self.tick();
        // SAFETY: `p` starts a live large span of a live segment.
        let span = unsafe { SegmentRef::of(p).span_of(p) };
        self.large_bytes.fetch_sub(span.bytes(), Ordering::Relaxed);
        poison::poison(p, || span.bytes());
        self.shards[span.segment().arena()].arena.free_span(span);
    }

    /// Frees huge block `p`.
    ///
    /// # Safety
    /// `p` must be a live huge block of this heap.
    pub unsafe fn free_huge(&self, p: *mut u8) {
        self.tick();
        // SAFETY: by contract `p` is a live huge block.
        unsafe { huge::free(p, &self.huge) };
    }

    /// Resizes a large or huge block to `new_size` without copying when
    /// possible. Returns the block (maybe moved, for huge ones) or null when
    /// the caller must copy. Both the old and new `(size, align)` must route
    /// to the same kind, not small.
    ///
    /// # Safety
    /// `p` must be a live large or huge block allocated with this alignment.
    #[cfg_attr(feature = "hardened", allow(dead_code))] // `GlobalAlloc`'s only
    pub unsafe fn resize_big(&self, p: *mut u8, new_size: usize, align: usize) -> *mut u8 {
        if is_large(new_size, align) {
            // SAFETY: forwarded contract.
            unsafe { self.resize_large(p, new_size) }
        } else {
            // SAFETY: by contract `p` is a live huge block.
            unsafe { huge::resize(p, new_size, &self.huge) }
        }
    }

    /// Resizes huge block `p` (see [`Backend::resize_big`]).
    ///
    /// # Safety
    /// `p` must be a live huge block of this heap.
    pub unsafe fn resize_huge(&self, p: *mut u8, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { huge::resize(p, new_size, &self.huge) }
    }

    /// Resizes large block `p` in place to `new_size` (at most the large
    /// limit): shrinks, or grows into free pages after it. Null when it
    /// cannot grow in place.
    ///
    /// # Safety
    /// `p` must be a live large block of this heap.
    pub unsafe fn resize_large(&self, p: *mut u8, new_size: usize) -> *mut u8 {
        debug_assert!(new_size <= LARGE_LIMIT);
        // SAFETY: `p` starts a live large span.
        let span = unsafe { SegmentRef::of(p).span_of(p) };
        let arena = &self.shards[span.segment().arena()].arena;
        let pages = new_size.div_ceil(PAGE);
        let current = span.pages();
        let (old, new) = (current * PAGE, pages * PAGE);
        if pages < current {
            poison::poison(p.wrapping_add(new), || old - new);
            arena.shrink_span(span, pages);
        } else if pages > current {
            if !arena.grow_span(span, pages) {
                return ptr::null_mut();
            }
            poison::unpoison(p.wrapping_add(old), || new - old);
        }
        self.large_bytes
            .fetch_add(new.wrapping_sub(old), Ordering::Relaxed);
        p
    }
}

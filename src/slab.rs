//! Slabs: a span of pages in a segment serving blocks of one size class.
//!
//! Fresh blocks come from a bump pointer (`bumped` blocks carved so far; a
//! new slab is never initialised up front), freed blocks go on an intrusive
//! free list. A refill takes freed blocks first (their pages are resident
//! already), except a thread's first refill of a class, which takes fresh
//! ones first: blocks another thread freed back here are then not handed
//! to a thread that may write them next to that thread's (false sharing). A slab knows its class (in its span record), its count of live
//! blocks, and its owner: the central pool of its class, whose lock guards
//! every field here. All operations below require that lock.
//!
//! Purging a sparse slab: the pages of a slab that hold only free blocks
//! (or lie past the bump pointer) can be decommitted while the slab stays in
//! use. Free blocks overlapping such a page would lose their links, so they
//! leave the free list and are "parked"; the slab's `purged` mask records
//! the pages. Before a slab with purged pages hands out any block, it
//! recommits them and puts every parked block back on its free list.
//!
//! Invariants: `live + free-list length + parked == bumped <= capacity`;
//! the parked blocks are exactly the blocks below the bump pointer that
//! overlap a purged page, so no live block and no listed free block does.

use crate::arena::Arena;
use crate::block::{self, Block, BlockList};
use crate::os::{PAGE, PAGE_SHIFT};
use crate::segment::{SLAB, SegmentRef, SpanRef, SpanState};
use crate::size_class::ClassInfo;
use core::ptr;

/// A slab, by its span record. Its owner's lock must be held for every
/// method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slab(pub SpanRef);

impl Slab {
    /// The slab holding block `b`.
    ///
    /// # Safety
    /// `b` must be a block handed out by a slab of a live segment.
    #[inline]
    pub unsafe fn of_block(b: *const u8) -> Slab {
        // SAFETY: by contract `b` lies in a slab, whose pages are all in the
        // page map of its segment.
        let span = unsafe { SegmentRef::of(b).span_of(b) };
        debug_assert_eq!(span.kind(), SLAB);
        Slab(span)
    }

    /// Makes the freshly carved `span` an empty slab of `class`.
    pub fn init(span: SpanRef, class: usize, info: &ClassInfo) -> Slab {
        span.set_class(class);
        let slab = Slab(span);
        let st = slab.st();
        st.free = ptr::null_mut();
        st.live = 0;
        st.bumped = 0;
        st.capacity = info.capacity;
        st.parked = 0;
        st.purged = 0;
        st.bucket = 0;
        slab
    }

    #[inline]
    #[allow(clippy::mut_from_ref)]
    fn st(&self) -> &mut SpanState {
        // SAFETY: the owner's lock is held (module contract), so this is the
        // only reference to the state; callers drop it before the next call.
        unsafe { self.0.state() }
    }

    pub fn live(&self) -> u32 {
        self.st().live
    }

    pub fn capacity(&self) -> u32 {
        self.st().capacity
    }

    /// Pages of the slab currently decommitted by [`Slab::purge`].
    pub fn purged_pages(&self) -> usize {
        self.st().purged.count_ones() as usize
    }

    pub fn bucket(&self) -> usize {
        self.st().bucket as usize
    }

    pub fn set_bucket(&self, bucket: usize) {
        self.st().bucket = bucket as u8;
    }

    /// Takes up to `want` free blocks: from the free list, then fresh ones
    /// past the bump pointer (or fresh ones first if `fresh`: see
    /// `Central::refill`). `arena` is the arena of the slab's segment.
    pub fn take(&self, want: u32, size: usize, arena: &Arena, fresh: bool) -> BlockList {
        if self.st().purged != 0 {
            self.unpark(size, arena);
        }
        let mut out = BlockList::new();
        if fresh {
            out.append(self.take_fresh(want, size));
        }
        out.append(self.take_freed(want - out.len()));
        out.append(self.take_fresh(want - out.len(), size));
        out
    }

    /// Up to `want` blocks from the free list.
    fn take_freed(&self, want: u32) -> BlockList {
        let st = self.st();
        let n = want.min(st.bumped - st.live - st.parked);
        if n == 0 {
            return BlockList::new();
        }
        // SAFETY: the free list holds `bumped - live - parked >= n` blocks.
        let (front, rest) = unsafe { block::split_chain(st.free, n) };
        st.free = rest;
        st.live += n;
        front
    }

    /// Up to `want` fresh blocks past the bump pointer.
    fn take_fresh(&self, want: u32, size: usize) -> BlockList {
        let st = self.st();
        let n = want.min(st.capacity - st.bumped);
        if n == 0 {
            return BlockList::new();
        }
        // SAFETY: blocks `bumped .. bumped + n` lie inside the slab and were
        // never handed out.
        let list = unsafe { block::carve(self.block(st.bumped, size), size, n) };
        st.bumped += n;
        st.live += n;
        list
    }

    /// Takes back block `b` of this slab. Returns the new live count.
    ///
    /// # Safety
    /// `b` must be a live block of this slab, given up by the caller.
    pub unsafe fn put(&self, b: *mut Block) -> u32 {
        let st = self.st();
        debug_assert!(st.live > 0);
        // SAFETY: `b` is free and ours; it joins the slab's free list.
        unsafe { block::set_next(b, st.free) };
        st.free = b;
        st.live -= 1;
        st.live
    }

    /// Address of block `i`.
    fn block(&self, i: u32, size: usize) -> *mut u8 {
        self.0.start().wrapping_add(i as usize * size)
    }

    /// Mask of the slab's pages that block `i` overlaps.
    fn pages_of(i: u32, size: usize) -> u64 {
        let first = (i as usize * size) >> PAGE_SHIFT;
        let last = ((i as usize + 1) * size - 1) >> PAGE_SHIFT;
        (u64::MAX >> (63 - (last - first))) << first
    }

    /// Blocks below the bump pointer overlapping page `p` of the slab.
    fn blocks_on(p: usize, size: usize, bumped: u32) -> core::ops::Range<u32> {
        let lo = (p * PAGE / size) as u32;
        let hi = ((p + 1) * PAGE).div_ceil(size).min(bumped as usize) as u32;
        lo..hi.max(lo)
    }

    /// Calls `f(pages)` with the page mask of each run of set bits of `mask`.
    fn for_each_run(mut mask: u64, mut f: impl FnMut(usize, usize)) {
        while mask != 0 {
            let start = mask.trailing_zeros() as usize;
            let len = (!(mask >> start)).trailing_zeros() as usize;
            f(start, len);
            mask &= !((u64::MAX >> (64 - len)) << start);
        }
    }

    /// Decommits the pages of the slab that hold no live block, parking the
    /// free blocks on them. Returns the number of pages newly decommitted.
    pub fn purge(&self, size: usize, arena: &Arena) -> usize {
        let st = self.st();
        let pages = self.0.pages();
        debug_assert!(pages <= 64);
        // Count, per page, the free blocks overlapping it: those on the free
        // list, and the parked ones (every block on a purged page).
        let mut free_on = [0u16; 64];
        let mut count = |i: u32| {
            let mut mask = Self::pages_of(i, size);
            while mask != 0 {
                free_on[mask.trailing_zeros() as usize] += 1;
                mask &= mask - 1;
            }
        };
        let mut b = st.free;
        let mut listed = 0;
        while !b.is_null() {
            listed += 1;
            count(((b as usize - self.0.start() as usize) / size) as u32);
            // SAFETY: `b` is on the slab's free list.
            b = unsafe { block::next_of(b) };
        }
        debug_assert_eq!(listed, st.bumped - st.live - st.parked, "free list length");
        let mut next = 0;
        Self::for_each_run(st.purged, |start, len| {
            for p in start..start + len {
                for i in Self::blocks_on(p, size, st.bumped) {
                    if i >= next {
                        count(i);
                        next = i + 1;
                    }
                }
            }
        });
        let mut idle: u64 = 0;
        for (p, &free) in free_on.iter().enumerate().take(pages) {
            if free as usize == Self::blocks_on(p, size, st.bumped).len() {
                idle |= 1 << p;
            }
        }
        let new = idle & !st.purged;
        if new == 0 {
            return 0;
        }
        // Park the listed free blocks that overlap a newly idle page.
        let mut kept = BlockList::new();
        let mut b = st.free;
        while !b.is_null() {
            // SAFETY: `b` is on the slab's free list; read its link first.
            let next = unsafe { block::next_of(b) };
            let i = ((b as usize - self.0.start() as usize) / size) as u32;
            if Self::pages_of(i, size) & new == 0 {
                // SAFETY: `b` is free and ours.
                unsafe { kept.push(b) };
            } else {
                st.parked += 1;
            }
            b = next;
        }
        let (head, tail, _) = kept.into_raw();
        if !tail.is_null() {
            // SAFETY: `tail` ends the kept chain; the slab's list is
            // null-terminated.
            unsafe { block::set_next(tail, ptr::null_mut()) };
        }
        st.free = head;
        st.purged |= new;
        let seg = self.0.segment();
        let first = self.0.first_page();
        let mut done = 0;
        Self::for_each_run(new, |start, len| {
            done += arena.decommit_slab_pages(seg, first + start, len);
        });
        done
    }

    /// Recommits the purged pages and returns the parked blocks to the free
    /// list.
    fn unpark(&self, size: usize, arena: &Arena) {
        let st = self.st();
        let purged = st.purged;
        let first = self.0.first_page();
        let seg = self.0.segment();
        Self::for_each_run(purged, |start, len| {
            arena.recommit_slab_pages(seg, first + start, len);
        });
        let mut back = 0;
        for i in 0..st.bumped {
            if Self::pages_of(i, size) & purged != 0 {
                // SAFETY: a block below the bump pointer on a purged page is
                // parked (no live block overlaps a purged page): free, ours.
                unsafe { block::set_next(self.block(i, size).cast(), st.free) };
                st.free = self.block(i, size).cast();
                back += 1;
            }
        }
        debug_assert_eq!(back, st.parked);
        st.parked = 0;
        st.purged = 0;
    }

    /// (live, bumped, free-list length, parked), for tests and checks.
    #[cfg(any(test, loom))]
    pub fn accounting(&self) -> (u32, u32, u32, u32) {
        let st = self.st();
        let mut on_free = 0;
        let mut b = st.free;
        while !b.is_null() {
            on_free += 1;
            // SAFETY: `b` is on the slab's free list.
            b = unsafe { block::next_of(b) };
        }
        (st.live, st.bumped, on_free, st.parked)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::size_class::{CLASSES, class_of};

    fn new_slab(arena: &Arena, size: usize) -> (Slab, usize) {
        let class = class_of(size);
        let info = &CLASSES[class];
        let span = arena
            .alloc_span(0, info.slab_pages as usize, info.align_pages as usize, SLAB)
            .expect("span")
            .span;
        (Slab::init(span, class, info), info.size as usize)
    }

    fn drain(mut list: BlockList) -> Vec<*mut Block> {
        let mut v = Vec::new();
        while let Some(b) = list.pop() {
            v.push(b);
        }
        v
    }

    #[test]
    fn bump_then_free_list() {
        let arena = Arena::new();
        let (slab, size) = new_slab(&arena, 100);
        let got = drain(slab.take(10, size, &arena, false));
        assert_eq!(got.len(), 10);
        assert_eq!(got[0].cast::<u8>(), slab.0.start());
        for w in got.windows(2) {
            assert_eq!(w[1] as usize - w[0] as usize, size, "address order");
        }
        assert_eq!(slab.accounting(), (10, 10, 0, 0));
        for &b in &got[..4] {
            // SAFETY: each block is live and of this slab.
            unsafe { slab.put(b) };
        }
        assert_eq!(slab.accounting(), (6, 10, 4, 0));
        // The free list first (LIFO), then the bump pointer.
        let again = drain(slab.take(6, size, &arena, false));
        assert_eq!(again[0], got[3]);
        assert_eq!(slab.accounting(), (12, 12, 0, 0));
        // Fresh blocks first when asked.
        // SAFETY: `again[0]` is live and of this slab.
        unsafe { slab.put(again[0]) };
        let fresh = drain(slab.take(2, size, &arena, true));
        assert_eq!(
            fresh[0].cast::<u8>(),
            slab.0.start().wrapping_add(12 * size)
        );
        assert_eq!(slab.accounting(), (13, 14, 1, 0));
        let cap = slab.capacity();
        let rest = drain(slab.take(cap, size, &arena, true));
        assert_eq!(rest.len() as u32, cap - 13);
        assert_eq!(
            *rest.last().unwrap(),
            again[0],
            "free-list blocks come last"
        );
    }

    #[test]
    fn page_masks() {
        assert_eq!(Slab::pages_of(0, 4096), 1);
        assert_eq!(Slab::pages_of(1, 4096), 2);
        assert_eq!(Slab::pages_of(0, 8192), 3);
        assert_eq!(Slab::pages_of(1, 3072), 0b11, "bytes 3072..6144");
        assert_eq!(Slab::pages_of(63, 64), 1);
        assert_eq!(Slab::pages_of(64, 64), 2);
    }

    #[test]
    fn purge_parks_blocks_on_idle_pages_and_unpark_restores_them() {
        let arena = Arena::new();
        let (slab, size) = new_slab(&arena, 1024); // 4 blocks per page
        let cap = slab.capacity() as usize;
        let blocks = drain(slab.take(cap as u32, size, &arena, false));
        // Keep one block on page 0 and one on page 2; free the rest.
        let keep = [blocks[1], blocks[9]];
        for &b in &blocks {
            if !keep.contains(&b) {
                // SAFETY: a distinct live block of this slab.
                unsafe {
                    b.cast::<u8>().write_bytes(0x77, size);
                    slab.put(b);
                }
            }
        }
        let pages = slab.0.pages();
        let purged = slab.purge(size, &arena);
        assert_eq!(purged, pages - 2, "all pages but the two with a live block");
        let (live, bumped, on_free, parked) = slab.accounting();
        assert_eq!((live, bumped), (2, cap as u32));
        assert_eq!(on_free, 6, "the free blocks sharing a page with a live one");
        assert_eq!(parked as usize, cap - 2 - 6);
        let seg = slab.0.segment();
        assert!(seg.is_clean(slab.0.first_page() + 3, pages - 3));
        // SAFETY: the kept blocks are live and untouched by the purge.
        unsafe { keep[0].cast::<u8>().write_bytes(1, size) };
        // Taking blocks recommits the pages and brings the parked ones back.
        // A second purge after more frees decommits the newly idle pages.
        // SAFETY: `keep[1]` is live and of this slab.
        unsafe { slab.put(keep[1]) };
        assert_eq!(slab.purge(size, &arena), 1, "page 2 is idle now");
        let (_, _, on_free, parked) = slab.accounting();
        assert_eq!((on_free, parked as usize), (3, cap - 1 - 3));
        assert_eq!(slab.purge(size, &arena), 0, "nothing more to purge");
        let all = drain(slab.take(cap as u32, size, &arena, false));
        assert_eq!(all.len(), cap - 1);
        assert_eq!(slab.accounting(), (cap as u32, cap as u32, 0, 0));
        assert!(!seg.is_clean(slab.0.first_page() + 3, 1));
        let mut sorted: Vec<_> = all.iter().chain(&keep[..1]).map(|&b| b as usize).collect();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), cap, "no block lost or duplicated");
    }
}

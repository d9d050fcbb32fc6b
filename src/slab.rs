//! Slabs: a span of pages in a segment serving blocks of one size class.
//!
//! Fresh blocks come from a bump pointer (`bumped` blocks carved so far; a
//! new slab is never initialised up front), freed blocks go on an intrusive
//! free list. A refill takes freed blocks first (their pages are resident
//! already). A carve links at most 4 KiB of blocks (linking makes pages
//! resident) and ends on a cache-line boundary, so the bump pointer stays
//! line-aligned: fresh blocks never share a line with blocks handed out
//! before (passive false sharing). A slab knows its class (in its span
//! record), its count of live blocks, and its owner: the central pool of
//! its class, whose lock guards every field here. All operations below
//! require that lock.
//!
//! Purging a sparse slab: the pages of a slab that hold only free blocks
//! (or lie past the bump pointer) can be decommitted while the slab stays in
//! use. Free blocks overlapping such a page would lose their links, so they
//! leave the free list and are "parked"; the slab's `purged` mask records
//! the pages. Before a slab with purged pages hands out any block, it
//! recommits them and puts every parked block back on its free list. With
//! an OS page larger than slabpool's 4 KiB, a page is purged only when its
//! whole OS page lies in the slab and is idle ([`Slab::whole_os_pages`]):
//! the kernel gives back no less, and a live neighbour must keep its bytes.
//! A slab smaller than an OS page then purges nothing; its pages return
//! once it is empty, with the arena's free runs.
//!
//! Guard pages (the hardened build): a slab's span has one page more than
//! its blocks need, after them, kept inaccessible while the slab lives
//! ([`guard_pages`]), so an overflow off the end of a slab's last block
//! faults instead of reaching the next slab's blocks or the next segment's
//! header. The page is made accessible again before the span goes back to
//! its arena. Not where the OS page is larger than slabpool's (a 4 KiB
//! guard cannot be protected alone there), and a slab whose guard could
//! not be set (the kernel's limit on mappings reached) runs without it.
//!
//! Invariants: `live + free-list length + parked == bumped <= capacity`;
//! the parked blocks are exactly the blocks below the bump pointer that
//! overlap a purged page, so no live block and no listed free block does.

use crate::arena::Arena;
use crate::block::{self, Block, BlockList};
use crate::os::{self, PAGE, PAGE_SHIFT};
use crate::poison;
use crate::segment::{MAX_CARVED, SegmentRef, SpanKind, SpanRef, SpanState};
use crate::size_class::{CLASSES, ClassInfo, NUM_CLASSES};
use core::ptr;

// A slab's carved count and class share one word of its span record.
const _: () = {
    let mut i = 0;
    while i < NUM_CLASSES {
        assert!(CLASSES[i].capacity <= MAX_CARVED);
        i += 1;
    }
};

/// The harness's proof that it can fail (FUZZ.md): with `--cfg
/// slabpool_inject_bug` in a fuzzing build, slabs of this class hand out the
/// last block of each carve again at the start of the next one.
#[cfg(all(fuzzing, slabpool_inject_bug))]
const INJECT_BUG_CLASS: usize = 17;
#[cfg(all(slabpool_inject_bug, not(fuzzing)))]
compile_error!("slabpool_inject_bug is for fuzzing builds (cargo fuzz) only");

/// Bytes of fresh blocks one carve links at most: carving writes a link
/// into every block, which makes its page resident, so a refill does not
/// touch more memory than the program is likely to use soon.
const MAX_CARVE_BYTES: usize = 4096;

/// Cache-line size assumed for false-sharing avoidance.
const CACHE_LINE: usize = 64;

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A slab, by its span record. Its owner's lock must be held for every
/// method: each takes the owner's [`SlabLock`] as the witness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slab(pub SpanRef);

/// The right to the slabs of one central pool: a witness. Each pool keeps
/// its one `SlabLock` in its locked state, so only the holder of its lock
/// can lend it, and every method of [`Slab`] that reads or writes the
/// owner-only state takes it (`&mut` to write); the slabs must be that
/// pool's own.
pub struct SlabLock(());

impl SlabLock {
    /// A witness.
    ///
    /// # Safety
    /// At most one exists per central pool, kept where only the holder of
    /// the pool's lock reaches it; or the slabs it is used on are reached
    /// by no other thread (a new slab not yet published, a quiescent heap
    /// being checked).
    pub const unsafe fn new() -> Self {
        SlabLock(())
    }
}

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
        debug_assert_eq!(span.kind(), SpanKind::Slab);
        Slab(span)
    }

    /// Writes in the pages of this fresh slab's blocks ahead of use
    /// (`os::populate`): for a class the program is filling fast, whose
    /// blocks will all be handed out soon (see `Central::carve`).
    #[cfg(not(loom))]
    pub fn populate(&self) {
        // SAFETY: the slab's pages lie in its segment's read-write mapping;
        // its guard page, if any, lies past them.
        // Best effort: an old kernel leaves the pages to fault in.
        let _ = unsafe { os::populate(self.0.start(), self.block_pages() * PAGE) };
    }

    /// Makes the freshly carved `span` an empty slab of `class`.
    pub fn init(span: SpanRef, class: usize, info: &ClassInfo, lock: &mut SlabLock) -> Slab {
        span.set_class(class, info.reciprocal);
        let slab = Slab(span);
        let st = slab.st(lock);
        st.free = ptr::null_mut();
        st.live = 0;
        span.set_bumped(0);
        st.capacity = info.capacity;
        st.parked = 0;
        st.purged = 0;
        st.bucket = 0;
        st.guarded = false;
        poison::poison(span.start(), || span.bytes());
        slab.set_guard(lock);
        slab
    }

    /// The owner-only state, for as long as the witness is lent.
    #[inline]
    fn st<'a>(&self, _lock: &'a mut SlabLock) -> &'a mut SpanState {
        // SAFETY: `_lock` proves the owner's lock is held, and while the
        // result lives the witness is borrowed, so no other reference to
        // the state is made through this module.
        unsafe { self.0.state() }
    }

    pub fn live(&self, lock: &mut SlabLock) -> u32 {
        self.st(lock).live
    }

    pub fn capacity(&self, lock: &mut SlabLock) -> u32 {
        self.st(lock).capacity
    }

    /// Pages of the slab currently decommitted by [`Slab::purge`].
    pub fn purged_pages(&self, lock: &mut SlabLock) -> usize {
        self.st(lock).purged.count_ones() as usize
    }

    pub fn bucket(&self, lock: &mut SlabLock) -> usize {
        self.st(lock).bucket as usize
    }

    pub fn set_bucket(&self, bucket: usize, lock: &mut SlabLock) {
        self.st(lock).bucket = bucket as u8;
    }

    /// Takes up to `want` free blocks: from the free list, then fresh ones
    /// past the bump pointer. `arena` is the arena of the slab's segment.
    pub fn take(&self, want: u32, size: usize, arena: &Arena, lock: &mut SlabLock) -> BlockList {
        if self.st(lock).purged != 0 {
            self.unpark(size, arena, lock);
        }
        let mut out = self.take_freed(want, lock);
        out.append(self.take_fresh(want - out.len(), size, lock));
        out
    }

    /// Blocks on the free list (handed out once, freed since).
    pub fn freed_left(&self, lock: &mut SlabLock) -> u32 {
        let st = self.st(lock);
        self.0.bumped() - st.live - st.parked
    }

    /// Blocks never handed out, past the bump pointer (tests of the carve
    /// order, which the hardened build randomises).
    #[cfg(all(test, not(feature = "hardened")))]
    pub fn fresh_left(&self, lock: &mut SlabLock) -> u32 {
        let st = self.st(lock);
        st.capacity - self.0.bumped()
    }

    /// Up to `want` blocks from the free list.
    fn take_freed(&self, want: u32, lock: &mut SlabLock) -> BlockList {
        let st = self.st(lock);
        let n = want.min(self.0.bumped() - st.live - st.parked);
        if n == 0 {
            return BlockList::new();
        }
        // Every block taken must be one this slab carved, at a block start:
        // a link overwritten with another valid address is caught here.
        // A block start is a multiple of the size: with `c = ceil(2^64 /
        // size)` the low 64 bits of `offset * c` are below `c` exactly then
        // (one multiplication a block, as in `lookup::block_index`).
        let start = self.0.start() as usize;
        let size = CLASSES[self.0.class()].size as u64;
        let reciprocal = self.0.reciprocal();
        let carved = u64::from(self.0.bumped()) * size;
        let belongs = |b: *mut Block| {
            let offset = (b as usize).wrapping_sub(start) as u64;
            offset < carved && offset.wrapping_mul(reciprocal) < reciprocal
        };
        // SAFETY: the free list holds `bumped - live - parked >= n` blocks.
        let (front, rest) = unsafe { block::split_chain(st.free, n, belongs) };
        st.free = rest;
        st.live += n;
        front
    }

    /// Up to `want` fresh blocks past the bump pointer, at most
    /// `MAX_CARVE_BYTES` of them. The carve ends on a cache-line boundary
    /// when `want` allows it, so the bump pointer stays line-aligned and two
    /// carves never share a cache line: blocks fresh to one thread are never
    /// next to another thread's.
    fn take_fresh(&self, want: u32, size: usize, lock: &mut SlabLock) -> BlockList {
        let st = self.st(lock);
        let bumped = self.0.bumped();
        let mut n = want
            .min(st.capacity - bumped)
            .min((MAX_CARVE_BYTES / size).max(1) as u32);
        if n == 0 {
            return BlockList::new();
        }
        if bumped + n < st.capacity {
            // Blocks per whole number of lines: the carve's end is on a line
            // boundary when it is a multiple of this (the slab starts on a
            // page).
            let unit = (CACHE_LINE / gcd(size, CACHE_LINE)) as u32;
            let end = (bumped + n) / unit * unit;
            if end > bumped {
                n = end - bumped;
            }
        }
        let start = bumped;
        #[cfg(all(fuzzing, slabpool_inject_bug))]
        let start = if self.0.class() == INJECT_BUG_CLASS && start > 0 {
            start - 1
        } else {
            start
        };
        // SAFETY: blocks `bumped .. bumped + n` lie inside the slab and were
        // never handed out.
        let list = unsafe { block::carve(self.block(start, size), size, n) };
        self.0.set_bumped(bumped + n);
        st.live += n;
        list
    }

    /// Takes back block `b` of this slab. Returns the new live count.
    ///
    /// # Safety
    /// `b` must be a live block of this slab, given up by the caller.
    pub unsafe fn put(&self, b: *mut Block, lock: &mut SlabLock) -> u32 {
        let st = self.st(lock);
        debug_assert!(st.live > 0);
        // SAFETY: `b` is free and ours; it joins the slab's free list.
        unsafe { block::set_next(b, st.free) };
        poison::poison(b.cast(), || CLASSES[self.0.class()].size as usize);
        st.free = b;
        st.live -= 1;
        st.live
    }

    /// Whether `b` is on the slab's free list (a walk: double-free
    /// confirmation only).
    pub fn lists(&self, b: *const u8, lock: &mut SlabLock) -> bool {
        let st = self.st(lock);
        block::contains(st.free, self.0.bumped() - st.live - st.parked, b)
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

    /// The pages of `mask` (bit `p`: page `first + p` of the segment, for
    /// the `pages` pages of a slab) whose whole OS page of `os_page` bytes
    /// lies in the slab with every one of its pages in `mask`: what may be
    /// decommitted of the idle pages. `mask` itself for 4 KiB OS pages.
    pub fn whole_os_pages(mask: u64, first: usize, pages: usize, os_page: usize) -> u64 {
        let k = os_page / PAGE;
        if k == 1 {
            return mask;
        }
        let mut whole = 0;
        // OS pages are aligned in the segment (which is aligned to more).
        let mut at = os::align_up(first, k);
        while at + k <= first + pages {
            // `k <= pages <= 64` here, so the shifts are in range.
            let bits = (u64::MAX >> (64 - k)) << (at - first);
            if mask & bits == bits {
                whole |= bits;
            }
            at += k;
        }
        whole
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
    pub fn purge(&self, size: usize, arena: &Arena, lock: &mut SlabLock) -> usize {
        let st = self.st(lock);
        let pages = self.block_pages();
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
        debug_assert_eq!(
            listed,
            self.0.bumped() - st.live - st.parked,
            "free list length"
        );
        let mut next = 0;
        let bumped = self.0.bumped();
        Self::for_each_run(st.purged, |start, len| {
            for p in start..start + len {
                for i in Self::blocks_on(p, size, bumped) {
                    if i >= next {
                        count(i);
                        next = i + 1;
                    }
                }
            }
        });
        let mut idle: u64 = 0;
        for (p, &free) in free_on.iter().enumerate().take(pages) {
            if free as usize == Self::blocks_on(p, size, bumped).len() {
                idle |= 1 << p;
            }
        }
        let first = self.0.first_page();
        let new = Self::whole_os_pages(idle, first, pages, os::page_size()) & !st.purged;
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
        // The slab's free list is null-terminated, as a chain is.
        (st.free, _) = kept.into_chain().into_raw();
        st.purged |= new;
        let seg = self.0.segment();
        let mut done = 0;
        Self::for_each_run(new, |start, len| {
            done += arena.decommit_slab_pages(seg, first + start, len);
        });
        done
    }

    /// Recommits the purged pages and returns the parked blocks to the free
    /// list.
    fn unpark(&self, size: usize, arena: &Arena, lock: &mut SlabLock) {
        let st = self.st(lock);
        let purged = st.purged;
        let first = self.0.first_page();
        let seg = self.0.segment();
        Self::for_each_run(purged, |start, len| {
            arena.recommit_slab_pages(seg, first + start, len);
        });
        let mut back = 0;
        for i in 0..self.0.bumped() {
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
    pub fn accounting(&self, lock: &mut SlabLock) -> (u32, u32, u32, u32) {
        let st = self.st(lock);
        let mut on_free = 0;
        let mut b = st.free;
        while !b.is_null() {
            on_free += 1;
            // SAFETY: `b` is on the slab's free list.
            b = unsafe { block::next_of(b) };
        }
        (st.live, self.0.bumped(), on_free, st.parked)
    }
}

#[cfg(any(test, fuzzing, feature = "invariants"))]
mod check;
mod guard;
pub use guard::guard_pages;

#[cfg(all(test, not(loom)))]
mod tests;

//! The central pool of one size class, shared by all threads.
//!
//! It holds two kinds of free blocks, behind one short lock:
//! - a transfer stack of whole batches (block lists) flushed by thread
//!   caches, handed out again in O(1) to the next thread that refills: this
//!   is how memory freed by one thread is reused by another without touching
//!   slab metadata;
//! - the slabs of the class that still have blocks to give (on their own
//!   free lists or past their bump pointer), in lists by occupancy. A refill
//!   takes from the fullest slab first so that sparse slabs drain and can be
//!   released; a slab whose blocks have all come back returns to its arena,
//!   beyond one kept empty slab.
//!
//! When the transfer stack is full, a flushed batch goes back block by block
//! to the slabs it came from (found by masking each address). A class idle
//! for a maintenance period ([`Central::trim`]) returns its transfer stack
//! to the slabs and its empty slabs to their arenas.
//!
//! Invariants (under the lock): a slab is listed iff `live < capacity`, in
//! `partial[bucket(live, capacity)]`, bucket 0 holding exactly the empty
//! slabs; `live_blocks` is the sum of `live` over the class's slabs, which
//! counts blocks with the program, in thread caches and in the transfer
//! stack; `transfer_blocks` counts the blocks in the transfer stack.

use crate::arena::Arena;
use crate::block::BlockList;
use crate::segment::SpanList;
use crate::segment::{SLAB, USABLE_PAGES};
use crate::size_class::{CLASSES, ClassInfo};
use crate::slab::Slab;
use crate::sync::{AtomicUsize, CachePadded, Lock, Ordering::Relaxed, const_fn};

/// Capacity of the transfer stack (batches), before the byte bound below.
#[cfg(not(loom))]
const TRANSFER_SLOTS: usize = 16;
/// Loom models fill the stack after two batches.
#[cfg(loom)]
const TRANSFER_SLOTS: usize = 2;
/// Bytes the transfer stack of a class may hold.
const TRANSFER_BYTES: usize = 512 * 1024;
/// Slab lists: bucket 0 for empty slabs, then occupancy buckets.
const BUCKETS: usize = 8;
/// Empty slabs a class keeps instead of returning them to their arena.
const KEEP_EMPTY_SLABS: usize = 1;

/// The central pool of one class.
pub struct Central {
    state: Lock<CentralState>,
    /// Blocks of this class in thread caches, as the caches last published
    /// on their slow paths.
    cached: AtomicUsize,
}

struct CentralState {
    transfer: [BlockList; TRANSFER_SLOTS],
    transfer_len: usize,
    transfer_blocks: usize,
    partial: [SpanList; BUCKETS],
    /// Bit `b` set iff `partial[b]` is non-empty.
    nonempty: u32,
    slabs: usize,
    live_blocks: usize,
    /// Pages of the class's slabs decommitted by a slab purge.
    purged_pages: usize,
    /// A refill or flush happened since the last trim.
    active: bool,
    /// The slab last carved for the class, until released: where a
    /// thread's first refill takes fresh blocks.
    open: Option<Slab>,
}

/// Counters of one class, for statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CentralCounts {
    pub slabs: usize,
    pub empty_slabs: usize,
    /// Blocks out of their slabs: with the program, cached or in transfer.
    pub live_blocks: usize,
    pub transfer_blocks: usize,
    /// Blocks in thread caches, as last published.
    pub cached_blocks: usize,
    /// Slab pages decommitted (not resident) while their slab lives on.
    pub purged_pages: usize,
}

impl Central {
    const_fn! {
        pub fn new() -> Self {
            Self {
                state: Lock::new(CentralState {
                    transfer: [const { BlockList::new() }; TRANSFER_SLOTS],
                    transfer_len: 0,
                    transfer_blocks: 0,
                    partial: [const { SpanList::new() }; BUCKETS],
                    nonempty: 0,
                    slabs: 0,
                    live_blocks: 0,
                    purged_pages: 0,
                    active: false,
                    open: None,
                }),
                cached: AtomicUsize::new(0),
            }
        }
    }

    /// Up to `want` (>= 1) free blocks of `class`; empty only when out of
    /// memory. New slabs come from `arenas[home]`. Blocks other threads
    /// freed come first (the transfer stack, then slab free lists: their
    /// pages are resident already).
    pub fn refill(
        &self,
        class: usize,
        want: u32,
        arenas: &[CachePadded<Arena>],
        home: usize,
    ) -> BlockList {
        self.refill_ordered(class, want, arenas, home, false)
    }

    /// As [`Central::refill`], but if `fresh`, blocks never handed out come
    /// before slab free lists (from the class's open slab, the one carved
    /// last, while it has some): for a thread's first refill of a class, so
    /// that the first blocks it writes share no cache line with blocks
    /// another thread holds (passive false sharing). The transfer stack
    /// still comes first (whole batches, mostly what exited threads gave
    /// back: taking them keeps a churn of short threads from touching new
    /// pages), and no slab is carved for freshness alone.
    pub fn refill_ordered(
        &self,
        class: usize,
        want: u32,
        arenas: &[CachePadded<Arena>],
        home: usize,
        fresh: bool,
    ) -> BlockList {
        let info = &CLASSES[class];
        let got = self.state.with(|st| {
            st.active = true;
            if let Some(list) = st.pop_transfer(want) {
                return list;
            }
            if fresh {
                let got = st.take_open(info, want, arenas);
                if !got.is_empty() {
                    return got;
                }
            }
            st.take_from_slabs(info, want, arenas)
        });
        if !got.is_empty() {
            return got;
        }
        // No block to give: carve a new slab outside the lock, then retry
        // (another thread may have refilled the class meanwhile).
        let arena = &arenas[home];
        let pages = info.slab_pages as usize;
        let Some(new) = arena.alloc_span(home, pages, info.align_pages as usize, SLAB) else {
            return BlockList::new();
        };
        let slab = Slab::init(new.span, class, info);
        self.state.with(|st| {
            st.adopt(slab);
            st.open = Some(slab);
            if fresh {
                st.take_open(info, want, arenas)
            } else {
                st.take_from_slabs(info, want, arenas)
            }
        })
    }

    /// Takes back `list`, a batch of blocks of `class` (any length).
    pub fn flush(&self, class: usize, list: BlockList, arenas: &[CachePadded<Arena>]) {
        if list.is_empty() {
            return;
        }
        let info = &CLASSES[class];
        self.state.with(|st| {
            st.active = true;
            if st.transfer_len < transfer_cap(info) {
                st.transfer_blocks += list.len() as usize;
                st.transfer[st.transfer_len] = list;
                st.transfer_len += 1;
            } else {
                st.return_blocks(info, list, arenas);
            }
        });
    }

    /// Returns one block straight to its slab (no thread cache).
    pub fn free_block(&self, class: usize, p: *mut u8, arenas: &[CachePadded<Arena>]) {
        let mut list = BlockList::new();
        // SAFETY: the caller gives up `p`, a live block of `class`.
        unsafe { list.push(p.cast()) };
        self.state
            .with(|st| st.return_blocks(&CLASSES[class], list, arenas));
    }

    /// Maintenance: if the class saw no refill or flush since the last
    /// call, returns its transfer stack to the slabs and its empty slabs to
    /// their arenas.
    pub fn trim(&self, class: usize, arenas: &[CachePadded<Arena>]) {
        let info = &CLASSES[class];
        self.state.with(|st| {
            if core::mem::replace(&mut st.active, false) {
                return;
            }
            st.drain_transfer(info, arenas);
            st.release_empty_slabs(arenas);
        });
    }

    /// `collect`: returns the transfer stack to the slabs, every empty slab
    /// to its arena, and decommits the pages of partial slabs that hold no
    /// live block. Returns the slab pages decommitted.
    pub fn collect(&self, class: usize, arenas: &[CachePadded<Arena>]) -> usize {
        let info = &CLASSES[class];
        self.state.with(|st| {
            st.drain_transfer(info, arenas);
            st.release_empty_slabs(arenas);
            st.purge_slabs(info, arenas)
        })
    }

    /// Adds `delta` (two's complement) to the published count of blocks in
    /// thread caches.
    pub fn publish_cached(&self, delta: isize) {
        self.cached.fetch_add(delta as usize, Relaxed);
    }

    /// Takes this pool's lock and keeps it (around `fork`).
    ///
    /// # Safety
    /// Must be paired with [`Self::fork_unlock`] on the same thread or in
    /// the forked child.
    #[cfg(not(loom))]
    pub unsafe fn fork_lock(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.state.force_lock() }
    }

    /// Releases the lock taken by [`Self::fork_lock`].
    ///
    /// # Safety
    /// The lock must be held through `fork_lock`.
    #[cfg(not(loom))]
    pub unsafe fn fork_unlock(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.state.force_unlock() }
    }

    pub fn counts(&self) -> CentralCounts {
        let mut counts = self.state.with(|st| CentralCounts {
            slabs: st.slabs,
            empty_slabs: st.partial[0].len(),
            live_blocks: st.live_blocks,
            transfer_blocks: st.transfer_blocks,
            cached_blocks: 0,
            purged_pages: st.purged_pages,
        });
        counts.cached_blocks = self.cached.load(Relaxed);
        counts
    }
}

/// What `Central::check` counted, for the heap to compare with the slabs.
#[cfg(any(test, fuzzing, feature = "check"))]
#[derive(Clone, Copy, Debug, Default)]
pub struct CentralCheck {
    pub slabs: usize,
    pub live_blocks: usize,
    pub transfer_blocks: usize,
    pub purged_pages: usize,
    /// Slabs on the partial lists (those with a free block).
    pub listed: usize,
    pub cached_blocks: usize,
}

/// Consistency checks (tests, fuzzing).
#[cfg(any(test, fuzzing, feature = "check"))]
impl Central {
    /// Checks the pool of `class`: the transfer stack (its count, every
    /// batch a well-formed list of blocks of the class), the partial lists
    /// (each slab in the bucket of its occupancy, the non-empty bits). The
    /// slabs themselves are checked by the heap, which finds them all.
    pub fn check(&self, class: usize) -> CentralCheck {
        let info = &CLASSES[class];
        let mut c = self.state.with(|st| {
            assert!(
                st.transfer_len <= transfer_cap(info),
                "class {class}: transfer stack overfull"
            );
            let mut transfer = 0;
            for (i, list) in st.transfer.iter().enumerate() {
                assert_eq!(
                    i < st.transfer_len,
                    !list.is_empty(),
                    "class {class}: transfer slot {i}"
                );
                list.check("transfer batch", |b| {
                    check_block(class, b.cast(), "transfer batch")
                });
                transfer += list.len() as usize;
            }
            assert_eq!(
                transfer, st.transfer_blocks,
                "class {class}: transfer count"
            );
            let mut listed = 0;
            for (b, list) in st.partial.iter().enumerate() {
                assert_eq!(
                    st.nonempty & (1 << b) != 0,
                    !list.is_empty(),
                    "class {class}: bucket bit {b}"
                );
                list.check("partial slabs", |span| {
                    let slab = Slab(span);
                    assert_eq!(span.class(), class, "class {class}: foreign slab listed");
                    assert!(
                        slab.live() < slab.capacity(),
                        "class {class}: full slab listed"
                    );
                    assert_eq!(slab.bucket(), b, "class {class}: slab bucket field");
                    assert_eq!(
                        bucket(slab.live(), slab.capacity()),
                        b,
                        "class {class}: slab in the wrong bucket"
                    );
                    listed += 1;
                });
            }
            CentralCheck {
                slabs: st.slabs,
                live_blocks: st.live_blocks,
                transfer_blocks: transfer,
                purged_pages: st.purged_pages,
                listed,
                cached_blocks: 0,
            }
        });
        c.cached_blocks = self.cached.load(Relaxed);
        c
    }

    /// Panics unless `b` is a carved block of a slab of `class` (under the
    /// lock).
    pub fn check_block(&self, class: usize, b: *const u8, what: &str) {
        self.state.with(|_| check_block(class, b, what));
    }
}

/// Panics unless `b` lies in a slab of `class` at a block boundary below
/// its bump pointer (the caller holds the class's lock).
#[cfg(any(test, fuzzing, feature = "check"))]
fn check_block(class: usize, b: *const u8, what: &str) {
    #[cfg(not(loom))]
    assert_eq!(
        crate::registry::kind_of(b),
        crate::registry::SEGMENT,
        "{what}: {b:p} is not in a segment"
    );
    // SAFETY: `b` lies in a segment if it came from a slab; a segment
    // header is readable whatever the page map says, which is checked next.
    let span = unsafe { crate::segment::SegmentRef::of(b).span_of(b) };
    assert_eq!(span.kind(), SLAB, "{what}: {b:p} is not in a slab");
    assert_eq!(
        span.class(),
        class,
        "{what}: {b:p} is in a slab of class {}",
        span.class()
    );
    Slab(span).check_block(b, what);
}

/// Batches the transfer stack of a class may hold.
fn transfer_cap(info: &ClassInfo) -> usize {
    let batch_bytes = info.batch as usize * info.size as usize;
    (TRANSFER_BYTES / batch_bytes).clamp(2, TRANSFER_SLOTS)
}

/// List of a slab with `live` of `capacity` blocks out (`live < capacity`):
/// 0 when empty, then by occupancy.
fn bucket(live: u32, capacity: u32) -> usize {
    if live == 0 {
        0
    } else {
        1 + (live as usize * (BUCKETS - 1)) / capacity as usize
    }
}

/// The arena that owns `slab`'s segment.
fn arena_of(slab: Slab, arenas: &[CachePadded<Arena>]) -> &Arena {
    &arenas[slab.0.segment().arena()]
}

impl CentralState {
    fn pop_transfer(&mut self, want: u32) -> Option<BlockList> {
        if self.transfer_len == 0 {
            return None;
        }
        let top = &mut self.transfer[self.transfer_len - 1];
        let list = top.take_front(want);
        if top.is_empty() {
            self.transfer_len -= 1;
        }
        self.transfer_blocks -= list.len() as usize;
        Some(list)
    }

    fn list(&mut self, slab: Slab) {
        let b = bucket(slab.live(), slab.capacity());
        slab.set_bucket(b);
        self.partial[b].push(slab.0);
        self.nonempty |= 1 << b;
    }

    fn unlist(&mut self, slab: Slab) {
        let b = slab.bucket();
        self.partial[b].remove(slab.0);
        if self.partial[b].is_empty() {
            self.nonempty &= !(1 << b);
        }
    }

    fn adopt(&mut self, slab: Slab) {
        self.slabs += 1;
        self.list(slab);
    }

    /// Up to `want` blocks from the fullest listed slabs; fewer when a slab
    /// stops a carve early (see `Slab::take`).
    fn take_from_slabs(
        &mut self,
        info: &ClassInfo,
        want: u32,
        arenas: &[CachePadded<Arena>],
    ) -> BlockList {
        let mut out = BlockList::new();
        while out.len() < want && self.nonempty != 0 {
            let fullest = 31 - self.nonempty.leading_zeros() as usize;
            let Some(span) = self.partial[fullest].first() else {
                break;
            };
            let slab = Slab(span);
            out.append(self.take_from(slab, info, want - out.len(), arenas, false));
            if slab.live() < slab.capacity() {
                // The slab stopped its carve early (at 4 KiB or a cache
                // line): a second carve for the rest would touch more pages
                // or leave the bump pointer inside a line. The refill is
                // short instead.
                break;
            }
        }
        out
    }

    /// Up to `want` fresh blocks of the open slab (none if it has none).
    fn take_open(
        &mut self,
        info: &ClassInfo,
        want: u32,
        arenas: &[CachePadded<Arena>],
    ) -> BlockList {
        match self.open {
            // A slab with fresh blocks has `live < capacity`: it is listed.
            Some(slab) if slab.fresh_left() > 0 => self.take_from(slab, info, want, arenas, true),
            _ => BlockList::new(),
        }
    }

    /// Up to `want` blocks of `slab`, a listed slab (fresh ones only if
    /// `fresh_only`); relists it by its new occupancy.
    fn take_from(
        &mut self,
        slab: Slab,
        info: &ClassInfo,
        want: u32,
        arenas: &[CachePadded<Arena>],
        fresh_only: bool,
    ) -> BlockList {
        self.unlist(slab);
        self.purged_pages -= slab.purged_pages();
        let size = info.size as usize;
        let got = slab.take(want, size, arena_of(slab, arenas), fresh_only);
        self.purged_pages += slab.purged_pages();
        self.live_blocks += got.len() as usize;
        if slab.live() < slab.capacity() {
            self.list(slab);
        }
        got
    }

    /// Puts every block of `list` back on its slab.
    fn return_blocks(
        &mut self,
        info: &ClassInfo,
        mut list: BlockList,
        arenas: &[CachePadded<Arena>],
    ) {
        // Consecutive blocks of one slab (common: a batch freed in the order
        // it was allocated) go on its free list together; the slab moves
        // between occupancy lists once per run, not once per block.
        let mut run: Option<(Slab, bool)> = None;
        while let Some(b) = list.pop() {
            // SAFETY: `b` is a block of this class, so it lies in a slab of
            // a live segment.
            let slab = unsafe { Slab::of_block(b.cast()) };
            debug_assert_eq!(slab.capacity(), info.capacity);
            match run {
                Some((current, _)) if current == slab => {}
                _ => {
                    if let Some((done, was_listed)) = run {
                        self.settle(done, was_listed, arenas);
                    }
                    run = Some((slab, slab.live() < slab.capacity()));
                }
            }
            // SAFETY: `b` is a live block of `slab` that the caller gave up.
            unsafe { slab.put(b) };
            self.live_blocks -= 1;
        }
        if let Some((done, was_listed)) = run {
            self.settle(done, was_listed, arenas);
        }
    }

    /// Puts `slab`, which just took blocks back (it was on a list iff
    /// `was_listed`), on the list its occupancy calls for, or releases it.
    fn settle(&mut self, slab: Slab, was_listed: bool, arenas: &[CachePadded<Arena>]) {
        let live = slab.live();
        if was_listed {
            if bucket(live, slab.capacity()) == slab.bucket() {
                return;
            }
            self.unlist(slab);
        }
        // An empty slab is kept for reuse (one per class), unless it is the
        // last span in use of its segment: keeping it would pin 4 MiB.
        let seg = slab.0.segment();
        let pins_segment = seg.free_pages() + slab.0.pages() == USABLE_PAGES;
        if live == 0 && (self.partial[0].len() >= KEEP_EMPTY_SLABS || pins_segment) {
            self.release(slab, arenas);
            return;
        }
        self.list(slab);
    }

    /// Returns every block of the transfer stack to its slab.
    fn drain_transfer(&mut self, info: &ClassInfo, arenas: &[CachePadded<Arena>]) {
        while self.transfer_len > 0 {
            self.transfer_len -= 1;
            let list = core::mem::take(&mut self.transfer[self.transfer_len]);
            self.transfer_blocks -= list.len() as usize;
            self.return_blocks(info, list, arenas);
        }
    }

    /// Returns empty, unlisted `slab` to its arena.
    fn release(&mut self, slab: Slab, arenas: &[CachePadded<Arena>]) {
        if self.open == Some(slab) {
            self.open = None;
        }
        self.slabs -= 1;
        self.purged_pages -= slab.purged_pages();
        arena_of(slab, arenas).free_span(slab.0);
    }

    /// Returns every empty slab to its arena.
    fn release_empty_slabs(&mut self, arenas: &[CachePadded<Arena>]) {
        while let Some(span) = self.partial[0].first() {
            let slab = Slab(span);
            self.unlist(slab);
            self.release(slab, arenas);
        }
    }

    /// Decommits the pages of listed slabs that hold no live block.
    fn purge_slabs(&mut self, info: &ClassInfo, arenas: &[CachePadded<Arena>]) -> usize {
        let mut pages = 0;
        for list in &self.partial {
            let mut cur = list.first();
            while let Some(span) = cur {
                let slab = Slab(span);
                let before = slab.purged_pages();
                pages += slab.purge(info.size as usize, arena_of(slab, arenas));
                self.purged_pages += slab.purged_pages() - before;
                cur = list.next(span);
            }
        }
        pages
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::size_class::class_of;

    fn slab_of(b: *mut crate::block::Block) -> Slab {
        // SAFETY: `b` is a live block of a slab in a live segment.
        unsafe { Slab::of_block(b.cast()) }
    }

    #[test]
    fn blocks_flow_through_transfer_and_back_to_slabs() {
        let arenas = [CachePadded::new(Arena::new())];
        let central = Central::new();
        // A multiple of a cache line: no carve stops short.
        let class = class_of(128);
        let info = CLASSES[class];
        let mut got = central.refill(class, 10, &arenas, 0);
        assert_eq!(got.len(), 10);
        let first = got.pop().expect("block");
        let slab = slab_of(first);
        assert_eq!(slab.0.class(), class);
        assert_eq!(first.cast::<u8>(), slab.0.start());
        assert_eq!(slab.accounting(), (10, 10, 0, 0));
        // Return four blocks straight to the slab.
        central.free_block(class, first.cast(), &arenas);
        for _ in 0..3 {
            let b = got.pop().expect("block");
            central.free_block(class, b.cast(), &arenas);
        }
        assert_eq!(slab.accounting(), (6, 10, 4, 0));
        let again = central.refill(class, 6, &arenas, 0);
        assert_eq!(slab.accounting(), (12, 12, 0, 0), "freed blocks first");
        // Through the transfer stack: blocks stay live for their slab.
        central.flush(class, again, &arenas);
        let counts = central.counts();
        assert_eq!((counts.transfer_blocks, counts.live_blocks), (6, 12));
        assert_eq!(slab.accounting(), (12, 12, 0, 0));
        central.flush(class, got, &arenas);
        central.collect(class, &arenas);
        let counts = central.counts();
        assert_eq!(
            (
                counts.slabs,
                counts.empty_slabs,
                counts.live_blocks,
                counts.transfer_blocks
            ),
            (0, 0, 0, 0),
            "collect returned the empty slab"
        );
        assert!(info.capacity > 12);
    }

    fn lines(mut list: BlockList, size: usize) -> Vec<usize> {
        let mut v = Vec::new();
        while let Some(b) = list.pop() {
            v.push(b as usize / 64);
            v.push((b as usize + size - 1) / 64);
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    #[test]
    fn first_refills_share_no_cache_line_with_blocks_handed_out() {
        let arenas = [CachePadded::new(Arena::new())];
        let central = Central::new();
        let class = class_of(24);
        let size = CLASSES[class].size as usize;
        // An odd refill, then frees back to the slab: later refills take
        // those freed blocks first, a first refill only fresh ones.
        let mut held = central.refill(class, 13, &arenas, 0);
        assert_eq!(held.len(), 8, "a carve stops at a line boundary");
        for _ in 0..3 {
            let b = held.pop().expect("block");
            central.free_block(class, b.cast(), &arenas);
        }
        let held_lines = lines(held, size);
        let a = central.refill_ordered(class, 20, &arenas, 0, true);
        let b = central.refill_ordered(class, 20, &arenas, 0, true);
        assert_eq!((a.len(), b.len()), (16, 16));
        let (a, b) = (lines(a, size), lines(b, size));
        for l in &a {
            assert!(
                !held_lines.contains(l) && !b.contains(l),
                "line {l:x} shared"
            );
        }
        // A later refill reuses the freed blocks.
        let again = central.refill(class, 3, &arenas, 0);
        assert_eq!(
            lines(again, size)
                .iter()
                .filter(|l| held_lines.contains(l))
                .count(),
            1
        );
    }

    #[test]
    fn refill_prefers_the_fullest_slab() {
        let arenas = [CachePadded::new(Arena::new())];
        let central = Central::new();
        let class = class_of(4096);
        let cap = CLASSES[class].capacity;
        // A carve links at most a page of blocks: refill until the slab is
        // used up.
        let whole_slab = || {
            let mut l = BlockList::new();
            while l.len() < cap {
                l.append(central.refill(class, cap - l.len(), &arenas, 0));
            }
            l
        };
        let mut a = whole_slab();
        let mut b = whole_slab();
        assert_eq!((a.len(), b.len()), (cap, cap));
        let slab_b = slab_of(b.pop().expect("block"));
        // Free most of slab a and one block of slab b.
        for _ in 0..cap - 1 {
            central.free_block(class, a.pop().expect("block").cast(), &arenas);
        }
        central.free_block(class, b.pop().expect("block").cast(), &arenas);
        // The next block comes from b, the fuller one.
        let mut next = central.refill(class, 1, &arenas, 0);
        assert_eq!(slab_of(next.pop().expect("block")), slab_b);
    }

    #[test]
    fn idle_classes_are_trimmed() {
        let arenas = [CachePadded::new(Arena::new())];
        let central = Central::new();
        let class = class_of(64);
        let list = central.refill(class, 64, &arenas, 0);
        central.flush(class, list, &arenas);
        assert_eq!(central.counts().transfer_blocks, 64);
        central.trim(class, &arenas);
        assert_eq!(central.counts().transfer_blocks, 64, "active: kept");
        central.trim(class, &arenas);
        let counts = central.counts();
        assert_eq!(
            (counts.transfer_blocks, counts.slabs),
            (0, 0),
            "idle: returned"
        );
        assert_eq!(arenas[0].counts().segments, 1, "segment retained");
    }

    #[test]
    fn live_block_counts_track_every_path() {
        let arenas = [CachePadded::new(Arena::new())];
        let central = Central::new();
        let class = class_of(2048);
        let mut lists: Vec<_> = (0..20)
            .map(|_| central.refill(class, 16, &arenas, 0))
            .collect();
        let total: usize = lists.iter().map(|l| l.len() as usize).sum();
        assert_eq!(central.counts().live_blocks, total);
        for l in lists.drain(..10) {
            central.flush(class, l, &arenas);
        }
        for mut l in lists {
            while let Some(b) = l.pop() {
                central.free_block(class, b.cast(), &arenas);
            }
        }
        let c = central.counts();
        assert_eq!(c.live_blocks, c.transfer_blocks);
        central.collect(class, &arenas);
        assert_eq!(central.counts(), CentralCounts::default());
    }
}

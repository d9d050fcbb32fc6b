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
//!   beyond a few kept empty ones.
//!
//! When the transfer stack is full, a flushed batch goes back block by block
//! to the slabs it came from (found by masking each address).
//!
//! Invariants (under the lock): a slab is on the partial list of bucket
//! `bucket(live)` iff `live < capacity`; `live` counts the blocks out of the
//! slab (with the program, in thread caches or in the transfer stack);
//! `free` holds `bumped - live` blocks; `empty_slabs` counts listed slabs with
//! `live == 0`.

use crate::arena::Arena;
use crate::block::{self, Block, BlockList};
use crate::segment::{SLAB, SegmentRef, SpanList, SpanRef};
use crate::size_class::{CLASSES, ClassInfo};
use crate::sync::{CachePadded, Lock, const_fn};
use core::ptr;

/// Capacity of the transfer stack (batches), before the byte bound below.
const TRANSFER_SLOTS: usize = 16;
/// Bytes the transfer stack of a class may hold.
const TRANSFER_BYTES: usize = 512 * 1024;
/// Occupancy buckets of partial slabs.
const BUCKETS: usize = 8;
/// Empty slabs a class keeps instead of returning them to their arena.
const KEEP_EMPTY_SLABS: usize = 1;

/// The central pool of one class.
pub struct Central {
    state: Lock<CentralState>,
}

struct CentralState {
    transfer: [BlockList; TRANSFER_SLOTS],
    transfer_len: usize,
    partial: [SpanList; BUCKETS],
    /// Bit `b` set iff `partial[b]` is non-empty.
    nonempty: u32,
    slabs: usize,
    empty_slabs: usize,
}

/// Counters of one class, read for statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CentralCounts {
    pub slabs: usize,
    pub empty_slabs: usize,
    pub transfer_blocks: usize,
}

impl Central {
    const_fn! {
        pub fn new() -> Self {
            Self {
                state: Lock::new(CentralState {
                    transfer: [const { BlockList::new() }; TRANSFER_SLOTS],
                    transfer_len: 0,
                    partial: [const { SpanList::new() }; BUCKETS],
                    nonempty: 0,
                    slabs: 0,
                    empty_slabs: 0,
                }),
            }
        }
    }

    /// Up to `want` (>= 1) free blocks of `class`; empty only when out of
    /// memory. New slabs come from `arenas[home]`.
    pub fn refill(
        &self,
        class: usize,
        want: u32,
        arenas: &[CachePadded<Arena>],
        home: usize,
    ) -> BlockList {
        let info = &CLASSES[class];
        let got = self.state.with(|st| {
            if let Some(list) = st.pop_transfer(want) {
                return list;
            }
            st.take_from_slabs(info, want)
        });
        if !got.is_empty() {
            return got;
        }
        // No block anywhere: carve a new slab outside the lock, then retry
        // (another thread may have refilled the class meanwhile).
        let Some(slab) = new_slab(class, info, &arenas[home], home) else {
            return BlockList::new();
        };
        self.state.with(|st| {
            st.adopt(slab);
            st.take_from_slabs(info, want)
        })
    }

    /// Takes back `list`, a batch of blocks of `class` (any length).
    pub fn flush(&self, class: usize, list: BlockList, arenas: &[CachePadded<Arena>]) {
        if list.is_empty() {
            return;
        }
        let info = &CLASSES[class];
        self.state.with(|st| {
            if st.transfer_len < transfer_cap(info) {
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

    /// Returns every block of the transfer stack to its slab, releasing
    /// slabs that become empty (beyond those kept).
    pub fn drain(&self, class: usize, arenas: &[CachePadded<Arena>]) {
        let info = &CLASSES[class];
        self.state.with(|st| {
            while st.transfer_len > 0 {
                st.transfer_len -= 1;
                let list = core::mem::take(&mut st.transfer[st.transfer_len]);
                st.return_blocks(info, list, arenas);
            }
        });
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
        self.state.with(|st| CentralCounts {
            slabs: st.slabs,
            empty_slabs: st.empty_slabs,
            transfer_blocks: st.transfer[..st.transfer_len]
                .iter()
                .map(|l| l.len() as usize)
                .sum(),
        })
    }
}

/// Batches the transfer stack of a class may hold.
fn transfer_cap(info: &ClassInfo) -> usize {
    let batch_bytes = info.batch as usize * info.size as usize;
    (TRANSFER_BYTES / batch_bytes).clamp(2, TRANSFER_SLOTS)
}

/// Occupancy bucket of a slab with `live` of `capacity` blocks out.
fn bucket(live: u32, capacity: u32) -> usize {
    (live as usize * BUCKETS) / capacity as usize
}

/// Carves a fresh slab of `class` from `arena`.
fn new_slab(class: usize, info: &ClassInfo, arena: &Arena, index: usize) -> Option<SpanRef> {
    let new = arena.alloc_span(
        index,
        info.slab_pages as usize,
        info.align_pages as usize,
        SLAB,
    )?;
    let slab = new.span;
    slab.set_class(class);
    // SAFETY: the span was just handed to us and is on no list.
    let st = unsafe { slab.state() };
    st.free = ptr::null_mut();
    st.live = 0;
    st.bumped = 0;
    st.capacity = info.capacity;
    st.bucket = 0;
    Some(slab)
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
        Some(list)
    }

    /// Lists a slab of the class (new or known) that has blocks to give.
    fn list(&mut self, slab: SpanRef, bucket: usize) {
        // SAFETY: the class lock is held; the slab is ours.
        unsafe { slab.state().bucket = bucket as u8 };
        self.partial[bucket].push(slab);
        self.nonempty |= 1 << bucket;
    }

    fn unlist(&mut self, slab: SpanRef) {
        // SAFETY: the class lock is held; the slab is on a partial list.
        let bucket = unsafe { slab.state().bucket } as usize;
        self.partial[bucket].remove(slab);
        if self.partial[bucket].is_empty() {
            self.nonempty &= !(1 << bucket);
        }
    }

    fn adopt(&mut self, slab: SpanRef) {
        self.slabs += 1;
        self.empty_slabs += 1;
        self.list(slab, 0);
    }

    /// Up to `want` blocks from the fullest partial slabs.
    fn take_from_slabs(&mut self, info: &ClassInfo, want: u32) -> BlockList {
        let mut out = BlockList::new();
        while out.len() < want && self.nonempty != 0 {
            let fullest = 31 - self.nonempty.leading_zeros() as usize;
            let Some(slab) = self.partial[fullest].first() else {
                break;
            };
            self.unlist(slab);
            // SAFETY: the class lock is held and the slab belongs to the
            // class; its free list holds `bumped - live` blocks.
            let st = unsafe { slab.state() };
            if st.live == 0 {
                self.empty_slabs -= 1;
            }
            let need = want - out.len();
            let on_free = st.bumped - st.live;
            if on_free > 0 {
                let n = need.min(on_free);
                // SAFETY: the slab's free list has `on_free >= n` blocks.
                let (front, rest) = unsafe { block::split_chain(st.free, n) };
                st.free = rest;
                st.live += n;
                out.append(front);
            }
            let need = want - out.len();
            let fresh = st.capacity - st.bumped;
            if need > 0 && fresh > 0 {
                let n = need.min(fresh);
                let size = info.size as usize;
                // SAFETY: blocks `bumped .. bumped + n` lie inside the slab
                // and were never handed out.
                let list =
                    unsafe { block::carve(slab.start().add(st.bumped as usize * size), size, n) };
                st.bumped += n;
                st.live += n;
                out.append(list);
            }
            if st.live < st.capacity {
                let b = bucket(st.live, st.capacity);
                self.list(slab, b);
            }
        }
        out
    }

    /// Puts every block of `list` back on its slab.
    fn return_blocks(
        &mut self,
        info: &ClassInfo,
        mut list: BlockList,
        arenas: &[CachePadded<Arena>],
    ) {
        while let Some(b) = list.pop() {
            self.return_block(info, b, arenas);
        }
    }

    fn return_block(&mut self, info: &ClassInfo, b: *mut Block, arenas: &[CachePadded<Arena>]) {
        // SAFETY: `b` is a block of this class, so it lies in a slab of a
        // live segment.
        let slab = unsafe { SegmentRef::of(b.cast()).span_of(b.cast()) };
        debug_assert_eq!(slab.kind(), SLAB);
        // SAFETY: the class lock is held; the slab belongs to this class.
        let st = unsafe { slab.state() };
        debug_assert_eq!(st.capacity, info.capacity);
        let was_full = st.live == st.capacity;
        // SAFETY: `b` is free and ours; it joins the slab's free list.
        unsafe { block::set_next(b, st.free) };
        st.free = b;
        st.live -= 1;
        let (live, old_bucket) = (st.live, st.bucket as usize);
        let new_bucket = bucket(live, st.capacity);
        if live == 0 && self.empty_slabs >= KEEP_EMPTY_SLABS {
            if !was_full {
                self.unlist(slab);
            }
            self.slabs -= 1;
            arenas[slab.segment().arena()].free_span(slab);
            return;
        }
        if live == 0 {
            self.empty_slabs += 1;
        }
        if was_full {
            self.list(slab, new_bucket);
        } else if new_bucket != old_bucket {
            self.unlist(slab);
            self.list(slab, new_bucket);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::size_class::class_of;

    fn slab_of(b: *mut Block) -> SpanRef {
        // SAFETY: `b` is a live block of a slab in a live segment.
        unsafe { SegmentRef::of(b.cast()).span_of(b.cast()) }
    }

    /// (live, bumped, blocks on the free list) of a slab.
    fn accounting(slab: SpanRef) -> (u32, u32, u32) {
        // SAFETY: the test is the only user of this central pool.
        let st = unsafe { slab.state() };
        let mut on_free = 0;
        let mut b = st.free;
        while !b.is_null() {
            on_free += 1;
            // SAFETY: `b` is on the slab's free list.
            b = unsafe { block::next_of(b) };
        }
        (st.live, st.bumped, on_free)
    }

    #[test]
    fn slab_bump_and_free_list_accounting() {
        let arenas = [CachePadded::new(Arena::new())];
        let central = Central::new();
        let class = class_of(100);
        let info = CLASSES[class];
        // Fresh slab: blocks come from the bump pointer, in address order.
        let mut got = central.refill(class, 10, &arenas, 0);
        assert_eq!(got.len(), 10);
        let first = got.pop().expect("block");
        let slab = slab_of(first);
        assert_eq!(slab.class(), class);
        assert_eq!(first.cast::<u8>(), slab.start());
        assert_eq!(accounting(slab), (10, 10, 0));
        // Return four blocks straight to the slab: they go on its free list.
        central.free_block(class, first.cast(), &arenas);
        for _ in 0..3 {
            let b = got.pop().expect("block");
            central.free_block(class, b.cast(), &arenas);
        }
        assert_eq!(accounting(slab), (6, 10, 4));
        // A refill takes the free list first (LIFO), then bumps.
        let again = central.refill(class, 6, &arenas, 0);
        assert_eq!(again.len(), 6);
        assert_eq!(accounting(slab), (12, 12, 0));
        // Through the transfer stack and back: the batch is reused whole.
        central.flush(class, again, &arenas);
        assert_eq!(central.counts().transfer_blocks, 6);
        assert_eq!(
            accounting(slab),
            (12, 12, 0),
            "transfer blocks stay live for the slab"
        );
        central.drain(class, &arenas);
        central.flush(class, got, &arenas);
        central.drain(class, &arenas);
        let counts = central.counts();
        assert_eq!(
            (counts.slabs, counts.empty_slabs, counts.transfer_blocks),
            (1, 1, 0)
        );
        assert_eq!(accounting(slab), (0, 12, 12));
        assert!(info.capacity > 12);
    }

    #[test]
    fn refill_prefers_the_fullest_slab() {
        let arenas = [CachePadded::new(Arena::new())];
        let central = Central::new();
        let class = class_of(4096);
        let cap = CLASSES[class].capacity;
        // Fill two slabs completely.
        let mut a = central.refill(class, cap, &arenas, 0);
        let mut b = central.refill(class, cap, &arenas, 0);
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
}

//! A central pool's locked state: the transfer stack of whole batches,
//! the partial slabs by occupancy, and the counts that tie them; every
//! method runs under the pool's lock (the `&mut` of this state, which only
//! `Central`'s lock hands out).
//!
//! Invariants: `transfer[..transfer_len]` hold `transfer_blocks` blocks;
//! `partial[b]` holds the slabs whose occupancy bucket is `b`, bit `b` of
//! `nonempty` set iff it is non-empty; `live_blocks` counts the blocks out
//! of their slabs (with the program, cached, or in transfer).

use super::{BUCKETS, Home, KEEP_EMPTY_SLABS, Refill, TRANSFER_BYTES, TRANSFER_SLOTS};
use crate::block::{BlockList, Chain};
use crate::inbox::Inbox;
use crate::segment::{SpanList, USABLE_PAGES};
use crate::size_class::ClassInfo;
use crate::slab::{Slab, SlabLock};
use crate::sync::LockCounts;

/// Slabs a take for another shard looks at, at most (`take_freed`).
const SPARE_SLABS: usize = 8;

/// A class grows fast when its pool carves slabs less than this many
/// milliseconds apart, [`GROWTH_STREAK`] times in a row, with no slab
/// released between, and holds at least [`GROWTH_SLABS`] slabs.
pub(super) const GROWTH_MS: u32 = 10;
pub(super) const GROWTH_STREAK: u32 = 2;
pub(super) const GROWTH_SLABS: usize = 8;

/// `flushed_by` of a batch that came through the inbox (another shard's).
const REMOTE: u32 = u32::MAX;

pub(super) struct CentralState {
    pub(super) transfer: [Chain; TRANSFER_SLOTS],
    /// Serial of the thread that flushed each batch.
    pub(super) flushed_by: [u32; TRANSFER_SLOTS],
    pub(super) transfer_len: usize,
    pub(super) transfer_blocks: usize,
    pub(super) partial: [SpanList; BUCKETS],
    /// Bit `b` set iff `partial[b]` is non-empty.
    pub(super) nonempty: u32,
    pub(super) slabs: usize,
    pub(super) live_blocks: usize,
    /// Pages of the class's slabs decommitted by a slab purge.
    pub(super) purged_pages: usize,
    /// A refill or flush happened since the last trim.
    pub(super) active: bool,
    /// The slab last carved for the class, until released: the one slab
    /// with blocks never handed out that the spare hint looks past
    /// (`freed_in_slabs`).
    pub(super) open: Option<Slab>,
    /// The witness that this state's holder may use the pool's slabs.
    pub(super) owned: SlabLock,
    /// The lock's acquisitions and waits.
    pub(super) locks: LockCounts,
    /// Batches taken from the transfer stack by a thread other than the
    /// one that flushed them.
    pub(super) cross_thread_batches: u64,
    /// When the pool last carved a slab (`os::now_ms`), and how many
    /// carves in a row came within [`GROWTH_MS`] of the one before with no
    /// slab released between ([`CentralState::growing`]).
    pub(super) last_carve_ms: u32,
    pub(super) carve_streak: u32,
}

/// Batches the transfer stack of a class may hold.
pub(super) fn transfer_cap(info: &ClassInfo) -> usize {
    let batch_bytes = info.batch as usize * info.size as usize;
    (TRANSFER_BYTES / batch_bytes).clamp(2, TRANSFER_SLOTS)
}

/// List of a slab with `live` of `capacity` blocks out (`live < capacity`):
/// 0 when empty, then by occupancy.
pub(super) fn bucket(live: u32, capacity: u32) -> usize {
    if live == 0 {
        0
    } else {
        1 + (live as usize * (BUCKETS - 1)) / capacity as usize
    }
}

impl CentralState {
    pub(super) fn pop_transfer(&mut self, ask: Refill) -> Option<Chain> {
        if self.transfer_len == 0 {
            return None;
        }
        let top = self.transfer_len - 1;
        let list = self.transfer[top].take_front(ask.want);
        if self.flushed_by[top] != ask.thread {
            self.cross_thread_batches += 1;
        }
        if self.transfer[top].is_empty() {
            self.transfer_len = top;
        }
        self.transfer_blocks -= list.len() as usize;
        Some(list)
    }

    pub(super) fn list(&mut self, slab: Slab) {
        let b = bucket(slab.live(&mut self.owned), slab.capacity(&mut self.owned));
        slab.set_bucket(b, &mut self.owned);
        self.partial[b].push(slab.0);
        self.nonempty |= 1 << b;
    }

    pub(super) fn unlist(&mut self, slab: Slab) {
        let b = slab.bucket(&mut self.owned);
        self.partial[b].remove(slab.0);
        if self.partial[b].is_empty() {
            self.nonempty &= !(1 << b);
        }
    }

    pub(super) fn adopt(&mut self, slab: Slab) {
        self.slabs += 1;
        self.list(slab);
    }

    /// Up to `want` blocks from the fullest listed slabs; fewer when a slab
    /// stops a carve early (see `Slab::take`).
    pub(super) fn take_from_slabs(&mut self, info: &ClassInfo, want: u32, home: Home) -> BlockList {
        let mut out = BlockList::new();
        while out.len() < want && self.nonempty != 0 {
            let fullest = 31 - self.nonempty.leading_zeros() as usize;
            let Some(span) = self.partial[fullest].first() else {
                break;
            };
            let slab = Slab(span);
            out.append(self.take_from(slab, info, want - out.len(), home));
            if slab.live(&mut self.owned) < slab.capacity(&mut self.owned) {
                // The slab stopped its carve early (at 4 KiB or a cache
                // line): a second carve for the rest would touch more pages
                // or leave the bump pointer inside a line. The refill is
                // short instead.
                break;
            }
        }
        out
    }

    /// Whether a slab of the pool that is neither empty nor full has blocks
    /// on its free list (a hint for `Central::take_spare`): true as soon as
    /// one such slab is not the open one, since only the open slab can have
    /// blocks never handed out (a slab is carved only when every listed
    /// slab had none to give), so any other one has freed blocks.
    #[cfg(not(loom))]
    pub(super) fn freed_in_slabs(&mut self) -> bool {
        let partial = self.nonempty & !1;
        if partial == 0 {
            return false;
        }
        let Some(open) = self.open else {
            return true;
        };
        let b = open.bucket(&mut self.owned);
        let only_open = partial == 1 << b
            && self.partial[b].first() == Some(open.0)
            && self.partial[b].next(open.0).is_none();
        !only_open || open.freed_left(&mut self.owned) > 0
    }

    /// Blocks already written, none fresh: the top transfer batch, else up
    /// to `ask.want` blocks from slab free lists ([`Self::take_freed`]).
    pub(super) fn take_written(&mut self, info: &ClassInfo, ask: Refill, home: Home) -> Chain {
        match self.pop_transfer(ask) {
            Some(chain) => chain,
            None => self.take_freed(info, ask.want, home).into_chain(),
        }
    }

    /// Up to `want` blocks from the free lists of the fullest listed slabs,
    /// never a fresh block, looking at [`SPARE_SLABS`] slabs at most (see
    /// `Central::take_spare`).
    pub(super) fn take_freed(&mut self, info: &ClassInfo, want: u32, home: Home) -> BlockList {
        let mut out = BlockList::new();
        let mut looked = 0;
        for bucket in (1..BUCKETS).rev() {
            let mut at = self.partial[bucket].first();
            while let Some(span) = at {
                if out.len() >= want || looked == SPARE_SLABS {
                    return out;
                }
                looked += 1;
                at = self.partial[bucket].next(span);
                let slab = Slab(span);
                let freed = slab.freed_left(&mut self.owned).min(want - out.len());
                if freed > 0 {
                    out.append(self.take_from(slab, info, freed, home));
                }
            }
        }
        out
    }

    /// Up to `want` blocks of `slab`, a listed slab (freed ones first);
    /// relists it by its new occupancy.
    pub(super) fn take_from(
        &mut self,
        slab: Slab,
        info: &ClassInfo,
        want: u32,
        home: Home,
    ) -> BlockList {
        self.unlist(slab);
        self.purged_pages -= slab.purged_pages(&mut self.owned);
        let size = info.size as usize;
        let got = slab.take(want, size, home.arena, &mut self.owned);
        self.purged_pages += slab.purged_pages(&mut self.owned);
        self.live_blocks += got.len() as usize;
        if slab.live(&mut self.owned) < slab.capacity(&mut self.owned) {
            self.list(slab);
        }
        got
    }

    /// Puts every block of `list` that belongs to this pool back on its
    /// slab; adds the others to `foreign`, in their order.
    pub(super) fn return_blocks(
        &mut self,
        info: &ClassInfo,
        mut list: Chain,
        home: Home,
        foreign: &mut BlockList,
    ) {
        // Consecutive blocks of one slab (common: a batch freed in the order
        // it was allocated) go on its free list together; the slab moves
        // between occupancy lists once per run, not once per block.
        let mut run: Option<(Slab, bool)> = None;
        while let Some(b) = list.pop() {
            // SAFETY: `b` is a block of this class, so it lies in a slab of
            // a live segment.
            let slab = unsafe { Slab::of_block(b.cast()) };
            match run {
                Some((current, _)) if current == slab => {}
                _ if !home.owns(slab) => {
                    // SAFETY: `b` was on `list`, whose blocks we own.
                    unsafe { foreign.push_back(b) };
                    continue;
                }
                _ => {
                    if let Some((done, was_listed)) = run {
                        self.settle(done, was_listed, home);
                    }
                    run = Some((
                        slab,
                        slab.live(&mut self.owned) < slab.capacity(&mut self.owned),
                    ));
                }
            }
            debug_assert_eq!(slab.capacity(&mut self.owned), info.capacity);
            // SAFETY: `b` is a live block of `slab` that the caller gave up.
            unsafe { slab.put(b, &mut self.owned) };
            self.live_blocks -= 1;
        }
        if let Some((done, was_listed)) = run {
            self.settle(done, was_listed, home);
        }
    }

    /// Puts `slab`, which just took blocks back (it was on a list iff
    /// `was_listed`), on the list its occupancy calls for, or releases it.
    pub(super) fn settle(&mut self, slab: Slab, was_listed: bool, home: Home) {
        let live = slab.live(&mut self.owned);
        if was_listed {
            if bucket(live, slab.capacity(&mut self.owned)) == slab.bucket(&mut self.owned) {
                return;
            }
            self.unlist(slab);
        }
        // An empty slab is kept for reuse (one per class), unless it is the
        // last span in use of its segment: keeping it would pin 4 MiB.
        let seg = slab.0.segment();
        let pins_segment = seg.free_pages() + slab.0.pages() == USABLE_PAGES;
        if live == 0 && (self.partial[0].len() >= KEEP_EMPTY_SLABS || pins_segment) {
            self.release(slab, home);
            return;
        }
        self.list(slab);
    }

    /// Moves the inbox's batches onto the transfer stack while it has
    /// room.
    pub(super) fn take_inbox(&mut self, inbox: &Inbox, info: &ClassInfo) {
        while self.transfer_len < transfer_cap(info) {
            let Some(chain) = inbox.take() else {
                break;
            };
            self.transfer_blocks += chain.len() as usize;
            self.transfer[self.transfer_len] = chain;
            self.flushed_by[self.transfer_len] = REMOTE;
            self.transfer_len += 1;
        }
    }

    /// Returns the inbox's and the transfer stack's blocks that belong to
    /// this pool to their slabs; returns the others.
    pub(super) fn drain_all(&mut self, inbox: &Inbox, info: &ClassInfo, home: Home) -> Chain {
        let mut foreign = BlockList::new();
        while self.transfer_len > 0 {
            self.transfer_len -= 1;
            let list = core::mem::take(&mut self.transfer[self.transfer_len]);
            self.transfer_blocks -= list.len() as usize;
            self.return_blocks(info, list, home, &mut foreign);
        }
        while let Some(chain) = inbox.take() {
            self.return_blocks(info, chain, home, &mut foreign);
        }
        foreign.into_chain()
    }

    /// Records a slab carved at `now` (milliseconds, `os::now_ms`), already
    /// adopted; whether the class grows fast: its pool holds at least
    /// [`GROWTH_SLABS`] slabs, and the last [`GROWTH_STREAK`] carves, this
    /// one included, each came within [`GROWTH_MS`] of the one before, with
    /// no slab released since. The program is then filling the class's slabs
    /// as fast as they are carved (a heap being built, an allocate-only
    /// phase), and the new slab's pages will all be written soon.
    pub(super) fn growing(&mut self, now: u32) -> bool {
        let soon = now.wrapping_sub(self.last_carve_ms) < GROWTH_MS;
        self.carve_streak = if soon { self.carve_streak + 1 } else { 0 };
        self.last_carve_ms = now;
        self.carve_streak >= GROWTH_STREAK && self.slabs >= GROWTH_SLABS
    }

    /// Returns empty, unlisted `slab` to the arena.
    pub(super) fn release(&mut self, slab: Slab, home: Home) {
        // A class that gives slabs back is not growing.
        self.carve_streak = 0;
        if self.open == Some(slab) {
            self.open = None;
        }
        self.slabs -= 1;
        self.purged_pages -= slab.purged_pages(&mut self.owned);
        if slab.lift_guard(&mut self.owned) {
            home.arena.free_span(slab.0);
        }
        // Else the span stays out of use: reused, its guard would fault.
    }

    /// Returns every empty slab to the arena.
    pub(super) fn release_empty_slabs(&mut self, home: Home) {
        while let Some(span) = self.partial[0].first() {
            let slab = Slab(span);
            self.unlist(slab);
            self.release(slab, home);
        }
    }

    /// Decommits the pages of listed slabs that hold no live block.
    pub(super) fn purge_slabs(&mut self, info: &ClassInfo, home: Home) -> usize {
        let mut pages = 0;
        for list in &self.partial {
            let mut cur = list.first();
            while let Some(span) = cur {
                let slab = Slab(span);
                let before = slab.purged_pages(&mut self.owned);
                pages += slab.purge(info.size as usize, home.arena, &mut self.owned);
                self.purged_pages += slab.purged_pages(&mut self.owned) - before;
                cur = list.next(span);
            }
        }
        pages
    }
}

//! The central pool of one size class in one arena (its locked state and
//! the operations under the lock are in `central/state.rs`).
//!
//! Every arena has one central pool per class (its shard of the class):
//! threads whose home is the arena refill from it, and its slabs are carved
//! from the arena's segments, so a slab's owner pool is found from its
//! segment header (`SegmentRef::arena`). Two threads with different homes
//! thus receive blocks of one slab only when the program hands blocks from
//! one to the other (a refill that finds no written block at home takes
//! one of a pool whose shard has no live thread before it touches new
//! pages: [`Central::take_spare`]); and no lock is shared by all threads
//! of the process.
//!
//! A pool holds two kinds of free blocks, behind one short lock:
//! - a transfer stack of whole batches (block chains) flushed by thread
//!   caches, handed out again in O(1) to the next thread of the arena that
//!   refills: a batch goes to the pool that owns its blocks (`Backend::flush`
//!   sorts a mixed one), so a thread's own overflow comes back to its own
//!   arena, and blocks freed by another thread (the program passed them
//!   over) go back to the arena that allocated them, to be reused there.
//!   Batches from threads of other shards arrive through the pool's inbox,
//!   without the lock, and join the stack when a refill finds it empty;
//! - the slabs of the class in this arena that still have blocks to give
//!   (on their own free lists or past their bump pointer), in lists by
//!   occupancy. A refill takes from the fullest slab first so that sparse
//!   slabs drain and can be released; a slab whose blocks have all come
//!   back returns to its arena, beyond one kept empty slab.
//!
//! When the transfer stack is full, a flushed batch goes back block by block
//! to the slabs it came from (found by masking each address). A class idle
//! for a maintenance period ([`Central::trim`]) returns its transfer stack
//! to the slabs and its empty slabs to their arena. A transfer batch may
//! hold blocks of other arenas (a thread freed blocks of several): giving
//! blocks back to slabs returns those to the caller, which hands them to
//! their own pools (`Backend`), so a pool only ever touches its own slabs and
//! no thread holds two pool locks at once.
//!
//! The pool also counts its lock's acquisitions and waits, and the batches
//! a thread took from the transfer stack that another thread had flushed
//! (statistics, under the lock).
//!
//! Invariants (under the lock): every slab of the pool lies in a segment of
//! its arena; a slab is listed iff `live < capacity`, in
//! `partial[bucket(live, capacity)]`, bucket 0 holding exactly the empty
//! slabs; `live_blocks` is the sum of `live` over the pool's slabs, which
//! counts blocks with the program, in thread caches and on transfer stacks
//! (this pool's or another's, or in an inbox); `transfer_blocks` counts the
//! blocks on this pool's transfer stack.

use crate::arena::Arena;
use crate::block::{BlockList, Chain};
use crate::inbox::Inbox;
use crate::os;
use crate::segment::SpanKind;
use crate::segment::SpanList;
use crate::size_class::CLASSES;
use crate::slab::{self, Slab, SlabLock};
use crate::sync::{AtomicBool, AtomicUsize, Lock, LockCounts, Ordering::Relaxed, const_fn};

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

/// The arena of a central pool, and its index in the heap: the pool carves
/// its slabs there, so it owns exactly the slabs of its class in that
/// arena's segments.
#[derive(Clone, Copy)]
pub struct Home<'a> {
    pub arena: &'a Arena,
    pub index: usize,
}

impl Home<'_> {
    /// Whether `slab` belongs to the pool of this home.
    fn owns(&self, slab: Slab) -> bool {
        slab.0.segment().arena() == self.index
    }
}

/// A refill's request.
#[derive(Clone, Copy, Debug)]
pub struct Refill {
    /// Blocks wanted (at least 1).
    pub want: u32,
    /// The refilling thread's serial (statistics: batches taken from
    /// another thread).
    pub thread: u32,
}

impl Refill {
    /// A plain request for `want` blocks (freed ones first), from no
    /// particular thread.
    pub const fn new(want: u32) -> Self {
        Self { want, thread: 0 }
    }
}

/// The central pool of one class in one arena.
pub struct Central {
    state: Lock<CentralState>,
    /// Blocks of this class in the caches of threads whose home is this
    /// arena, as the caches last published on their slow paths.
    cached: AtomicUsize,
    /// Batches of this pool's blocks that threads of other shards freed,
    /// handed over without the lock (see `inbox`).
    inbox: Inbox,
    /// Whether the pool may hold freed blocks (a transfer batch, or a slab
    /// with a free list): a hint, read without the lock by threads of other
    /// shards ([`Central::take_spare`]).
    spare: AtomicBool,
    /// Whether the pool ever carved a slab. One that never did holds no
    /// block, so maintenance passes it by without its lock: the lock's
    /// first write would make the pool's page resident, and most of a
    /// shard's classes are never used by a small program.
    carved: AtomicBool,
}

/// Counters of one pool, for statistics.
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
    /// The pool lock's acquisitions and waits (cumulative).
    pub locks: LockCounts,
    /// Batches a thread took that another thread had flushed (cumulative).
    pub cross_thread_batches: u64,
}

impl CentralCounts {
    /// Adds the live figures of `other` to these (summing a class over
    /// arenas).
    pub fn add(&mut self, other: &CentralCounts) {
        self.slabs += other.slabs;
        self.empty_slabs += other.empty_slabs;
        self.live_blocks += other.live_blocks;
        self.transfer_blocks += other.transfer_blocks;
        self.cached_blocks = self.cached_blocks.wrapping_add(other.cached_blocks);
        self.purged_pages += other.purged_pages;
        self.locks.add(other.locks);
        self.cross_thread_batches += other.cross_thread_batches;
    }
}

impl Central {
    const_fn! {
        pub fn new() -> Self {
            Self {
                state: Lock::new(CentralState {
                    transfer: [const { Chain::new() }; TRANSFER_SLOTS],
                    flushed_by: [0; TRANSFER_SLOTS],
                    transfer_len: 0,
                    transfer_blocks: 0,
                    partial: [const { SpanList::new() }; BUCKETS],
                    nonempty: 0,
                    slabs: 0,
                    live_blocks: 0,
                    purged_pages: 0,
                    active: false,
                    open: None,
                    // SAFETY: the one witness of this pool, in its locked
                    // state.
                    owned: unsafe { SlabLock::new() },
                    locks: LockCounts { acquisitions: 0, waits: 0, sleeps: 0 },
                    cross_thread_batches: 0,
                    last_carve_ms: 0,
                    carve_streak: 0,
                }),
                cached: AtomicUsize::new(0),
                inbox: Inbox::new(),
                spare: AtomicBool::new(false),
                carved: AtomicBool::new(false),
            }
        }
    }

    /// Whether `p`, a block of `slab` (a slab of this pool), is free here:
    /// on the transfer stack, in the inbox or on its slab's free list. A
    /// walk under the lock, for the C door's double-free confirmation (rare:
    /// only when a freed block looks free already).
    pub fn holds(&self, p: *const u8, slab: Slab) -> bool {
        self.locked(|st| {
            let mut found = st.transfer[..st.transfer_len]
                .iter()
                .any(|chain| chain.contains(p));
            self.inbox.for_each(|chain| found |= chain.contains(p));
            found || slab.lists(p, &mut st.owned)
        })
    }

    /// Runs `f` under the pool's lock, counting the acquisition and
    /// updating the spare-batches hint.
    #[inline]
    fn locked<R>(&self, f: impl FnOnce(&mut CentralState) -> R) -> R {
        self.state.with_wait(|st, wait| {
            st.locks.note(wait);
            let r = f(st);
            #[cfg(not(loom))]
            self.spare
                .store(st.transfer_len > 0 || st.freed_in_slabs(), Relaxed);
            r
        })
    }

    /// Up to `ask.want` (>= 1) free blocks of `class`; empty only when out
    /// of memory. New slabs come from `home`'s arena.
    ///
    /// Whole batches on the transfer stack come first (what threads of this
    /// arena flushed); then slab free lists (their pages are resident
    /// already, and exiting threads put their caches there) before fresh
    /// blocks. A thread's first refill of a class is no exception: a thread
    /// shares its home with another live thread only when there are more
    /// threads than shards, and taking never-used blocks first there left
    /// the blocks of exited threads unused while new pages were touched
    /// (`larson`: 1.8 times glibc's peak RSS).
    pub fn refill(&self, class: usize, ask: Refill, home: Home) -> Chain {
        let got = self.take(class, ask, home);
        if !got.is_empty() {
            return got;
        }
        self.carve(class, ask, home)
    }

    /// [`Central::refill`] without carving a slab: empty if the pool has
    /// no free block.
    fn take(&self, class: usize, ask: Refill, home: Home) -> Chain {
        let info = &CLASSES[class];
        self.locked(|st| {
            st.active = true;
            if st.transfer_len == 0 {
                st.take_inbox(&self.inbox, info);
            }
            if let Some(chain) = st.pop_transfer(ask) {
                return chain;
            }
            st.take_from_slabs(info, ask.want, home).into_chain()
        })
    }

    /// Blocks already written, none fresh: a batch from the transfer stack
    /// (or the inbox), else blocks on the free lists of the fullest slabs;
    /// empty if there are none. Reuse before touching: a refill of a thread
    /// that has used the class takes these from its home pool, then from
    /// the other shards' ([`Central::take_spare`]), before blocks past a
    /// slab's bump pointer or a new slab, whose pages are not touched yet.
    ///
    /// With `then_fresh` (no other shard can have written blocks to give:
    /// `Backend::refill`), a refill that finds none goes on, under the same
    /// lock, to the blocks its slabs never handed out, as
    /// [`Central::refill`] would next (without carving a new slab): one
    /// lock per refill instead of two for a thread that allocates more
    /// than it frees.
    pub fn take_resident(&self, class: usize, ask: Refill, home: Home, then_fresh: bool) -> Chain {
        let info = &CLASSES[class];
        self.locked(|st| {
            st.active = true;
            if st.transfer_len == 0 {
                st.take_inbox(&self.inbox, info);
            }
            let got = st.take_written(info, ask, home);
            if got.is_empty() && then_fresh {
                return st.take_from_slabs(info, ask.want, home).into_chain();
            }
            got
        })
    }

    /// [`Central::take_resident`] for a thread of another shard, if the
    /// pool may have blocks to give (a hint, read without the lock): the
    /// inbox is left to the pool's own threads. Loom models always look:
    /// the hint only saves a lock, and every relaxed value it could read
    /// would multiply their executions.
    pub fn take_spare(&self, class: usize, ask: Refill, home: Home) -> Chain {
        if !cfg!(loom) && !self.spare.load(Relaxed) {
            return Chain::new();
        }
        let info = &CLASSES[class];
        self.locked(|st| st.take_written(info, ask, home))
    }

    /// Carves a new slab of `class` in `home`'s arena and refills from it
    /// (empty when out of memory).
    fn carve(&self, class: usize, ask: Refill, home: Home) -> Chain {
        let info = &CLASSES[class];
        // No block to give: carve a new slab outside the lock, then retry
        // (another thread may have refilled the class meanwhile).
        let pages = info.slab_pages as usize + slab::guard_pages();
        let align = info.align_pages as usize;
        let Some(new) = home
            .arena
            .alloc_span(home.index, pages, align, SpanKind::Slab)
        else {
            return Chain::new();
        };
        // SAFETY: the new slab is not published yet: no other thread can
        // reach it until `adopt` lists it under the lock.
        let slab = Slab::init(new.span, class, info, &mut unsafe { SlabLock::new() });
        #[cfg(not(loom))]
        self.carved.store(true, Relaxed);
        let now = os::now_ms();
        let (chain, growing) = self.locked(|st| {
            st.adopt(slab);
            st.open = Some(slab);
            let growing = st.growing(now);
            (
                st.take_from_slabs(info, ask.want, home).into_chain(),
                growing,
            )
        });
        // A class that grows fast gets the pages of its new slab written in
        // by one system call, outside the lock, instead of a page fault per
        // page as its blocks are handed out: an allocate-only C program ran
        // a third faster. Only pages that are not in RAM yet (a span whose
        // pages all read as zero), and one slab at most ahead of the
        // program per class and arena.
        #[cfg(not(loom))]
        if growing && new.zero {
            slab.populate();
        }
        #[cfg(loom)]
        let _ = growing;
        chain
    }

    /// Takes back `list`, a batch of blocks of `class` (any length) whose
    /// first block belongs to this pool, flushed by thread `thread`. Returns
    /// the blocks it could not keep that belong to other pools (when the
    /// transfer stack is full, the batch goes back to the slabs).
    #[must_use]
    pub fn flush(&self, class: usize, list: Chain, thread: u32, home: Home) -> Chain {
        if list.is_empty() {
            return list;
        }
        let info = &CLASSES[class];
        self.locked(|st| {
            st.active = true;
            if st.transfer_len < transfer_cap(info) {
                st.transfer_blocks += list.len() as usize;
                st.transfer[st.transfer_len] = list;
                st.flushed_by[st.transfer_len] = thread;
                st.transfer_len += 1;
                Chain::new()
            } else {
                let mut foreign = BlockList::new();
                st.return_blocks(info, list, home, &mut foreign);
                foreign.into_chain()
            }
        })
    }

    /// Takes back `chain`, a batch of this pool's blocks freed by a thread
    /// of another shard, without the lock if the inbox has room; else gives
    /// it back (to be flushed the locked way).
    pub fn put_remote(&self, chain: Chain) -> Result<(), Chain> {
        self.inbox.put(chain)
    }

    /// Puts the blocks of `list` (of `class`) that belong to this pool back
    /// on their slabs; returns the others.
    #[must_use]
    pub fn free_blocks(&self, class: usize, list: Chain, home: Home) -> Chain {
        let mut foreign = BlockList::new();
        self.locked(|st| st.return_blocks(&CLASSES[class], list, home, &mut foreign));
        foreign.into_chain()
    }

    /// Maintenance: if the class saw no refill or flush since the last
    /// call, returns its transfer stack to the slabs and its empty slabs to
    /// the arena. Returns the blocks of other pools found on the stack.
    #[must_use]
    pub fn trim(&self, class: usize, home: Home) -> Chain {
        // Relaxed: a pool that carved its first slab since is active, and
        // this pass would leave it alone anyway. Loom models always look,
        // as for `spare`.
        if !cfg!(loom) && !self.carved.load(Relaxed) {
            return Chain::new();
        }
        let info = &CLASSES[class];
        self.locked(|st| {
            if core::mem::replace(&mut st.active, false) {
                return Chain::new();
            }
            let foreign = st.drain_all(&self.inbox, info, home);
            st.release_empty_slabs(home);
            foreign
        })
    }

    /// `collect`: returns the transfer stack to the slabs, every empty slab
    /// to the arena, and decommits the pages of partial slabs that hold no
    /// live block. Returns the slab pages decommitted and the blocks of
    /// other pools found on the stack.
    pub fn collect(&self, class: usize, home: Home) -> (usize, Chain) {
        let info = &CLASSES[class];
        self.locked(|st| {
            let foreign = st.drain_all(&self.inbox, info, home);
            st.release_empty_slabs(home);
            (st.purge_slabs(info, home), foreign)
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

    /// The pool's counters. Reading them takes the lock without counting
    /// the acquisition, so statistics do not disturb the figures they show.
    pub fn counts(&self) -> CentralCounts {
        let mut counts = self.state.with(|st| CentralCounts {
            slabs: st.slabs,
            empty_slabs: st.partial[0].len(),
            live_blocks: st.live_blocks,
            transfer_blocks: st.transfer_blocks + self.inbox.blocks(),
            cached_blocks: 0,
            purged_pages: st.purged_pages,
            locks: st.locks,
            cross_thread_batches: st.cross_thread_batches,
        });
        counts.cached_blocks = self.cached.load(Relaxed);
        counts
    }
}

mod state;
use state::{CentralState, transfer_cap};
#[cfg(any(test, fuzzing, feature = "invariants"))]
mod check;

#[cfg(all(test, not(loom)))]
mod tests;

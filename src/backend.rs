//! The backend: every structure threads share, below the thread caches
//! (what other allocators call the heap), and the small-block traffic
//! between them and the central pools (refill, flush, give back). The rest
//! is in submodules: `route` (small, large or huge), `shards` (the shards
//! and the threads' homes), `maintain` (maintenance and release-and-retry),
//! `big` (large and huge blocks), `fork`, `stats` and `check`.
//!
//! A [`Backend`] owns the shards and the counters of large and huge blocks.
//! A shard is an arena and its central pool of every size class: each
//! thread has a home shard (spread by [`Backend::assign_arena`]) whose pools it
//! refills from and whose arena it carves slabs and large spans from, so
//! threads with different homes share no slab, no cache line of a block and
//! no lock, unless the program passes blocks between them. A batch a thread
//! flushes goes to the pool that owns its blocks (the arena of their
//! segment), sorted by arena first when it mixes several: a thread's own
//! blocks come back to its own shard, and blocks another thread freed go
//! back to the shard that allocated them, into that pool's inbox without
//! its lock (see `inbox`).
//!
//! The heap routes a request by size and alignment ([`route`]): small
//! requests are blocks of a size class (the thread cache asks the central
//! pools for batches), large ones are page spans carved from an arena, huge
//! ones are direct mappings. `Backend` is an ordinary value: the global
//! allocator keeps one in a static (all zero bytes, so it costs no
//! initialised data and only the pages of the shards in use are ever
//! touched), tests build their own.
//!
//! Out of memory: when a request fails because an `mmap` failed (address
//! space under `ulimit -v`, or the kernel's overcommit limit), the heap
//! releases everything it holds that can be unmapped (the central pools'
//! cached batches and empty slabs, the arenas' empty segments, the huge
//! cache) and retries the request once ([`Backend::release_for_retry`], the
//! one place that does so, used by `refill` and `alloc_big`); only then
//! does it return null.
//!
//! Maintenance runs without a thread of its own: every slow path calls
//! [`Backend::tick`], which reads a coarse clock and, at most once per half
//! purge delay, trims idle classes and decommits the free pages whose delay
//! has passed. [`Backend::collect`] does all of it at once.
//!
//! Lock order: the assignment lock, then central pools (one at a time, or
//! all of them in shard and class order for `fork`), then arenas, then the
//! huge-mapping cache.

use crate::block::{BlockList, Chain};
use crate::central::Refill;
use crate::huge::Huge;
use crate::poison;
use crate::size_class::CLASSES;
use crate::slab::Slab;
use crate::sync::{
    AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Lock, Ordering, array_of, const_fn,
};
use core::ptr;

/// Most shards (arenas) a heap can have.
#[cfg(not(loom))]
pub const MAX_ARENAS: usize = 64;
#[cfg(loom)]
pub const MAX_ARENAS: usize = 2;
const _: () = assert!(MAX_ARENAS <= 64, "the used-shard mask is a u64");

/// What a thread cache knows of the arenas of a batch it flushes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owners {
    /// All its blocks belong to one arena.
    One,
    /// They belong to several: the flush sorts them.
    Mixed,
    /// Not looked at: the batch goes to its first block's pool whole (the
    /// path of the blocks a mixed batch's sort leaves over), for the loom
    /// models of that path.
    #[cfg(loom)]
    Unknown,
}

/// Who flushes a batch: a thread's serial (statistics) and its home shard.
#[derive(Clone, Copy, Debug)]
pub struct Sender {
    pub thread: u32,
    pub home: usize,
}

/// Arenas a mixed batch is sorted into at most (the rest stays together).
const SORT_WAYS: usize = 8;

/// The heap behind the thread caches: its shards (an arena and the central
/// pools of its slabs), the huge blocks and the process-wide counters.
/// `repr(C)`, the shards last: the few words every program writes come
/// first, on the page where the first shard starts, and the pages of
/// shards no thread uses stay untouched (not resident).
#[repr(C)]
pub struct Backend {
    /// Shards threads are spread over (0 until the first thread picks one).
    arena_count: AtomicUsize,
    /// Live threads whose home is each shard.
    arena_threads: [AtomicUsize; MAX_ARENAS],
    /// Bit `i`: shard `i` has been a home (shard 0 always counts as used).
    /// Only used shards hold memory; maintenance, statistics and `fork`
    /// visit those alone.
    used: AtomicU64,
    /// Held while a thread picks its home, and across `fork`, so that no
    /// shard becomes used while `fork` takes the locks of the used ones;
    /// guards the shards of the threads that exited, in order.
    assigning: Lock<Exits>,
    /// Serial numbers of thread caches (statistics).
    thread_serials: AtomicU32,
    huge: Huge,
    /// Bytes of live large spans.
    large_bytes: AtomicUsize,
    /// When maintenance is next due, and whether a thread is running it.
    next_maintenance: AtomicU32,
    maintaining: AtomicBool,
    /// Raised by `collect`: thread caches flush when they see it change.
    epoch: AtomicU32,
    /// Thread caches in use.
    threads: AtomicUsize,
    shards: [Shard; MAX_ARENAS],
}

impl Default for Backend {
    fn default() -> Self {
        Self::new()
    }
}

impl Backend {
    const_fn! {
        pub fn new() -> Self {
            Self {
                arena_count: AtomicUsize::new(0),
                arena_threads: array_of!(MAX_ARENAS, AtomicUsize::new(0)),
                used: AtomicU64::new(0),
                assigning: Lock::new(Exits::new()),
                thread_serials: AtomicU32::new(0),
                huge: Huge::new(),
                large_bytes: AtomicUsize::new(0),
                next_maintenance: AtomicU32::new(0),
                maintaining: AtomicBool::new(false),
                epoch: AtomicU32::new(0),
                threads: AtomicUsize::new(0),
                shards: array_of!(MAX_ARENAS, Shard::new()),
            }
        }
    }

    /// Publishes a change of `delta` blocks of `class` in a thread cache
    /// whose home is `home`.
    pub fn publish_cached(&self, class: usize, delta: isize, home: usize) {
        self.shards[home].central[class].publish_cached(delta);
    }

    /// Blocks of `class` for a thread cache whose home is `home` (see
    /// `Central::refill`); empty when out of memory.
    ///
    /// Reuse before touching: blocks already written come first, from the
    /// home pool, then from the pools of shards that are no live thread's
    /// home (`Central::take_resident`, `Central::take_spare`), and only then
    /// blocks never handed out (past a slab's bump pointer, or a new slab),
    /// whose pages are not touched yet. So a thread that takes over the work
    /// of exited ones of other homes reuses what they freed instead of
    /// touching new pages. A shard with a live thread is never taken from:
    /// two live threads that exchange no block never receive one cache line
    /// (`capi/tests/line_sharing.rs`). Blocks taken from another shard stay
    /// its pool's: freed, they go back to it.
    pub fn refill(&self, class: usize, ask: Refill, home: usize) -> Chain {
        debug_assert!(
            (self.used.load(Ordering::Relaxed) | 1) & (1 << home) != 0,
            "arena {home} is no thread's home"
        );
        let central = &self.shards[home].central[class];
        self.retry_after_release(
            || {
                // No shard to take written blocks from after home's: home's
                // fresh blocks come next, under the same lock.
                let spare = self.spare_shards(home).next().is_some();
                let got = central.take_resident(class, ask, self.home(home), !spare);
                if !got.is_empty() {
                    return got;
                }
                if spare {
                    let got = self.take_spare(class, ask, home);
                    if !got.is_empty() {
                        return got;
                    }
                }
                central.refill(class, ask, self.home(home))
            },
            Chain::is_empty,
        )
    }

    /// The shards other than `home` in use that are no live thread's home
    /// (a snapshot): the ones [`Backend::take_spare`] takes from.
    fn spare_shards(&self, home: usize) -> impl Iterator<Item = (usize, &Shard)> {
        self.used_shards()
            .filter(move |&(i, _)| i != home && self.arena_threads[i].load(Ordering::Relaxed) == 0)
    }

    /// Written blocks of `class` from the pool of a shard other than
    /// `home` that no live thread calls home, if one has any (see
    /// [`Backend::refill`]).
    fn take_spare(&self, class: usize, ask: Refill, home: usize) -> Chain {
        for (i, shard) in self.spare_shards(home) {
            let got = shard.central[class].take_spare(class, ask, self.home(i));
            if !got.is_empty() {
                return got;
            }
        }
        Chain::new()
    }

    /// Takes back a batch of blocks of `class` flushed by thread `thread`.
    /// A batch of one arena goes to that arena's pool whole. A batch known
    /// to be mixed (from a thread that frees blocks allocated by several
    /// others: a consumer of several producers) is sorted by arena first,
    /// one batch per pool, so that each pool's transfer stack holds its own
    /// blocks and they go back to the threads that allocated them. A batch
    /// whose owners are unknown goes to its first block's pool whole (its
    /// other blocks are sorted out when they go back to their slabs).
    ///
    /// A batch of one arena that is not the flushing thread's goes into
    /// that pool's inbox, without its lock, while the inbox has room.
    pub fn flush(&self, class: usize, list: Chain, owners: Owners, by: Sender) {
        match owners {
            Owners::Mixed => self.flush_sorted(class, list, by),
            Owners::One => self.flush_to_first(class, list, by, true),
            #[cfg(loom)]
            Owners::Unknown => self.flush_to_first(class, list, by, false),
        }
    }

    /// Flushes `list` to the pool of its first block; through its inbox if
    /// `pure` (every block is that pool's) and the pool is another shard's.
    fn flush_to_first(&self, class: usize, list: Chain, by: Sender, pure: bool) {
        let Some(first) = list.first() else {
            return;
        };
        // SAFETY: the blocks of a flushed batch are live blocks of this heap.
        let owner = unsafe { Self::owner_of(first.cast()) };
        let central = &self.shards[owner].central[class];
        let list = if pure && owner != by.home {
            match central.put_remote(list) {
                Ok(()) => return,
                Err(list) => list,
            }
        } else {
            list
        };
        let foreign = central.flush(class, list, by.thread, self.home(owner));
        self.give_back(class, foreign);
    }

    /// Sorts `list` by arena (into at most [`SORT_WAYS`] parts; blocks of
    /// further arenas stay together) and flushes each part to its pool.
    fn flush_sorted(&self, class: usize, mut list: Chain, by: Sender) {
        let mut parts: [(usize, BlockList); SORT_WAYS] =
            array_of!(SORT_WAYS, (usize::MAX, BlockList::new()));
        let mut rest = BlockList::new();
        while let Some(b) = list.pop() {
            // SAFETY: the blocks of a flushed batch are live blocks of this
            // heap; each moves from `list` to one part.
            unsafe {
                let owner = Self::owner_of(b.cast());
                match parts
                    .iter_mut()
                    .find(|(o, _)| *o == owner || *o == usize::MAX)
                {
                    Some((o, part)) => {
                        *o = owner;
                        part.push_back(b);
                    }
                    None => rest.push_back(b),
                }
            }
        }
        for (_, part) in parts {
            self.flush_to_first(class, part.into_chain(), by, true);
        }
        self.flush_to_first(class, rest.into_chain(), by, false);
    }

    /// Puts every block of `list` (of `class`) back on its slab, pool by
    /// pool, one lock at a time.
    pub fn give_back(&self, class: usize, mut list: Chain) {
        while let Some(first) = list.first() {
            // SAFETY: the blocks on `list` are live blocks of this heap.
            let owner = unsafe { Self::owner_of(first.cast()) };
            let central = &self.shards[owner].central[class];
            list = central.free_blocks(class, list, self.home(owner));
        }
    }

    /// One block of `class` without a thread cache; null when out of memory.
    pub fn alloc_block(&self, class: usize, home: usize) -> *mut u8 {
        self.tick();
        let p = self
            .refill(class, Refill::new(1), home)
            .pop()
            .map_or(ptr::null_mut(), |b| b.cast());
        poison::unpoison(p, || {
            CLASSES[class].size as usize * usize::from(!p.is_null())
        });
        p
    }

    /// Whether `p`, a block of `class` handed out by this heap at some
    /// point, is free in the central pool that owns it (see
    /// [`Central::holds`]).
    ///
    /// # Safety
    /// `p` must be a block of a slab of `class` in a live segment.
    pub unsafe fn holds_free(&self, class: usize, p: *const u8) -> bool {
        // SAFETY: by contract.
        let (owner, slab) = unsafe { (Self::owner_of(p), Slab::of_block(p)) };
        self.shards[owner].central[class].holds(p, slab)
    }

    /// Frees one block of `class` without a thread cache.
    ///
    /// # Safety
    /// `p` must be a live block of `class` from this heap.
    pub unsafe fn free_block(&self, class: usize, p: *mut u8) {
        self.tick();
        let mut list = Chain::new();
        // SAFETY: the caller gives up `p`, a live block of `class`.
        unsafe { list.push(p.cast()) };
        self.give_back(class, list);
    }
}

mod big;
mod fork;
mod maintain;
mod route;
mod shards;
#[cfg(not(loom))]
pub use route::copy_small;
use route::is_large;
pub use route::{LARGE_LIMIT, Route, route};
use shards::{Exits, Shard};
#[cfg(any(test, fuzzing, feature = "invariants"))]
mod check;
#[cfg(any(fuzzing, feature = "invariants"))]
pub use check::BackendCheck;
#[cfg(any(test, fuzzing, feature = "invariants"))]
pub use check::CacheCounts;
mod stats;

#[cfg(all(test, not(loom)))]
mod tests;

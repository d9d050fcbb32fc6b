//! The backend: every structure threads share, below the thread caches
//! (what other allocators call the heap). Large and huge blocks,
//! statistics and checks are in `backend/big.rs`, `backend/stats.rs` and
//! `backend/check.rs`.
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

use crate::arena::Arena;
use crate::block::{BlockList, Chain};
use crate::central::{Central, Home, Refill};
use crate::config;
use crate::huge::Huge;
use crate::layout::SEGMENT_SIZE;
use crate::os::{self, align_up};
use crate::poison;
use crate::segment::SegmentRef;
use crate::size_class::{CLASSES, NUM_CLASSES, SMALL_LIMIT, SizeClass, size_class};
use crate::slab::Slab;
use crate::sync::{
    AtomicBool, AtomicU32, AtomicU64, AtomicUsize, CachePadded, Lock, Ordering, array_of, const_fn,
};
use core::ptr;

/// Most shards (arenas) a heap can have.
#[cfg(not(loom))]
pub const MAX_ARENAS: usize = 64;
#[cfg(loom)]
pub const MAX_ARENAS: usize = 2;
/// Shards per CPU: threads spread over them, so that two threads running at
/// once rarely share one (and with it slabs and locks).
const ARENAS_PER_CPU: usize = 2;

const _: () = assert!(MAX_ARENAS <= 64, "the used-shard mask is a u64");

/// What a thread cache knows of the arenas of a batch it flushes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owners {
    /// All its blocks belong to one arena.
    One,
    /// They belong to several: the flush sorts them.
    Mixed,
    /// Not looked at (a whole bin at thread exit).
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

/// Largest request served from an arena's pages; above it, a mapping.
pub const LARGE_LIMIT: usize = SEGMENT_SIZE / 2;

/// Where a request of a given size and alignment is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// A block of this size class.
    Small(SizeClass),
    /// A span of pages in an arena.
    Large,
    /// A direct mapping.
    Huge,
}

/// Routes `size` bytes at `align`: both must come from a valid `Layout`
/// (so rounding `size` up to `align` cannot overflow).
#[inline(always)]
pub fn route(size: usize, align: usize) -> Route {
    let rounded = align_up(size, align);
    if rounded <= SMALL_LIMIT {
        Route::Small(size_class(rounded))
    } else if rounded <= LARGE_LIMIT {
        Route::Large
    } else {
        Route::Huge
    }
}

/// Copies a small block's contents to a block of another class: the whole
/// of `class`, the smaller of the two, when that is short enough to copy
/// inline, else the `len` bytes the program asked for.
///
/// # Safety
/// `dst` and `src` must be distinct live small blocks of at least the size
/// of `class`, and `len` must not exceed it.
#[cfg(not(loom))]
#[inline(always)]
#[cfg_attr(feature = "hardened", allow(dead_code))]
pub unsafe fn copy_small(dst: *mut u8, src: *const u8, class: usize, len: usize) {
    let size = CLASSES[class].size as usize;
    if size <= crate::block::INLINE_COPY {
        // SAFETY: both blocks hold at least `size` bytes (contract).
        unsafe { crate::block::copy_contents(dst, src, size) }
    } else {
        // SAFETY: both blocks hold at least `len <= size` bytes.
        unsafe { ptr::copy_nonoverlapping(src, dst, len) }
    }
}

/// Routes a request that is known not to be small.
#[inline]
fn is_large(size: usize, align: usize) -> bool {
    align_up(size, align) <= LARGE_LIMIT
}

/// An arena and the central pools of its slabs, one per class.
struct Shard {
    arena: CachePadded<Arena>,
    central: [CachePadded<Central>; NUM_CLASSES],
}

impl Shard {
    const_fn! {
        fn new() -> Self {
            Self {
                arena: CachePadded::new(Arena::new()),
                central: array_of!(NUM_CLASSES, CachePadded::new(Central::new())),
            }
        }
    }
}

/// The shards of the last threads that exited, oldest first (a ring).
struct Exits {
    shards: [u8; EXITS],
    oldest: usize,
    len: usize,
}

/// Exits remembered; older ones are forgotten.
const EXITS: usize = 64;
const _: () = assert!(MAX_ARENAS <= u8::MAX as usize);

impl Exits {
    const fn new() -> Self {
        Self {
            shards: [0; EXITS],
            oldest: 0,
            len: 0,
        }
    }

    fn push(&mut self, shard: usize) {
        if self.len == EXITS {
            self.oldest = (self.oldest + 1) % EXITS;
            self.len -= 1;
        }
        self.shards[(self.oldest + self.len) % EXITS] = shard as u8;
        self.len += 1;
    }

    fn pop_oldest(&mut self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let shard = self.shards[self.oldest];
        self.oldest = (self.oldest + 1) % EXITS;
        self.len -= 1;
        Some(usize::from(shard))
    }
}

pub struct Backend {
    shards: [Shard; MAX_ARENAS],
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
                shards: array_of!(MAX_ARENAS, Shard::new()),
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
            }
        }
    }

    /// Registers a new thread cache; returns the shard it should use. A new
    /// thread takes the place of the thread that exited longest ago, if
    /// that leaves the shards balanced (its shard has at most one thread
    /// more than the emptiest); otherwise the shard with the fewest live
    /// threads, lowest index first. A thread that replaces one that exited
    /// thus takes over its shard and the memory it holds (rather than
    /// mapping fresh segments in another), and threads replaced in turn (a
    /// pool of workers, a thread handing its data to the next) each take
    /// over their own predecessor's, not another one's.
    pub fn assign_arena(&self) -> usize {
        self.threads.fetch_add(1, Ordering::Relaxed);
        self.assigning.with(|exits| {
            let arenas = &self.arena_threads[..self.arenas_in_use()];
            let count = |i: usize| arenas[i].load(Ordering::Relaxed);
            let fewest = (0..arenas.len()).min_by_key(|&i| count(i)).unwrap_or(0);
            let home = match exits.pop_oldest() {
                Some(i) if i < arenas.len() && count(i) <= count(fewest) + 1 => i,
                _ => fewest,
            };
            arenas[home].fetch_add(1, Ordering::Relaxed);
            self.used.fetch_or(1 << home, Ordering::Relaxed);
            home
        })
    }

    /// A new serial number for a thread cache (statistics tell a thread's
    /// own batches from other threads' by it).
    pub fn thread_serial(&self) -> u32 {
        self.thread_serials.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The thread cache of arena `home` was flushed for good (its thread
    /// exited).
    pub fn thread_exited(&self, home: usize) {
        self.threads.fetch_sub(1, Ordering::Relaxed);
        self.assigning.with(|exits| {
            self.arena_threads[home].fetch_sub(1, Ordering::Relaxed);
            exits.push(home);
        });
    }

    /// The shards in use, with their indexes.
    fn used_shards(&self) -> impl Iterator<Item = (usize, &Shard)> {
        let used = self.used.load(Ordering::Relaxed) | 1;
        self.shards
            .iter()
            .enumerate()
            .filter(move |(i, _)| used & (1 << i) != 0)
    }

    /// Shard `index` as the home of its central pools.
    fn home(&self, index: usize) -> Home<'_> {
        Home {
            arena: &self.shards[index].arena,
            index,
        }
    }

    /// The shard owning block `b` (the arena of its segment).
    ///
    /// # Safety
    /// `b` must be a live small or large block of this heap.
    #[inline]
    pub unsafe fn owner_of(b: *const u8) -> usize {
        // SAFETY: by contract `b` lies in a live segment.
        unsafe { SegmentRef::of(b) }.arena()
    }

    fn arenas_in_use(&self) -> usize {
        let mut count = self.arena_count.load(Ordering::Relaxed);
        if count == 0 {
            count = (os::cpu_count() * ARENAS_PER_CPU).clamp(1, MAX_ARENAS);
            self.arena_count.store(count, Ordering::Relaxed);
        }
        count
    }

    /// Called on every slow path: runs maintenance when it is due. Returns
    /// the current time ([`os::now_ms`]).
    #[inline]
    pub fn tick(&self) -> u32 {
        let now = os::now_ms();
        if os::reached(now, self.next_maintenance.load(Ordering::Relaxed))
            && !self.maintaining.swap(true, Ordering::Acquire)
        {
            // Another thread may have run a pass between the load above and
            // the swap; the swap read its release, so its deadline shows.
            if os::reached(now, self.next_maintenance.load(Ordering::Relaxed)) {
                let period = (config::purge_delay_ms() / 2).max(1);
                self.next_maintenance
                    .store(now.wrapping_add(period), Ordering::Relaxed);
                self.maintain(now);
            }
            self.maintaining.store(false, Ordering::Release);
        }
        now
    }

    /// Trims idle classes and purges the free pages that are due.
    #[cold]
    fn maintain(&self, now: u32) {
        for (index, shard) in self.used_shards() {
            for (class, central) in shard.central.iter().enumerate() {
                let foreign = central.trim(class, self.home(index));
                self.give_back(class, foreign);
            }
        }
        for (_, shard) in self.used_shards() {
            shard.arena.purge_expired(now);
        }
        self.huge.cache.purge_expired(now);
    }

    /// Returns every free page to the OS now: transfer stacks to slabs,
    /// empty slabs to arenas, free pages of sparse slabs and of segments
    /// decommitted, empty segments unmapped. Thread caches flush at their
    /// next slow path (the caller flushes its own first).
    pub fn collect(&self) {
        self.return_cached_blocks();
        for (_, shard) in self.used_shards() {
            shard.arena.trim();
        }
        self.huge.cache.release_all();
    }

    /// Asks every thread cache to flush at its next slow path, and moves
    /// the central pools' cached batches back to their slabs, empty slabs
    /// back to their arenas.
    fn return_cached_blocks(&self) {
        self.epoch.fetch_add(1, Ordering::Relaxed);
        for (index, shard) in self.used_shards() {
            for (class, central) in shard.central.iter().enumerate() {
                let (_, foreign) = central.collect(class, self.home(index));
                self.give_back(class, foreign);
            }
        }
        // Blocks given back to a shard collected before them may have left
        // a slab empty there: a second pass releases it. (Other threads may
        // be flushing meanwhile: what their batches brought goes home too.)
        for (index, shard) in self.used_shards() {
            for (class, central) in shard.central.iter().enumerate() {
                let (_, foreign) = central.collect(class, self.home(index));
                self.give_back(class, foreign);
            }
        }
    }

    /// A request failed, because an `mmap` did: unmaps what the heap holds
    /// without need (cached blocks go back to their slabs and empty slabs
    /// to their arenas, then every empty segment and every cached huge
    /// run is unmapped), so that a retry finds the address space and
    /// commit charge they held. Other threads' caches flush at their next
    /// slow path. Unlike `collect`, partly used segments are not purged:
    /// decommitting gives back neither.
    #[cold]
    #[inline(never)]
    pub fn release_for_retry(&self) {
        self.return_cached_blocks();
        for (_, shard) in self.used_shards() {
            shard.arena.release_empty();
        }
        self.huge.cache.release_all();
    }

    /// `attempt()`, and if it `failed`, once more after
    /// [`Backend::release_for_retry`].
    #[inline]
    fn retry_after_release<T>(&self, attempt: impl Fn() -> T, failed: impl Fn(&T) -> bool) -> T {
        let got = attempt();
        if !failed(&got) {
            return got;
        }
        self.release_for_retry();
        attempt()
    }

    /// The collect epoch (see `ThreadCache`).
    pub fn epoch(&self) -> u32 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Publishes a change of `delta` blocks of `class` in a thread cache
    /// whose home is `home`.
    pub fn publish_cached(&self, class: usize, delta: isize, home: usize) {
        self.shards[home].central[class].publish_cached(delta);
    }

    /// Blocks of `class` for a thread cache whose home is `home` (see
    /// `Central::refill`); empty when out of memory.
    pub fn refill(&self, class: usize, ask: Refill, home: usize) -> Chain {
        debug_assert!(
            (self.used.load(Ordering::Relaxed) | 1) & (1 << home) != 0,
            "arena {home} is no thread's home"
        );
        let central = &self.shards[home].central[class];
        self.retry_after_release(
            || central.refill(class, ask, self.home(home)),
            Chain::is_empty,
        )
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
    fn give_back(&self, class: usize, mut list: Chain) {
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

    /// Takes every lock of the heap, in the global lock order (the
    /// assignment lock, central pools, then arenas), so that a `fork`
    /// happens with none held midway. Shards never used have nothing to
    /// lock, and none becomes used meanwhile (the assignment lock is held).
    ///
    /// # Safety
    /// Must be followed by [`Backend::unlock_all`] in the parent and the child.
    #[cfg(not(loom))]
    pub unsafe fn lock_all(&self) {
        // SAFETY: every lock taken here is released by `unlock_all`, which
        // sees the same used shards (none is added while `assigning` is
        // held).
        unsafe {
            self.assigning.force_lock();
            for (_, shard) in self.used_shards() {
                shard.central.iter().for_each(|c| c.fork_lock());
            }
            for (_, shard) in self.used_shards() {
                shard.arena.fork_lock();
            }
            self.huge.cache.fork_lock();
        }
    }

    /// Releases the locks taken by [`Backend::lock_all`].
    ///
    /// # Safety
    /// The locks must be held through `lock_all`.
    #[cfg(not(loom))]
    pub unsafe fn unlock_all(&self) {
        // SAFETY: `lock_all` took exactly these locks.
        unsafe {
            self.huge.cache.fork_unlock();
            for (_, shard) in self.used_shards() {
                shard.arena.fork_unlock();
            }
            for (_, shard) in self.used_shards() {
                shard.central.iter().for_each(|c| c.fork_unlock());
            }
            self.assigning.force_unlock();
        }
    }

    /// In a forked child: only the forking thread exists (its cache's home
    /// is `home`, if it has one), so a maintenance pass another thread was
    /// running will never finish; allow new ones, and count the threads left.
    #[cfg(not(loom))]
    pub fn after_fork_in_child(&self, home: Option<usize>) {
        self.maintaining.store(false, Ordering::Release);
        self.assigning.with(|exits| *exits = Exits::new());
        self.threads
            .store(home.is_some() as usize, Ordering::Relaxed);
        for (i, n) in self.arena_threads.iter().enumerate() {
            n.store((home == Some(i)) as usize, Ordering::Relaxed);
        }
    }

}

mod big;
#[cfg(any(test, fuzzing, feature = "invariants"))]
mod check;
#[cfg(any(fuzzing, feature = "invariants"))]
pub use check::BackendCheck;
#[cfg(any(test, fuzzing, feature = "invariants"))]
pub use check::CacheCounts;
mod stats;

#[cfg(all(test, not(loom)))]
mod tests;

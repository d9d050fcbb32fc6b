//! Thread caches: per thread, per size class, a list of free blocks.
//!
//! The fast paths touch only the calling thread's cache: `pop` is a load of
//! the list head, one branch, and two stores; `push` is one bound check and
//! three stores. No lock, no atomic instruction. When a class's list is empty
//! the cache refills a batch from the central pool; when it reaches its
//! limit, a batch goes back.
//!
//! Limits adapt per class (as in tcmalloc): each refill raises the limit by a
//! batch, up to the class's maximum and within the thread's byte budget, so a
//! thread that allocates and frees in bursts keeps its working set local;
//! repeated overflows lower it again, so a thread that frees far more than it
//! allocates (a consumer) keeps at most about one batch per class.
//!
//! Memory does not linger: the cache is bounded by bytes (the sum of the
//! limits stays within [`BUDGET_BYTES`]), a class that saw no slow-path
//! event for a purge delay gives back half its blocks at the next slow path
//! (a thread that stopped using a class drains it), and `collect` raises an
//! epoch that makes every cache flush at its next slow path. The counts are
//! published to the central pools on slow paths only, for statistics.
//!
//! Invariants: `bins[c]` is a null-terminated list of `count` blocks of
//! class `c`, `count <= limit`; `limit_bytes` is the sum of `limit * size`
//! over the classes, at most `BUDGET_BYTES` plus one batch. A cache that is
//! not `Active` has every limit 0 and every list empty, so both fast paths
//! fall through to the caller's slow path.

use crate::backend::{Backend, Sender};
use crate::block;
#[cfg(all(feature = "prof", not(loom)))]
use crate::block::Chain;
use crate::config;
use crate::os;
use crate::poison;
#[cfg(any(test, fuzzing, feature = "invariants"))]
use crate::size_class::CLASSES;
use crate::size_class::{NUM_CLASSES, SizeClass};

/// Bytes a thread cache may hold across all classes (the sum of limits).
const BUDGET_BYTES: usize = 2 << 20;
/// Bytes of blocks the first refill of a class takes (then whole batches).
const FIRST_REFILL_BYTES: usize = 4096;
/// Overflows tolerated before a class's limit shrinks by a batch.
const MAX_OVERAGES: u8 = 3;

/// Lifecycle of a thread's cache. `Uninit` is 0, so a zero-filled cache
/// (the initial-exec TLS block) reads as not yet set up.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheState {
    /// Never used: the first slow path registers it.
    Uninit = 0,
    /// Being registered (a re-entrant call bypasses the cache).
    #[cfg(not(loom))]
    Registering = 1,
    /// In use: the fast paths take and give blocks.
    Active = 2,
    /// Flushed at thread exit; later calls go straight to the central pool.
    #[cfg(not(loom))]
    Dead = 3,
}

pub struct ThreadCache {
    /// The bins, and the free-list secret (`block::key`) with them (see
    /// `bin::Bins`).
    bins: Bins,
    /// (`prof`) The lowest address the fast `pop` hands out: the
    /// profiler's sampled blocks lie below it (see `bin`); 0 in a
    /// zero-filled cache, set when the cache is activated.
    #[cfg(all(feature = "prof", not(loom)))]
    floor: usize,
    state: CacheState,
    arena: u16,
    /// This cache's serial number (statistics: see `Backend::thread_serial`).
    serial: u32,
    overages: [u8; NUM_CLASSES],
    limit_bytes: usize,
    /// Counts last published to the central pools.
    published: [u32; NUM_CLASSES],
    /// Bit `c`: class `c` took a slow path since the last decay.
    touched: u64,
    /// Bit `c`: class `c` was refilled since the cache was last flushed
    /// (a refill without it is the thread's first of the class).
    refilled: u64,
    /// When the next decay is due.
    next_decay: u32,
    /// The heap's collect epoch this cache last flushed for.
    epoch: u32,
    /// Guard sampling (see `guard`): blocks this thread may still receive
    /// before its next guarded allocation is due (due at zero or below).
    sample_countdown: i64,
    /// The heap profiler's byte countdown (see `prof`).
    #[cfg(all(feature = "prof", not(loom)))]
    prof: ProfState,
    /// Blocks below the split a flush took out of the bins (see
    /// `sampling`), for the caller to free.
    #[cfg(all(feature = "prof", not(loom)))]
    outcasts: Chain,
    /// The hardened build's delayed reuse (see `quarantine`).
    #[cfg(feature = "hardened")]
    quarantine: crate::quarantine::Ring,
}

const _: () = assert!(NUM_CLASSES <= 64);

impl Default for ThreadCache {
    fn default() -> Self {
        Self::new()
    }
}

impl ThreadCache {
    pub const fn new() -> Self {
        Self {
            bins: Bins::new(),
            #[cfg(all(feature = "prof", not(loom)))]
            floor: 1,
            state: CacheState::Uninit,
            arena: 0,
            serial: 0,
            overages: [0; NUM_CLASSES],
            limit_bytes: 0,
            published: [0; NUM_CLASSES],
            touched: 0,
            refilled: 0,
            next_decay: 0,
            epoch: 0,
            sample_countdown: 0,
            #[cfg(all(feature = "prof", not(loom)))]
            prof: ProfState::new(),
            #[cfg(all(feature = "prof", not(loom)))]
            outcasts: Chain::new(),
            #[cfg(feature = "hardened")]
            quarantine: crate::quarantine::Ring::new(),
        }
    }

    /// The bin of `class` (slow paths: checked).
    #[inline(always)]
    fn bin(&mut self, class: usize) -> Bin<'_> {
        self.bins.bin(class)
    }

    /// The bin of `class` (fast paths: no bounds check, the type says the
    /// index is in range).
    #[inline(always)]
    fn bin_of(&mut self, class: SizeClass) -> Bin<'_> {
        self.bins.bin_of(class)
    }

    /// Fast path: a cached block of `class`, or null (see `Bin::pop`).
    #[inline(always)]
    pub fn pop(&mut self, class: SizeClass) -> *mut u8 {
        #[cfg(all(feature = "prof", not(loom)))]
        let b = {
            let floor = self.floor;
            self.bin_of(class).pop(floor)
        };
        #[cfg(not(all(feature = "prof", not(loom))))]
        let b = self.bin_of(class).pop();
        if !b.is_null() {
            poison::unpoison(b.cast(), || class.info().size as usize);
        }
        b.cast()
    }

    /// The C door's fast path: the head of `class`'s bin, taken if its link
    /// leads into its own segment (see `Bin::pop_near`); else left in the
    /// bin for the caller to check and take ([`FarHead`]).
    #[cfg(not(loom))]
    #[inline(always)]
    pub fn pop_near(&mut self, class: SizeClass) -> NearPop<'_> {
        #[cfg(feature = "prof")]
        let floor = self.floor;
        let bin = self.bin_of(class);
        #[cfg(feature = "prof")]
        let popped = bin.pop_near(floor);
        #[cfg(not(feature = "prof"))]
        let popped = bin.pop_near();
        if let NearPop::Taken(b) = popped {
            poison::unpoison(b, || class.info().size as usize);
        }
        popped
    }

    /// Fast path: caches `p` (a block of `class`) unless the bin is full.
    ///
    /// # Safety
    /// `p` must be a live block of `class` that the caller gives up.
    #[inline(always)]
    pub unsafe fn push(&mut self, class: SizeClass, p: *mut u8) -> bool {
        let mut bin = self.bin_of(class);
        poison::poison(p, || class.info().size as usize);
        // SAFETY: forwarded contract. A bin has room only after `activate`
        // set the key.
        let pushed = unsafe { bin.push(p) };
        if !pushed {
            poison::unpoison(p, || class.info().size as usize);
        }
        pushed
    }

    /// Whether `p`, a block of at least 8 bytes, reads as a free block
    /// (`block::looks_free`) with this cache's key: `free`'s double-free
    /// check before [`ThreadCache::push`]. Before the cache is activated
    /// the key is 0 and the answer means nothing; such a cache has no
    /// room, and the caller's slow path checks again with the secret.
    ///
    /// # Safety
    /// `p` must point to at least 8 readable bytes.
    #[cfg(not(loom))]
    #[inline(always)]
    #[cfg_attr(feature = "hardened", allow(dead_code))]
    pub unsafe fn looks_free(&self, p: *const u8) -> bool {
        // SAFETY: forwarded contract.
        unsafe { block::looks_free_keyed(p, self.bins.key) }
    }

    /// The block a `pop` of `class` would return (null if none): for the
    /// loom models.
    #[cfg(loom)]
    pub fn head(&self, class: SizeClass) -> *mut u8 {
        self.bins.head(class.index()).cast()
    }

    /// Whether `p` is among the cached blocks of `class` (a walk: double
    /// free confirmation only).
    pub fn holds(&self, class: usize, p: *const u8) -> bool {
        self.bins.holds(class, p)
    }

    /// Quarantines `p` (a live small block of `class` given up by the
    /// program) and returns the block that leaves the quarantine, with its
    /// class, for the caller to free for real.
    ///
    /// # Safety
    /// As for `quarantine::Ring::put`.
    #[cfg(feature = "hardened")]
    #[inline]
    pub unsafe fn quarantine(
        &mut self,
        p: *mut u8,
        class: SizeClass,
    ) -> Option<(*mut u8, SizeClass)> {
        // SAFETY: forwarded contract.
        unsafe { self.quarantine.put(p, class) }
    }

    /// Whether `p` is in this thread's quarantine (double-free
    /// confirmation).
    #[cfg(feature = "hardened")]
    pub fn quarantine_holds(&self, p: *const u8) -> bool {
        self.quarantine.holds(p)
    }

    /// Checks the blocks in this thread's quarantine for writes after free
    /// (at process exit: see `global`).
    #[cfg(feature = "hardened")]
    pub fn check_quarantine(&self) {
        self.quarantine.check_all();
    }

    pub fn state(&self) -> CacheState {
        self.state
    }

    pub fn set_state(&mut self, state: CacheState) {
        self.state = state;
    }

    /// This cache as the sender of a flush.
    fn sender(&self) -> Sender {
        Sender {
            thread: self.serial,
            home: self.arena(),
        }
    }

    /// The lowest address the fast `pop` hands out (see `bin`).
    #[cfg(all(feature = "prof", not(loom)))]
    #[inline(always)]
    pub fn floor(&self) -> usize {
        self.floor
    }

    /// The arena this thread carves new slabs and large spans from.
    pub fn arena(&self) -> usize {
        self.arena as usize
    }

    /// Starts caching, with new memory from arena `arena` of `heap`.
    pub fn activate(&mut self, heap: &Backend, arena: usize) {
        self.bins.key = block::key();
        #[cfg(all(feature = "prof", not(loom)))]
        {
            self.floor = bin::floor();
        }
        self.arena = arena as u16;
        self.serial = heap.thread_serial();
        self.state = CacheState::Active;
        self.epoch = heap.epoch();
        self.next_decay = os::now_ms().wrapping_add(config::purge_delay_ms());
        self.sample_countdown = first_countdown(self.serial, config::guard_sample());
    }

    /// Checks the invariants at the top of this file: every bin a
    /// null-terminated list of `count <= limit` blocks of its class (checked
    /// against their slabs, under `heap`'s locks), the limits summed in
    /// `limit_bytes`, an inactive cache empty. Returns the blocks cached and
    /// the counts last published, per class, for `Backend::check`.
    #[cfg(any(test, fuzzing, feature = "invariants"))]
    pub fn check(&self, heap: &Backend) -> crate::backend::CacheCounts {
        let mut counts = [0; NUM_CLASSES];
        let mut limit_bytes = 0;
        for class in 0..NUM_CLASSES {
            let what = "thread cache bin";
            let (count, limit) = (self.bins.count(class), self.bins.limit(class));
            assert!(
                count <= limit,
                "class {class}: {count} cached over the limit {limit}"
            );
            assert!(
                self.state == CacheState::Active || limit == 0,
                "class {class}: inactive cache with a limit"
            );
            block::check_chain(what, self.bins.head(class), count, |b| {
                // The profiler's sampled blocks freed into the bin are not
                // the heap's (see `bin::scrub`).
                #[cfg(all(feature = "prof", not(loom)))]
                if !fast_block(b, self.floor) && !crate::registry::in_segment(b.cast()) {
                    return;
                }
                heap.check_block(class, b.cast(), what)
            });
            counts[class] = count;
            limit_bytes += limit as usize * CLASSES[class].size as usize;
        }
        assert_eq!(limit_bytes, self.limit_bytes, "thread cache: limit bytes");
        let batch_max = CLASSES
            .iter()
            .map(|c| c.batch as usize * c.size as usize)
            .max();
        assert!(
            limit_bytes <= BUDGET_BYTES + batch_max.unwrap_or(0),
            "thread cache: over budget"
        );
        crate::backend::CacheCounts {
            cached: counts,
            published: self.published,
        }
    }

    /// Blocks and bytes currently cached (for tests).
    #[cfg(test)]
    pub fn cached(&self) -> (usize, usize) {
        (0..NUM_CLASSES).fold((0, 0), |(n, bytes), class| {
            let count = self.bins.count(class) as usize;
            (n + count, bytes + count * CLASSES[class].size as usize)
        })
    }
}

mod bin;
mod sampling;
mod slow;
#[cfg(all(feature = "prof", not(loom)))]
pub use bin::MAX_BUDGET;
use bin::{Bin, Bins};
#[cfg(not(loom))]
pub use bin::{FarHead, NearPop};
#[cfg(all(feature = "prof", not(loom)))]
pub use bin::{SPLIT, fast_block, floor, set_floor};
use sampling::first_countdown;
#[cfg(all(feature = "prof", not(loom)))]
pub use sampling::{ProfState, admit_foreign};

#[cfg(all(test, not(loom)))]
mod tests;

//! The thread cache's share of sampling: the guard sampler's block
//! countdown (see `guard`: a thread's next slow-path allocation is guarded
//! when it reaches zero) and the heap profiler's countdowns and random
//! state (see `prof`, which gives them their behaviour). Both live in the
//! cache so that they cost the fast paths nothing. The guard countdown and
//! the profiler's byte countdown of large blocks are read and counted down
//! on slow paths only; the profiler's per-class budgets (allocations of a
//! class before the next one its slow path must see) are in the bins'
//! words, counted down by `pop` in the same instruction as the count
//! (`bin`).
//!
//! The `prof` build also keeps here the blocks below the split that a
//! flush found in a bin (`outcasts`: sampled blocks that `GlobalAlloc`'s
//! free pushed), for the caller above to hand to the profiler; and the
//! switch that says whether bins may hold such blocks at all (no walk
//! before the profiler's pool exists).

use super::ThreadCache;
#[cfg(all(not(loom), not(feature = "prof")))]
use crate::backend::Backend;
#[cfg(all(feature = "prof", not(loom)))]
use crate::block::Chain;
#[cfg(not(loom))]
use crate::config;
#[cfg(all(feature = "prof", not(loom)))]
use crate::size_class::NUM_CLASSES;
#[cfg(all(feature = "prof", not(loom)))]
use crate::sync::Ordering::{Acquire, Release};
#[cfg(all(feature = "prof", not(loom)))]
use crate::sync::unmodeled::AtomicBool;

/// Allocations and frees per cached block between two walks of a thread's
/// cache for the profiler's sampled blocks (see `ThreadCache::note_ops`).
#[cfg(all(feature = "prof", not(loom)))]
const SCRUB_RATIO: u64 = 4;

/// Whether a bin may hold blocks below the split (set once the profiler's
/// pool exists; see `bin::scrub`).
#[cfg(all(feature = "prof", not(loom)))]
static FOREIGN: AtomicBool = AtomicBool::new(false);

/// Bins may hold blocks below the split from now on (the profiler's pool
/// was reserved there): flushes look for them.
#[cfg(all(feature = "prof", not(loom)))]
pub fn admit_foreign() {
    FOREIGN.store(true, Release);
}

/// The heap profiler's per-thread state (its byte countdown and random
/// state), kept here so a thread's cache holds it; `prof` gives it its
/// behaviour. All zero: not started.
#[cfg(all(feature = "prof", not(loom)))]
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct ProfState {
    /// Bytes before the next sample; 0 until the first draw.
    pub(crate) countdown: i64,
    /// xorshift64* state; 0 until seeded.
    pub(crate) rng: u64,
    /// The profiler's generation the bins' budgets were drawn for.
    pub(crate) generation: u32,
    /// Allocations and frees since the cache was last walked for sampled
    /// blocks freed into it, and how many it takes for the next walk (see
    /// [`ThreadCache::note_ops`]).
    pub(crate) ops_since_scrub: u64,
    pub(crate) scrub_due: u64,
}

#[cfg(all(feature = "prof", not(loom)))]
impl ProfState {
    pub const fn new() -> Self {
        Self {
            countdown: 0,
            rng: 0,
            generation: 0,
            ops_since_scrub: 0,
            scrub_due: 0,
        }
    }
}

impl ThreadCache {
    /// Whether this thread's next allocation on a slow path is due to be
    /// guarded (sampling is on and the countdown reached zero).
    #[cfg(not(loom))]
    #[inline]
    pub fn sample_due(&self) -> bool {
        self.sample_countdown <= 0 && config::guard_sample() != 0
    }

    /// A sample was taken (a guarded block handed out, or none because the
    /// pool had no room): the next is due after about a period's blocks
    /// (at once with a period of 1: every allocation).
    #[cfg(not(loom))]
    pub fn sampled(&mut self) {
        let period = config::guard_sample();
        if period > 1 {
            self.sample_countdown += i64::from(period);
        }
    }

    /// `blocks` blocks were handed to this thread unguarded.
    #[cfg(not(loom))]
    #[inline]
    pub fn count_unguarded(&mut self, blocks: u32) {
        self.sample_countdown -= i64::from(blocks);
    }

    /// [`ThreadCache::refill`] counting the blocks handed to this thread on
    /// the guard sampling countdown (the pointer API's refills; the `prof`
    /// build's go through the profiler, which counts them too).
    #[cfg(all(not(loom), not(feature = "prof")))]
    pub fn refill_counted(&mut self, heap: &Backend, class: usize) -> *mut u8 {
        let p = self.refill(heap, class);
        self.count_unguarded(self.bins.count(class) + u32::from(!p.is_null()));
        p
    }

    /// The heap profiler's countdown (see `prof`).
    #[cfg(all(feature = "prof", not(loom)))]
    pub fn prof_state(&mut self) -> &mut ProfState {
        &mut self.prof
    }

    /// The profiler's budget of `class`: allocations of the class the fast
    /// path may still hand out before the slow path must see one (0: the
    /// next allocation is the profiler's, see `prof`).
    #[cfg(all(feature = "prof", not(loom)))]
    pub fn budget(&self, class: usize) -> u64 {
        self.bins.budget(class)
    }

    /// Sets the profiler's budget of `class` (at most `bin::MAX_BUDGET`).
    #[cfg(all(feature = "prof", not(loom)))]
    pub fn set_budget(&mut self, class: usize, budget: u64) {
        self.bin(class).set_budget(budget);
    }

    /// Blocks of `class` cached.
    #[cfg(all(feature = "prof", not(loom)))]
    pub fn cached_in(&self, class: usize) -> u32 {
        self.bins.count(class)
    }

    /// The head of `class`'s bin, whatever it is (null if empty): on a
    /// slow path, what the fast `pop` refused.
    #[cfg(all(feature = "prof", not(loom)))]
    pub fn first(&self, class: usize) -> *mut u8 {
        self.bins.head(class).cast()
    }

    /// Takes the head of `class`'s bin (there is one), charging the budget
    /// if `charge`, else taking it out of the cache (a sampled block found
    /// there).
    #[cfg(all(feature = "prof", not(loom)))]
    pub fn take_first(&mut self, class: usize, charge: bool) -> *mut u8 {
        // SAFETY: the bin holds a block (the caller's word: "there is one").
        let b = unsafe { self.bin(class).take_head(charge) };
        let size = crate::size_class::CLASSES[class].size as usize;
        crate::poison::unpoison(b.cast(), || size);
        b.cast()
    }

    /// Moves the blocks below the split among the first `n` blocks of
    /// `class` (all with `u32::MAX`) to the outcasts, if bins may hold any.
    #[cfg(all(feature = "prof", not(loom)))]
    pub(super) fn scrub(&mut self, class: usize, n: u32) {
        if !FOREIGN.load(Acquire) {
            return;
        }
        let floor = self.floor;
        let mut out = core::mem::take(&mut self.outcasts);
        self.bin(class).scrub(n, &mut out, floor);
        self.outcasts = out;
    }

    /// Moves the profiler's sampled blocks waiting in the bins of
    /// `classes` (a bit per class; see `prof::scrub_cache`) to the
    /// outcasts, if bins may hold any: a walk of those bins.
    #[cfg(all(feature = "prof", not(loom)))]
    pub fn scrub_classes(&mut self, classes: u64) {
        for class in 0..crate::size_class::NUM_CLASSES {
            if classes & (1 << class) != 0 && self.bins.count(class) != 0 {
                self.scrub(class, u32::MAX);
            }
        }
    }

    /// Blocks this cache holds.
    #[cfg(all(feature = "prof", not(loom)))]
    pub fn cached_blocks(&self) -> usize {
        (0..NUM_CLASSES).map(|c| self.bins.count(c) as usize).sum()
    }

    /// Counts `n` allocations or frees of this thread (see
    /// [`ThreadCache::scrub_due`]). Called by the profiler's sample slow
    /// path (the allocations a class's budget stands for) and by overflows
    /// (the blocks flushed).
    #[cfg(all(feature = "prof", not(loom)))]
    pub fn note_ops(&mut self, n: u64) {
        let st = &mut self.prof;
        st.ops_since_scrub = st.ops_since_scrub.saturating_add(n);
    }

    /// Whether it is time to set aside the profiler's sampled blocks
    /// waiting in the bins ([`ThreadCache::scrub_classes`]): once the
    /// thread has made [`SCRUB_RATIO`] times as many allocations and frees
    /// as the cache holds blocks since the last time. A sampled block that
    /// `GlobalAlloc`'s free pushed is known freed only when its bin gives
    /// it back (the next `pop` of its class, or a flush); until then its
    /// sample counts as live, and the bottom of a bin that no `pop`
    /// reaches (a thread that frees a class it does not allocate) would
    /// keep such samples for good. True restarts the count.
    #[cfg(all(feature = "prof", not(loom)))]
    pub fn scrub_due(&mut self) -> bool {
        if !FOREIGN.load(Acquire) {
            return false;
        }
        let st = &self.prof;
        if st.ops_since_scrub < st.scrub_due {
            return false;
        }
        let cached = self.cached_blocks() as u64;
        if self.prof.ops_since_scrub < SCRUB_RATIO * cached {
            self.prof.scrub_due = SCRUB_RATIO * cached;
            return false;
        }
        self.prof.ops_since_scrub = 0;
        self.prof.scrub_due = 0;
        true
    }

    /// Whether a flush set blocks aside (see [`ThreadCache::take_outcasts`]).
    #[cfg(all(feature = "prof", not(loom)))]
    #[inline]
    pub fn has_outcasts(&self) -> bool {
        !self.outcasts.is_empty()
    }

    /// The blocks below the split that flushes took out of the bins (the
    /// profiler's sampled blocks, freed; or heap blocks below the split):
    /// the caller frees each where it belongs.
    #[cfg(all(feature = "prof", not(loom)))]
    pub fn take_outcasts(&mut self) -> Chain {
        core::mem::take(&mut self.outcasts)
    }
}

/// A thread's first countdown: somewhere in `1..=period`, spread by its
/// serial, so threads do not all guard their first allocations; 0 (due at
/// once) with a period of 1 (or 0: off).
pub(super) fn first_countdown(serial: u32, period: u32) -> i64 {
    if period <= 1 {
        return 0;
    }
    let spread = u64::from(serial).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    (spread % u64::from(period)) as i64 + 1
}

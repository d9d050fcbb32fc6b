//! The thread cache's share of sampling: the guard sampler's block
//! countdown (see `guard`: a thread's next slow-path allocation is guarded
//! when it reaches zero) and the heap profiler's byte countdown and random
//! state (see `prof`, which gives them their behaviour). Both live in the
//! cache so that they cost the fast paths nothing: they are read and
//! counted down on slow paths only.

use super::ThreadCache;
#[cfg(not(loom))]
use crate::backend::Backend;
#[cfg(not(loom))]
use crate::config;

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
}

#[cfg(all(feature = "prof", not(loom)))]
impl ProfState {
    pub const fn new() -> Self {
        Self {
            countdown: 0,
            rng: 0,
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
    /// the guard sampling countdown (the pointer API's refills).
    #[cfg(not(loom))]
    pub fn refill_counted(&mut self, heap: &Backend, class: usize) -> *mut u8 {
        let p = self.refill(heap, class);
        self.count_unguarded(self.bins[class].count + u32::from(!p.is_null()));
        p
    }

    /// The heap profiler's countdown (see `prof`).
    #[cfg(all(feature = "prof", not(loom)))]
    pub fn prof_state(&mut self) -> &mut ProfState {
        &mut self.prof
    }

    /// Blocks of `class` cached.
    #[cfg(all(feature = "prof", not(loom)))]
    pub fn cached_in(&self, class: usize) -> u32 {
        self.bins[class].count
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

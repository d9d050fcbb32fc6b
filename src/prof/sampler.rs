//! Which allocations are sampled: each thread's countdowns.
//!
//! An allocation of `s` bytes is sampled with probability `1 - exp(-s/T)`
//! (T the mean sample interval), independently of every other one, and a
//! sample stands for `s / (1 - exp(-s/T))` bytes and `1 / (1 - exp(-s/T))`
//! objects (the weights tcmalloc and jemalloc's pprof use): the live,
//! peak and cumulative profiles are unbiased estimates whatever the
//! program does, however often it reuses the blocks it freed.
//!
//! Small allocations: each thread cache bin has a *budget*, the number of
//! allocations of its class the fast path hands out before the one that is
//! sampled, drawn from the geometric distribution of parameter
//! `1 - exp(-s/T)` (the same law as counting down an exponentially
//! distributed number of bytes, per class). The fast `pop` counts it down
//! in the instruction that counts the bin's blocks (see `tcache::bin`), and
//! the allocation that finds it at 0 takes the slow path, here, which
//! samples it and draws the next budget. While profiling is off, budgets
//! are [`OFF_BUDGET`]: a slow path every 65,536 allocations of a class,
//! where a thread notices that profiling was turned on (it also notices at
//! any slow path, through [`GENERATION`]).
//!
//! Large and huge allocations (slow paths already) count down an
//! exponentially distributed number of bytes per thread; the allocation
//! during which it crosses zero is sampled.
//!
//! Invariants: `ThreadState` is the calling thread's (in its thread cache);
//! all zero bytes is its initial value ("no countdown drawn yet").

use super::INTERVAL;
use crate::backend::Backend;
use crate::size_class::CLASSES;
use crate::sync::Ordering::Relaxed;
use crate::sync::unmodeled::AtomicU32;
use crate::tcache::{MAX_BUDGET, ThreadCache, fast_block};

/// A bin's budget while profiling is off.
pub const OFF_BUDGET: u64 = 1 << 16;

/// Raised by every activation and deactivation: a thread whose state
/// holds another value draws its budgets again at its next slow path.
pub static GENERATION: AtomicU32 = AtomicU32::new(0);

/// A thread's countdown and random state, kept in its thread cache (the
/// type is `tcache`'s, so the cache needs nothing of this module; its
/// behaviour is here).
pub use crate::tcache::ProfState as ThreadState;

impl ThreadState {
    /// A random 64-bit word.
    fn next_u64(&mut self) -> u64 {
        if self.rng == 0 {
            self.rng = seed(self as *const Self as u64);
        }
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// An exponentially distributed countdown of mean the interval, at
    /// least 1.
    fn draw(&mut self) -> i64 {
        let mean = INTERVAL.load(Relaxed).max(1) as f64;
        // Uniform in (0, 1): 53 random bits, offset by half a step.
        let u = ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let bytes = -u.ln() * mean;
        (bytes as i64).clamp(1, i64::MAX / 2)
    }

    /// Allocations of `size` bytes before the one that is sampled:
    /// geometric of parameter `1 - exp(-size/T)` (an exponential number of
    /// bytes, rounded down to whole allocations).
    fn draw_budget(&mut self, size: usize) -> u64 {
        let mean = INTERVAL.load(Relaxed).max(1) as f64;
        let u = ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let n = -u.ln() * mean / size.max(1) as f64;
        (n as u64).min(MAX_BUDGET)
    }

    /// The countdown, drawn at the first use.
    fn countdown(&mut self) -> i64 {
        if self.countdown == 0 {
            self.countdown = self.draw();
        }
        self.countdown
    }
}

/// A seed from the thread's address, the clock and a process counter.
fn seed(salt: u64) -> u64 {
    static COUNTER: crate::sync::unmodeled::AtomicU64 = crate::sync::unmodeled::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Relaxed);
    let mut x =
        salt ^ (u64::from(crate::os::now_ms()) << 32) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64's finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (x ^ (x >> 31)) | 1
}

/// Gives every bin of `tc` a budget: drawn if profiling is on, else
/// [`OFF_BUDGET`] (a thread cache's start, or a change of state).
pub fn draw_budgets(tc: &mut ThreadCache) {
    let generation = GENERATION.load(Relaxed);
    let active = super::is_active();
    tc.prof_state().generation = generation;
    for (class, info) in CLASSES.iter().enumerate() {
        let budget = if active {
            tc.prof_state().draw_budget(info.size as usize)
        } else {
            OFF_BUDGET
        };
        tc.set_budget(class, budget);
    }
}

/// The slow path of a small allocation of `class` (the thread cache is
/// active): first the sampled blocks freed into the bin (`GlobalAlloc`'s
/// free pushes them; the fast `pop` refuses them) go back to the profiler;
/// then, if the class's budget is spent, this allocation is sampled (a
/// block of the profiler's pool) and the next budget drawn; else a block
/// of the bin or of a refill, charged to the budget. `size` and `align`
/// are the request (the class size and its natural alignment through
/// `GlobalAlloc`); `guard_counted` charges a refill on the guard countdown
/// too (the pointer API); `above` is the caller's stack pointer (see
/// `stack`).
#[inline(never)]
pub fn alloc_small(
    tc: &mut ThreadCache,
    heap: &Backend,
    class: usize,
    size: usize,
    align: usize,
    guard_counted: bool,
    above: usize,
) -> *mut u8 {
    if tc.prof_state().generation != GENERATION.load(Relaxed) {
        draw_budgets(tc);
    }
    loop {
        let head = tc.first(class);
        if head.is_null() || fast_block(head.cast(), tc.floor()) || !super::owns(head) {
            break;
        }
        let p = tc.take_first(class, false);
        super::release(p);
    }
    let block = CLASSES[class].size as usize;
    if tc.budget(class) == 0 {
        let active = super::is_active();
        let next = if active {
            tc.prof_state().draw_budget(block)
        } else {
            OFF_BUDGET
        };
        tc.set_budget(class, next);
        // The allocations that budget stands for; now and then, the
        // sampled blocks freed into this cache's bins go back to the pool
        // (only the bins of the classes the pool's records name).
        tc.note_ops(next.saturating_add(1));
        if tc.scrub_due() {
            super::scrub_cache(tc);
        }
        if active {
            let p = super::record(block, size.max(block), align, false, above);
            if !p.is_null() {
                return p;
            }
        }
    }
    if !tc.first(class).is_null() {
        // A heap block below the split (an unusual address-space layout).
        return tc.take_first(class, true);
    }
    let p = tc.refill(heap, class);
    if !p.is_null() {
        tc.set_budget(class, tc.budget(class).saturating_sub(1));
        if guard_counted {
            tc.count_unguarded(tc.cached_in(class) + 1);
        }
    }
    p
}

/// Whether a large or huge allocation of `size` bytes is sampled: if
/// profiling is on and it crosses the thread's byte countdown (the caller
/// allocates it as usual, then records it: `record_big`).
pub fn big_due(tc: &mut ThreadCache, size: usize) -> bool {
    if tc.prof_state().generation != GENERATION.load(Relaxed) {
        draw_budgets(tc);
    }
    grown(tc, size)
}

/// `bytes` more of large or huge blocks: a new one, or an unsampled one
/// that grew where it lies (so a block of any history is sampled with the
/// probability of its size), charged on the thread's byte countdown; true
/// if it crosses and profiling is on (the block is to be sampled now).
pub fn grown(tc: &mut ThreadCache, bytes: usize) -> bool {
    if !super::is_active() {
        return false;
    }
    let st = tc.prof_state();
    let left = st.countdown().saturating_sub(bytes as i64);
    if left > 0 {
        st.countdown = left;
        return false;
    }
    st.countdown = st.draw();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdowns_average_the_interval() {
        let mut st = ThreadState::new();
        let n = 20_000;
        let sum: f64 = (0..n).map(|_| st.draw() as f64).sum();
        let mean = sum / f64::from(n);
        let want = INTERVAL.load(Relaxed) as f64;
        assert!((mean / want - 1.0).abs() < 0.05, "mean {mean} want {want}");
    }
}

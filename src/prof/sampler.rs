//! Which allocations are sampled: each thread's byte countdown.
//!
//! A thread counts down an exponentially distributed number of bytes (mean
//! the sample interval T); the allocation during which the count crosses
//! zero is sampled, so an allocation of `s` bytes is sampled with
//! probability `1 - exp(-s/T)` whatever came before, and a sample stands
//! for `s / (1 - exp(-s/T))` bytes and `1 / (1 - exp(-s/T))` objects (the
//! weights tcmalloc and jemalloc's pprof use).
//!
//! The countdown is charged on slow paths only, so the fast paths pay
//! nothing: a thread cache refill charges the blocks it hands to the cache,
//! and hands over at most the blocks before the crossing, so the crossing
//! allocation finds the cache empty and is sampled here; a large or huge
//! allocation charges its size. A block freed to a thread cache and handed
//! out again from it is not charged a second time: the live and peak
//! profiles stay unbiased for a heap that grows from fresh blocks, and the
//! cumulative (`alloc_*`) profile counts the blocks that came from the
//! central pools rather than every allocation.
//!
//! Invariants: `ThreadState` is the calling thread's (in its thread cache);
//! all zero bytes is its initial value ("no countdown drawn yet").

use super::{INTERVAL, record};
use crate::backend::Backend;
use crate::size_class::CLASSES;
use crate::sync::Ordering::Relaxed;
use crate::tcache::ThreadCache;

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
    static COUNTER: crate::sync::unmodeled::AtomicU64 =
        crate::sync::unmodeled::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Relaxed);
    let mut x =
        salt ^ (u64::from(crate::os::now_ms()) << 32) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64's finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (x ^ (x >> 31)) | 1
}

/// The weights of a sample of `bytes` at interval `interval`: the objects
/// and the bytes it stands for.
pub fn weights(bytes: usize, interval: u64) -> (f64, f64) {
    let s = bytes.max(1) as f64;
    let p = -(-s / interval.max(1) as f64).exp_m1();
    if p <= 0.0 {
        return (1.0, s);
    }
    (1.0 / p, s / p)
}

/// The slow path of a small allocation of `class` while profiling is on
/// (the thread cache is active and empty for `class`): a sampled block when
/// this allocation crosses the countdown, else a refill of at most the
/// blocks before the crossing. `size` and `align` are the request (the
/// class size and its natural alignment through `GlobalAlloc`);
/// `guard_counted` charges the refill on the guard countdown too (the
/// pointer API); `above` is the caller's stack pointer (see `stack`).
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
    let block = CLASSES[class].size as usize;
    let countdown = tc.prof_state().countdown();
    if countdown <= block as i64 {
        let st = tc.prof_state();
        st.countdown = st.draw();
        let p = record(block, size.max(block), align, false, above);
        if !p.is_null() {
            return p;
        }
    }
    let countdown = tc.prof_state().countdown();
    // The allocations before the one that crosses zero.
    let before = ((countdown - 1) / block as i64).clamp(1, i64::from(u32::MAX)) as u32;
    let p = tc.refill_capped(heap, class, before);
    let handed = tc.cached_in(class) + u32::from(!p.is_null());
    if guard_counted {
        tc.count_unguarded(handed);
    }
    tc.prof_state().countdown -= i64::from(handed) * block as i64;
    if tc.prof_state().countdown == 0 {
        // Zero reads as "not drawn": due at the next slow path anyway.
        tc.prof_state().countdown = 1;
    }
    p
}

/// A large or huge allocation while profiling is on: a sampled block if it
/// crosses the countdown (null otherwise, or if the pool cannot take it);
/// `above` is the caller's stack pointer (see `stack`).
#[inline(never)]
pub fn alloc_big(
    tc: &mut ThreadCache,
    size: usize,
    align: usize,
    zero: bool,
    above: usize,
) -> *mut u8 {
    let st = tc.prof_state();
    let left = st.countdown().saturating_sub(size as i64);
    if left > 0 {
        st.countdown = left;
        return core::ptr::null_mut();
    }
    st.countdown = st.draw();
    record(size, size, align, zero, above)
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

    #[test]
    fn weights_scale_small_and_large_samples() {
        let (objects, space) = weights(32, 512 * 1024);
        assert!((space / (512.0 * 1024.0) - 1.0).abs() < 0.001, "{space}");
        assert!((objects * 32.0 / space - 1.0).abs() < 1e-9);
        let (objects, space) = weights(64 << 20, 512 * 1024);
        assert!((objects - 1.0).abs() < 1e-9 && (space - (64 << 20) as f64).abs() < 1.0);
    }
}

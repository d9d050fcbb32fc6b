//! The weights of a sample: how many objects and bytes of the heap one
//! sampled block stands for (Horvitz-Thompson: one over the probability
//! that it was sampled), and how they change when it is resized. Pure
//! arithmetic, shared by the sampler and the profiler's records.

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

/// The weights of a sampled block resized from `old` to `new` bytes,
/// whose weight in objects was `objects` (one over the probability that it
/// is sampled): growing, it would have been sampled had the growth crossed
/// the countdown, so that probability becomes `1 - (1 - p) exp(-grown/T)`;
/// shrinking, it stays. The bytes it stands for are `new` over it.
pub fn reweigh(old: usize, new: usize, objects: f64, interval: u64) -> (f64, f64) {
    let p = 1.0 / objects.max(1.0);
    let p = if new > old {
        let stay = (-((new - old) as f64) / interval.max(1) as f64).exp();
        1.0 - (1.0 - p) * stay
    } else {
        p
    };
    (1.0 / p, new as f64 / p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_raises_the_probability_shrinking_keeps_it() {
        let t = 512 * 1024;
        let (o, _) = weights(1000, t);
        // Grown to 100 KiB: as likely sampled as a 100 KiB block.
        let (o2, s2) = reweigh(1000, 100 * 1024, o, t);
        let (want, want_space) = weights(100 * 1024, t);
        assert!((o2 / want - 1.0).abs() < 1e-9 && (s2 / want_space - 1.0).abs() < 1e-9);
        let (o3, s3) = reweigh(100 * 1024, 50 * 1024, o2, t);
        assert!((o3 - o2).abs() < 1e-12 && (s3 - 50.0 * 1024.0 * o2).abs() < 1e-6);
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

//! A small deterministic PRNG (SplitMix64) so that every allocator sees the
//! same sequence of sizes and operations for the same seed.

/// SplitMix64 generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`; different seeds give unrelated streams.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ 0x5851_F42D_4C95_7F2D)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// Log-uniform in `lo..=hi` (`0 < lo <= hi`): every power of two in the
    /// range is about equally likely, as object sizes are in real programs.
    pub fn log_uniform(&mut self, lo: usize, hi: usize) -> usize {
        let (l, h) = ((lo as f64).ln(), (hi as f64).ln());
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((l + u * (h - l)).exp() as usize).clamp(lo, hi)
    }

    /// Pareto-like in `lo..=hi` (`0 < lo < hi`): a truncated Pareto with
    /// shape `alpha`, so small sizes dominate with a long tail up to `hi`.
    pub fn pareto(&mut self, lo: usize, hi: usize, alpha: f64) -> usize {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let tail = (lo as f64 / hi as f64).powf(alpha);
        let x = lo as f64 / (1.0 - u * (1.0 - tail)).powf(1.0 / alpha);
        (x as usize).clamp(lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn ranges_hold() {
        let mut r = Rng::new(7);
        for _ in 0..10_000 {
            assert!(r.below(10) < 10);
            let x = r.range(16, 512);
            assert!((16..=512).contains(&x));
            let y = r.log_uniform(64, 65_536);
            assert!((64..=65_536).contains(&y));
            let z = r.pareto(8, 1024, 1.0);
            assert!((8..=1024).contains(&z));
        }
    }

    #[test]
    fn pareto_is_mostly_small() {
        let mut r = Rng::new(3);
        let small = (0..10_000).filter(|_| r.pareto(8, 1024, 1.0) < 64).count();
        assert!(small > 8_000, "{small}");
    }

    #[test]
    fn deterministic() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(1);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(1);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
    }
}

//! `churn`: each thread keeps 4,096 live blocks and replaces a random one
//! per step with a new block of a random size (mostly small, some up to
//! 32 KiB), checking the old block before freeing it. All frees are local.

use super::block::{check, filled};
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Workload, on_threads};

pub const WORKLOAD: Workload = Workload {
    name: "churn",
    about: "each thread replaces random blocks among 4,096 live ones (16 B..32 KiB); size = steps per thread",
    threads: super::as_asked,
    sizes: Sizes {
        smoke: 20_000,
        quick: 6_000_000,
        full: 24_000_000,
    },
    run,
};

const SLOTS: usize = 4096;

fn size_of_step(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=79 => rng.range(16, 256),
        80..=97 => rng.range(257, 4096),
        _ => rng.range(4097, 32 * 1024),
    }
}

fn run(p: &Params) -> Outcome {
    let checksum = on_threads(p.threads, |t| {
        let mut rng = Rng::new(100 + t as u64);
        let mut slots: Vec<(Vec<u8>, u64)> = Vec::with_capacity(SLOTS);
        for i in 0..SLOTS as u64 {
            slots.push((filled(size_of_step(&mut rng), i), i));
        }
        let mut sum = 0u64;
        for step in 0..p.size {
            let tag = step + SLOTS as u64;
            let slot = rng.below(SLOTS);
            let new = (filled(size_of_step(&mut rng), tag), tag);
            let (old, old_tag) = std::mem::replace(&mut slots[slot], new);
            sum = sum.wrapping_add(check(&old, old_tag));
        }
        for (b, tag) in &slots {
            sum = sum.wrapping_add(check(b, *tag));
        }
        sum
    });
    Outcome {
        checksum,
        ..Outcome::default()
    }
}

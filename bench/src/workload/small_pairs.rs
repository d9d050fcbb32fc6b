//! `small-pairs`: the allocation fast path. One thread allocates a small
//! block (8..=512 bytes), fills it, checks it and frees it at once, `size`
//! times.

use super::block::{check_all, filled};
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Workload};
use std::hint::black_box;

pub const WORKLOAD: Workload = Workload {
    name: "small-pairs",
    about: "alloc+fill+free of one 8..512 B block at a time, single thread; size = pairs",
    threads: super::one,
    sizes: Sizes {
        smoke: 20_000,
        quick: 8_000_000,
        full: 32_000_000,
    },
    run,
};

fn run(p: &Params) -> Outcome {
    let mut rng = Rng::new(1);
    let mut sum = 0u64;
    for i in 0..p.size {
        let size = 8 * rng.range(1, 64);
        let b = black_box(filled(size, i));
        sum = sum.wrapping_add(check_all(&b, i));
    }
    Outcome {
        checksum: sum,
        ..Outcome::default()
    }
}

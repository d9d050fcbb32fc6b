//! `large-blocks`: page-run and huge allocations. One thread keeps 32 live
//! blocks and replaces a random one per step with a zeroed block of
//! 16 KiB..8 MiB (log-uniform), then writes one byte in every 4 KiB page
//! (so the memory is really used) and checks them before freeing.

use super::block::mix;
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Workload};

pub const WORKLOAD: Workload = Workload {
    name: "large-blocks",
    about: "replace random blocks among 32 live ones, 16 KiB..8 MiB zeroed + one write per page; size = steps",
    threads: super::one,
    sizes: Sizes {
        smoke: 100,
        quick: 6_000,
        full: 24_000,
    },
    run,
};

const LIVE: usize = 32;
const PAGE: usize = 4096;

fn make(rng: &mut Rng, tag: u64) -> (Vec<u8>, u64) {
    let mut b = vec![0u8; rng.log_uniform(16 * 1024, 8 * 1024 * 1024)];
    let byte = (tag as u8) | 1;
    for i in (0..b.len()).step_by(PAGE) {
        b[i] = byte;
    }
    (b, tag)
}

fn check(b: &[u8], tag: u64) -> u64 {
    let byte = (tag as u8) | 1;
    for i in (0..b.len()).step_by(PAGE) {
        assert!(
            b[i] == byte && (i + 1 == b.len() || b[i + 1] == 0),
            "large block of {} bytes changed",
            b.len()
        );
    }
    mix(b.len() as u64 ^ tag)
}

fn run(p: &Params) -> Outcome {
    let mut rng = Rng::new(500);
    let mut live: Vec<(Vec<u8>, u64)> = (0..LIVE as u64).map(|t| make(&mut rng, t)).collect();
    let mut sum = 0u64;
    for step in 0..p.size {
        let slot = rng.below(LIVE);
        let new = make(&mut rng, step + LIVE as u64);
        let (old, tag) = std::mem::replace(&mut live[slot], new);
        sum = sum.wrapping_add(check(&old, tag));
    }
    for (b, tag) in &live {
        sum = sum.wrapping_add(check(b, *tag));
    }
    Outcome {
        checksum: sum,
        ..Outcome::default()
    }
}

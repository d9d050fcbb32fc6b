//! `realloc-grow`: C-style buffer growth. One thread keeps 16 buffers and
//! grows a random one at a time by 8..=128 bytes with `reserve_exact`, so
//! every append is a `realloc` (free when the allocator can grow in place
//! or has slack, a copy otherwise). A buffer that reaches its target size
//! (64 B..64 KiB, log-uniform) is checked and replaced.

use super::block::mix;
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Workload};

pub const WORKLOAD: Workload = Workload {
    name: "realloc-grow",
    about: "grow 16 buffers by 8..128 B per realloc up to 64 B..64 KiB; size = buffers completed",
    threads: super::one,
    sizes: Sizes {
        smoke: 200,
        quick: 40_000,
        full: 160_000,
    },
    run,
};

const LIVE: usize = 16;

struct Buf {
    data: Vec<u8>,
    target: usize,
    hash: u64,
}

impl Buf {
    fn new(rng: &mut Rng) -> Self {
        Buf {
            data: Vec::new(),
            target: rng.log_uniform(64, 64 * 1024),
            hash: 0,
        }
    }

    /// Checks the contents against the running hash of what was appended.
    fn check(&self) -> u64 {
        let mut h = 0u64;
        for chunk in self.data.chunk_by(|a, b| a == b) {
            h = mix(h ^ ((chunk.len() as u64) << 8 | u64::from(chunk[0])));
        }
        assert_eq!(h, self.hash, "buffer of {} bytes changed", self.data.len());
        h
    }
}

fn run(p: &Params) -> Outcome {
    let mut rng = Rng::new(400);
    let mut bufs: Vec<Buf> = (0..LIVE).map(|_| Buf::new(&mut rng)).collect();
    let mut done = 0u64;
    let mut sum = 0u64;
    let mut step = 0u8;
    while done < p.size {
        let b = &mut bufs[rng.below(LIVE)];
        let n = rng.range(8, 128);
        // Consecutive appends to a buffer use different bytes, so the
        // run-length hash in `check` sees each append as one run.
        step = step.wrapping_add(1).max(1);
        if b.data.last() == Some(&step) {
            step = step.wrapping_add(1).max(1);
        }
        b.data.reserve_exact(n);
        b.data.resize(b.data.len() + n, step);
        b.hash = mix(b.hash ^ ((n as u64) << 8 | u64::from(step)));
        if b.data.len() >= b.target {
            sum = sum.wrapping_add(b.check());
            *b = Buf::new(&mut rng);
            done += 1;
        }
    }
    Outcome {
        checksum: sum,
        ..Outcome::default()
    }
}

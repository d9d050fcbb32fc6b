//! `sh6bench`: batches of many objects freed in LIFO and in other orders.
//! Each thread repeatedly allocates a batch of 2,000 objects of 1..=1000
//! bytes and frees the whole batch, cycling through three orders:
//! last-allocated first (LIFO), first-allocated first (FIFO), and every
//! other object first, then the rest in reverse.
//!
//! Operations: per batch, its objects and the vector holding them are each
//! allocated and freed once.

use super::block::{check, filled};
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Tally, Workload, on_threads};

pub const WORKLOAD: Workload = Workload {
    name: "sh6bench",
    about: "batches of 2,000 objects of 1..1000 B freed LIFO, FIFO or interleaved; size = batches per thread",
    threads: super::as_asked,
    sizes: Sizes {
        smoke: 20,
        quick: 6_000,
        full: 24_000,
    },
    group: super::Group::Main,
    scaling: Some(super::as_asked),
    run,
};

const BATCH: u64 = 2000;

fn run(p: &Params) -> Outcome {
    on_threads(p.threads, |t| {
        let mut rng = Rng::new(60 + t as u64);
        let mut sum = 0u64;
        for round in 0..p.size {
            let base = round * BATCH;
            let mut batch: Vec<Option<(Vec<u8>, u64)>> = (0..BATCH)
                .map(|i| Some((filled(rng.range(1, 1000), base + i), base + i)))
                .collect();
            let mut free = |slot: &mut Option<(Vec<u8>, u64)>| {
                if let Some((b, tag)) = slot.take() {
                    sum = sum.wrapping_add(check(&b, tag));
                }
            };
            match round % 3 {
                0 => batch.iter_mut().rev().for_each(&mut free),
                1 => batch.iter_mut().for_each(&mut free),
                _ => {
                    batch.iter_mut().step_by(2).for_each(&mut free);
                    batch.iter_mut().rev().for_each(&mut free);
                }
            }
        }
        Tally {
            checksum: sum,
            ops: p.size * (2 * BATCH + 2),
        }
    })
    .into()
}

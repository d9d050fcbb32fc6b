//! `rptest`: random sizes from 16 B to 16 KiB (log-uniform) with realloc
//! growth over a bounded live set. Each thread keeps 2,048 slots; each
//! step picks a random slot and either grows its block with `realloc` (to
//! at most twice its size and 16 KiB; a quarter of the steps) or frees it
//! and allocates a new one.
//!
//! Operations: a grow is one realloc (the block's capacity is its length,
//! so `reserve_exact` always reallocates), a replacement an allocation and
//! a free; plus the initial blocks, their final frees and the slot vector.

use super::block::{check, fill_byte, filled};
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Tally, Workload, on_threads};

pub const WORKLOAD: Workload = Workload {
    name: "rptest",
    about: "2,048 live slots per thread, 16 B..16 KiB blocks replaced or grown by realloc (to at most 2x); size = steps per thread",
    threads: super::as_asked,
    sizes: Sizes {
        smoke: 20_000,
        quick: 2_000_000,
        full: 8_000_000,
    },
    group: super::Group::Main,
    scaling: Some(super::as_asked),
    run,
};

const SLOTS: usize = 2048;
const MAX: usize = 16 * 1024;

fn run(p: &Params) -> Outcome {
    on_threads(p.threads, |t| {
        let mut rng = Rng::new(70 + t as u64);
        let mut tag = (t as u64) << 40;
        let mut slots: Vec<(Vec<u8>, u64)> = Vec::with_capacity(SLOTS);
        for _ in 0..SLOTS {
            slots.push((filled(rng.log_uniform(16, MAX), tag), tag));
            tag += 1;
        }
        let mut sum = 0u64;
        // The slot vector and the initial blocks.
        let mut ops = 1 + SLOTS as u64;
        for _ in 0..p.size {
            let (block, block_tag) = &mut slots[rng.below(SLOTS)];
            let len = block.len();
            if rng.below(4) == 0 && len < MAX {
                let new_len = rng.range(len + 1, (2 * len).min(MAX));
                block.reserve_exact(new_len - len);
                block.resize(new_len, fill_byte(*block_tag));
                ops += 1;
            } else {
                let new = filled(rng.log_uniform(16, MAX), tag);
                let old = std::mem::replace(block, new);
                sum = sum.wrapping_add(check(&old, *block_tag));
                *block_tag = tag;
                tag += 1;
                ops += 2;
            }
        }
        let checksum = slots
            .iter()
            .fold(sum, |s, (b, tag)| s.wrapping_add(check(b, *tag)));
        // The blocks and the slot vector are freed on return.
        Tally {
            checksum,
            ops: ops + SLOTS as u64 + 1,
        }
    })
    .into()
}

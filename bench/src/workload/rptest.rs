//! `rptest`: random sizes from 16 B to 16 KiB (log-uniform) with realloc
//! growth over a bounded live set. Each thread keeps 2,048 slots; each
//! step picks a random slot and either grows its block with `realloc` (to
//! at most twice its size and 16 KiB; a quarter of the steps) or frees it
//! and allocates a new one.

use super::block::{check, fill_byte, filled};
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Workload, on_threads};

pub const WORKLOAD: Workload = Workload {
    name: "rptest",
    about: "2,048 live slots per thread, 16 B..16 KiB blocks replaced or grown by realloc (to at most 2x); size = steps per thread",
    threads: super::as_asked,
    sizes: Sizes {
        smoke: 20_000,
        quick: 2_000_000,
        full: 8_000_000,
    },
    run,
};

const SLOTS: usize = 2048;
const MAX: usize = 16 * 1024;

fn run(p: &Params) -> Outcome {
    let checksum = on_threads(p.threads, |t| {
        let mut rng = Rng::new(70 + t as u64);
        let mut tag = (t as u64) << 40;
        let mut slots: Vec<(Vec<u8>, u64)> = Vec::with_capacity(SLOTS);
        for _ in 0..SLOTS {
            slots.push((filled(rng.log_uniform(16, MAX), tag), tag));
            tag += 1;
        }
        let mut sum = 0u64;
        for _ in 0..p.size {
            let (block, block_tag) = &mut slots[rng.below(SLOTS)];
            let len = block.len();
            if rng.below(4) == 0 && len < MAX {
                let new_len = rng.range(len + 1, (2 * len).min(MAX));
                block.reserve_exact(new_len - len);
                block.resize(new_len, fill_byte(*block_tag));
            } else {
                let new = filled(rng.log_uniform(16, MAX), tag);
                let old = std::mem::replace(block, new);
                sum = sum.wrapping_add(check(&old, *block_tag));
                *block_tag = tag;
                tag += 1;
            }
        }
        slots
            .iter()
            .fold(sum, |s, (b, tag)| s.wrapping_add(check(b, *tag)))
    });
    Outcome {
        checksum,
        ..Outcome::default()
    }
}

//! `large`: big blocks with realloc. One thread keeps 8 blocks of
//! 64 KiB..32 MiB (log-uniform); each step picks one and either replaces
//! it with a new block or reallocs it to a new random size (growing or
//! shrinking), writing every byte it gains, so page faults and the reuse
//! of already-faulted memory count as a real program would see them.
//!
//! Operations: a replacement is an allocation and a free, a grow or a
//! shrink one realloc (a block's capacity is its length, so both always
//! reallocate unless the size is unchanged); plus the initial blocks, their
//! final frees and the vector holding them.

use super::block::{check, fill_byte, filled};
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Workload};

pub const WORKLOAD: Workload = Workload {
    name: "large",
    about: "8 live blocks of 64 KiB..32 MiB, replaced or realloc'ed (grow/shrink) with every new byte written; size = steps",
    threads: super::one,
    sizes: Sizes {
        smoke: 40,
        quick: 1_000,
        full: 4_000,
    },
    group: super::Group::Main,
    scaling: None,
    run,
};

const LIVE: usize = 8;

fn size(rng: &mut Rng) -> usize {
    rng.log_uniform(64 * 1024, 32 * 1024 * 1024)
}

fn run(p: &Params) -> Outcome {
    let mut rng = Rng::new(80);
    let mut live: Vec<(Vec<u8>, u64)> = (0..LIVE as u64)
        .map(|t| (filled(size(&mut rng), t), t))
        .collect();
    let mut sum = 0u64;
    let mut ops = 1 + LIVE as u64;
    for step in 0..p.size {
        let (block, tag) = &mut live[rng.below(LIVE)];
        let new_len = size(&mut rng);
        if rng.below(2) == 0 {
            let new_tag = step + LIVE as u64;
            let old = std::mem::replace(block, filled(new_len, new_tag));
            sum = sum.wrapping_add(check(&old, *tag));
            *tag = new_tag;
            ops += 2;
        } else if new_len > block.len() {
            block.reserve_exact(new_len - block.len());
            block.resize(new_len, fill_byte(*tag));
            ops += 1;
        } else {
            ops += u64::from(new_len < block.capacity());
            block.truncate(new_len);
            block.shrink_to_fit();
        }
    }
    let checksum = live
        .iter()
        .fold(sum, |s, (b, tag)| s.wrapping_add(check(b, *tag)));
    Outcome {
        checksum,
        ops: ops + LIVE as u64 + 1,
        ..Outcome::default()
    }
}

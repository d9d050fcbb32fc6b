//! `sp-btree` (a small program): an ordered index of small entries, as a
//! cache or an in-memory table keeps one. Each of six rounds inserts
//! `size` entries (a random `u64` key, a short `String` value of 4..24 B)
//! into a `BTreeMap`, removes a random half of them, inserts as many new
//! ones, runs range queries over the result, and drops it.
//!
//! Operations: the value strings and their frees, the key list and its
//! free. Not counted: the B-tree's nodes, which the code cannot see
//! (about one allocation per eight entries); `tests/ops_count.rs` bounds
//! the difference.

use super::block::mix;
use super::ops::owns;
use super::rng::Rng;
use super::text::{WORD_MAX, fnv, word};
use super::{Group, Outcome, Params, Sizes, Tally, Workload};
use std::collections::BTreeMap;

pub const WORKLOAD: Workload = Workload {
    name: "sp-btree",
    about: "small program: a BTreeMap<u64, String> of small entries; insert all, remove a random half, insert as many again, range queries, drop; 6 rounds; size = entries",
    threads: super::one,
    sizes: Sizes {
        smoke: 1_000,
        quick: 25_000,
        full: 25_000,
    },
    group: Group::Small,
    scaling: None,
    run,
};

/// A value: a few syllables, spelt to `len` bytes at its exact capacity.
fn value(rng: &mut Rng) -> String {
    let mut buf = [0; WORD_MAX];
    let len = rng.range(4, 24);
    let mut s = String::with_capacity(len);
    while s.len() < len {
        let w = word(rng.below(1 << 12) as u64, &mut buf);
        s.push_str(&w[..w.len().min(len - s.len())]);
    }
    s
}

/// Inserts `n` entries with fresh random keys, recording the keys.
fn insert(
    map: &mut BTreeMap<u64, String>,
    keys: &mut Vec<u64>,
    rng: &mut Rng,
    n: usize,
    ops: &mut u64,
) {
    for _ in 0..n {
        let key = rng.next_u64();
        // The value; a repeated key (about never) frees the old one.
        *ops += 1;
        if map.insert(key, value(rng)).is_some() {
            *ops += 1;
        } else {
            keys.push(key);
        }
    }
}

const ROUNDS: u64 = 6;

fn run(p: &Params) -> Outcome {
    let mut rng = Rng::new(180);
    (0..ROUNDS)
        .map(|_| round(&mut rng, p.size as usize))
        .sum::<Tally>()
        .into()
}

fn round(rng: &mut Rng, n: usize) -> Tally {
    let mut ops = 0u64;
    let mut map = BTreeMap::new();
    // Sized for every key it will hold: no growth.
    let mut keys = Vec::with_capacity(n + n / 2);
    ops += owns(keys.capacity());
    insert(&mut map, &mut keys, rng, n, &mut ops);
    // Remove a random half (swap-remove from the key list).
    let mut sum = 0u64;
    for _ in 0..n / 2 {
        let key = keys.swap_remove(rng.below(keys.len()));
        let v = map.remove(&key).expect("a present key");
        sum = sum.wrapping_add(fnv(v.as_bytes()));
        ops += 1;
    }
    insert(&mut map, &mut keys, rng, n / 2, &mut ops);
    // Range queries: the entries in 1,000 random windows of 2^-12 of the
    // key space each.
    for _ in 0..1_000 {
        let lo = rng.next_u64() & !((1 << 52) - 1);
        let hits = map.range(lo..lo.saturating_add(1 << 52));
        sum = hits.fold(sum, |h, (k, v)| h.wrapping_add(mix(k ^ v.len() as u64)));
    }
    let checksum = map
        .iter()
        .fold(sum, |h, (k, v)| h.wrapping_add(mix(*k) ^ fnv(v.as_bytes())));
    // The values and the key list are freed on return.
    ops += map.len() as u64 + owns(keys.capacity());
    Tally { checksum, ops }
}

//! `rust-idioms`: what ordinary Rust code does to an allocator. Each
//! thread repeats rounds of: building and dropping a JSON-like document (a
//! tree of small boxed nodes, strings and vectors); building and dropping a
//! `BTreeMap<String, Vec<u8>>` whose values grow by `push`; churning a
//! `HashMap<u64, String>`; and growing a `Vec` and a `String` by push.
//!
//! Operations: every box, string and vector it creates, every growth of a
//! vector or string (seen as a change of `capacity()`), and their frees.
//! Not counted: the B-tree's nodes and a reallocation inside `format!` when
//! its first guess of the length is short, which the code cannot see, and
//! the hash table's buffer, whose resizes depend on the random hash seed
//! (where removals leave tombstones), so counting them would make the count
//! differ between runs. `tests/ops_count.rs` bounds the difference.

use super::block::mix;
use super::ops::{grew, owns};
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Tally, Workload, on_threads};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

pub const WORKLOAD: Workload = Workload {
    name: "rust-idioms",
    about: "JSON-like trees, BTreeMap<String, Vec<u8>>, HashMap churn, Vec/String growth by push; size = rounds per thread",
    threads: super::as_asked,
    sizes: Sizes {
        smoke: 20,
        quick: 3_000,
        full: 12_000,
    },
    group: super::Group::Main,
    scaling: Some(super::as_asked),
    run,
};

enum Json {
    Null,
    Int(i64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Box<Json>)>),
}

/// A random document; `ops` counts its allocations and their later frees.
fn document(rng: &mut Rng, depth: u32, ops: &mut u64) -> Json {
    let leaf = depth == 0 || rng.below(3) == 0;
    match (leaf, rng.below(3)) {
        (true, 0) => Json::Null,
        (true, 1) => Json::Int(rng.next_u64() as i64),
        (true, _) => {
            *ops += 2;
            Json::Str(format!("value {}", rng.below(1_000_000)))
        }
        (false, 0) => {
            *ops += 2;
            Json::Arr(
                (0..rng.range(1, 8))
                    .map(|_| document(rng, depth - 1, ops))
                    .collect(),
            )
        }
        (false, _) => {
            *ops += 2;
            Json::Obj(
                (0..rng.range(1, 8))
                    .map(|i| {
                        // The key string and the box.
                        *ops += 4;
                        (
                            format!("field_{i}"),
                            Box::new(document(rng, depth - 1, ops)),
                        )
                    })
                    .collect(),
            )
        }
    }
}

fn walk(j: &Json) -> u64 {
    match j {
        Json::Null => 1,
        Json::Int(n) => mix(*n as u64),
        Json::Str(s) => mix(s.len() as u64),
        Json::Arr(v) => v.iter().map(walk).fold(2, u64::wrapping_add),
        Json::Obj(v) => v.iter().fold(3, |s, (k, v)| {
            s.wrapping_add(mix(k.len() as u64)).wrapping_add(walk(v))
        }),
    }
}

fn btree(rng: &mut Rng, ops: &mut u64) -> u64 {
    let mut map: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for _ in 0..200 {
        let mut v = Vec::new();
        for b in 0..rng.below(200) {
            let cap = v.capacity();
            v.push(b as u8);
            *ops += grew(cap, v.capacity());
        }
        // The key; on a repeated key the map keeps its old key, so the new
        // one and the old value are freed.
        *ops += 1;
        if let Some(old) = map.insert(format!("item-{:06}", rng.below(100_000)), v) {
            *ops += 1 + owns(old.capacity());
        }
    }
    map.iter().fold(0u64, |s, (k, v)| {
        // Freed with the map.
        *ops += 1 + owns(v.capacity());
        s.wrapping_add(mix(k.len() as u64 ^ (v.len() as u64) << 8))
    })
}

fn hash_churn(rng: &mut Rng, map: &mut HashMap<u64, String>, ops: &mut u64) -> u64 {
    let mut sum = 0u64;
    for _ in 0..500 {
        let k = rng.below(4096) as u64;
        if rng.below(2) == 0 {
            let old = map.insert(k, format!("entry {k} {}", rng.below(1000)));
            // The string, and a replaced one's free.
            *ops += 1 + u64::from(old.is_some());
        } else if let Some(s) = map.remove(&k) {
            sum = sum.wrapping_add(mix(s.len() as u64));
            *ops += 1;
        }
    }
    sum
}

fn growth(rng: &mut Rng, ops: &mut u64) -> u64 {
    let mut v: Vec<u64> = Vec::new();
    for i in 0..rng.range(1, 5000) {
        let cap = v.capacity();
        v.push(i as u64);
        *ops += grew(cap, v.capacity());
    }
    let mut s = String::new();
    for i in 0..rng.range(1, 200) {
        let cap = s.capacity();
        write!(s, "{i},").unwrap();
        *ops += grew(cap, s.capacity());
    }
    // Both are freed on return.
    *ops += owns(v.capacity()) + owns(s.capacity());
    mix(v.iter().sum::<u64>() ^ s.len() as u64)
}

fn run(p: &Params) -> Outcome {
    on_threads(p.threads, |t| {
        let mut rng = Rng::new(90 + t as u64);
        let mut map = HashMap::new();
        let mut sum = 0u64;
        let mut ops = 0u64;
        for _ in 0..p.size {
            let doc = document(&mut rng, 5, &mut ops);
            sum = sum.wrapping_add(walk(&doc));
            drop(doc);
            sum = sum.wrapping_add(btree(&mut rng, &mut ops));
            sum = sum.wrapping_add(hash_churn(&mut rng, &mut map, &mut ops));
            sum = sum.wrapping_add(growth(&mut rng, &mut ops));
        }
        let checksum = map
            .values()
            .fold(sum, |s, v| s.wrapping_add(mix(v.len() as u64)));
        // The map's strings are freed on return.
        Tally {
            checksum,
            ops: ops + map.len() as u64,
        }
    })
    .into()
}

//! `rust-idioms`: what ordinary Rust code does to an allocator. Each
//! thread repeats rounds of: building and dropping a JSON-like document (a
//! tree of small boxed nodes, strings and vectors); building and dropping a
//! `BTreeMap<String, Vec<u8>>` whose values grow by `push`; churning a
//! `HashMap<u64, String>`; and growing a `Vec` and a `String` by push.

use super::block::mix;
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Workload, on_threads};
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
    run,
};

enum Json {
    Null,
    Int(i64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Box<Json>)>),
}

fn document(rng: &mut Rng, depth: u32) -> Json {
    let leaf = depth == 0 || rng.below(3) == 0;
    match (leaf, rng.below(3)) {
        (true, 0) => Json::Null,
        (true, 1) => Json::Int(rng.next_u64() as i64),
        (true, _) => Json::Str(format!("value {}", rng.below(1_000_000))),
        (false, 0) => Json::Arr(
            (0..rng.range(1, 8))
                .map(|_| document(rng, depth - 1))
                .collect(),
        ),
        (false, _) => Json::Obj(
            (0..rng.range(1, 8))
                .map(|i| (format!("field_{i}"), Box::new(document(rng, depth - 1))))
                .collect(),
        ),
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

fn btree(rng: &mut Rng) -> u64 {
    let mut map: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for _ in 0..200 {
        let mut v = Vec::new();
        for b in 0..rng.below(200) {
            v.push(b as u8);
        }
        map.insert(format!("item-{:06}", rng.below(100_000)), v);
    }
    map.iter().fold(0u64, |s, (k, v)| {
        s.wrapping_add(mix(k.len() as u64 ^ (v.len() as u64) << 8))
    })
}

fn hash_churn(rng: &mut Rng, map: &mut HashMap<u64, String>) -> u64 {
    let mut sum = 0u64;
    for _ in 0..500 {
        let k = rng.below(4096) as u64;
        if rng.below(2) == 0 {
            map.insert(k, format!("entry {k} {}", rng.below(1000)));
        } else if let Some(s) = map.remove(&k) {
            sum = sum.wrapping_add(mix(s.len() as u64));
        }
    }
    sum
}

fn growth(rng: &mut Rng) -> u64 {
    let mut v: Vec<u64> = Vec::new();
    for i in 0..rng.range(1, 5000) {
        v.push(i as u64);
    }
    let mut s = String::new();
    for i in 0..rng.range(1, 200) {
        write!(s, "{i},").unwrap();
    }
    mix(v.iter().sum::<u64>() ^ s.len() as u64)
}

fn run(p: &Params) -> Outcome {
    let checksum = on_threads(p.threads, |t| {
        let mut rng = Rng::new(90 + t as u64);
        let mut map = HashMap::new();
        let mut sum = 0u64;
        for _ in 0..p.size {
            let doc = document(&mut rng, 5);
            sum = sum.wrapping_add(walk(&doc));
            drop(doc);
            sum = sum.wrapping_add(btree(&mut rng));
            sum = sum.wrapping_add(hash_churn(&mut rng, &mut map));
            sum = sum.wrapping_add(growth(&mut rng));
        }
        map.values()
            .fold(sum, |s, v| s.wrapping_add(mix(v.len() as u64)))
    });
    Outcome {
        checksum,
        ..Outcome::default()
    }
}

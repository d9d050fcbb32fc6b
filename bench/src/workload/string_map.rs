//! `string-map`: typical Rust collection traffic. Each thread runs a
//! `HashMap<String, Vec<u64>>` over a key space of 32,768 formatted keys of
//! varying length: 70% appends (the key `String` is allocated every time,
//! the `Vec` grows), 20% lookups, 10% removals.

use super::block::mix;
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Workload, on_threads};
use std::collections::HashMap;
use std::fmt::Write;

pub const WORKLOAD: Workload = Workload {
    name: "string-map",
    about: "HashMap<String, Vec<u64>> inserts/appends, lookups, removals; size = operations per thread",
    threads: super::as_asked,
    sizes: Sizes {
        smoke: 20_000,
        quick: 1_500_000,
        full: 6_000_000,
    },
    run,
};

const KEYS: usize = 1 << 15;

fn key(rng: &mut Rng) -> String {
    let k = rng.below(KEYS);
    let mut s = String::new();
    // 4 to 68 characters: a stable function of the key number.
    write!(s, "key-{k:05x}-").unwrap();
    for _ in 0..(mix(k as u64) % 60) {
        s.push('x');
    }
    s
}

fn run(p: &Params) -> Outcome {
    // The default HashMap hasher is randomly seeded per process; the
    // checksum below does not depend on iteration order.
    let checksum = on_threads(p.threads, |t| {
        let mut rng = Rng::new(300 + t as u64);
        let mut map: HashMap<String, Vec<u64>> = HashMap::new();
        let mut sum = 0u64;
        for i in 0..p.size {
            match rng.below(10) {
                0..=6 => map.entry(key(&mut rng)).or_default().push(i),
                7 | 8 => {
                    if let Some(v) = map.get(&key(&mut rng)) {
                        sum = sum.wrapping_add(v.len() as u64);
                    }
                }
                _ => {
                    if let Some(v) = map.remove(&key(&mut rng)) {
                        sum = sum.wrapping_add(mix(v.iter().sum()));
                    }
                }
            }
        }
        for (k, v) in &map {
            sum = sum.wrapping_add(mix(k.len() as u64 ^ v.iter().sum::<u64>()));
        }
        sum
    });
    Outcome {
        checksum,
        ..Outcome::default()
    }
}

//! `sp-strings` (a small program): C-string-style text processing. It
//! builds `size` lines of text by appends (words of a Zipf-like
//! vocabulary, numbers, punctuation; some lines repeat), then for each line
//! splits it into words, lowercases and trims each into a `String` of its
//! own, counts the words in a `HashMap<String, usize>` and joins them back
//! into a normalised line; then sorts and deduplicates the normalised
//! lines, sorts the word counts and writes a report of the most frequent
//! words. Everything lives until the end: the input, the normalised lines
//! and the word counts are the live heap.
//!
//! Operations: every string and vector it creates, their growth (a change
//! of `capacity()`), the hash table's growth (insert-only, so it is seen
//! too: see [`super::ops::rehashed`]), and their frees.

use super::block::mix;
use super::ops::{grew, owns, rehashed};
use super::rng::Rng;
use super::text::{WORD_MAX, append, append_num, fnv, word};
use super::{Group, Outcome, Params, Sizes, Tally, Workload};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher};

pub const WORKLOAD: Workload = Workload {
    name: "sp-strings",
    about: "small program: build lines of text by appends, split, lowercase, count words in a HashMap<String, usize>, join, sort and dedup the lines, report the top words; size = lines",
    threads: super::one,
    sizes: Sizes {
        smoke: 300,
        quick: 25_000,
        full: 25_000,
    },
    group: Group::Small,
    scaling: None,
    run,
};

/// A hasher with fixed keys: the same table, and so the same growth, for
/// every run.
type Counts = HashMap<String, usize, BuildHasherDefault<DefaultHasher>>;

/// Line `seed` of the input: the same seed, the same line.
fn line(seed: u64, ops: &mut u64) -> String {
    let mut rng = Rng::new(seed);
    let mut buf = [0; WORD_MAX];
    let mut s = String::new();
    for i in 0..rng.range(4, 14) {
        if i > 0 {
            let sep = match rng.below(10) {
                0 => ", ",
                1 => "; ",
                _ => " ",
            };
            append(&mut s, sep, ops);
        }
        if rng.below(12) == 0 {
            append_num(&mut s, rng.below(100_000) as u64, ops);
        } else {
            let w = word(rng.pareto(1, 1 << 16, 0.6) as u64, &mut buf);
            // Some words capitalised, as at the start of a sentence.
            if rng.below(8) == 0 {
                // The uppercase copy, and its free.
                *ops += 2;
                append(&mut s, &w.to_ascii_uppercase(), ops);
            } else {
                append(&mut s, w, ops);
            }
        }
    }
    append(&mut s, ".", ops);
    s
}

/// The line's words, lowercased and without punctuation, joined by single
/// spaces; every word is counted in `counts`.
fn normalise(line: &str, counts: &mut Counts, ops: &mut u64) -> String {
    let mut words: Vec<String> = Vec::new();
    for token in line.split_ascii_whitespace() {
        let token = token.trim_end_matches([',', ';', '.']);
        // The word, and its free after the join.
        let w = token.to_ascii_lowercase();
        *ops += 2;
        match counts.get_mut(&w) {
            Some(n) => *n += 1,
            None => {
                // A copy of the word is the key (freed with the map).
                let cap = counts.capacity();
                counts.insert(w.clone(), 1);
                *ops += 1 + rehashed(cap, counts.capacity());
            }
        }
        let cap = words.capacity();
        words.push(w);
        *ops += grew(cap, words.capacity());
    }
    // `join` allocates the result once, at its exact length.
    let joined = words.join(" ");
    *ops += 1 + owns(words.capacity());
    joined
}

fn run(p: &Params) -> Outcome {
    let n = p.size as usize;
    let mut ops = 0u64;
    let mut seeds = Rng::new(150);
    // The input: about one line in five repeats an earlier one.
    let mut input: Vec<String> = Vec::new();
    for i in 0..n {
        let seed = if i > 0 && seeds.below(5) == 0 {
            seeds.below(i) as u64
        } else {
            i as u64
        };
        let cap = input.capacity();
        input.push(line(1_000_000 + seed, &mut ops));
        ops += grew(cap, input.capacity());
    }
    let mut counts = Counts::default();
    let mut lines: Vec<String> = Vec::new();
    for l in &input {
        let norm = normalise(l, &mut counts, &mut ops);
        let cap = lines.capacity();
        lines.push(norm);
        ops += grew(cap, lines.capacity());
    }
    lines.sort_unstable();
    let before = lines.len();
    lines.dedup();
    // The duplicates' frees.
    ops += (before - lines.len()) as u64;
    let mut by_count: Vec<(&str, usize)> = Vec::with_capacity(counts.len());
    ops += owns(by_count.capacity());
    by_count.extend(counts.iter().map(|(w, &n)| (w.as_str(), n)));
    by_count.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut report = String::new();
    for (w, n) in by_count.iter().take(100) {
        append(&mut report, w, &mut ops);
        append(&mut report, ": ", &mut ops);
        append_num(&mut report, *n as u64, &mut ops);
        append(&mut report, "\n", &mut ops);
    }
    let checksum = lines
        .iter()
        .fold(fnv(report.as_bytes()), |h, l| {
            h.wrapping_add(fnv(l.as_bytes()))
        })
        .wrapping_add(mix((counts.len() as u64) << 32 | lines.len() as u64));
    // Everything is freed on return: the report, the sorted counts, the
    // map's keys and table, the lines, the input.
    ops += owns(report.capacity()) + owns(by_count.capacity());
    ops += counts.len() as u64 + owns(counts.capacity());
    ops += lines.len() as u64 + owns(lines.capacity());
    ops += input.len() as u64 + owns(input.capacity());
    Tally { checksum, ops }.into()
}

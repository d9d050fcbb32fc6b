//! `sp-alloc-only` (a small program): one that only allocates, as a
//! short-lived tool that builds its data and lets the process's exit free
//! it. It appends `size` records to a log sized in advance; each record
//! is a boxed struct with a name (8..40 B), a list of 1..16 fields and a
//! body of 8 B..2 KiB (mostly small: Pareto-like), so blocks of every size
//! from 8 B to 2 KiB. It checks every body, then leaks the log: nothing is
//! ever freed (and nothing grows: every buffer has its final size).
//!
//! Operations: the log, and each record's box, name, fields and body
//! (allocations only).

use super::block::{check, filled, mix};
use super::ops::owns;
use super::rng::Rng;
use super::text::{WORD_MAX, fnv, word};
use super::{Group, Outcome, Params, Sizes, Tally, Workload};

pub const WORKLOAD: Workload = Workload {
    name: "sp-alloc-only",
    about: "small program: a log of boxed records (name, fields, body of 8 B..2 KiB) built and never freed; size = records",
    threads: super::one,
    sizes: Sizes {
        smoke: 500,
        quick: 20_000,
        full: 20_000,
    },
    group: Group::Small,
    scaling: None,
    run,
};

struct Record {
    seq: u64,
    name: String,
    fields: Vec<(u16, u16)>,
    body: Vec<u8>,
}

fn record(rng: &mut Rng, seq: u64) -> Box<Record> {
    let mut buf = [0; WORD_MAX];
    let len = rng.range(8, 40);
    let mut name = String::with_capacity(len);
    while name.len() < len {
        let w = word(rng.below(1 << 12) as u64, &mut buf);
        name.push_str(&w[..w.len().min(len - name.len())]);
    }
    let mut fields = Vec::with_capacity(rng.range(1, 16));
    while fields.len() < fields.capacity() {
        fields.push((rng.below(64) as u16, rng.below(1 << 16) as u16));
    }
    let body = filled(rng.pareto(8, 2048, 0.7), seq);
    Box::new(Record {
        seq,
        name,
        fields,
        body,
    })
}

fn run(p: &Params) -> Outcome {
    let mut rng = Rng::new(160);
    let mut log: Vec<Box<Record>> = Vec::with_capacity(p.size as usize);
    for seq in 0..p.size {
        log.push(record(&mut rng, seq));
    }
    let checksum = log.iter().fold(0u64, |h, r| {
        let fields = r.fields.iter().fold(0u64, |f, &(k, v)| {
            f.wrapping_add(mix(u64::from(k) << 16 | u64::from(v)))
        });
        h.wrapping_add(check(&r.body, r.seq))
            .wrapping_add(fnv(r.name.as_bytes()))
            .wrapping_add(fields)
    });
    // The log, and four blocks per record.
    let ops = owns(log.capacity()) + 4 * log.len() as u64;
    // Left to the process's exit, as a short program's heap is.
    std::mem::forget(log);
    Tally { checksum, ops }.into()
}

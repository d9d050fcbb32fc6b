//! `sp-compiler` (a small program): the shape of a compiler's memory. A
//! symbol table (an interner: a `HashMap<String, u32>` and a `Vec` of the
//! names, insert-only) lives for the whole run; `size` functions are
//! compiled in modules of 100: each function gets an instruction list and
//! basic blocks (`Vec<u32>`s grown one `push` at a time, so by realloc), a
//! constant pool, and identifiers interned as it goes (a new name is
//! allocated only when it is not in the table yet). When a module is done
//! it is checked and freed in bulk, as a compiler drops a unit's IR.
//!
//! Operations: every string and vector it creates, their growth (a change
//! of `capacity()`), the hash table's growth (see
//! [`super::ops::rehashed`]), and their frees.

use super::block::mix;
use super::ops::{grew, owns, rehashed};
use super::rng::Rng;
use super::text::{WORD_MAX, append, append_num, fnv, word};
use super::{Group, Outcome, Params, Sizes, Tally, Workload};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher};

pub const WORKLOAD: Workload = Workload {
    name: "sp-compiler",
    about: "small program: a symbol table that lives all along, and modules of functions whose Vec<u32> code and blocks grow by push, freed in bulk per module; size = functions",
    threads: super::one,
    sizes: Sizes {
        smoke: 40,
        quick: 2_000,
        full: 2_000,
    },
    group: Group::Small,
    scaling: None,
    run,
};

const MODULE: u64 = 100;

/// Names to ids and back; nothing is ever removed.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32, BuildHasherDefault<DefaultHasher>>,
    names: Vec<String>,
}

impl Interner {
    /// The id of `name`, allocating a copy only if it is new.
    fn intern(&mut self, name: &str, ops: &mut u64) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        let (cap, names_cap) = (self.ids.capacity(), self.names.capacity());
        self.ids.insert(name.to_owned(), id);
        self.names.push(name.to_owned());
        // Two copies of the name (freed at the end: see `frees`).
        *ops += 2 + rehashed(cap, self.ids.capacity()) + grew(names_cap, self.names.capacity());
        id
    }

    /// What freeing it takes.
    fn frees(&self) -> u64 {
        2 * self.names.len() as u64 + owns(self.ids.capacity()) + owns(self.names.capacity())
    }
}

struct Function {
    name: u32,
    code: Vec<u32>,
    blocks: Vec<Vec<u32>>,
    consts: Vec<u64>,
}

/// `v` with `x` pushed, counting its growth.
fn push<T>(v: &mut Vec<T>, x: T, ops: &mut u64) {
    let cap = v.capacity();
    v.push(x);
    *ops += grew(cap, v.capacity());
}

/// An identifier: a word of a Zipf-like vocabulary, sometimes with a
/// numeric suffix (`tmp17`), spelt into `scratch`.
fn identifier<'a>(rng: &mut Rng, scratch: &'a mut String, ops: &mut u64) -> &'a str {
    let mut buf = [0; WORD_MAX];
    scratch.clear();
    append(
        scratch,
        word(rng.pareto(1, 1 << 13, 0.6) as u64, &mut buf),
        ops,
    );
    if rng.below(4) == 0 {
        append_num(scratch, rng.below(50) as u64, ops);
    }
    scratch
}

fn compile(rng: &mut Rng, syms: &mut Interner, scratch: &mut String, ops: &mut u64) -> Function {
    let name = syms.intern(identifier(rng, scratch, ops), ops);
    let mut f = Function {
        name,
        code: Vec::new(),
        blocks: Vec::new(),
        consts: Vec::new(),
    };
    let len = rng.log_uniform(16, 8192);
    let mut block = Vec::new();
    for pc in 0..len {
        let op = rng.below(16) as u32;
        let operand = match op {
            0..=5 => syms.intern(identifier(rng, scratch, ops), ops),
            6 | 7 => {
                push(&mut f.consts, rng.next_u64() >> 20, ops);
                f.consts.len() as u32 - 1
            }
            _ => rng.below(256) as u32,
        };
        push(&mut f.code, op << 24 | operand, ops);
        push(&mut block, pc as u32, ops);
        // A jump ends the basic block.
        if op == 15 {
            *ops += owns(block.capacity());
            push(&mut f.blocks, std::mem::take(&mut block), ops);
        }
    }
    *ops += owns(block.capacity());
    push(&mut f.blocks, block, ops);
    *ops += owns(f.code.capacity()) + owns(f.blocks.capacity()) + owns(f.consts.capacity());
    f
}

/// A module's checksum (what the compiler would emit).
fn emit(module: &[Function], syms: &Interner) -> u64 {
    module.iter().fold(0u64, |h, f| {
        let code = f
            .code
            .iter()
            .fold(0u64, |c, &i| c.wrapping_add(mix(u64::from(i))));
        let blocks = f
            .blocks
            .iter()
            .fold(0u64, |b, v| b.wrapping_add(mix(v.len() as u64)));
        let consts = f.consts.iter().fold(0u64, |c, &k| c.wrapping_add(k));
        h.wrapping_add(fnv(syms.names[f.name as usize].as_bytes()))
            .wrapping_add(code ^ blocks.rotate_left(17) ^ consts.rotate_left(41))
    })
}

fn run(p: &Params) -> Outcome {
    let mut rng = Rng::new(170);
    let mut syms = Interner::default();
    let mut scratch = String::new();
    let mut t = Tally::default();
    let mut done = 0;
    while done < p.size {
        let n = MODULE.min(p.size - done);
        let mut module = Vec::new();
        for _ in 0..n {
            let f = compile(&mut rng, &mut syms, &mut scratch, &mut t.ops);
            push(&mut module, f, &mut t.ops);
        }
        t.checksum = t.checksum.wrapping_add(emit(&module, &syms));
        t.ops += owns(module.capacity());
        done += n;
    }
    t.checksum = t.checksum.wrapping_add(mix(syms.names.len() as u64));
    t.ops += syms.frees() + owns(scratch.capacity());
    t.into()
}

//! `sp-parse-tree` (a small program): a JSON parser's life. Each round
//! generates a JSON document of `size` KiB (an array of records: objects
//! with a few fields of numbers, strings, arrays and nested objects) into a
//! `String` grown by appends, parses it into a tree (`Vec`s of nodes,
//! `String` keys and values, boxed object values), frees the text, walks
//! the tree and drops it. Six rounds, each with its own document; the live
//! heap peaks with the text and the whole tree of one round.
//!
//! Operations: the text's growth and free; every string, box and vector
//! of the tree, the growth of its vectors (seen as a change of
//! `capacity()`), and their frees.

use super::block::mix;
use super::ops::{grew, owns};
use super::rng::Rng;
use super::text::{WORD_MAX, append, append_num, fnv, word};
use super::{Group, Outcome, Params, Sizes, Tally, Workload};

pub const WORKLOAD: Workload = Workload {
    name: "sp-parse-tree",
    about: "small program: generate a JSON document, parse it into a tree of Vec/String/Box nodes, walk it, drop it; 6 rounds; size = KiB of JSON per round",
    threads: super::one,
    sizes: Sizes {
        smoke: 16,
        quick: 1_024,
        full: 1_024,
    },
    group: Group::Small,
    scaling: None,
    run,
};

const ROUNDS: u64 = 6;
/// Distinct field names (object keys).
const KEYS: usize = 64;

enum Node {
    Num(i64),
    Str(String),
    List(Vec<Node>),
    Obj(Vec<(String, Box<Node>)>),
}

/// Appends a random value of nesting up to `depth` to `out`.
fn gen_value(rng: &mut Rng, depth: u32, out: &mut String, ops: &mut u64) {
    let mut buf = [0; WORD_MAX];
    match (depth, rng.below(8)) {
        (_, 0..=2) => append_num(out, rng.below(1_000_000) as u64, ops),
        (_, 3..=5) | (0, _) => {
            append(out, "\"", ops);
            for i in 0..rng.range(1, 4) {
                if i > 0 {
                    append(out, " ", ops);
                }
                append(out, word(rng.pareto(1, 4096, 0.8) as u64, &mut buf), ops);
            }
            append(out, "\"", ops);
        }
        (_, 6) => {
            append(out, "[", ops);
            for i in 0..rng.range(1, 10) {
                if i > 0 {
                    append(out, ",", ops);
                }
                gen_value(rng, depth - 1, out, ops);
            }
            append(out, "]", ops);
        }
        _ => gen_object(rng, depth - 1, out, ops),
    }
}

fn gen_object(rng: &mut Rng, depth: u32, out: &mut String, ops: &mut u64) {
    let mut buf = [0; WORD_MAX];
    append(out, "{", ops);
    for i in 0..rng.range(2, 8) {
        if i > 0 {
            append(out, ",", ops);
        }
        append(out, "\"", ops);
        append(out, word(rng.below(KEYS) as u64, &mut buf), ops);
        append(out, "\":", ops);
        gen_value(rng, depth, out, ops);
    }
    append(out, "}", ops);
}

/// A document of at least `bytes` bytes: an array of records.
fn document(rng: &mut Rng, bytes: usize, ops: &mut u64) -> String {
    let mut out = String::new();
    append(&mut out, "[", ops);
    while out.len() < bytes {
        if out.len() > 1 {
            append(&mut out, ",\n", ops);
        }
        gen_object(rng, 3, &mut out, ops);
    }
    append(&mut out, "]", ops);
    out
}

/// A recursive-descent parser over the document's bytes (which it trusts
/// to be well formed: it generated them).
struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    ops: u64,
}

impl Parser<'_> {
    fn peek(&self) -> u8 {
        self.text[self.at]
    }

    fn expect(&mut self, b: u8) {
        assert_eq!(self.peek(), b, "malformed document at {}", self.at);
        self.at += 1;
    }

    fn skip_space(&mut self) {
        while self.peek().is_ascii_whitespace() {
            self.at += 1;
        }
    }

    /// A string literal (never empty), copied out of the text.
    fn string(&mut self) -> String {
        self.expect(b'"');
        let start = self.at;
        while self.peek() != b'"' {
            self.at += 1;
        }
        let s = std::str::from_utf8(&self.text[start..self.at]).expect("ASCII");
        self.at += 1;
        // Its allocation and its free.
        self.ops += 2;
        s.to_owned()
    }

    fn value(&mut self) -> Node {
        self.skip_space();
        match self.peek() {
            b'"' => Node::Str(self.string()),
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    let cap = items.capacity();
                    items.push(self.value());
                    self.ops += grew(cap, items.capacity());
                    self.skip_space();
                    self.at += 1;
                    if self.text[self.at - 1] == b']' {
                        break;
                    }
                }
                self.ops += owns(items.capacity());
                Node::List(items)
            }
            b'{' => {
                self.at += 1;
                let mut fields = Vec::new();
                loop {
                    self.skip_space();
                    let key = self.string();
                    self.expect(b':');
                    // The box and its free.
                    self.ops += 2;
                    let value = Box::new(self.value());
                    let cap = fields.capacity();
                    fields.push((key, value));
                    self.ops += grew(cap, fields.capacity());
                    self.skip_space();
                    self.at += 1;
                    if self.text[self.at - 1] == b'}' {
                        break;
                    }
                }
                self.ops += owns(fields.capacity());
                Node::Obj(fields)
            }
            _ => {
                let start = self.at;
                while self.peek().is_ascii_digit() {
                    self.at += 1;
                }
                let digits = std::str::from_utf8(&self.text[start..self.at]).expect("ASCII");
                Node::Num(digits.parse().expect("a number"))
            }
        }
    }
}

fn walk(n: &Node) -> u64 {
    match n {
        Node::Num(x) => mix(*x as u64),
        Node::Str(s) => fnv(s.as_bytes()),
        Node::List(v) => v.iter().map(walk).fold(2, u64::wrapping_add),
        Node::Obj(v) => v.iter().fold(3, |h, (k, v)| {
            h.wrapping_add(mix(fnv(k.as_bytes()) ^ walk(v)))
        }),
    }
}

fn run(p: &Params) -> Outcome {
    let mut rng = Rng::new(140);
    let mut t = Tally::default();
    for _ in 0..ROUNDS {
        let text = document(&mut rng, p.size as usize * 1024, &mut t.ops);
        let mut parser = Parser {
            text: text.as_bytes(),
            at: 0,
            ops: 0,
        };
        let tree = parser.value();
        assert_eq!(parser.at, text.len(), "trailing text");
        t.ops += parser.ops + owns(text.capacity());
        t.checksum = t.checksum.wrapping_add(mix(text.len() as u64));
        drop(text);
        t.checksum = t.checksum.wrapping_add(walk(&tree));
    }
    t.into()
}

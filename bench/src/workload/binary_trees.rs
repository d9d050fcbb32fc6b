//! `binary-trees`: the classic benchmark. Builds and walks many complete
//! binary trees of boxed 16-byte nodes, depths 4..=size in steps of 2,
//! while one long-lived tree of depth `size` stays allocated. The work is
//! split into chunks that the threads take from a shared counter.

use super::{Outcome, Params, Sizes, Workload, on_threads};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const WORKLOAD: Workload = Workload {
    name: "binary-trees",
    about: "build/check/free complete trees of 16 B boxed nodes; size = maximum depth",
    threads: super::as_asked,
    sizes: Sizes {
        smoke: 8,
        quick: 18,
        full: 20,
    },
    run,
};

const MIN_DEPTH: u32 = 4;
const CHUNKS: u64 = 8;

struct Node {
    children: Option<(Box<Node>, Box<Node>)>,
}

fn build(depth: u32) -> Box<Node> {
    let children = (depth > 0).then(|| (build(depth - 1), build(depth - 1)));
    Box::new(Node { children })
}

fn count(node: &Node) -> u64 {
    match &node.children {
        Some((l, r)) => 1 + count(l) + count(r),
        None => 1,
    }
}

fn checked_count(depth: u32) -> u64 {
    let tree = build(depth);
    let n = count(&tree);
    assert_eq!(
        n,
        (2u64 << depth) - 1,
        "tree of depth {depth} has {n} nodes"
    );
    n
}

fn run(p: &Params) -> Outcome {
    let max = (p.size as u32).max(MIN_DEPTH + 2);
    let long_lived = build(max);
    // Work items: (depth, iterations in this chunk); every depth does the
    // same number of nodes in total.
    let items: Vec<(u32, u64)> = (MIN_DEPTH..=max)
        .step_by(2)
        .flat_map(|d| {
            let iterations = 1u64 << (max - d + MIN_DEPTH);
            let per_chunk = iterations.div_ceil(CHUNKS);
            (0..CHUNKS).map(move |c| (d, per_chunk.min(iterations.saturating_sub(c * per_chunk))))
        })
        .filter(|&(_, n)| n > 0)
        .collect();
    let next = AtomicUsize::new(0);
    let sum = on_threads(p.threads, |_| {
        let mut sum = 0u64;
        while let Some(&(depth, n)) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
            for _ in 0..n {
                sum = sum.wrapping_add(checked_count(depth));
            }
        }
        sum
    });
    let checksum = sum.wrapping_add(count(&long_lived));
    Outcome {
        checksum,
        ..Outcome::default()
    }
}

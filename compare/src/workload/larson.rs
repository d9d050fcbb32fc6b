//! `larson`: the server simulation. Each thread holds 1,000 slots and
//! repeatedly frees a random slot and allocates a new block of 16..1024 B
//! into it. Every round of 10,000 steps the thread hands its slots to a
//! new thread and exits, so blocks are freed by threads that did not
//! allocate them (and per-thread state is torn down and set up again).
//!
//! Operations: every block is allocated and freed once (two per step), plus
//! the slot vector's growth while it is first filled and its free.

use super::block::{check, filled};
use super::ops::grew;
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Tally, Workload, on_threads};

pub const WORKLOAD: Workload = Workload {
    name: "larson",
    about: "threads replace random blocks (16..1024 B) among 1,000 slots, handing them to a new thread every 10,000 steps; size = steps per thread",
    threads: super::as_asked,
    sizes: Sizes {
        smoke: 30_000,
        quick: 10_000_000,
        full: 40_000_000,
    },
    group: super::Group::Main,
    scaling: Some(super::as_asked),
    run,
};

const SLOTS: usize = 1000;
const ROUND: u64 = 10_000;

/// What a thread hands to the next: the slots and where it left off.
struct Lane {
    slots: Vec<(Vec<u8>, u64)>,
    rng: Rng,
    tag: u64,
    sum: u64,
    ops: u64,
}

/// One round on a fresh thread: fill the slots if empty, then `steps`
/// replacements. The blocks it leaves are freed by later rounds' threads.
fn round(mut lane: Lane, steps: u64) -> Lane {
    if lane.slots.is_empty() {
        for _ in 0..SLOTS {
            let cap = lane.slots.capacity();
            lane.slots
                .push((filled(lane.rng.range(16, 1024), lane.tag), lane.tag));
            lane.tag += 1;
            lane.ops += 1 + grew(cap, lane.slots.capacity());
        }
    }
    lane.ops += 2 * steps;
    for _ in 0..steps {
        let slot = lane.rng.below(SLOTS);
        let new = (filled(lane.rng.range(16, 1024), lane.tag), lane.tag);
        lane.tag += 1;
        let (old, old_tag) = std::mem::replace(&mut lane.slots[slot], new);
        lane.sum = lane.sum.wrapping_add(check(&old, old_tag));
    }
    lane
}

/// Runs one lane's rounds, each on a new thread, one after the other.
fn lane(t: usize, steps: u64) -> Tally {
    let mut lane = Lane {
        slots: Vec::new(),
        rng: Rng::new(20 + t as u64),
        tag: (t as u64) << 40,
        sum: 0,
        ops: 0,
    };
    let mut left = steps;
    loop {
        let n = left.min(ROUND);
        lane = std::thread::spawn(move || round(lane, n))
            .join()
            .expect("larson thread panicked");
        left -= n;
        if left == 0 {
            break;
        }
    }
    let checksum = lane
        .slots
        .iter()
        .fold(lane.sum, |s, (b, tag)| s.wrapping_add(check(b, *tag)));
    // The blocks left in the slots, and the slot vector, are freed here.
    Tally {
        checksum,
        ops: lane.ops + lane.slots.len() as u64 + 1,
    }
}

fn run(p: &Params) -> Outcome {
    on_threads(p.threads, |t| lane(t, p.size)).into()
}

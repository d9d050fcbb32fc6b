//! `xmalloc`: producer/consumer. Producer threads allocate and fill blocks (16..1024 B)
//! and send them in batches of 64 over bounded channels to consumer
//! threads, which check and free them: every free is a remote free.
//! Half the threads produce, the rest consume (at least one of each).
//!
//! Operations: every block is allocated and freed once, and so is every
//! batch vector (the producer's last, empty one is freed by the producer).

use super::block::{check, filled};
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Tally, Workload};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

pub const WORKLOAD: Workload = Workload {
    name: "xmalloc",
    about: "producers allocate 16..1024 B blocks, consumers free them (batches of 64); size = blocks per producer",
    threads: |t| t.max(2),
    sizes: Sizes {
        smoke: 20_000,
        quick: 3_000_000,
        full: 12_000_000,
    },
    group: super::Group::Main,
    scaling: Some(producers),
    run,
};

/// Producer threads for `threads` asked for (size is per producer).
fn producers(threads: usize) -> usize {
    (threads / 2).max(1)
}

const BATCH: usize = 64;
type Batch = Vec<(Vec<u8>, u64)>;

/// Returns the operations it performed.
fn produce(index: usize, blocks: u64, to: &[SyncSender<Batch>]) -> u64 {
    let mut rng = Rng::new(200 + index as u64);
    let mut batch = Vec::with_capacity(BATCH);
    let mut next = index;
    let mut ops = 1;
    for i in 0..blocks {
        let tag = (index as u64) << 40 | i;
        batch.push((filled(rng.range(16, 1024), tag), tag));
        ops += 1;
        if batch.len() == BATCH || i + 1 == blocks {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            ops += 1;
            to[next % to.len()].send(full).expect("consumer gone");
            next += 1;
        }
    }
    // The last, empty batch vector is freed on return.
    ops + 1
}

fn consume(from: Receiver<Batch>) -> Tally {
    let mut t = Tally::default();
    for batch in from {
        for (b, tag) in &batch {
            t.checksum = t.checksum.wrapping_add(check(b, *tag));
        }
        // Its blocks and the batch vector are freed here.
        t.ops += batch.len() as u64 + 1;
    }
    t
}

fn run(p: &Params) -> Outcome {
    let producers = producers(p.threads);
    let consumers = (p.threads - producers).max(1);
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..consumers).map(|_| sync_channel::<Batch>(16)).unzip();
    let tally = std::thread::scope(|s| {
        let eaters: Vec<_> = receivers
            .into_iter()
            .map(|r| s.spawn(move || consume(r)))
            .collect();
        let makers: Vec<_> = (0..producers)
            .map(|i| {
                let to = senders.clone();
                s.spawn(move || produce(i, p.size, &to))
            })
            .collect();
        drop(senders);
        let made: u64 = makers
            .into_iter()
            .map(|m| m.join().expect("producer panicked"))
            .sum();
        let eaten = eaters
            .into_iter()
            .map(|e| e.join().expect("consumer panicked"))
            .sum::<Tally>();
        eaten
            + Tally {
                checksum: 0,
                ops: made,
            }
    });
    tally.into()
}

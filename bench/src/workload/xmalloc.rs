//! `xmalloc`: producer/consumer. Producer threads allocate and fill blocks (16..1024 B)
//! and send them in batches of 64 over bounded channels to consumer
//! threads, which check and free them: every free is a remote free.
//! Half the threads produce, the rest consume (at least one of each).

use super::block::{check, filled};
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Workload};
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
    run,
};

const BATCH: usize = 64;
type Batch = Vec<(Vec<u8>, u64)>;

fn produce(index: usize, blocks: u64, to: &[SyncSender<Batch>]) {
    let mut rng = Rng::new(200 + index as u64);
    let mut batch = Vec::with_capacity(BATCH);
    let mut next = index;
    for i in 0..blocks {
        let tag = (index as u64) << 40 | i;
        batch.push((filled(rng.range(16, 1024), tag), tag));
        if batch.len() == BATCH || i + 1 == blocks {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            to[next % to.len()].send(full).expect("consumer gone");
            next += 1;
        }
    }
}

fn consume(from: Receiver<Batch>) -> u64 {
    let mut sum = 0u64;
    for batch in from {
        for (b, tag) in &batch {
            sum = sum.wrapping_add(check(b, *tag));
        }
    }
    sum
}

fn run(p: &Params) -> Outcome {
    let producers = (p.threads / 2).max(1);
    let consumers = (p.threads - producers).max(1);
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..consumers).map(|_| sync_channel::<Batch>(16)).unzip();
    let checksum = std::thread::scope(|s| {
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
        for m in makers {
            m.join().expect("producer panicked");
        }
        eaters
            .into_iter()
            .map(|e| e.join().expect("consumer panicked"))
            .fold(0u64, u64::wrapping_add)
    });
    Outcome {
        checksum,
        ..Outcome::default()
    }
}

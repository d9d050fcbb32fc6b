//! Passive false sharing (the cache-scratch pattern): objects allocated
//! together by one thread and handed to others must not lead those threads
//! to write one cache line. Each worker frees its handed object, then
//! allocates its own; the workers' new objects must lie in different cache
//! lines.
//!
//! No test harness (`harness = false`): the check needs a process whose
//! allocator state the harness's own threads have not shaped.

use std::sync::{Arc, Barrier};

#[global_allocator]
static A: slabpool::SlabPool = slabpool::SlabPool;

const WORKERS: usize = 4;

/// One round: returns the cache line of each worker's new object.
fn round() -> Vec<usize> {
    let handed: Vec<Box<[u8; 8]>> = (0..WORKERS as u8).map(|i| Box::new([i; 8])).collect();
    let barrier = Arc::new(Barrier::new(WORKERS));
    let workers: Vec<_> = handed
        .into_iter()
        .map(|obj| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                drop(obj);
                barrier.wait();
                let mine = Box::new([7u8; 8]);
                let line = &*mine as *const [u8; 8] as usize / 64;
                // Hold it until every worker has allocated.
                barrier.wait();
                drop(mine);
                line
            })
        })
        .collect();
    workers.into_iter().map(|w| w.join().unwrap()).collect()
}

fn main() {
    for r in 0..50 {
        let mut lines = round();
        lines.sort();
        lines.dedup();
        assert_eq!(
            lines.len(),
            WORKERS,
            "round {r}: workers share a cache line: {lines:x?}"
        );
    }
    println!("test handed_objects_are_not_reused_by_the_freeing_thread ... ok");
}

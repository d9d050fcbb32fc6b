//! `mstress`: threads are recreated every phase. In each of 8 phases,
//! `threads` new threads each take over the objects a *different* thread
//! kept from the previous phase, allocate `size` new objects (mostly small,
//! some up to 64 KiB) while freeing about half as they go, and at the end
//! keep a quarter of what they hold for the next phase and free the rest.
//! So objects live across phases and migrate between threads.
//!
//! Operations: every object is allocated and freed once; each thread's
//! object vectors are counted as they grow and are freed.

use super::block::{check, filled};
use super::ops::{grew, owns};
use super::rng::Rng;
use super::{Outcome, Params, Sizes, Workload};

pub const WORKLOAD: Workload = Workload {
    name: "mstress",
    about: "8 phases of new threads; each frees/allocates and keeps a quarter for another thread of the next phase; size = allocations per thread per phase",
    threads: super::as_asked,
    sizes: Sizes {
        smoke: 5_000,
        quick: 200_000,
        full: 800_000,
    },
    group: super::Group::Main,
    scaling: Some(super::as_asked),
    run,
};

const PHASES: u64 = 8;

type Objects = Vec<(Vec<u8>, u64)>;

fn size_of(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=89 => rng.range(16, 256),
        90..=98 => rng.range(257, 4096),
        _ => rng.range(4097, 64 * 1024),
    }
}

/// One thread's phase: returns what it keeps, its checksum and its
/// operations.
fn phase(mut live: Objects, seed: u64, allocations: u64) -> (Objects, u64, u64) {
    let mut rng = Rng::new(seed);
    let mut sum = 0u64;
    let mut ops = 0u64;
    let tag0 = seed << 32;
    for i in 0..allocations {
        let cap = live.capacity();
        live.push((filled(size_of(&mut rng), tag0 + i), tag0 + i));
        ops += 1 + grew(cap, live.capacity());
        if rng.below(2) == 0 {
            let (b, tag) = live.swap_remove(rng.below(live.len()));
            sum = sum.wrapping_add(check(&b, tag));
            ops += 1;
        }
    }
    let mut kept = Vec::with_capacity(live.len() / 4 + 1);
    // `kept`'s allocation, and `live`'s free once it is consumed.
    ops += 1 + owns(live.capacity());
    for (b, tag) in live {
        if rng.below(4) == 0 {
            let cap = kept.capacity();
            kept.push((b, tag));
            ops += grew(cap, kept.capacity());
        } else {
            sum = sum.wrapping_add(check(&b, tag));
            ops += 1;
        }
    }
    (kept, sum, ops)
}

fn run(p: &Params) -> Outcome {
    let n = p.threads;
    let mut carried: Vec<Objects> = (0..n).map(|_| Vec::new()).collect();
    let mut checksum = 0u64;
    let mut ops = 0u64;
    for ph in 0..PHASES {
        // Thread t takes over what thread t+1 kept (rotated each phase).
        let mut inputs: Vec<Option<Objects>> = carried.into_iter().map(Some).collect();
        let handles: Vec<_> = (0..n)
            .map(|t| {
                let objects = inputs[(t + 1 + ph as usize) % n]
                    .take()
                    .expect("each taken once");
                let seed = 1 + ph * 1000 + t as u64;
                let allocations = p.size;
                std::thread::spawn(move || phase(objects, seed, allocations))
            })
            .collect();
        carried = Vec::with_capacity(n);
        for h in handles {
            let (kept, sum, n) = h.join().expect("mstress thread panicked");
            carried.push(kept);
            checksum = checksum.wrapping_add(sum);
            ops += n;
        }
    }
    for objects in &carried {
        checksum = objects
            .iter()
            .fold(checksum, |s, (b, tag)| s.wrapping_add(check(b, *tag)));
        // Its objects and the vector are freed on return.
        ops += objects.len() as u64 + owns(objects.capacity());
    }
    Outcome {
        checksum,
        ops,
        ..Outcome::default()
    }
}

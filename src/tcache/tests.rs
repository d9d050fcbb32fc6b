//! Unit tests of `tcache`.

use super::*;
use crate::block::Chain;
use crate::central::Refill;

/// Class `i` (a test's literal).
fn sc(i: usize) -> crate::size_class::SizeClass {
    crate::size_class::SizeClass::new(i).expect("a class")
}

use crate::size_class::class_of;

fn drain_list(mut list: Chain) -> Vec<usize> {
    let mut v = Vec::new();
    while let Some(b) = list.pop() {
        v.push(b as usize);
    }
    v
}

fn active_cache(heap: &Backend) -> Box<ThreadCache> {
    let mut tc = Box::new(ThreadCache::new());
    tc.activate(heap, 0);
    // The profiler's budgets (`prof` builds) as if profiling were off and
    // never noticed: pops count down without ever going slow here.
    #[cfg(feature = "prof")]
    for class in 0..NUM_CLASSES {
        tc.set_budget(class, MAX_BUDGET);
    }
    tc
}

#[test]
fn inactive_cache_takes_the_slow_paths() {
    let mut tc = ThreadCache::new();
    assert!(tc.pop(sc(0)).is_null());
    let mut block = [0usize; 2];
    // SAFETY: `block` is a valid 16-byte block; the push must refuse it.
    assert!(!unsafe { tc.push(sc(0), block.as_mut_ptr().cast()) });
}

#[test]
fn refill_then_pop_then_push_round_trip() {
    let heap = Box::new(Backend::new());
    let mut tc = active_cache(&heap);
    let class = class_of(32);
    let batch = CLASSES[class].batch as usize;
    let first = tc.refill(&heap, class);
    assert!(!first.is_null());
    let mut got = vec![first as usize];
    while let p = tc.pop(sc(class))
        && !p.is_null()
    {
        got.push(p as usize);
    }
    assert_eq!(got.len(), batch);
    for &p in &got {
        // SAFETY: each block is live and of `class`.
        if !unsafe { tc.push(sc(class), p as *mut u8) } {
            // SAFETY: as above.
            unsafe { tc.overflow(&heap, sc(class), p as *mut u8) };
        }
    }
    assert_eq!(tc.cached().0, batch);
    assert_eq!(
        heap.check(Some(&[tc.check(&heap)])).held[class],
        0,
        "all cached"
    );
    tc.flush_all(&heap);
    assert_eq!(tc.cached(), (0, 0));
    let back = drain_list(heap.refill(class, Refill::new(batch as u32), 0));
    let mut a = got.clone();
    let mut b = back.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "the flushed batch is what the next refill gets");
}

#[test]
fn consumer_limit_shrinks_to_one_batch() {
    let heap = Box::new(Backend::new());
    let mut producer = active_cache(&heap);
    let mut consumer = active_cache(&heap);
    let class = class_of(64);
    let info = CLASSES[class];
    for _ in 0..200 {
        // The producer allocates a few batches; the consumer frees them.
        let mut blocks = Vec::new();
        for _ in 0..3 * info.batch {
            let mut p = producer.pop(sc(class));
            if p.is_null() {
                p = producer.refill(&heap, class);
            }
            assert!(!p.is_null());
            blocks.push(p);
        }
        for p in blocks {
            // SAFETY: each block is live and of `class`.
            unsafe {
                if !consumer.push(sc(class), p) {
                    consumer.overflow(&heap, sc(class), p);
                }
            }
        }
    }
    assert!(
        consumer.bins.limit(class) <= info.batch,
        "consumer limit {}",
        consumer.bins.limit(class)
    );
    assert!(consumer.cached().0 <= info.batch as usize);
    assert!(producer.bins.limit(class) <= info.max_cached);
}

#[test]
fn limits_stay_within_budget() {
    let heap = Box::new(Backend::new());
    let mut tc = active_cache(&heap);
    for _ in 0..8 {
        for class in 0..NUM_CLASSES {
            let p = tc.refill(&heap, class);
            assert!(!p.is_null());
            // SAFETY: `p` is a live block of `class`.
            unsafe {
                if !tc.push(sc(class), p) {
                    tc.overflow(&heap, sc(class), p);
                }
            }
            // Empty the bin so the next round refills again.
            while !tc.pop(sc(class)).is_null() {}
        }
    }
    let batch_max = CLASSES
        .iter()
        .map(|c| c.batch as usize * c.size as usize)
        .max()
        .unwrap();
    assert!(
        tc.limit_bytes <= BUDGET_BYTES + batch_max,
        "{}",
        tc.limit_bytes
    );
    let sum: usize = (0..NUM_CLASSES)
        .map(|c| tc.bins.limit(c) as usize * CLASSES[c].size as usize)
        .sum();
    assert_eq!(sum, tc.limit_bytes);
}

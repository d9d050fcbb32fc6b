//! Unit tests of `backend`.

use super::*;
use crate::layout::SEGMENT_SIZE;
use crate::os::PAGE;
use crate::size_class::{NUM_CLASSES, SMALL_LIMIT, class_of, size_class, size_of};

/// Class `i` (a test's literal).
fn sc(i: usize) -> crate::size_class::SizeClass {
    crate::size_class::SizeClass::new(i).expect("a class")
}

#[test]
fn routes() {
    assert_eq!(route(1, 1), Route::Small(sc(0)));
    assert_eq!(route(24, 16), Route::Small(size_class(32)));
    assert_eq!(route(SMALL_LIMIT, 8), Route::Small(sc(NUM_CLASSES - 1)));
    assert_eq!(route(SMALL_LIMIT + 1, 8), Route::Large);
    assert_eq!(route(8, 64 * 1024), Route::Large);
    assert_eq!(route(LARGE_LIMIT, 8), Route::Large);
    assert_eq!(route(LARGE_LIMIT + 1, 8), Route::Huge);
    assert_eq!(route(8, 4 << 20), Route::Huge);
}

#[test]
fn blocks_cycle_through_central_and_slabs() {
    let heap = Box::new(Backend::new());
    let class = class_of(48);
    let mut blocks = Vec::new();
    for _ in 0..10_000 {
        let p = heap.alloc_block(class, 0);
        assert!(!p.is_null());
        assert_eq!(p as usize % 16, 0);
        blocks.push(p as usize);
    }
    let mut sorted = blocks.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), blocks.len(), "no block handed out twice");
    assert!(sorted.windows(2).all(|w| w[1] - w[0] >= size_of(class)));
    let slabs = heap.stats().classes[class].slabs;
    assert!(slabs >= 10_000 * 48 / (64 * 1024), "{slabs} slabs");
    for &p in &blocks {
        // SAFETY: each block is live and of `class`.
        unsafe { heap.free_block(class, p as *mut u8) };
    }
    let counts = heap.stats().classes[class];
    assert_eq!(counts.slabs, 1, "empty slabs went back, one kept");
    assert_eq!(counts.empty_slabs, 1);
    assert_eq!(heap.check(Some(&[])).held, [0; NUM_CLASSES]);
}

#[test]
fn batches_round_trip_through_transfer() {
    let heap = Box::new(Backend::new());
    // 64 blocks are one carve (a page).
    let class = class_of(64);
    let list = heap.refill(class, Refill::new(64), 0);
    assert_eq!(list.len(), 64);
    let addrs: Vec<_> = {
        let mut l = heap.refill(class, Refill::new(64), 0);
        let mut v = Vec::new();
        while let Some(b) = l.pop() {
            v.push(b as usize);
        }
        // SAFETY: the blocks were just popped and are ours.
        unsafe {
            for &b in v.iter().rev() {
                l.push(b as *mut _);
            }
        }
        heap.flush(class, l, Owners::One, Sender { thread: 0, home: 0 });
        v
    };
    assert_eq!(heap.stats().classes[class].transfer_blocks, 64);
    assert_eq!(heap.check(Some(&[])).held[class], 64, "`list` is held");
    let mut back = heap.refill(class, Refill::new(64), 0);
    assert_eq!(back.len(), 64);
    let first = back.pop().expect("block");
    assert_eq!(first as usize, addrs[0], "LIFO batch reuse");
    // SAFETY: `first` was just popped from `back`.
    unsafe { back.push(first) };
    heap.flush(class, back, Owners::One, Sender { thread: 0, home: 0 });
    heap.flush(class, list, Owners::One, Sender { thread: 0, home: 0 });
    heap.collect();
    let counts = heap.stats().classes[class];
    assert_eq!(counts.transfer_blocks, 0);
    assert_eq!(counts.slabs, 0);
}

#[test]
fn new_threads_take_the_place_of_the_thread_that_exited_last() {
    let heap = Box::new(Backend::new());
    let shards = heap.arenas_in_use();
    let homes: Vec<_> = (0..shards).map(|_| heap.assign_arena()).collect();
    assert_eq!(homes, (0..shards).collect::<Vec<_>>(), "one per shard");
    if shards < 3 {
        return;
    }
    heap.thread_exited(2);
    heap.thread_exited(1);
    assert_eq!(heap.assign_arena(), 1, "the last exit first");
    assert_eq!(heap.assign_arena(), 2);
    heap.thread_exited(0);
    heap.thread_exited(2);
    assert_eq!((heap.assign_arena(), heap.assign_arena()), (2, 0));
    // No exit left, all shards equal: the lowest index.
    assert_eq!(heap.assign_arena(), 0, "all equal: the lowest index");
}

#[test]
fn mixed_batches_are_sorted_by_arena() {
    let heap = Box::new(Backend::new());
    // Two homes (as the first two threads get).
    assert_eq!((heap.assign_arena(), heap.assign_arena()), (0, 1));
    let class = class_of(64);
    let mut blocks = Vec::new();
    for home in [0, 1, 0, 1] {
        let mut got = heap.refill(class, Refill::new(8), home);
        blocks.extend(std::iter::from_fn(|| got.pop()));
    }
    // One batch alternating between the arenas, flushed sorted.
    let mut mixed = Chain::new();
    for &b in &blocks {
        // SAFETY: each block is live and given up here.
        unsafe { mixed.push(b) };
    }
    heap.flush(class, mixed, Owners::Mixed, Sender { thread: 7, home: 0 });
    for home in [0, 1] {
        let mut got = heap.refill(class, Refill::new(64), home);
        let mut n = 0;
        while let Some(b) = got.pop() {
            // SAFETY: `b` is a live block of this heap.
            let owner = unsafe { Backend::owner_of(b.cast()) };
            assert_eq!(owner, home, "a foreign block");
            // SAFETY: as above; it goes back to the heap.
            unsafe { heap.free_block(class, b.cast()) };
            n += 1;
        }
        assert_eq!(
            n, 16,
            "arena {home} got back its own 16 blocks in one batch"
        );
    }
    assert_eq!(heap.stats().cross_thread_batches, 2);
    assert_eq!(heap.check(Some(&[])).held, [0; NUM_CLASSES]);
}

#[test]
fn release_for_retry_unmaps_everything_the_heap_holds_unused() {
    let heap = Box::new(Backend::new());
    let class = class_of(48);
    let small: Vec<_> = (0..100_000).map(|_| heap.alloc_block(class, 0)).collect();
    let large: Vec<_> = (0..40)
        .map(|_| heap.alloc_big(1 << 20, 8, false, 0))
        .collect();
    let huge: Vec<_> = (0..4)
        .map(|_| heap.alloc_big(6 << 20, 8, false, 0))
        .collect();
    assert!(
        small
            .iter()
            .chain(&large)
            .chain(&huge)
            .all(|p| !p.is_null())
    );
    // SAFETY: every block is live, freed once, with its own size.
    unsafe {
        for &p in &small {
            heap.free_block(class, p);
        }
        for &p in &large {
            heap.free_big(p, 1 << 20, 8);
        }
        for &p in &huge {
            heap.free_big(p, 6 << 20, 8);
        }
    }
    let before = heap.stats();
    assert_eq!(before.allocated, 0);
    assert!(
        before.segments > 0 && before.mapped > before.segments * SEGMENT_SIZE,
        "empty slabs, retained segments and cached huge runs stay mapped: {before:?}"
    );
    heap.release_for_retry();
    let after = heap.stats();
    assert_eq!((after.segments, after.mapped), (0, 0), "{after:?}");
    assert_eq!(heap.check(Some(&[])).held, [0; NUM_CLASSES]);
    // The heap still serves every route afterwards.
    let p = heap.alloc_block(class, 0);
    let q = heap.alloc_big(6 << 20, 8, false, 0);
    assert!(!p.is_null() && !q.is_null());
    // SAFETY: live blocks, freed once.
    unsafe {
        heap.free_block(class, p);
        heap.free_big(q, 6 << 20, 8);
    }
    heap.collect();
}

#[test]
fn large_alloc_zero_resize_free() {
    let heap = Box::new(Backend::new());
    let p = heap.alloc_big(100_000, 8, true, 0);
    assert!(!p.is_null());
    // SAFETY: `p` is a live large block of 100_000 bytes (25 pages).
    unsafe {
        assert!(
            core::slice::from_raw_parts(p, 100_000)
                .iter()
                .all(|&b| b == 0)
        );
        p.write_bytes(0xCD, 100_000);
        assert_eq!(heap.check(Some(&[])).large_bytes, 25 * PAGE);
        assert_eq!(heap.resize_big(p, 200_000, 8), p, "grows into free pages");
        assert_eq!(*p.add(99_999), 0xCD);
        assert_eq!(heap.resize_big(p, 50_000, 8), p, "shrinks in place");
        heap.free_big(p, 50_000, 8);
        let q = heap.alloc_big(100_000, 8, true, 0);
        assert_eq!(q, p, "freed span reused");
        assert!(
            core::slice::from_raw_parts(q, 100_000)
                .iter()
                .all(|&b| b == 0),
            "dirty span cleared"
        );
        heap.free_big(q, 100_000, 8);
        let h = heap.alloc_big(8 << 20, 8, true, 0);
        assert_eq!(heap.stats().huge_blocks, 1);
        let check = heap.check(Some(&[]));
        assert_eq!((check.large_bytes, check.huge_blocks), (0, 1));
        heap.free_big(h, 8 << 20, 8);
        let st = heap.stats();
        assert_eq!((st.huge_blocks, st.allocated, st.active), (0, 0, 0));
    }
}

#[test]
fn refills_reuse_written_blocks_of_exited_threads_shards_before_fresh_ones() {
    let heap = Box::new(Backend::new());
    // Two homes (as the first two threads get).
    assert_eq!((heap.assign_arena(), heap.assign_arena()), (0, 1));
    let class = class_of(1024);
    let take = |home, want| {
        let mut got = heap.refill(class, Refill::new(want), home);
        std::iter::from_fn(move || got.pop()).collect::<Vec<_>>()
    };
    // Home 0 takes a batch and gives it back: its pool holds written blocks.
    let written = take(0, 16);
    assert!(written.len() >= 2, "a carve of 4 KiB at least");
    let mut batch = Chain::new();
    for &b in &written {
        // SAFETY: each block is live and given up here.
        unsafe { batch.push(b) };
    }
    heap.flush(class, batch, Owners::One, Sender { thread: 1, home: 0 });
    // While a thread calls home 0 home, home 1 takes none of them (two live
    // threads must not be handed one cache line): it carves its own slab.
    let own = take(1, 16);
    assert!(!own.is_empty() && own.iter().all(|b| !written.contains(b)));
    let slabs = heap.stats().classes()[class].slabs;
    // Home 0's thread exits: a refill of home 1 (a thread that used the
    // class before) takes its blocks rather than touching new ones.
    heap.thread_exited(0);
    let reused = take(1, 16);
    assert_eq!(reused.len(), written.len(), "the whole batch");
    assert!(reused.iter().all(|b| written.contains(b)), "written blocks");
    assert_eq!(heap.stats().classes()[class].slabs, slabs, "no slab carved");
    // Freed, a block goes back to its own arena's slab; from its free list
    // too (the slab not empty: one block stays out), home 1 reuses it
    // before its own slab's blocks never handed out.
    let (kept, rest) = reused.split_first().expect("blocks");
    for &b in rest {
        // SAFETY: a live block, freed once.
        unsafe { heap.free_block(class, b.cast()) };
    }
    let again = take(1, 4);
    assert_eq!(again.len(), rest.len().min(4));
    assert!(again.iter().all(|b| rest.contains(b)), "freed blocks first");
    let rest_out = rest.iter().filter(|b| !again.contains(b)).count();
    assert_eq!(rest_out, rest.len() - again.len());
    for b in again.into_iter().chain(own).chain([*kept]) {
        // SAFETY: live blocks, freed once.
        unsafe { heap.free_block(class, b.cast()) };
    }
    assert_eq!(heap.check(Some(&[])).held, [0; NUM_CLASSES]);
}

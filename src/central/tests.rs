//! Unit tests of `central`.

use super::*;

/// A witness: the tests inspect a slab when no other thread runs.
#[cfg_attr(feature = "hardened", allow(dead_code))]
fn lock() -> SlabLock {
    // SAFETY: no other thread reaches a test's pools.
    unsafe { SlabLock::new() }
}
use crate::size_class::class_of;

/// A pool on its own arena (index 0), as one thread's tests use it.
struct Pool {
    central: Central,
    arena: Arena,
    class: usize,
}

impl Pool {
    fn new(class: usize) -> Box<Self> {
        Box::new(Self {
            central: Central::new(),
            arena: Arena::new(),
            class,
        })
    }

    fn home(&self) -> Home<'_> {
        Home {
            arena: &self.arena,
            index: 0,
        }
    }

    fn refill(&self, want: u32) -> Chain {
        self.refill_as(want, 1)
    }

    fn refill_as(&self, want: u32, thread: u32) -> Chain {
        let ask = Refill { want, thread };
        self.central.refill(self.class, ask, self.home())
    }

    fn flush(&self, list: Chain) {
        self.flush_as(list, 1);
    }

    fn flush_as(&self, list: Chain, thread: u32) {
        let foreign = self.central.flush(self.class, list, thread, self.home());
        assert!(foreign.is_empty(), "every block is the pool's own");
    }

    fn free(&self, b: *mut crate::block::Block) {
        let mut list = Chain::new();
        // SAFETY: the caller gives up `b`, a live block of the class.
        unsafe { list.push(b) };
        let foreign = self.central.free_blocks(self.class, list, self.home());
        assert!(foreign.is_empty());
    }

    fn trim(&self) {
        assert!(self.central.trim(self.class, self.home()).is_empty());
    }

    fn collect(&self) -> usize {
        let (pages, foreign) = self.central.collect(self.class, self.home());
        assert!(foreign.is_empty());
        pages
    }

    fn counts(&self) -> CentralCounts {
        self.central.counts()
    }
}

fn slab_of(b: *mut crate::block::Block) -> Slab {
    // SAFETY: `b` is a live block of a slab in a live segment.
    unsafe { Slab::of_block(b.cast()) }
}

#[cfg(not(feature = "hardened"))] // address order (see `carve_order`)
#[test]
fn blocks_flow_through_transfer_and_back_to_slabs() {
    // A multiple of a cache line: no carve stops short.
    let pool = Pool::new(class_of(128));
    let info = CLASSES[pool.class];
    let mut got = pool.refill(10);
    assert_eq!(got.len(), 10);
    let first = got.pop().expect("block");
    let slab = slab_of(first);
    assert_eq!(slab.0.class(), pool.class);
    assert_eq!(first.cast::<u8>(), slab.0.start());
    assert_eq!(slab.accounting(&mut lock()), (10, 10, 0, 0));
    // Return four blocks straight to the slab.
    pool.free(first);
    for _ in 0..3 {
        pool.free(got.pop().expect("block"));
    }
    assert_eq!(slab.accounting(&mut lock()), (6, 10, 4, 0));
    let again = pool.refill(6);
    assert_eq!(
        slab.accounting(&mut lock()),
        (12, 12, 0, 0),
        "freed blocks first"
    );
    // Through the transfer stack: blocks stay live for their slab.
    pool.flush(again);
    let counts = pool.counts();
    assert_eq!((counts.transfer_blocks, counts.live_blocks), (6, 12));
    assert_eq!(slab.accounting(&mut lock()), (12, 12, 0, 0));
    pool.flush(got);
    pool.collect();
    let counts = pool.counts();
    assert_eq!(
        (
            counts.slabs,
            counts.empty_slabs,
            counts.live_blocks,
            counts.transfer_blocks
        ),
        (0, 0, 0, 0),
        "collect returned the empty slab"
    );
    assert!(info.capacity > 12);
}

#[test]
fn refill_prefers_the_fullest_slab() {
    let pool = Pool::new(class_of(4096));
    let cap = CLASSES[pool.class].capacity;
    // A carve links at most a page of blocks: refill until the slab is
    // used up.
    let whole_slab = || {
        let mut v = Vec::new();
        while v.len() < cap as usize {
            let mut got = pool.refill(cap - v.len() as u32);
            v.extend(std::iter::from_fn(|| got.pop()));
        }
        v
    };
    let mut a = whole_slab();
    let mut b = whole_slab();
    assert_eq!((a.len(), b.len()), (cap as usize, cap as usize));
    let slab_b = slab_of(b.pop().expect("block"));
    // Free most of slab a and one block of slab b.
    for _ in 0..cap - 1 {
        pool.free(a.pop().expect("block"));
    }
    pool.free(b.pop().expect("block"));
    // The next block comes from b, the fuller one.
    let mut next = pool.refill(1);
    assert_eq!(slab_of(next.pop().expect("block")), slab_b);
}

#[test]
fn idle_classes_are_trimmed() {
    let pool = Pool::new(class_of(64));
    let list = pool.refill(64);
    pool.flush(list);
    assert_eq!(pool.counts().transfer_blocks, 64);
    pool.trim();
    assert_eq!(pool.counts().transfer_blocks, 64, "active: kept");
    pool.trim();
    let counts = pool.counts();
    assert_eq!(
        (counts.transfer_blocks, counts.slabs),
        (0, 0),
        "idle: returned"
    );
    assert_eq!(pool.arena.counts().segments, 1, "segment retained");
}

#[test]
fn live_block_counts_track_every_path() {
    let pool = Pool::new(class_of(2048));
    let mut lists: Vec<_> = (0..20).map(|_| pool.refill(16)).collect();
    let total: usize = lists.iter().map(|l| l.len() as usize).sum();
    assert_eq!(pool.counts().live_blocks, total);
    for l in lists.drain(..10) {
        pool.flush(l);
    }
    for mut l in lists {
        while let Some(b) = l.pop() {
            pool.free(b);
        }
    }
    let c = pool.counts();
    assert_eq!(c.live_blocks, c.transfer_blocks);
    pool.collect();
    let c = pool.counts();
    assert_eq!(
        (c.slabs, c.live_blocks, c.transfer_blocks, c.purged_pages),
        (0, 0, 0, 0)
    );
}

#[test]
fn counts_lock_acquisitions_and_batches_taken_from_another_thread() {
    let pool = Pool::new(class_of(64));
    let mine = pool.refill_as(8, 1);
    let theirs = pool.refill_as(8, 2);
    pool.flush_as(mine, 1);
    pool.flush_as(theirs, 2);
    // Thread 1 pops thread 2's batch (the top), then its own.
    let a = pool.refill_as(8, 1);
    let b = pool.refill_as(8, 1);
    let c = pool.counts();
    assert_eq!(c.cross_thread_batches, 1);
    // One per refill and flush, and one more for the refill that
    // carved the slab (it drops the lock while it carves).
    assert_eq!(c.locks.acquisitions, 7);
    assert_eq!((c.locks.waits, c.locks.sleeps), (0, 0), "one thread");
    pool.flush(a);
    pool.flush(b);
    pool.collect();
}

#[test]
fn blocks_of_other_arenas_are_handed_back() {
    // Two pools of one class on two arenas (indexes 0 and 1).
    let (p0, p1) = (Pool::new(class_of(32)), Pool::new(class_of(32)));
    let home1 = Home {
        arena: &p1.arena,
        index: 1,
    };
    let ask = Refill { want: 4, thread: 1 };
    let ours = p0.refill(4);
    let theirs = p1.central.refill(p1.class, ask, home1);
    let (ours_addrs, theirs_addrs) = (addrs(&ours), addrs(&theirs));
    let first = theirs_addrs[0] as *mut crate::block::Block;
    assert_eq!(slab_of(first).0.segment().arena(), 1);
    // A mixed list: pool 0 keeps its own blocks, returns the rest in
    // order.
    let mut mixed = Chain::new();
    for &b in ours_addrs.iter().rev().chain(theirs_addrs.iter().rev()) {
        // SAFETY: each block is live and given up here.
        unsafe { mixed.push(b as *mut crate::block::Block) };
    }
    // Their blocks are linked into `mixed` now.
    let _ = (ours.into_raw(), theirs.into_raw());
    let back = p0.central.free_blocks(p0.class, mixed, p0.home());
    assert_eq!(addrs(&back), theirs_addrs);
    assert_eq!(p0.counts().live_blocks, 0);
    assert_eq!(p1.counts().live_blocks, 4);
    assert!(p1.central.free_blocks(p1.class, back, home1).is_empty());
    assert_eq!(p1.counts().live_blocks, 0);
    assert_eq!(ours_addrs.len(), 4);
    pool_collect_all(&p0, &p1, home1);
}

fn addrs(list: &Chain) -> Vec<usize> {
    let mut v = Vec::new();
    list.check("test list", |b| v.push(b as usize));
    v
}

fn pool_collect_all(p0: &Pool, p1: &Pool, home1: Home) {
    p0.collect();
    let (_, foreign) = p1.central.collect(p1.class, home1);
    assert!(foreign.is_empty());
}

#[test]
fn a_class_grows_when_it_carves_in_quick_succession_and_is_big() {
    use state::{GROWTH_MS, GROWTH_SLABS, GROWTH_STREAK};
    assert_eq!(GROWTH_STREAK, 2, "the sequence below assumes it");
    let central = Central::new();
    central.locked(|st| {
        st.slabs = GROWTH_SLABS;
        let t = 1000;
        assert!(!st.growing(t), "a first carve");
        assert!(!st.growing(t + 1), "one soon after");
        assert!(st.growing(t + 2), "two soon after");
        assert!(st.growing(t + 2 + GROWTH_MS - 1), "and more");
        let t = t + 2 + 3 * GROWTH_MS;
        assert!(!st.growing(t), "after a pause");
        assert!(!st.growing(t + 1));
        assert!(st.growing(t + 2), "growing again");
        st.slabs = GROWTH_SLABS - 1;
        assert!(!st.growing(t + 3), "too few slabs");
        st.slabs = GROWTH_SLABS;
        assert!(st.growing(t + 4), "the streak went on");
        // A clock read before the last carve (the counter wrapped) is no
        // quick succession.
        assert!(!st.growing(t.wrapping_sub(1)));
    });
}

#[cfg(not(loom))]
#[test]
fn a_fast_growing_class_gets_its_new_slabs_written_in_ahead() {
    if os::tests::emulated() || os::page_size() != os::PAGE {
        // An emulator ignores the advice; with larger OS pages a slab's
        // pages past its first block may hold no whole OS page.
        println!(
            "skipped: an emulator, or OS pages of {} bytes",
            os::page_size()
        );
        return;
    }
    let pool = Pool::new(class_of(4096));
    let info = &CLASSES[pool.class];
    assert_eq!(info.size as usize, os::PAGE, "a block per page");
    // The blocks' pages past the first, which one block handed out does
    // not touch.
    let tail = |b: *mut crate::block::Block| {
        let slab = slab_of(b);
        let start = slab.0.start().wrapping_add(os::PAGE);
        (start, info.slab_pages as usize - 1)
    };
    // Whether every one of the `pages` OS pages from `p` is in RAM (OS
    // pages are slabpool's here).
    let resident = |p: *mut u8, pages: usize| os::tests::resident(p, pages).iter().all(|&r| r);
    let mut held = Vec::new();
    let mut first = true;
    let mut populated = false;
    // Each round carves a slab, takes one block of it, looks at the rest,
    // then takes every block of the slab (so the next round carves).
    for round in 0..4 * state::GROWTH_SLABS {
        let mut got = pool.refill(1);
        let b = got.pop().expect("a block");
        held.push(b);
        let (start, len) = tail(b);
        if first {
            assert!(
                !resident(start, len),
                "a class's first slab faults in as used"
            );
            first = false;
        } else if resident(start, len) {
            assert!(
                round >= state::GROWTH_SLABS - 1,
                "populated at round {round}"
            );
            populated = true;
            break;
        }
        while held.len() % info.capacity as usize != 0 {
            let mut got = pool.refill(info.capacity - (held.len() % info.capacity as usize) as u32);
            held.extend(std::iter::from_fn(|| got.pop()));
        }
    }
    assert!(populated, "no slab was written in ahead");
    // A class that gives slabs back is no longer growing.
    for b in held.drain(..) {
        pool.free(b);
    }
    pool.collect();
    assert_eq!(pool.central.locked(|st| st.carve_streak), 0);
}

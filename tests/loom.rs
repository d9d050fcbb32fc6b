//! Loom models of every structure slabpool's threads share.
//!
//! Run (see `LOOM.md`):
//! `RUSTFLAGS="--cfg loom" cargo test --test loom --target-dir target/loom`
//!
//! Each model builds tiny instances of slabpool's own types through
//! `slabpool::testing::model` (64 KiB segments of 16 pages, slabs of 2 to 8 blocks,
//! batches of 2, transfer stacks of 2 batches), runs two threads on them in
//! every interleaving loom explores within the model's preemption bound, and
//! then checks conservation: no block handed out twice, none lost, slab and
//! arena counts exact, and at the end every page back and every segment
//! unmapped. Memory comes from `os::reserve` (mmap), never from the global
//! allocator that loom itself uses.
//!
//! slabpool has no lock-free stack (a central pool's transfer stack sits
//! behind the pool's lock), so there is no ABA scenario to model. What shows
//! that the models can fail is `broken_lock_is_caught`: the central-pool
//! model run with a lock whose acquire is a load-then-store, which loom must
//! reject.

#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use slabpool::testing::model::*;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

/// Class `i` as the thread cache's fast paths take it.
fn sc(i: usize) -> SizeClass {
    SizeClass::new(i).expect("a class")
}

/// A slab witness for a model's checks, made once its threads are joined.
fn quiescent() -> SlabLock {
    // SAFETY: the models inspect slabs only after joining every thread.
    unsafe { SlabLock::new() }
}

// ---------------------------------------------------------------------------
// Harness

std::thread_local! {
    /// Outcomes reached, over all executions of the running model (loom
    /// runs every thread of a model on the OS thread of its test).
    static OUTCOMES: RefCell<BTreeMap<&'static str, usize>> = const { RefCell::new(BTreeMap::new()) };
    /// Program points passed in the current execution, in order.
    static EVENTS: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

/// Records that the current execution ended in outcome `label`.
fn outcome(label: &'static str) {
    OUTCOMES.with(|o| *o.borrow_mut().entry(label).or_default() += 1);
}

/// Records that a thread of the current execution passed point `label`.
fn event(label: &'static str) {
    EVENTS.with(|e| e.borrow_mut().push(label));
}

/// The points passed so far in the current execution.
fn events() -> Vec<&'static str> {
    EVENTS.with(|e| e.borrow().clone())
}

/// A preemption bound the small models never reach: with it they explore
/// exactly as many executions as with 100 (measured), so their search is
/// complete. (Loom with no bound at all runs plain DPOR, which in loom 0.7.3
/// missed a reachable outcome of `empty_slab_races_segment_free`; a bounded
/// search adds conservative backtracking points.)
const SATURATED: usize = 20;

/// Explores `model` with at most `bound` preemptions per execution
/// (`LOOM_MAX_PREEMPTIONS` overrides it), reports executions, outcomes and
/// time, and checks that every outcome in `expected` was reached (so the
/// model does explore the race it is about).
fn check(name: &str, bound: usize, expected: &[&str], model: fn()) {
    let mut builder = loom::model::Builder::new();
    let bound = *builder.preemption_bound.get_or_insert(bound);
    builder.max_branches = builder.max_branches.max(100_000);
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    OUTCOMES.with(|o| o.borrow_mut().clear());
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Relaxed);
        EVENTS.with(|e| e.borrow_mut().clear());
        set_clock_ms(0);
        // The model's own thread gets a large stack like the others.
        spawn(model).join().unwrap();
    });
    let outcomes = OUTCOMES.with(|o| o.borrow().clone());
    eprintln!(
        "loom model {name}: preemption bound {bound}, {} executions, {:.2?}, outcomes {outcomes:?}",
        runs.load(Relaxed),
        start.elapsed(),
    );
    for label in expected {
        assert!(
            outcomes.contains_key(label),
            "{name}: outcome {label:?} never reached"
        );
    }
}

/// Stack of a model thread, in words: slabpool's slow paths under loom's
/// instrumentation need more than loom's default.
const STACK_WORDS: usize = 1 << 15;

/// Spawns a model thread.
fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    thread::Builder::new()
        .stack_size(STACK_WORDS)
        .spawn(f)
        .expect("spawn")
}

/// The class a request of `size` bytes is served from.
fn class_for(size: usize) -> usize {
    match route(size, 8) {
        Route::Small(class) => class.index(),
        other => panic!("{size} bytes route to {other:?}"),
    }
}

fn addrs(mut list: Chain) -> Vec<usize> {
    let mut v = Vec::new();
    while let Some(b) = list.pop() {
        v.push(b as usize);
    }
    v
}

fn list_of(blocks: &[usize]) -> Chain {
    let mut list = Chain::new();
    for &b in blocks {
        // SAFETY: every address a model passes here is a live block it got
        // from slabpool and gives up now.
        unsafe { list.push(b as *mut Block) };
    }
    list
}

fn slab_of(b: usize) -> Slab {
    // SAFETY: `b` is a block a model got from slabpool, in a live slab.
    unsafe { Slab::of_block(b as *const u8) }
}

/// Checks that `blocks` are distinct, whole blocks of slabs of `class`.
fn assert_distinct_blocks(class: usize, blocks: &[usize]) {
    let mut sorted = blocks.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), blocks.len(), "a block handed out twice");
    let size = CLASSES[class].size as usize;
    for &b in blocks {
        let slab = slab_of(b);
        assert_eq!(slab.0.kind(), SpanKind::Slab);
        assert_eq!(slab.0.class(), class);
        let offset = b - slab.0.start() as usize;
        assert_eq!(offset % size, 0, "block boundary");
        assert!(offset + size <= slab.0.bytes(), "inside its slab");
    }
}

/// Checks that `seg`'s spans tile it, that no two free spans touch (free
/// runs always coalesce), and that its free page count is their sum.
/// Returns the spans as (first page, pages, kind).
fn spans_of(seg: SegmentRef) -> Vec<(usize, usize, SpanKind)> {
    let mut spans = Vec::new();
    let mut cur = Some(seg.first_span());
    let mut next_page = FIRST_PAGE;
    let mut free = 0;
    while let Some(span) = cur {
        let (first, pages, kind) = (span.first_page(), span.pages(), span.kind());
        assert_eq!(first, next_page, "spans tile the segment");
        assert!(pages >= 1 && matches!(kind, SpanKind::Free | SpanKind::Slab | SpanKind::Large));
        if kind == SpanKind::Free {
            assert!(
                spans.last().is_none_or(|&(_, _, k)| k != SpanKind::Free),
                "adjacent free spans left unmerged"
            );
            free += pages;
        }
        spans.push((first, pages, kind));
        next_page = first + pages;
        cur = seg.next_span(span);
    }
    assert_eq!(next_page, PAGES);
    assert_eq!(seg.free_pages(), free, "free page count");
    spans
}

/// Unmaps the arena's empty segments and checks that nothing is left.
fn finish_arena(arena: &Arena) {
    arena.trim();
    let counts = arena.counts();
    assert_eq!(counts.segments, 0, "a segment still in use");
    assert_eq!(counts.committed_bytes, 0, "committed pages left");
}

/// A central pool of one class with its own arena (index 0).
struct Pool {
    central: Central,
    arena: Arena,
    class: usize,
}

impl Pool {
    fn new(size: usize) -> Self {
        Self {
            central: Central::new(),
            arena: Arena::new(),
            class: class_for(size),
        }
    }

    fn info(&self) -> &'static ClassInfo {
        &CLASSES[self.class]
    }

    fn arena(&self) -> &Arena {
        &self.arena
    }

    fn home(&self) -> Home<'_> {
        Home {
            arena: &self.arena,
            index: 0,
        }
    }

    /// A thread cache's refill: up to `want` blocks.
    fn refill(&self, want: u32) -> Vec<usize> {
        addrs(
            self.central
                .refill(self.class, Refill::new(want), self.home()),
        )
    }

    /// A thread cache's flush of one batch.
    fn flush(&self, blocks: &[usize]) {
        let foreign = self
            .central
            .flush(self.class, list_of(blocks), 0, self.home());
        assert!(foreign.is_empty(), "every block is the pool's own");
    }

    /// A free straight to the block's slab.
    fn free(&self, b: usize) {
        let foreign = self
            .central
            .free_blocks(self.class, list_of(&[b]), self.home());
        assert!(foreign.is_empty());
    }

    /// Maintenance of the class.
    fn trim(&self) {
        assert!(self.central.trim(self.class, self.home()).is_empty());
    }

    /// `collect` of the class: the slab pages decommitted.
    fn collect(&self) -> usize {
        let (pages, foreign) = self.central.collect(self.class, self.home());
        assert!(foreign.is_empty());
        pages
    }

    fn counts(&self) -> CentralCounts {
        self.central.counts()
    }

    /// Gives back `held` and checks that the pool and its arena end empty.
    fn finish(&self, held: &[usize]) {
        self.flush(held);
        self.collect();
        let c = self.counts();
        assert_eq!(
            (
                c.slabs,
                c.empty_slabs,
                c.live_blocks,
                c.transfer_blocks,
                c.cached_blocks,
                c.purged_pages
            ),
            (0, 0, 0, 0, 0, 0),
            "blocks or slabs left"
        );
        finish_arena(self.arena());
    }
}

// ---------------------------------------------------------------------------
// Central pool

/// Two threads each take a batch, flush it back and take a batch again, on
/// one class whose slabs they also race to create: the four blocks held at
/// the end are distinct, and every block out of its slab is held or on the
/// transfer stack.
fn central_batches() {
    let pool = Arc::new(Pool::new(1024));
    assert_eq!((pool.info().batch, pool.info().capacity), (2, 4));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            spawn(move || {
                let first = pool.refill(2);
                assert_eq!(first.len(), 2);
                pool.flush(&first);
                let second = pool.refill(2);
                assert_eq!(second.len(), 2);
                second
            })
        })
        .collect();
    let held: Vec<usize> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_distinct_blocks(pool.class, &held);
    let c = pool.counts();
    assert_eq!(c.live_blocks, held.len() + c.transfer_blocks);
    match c.slabs {
        1 => outcome("one slab"),
        2 => outcome("two slabs"),
        n => panic!("{n} slabs for four blocks"),
    }
    pool.finish(&held);
}

#[test]
fn central_batches_are_conserved() {
    check(
        "central_batches_are_conserved",
        5,
        &["one slab", "two slabs"],
        central_batches,
    );
}

/// The models can fail: the same model with a lock whose acquire is a
/// plain load then store lets both threads into a central pool at once,
/// and loom reports the concurrent access to the pool's state.
#[test]
#[should_panic(expected = "Causality violation")]
fn broken_lock_is_caught() {
    break_locks(true);
    check("broken_lock_is_caught", 2, &[], central_batches);
}

/// A flush finds the transfer stack full (two batches here) and returns
/// its batch block by block to the slabs, while a refill pops the top batch
/// and so makes room: the flushed batch ends on the stack or in its slab,
/// never both, and the refill gets the top batch whole.
fn full_transfer() {
    let pool = Arc::new(Pool::new(1024));
    let (a, b, c) = (pool.refill(2), pool.refill(2), pool.refill(2));
    pool.flush(&a);
    pool.flush(&b);
    assert_eq!(pool.counts().transfer_blocks, 4, "the stack is full");
    let flusher = {
        let pool = pool.clone();
        let c = c.clone();
        spawn(move || pool.flush(&c))
    };
    let refiller = {
        let pool = pool.clone();
        spawn(move || pool.refill(2))
    };
    flusher.join().unwrap();
    let mut got = refiller.join().unwrap();
    got.sort_unstable();
    let mut top = b.clone();
    top.sort_unstable();
    assert_eq!(got, top, "the refill pops the top batch");
    let counts = pool.counts();
    assert_eq!(counts.live_blocks, got.len() + counts.transfer_blocks);
    match (counts.transfer_blocks, counts.empty_slabs) {
        (2, 1) => outcome("flush went back to the slab"),
        (4, 0) => outcome("refill made room first"),
        other => panic!("transfer blocks and empty slabs: {other:?}"),
    }
    assert_eq!(counts.slabs, 2);
    pool.finish(&got);
}

#[test]
fn full_transfer_stack_flush_races_refill() {
    check(
        "full_transfer_stack_flush_races_refill",
        SATURATED,
        &["flush went back to the slab", "refill made room first"],
        full_transfer,
    );
}

/// A cross-thread free races with the owner's allocation from the same
/// slab (in slabpool a block freed by another thread reaches its slab
/// through the central pool). The slab has one fresh block left; one thread
/// frees a block into it while another refills two blocks from it (fresh
/// blocks first). The owner gets the fresh block and, if the free came
/// first, the freed one; never a live block. The slab's accounting balances
/// either way.
fn remote_free_vs_refill() {
    let pool = Arc::new(Pool::new(1024));
    let mine = pool.refill(3);
    let slab = slab_of(mine[0]);
    let freed = mine[0];
    let remote = {
        let pool = pool.clone();
        spawn(move || pool.free(freed))
    };
    let owner = {
        let pool = pool.clone();
        spawn(move || pool.refill(2))
    };
    remote.join().unwrap();
    let got = owner.join().unwrap();
    for &b in &got {
        assert_eq!(slab_of(b), slab, "served from the same slab");
    }
    let mut held = vec![mine[1], mine[2]];
    held.extend(&got);
    assert_distinct_blocks(pool.class, &held);
    let (live, bumped, on_free, parked) = slab.accounting(&mut quiescent());
    assert_eq!((live as usize, bumped, parked), (held.len(), 4, 0));
    if got.contains(&freed) {
        assert_eq!(
            (got.len(), on_free),
            (2, 0),
            "the fresh block, then the freed one"
        );
        outcome("freed block reused");
    } else {
        assert_eq!(
            (got.len(), on_free),
            (1, 1),
            "the fresh block; the freed one waits"
        );
        outcome("fresh block only");
    }
    let c = pool.counts();
    assert_eq!((c.slabs, c.live_blocks), (1, held.len()));
    pool.finish(&held);
}

#[test]
fn remote_free_races_owner_refill() {
    check(
        "remote_free_races_owner_refill",
        SATURATED,
        &["freed block reused", "fresh block only"],
        remote_free_vs_refill,
    );
}

/// Two threads free the last blocks of a slab, the only span in use in its
/// segment: whichever frees last finds it empty and returns it to the arena,
/// exactly once (a second release would count its pages free twice).
fn last_frees() {
    let pool = Arc::new(Pool::new(1024));
    let all = pool.refill(4);
    let slab = slab_of(all[0]);
    assert!(all.iter().all(|&b| slab_of(b) == slab), "one slab");
    let seg = slab.0.segment();
    let threads: Vec<_> = [[all[0], all[1]], [all[2], all[3]]]
        .into_iter()
        .map(|mine| {
            let pool = pool.clone();
            spawn(move || mine.iter().for_each(|&b| pool.free(b)))
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let c = pool.counts();
    assert_eq!((c.slabs, c.live_blocks), (0, 0), "the empty slab went back");
    assert_eq!(spans_of(seg), [(FIRST_PAGE, USABLE_PAGES, SpanKind::Free)]);
    assert_eq!(pool.arena().counts().segments, 1, "kept, empty");
    pool.finish(&[]);
}

#[test]
fn slab_emptied_by_two_threads_is_released_once() {
    check(
        "slab_emptied_by_two_threads_is_released_once",
        SATURATED,
        &[],
        last_frees,
    );
}

/// A slab becomes empty while another thread frees into it and allocates
/// from the class: one thread frees three blocks, the other frees the
/// fourth and refills one. If the slab emptied first it was released once
/// and the refill carved a new one; otherwise the refill took from it.
/// Either way exactly one slab of one page is in use afterwards.
fn empty_vs_refill() {
    let pool = Arc::new(Pool::new(1024));
    let all = pool.refill(4);
    let seg = slab_of(all[0]).0.segment();
    let freer = {
        let pool = pool.clone();
        let three = [all[0], all[1], all[2]];
        spawn(move || three.iter().for_each(|&b| pool.free(b)))
    };
    let last = all[3];
    let taker = {
        let pool = pool.clone();
        spawn(move || {
            pool.free(last);
            pool.refill(1)
        })
    };
    freer.join().unwrap();
    let got = taker.join().unwrap();
    assert_eq!(got.len(), 1);
    assert_distinct_blocks(pool.class, &got);
    let c = pool.counts();
    assert_eq!((c.slabs, c.live_blocks, c.empty_slabs), (1, 1, 0));
    let slab = slab_of(got[0]);
    assert_eq!(slab.0.segment(), seg, "the segment is reused");
    let (live, bumped, on_free, parked) = slab.accounting(&mut quiescent());
    assert_eq!((live, parked), (1, 0));
    assert_eq!(live + on_free, bumped);
    let spans = spans_of(seg);
    assert_eq!(spans.iter().filter(|s| s.2 == SpanKind::Slab).count(), 1);
    assert_eq!(seg.free_pages(), USABLE_PAGES - 1, "one page in use");
    // A released slab's page is decommitted at once (a cold arena).
    match pool.arena().counts().decommits {
        0 => outcome("refilled from the old slab"),
        1 => outcome("released, then a new slab"),
        n => panic!("{n} decommits: released more than once"),
    }
    pool.finish(&got);
}

#[test]
fn slab_emptied_while_refilled_is_released_once() {
    check(
        "slab_emptied_while_refilled_is_released_once",
        8,
        &["refilled from the old slab", "released, then a new slab"],
        empty_vs_refill,
    );
}

/// A slab empties while another span of its segment is freed: the pool
/// decides whether to keep the empty slab by reading the segment's free
/// page count without the arena lock. Either the slab is released at once
/// (it was the segment's last span in use) or kept as the class's one empty
/// slab; never released twice, and an idle-class trim releases a kept one.
fn empty_slab_vs_segment_free() {
    let pool = Arc::new(Pool::new(1024));
    let all = pool.refill(4);
    let seg = slab_of(all[0]).0.segment();
    let large = pool
        .arena()
        .alloc_span(0, 1, 1, SpanKind::Large)
        .expect("span")
        .span;
    assert_eq!(large.segment(), seg);
    all[1..].iter().for_each(|&b| pool.free(b));
    let last = all[0];
    let freer = {
        let pool = pool.clone();
        spawn(move || pool.free(last))
    };
    let arena_free = {
        let pool = pool.clone();
        spawn(move || pool.arena().free_span(large))
    };
    freer.join().unwrap();
    arena_free.join().unwrap();
    let c = pool.counts();
    let spans = spans_of(seg);
    match c.slabs {
        0 => {
            assert_eq!(spans, [(FIRST_PAGE, USABLE_PAGES, SpanKind::Free)]);
            outcome("released");
        }
        1 => {
            assert_eq!(c.empty_slabs, 1);
            assert_eq!(spans.iter().filter(|s| s.2 != SpanKind::Free).count(), 1);
            outcome("kept as the empty slab");
        }
        n => panic!("{n} slabs"),
    }
    // Two trims: the first sees the class active (its refill), the second
    // finds it idle and releases its empty slab.
    pool.trim();
    pool.trim();
    assert_eq!(pool.counts().slabs, 0);
    assert_eq!(spans_of(seg), [(FIRST_PAGE, USABLE_PAGES, SpanKind::Free)]);
    pool.finish(&[]);
}

#[test]
fn empty_slab_races_segment_free() {
    // A cold arena's frees decommit outside the lock (two acquisitions and
    // the dirty-bitmap atomics each): the search no longer saturates; 6
    // preemptions take seconds (5: 17,631 executions).
    check(
        "empty_slab_races_segment_free",
        6,
        &["released", "kept as the empty slab"],
        empty_slab_vs_segment_free,
    );
}

// ---------------------------------------------------------------------------
// Arena

/// Two threads free adjacent page runs at once, between a span in use and
/// the segment's free tail: whichever order the arena lock gives them, they
/// merge with each other and the tail into one free span, which is binned
/// whole (a request for all of it is served from it).
fn adjacent_frees() {
    let arena = Arc::new(Arena::new());
    let spans: Vec<SpanRef> = (0..3)
        .map(|_| {
            arena
                .alloc_span(0, 1, 1, SpanKind::Large)
                .expect("span")
                .span
        })
        .collect();
    let seg = spans[0].segment();
    let pages: Vec<_> = spans.iter().map(|s| s.first_page()).collect();
    assert_eq!(pages, [FIRST_PAGE, FIRST_PAGE + 1, FIRST_PAGE + 2]);
    let threads: Vec<_> = [("left", spans[1]), ("right", spans[2])]
        .into_iter()
        .map(|(side, span)| {
            let arena = arena.clone();
            spawn(move || {
                arena.free_span(span);
                event(side);
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(
        spans_of(seg),
        [
            (FIRST_PAGE, 1, SpanKind::Large),
            (FIRST_PAGE + 1, USABLE_PAGES - 1, SpanKind::Free)
        ]
    );
    outcome(if events()[0] == "left" {
        "left first"
    } else {
        "right first"
    });
    let merged = arena
        .alloc_span(0, USABLE_PAGES - 1, 1, SpanKind::Large)
        .expect("the merged run")
        .span;
    assert_eq!(
        (merged.segment(), merged.first_page()),
        (seg, FIRST_PAGE + 1)
    );
    assert_eq!(arena.counts().segments, 1);
    arena.free_span(merged);
    arena.free_span(spans[0]);
    assert_eq!(spans_of(seg), [(FIRST_PAGE, USABLE_PAGES, SpanKind::Free)]);
    finish_arena(&arena);
}

#[test]
fn adjacent_runs_freed_at_once_coalesce() {
    // Both frees decommit outside the lock: the search no longer
    // saturates (bound 5: 97,426 executions, 12 s here; 6: 306,240, two
    // minutes, which passed too: LOOM.md).
    check(
        "adjacent_runs_freed_at_once_coalesce",
        5,
        &["left first", "right first"],
        adjacent_frees,
    );
}

/// A cold arena decommits a freed run outside its lock: the run leaves
/// the bins (kind `PURGING`) for the system call. One thread frees a page
/// run while another allocates a run of the same length and writes to it:
/// the allocation gets the freed run only once its decommit is over
/// (`MADV_DONTNEED` would zero what it wrote), or another run. Either way
/// the write survives, and the free runs merge again once the purge ends.
fn purge_vs_alloc() {
    let arena = Arc::new(Arena::new());
    let spans: Vec<SpanRef> = (0..2)
        .map(|_| {
            arena
                .alloc_span(0, 1, 1, SpanKind::Large)
                .expect("span")
                .span
        })
        .collect();
    let seg = spans[0].segment();
    let freed = spans[0];
    let freer = {
        let arena = arena.clone();
        spawn(move || arena.free_span(freed))
    };
    let taker = {
        let arena = arena.clone();
        spawn(move || {
            let span = arena
                .alloc_span(0, 1, 1, SpanKind::Large)
                .expect("span")
                .span;
            // SAFETY: the span is ours, a page of a live segment.
            unsafe { span.start().cast::<u64>().write(0xA110C) };
            span
        })
    };
    freer.join().unwrap();
    let got = taker.join().unwrap();
    // SAFETY: as above.
    let kept = unsafe { got.start().cast::<u64>().read() };
    assert_eq!(kept, 0xA110C, "a purge zeroed an allocated page");
    outcome(if got.first_page() == FIRST_PAGE {
        "reused the run once purged"
    } else {
        "took another run"
    });
    assert!(seg.is_clean(FIRST_PAGE, 1) || got.first_page() == FIRST_PAGE);
    arena.free_span(got);
    arena.free_span(spans[1]);
    assert_eq!(spans_of(seg), [(FIRST_PAGE, USABLE_PAGES, SpanKind::Free)]);
    finish_arena(&arena);
}

#[test]
fn purge_outside_the_lock_races_alloc() {
    check(
        "purge_outside_the_lock_races_alloc",
        SATURATED,
        &["reused the run once purged", "took another run"],
        purge_vs_alloc,
    );
}

/// The dirty-page bitmap word of a segment updated by two lock holders at
/// once: a central pool (its lock) purges an idle page of its slab, clearing
/// that page's bit, while the arena (its lock) frees a span, clearing its
/// bits, and carves a new one, setting bits, all in the same word. No update
/// is lost: the bitmap is exact and the arena's committed count matches it.
fn dirty_bits() {
    let pool = Arc::new(Pool::new(4096));
    assert_eq!((pool.info().slab_pages, pool.info().capacity), (2, 2));
    // A carve links at most a page: one 4 KiB block per refill.
    let mut blocks = pool.refill(2);
    blocks.extend(pool.refill(1));
    blocks.sort_unstable();
    let (keep, idle) = (blocks[0], blocks[1]);
    let slab = slab_of(keep);
    let seg = slab.0.segment();
    let first = slab.0.first_page();
    let large = pool
        .arena()
        .alloc_span(0, 1, 1, SpanKind::Large)
        .expect("span")
        .span;
    assert_eq!((large.segment(), large.first_page()), (seg, first + 2));
    pool.free(idle);
    let purger = {
        let pool = pool.clone();
        spawn(move || pool.collect())
    };
    let carver = {
        let pool = pool.clone();
        spawn(move || {
            pool.arena().free_span(large);
            pool.arena()
                .alloc_span(0, 2, 1, SpanKind::Large)
                .expect("span")
                .span
        })
    };
    assert_eq!(purger.join().unwrap(), 1, "the slab's idle page");
    let new = carver.join().unwrap();
    assert_eq!((new.segment(), new.first_page()), (seg, first + 2));
    assert!(!seg.is_clean(first, 1), "the slab's live page");
    assert!(seg.is_clean(first + 1, 1), "the slab's purged page");
    assert!(
        !seg.is_clean(first + 2, 1) && !seg.is_clean(first + 3, 1),
        "the new span"
    );
    assert_eq!(seg.dirty_pages(), 3);
    let committed = pool.arena().counts().committed_bytes;
    assert_eq!(committed, (seg.dirty_pages() + FIRST_PAGE) * PAGE);
    assert_eq!(
        slab.accounting(&mut quiescent()),
        (1, 2, 0, 1),
        "the idle block parked"
    );
    assert_eq!(pool.counts().purged_pages, 1);
    pool.arena().free_span(new);
    pool.finish(&[keep]);
}

#[test]
fn dirty_bitmap_updates_from_two_lock_holders() {
    check(
        "dirty_bitmap_updates_from_two_lock_holders",
        SATURATED,
        &[],
        dirty_bits,
    );
}

// ---------------------------------------------------------------------------
// The huge-mapping cache

/// Two threads return adjacent halves of a four-chunk mapping to the huge
/// cache at once, and one of them then asks for three chunks: the halves
/// always merge into one run, the request is served from its front only
/// once both halves are in, and the cache's byte count is exact throughout.
fn huge_cache_merge() {
    let cache = Arc::new(HugeCache::new());
    let base = reserve(4 * SEGMENT_SIZE, SEGMENT_SIZE)
        .expect("reserve")
        .as_ptr() as usize;
    let low = {
        let cache = cache.clone();
        spawn(move || cache.put(base as *mut u8, 2 * SEGMENT_SIZE))
    };
    let high = {
        let cache = cache.clone();
        spawn(move || {
            cache.put((base + 2 * SEGMENT_SIZE) as *mut u8, 2 * SEGMENT_SIZE);
            cache
                .take(3 * SEGMENT_SIZE, false)
                .map(|t| (t.base as usize, t.dirty))
        })
    };
    low.join().unwrap();
    let taken = high.join().unwrap();
    let (bytes, dirty) = cache.bytes();
    assert_eq!(dirty, 0, "a cold cache decommits what it takes back");
    match taken {
        Some((at, _)) => {
            assert_eq!(at, base, "served from the front of the merged run");
            assert_eq!(bytes, SEGMENT_SIZE);
            let rest = cache.take(SEGMENT_SIZE, true).expect("the rest");
            assert_eq!(rest.base as usize, base + 3 * SEGMENT_SIZE);
            cache.put(rest.base, SEGMENT_SIZE);
            cache.put(at as *mut u8, 3 * SEGMENT_SIZE);
            outcome("served from the merged run");
        }
        None => outcome("not yet merged: nothing large enough"),
    }
    assert_eq!(cache.bytes(), (4 * SEGMENT_SIZE, 0));
    let whole = cache.take(4 * SEGMENT_SIZE, true).expect("one run of four");
    assert_eq!(whole.base as usize, base);
    cache.put(whole.base, 4 * SEGMENT_SIZE);
    cache.release_all();
    assert_eq!(cache.bytes(), (0, 0));
}

#[test]
fn huge_cache_merges_runs_freed_at_once() {
    check(
        "huge_cache_merges_runs_freed_at_once",
        SATURATED,
        &[
            "served from the merged run",
            "not yet merged: nothing large enough",
        ],
        huge_cache_merge,
    );
}

// ---------------------------------------------------------------------------
// Thread caches and the heap

/// A thread's cache, moved into the thread that uses it.
struct Cache(Box<ThreadCache>);

// SAFETY: a cache owns the blocks on its lists; moving it to another thread
// moves them with it, and only one thread uses it at a time.
unsafe impl Send for Cache {}

impl Cache {
    /// A cache whose home is arena 0 (the models' threads share it, as
    /// threads do when there are more of them than arenas).
    fn new(heap: &Backend) -> Self {
        Self::at(heap, 0)
    }

    /// A cache whose home is arena `home` (one `Backend::assign_arena` gave).
    fn at(heap: &Backend, home: usize) -> Self {
        let mut tc = Box::new(ThreadCache::new());
        tc.activate(heap, home);
        Cache(tc)
    }
}

/// A home other than arena 0, as `assign_arena` gives the second thread.
fn second_home(heap: &Backend) -> usize {
    let homes = [heap.assign_arena(), heap.assign_arena()];
    assert_eq!(homes, [0, 1]);
    homes[1]
}

/// A heap with its first maintenance pass done, so that under the model's
/// frozen clock no slow path runs another.
fn quiet_heap() -> Arc<Backend> {
    let heap = Arc::new(Backend::new());
    heap.tick();
    heap
}

/// Gives back `held` blocks of `class`, collects, and checks that the heap
/// ends empty.
fn finish_heap(heap: &Backend, class: usize, held: &[usize]) {
    heap.flush(
        class,
        list_of(held),
        Owners::Unknown,
        Sender { thread: 0, home: 0 },
    );
    heap.collect();
    let s = heap.stats();
    assert_eq!(s.classes()[class].slabs, 0);
    assert_eq!((s.allocated, s.segments, s.committed), (0, 0, 0));
}

/// A thread exits (its cache puts every cached block back on its slab)
/// while another thread's cache refills the same class: the refilling
/// thread gets the exiting thread's blocks, freed to the slab, or blocks
/// never handed out, never a block still cached elsewhere; the counts add
/// up and nothing waits on the transfer stack. The program holds half of
/// the class's open slab first, so that one of the two first refills finds
/// it used up.
fn exit_flush_vs_refill() {
    let heap = quiet_heap();
    let class = class_for(1024);
    let program = addrs(heap.refill(class, Refill::new(2), 0));
    let exiting = {
        let heap = heap.clone();
        spawn(move || {
            let mut tc = Cache::new(&heap).0;
            let p = tc.refill(&heap, class);
            assert!(!p.is_null());
            let flushed = [p as usize, tc.head(sc(class)) as usize];
            // SAFETY: `p` is a live block of `class`, freed here.
            assert!(unsafe { tc.push(sc(class), p) });
            tc.flush_all(&heap);
            assert!(tc.head(sc(class)).is_null());
            flushed
        })
    };
    let refiller = {
        let heap = heap.clone();
        spawn(move || {
            let mut tc = Cache::new(&heap).0;
            let p = tc.refill(&heap, class);
            let q = tc.pop(sc(class));
            assert!(!p.is_null() && !q.is_null() && tc.pop(sc(class)).is_null());
            [p as usize, q as usize]
        })
    };
    let mut flushed = exiting.join().unwrap();
    let mut held = refiller.join().unwrap();
    assert_distinct_blocks(class, &held);
    let s = heap.stats().classes()[class];
    assert_eq!(
        s.allocated_blocks + s.cached_blocks,
        held.len() + program.len()
    );
    flushed.sort_unstable();
    held.sort_unstable();
    assert_eq!(s.transfer_blocks, 0, "an exit flushes no batch");
    let reused = held.iter().filter(|b| flushed.contains(b)).count();
    outcome(match reused {
        2 => "refilled with the exiting thread's blocks",
        0 => "refilled with blocks never handed out",
        _ => "refilled with one of each",
    });
    finish_heap(&heap, class, &[held.to_vec(), program].concat());
}

#[test]
fn thread_exit_flush_races_refill() {
    check(
        "thread_exit_flush_races_refill",
        5,
        &[
            "refilled with the exiting thread's blocks",
            "refilled with blocks never handed out",
        ],
        exit_flush_vs_refill,
    );
}

/// A cross-thread free through the caches: a thread whose home is arena 1
/// frees the four blocks of a slab a thread of arena 0 allocated. Its first
/// free of the class goes straight back to the slab (passive false
/// sharing), the next two are cached, the fourth overflows the cache and
/// flushes a batch, which goes to the pool of arena 0 (the owner of its
/// blocks), all while the allocating thread's cache refills there. The
/// refill gets the flushed batch whole, or the block freed to the slab, or
/// a new slab's blocks, or both of those (a refill that carves a slab
/// takes the freed block first); every block is in one place only: with a program, in a
/// cache, on the transfer stack or free in its slab; and arena 1 never
/// receives a block of arena 0 (it maps nothing).
fn free_through_caches() {
    let heap = quiet_heap();
    let class = class_for(1024);
    let remote = second_home(&heap);
    let given = addrs(heap.refill(class, Refill::new(4), 0));
    assert_eq!(given.len(), 4, "the whole slab");
    let freer = {
        let heap = heap.clone();
        let given = given.clone();
        spawn(move || {
            let mut tc = Cache::at(&heap, remote);
            for &b in &given {
                // SAFETY: each block is live, of `class`, and freed here.
                unsafe {
                    if !tc.0.push(sc(class), b as *mut u8) {
                        tc.0.overflow(&heap, sc(class), b as *mut u8);
                    }
                }
            }
            tc
        })
    };
    let owner = {
        let heap = heap.clone();
        spawn(move || {
            let mut tc = Cache::new(&heap);
            let mut got = vec![tc.0.refill(&heap, class) as usize];
            got.extend(std::iter::from_fn(|| {
                Some(tc.0.pop(sc(class)) as usize).filter(|&b| b != 0)
            }));
            got
        })
    };
    let Cache(mut freer_tc) = freer.join().unwrap();
    let got = owner.join().unwrap();
    let cached = std::iter::from_fn(|| Some(freer_tc.pop(sc(class)) as usize).filter(|&b| b != 0))
        .collect::<Vec<_>>();
    assert_eq!(cached, [given[3]], "the freeing cache keeps the last block");
    let mut everywhere = got.clone();
    everywhere.extend(&cached);
    assert_distinct_blocks(class, &everywhere);
    let s = heap.stats().classes()[class];
    let live = s.slabs * CLASSES[class].capacity as usize - s.free_blocks;
    assert_eq!(live, got.len() + cached.len() + s.transfer_blocks);
    assert_eq!(heap.stats().segments, 1, "arena 1 mapped nothing");
    if got.iter().any(|b| given[1..3].contains(b)) {
        let mut batch = got.clone();
        batch.sort_unstable();
        let mut flushed = given[1..3].to_vec();
        flushed.sort_unstable();
        assert_eq!((batch, s.transfer_blocks), (flushed, 0), "the whole batch");
        outcome("owner reused the flushed batch");
    } else {
        assert_eq!(s.transfer_blocks, 2, "the flushed batch waits");
        let from_slab = got.contains(&given[0]);
        let fresh = got.iter().filter(|b| !given.contains(b)).count();
        assert_eq!(got.len(), usize::from(from_slab) + fresh);
        assert_eq!(s.slabs, if fresh > 0 { 2 } else { 1 });
        outcome(match (from_slab, fresh > 0) {
            (true, false) => "owner took the block freed to its slab",
            (false, _) => "owner took a new slab's blocks",
            // A refill that finds no block carves a slab outside the lock,
            // then takes from the fullest slab first: the old one, if a
            // block was freed to it meanwhile.
            (true, true) => "owner took the block freed to its slab and a new slab's blocks",
        });
    }
    freer_tc.flush_all(&heap);
    finish_heap(&heap, class, &[got, cached].concat());
}

#[test]
fn cross_thread_free_through_caches_races_refill() {
    check(
        "cross_thread_free_through_caches_races_refill",
        6,
        &[
            "owner reused the flushed batch",
            "owner took the block freed to its slab",
            "owner took a new slab's blocks",
            "owner took the block freed to its slab and a new slab's blocks",
        ],
        free_through_caches,
    );
}

/// Blocks of two arenas in one batch: a thread flushes a batch whose first
/// block is arena 0's and whose second is arena 1's, to arena 0's pool,
/// whose transfer stack is full, so the batch goes back to the slabs: arena
/// 0's block to its slab under arena 0's pool lock, then the other, handed
/// back, to arena 1's slab under arena 1's pool lock (never both locks at
/// once). Meanwhile a thread of arena 1 refills one block there: it gets the
/// block handed back, or, if it came first, a block of a new slab (arena
/// 1's only slab is full), or the block handed back while it carved that
/// slab (outside the lock). Each pool keeps only its own arena's slabs, and
/// no block is lost or handed out twice.
fn mixed_batch() {
    let heap = quiet_heap();
    let class = class_for(1024);
    let other = second_home(&heap);
    let x = addrs(heap.refill(class, Refill::new(4), 0));
    let y = addrs(heap.refill(class, Refill::new(4), other));
    assert_eq!((x.len(), y.len()), (4, 4), "a whole slab in each arena");
    // Fill arena 0's transfer stack (two batches under loom). `list_of`
    // pushes each block at the front: the last one heads the batch.
    heap.flush(
        class,
        list_of(&[x[0], x[1]]),
        Owners::Unknown,
        Sender { thread: 0, home: 0 },
    );
    heap.flush(
        class,
        list_of(&[y[0], x[2]]),
        Owners::Unknown,
        Sender { thread: 0, home: 0 },
    );
    assert_eq!(heap.stats().classes()[class].transfer_blocks, 4);
    let (x3, y1) = (x[3], y[1]);
    let flusher = {
        let heap = heap.clone();
        spawn(move || {
            heap.flush(
                class,
                list_of(&[y1, x3]),
                Owners::Unknown,
                Sender { thread: 7, home: 0 },
            )
        })
    };
    let refiller = {
        let heap = heap.clone();
        spawn(move || addrs(heap.refill(class, Refill::new(1), other)))
    };
    flusher.join().unwrap();
    let got = refiller.join().unwrap();
    assert_eq!(got.len(), 1);
    let mut held = vec![y[2], y[3]];
    held.extend(&got);
    assert_distinct_blocks(class, &held);
    assert_eq!(
        slab_of(x3).accounting(&mut quiescent()),
        (3, 4, 1, 0),
        "x3 back on its slab"
    );
    let s = heap.stats().classes()[class];
    assert_eq!(s.transfer_blocks, 4, "the full stack kept its two batches");
    if got == [y1] {
        // The block came back before the refill looked, or while it carved
        // a slab outside the lock (the new slab then stays empty).
        match (s.slabs, s.free_blocks) {
            (2, 1) => outcome("refill got the block handed back"),
            (3, 5) => outcome("refill carved, then got the block handed back"),
            other => panic!("slabs and free blocks: {other:?}"),
        }
    } else {
        assert_eq!(slab_of(got[0]).0.segment().arena(), other);
        assert_eq!(slab_of(y1).accounting(&mut quiescent()), (3, 4, 1, 0));
        assert_eq!(s.slabs, 3);
        outcome("refill carved a new slab");
    }
    assert_eq!(slab_of(y[2]).0.segment().arena(), other);
    // The two batches still on arena 0's stack go back with the collect.
    finish_heap(&heap, class, &held);
}

#[test]
fn mixed_batch_goes_back_to_each_arena() {
    // Bound 6, as the other models of two arenas: 14,666 executions, 11 s
    // here (8: 55,669, 42 s; saturated at 20: 204,591, four minutes; both
    // passed too: LOOM.md).
    check(
        "mixed_batch_goes_back_to_each_arena",
        6,
        &[
            "refill got the block handed back",
            "refill carved, then got the block handed back",
            "refill carved a new slab",
        ],
        mixed_batch,
    );
}

/// A consumer of two producers (a thread of arena 1) flushes a batch
/// mixing both arenas' blocks (`Owners::Mixed`): it is sorted, and each
/// part goes to its own arena's pool (arena 0's through its inbox), while
/// the producer of arena 0 refills. It gets its own blocks back, or, if
/// it came first, fresh blocks of its own arena; never the other arena's
/// (a shard with a live thread is not taken from: `Backend::refill`). (One
/// producer: each refill now looks at its pool's written blocks before its
/// fresh ones, one more lock, and a second producer made the model's
/// executions grow past what CI can run.)
fn sorted_flush() {
    let heap = quiet_heap();
    let class = class_for(1024);
    let other = second_home(&heap);
    let x = addrs(heap.refill(class, Refill::new(2), 0));
    let y = addrs(heap.refill(class, Refill::new(2), other));
    let consumer = {
        let heap = heap.clone();
        let batch = [x[0], y[0], x[1], y[1]];
        spawn(move || {
            heap.flush(
                class,
                list_of(&batch),
                Owners::Mixed,
                Sender {
                    thread: 9,
                    home: other,
                },
            )
        })
    };
    let producer = {
        let heap = heap.clone();
        spawn(move || addrs(heap.refill(class, Refill::new(2), 0)))
    };
    consumer.join().unwrap();
    let got = producer.join().unwrap();
    assert_eq!(got.len(), 2);
    assert_distinct_blocks(class, &got);
    let arena = |b: usize| slab_of(b).0.segment().arena();
    let label = if got.iter().all(|b| x.contains(b)) {
        "it got its own blocks back"
    } else {
        assert!(
            got.iter().all(|&b| arena(b) == 0 && !x.contains(&b)),
            "fresh blocks of its own arena only: {got:?}"
        );
        "its refill came first"
    };
    outcome(label);
    let s = heap.stats().classes()[class];
    let reused = got
        .iter()
        .filter(|b| x.contains(b) || y.contains(b))
        .count();
    assert_eq!(s.transfer_blocks, 4 - reused, "the rest waits in its pool");
    finish_heap(&heap, class, &got);
}

#[test]
fn mixed_flush_is_sorted_back_to_each_arena() {
    check(
        "mixed_flush_is_sorted_back_to_each_arena",
        4,
        &["its refill came first", "it got its own blocks back"],
        sorted_flush,
    );
}

/// Two threads of another shard give batches of arena 0's blocks back
/// through its pool's inbox (no lock), while a thread of arena 0 refills:
/// the refill moves what the inbox holds onto the transfer stack and takes
/// a batch, or carves fresh blocks if nothing came yet. A third batch finds
/// the inbox (two slots under loom) full only if the refill has not emptied
/// it, and then goes the locked way. Every block is in one place.
fn inbox_vs_refill() {
    let heap = quiet_heap();
    let class = class_for(1024);
    let other = second_home(&heap);
    let x = addrs(heap.refill(class, Refill::new(4), 0));
    assert_eq!(x.len(), 4, "the whole slab");
    let remote = Sender {
        thread: 5,
        home: other,
    };
    let givers: Vec<_> = [vec![x[0], x[1]], vec![x[2]]]
        .into_iter()
        .map(|batch| {
            let heap = heap.clone();
            spawn(move || heap.flush(class, list_of(&batch), Owners::One, remote))
        })
        .collect();
    let owner = {
        let heap = heap.clone();
        spawn(move || addrs(heap.refill(class, Refill::new(2), 0)))
    };
    givers.into_iter().for_each(|t| t.join().unwrap());
    let got = owner.join().unwrap();
    // A third batch, after the race.
    heap.flush(class, list_of(&[x[3]]), Owners::One, remote);
    let reused: Vec<_> = got.iter().filter(|b| x.contains(b)).collect();
    assert_distinct_blocks(class, &got);
    let s = heap.stats().classes()[class];
    let live = s.slabs * CLASSES[class].capacity as usize - s.free_blocks;
    assert_eq!(
        live,
        got.len() + s.transfer_blocks,
        "every block in one place"
    );
    assert_eq!(s.transfer_blocks, 4 - reused.len());
    outcome(if reused.is_empty() {
        "refill carved fresh blocks"
    } else {
        "refill took a batch from the inbox"
    });
    finish_heap(&heap, class, &got);
}

#[test]
fn inbox_puts_race_the_owner_refill() {
    check(
        "inbox_puts_race_the_owner_refill",
        4,
        &[
            "refill carved fresh blocks",
            "refill took a batch from the inbox",
        ],
        inbox_vs_refill,
    );
}

/// The C door's double-free search (`Backend::holds_free`, under the pool's
/// lock) runs while a thread of another shard frees the block into the
/// pool's inbox and the owner refills. The search must not race with
/// either (loom checks the accesses), and after the joins it must find the
/// block exactly when the owner's refill did not take it.
fn double_free_search() {
    let heap = quiet_heap();
    let class = class_for(1024);
    let other = second_home(&heap);
    let x = addrs(heap.refill(class, Refill::new(4), 0));
    let remote = Sender {
        thread: 5,
        home: other,
    };
    let giver = {
        let heap = heap.clone();
        let batch = vec![x[0]];
        spawn(move || heap.flush(class, list_of(&batch), Owners::One, remote))
    };
    let owner = {
        let heap = heap.clone();
        spawn(move || addrs(heap.refill(class, Refill::new(1), 0)))
    };
    // SAFETY: `x[0]` is a block of a slab of `class` in a live segment.
    let seen = unsafe { heap.holds_free(class, x[0] as *const u8) };
    giver.join().unwrap();
    let got = owner.join().unwrap();
    // SAFETY: as above.
    let after = unsafe { heap.holds_free(class, x[0] as *const u8) };
    assert_eq!(after, !got.contains(&x[0]), "found iff free");
    outcome(if seen {
        "the search found the freed block"
    } else {
        "the search ran before the free"
    });
    let mut live = got;
    live.extend(&x[1..]);
    finish_heap(&heap, class, &live);
}

#[test]
fn double_free_search_races_a_remote_free_and_the_owner_refill() {
    check(
        "double_free_search_races_a_remote_free_and_the_owner_refill",
        4,
        &[
            "the search found the freed block",
            "the search ran before the free",
        ],
        double_free_search,
    );
}

/// Two threads' slow paths find maintenance due at once. The `maintaining`
/// swap lets one thread in at a time; maintenance must run once per period,
/// which is observable through a class's trim: the first pass only notes
/// that the class was active (its batch stays on the transfer stack), a
/// second pass would find it idle and drain the stack.
fn maintenance() {
    let heap = Arc::new(Backend::new());
    let class = class_for(1024);
    heap.flush(
        class,
        heap.refill(class, Refill::new(2), 0),
        Owners::Unknown,
        Sender { thread: 0, home: 0 },
    );
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let heap = heap.clone();
            spawn(move || {
                heap.tick();
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let s = heap.stats().classes()[class];
    assert_eq!(s.transfer_blocks, 2, "maintenance ran twice in one period");
    finish_heap(&heap, class, &[]);
}

#[test]
fn maintenance_runs_once_per_period() {
    check(
        "maintenance_runs_once_per_period",
        SATURATED,
        &[],
        maintenance,
    );
}

/// `collect` raises the heap's epoch and empties the central pools while a
/// thread whose cache holds a block of class `x` takes a slow path on class
/// `y`. That slow path may or may not see the new epoch (a relaxed read):
/// if it does, it flushes `x`; if not, the next slow path that comes after
/// the collect (here after the join) must. No block is lost or handed out
/// twice either way, and the published counts follow.
fn collect_vs_cache() {
    let heap = quiet_heap();
    let (x, y) = (class_for(1024), class_for(512));
    let mut tc = Cache::new(&heap);
    let p = tc.0.refill(&heap, x) as usize;
    assert!(
        p != 0 && !tc.0.head(sc(x)).is_null(),
        "one more block of x cached"
    );
    let worker = {
        let heap = heap.clone();
        spawn(move || {
            let q = tc.0.refill(&heap, y) as usize;
            assert!(q != 0);
            (tc, q)
        })
    };
    let collector = {
        let heap = heap.clone();
        spawn(move || heap.collect())
    };
    collector.join().unwrap();
    let (Cache(mut tc), q) = worker.join().unwrap();
    let x_cached = !tc.head(sc(x)).is_null();
    outcome(if x_cached {
        "slow path missed the new epoch"
    } else {
        "slow path saw the new epoch"
    });
    let sx = heap.stats().classes()[x];
    assert_eq!(
        (sx.allocated_blocks, sx.cached_blocks),
        (1, usize::from(x_cached))
    );
    // The next slow path sees the epoch and flushes every class.
    let r = tc.pop(sc(y)) as usize;
    assert!(r != 0 && tc.pop(sc(y)).is_null());
    let s = tc.refill(&heap, y) as usize;
    assert!(
        tc.head(sc(x)).is_null(),
        "a slow path after collect flushes the cache"
    );
    assert_distinct_blocks(y, &[q, r, s]);
    let sy = heap.stats().classes()[y];
    assert_eq!(sy.allocated_blocks + sy.cached_blocks, 4);
    tc.flush_all(&heap);
    heap.flush(
        y,
        list_of(&[q, r, s]),
        Owners::Unknown,
        Sender { thread: 0, home: 0 },
    );
    finish_heap(&heap, x, &[p]);
}

#[test]
fn collect_epoch_races_cache_slow_path() {
    // Bound 4: 13,308 executions, 13 s here (5: 53,277, 29 s alone and
    // 82 s in a slow CI run; 6: 178,697, four minutes; both passed too:
    // LOOM.md).
    check(
        "collect_epoch_races_cache_slow_path",
        4,
        &[
            "slow path missed the new epoch",
            "slow path saw the new epoch",
        ],
        collect_vs_cache,
    );
}

// ---------------------------------------------------------------------------
// The lock

/// Two threads increment a counter twice each under one [`Lock`]: through
/// the spin phase and the contended (sleeping) phase, no increment is lost.
/// The lock's holder also counts its acquisitions and waits (as the central
/// pools do): four acquisitions, and a wait counted in exactly the
/// executions where a thread found the lock held.
fn lock_counter() {
    let lock = Arc::new(Lock::new((0u32, LockCounts::default())));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let lock = lock.clone();
            spawn(move || {
                for _ in 0..2 {
                    lock.with_wait(|(n, counts), wait| {
                        *n += 1;
                        counts.note(wait);
                        assert!(wait.waited || wait.sleeps == 0, "slept without waiting");
                    });
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let (n, counts) = lock.with(|state| *state);
    assert_eq!((n, counts.acquisitions), (4, 4));
    assert!(counts.waits <= 3);
    outcome(match (counts.waits, counts.sleeps) {
        (0, _) => "no wait",
        (_, 0) => "waited without sleeping",
        _ => "slept",
    });
}

#[test]
fn lock_is_mutually_exclusive() {
    check(
        "lock_is_mutually_exclusive",
        SATURATED,
        &["no wait", "waited without sleeping", "slept"],
        lock_counter,
    );
}

/// `stats()` while another thread maps and unmaps a huge block: the
/// snapshot's figures must nest (`allocated <= active <= committed <=
/// mapped`) even though each counter is read on its own.
fn stats_vs_huge() {
    let heap = quiet_heap();
    let size = 2 * SEGMENT_SIZE;
    let worker = {
        let heap = heap.clone();
        spawn(move || {
            let p = heap.alloc_big(size, 8, false, 0);
            assert!(!p.is_null());
            // SAFETY: `p` is the live huge block just allocated.
            unsafe { heap.free_big(p, size, 8) };
        })
    };
    let s = heap.stats();
    worker.join().unwrap();
    assert!(
        s.allocated <= s.active && s.active <= s.committed && s.committed <= s.mapped,
        "figures do not nest: {s:?}"
    );
    let s = heap.stats();
    assert_eq!((s.allocated, s.huge_blocks), (0, 0));
    heap.collect();
    let s = heap.stats();
    assert_eq!(
        (s.mapped, s.committed),
        (0, 0),
        "the cached mapping unmapped"
    );
}

#[test]
fn stats_nest_while_huge_blocks_come_and_go() {
    // Bound 8: 81,355 executions, 32 s here (saturated at 20: 166,683,
    // two minutes, which passed too: LOOM.md).
    check(
        "stats_nest_while_huge_blocks_come_and_go",
        8,
        &[],
        stats_vs_huge,
    );
}

// ---------------------------------------------------------------------------
// The heap profiler (`prof` feature): its shared state

/// A profiler's shared state of a model's own, its memory mapped.
#[cfg(feature = "prof")]
fn profiler() -> Arc<ProfShared> {
    let shared = Arc::new(ProfShared::new());
    assert!(shared.init(), "the profiler's memory");
    shared
}

/// A sampled small block and a sampled large one (by address only: the
/// records never touch a large block) recorded on one thread and handed
/// to another through a mailbox (release and acquire), which frees them
/// if it got them. The other thread must see what the free paths read
/// without the lock: the small block in the pool's region (published once,
/// base before flag), and a sampled large block live (the count stored
/// under the lock); an address outside the region is never taken for
/// one, even while the region is being published. At the end no sample is
/// live, whoever freed them.
#[cfg(feature = "prof")]
fn prof_handoff() {
    use loom::sync::atomic::{
        AtomicUsize,
        Ordering::{Acquire, Release},
    };
    const BIG: usize = 1 << 30;
    let shared = Arc::new(ProfShared::new());
    let mailbox = Arc::new(AtomicUsize::new(0));
    let other = {
        let (shared, mailbox) = (shared.clone(), mailbox.clone());
        spawn(move || {
            // An address below the region's size: a torn publication (the
            // flag seen before the base) would take it for the pool's.
            assert!(!shared.owns(4096 as *const u8), "a wild address owned");
            let p = mailbox.load(Acquire);
            if p == 0 {
                return false;
            }
            assert!(shared.owns(p as *const u8), "a sampled block not owned");
            assert!(shared.big_live(), "a live sampled large block unseen");
            // SAFETY: `p` is a live sampled block, handed over.
            unsafe { shared.free_small(p as *mut u8) }.expect("a live block");
            shared.big_freed(BIG as *mut u8);
            true
        })
    };
    assert!(shared.init(), "the profiler's memory");
    let p = shared.record_small(&[1, 2, 3], (64, 64, 16, false), 4096);
    assert!(!p.is_null());
    shared.record_big(BIG as *mut u8, &[1, 2, 4], 1 << 20, 4096);
    mailbox.store(p as usize, Release);
    let freed_there = other.join().unwrap();
    if !freed_there {
        // SAFETY: `p` is the live sampled block recorded above.
        unsafe { shared.free_small(p) }.expect("a live block");
        shared.big_freed(BIG as *mut u8);
    }
    let s = shared.stats();
    assert_eq!((s.samples, s.live_samples, s.pool_bytes), (2, 0, 0));
    assert!(s.live_bytes.abs() < 1.0 && !shared.big_live());
    assert_eq!(
        // SAFETY: in the pool; freed: refused.
        unsafe { shared.free_small(p) },
        Err(ProfMisuse::Freed),
        "a second free"
    );
    outcome(if freed_there {
        "freed by the other thread"
    } else {
        "freed by the recording thread"
    });
}

#[cfg(feature = "prof")]
#[test]
fn prof_samples_handed_to_another_thread() {
    check(
        "prof_samples_handed_to_another_thread",
        SATURATED,
        &["freed by the other thread", "freed by the recording thread"],
        prof_handoff,
    );
}

/// Two threads each record a sampled small block and free it, at once:
/// the lock keeps the pool's slots distinct (a slot is reused only once
/// freed) and the table's counters exact (every sample counted once,
/// allocated bytes the sum of the weights, nothing live at the end), and
/// the peak is the highest point the live counters reached: both threads'
/// samples, or one thread's.
#[cfg(feature = "prof")]
fn prof_counters() {
    const INTERVAL: u64 = 4096;
    // The peak follows the live counters within an interval (the table
    // reads the process's setting).
    slabpool::prof::set_sample_interval(INTERVAL);
    let shared = profiler();
    let work = |shared: Arc<ProfShared>, t: usize| {
        let p = shared.record_small(&[10, t], (64, 64, 16, false), INTERVAL);
        assert!(!p.is_null());
        // SAFETY: `p` is this thread's live sampled block.
        unsafe { shared.free_small(p) }.expect("a live block");
        p as usize
    };
    let other = {
        let shared = shared.clone();
        spawn(move || work(shared, 1))
    };
    let mine = work(shared.clone(), 0);
    let theirs = other.join().unwrap();
    let s = shared.stats();
    assert_eq!(
        (s.samples, s.live_samples, s.pool_bytes, s.stacks),
        (2, 0, 0, 2)
    );
    assert!(s.live_bytes.abs() < 1e-6, "{s:?}");
    // Each sample of 64 bytes stands for about the interval.
    let one = s.alloc_bytes / 2.0;
    assert!((one / INTERVAL as f64 - 1.0).abs() < 0.01, "{s:?}");
    if mine == theirs {
        // The slot of one thread's block, freed, reused by the other's.
        outcome("a slot reused");
    }
    outcome(if s.peak_bytes > 1.5 * one {
        "peak: both threads' samples"
    } else {
        "peak: one thread's samples"
    });
}

#[cfg(feature = "prof")]
#[test]
fn prof_counters_stay_exact_under_two_threads() {
    check(
        "prof_counters_stay_exact_under_two_threads",
        SATURATED,
        &[
            "peak: both threads' samples",
            "peak: one thread's samples",
            "a slot reused",
        ],
        prof_counters,
    );
}

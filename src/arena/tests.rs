//! Unit tests of `arena`.

use super::*;
use crate::purge::{BIG_RUN_PAGES, HOT_WASTE_PAGES};
use crate::segment::{HEADER_PAGES, SpanKind, USABLE_PAGES};

fn segments(arena: &Arena) -> usize {
    arena.state.with(|st| st.segment_count)
}

/// Makes `arena` defer its purges for a long while.
fn make_hot(arena: &Arena) {
    arena
        .state
        .with(|st| st.policy.force_hot(os::now_ms().wrapping_add(1 << 30)));
}

fn is_hot(arena: &Arena) -> bool {
    arena.state.with(|st| !st.policy.eager(os::now_ms()))
}

#[test]
fn bins_cover_lengths_in_order() {
    let mut prev = 0;
    for pages in 1..=PAGES {
        let bin = bin_floor(pages);
        assert!(bin >= prev && bin < SPAN_BINS, "{pages}");
        prev = bin;
        // Every span in a bin at or above bin_ceil(n) has >= n pages.
        let ceil = bin_ceil(pages);
        assert!(ceil >= bin);
        for shorter in 1..pages {
            assert!(
                bin_floor(shorter) < ceil,
                "{shorter} in bin >= ceil({pages})"
            );
        }
    }
}

#[test]
fn carve_free_and_coalesce() {
    let arena = Arena::new();
    let a = arena.alloc_span(0, 10, 1, SpanKind::Large).expect("a");
    let b = arena.alloc_span(0, 20, 1, SpanKind::Slab).expect("b");
    let c = arena.alloc_span(0, 30, 1, SpanKind::Large).expect("c");
    assert!(a.zero && b.zero && c.zero);
    let seg = a.span.segment();
    assert_eq!(seg, b.span.segment());
    assert_eq!(b.span.first_page(), a.span.first_page() + 10);
    assert_eq!(c.span.first_page(), b.span.first_page() + 20);
    assert_eq!(seg.free_pages(), USABLE_PAGES - 60);
    assert_eq!(arena.counts().committed_bytes, (HEADER_PAGES + 60) * PAGE);
    // Free a and c, then b: all three and the tail merge into one span.
    arena.free_span(a.span);
    arena.free_span(c.span);
    assert_eq!(seg.free_pages(), USABLE_PAGES - 20);
    arena.free_span(b.span);
    assert_eq!(seg.free_pages(), USABLE_PAGES);
    let whole = seg.span(FIRST_PAGE);
    assert_eq!(whole.kind(), SpanKind::Free);
    assert_eq!(whole.pages(), USABLE_PAGES);
    // A cold arena decommits freed pages at once: those in whole OS pages
    // (with OS pages above 4 KiB, the first pages of the span share one
    // with the header and stay dirty).
    let lo = FIRST_PAGE.next_multiple_of(os::page_size() / PAGE);
    let kept = lo - FIRST_PAGE;
    assert!(seg.is_clean(lo, PAGES - lo));
    assert_eq!(arena.counts().committed_bytes, (HEADER_PAGES + kept) * PAGE);
    // The segment is retained, and reused clean (but for those).
    assert_eq!(segments(&arena), 1);
    let again = arena
        .alloc_span(0, USABLE_PAGES, 1, SpanKind::Large)
        .expect("whole");
    assert_eq!(again.span.first_page(), FIRST_PAGE);
    assert_eq!(again.zero, kept == 0);
    // A hot one leaves them dirty for the delayed purge.
    make_hot(&arena);
    arena.free_span(again.span);
    assert!(
        !seg.is_clean(FIRST_PAGE, USABLE_PAGES),
        "used pages are dirty"
    );
    assert!(seg.queued());
    let dirty = arena.alloc_span(0, 10, 1, SpanKind::Large).expect("dirty");
    assert!(!dirty.zero);
    arena.free_span(dirty.span);
}

#[test]
fn a_cold_arena_defers_runs_of_few_dirty_pages_until_neighbours_join_them() {
    let arena = Arena::new();
    assert!(!is_hot(&arena));
    // Five slabs in a row from the segment's first page; the last stays
    // live while the others are freed, so they never merge with the
    // segment's free tail.
    let slabs: Vec<SpanRef> = (0..5)
        .map(|_| {
            arena
                .alloc_span(0, 20, 1, SpanKind::Slab)
                .expect("slab")
                .span
        })
        .collect();
    let seg = slabs[0].segment();
    for (i, slab) in slabs.iter().enumerate() {
        assert_eq!(slab.first_page(), FIRST_PAGE + 20 * i);
    }
    let before = arena.counts().decommits;
    // Runs of 20 and then 40 dirty pages between live ones: deferred.
    for i in [1, 3, 0] {
        arena.free_span(slabs[i]);
        assert_eq!(arena.counts().decommits, before, "slab {i} deferred");
    }
    assert!(!seg.is_clean(FIRST_PAGE, 40), "slabs 0 and 1 still dirty");
    assert!(seg.queued(), "due for maintenance");
    // The third slab joins the four into 80 dirty pages: decommitted at
    // once, in one call (the whole OS pages among them: with OS pages
    // above 4 KiB, the first share one with the header, the last one with
    // the live slab).
    arena.free_span(slabs[2]);
    assert_eq!(
        arena.counts().decommits,
        before + 1,
        "one call for four slabs"
    );
    let per_os_page = os::page_size() / PAGE;
    let lo = FIRST_PAGE.next_multiple_of(per_os_page);
    let hi = (FIRST_PAGE + 80) / per_os_page * per_os_page;
    assert!(hi <= lo || seg.is_clean(lo, hi - lo));
    // A run that frees its whole segment goes at once, however few of its
    // pages are dirty.
    arena.free_span(slabs[4]);
    assert_eq!(arena.counts().decommits, before + 2);
    assert!(seg.is_clean(hi.max(lo), PAGES - hi.max(lo)));
}

#[test]
fn reusing_just_purged_pages_turns_the_arena_hot() {
    let arena = Arena::new();
    let keep = arena
        .alloc_span(0, 1, 1, SpanKind::Large)
        .expect("keep")
        .span;
    // One reuse of 200 pages is not enough waste to turn hot...
    let a = arena
        .alloc_span(0, 200, 1, SpanKind::Large)
        .expect("a")
        .span;
    arena.free_span(a);
    assert!(!is_hot(&arena));
    let mut decommits = arena.counts().decommits;
    assert_eq!(decommits, 1, "purged at once");
    // ... but a loop of alloc/free pairs is.
    for _ in 0..HOT_WASTE_PAGES / 200 + 1 {
        let b = arena
            .alloc_span(0, 200, 1, SpanKind::Large)
            .expect("b")
            .span;
        arena.free_span(b);
    }
    assert!(is_hot(&arena));
    decommits = arena.counts().decommits - decommits;
    assert!(decommits as u32 <= HOT_WASTE_PAGES / 200 + 1);
    // From then on a pair costs no system call.
    let before = arena.counts().decommits;
    for _ in 0..100 {
        let b = arena
            .alloc_span(0, 200, 1, SpanKind::Large)
            .expect("b")
            .span;
        arena.free_span(b);
    }
    assert_eq!(arena.counts().decommits, before);
    arena.free_span(keep);
}

#[test]
fn aligned_spans() {
    let arena = Arena::new();
    let mut spans = Vec::new();
    for align in [1, 2, 8, 64, 256, 512] {
        let s = arena
            .alloc_span(0, 3, align, SpanKind::Large)
            .expect("aligned");
        assert_eq!(s.span.first_page() % align, 0);
        assert_eq!(s.span.start() as usize % (align * crate::os::PAGE), 0);
        spans.push(s.span);
    }
    for s in spans {
        arena.free_span(s);
    }
    let seg = arena.state.with(|st| st.segments).expect("segment");
    assert_eq!(seg.free_pages(), USABLE_PAGES);
    assert!(
        arena
            .alloc_span(0, USABLE_PAGES + 1, 1, SpanKind::Large)
            .is_none()
    );
}

#[test]
fn grow_and_shrink_in_place() {
    let arena = Arena::new();
    make_hot(&arena);
    let a = arena.alloc_span(0, 4, 1, SpanKind::Large).expect("a").span;
    assert!(arena.grow_span(a, 40));
    assert_eq!(a.pages(), 40);
    let b = arena.alloc_span(0, 1, 1, SpanKind::Large).expect("b").span;
    assert_eq!(b.first_page(), a.first_page() + 40);
    assert!(!arena.grow_span(a, 41), "blocked by b");
    arena.shrink_span(a, 8);
    assert_eq!(a.pages(), 8);
    let c = arena.alloc_span(0, 32, 1, SpanKind::Large).expect("c");
    assert_eq!(c.span.first_page(), a.first_page() + 8, "tail reused");
    assert!(!c.zero, "the tail was used by a");
    for s in [a, b, c.span] {
        arena.free_span(s);
    }
    assert_eq!(a.segment().free_pages(), USABLE_PAGES);
}

#[test]
fn empty_segments_beyond_the_retained_bound_are_unmapped() {
    let arena = Arena::new();
    let spans: Vec<_> = (0..5)
        .map(|_| {
            arena
                .alloc_span(0, USABLE_PAGES, 1, SpanKind::Large)
                .expect("seg")
                .span
        })
        .collect();
    assert_eq!(segments(&arena), 5);
    assert_eq!(arena.counts().segments, 5);
    for s in spans {
        arena.free_span(s);
    }
    assert_eq!(segments(&arena), RETAIN_EMPTY_SEGMENTS);
    assert_eq!(arena.counts().segments, RETAIN_EMPTY_SEGMENTS);
    arena.trim();
    assert_eq!(arena.counts().segments, 0);
    assert_eq!(arena.counts().committed_bytes, 0);
}

#[test]
fn free_pages_are_purged_after_the_deadline_only() {
    let arena = Arena::new();
    make_hot(&arena);
    let keep = arena
        .alloc_span(0, 1, 1, SpanKind::Large)
        .expect("keep")
        .span;
    let big = arena
        .alloc_span(0, 100, 1, SpanKind::Large)
        .expect("big")
        .span;
    let seg = big.segment();
    // SAFETY: `big` is ours; touch every page.
    unsafe { big.start().write_bytes(0xEE, 100 * PAGE) };
    let before = arena.counts();
    assert_eq!(before.committed_bytes, (HEADER_PAGES + 101) * PAGE);
    arena.free_span(big);
    let deadline = seg.purge_at();
    assert!(seg.queued());
    // Not yet due: nothing is decommitted.
    arena.purge_expired(deadline.wrapping_sub(1));
    assert_eq!(arena.counts().decommits, 0);
    assert!(!seg.is_clean(big.first_page(), 100));
    arena.purge_expired(deadline);
    let after = arena.counts();
    assert_eq!(after.decommits, 1, "one madvise for the one dirty run");
    // With OS pages above 4 KiB, the span's first pages share one with
    // `keep`, and stay.
    let first = big.first_page();
    let kept = first.next_multiple_of(os::page_size() / PAGE) - first;
    assert_eq!(after.committed_bytes, (HEADER_PAGES + 1 + kept) * PAGE);
    assert_eq!(after.released_bytes, (100 - kept) * PAGE);
    assert!(!seg.queued());
    // The span reads zero again and is known to: alloc_zeroed needs no memset.
    let again = arena.alloc_span(0, 100, 1, SpanKind::Large).expect("again");
    assert_eq!(again.span, big);
    assert_eq!(again.zero, kept == 0);
    // SAFETY: the span is ours.
    assert_eq!(unsafe { again.span.start().add(99 * PAGE).read() }, 0);
    // SAFETY: as above.
    let first_byte = unsafe { again.span.start().read() };
    assert_eq!(first_byte, if kept == 0 { 0 } else { 0xEE });
    arena.free_span(again.span);
    arena.free_span(keep);
}

#[test]
fn a_hot_arena_purges_big_runs_at_once_until_one_comes_back_soon() {
    let arena = Arena::new();
    arena.state.with(|st| {
        st.policy
            .force_hot_but_big(os::now_ms().wrapping_add(1 << 30))
    });
    // A heap of about 600 pages, and a run of 100 freed from it: big (at
    // least BIG_RUN_PAGES, and a sixteenth of what is committed).
    let keep = arena.alloc_span(0, 500, 1, SpanKind::Large).expect("keep");
    let big = arena.alloc_span(0, 100, 1, SpanKind::Large).expect("big");
    let small = arena.alloc_span(0, 20, 1, SpanKind::Large).expect("small");
    let seg = big.span.segment();
    let (first, pages) = (big.span.first_page(), big.span.pages());
    assert!(pages >= BIG_RUN_PAGES);
    let before = arena.counts().decommits;
    arena.free_span(small.span);
    assert_eq!(arena.counts().decommits, before, "a small run waits");
    arena.free_span(big.span);
    assert_eq!(
        arena.counts().decommits,
        before + 1,
        "a big run goes at once"
    );
    // Its whole OS pages are decommitted (with OS pages above 4 KiB, those
    // at its ends may be shared with its neighbours).
    let os_pages = os::page_size() / PAGE;
    let (lo, hi) = (
        first.next_multiple_of(os_pages),
        (first + pages) / os_pages * os_pages,
    );
    assert!(seg.is_clean(lo, hi - lo));
    // A larger request (a table that grew by moving) would have faulted
    // in fresh pages anyway: big runs still go at once.
    let grown = arena.alloc_span(0, 150, 1, SpanKind::Large).expect("grown");
    arena.free_span(grown.span);
    assert_eq!(arena.counts().decommits, before + 2, "still at once");
    // A request no larger handed out straight away (a buffer freed and
    // allocated again in a loop): the purge was wasted, and big runs are
    // deferred from then on.
    let again = arena.alloc_span(0, 100, 1, SpanKind::Large).expect("again");
    arena.free_span(again.span);
    assert_eq!(arena.counts().decommits, before + 2, "deferred now");
    assert!(!seg.is_clean(again.span.first_page(), 100));
    arena.free_span(keep.span);
}

#[test]
fn a_freed_run_of_the_length_asked_is_reused_before_a_longer_span() {
    let arena = Arena::new();
    make_hot(&arena);
    // 17 pages: past the exact bins, in the bin of 16 to 19 pages.
    let a = arena.alloc_span(0, 17, 1, SpanKind::Slab).expect("a");
    let b = arena.alloc_span(0, 10, 1, SpanKind::Large).expect("b");
    arena.free_span(a.span);
    // The freed run (still written) and the rest of the segment both fit:
    // the run is taken, not a piece of the untouched rest.
    let c = arena.alloc_span(0, 17, 1, SpanKind::Slab).expect("c");
    assert_eq!(c.span.first_page(), a.span.first_page());
    assert!(!c.zero, "the run's pages were written");
    arena.free_span(b.span);
    arena.free_span(c.span);
}

#[test]
fn written_pages_are_carved_before_untouched_ones() {
    let arena = Arena::new();
    make_hot(&arena);
    let a = arena.alloc_span(0, 40, 1, SpanKind::Large).expect("a");
    let fence = arena.alloc_span(0, 1, 1, SpanKind::Large).expect("fence");
    // Leaves 30 pages never touched at the segment's end.
    let rest = USABLE_PAGES - 41 - 30;
    let big = arena.alloc_span(0, rest, 1, SpanKind::Large).expect("big");
    assert_eq!(big.span.segment(), a.span.segment());
    arena.free_span(a.span);
    // 20 pages: the untouched 30 at the end are the shortest span that
    // fits, the 40 written pages of `a` the next: those are carved.
    let c = arena.alloc_span(0, 20, 1, SpanKind::Slab).expect("c");
    assert_eq!(c.span.first_page(), a.span.first_page());
    assert!(!c.zero, "written pages");
    let committed = arena.counts().committed_bytes;
    assert_eq!(
        committed,
        (HEADER_PAGES + 41 + rest) * PAGE,
        "no page touched anew"
    );
    for s in [c.span, fence.span, big.span] {
        arena.free_span(s);
    }
}

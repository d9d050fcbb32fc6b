//! Unit tests of `segment`.

use super::*;

/// The OS pages the layout and decommit are checked with: 4, 16, 64 KiB.
const OS_PAGES: [usize; 3] = [4 << 10, 16 << 10, 64 << 10];

#[test]
fn header_layout() {
    assert_eq!(SEGMENT_SIZE, 4 << 20);
    assert_eq!(PAGES, 1024);
    assert!(FIRST_PAGE * PAGE >= size_of::<SegmentHeader>());
    assert_eq!(size_of::<Span>(), 64);
}

#[test]
fn the_header_guard_is_whole_os_pages_up_to_the_first_span() {
    let header = size_of::<SegmentHeader>();
    for page in OS_PAGES {
        let (start, end) = header_guard(page);
        if !GUARDED {
            assert_eq!((start, end, FIRST_PAGE), (end, FIRST_PAGE * PAGE, 17));
            continue;
        }
        // Past the header, on an OS page; at least one OS page; ending
        // where the first span starts, on an OS page too.
        assert!(start >= header && start - header < page, "{page}");
        assert!(start % page == 0 && end % page == 0, "{page}");
        assert!(end - start >= page, "{page}");
        assert_eq!(end, FIRST_PAGE * PAGE);
    }
    if GUARDED {
        assert_eq!(header_guard(4 << 10), (68 << 10, 192 << 10));
        assert_eq!(header_guard(16 << 10), (80 << 10, 192 << 10));
        assert_eq!(header_guard(64 << 10), (128 << 10, 192 << 10));
        // A larger page than the layout allows: no guard.
        let (start, end) = header_guard(256 << 10);
        assert!(start >= end);
    }
}

#[test]
fn decommit_gives_back_only_whole_os_pages_of_the_range() {
    // Each size that is a multiple of the kernel's page (all three on a
    // 4 KiB kernel): the calls are real `madvise` calls.
    for page in OS_PAGES.into_iter().filter(|&p| p >= os::page_size()) {
        let k = page / PAGE;
        let (seg, _) = SegmentRef::create(0).expect("segment");
        let byte = |p: usize| seg.base().wrapping_add(p * PAGE);
        // A free range of pages [first, end) that starts and ends inside an
        // OS page (past a 64 KiB boundary by 1 and 3 pages); a live page
        // on each side of it shares an OS page with it.
        let (first, end) = (256 + 1, 512 + 3);
        let (live_before, live_after) = (first - 1, end);
        assert_eq!(seg.mark_dirty(live_before, 1), 1);
        assert_eq!(seg.mark_dirty(live_after, 1), 1);
        // Dirty in the range: its two end pages, and two runs inside that
        // widen into one OS page (at 16 and 64 KiB), then more apart.
        for (p, n) in [(first, 1), (end - 1, 1), (300, 1), (302, 1), (400, 10)] {
            seg.mark_dirty(p, n);
        }
        for p in [live_before, live_after, first, end - 1, 300, 302, 405] {
            // SAFETY: page `p` lies in this segment's usable pages.
            unsafe { byte(p).write(0x5a) };
        }
        let dirty = seg.dirty_pages();
        let (pages, calls) = seg.decommit_in(first, end - first, page);
        // What lies in whole OS pages of the range is clean and zero.
        let (lo, hi) = os::whole_pages(first, end, k);
        for p in [300, 302, 405] {
            assert!(seg.is_clean(p, 1), "{page}: page {p}");
            // SAFETY: as above (decommitted pages read as zero).
            assert_eq!(unsafe { byte(p).read() }, 0, "{page}: page {p}");
        }
        assert!(seg.is_clean(lo, hi - lo), "{page}");
        // The live neighbours keep their bytes and their bits; so do the
        // range's end pages when they share an OS page with them.
        for p in [live_before, live_after] {
            assert!(!seg.is_clean(p, 1));
            // SAFETY: as above.
            assert_eq!(unsafe { byte(p).read() }, 0x5a, "{page}: live page {p}");
        }
        let ends_kept = if k == 1 { 0 } else { 2 };
        for p in [first, end - 1] {
            assert_eq!(!seg.is_clean(p, 1), k > 1, "{page}: end page {p}");
            // SAFETY: as above.
            assert_eq!(unsafe { byte(p).read() } == 0x5a, k > 1);
        }
        assert_eq!(
            pages,
            2 + 10 + 2 - ends_kept,
            "{page}: dirty pages given back"
        );
        assert_eq!(seg.dirty_pages(), dirty - pages);
        // 4 KiB: a call per run (five); larger: 300 and 302 share an OS
        // page and the end pages are not given back (two).
        assert_eq!(calls, if k == 1 { 5 } else { 2 }, "{page}");
        // Nothing dirty left in whole OS pages: no call at all.
        assert_eq!(seg.decommit_in(first, end - first, page), (0, 0));
        // A range within one OS page gives nothing back at 16 or 64 KiB.
        seg.mark_dirty(600, 2);
        let expect = if k == 1 { (2, 1) } else { (0, 0) };
        assert_eq!(seg.decommit_in(600, 2, page), expect, "{page}");
        // SAFETY: nothing uses the segment any more.
        unsafe { seg.destroy() };
    }
}

#[test]
fn masking_and_page_map() {
    let (seg, span) = SegmentRef::create(3).expect("segment");
    assert_eq!(seg.arena(), 3);
    assert_eq!(seg.base() as usize % SEGMENT_SIZE, 0);
    assert_eq!(span.first_page(), FIRST_PAGE);
    assert_eq!(span.segment(), seg);
    assert_eq!(span.kind(), SpanKind::Free);
    assert_eq!(span.pages(), USABLE_PAGES);
    assert_eq!(seg.free_pages(), USABLE_PAGES);
    // Carve a 5-page slab at page 100 and check every interior pointer
    // masks to the segment and maps to the slab.
    let slab = seg.span(100);
    slab.set_kind(SpanKind::Slab);
    slab.set_pages(5);
    seg.map_all(slab);
    assert_eq!(slab.start(), seg.base().wrapping_add(100 * PAGE));
    for off in [0, 1, PAGE - 1, PAGE, 5 * PAGE - 1] {
        let p = slab.start().wrapping_add(off);
        // SAFETY: `p` lies in the 5-page span of this live segment.
        unsafe {
            assert_eq!(SegmentRef::of(p), seg);
            assert_eq!(seg.span_of(p), slab);
        }
    }
    // SAFETY: nothing uses the segment any more.
    unsafe { seg.destroy() };
}

#[test]
fn dirty_bitmap_runs_and_decommit() {
    let (seg, _) = SegmentRef::create(0).expect("segment");
    assert!(seg.is_clean(FIRST_PAGE, USABLE_PAGES));
    assert_eq!(seg.mark_dirty(60, 10), 10);
    assert_eq!(seg.mark_dirty(65, 70), 65, "five were dirty already");
    assert_eq!(seg.mark_dirty(300, 1), 1);
    assert_eq!(seg.dirty_pages(), 76);
    assert!(!seg.is_clean(50, 11));
    assert!(seg.is_clean(50, 10));
    assert!(seg.is_clean(135, 165));
    let mut runs = Vec::new();
    seg.dirty_runs(FIRST_PAGE, USABLE_PAGES, |a, n| runs.push((a, n)));
    assert_eq!(runs, [(60, 75), (300, 1)]);
    runs.clear();
    seg.dirty_runs(100, 201, |a, n| runs.push((a, n)));
    assert_eq!(runs, [(100, 35), (300, 1)], "clipped to the range");
    // Write into the dirty pages, then decommit: they read zero again.
    let p = seg.base().wrapping_add(64 * PAGE);
    // SAFETY: page 64 lies in the segment and is not in use.
    unsafe { p.write(9) };
    assert_eq!(seg.decommit(FIRST_PAGE, 200), (75, 1));
    // SAFETY: as above.
    assert_eq!(unsafe { p.read() }, 0);
    assert_eq!(seg.dirty_pages(), 1);
    assert_eq!(seg.decommit(FIRST_PAGE, USABLE_PAGES), (1, 1));
    assert!(seg.is_clean(FIRST_PAGE, USABLE_PAGES));
    // SAFETY: nothing uses the segment any more.
    unsafe { seg.destroy() };
}

#[test]
fn purge_queue_is_fifo_with_removal() {
    let segs: Vec<_> = (0..3)
        .map(|_| SegmentRef::create(0).expect("segment").0)
        .collect();
    let mut q = SegmentQueue::new();
    for (i, &s) in segs.iter().enumerate() {
        q.push_back(s, i as u32 * 10);
    }
    q.remove(segs[1]);
    assert_eq!(q.front(), Some(segs[0]));
    q.remove(segs[0]);
    assert_eq!(q.front(), Some(segs[2]));
    assert_eq!(segs[2].purge_at(), 20);
    q.remove(segs[2]);
    assert!(q.front().is_none());
    assert!(!segs[0].queued());
    for s in segs {
        // SAFETY: nothing uses the segments any more.
        unsafe { s.destroy() };
    }
}

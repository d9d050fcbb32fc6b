//! Unit tests of `segment`.

use super::*;

#[test]
fn header_layout() {
    assert_eq!(SEGMENT_SIZE, 4 << 20);
    assert_eq!(PAGES, 1024);
    assert!(FIRST_PAGE * PAGE >= size_of::<SegmentHeader>());
    assert_eq!(size_of::<Span>(), 64);
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

//! Arenas: page-run allocation over segments.
//!
//! An arena owns a set of segments and the free spans in them, binned by
//! length (exact up to 16 pages, then four bins per doubling) with a bitmap
//! of non-empty bins, so finding a span that fits is a bit scan: a request
//! searches from the first bin whose every span is long enough ("good fit"),
//! then falls back to a first-fit walk of the bin that may hold a fitting
//! span. Freeing a span merges it with free neighbours found through the page
//! map in O(1), so adjacent free runs always form one span.
//!
//! Threads are spread over several arenas, each behind its own lock; a span
//! goes back to the arena of its segment whichever thread frees it. Empty
//! segments beyond one per arena go back to the OS (the delayed purge policy
//! is the coalescing issue's; `release_empty` is its hook).

use crate::segment::{
    FIRST_PAGE, FREE, INVALID, PAGES, SegmentRef, SpanList, SpanRef, USABLE_PAGES,
};
use crate::sync::{Lock, const_fn};

/// Number of span bins: 16 exact, then 4 per doubling up to `PAGES`.
const EXACT_BINS: usize = 16;
const SPAN_BINS: usize = EXACT_BINS + 4 * (PAGES.trailing_zeros() as usize - 4) + 1;
const _: () = assert!(SPAN_BINS <= 64);

/// Empty segments an arena keeps mapped for reuse.
const KEEP_EMPTY_SEGMENTS: usize = 1;

/// Bin holding spans of `pages` pages (`pages >= 1`).
const fn bin_floor(pages: usize) -> usize {
    if pages <= EXACT_BINS {
        return pages - 1;
    }
    let b = (usize::BITS - 1 - pages.leading_zeros()) as usize;
    EXACT_BINS + (b - 4) * 4 + ((pages >> (b - 2)) & 3)
}

/// First bin all of whose spans have at least `pages` pages.
const fn bin_ceil(pages: usize) -> usize {
    let bin = bin_floor(pages);
    if pages <= EXACT_BINS {
        return bin;
    }
    let b = (usize::BITS - 1 - pages.leading_zeros()) as usize;
    if pages & ((1 << (b - 2)) - 1) == 0 {
        bin
    } else {
        bin + 1
    }
}

/// A freshly allocated span.
pub struct NewSpan {
    pub span: SpanRef,
    /// Every page of it reads as zero.
    pub zero: bool,
}

/// One arena: segments and their free spans, behind a lock.
pub struct Arena {
    state: Lock<ArenaState>,
}

struct ArenaState {
    bins: [SpanList; SPAN_BINS],
    /// Bit `i` set iff `bins[i]` is non-empty.
    nonempty: u64,
    segments: Option<SegmentRef>,
    segment_count: usize,
    empty_segments: usize,
}

impl Arena {
    const_fn! {
        pub fn new() -> Self {
            Self {
                state: Lock::new(ArenaState {
                    bins: [const { SpanList::new() }; SPAN_BINS],
                    nonempty: 0,
                    segments: None,
                    segment_count: 0,
                    empty_segments: 0,
                }),
            }
        }
    }

    /// Allocates a span of `pages` pages whose first page index is a
    /// multiple of `align_pages`, of kind `kind`, with every page mapped.
    /// `index` is this arena's index (recorded in new segments).
    pub fn alloc_span(
        &self,
        index: usize,
        pages: usize,
        align_pages: usize,
        kind: u8,
    ) -> Option<NewSpan> {
        debug_assert!(pages >= 1 && align_pages.is_power_of_two());
        if pages + FIRST_PAGE.next_multiple_of(align_pages) - FIRST_PAGE > USABLE_PAGES {
            return None;
        }
        self.state.with(|st| {
            let found = match st.find(pages, align_pages) {
                Some(span) => span,
                None => st.add_segment(index)?,
            };
            Some(st.carve(found, pages, align_pages, kind))
        })
    }

    /// Returns `span` (a slab or large span of one of this arena's
    /// segments) to the free spans, merging it with free neighbours.
    pub fn free_span(&self, span: SpanRef) {
        let empty = self.state.with(|st| st.free(span, false));
        if let Some(seg) = empty {
            // SAFETY: `free` unlinked the segment; none of its spans is used.
            unsafe { seg.destroy() };
        }
    }

    /// Shrinks a large span in place to `pages` pages, freeing its tail.
    pub fn shrink_span(&self, span: SpanRef, pages: usize) {
        debug_assert!(pages >= 1 && pages < span.pages());
        self.state.with(|st| {
            let tail = span.segment().span(span.first_page() + pages);
            tail.set_pages(span.pages() - pages);
            span.set_pages(pages);
            // The tail's pages still map to the head, which stays in use, so
            // no segment can become empty here.
            let emptied = st.free(tail, false);
            debug_assert!(emptied.is_none());
        });
    }

    /// Grows a large span in place to `pages` pages if the free span right
    /// after it is long enough. Returns whether it did.
    pub fn grow_span(&self, span: SpanRef, pages: usize) -> bool {
        self.state.with(|st| st.grow(span, pages))
    }

    /// Takes this pool's lock and keeps it (around `fork`).
    ///
    /// # Safety
    /// Must be paired with [`Self::fork_unlock`] on the same thread or in
    /// the forked child.
    #[cfg(not(loom))]
    pub unsafe fn fork_lock(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.state.force_lock() }
    }

    /// Releases the lock taken by [`Self::fork_lock`].
    ///
    /// # Safety
    /// The lock must be held through `fork_lock`.
    #[cfg(not(loom))]
    pub unsafe fn fork_unlock(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.state.force_unlock() }
    }

    /// Number of segments this arena holds.
    pub fn segment_count(&self) -> usize {
        self.state.with(|st| st.segment_count)
    }
}

impl ArenaState {
    fn insert(&mut self, span: SpanRef) {
        let bin = bin_floor(span.pages());
        self.bins[bin].push(span);
        self.nonempty |= 1 << bin;
    }

    fn unbin(&mut self, span: SpanRef) {
        let bin = bin_floor(span.pages());
        self.bins[bin].remove(span);
        if self.bins[bin].is_empty() {
            self.nonempty &= !(1 << bin);
        }
    }

    /// A free span holding `pages` pages at an `align_pages` boundary.
    fn find(&mut self, pages: usize, align_pages: usize) -> Option<SpanRef> {
        let need = pages + align_pages - 1;
        if need <= USABLE_PAGES {
            let from = bin_ceil(need);
            let bits = if from < 64 {
                self.nonempty & (!0u64 << from)
            } else {
                0
            };
            if bits != 0 {
                return self.bins[bits.trailing_zeros() as usize].first();
            }
        }
        // Good fit failed: first fit among spans of the bin below, which may
        // hold a span long enough (or luckily aligned).
        let bin = bin_floor(pages.min(USABLE_PAGES));
        let list = &self.bins[bin];
        let mut cur = list.first();
        while let Some(span) = cur {
            if fits(span, pages, align_pages) {
                return Some(span);
            }
            cur = list.next(span);
        }
        None
    }

    /// Maps a new segment and returns its single free span (binned).
    fn add_segment(&mut self, index: usize) -> Option<SpanRef> {
        let (seg, span) = SegmentRef::create(index as u32)?;
        seg.link_before(self.segments);
        self.segments = Some(seg);
        self.segment_count += 1;
        self.empty_segments += 1;
        self.insert(span);
        Some(span)
    }

    /// Cuts `pages` pages at an `align_pages` boundary out of free `span`;
    /// the pieces before and after go back to the bins.
    fn carve(&mut self, span: SpanRef, pages: usize, align_pages: usize, kind: u8) -> NewSpan {
        self.unbin(span);
        let seg = span.segment();
        let first = span.first_page();
        let end = first + span.pages();
        let start = first.next_multiple_of(align_pages);
        let zero = span.zero();
        if seg.free_pages() == USABLE_PAGES {
            self.empty_segments -= 1;
        }
        if start > first {
            span.set_pages(start - first);
            seg.map_ends(span);
            self.insert(span);
        }
        if start + pages < end {
            let rest = seg.span(start + pages);
            rest.set_kind(FREE);
            rest.set_pages(end - start - pages);
            rest.set_zero(zero);
            seg.map_ends(rest);
            self.insert(rest);
        }
        let used = seg.span(start);
        used.set_kind(kind);
        used.set_pages(pages);
        seg.map_all(used);
        seg.add_free_pages(-(pages as i64));
        NewSpan { span: used, zero }
    }

    /// Frees `span`, merging neighbours. Returns a segment to destroy when
    /// this emptied one beyond those kept.
    fn free(&mut self, span: SpanRef, zero: bool) -> Option<SegmentRef> {
        let seg = span.segment();
        seg.add_free_pages(span.pages() as i64);
        let mut first = span.first_page();
        let mut pages = span.pages();
        let mut zero = zero;
        if first > FIRST_PAGE {
            let left = seg.span(seg.map_get(first - 1));
            if left.kind() == FREE {
                self.unbin(left);
                zero &= left.zero();
                first = left.first_page();
                pages += left.pages();
                span.set_kind(INVALID);
            }
        }
        let right_page = span.first_page() + span.pages();
        if right_page < PAGES {
            let right = seg.span(right_page);
            if right.kind() == FREE {
                self.unbin(right);
                zero &= right.zero();
                pages += right.pages();
                right.set_kind(INVALID);
            }
        }
        let merged = seg.span(first);
        merged.set_kind(FREE);
        merged.set_pages(pages);
        merged.set_zero(zero);
        seg.map_ends(merged);
        self.insert(merged);
        if pages == USABLE_PAGES {
            return self.release_empty(seg, merged);
        }
        None
    }

    /// Hook for the purge policy: `seg` just became empty. Keeps a few
    /// empty segments mapped and unlinks the rest for the caller to unmap.
    fn release_empty(&mut self, seg: SegmentRef, span: SpanRef) -> Option<SegmentRef> {
        if self.empty_segments < KEEP_EMPTY_SEGMENTS {
            self.empty_segments += 1;
            return None;
        }
        self.unbin(span);
        let next = seg.unlink();
        if self.segments == Some(seg) {
            self.segments = next;
        }
        self.segment_count -= 1;
        Some(seg)
    }

    fn grow(&mut self, span: SpanRef, pages: usize) -> bool {
        let seg = span.segment();
        let first = span.first_page();
        let old = span.pages();
        let right_page = first + old;
        if right_page >= PAGES {
            return false;
        }
        let right = seg.span(right_page);
        let extra = pages - old;
        if right.kind() != FREE || right.pages() < extra {
            return false;
        }
        self.unbin(right);
        let rest_pages = right.pages() - extra;
        let zero = right.zero();
        right.set_kind(INVALID);
        if rest_pages > 0 {
            let rest = seg.span(first + pages);
            rest.set_kind(FREE);
            rest.set_pages(rest_pages);
            rest.set_zero(zero);
            seg.map_ends(rest);
            self.insert(rest);
        }
        span.set_pages(pages);
        seg.map_all(span);
        seg.add_free_pages(-(extra as i64));
        true
    }
}

/// Whether free `span` holds `pages` pages starting at a multiple of
/// `align_pages`.
fn fits(span: SpanRef, pages: usize, align_pages: usize) -> bool {
    let first = span.first_page();
    first.next_multiple_of(align_pages) + pages <= first + span.pages()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::segment::{LARGE, SLAB};

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
        let a = arena.alloc_span(0, 10, 1, LARGE).expect("a");
        let b = arena.alloc_span(0, 20, 1, SLAB).expect("b");
        let c = arena.alloc_span(0, 30, 1, LARGE).expect("c");
        assert!(a.zero && b.zero && c.zero);
        let seg = a.span.segment();
        assert_eq!(seg, b.span.segment());
        assert_eq!(b.span.first_page(), a.span.first_page() + 10);
        assert_eq!(c.span.first_page(), b.span.first_page() + 20);
        assert_eq!(seg.free_pages(), USABLE_PAGES - 60);
        // Free a and c, then b: all three and the tail merge into one span.
        arena.free_span(a.span);
        arena.free_span(c.span);
        assert_eq!(seg.free_pages(), USABLE_PAGES - 20);
        arena.free_span(b.span);
        assert_eq!(seg.free_pages(), USABLE_PAGES);
        let whole = seg.span(FIRST_PAGE);
        assert_eq!(whole.kind(), FREE);
        assert_eq!(whole.pages(), USABLE_PAGES);
        assert!(!whole.zero(), "used pages are dirty");
        // The segment is kept (one empty segment per arena).
        assert_eq!(arena.segment_count(), 1);
        let again = arena.alloc_span(0, USABLE_PAGES, 1, LARGE).expect("whole");
        assert_eq!(again.span.first_page(), FIRST_PAGE);
        arena.free_span(again.span);
    }

    #[test]
    fn aligned_spans() {
        let arena = Arena::new();
        let mut spans = Vec::new();
        for align in [1, 2, 8, 64, 256, 512] {
            let s = arena.alloc_span(0, 3, align, LARGE).expect("aligned");
            assert_eq!(s.span.first_page() % align, 0);
            assert_eq!(s.span.start() as usize % (align * crate::os::PAGE), 0);
            spans.push(s.span);
        }
        for s in spans {
            arena.free_span(s);
        }
        let seg = arena.state.with(|st| st.segments).expect("segment");
        assert_eq!(seg.free_pages(), USABLE_PAGES);
        assert!(arena.alloc_span(0, USABLE_PAGES + 1, 1, LARGE).is_none());
    }

    #[test]
    fn grow_and_shrink_in_place() {
        let arena = Arena::new();
        let a = arena.alloc_span(0, 4, 1, LARGE).expect("a").span;
        assert!(arena.grow_span(a, 40));
        assert_eq!(a.pages(), 40);
        let b = arena.alloc_span(0, 1, 1, LARGE).expect("b").span;
        assert_eq!(b.first_page(), a.first_page() + 40);
        assert!(!arena.grow_span(a, 41), "blocked by b");
        arena.shrink_span(a, 8);
        assert_eq!(a.pages(), 8);
        let c = arena.alloc_span(0, 32, 1, LARGE).expect("c").span;
        assert_eq!(c.first_page(), a.first_page() + 8, "tail reused");
        for s in [a, b, c] {
            arena.free_span(s);
        }
        assert_eq!(a.segment().free_pages(), USABLE_PAGES);
    }

    #[test]
    fn empty_segments_beyond_one_are_released() {
        let arena = Arena::new();
        let spans: Vec<_> = (0..3)
            .map(|_| {
                arena
                    .alloc_span(0, USABLE_PAGES, 1, LARGE)
                    .expect("seg")
                    .span
            })
            .collect();
        assert_eq!(arena.segment_count(), 3);
        for s in spans {
            arena.free_span(s);
        }
        assert_eq!(arena.segment_count(), 1);
    }
}

//! An arena's locked state: the free spans binned by length, the segment
//! list and the purge queue; carving, merging and settling spans. Every
//! method runs under the arena's lock (the `&mut` of this state, which
//! only `Arena`'s lock hands out).

use super::{ArenaCounters, NewSpan, RETAIN_EMPTY_SEGMENTS, SPAN_BINS, bin_ceil, bin_floor};
use crate::os::{self, PAGE};
use crate::purge::{self, PurgePolicy};
use crate::segment::{
    FIRST_PAGE, HEADER_PAGES, PAGES, SegmentLinks, SegmentQueue, SegmentRef, SpanKind, SpanList,
    SpanRef, USABLE_PAGES,
};
use crate::sync::Ordering::Relaxed;

pub(super) struct ArenaState {
    pub(super) bins: [SpanList; SPAN_BINS],
    /// Bit `i` set iff `bins[i]` is non-empty.
    pub(super) nonempty: u64,
    pub(super) segments: Option<SegmentRef>,
    pub(super) segment_count: usize,
    pub(super) empty_segments: usize,
    /// Segments with dirty free pages, by deadline.
    pub(super) purge_queue: SegmentQueue,
    /// The witness that this state's holder may use the segments' list
    /// links and purge times.
    pub(super) links: SegmentLinks,
    /// Whether frees decommit at once or defer (see `purge`).
    pub(super) policy: PurgePolicy,
}

/// Spans of the bin a request's length falls in that [`ArenaState::find`]
/// tries before it cuts a longer span (a bound on the walk under the lock).
const FLOOR_LOOKS: usize = 4;

/// Bins whose first span [`ArenaState::prefer_written`] looks at.
const WRITTEN_LOOKS: usize = 4;

/// Whether the good fit prefers written pages. Not under loom, whose
/// models read every atomic load of the dirty bitmap as a point where
/// threads interleave: a bitmap read on each carve would multiply the
/// executions of the arena models, which do not depend on the choice.
const PREFER_WRITTEN: bool = !cfg!(loom);

/// What freeing a span leaves to do once the arena lock is released.
pub(super) enum Freed {
    Done,
    /// Decommit the dirty pages of this span (kind `PURGING`, out of the
    /// bins), then hand it back with `ArenaState::end_purge`.
    Purge(SpanRef),
    /// Unmap this segment (emptied, beyond those retained; unlinked).
    Unmap(SegmentRef),
}

impl ArenaState {
    pub(super) fn insert(&mut self, span: SpanRef) {
        let bin = bin_floor(span.pages());
        self.bins[bin].push(span);
        self.nonempty |= 1 << bin;
    }

    pub(super) fn unbin(&mut self, span: SpanRef) {
        let bin = bin_floor(span.pages());
        self.bins[bin].remove(span);
        if self.bins[bin].is_empty() {
            self.nonempty &= !(1 << bin);
        }
    }

    /// A free span holding `pages` pages at an `align_pages` boundary.
    ///
    /// Above the exact bins a bin holds a range of lengths, and a span long
    /// enough may sit in the bin `need` falls in (a slab of 17 pages freed
    /// moments ago, when 17 pages are asked for): the first
    /// [`FLOOR_LOOKS`] spans of that bin are tried before a longer span is
    /// cut, so that pages just freed, still written, are reused before
    /// fresh ones of a longer span (often the untouched rest of a segment)
    /// are touched.
    pub(super) fn find(&mut self, pages: usize, align_pages: usize) -> Option<SpanRef> {
        let need = pages + align_pages - 1;
        if need <= USABLE_PAGES {
            let floor = bin_floor(need);
            let from = bin_ceil(need);
            if floor != from
                && let Some(span) = self.first_fit(floor, pages, align_pages, FLOOR_LOOKS)
            {
                return Some(span);
            }
            let bits = if from < 64 {
                self.nonempty & (!0u64 << from)
            } else {
                0
            };
            if bits != 0 {
                return self.prefer_written(bits, pages);
            }
        }
        // Good fit failed: first fit among spans of the bin below, which may
        // hold a span long enough (or luckily aligned).
        self.first_fit(
            bin_floor(pages.min(USABLE_PAGES)),
            pages,
            align_pages,
            usize::MAX,
        )
    }

    /// The first of the first `looks` spans of bin `bin` that holds `pages`
    /// pages at an `align_pages` boundary.
    fn first_fit(
        &self,
        bin: usize,
        pages: usize,
        align_pages: usize,
        looks: usize,
    ) -> Option<SpanRef> {
        let list = &self.bins[bin];
        let mut cur = list.first();
        for _ in 0..looks {
            let span = cur?;
            if fits(span, pages, align_pages) {
                return Some(span);
            }
            cur = list.next(span);
        }
        None
    }

    /// Good fit among the bins of `bits` (each non-empty, each of spans of
    /// at least `pages` pages), preferring written pages: of the first
    /// spans of the lowest [`WRITTEN_LOOKS`] bins, the first (shortest) that
    /// starts with written pages; else the lowest bin's. The rest of a
    /// segment, never touched, is often the shortest span that fits, while
    /// slabs freed moments ago (another class's) have merged into longer
    /// runs: carving those reuses pages instead of touching new ones, at
    /// the cost of a longer run cut (a long request later may find it too
    /// short and take untouched pages then, as it would have now).
    fn prefer_written(&self, bits: u64, pages: usize) -> Option<SpanRef> {
        let first_of = |bits: u64| self.bins[bits.trailing_zeros() as usize].first();
        let lowest = first_of(bits)?;
        if !PREFER_WRITTEN {
            return Some(lowest);
        }
        let written = |span: SpanRef| {
            let n = pages.min(span.pages());
            2 * span.segment().dirty_pages_in(span.first_page(), n) >= n
        };
        let (mut span, mut rest) = (lowest, bits);
        for _ in 0..WRITTEN_LOOKS {
            if written(span) {
                return Some(span);
            }
            rest &= rest - 1;
            if rest == 0 {
                break;
            }
            let Some(next) = first_of(rest) else { break };
            span = next;
        }
        Some(lowest)
    }

    /// Maps a new segment and returns its single free span (binned).
    pub(super) fn add_segment(
        &mut self,
        index: usize,
        counters: &ArenaCounters,
    ) -> Option<SpanRef> {
        let (seg, span) = SegmentRef::create(index as u32)?;
        // Its pages were never decommitted: reusing them is no waste.
        seg.set_purged_at(purge::long_ago(os::now_ms()), &mut self.links);
        seg.link_before(self.segments, &mut self.links);
        self.segments = Some(seg);
        self.segment_count += 1;
        self.empty_segments += 1;
        counters.segments.fetch_add(1, Relaxed);
        counters.committed_pages.fetch_add(HEADER_PAGES, Relaxed);
        self.insert(span);
        Some(span)
    }

    /// Cuts `pages` pages at an `align_pages` boundary out of free `span`;
    /// the pieces before and after go back to the bins.
    pub(super) fn carve(
        &mut self,
        span: SpanRef,
        pages: usize,
        align_pages: usize,
        kind: SpanKind,
        now: u32,
        counters: &ArenaCounters,
    ) -> NewSpan {
        self.unbin(span);
        let seg = span.segment();
        let first = span.first_page();
        let end = first + span.pages();
        let start = first.next_multiple_of(align_pages);
        if span.pages() == USABLE_PAGES {
            self.empty_segments -= 1;
        }
        if start > first {
            span.set_pages(start - first);
            seg.map_ends(span);
            self.insert(span);
        }
        if start + pages < end {
            let rest = seg.span(start + pages);
            rest.set_kind(SpanKind::Free);
            rest.set_pages(end - start - pages);
            seg.map_ends(rest);
            self.insert(rest);
        }
        let used = seg.span(start);
        used.set_kind(kind);
        used.set_pages(pages);
        if kind == SpanKind::Slab {
            seg.map_all(used);
        } else {
            seg.map_ends(used);
        }
        seg.add_free_pages(-(pages as i64));
        let zero = seg.is_clean(start, pages);
        let newly = seg.mark_dirty(start, pages);
        counters.committed_pages.fetch_add(newly, Relaxed);
        self.policy
            .note_reuse(newly, pages - newly, seg.purged_at(&self.links), now);
        NewSpan { span: used, zero }
    }

    /// Frees `span`, merging it with free neighbours. A hot arena queues
    /// the segment for a purge a delay after `now`, unless the span is big
    /// for the arena's heap (`PurgePolicy::purge_now`); a cold one has the
    /// merged run decommitted at once, outside the lock (`Freed::Purge`),
    /// unless it holds few dirty pages (queued as a hot arena's).
    pub(super) fn free(&mut self, span: SpanRef, now: u32, counters: &ArenaCounters) -> Freed {
        let seg = span.segment();
        let pages = span.pages();
        seg.add_free_pages(pages as i64);
        let committed = counters.committed_pages.load(Relaxed);
        let merged = self.merge(span);
        let whole_segment = merged.pages() == USABLE_PAGES;
        let now_purge = self.policy.purge_now(
            pages,
            whole_segment,
            || seg.dirty_pages_in(merged.first_page(), merged.pages()),
            committed,
            now,
        );
        if now_purge {
            if whole_segment && self.empty_segments >= RETAIN_EMPTY_SEGMENTS {
                // Unmapped at once: no decommit needed first.
                self.insert(merged);
                self.unlink_empty(seg, counters);
                return Freed::Unmap(seg);
            }
            merged.set_kind(SpanKind::Purging);
            seg.set_purged_at(now, &mut self.links);
            return Freed::Purge(merged);
        }
        if !seg.queued() {
            let delay = self.policy.delay();
            self.purge_queue.push_back(seg, now.wrapping_add(delay));
        }
        self.settle(merged, counters)
    }

    /// Takes back `span`, decommitted outside the lock after `free`: it
    /// merges with the neighbours freed meanwhile.
    pub(super) fn end_purge(&mut self, span: SpanRef, now: u32, counters: &ArenaCounters) -> Freed {
        debug_assert_eq!(span.kind(), SpanKind::Purging);
        let merged = self.merge(span);
        // Neighbours freed meanwhile by a hot arena may be dirty: they are
        // in the purge queue already.
        span.segment().set_purged_at(now, &mut self.links);
        self.settle(merged, counters)
    }

    /// Merges free `span` (not binned) with its free neighbours (binned),
    /// and returns the merged span, of kind `FREE`, not binned.
    pub(super) fn merge(&mut self, span: SpanRef) -> SpanRef {
        let seg = span.segment();
        let mut first = span.first_page();
        let mut pages = span.pages();
        if first > FIRST_PAGE {
            let left = seg.span(seg.map_get(first - 1));
            if left.kind() == SpanKind::Free {
                self.unbin(left);
                first = left.first_page();
                pages += left.pages();
                span.set_kind(SpanKind::Invalid);
            }
        }
        let right_page = span.first_page() + span.pages();
        if right_page < PAGES {
            let right = seg.span(right_page);
            if right.kind() == SpanKind::Free {
                self.unbin(right);
                pages += right.pages();
                right.set_kind(SpanKind::Invalid);
            }
        }
        let merged = seg.span(first);
        merged.set_kind(SpanKind::Free);
        merged.set_pages(pages);
        seg.map_ends(merged);
        merged
    }

    /// Bins free `merged`; if it makes its segment empty, keeps the segment
    /// (up to the retained number) or unlinks it to be unmapped.
    pub(super) fn settle(&mut self, merged: SpanRef, counters: &ArenaCounters) -> Freed {
        self.insert(merged);
        if merged.pages() < USABLE_PAGES {
            return Freed::Done;
        }
        if self.empty_segments < RETAIN_EMPTY_SEGMENTS {
            self.empty_segments += 1;
            return Freed::Done;
        }
        let seg = merged.segment();
        self.unlink_empty(seg, counters);
        Freed::Unmap(seg)
    }

    /// Takes empty segment `seg` out of every list and the counts, for the
    /// caller to unmap.
    pub(super) fn unlink_empty(&mut self, seg: SegmentRef, counters: &ArenaCounters) {
        self.unbin(seg.first_span());
        if seg.queued() {
            self.purge_queue.remove(seg);
        }
        let next = seg.unlink(&mut self.links);
        if self.segments == Some(seg) {
            self.segments = next;
        }
        self.segment_count -= 1;
        let committed = seg.dirty_pages() + HEADER_PAGES;
        counters.segments.fetch_sub(1, Relaxed);
        counters.committed_pages.fetch_sub(committed, Relaxed);
        counters.released_bytes.fetch_add(committed * PAGE, Relaxed);
    }

    pub(super) fn grow(&mut self, span: SpanRef, pages: usize, counters: &ArenaCounters) -> bool {
        let seg = span.segment();
        let first = span.first_page();
        let old = span.pages();
        let right_page = first + old;
        if right_page >= PAGES {
            return false;
        }
        let right = seg.span(right_page);
        let extra = pages - old;
        if right.kind() != SpanKind::Free || right.pages() < extra {
            return false;
        }
        self.unbin(right);
        let rest_pages = right.pages() - extra;
        right.set_kind(SpanKind::Invalid);
        if rest_pages > 0 {
            let rest = seg.span(first + pages);
            rest.set_kind(SpanKind::Free);
            rest.set_pages(rest_pages);
            seg.map_ends(rest);
            self.insert(rest);
        }
        span.set_pages(pages);
        seg.map_ends(span);
        seg.add_free_pages(-(extra as i64));
        let newly = seg.mark_dirty(right_page, extra);
        counters.committed_pages.fetch_add(newly, Relaxed);
        true
    }
}

/// Whether free `span` holds `pages` pages starting at a multiple of
/// `align_pages`.
pub(super) fn fits(span: SpanRef, pages: usize, align_pages: usize) -> bool {
    let first = span.first_page();
    first.next_multiple_of(align_pages) + pages <= first + span.pages()
}

//! Arenas: page-run allocation over segments, coalescing, and the return of
//! memory to the OS (the locked state and what runs under the lock are in
//! `arena/state.rs`).
//!
//! An arena owns a set of segments and the free spans in them, binned by
//! length (exact up to 16 pages, then four bins per doubling) with a bitmap
//! of non-empty bins, so finding a span that fits is a bit scan: a request
//! looks at the first few spans of the bin its length falls in (above the
//! exact bins, one may be long enough: a slab just freed, when a slab of
//! its class is asked for), then searches from the first bin whose every
//! span is long enough ("good fit"), preferring among the first spans of
//! the lowest few non-empty bins one whose pages are written over untouched
//! ones (the rest of a segment), then falls back to a first-fit walk of the
//! bin that may hold a fitting span. Pages freed are thus reused before new
//! ones are touched. Freeing a span merges it with free neighbours found through the
//! page map in O(1), so adjacent free runs always form one span.
//!
//! Memory goes back to the OS by the adaptive policy of `purge`:
//! - while the arena is cold, a freed span's dirty pages, merged with its
//!   free neighbours, are decommitted (`MADV_DONTNEED`) at once, outside
//!   the arena lock (the run leaves the bins meanwhile, as `PURGING`, and
//!   merges with its neighbours again when it comes back): a system call
//!   under a lock that the other threads of the arena need would make them
//!   wait, or sleep. A merged run with few dirty pages
//!   (`purge::COLD_RUN_PAGES`) that is not its whole segment is deferred
//!   as below instead, to go back with its neighbours;
//! - while it is hot (it keeps reusing pages it just decommitted), a freed
//!   span's segment enters the arena's purge queue (once) with a deadline of
//!   now + the purge delay, and its dirty free pages are decommitted in one
//!   pass when the deadline has passed (driven by allocator activity,
//!   `Backend::tick`). A span freed and reused within the delay costs no
//!   system call;
//! - a segment whose pages are all free is kept mapped (purged as above) up
//!   to [`RETAIN_EMPTY_SEGMENTS`] per arena; beyond that bound it is
//!   unmapped at once; when an `mmap` fails, [`Arena::release_empty`]
//!   unmaps the retained ones too, before the heap retries.
//!
//! Threads are spread over several arenas, each behind its own lock; a span
//! goes back to the arena of its segment whichever thread frees it.

use crate::os::{self, PAGE};
use crate::purge::PurgePolicy;
use crate::segment::{
    FIRST_PAGE, PAGES, SegmentLinks, SegmentQueue, SegmentRef, SpanKind, SpanList, SpanRef,
    USABLE_PAGES,
};
use crate::sync::{AtomicUsize, Lock, Ordering::Relaxed, const_fn};

/// Number of span bins: 16 exact, then 4 per doubling up to `PAGES`.
const EXACT_BINS: usize = 16;
const SPAN_BINS: usize = EXACT_BINS + 4 * (PAGES.trailing_zeros() as usize - 4) + 1;
const _: () = assert!(SPAN_BINS <= 64);

/// Empty segments an arena keeps mapped (decommitted) for reuse; more are
/// unmapped at once.
pub const RETAIN_EMPTY_SEGMENTS: usize = 2;

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
    counters: ArenaCounters,
}

/// Counters read by statistics without the lock.
struct ArenaCounters {
    /// Pages that may be resident: dirty pages and segment headers.
    committed_pages: AtomicUsize,
    segments: AtomicUsize,
    /// Bytes handed back to the OS: decommitted, or unmapped while
    /// committed (cumulative).
    released_bytes: AtomicUsize,
    /// `madvise` calls made to decommit (cumulative).
    decommits: AtomicUsize,
}

/// Counters of one arena, for statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArenaCounts {
    pub committed_bytes: usize,
    pub segments: usize,
    pub released_bytes: usize,
    pub decommits: usize,
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
                    purge_queue: SegmentQueue::new(),
                    // SAFETY: the one witness of this arena, in its locked
                    // state.
                    links: unsafe { SegmentLinks::new() },
                    policy: PurgePolicy::new(),
                }),
                counters: ArenaCounters {
                    committed_pages: AtomicUsize::new(0),
                    segments: AtomicUsize::new(0),
                    released_bytes: AtomicUsize::new(0),
                    decommits: AtomicUsize::new(0),
                },
            }
        }
    }

    /// Allocates a span of `pages` pages whose first page index is a
    /// multiple of `align_pages`, of kind `kind`; a slab has every page in
    /// the page map, any other span its first and last. `index` is this
    /// arena's index (recorded in new segments).
    pub fn alloc_span(
        &self,
        index: usize,
        pages: usize,
        align_pages: usize,
        kind: SpanKind,
    ) -> Option<NewSpan> {
        debug_assert!(pages >= 1 && align_pages.is_power_of_two());
        if pages + FIRST_PAGE.next_multiple_of(align_pages) - FIRST_PAGE > USABLE_PAGES {
            return None;
        }
        let now = os::now_ms();
        self.state.with(|st| {
            let found = match st.find(pages, align_pages) {
                Some(span) => span,
                None => st.add_segment(index, &self.counters)?,
            };
            Some(st.carve(found, pages, align_pages, kind, now, &self.counters))
        })
    }

    /// Returns `span` (a slab or large span of one of this arena's
    /// segments) to the free spans, merging it with free neighbours.
    pub fn free_span(&self, span: SpanRef) {
        let now = os::now_ms();
        let freed = self.state.with(|st| st.free(span, now, &self.counters));
        self.finish(freed, now);
    }

    /// Does what a free left to do outside the lock: a decommit (a system
    /// call, which may take long with many threads: other threads allocate
    /// and free in the arena meanwhile) or an unmap.
    fn finish(&self, mut freed: Freed, now: u32) {
        loop {
            match freed {
                Freed::Done => return,
                Freed::Unmap(seg) => {
                    // SAFETY: the segment is unlinked; none of its spans is
                    // used.
                    unsafe { seg.destroy() };
                    return;
                }
                Freed::Purge(span) => {
                    let seg = span.segment();
                    // The span is out of the bins, marked PURGING: nobody
                    // carves, merges or purges it until `end_purge`.
                    let (pages, calls) = seg.decommit(span.first_page(), span.pages());
                    self.counters.note_decommit(pages, calls);
                    freed = self
                        .state
                        .with(|st| st.end_purge(span, now, &self.counters));
                }
            }
        }
    }

    /// Shrinks a large span in place to `pages` pages, freeing its tail.
    pub fn shrink_span(&self, span: SpanRef, pages: usize) {
        debug_assert!(pages >= 1 && pages < span.pages());
        let now = os::now_ms();
        let freed = self.state.with(|st| {
            let seg = span.segment();
            let tail = seg.span(span.first_page() + pages);
            tail.set_pages(span.pages() - pages);
            span.set_pages(pages);
            seg.map_ends(span);
            seg.map_ends(tail);
            st.free(tail, now, &self.counters)
        });
        // The head stays in use, so no segment can become empty here.
        debug_assert!(!matches!(freed, Freed::Unmap(_)));
        self.finish(freed, now);
    }

    /// Grows a large span in place to `pages` pages if the free span right
    /// after it is long enough. Returns whether it did.
    pub fn grow_span(&self, span: SpanRef, pages: usize) -> bool {
        self.state.with(|st| st.grow(span, pages, &self.counters))
    }

    /// Decommits the dirty free pages of every segment whose purge deadline
    /// `now` has reached.
    pub fn purge_expired(&self, now: u32) {
        self.state.with(|st| {
            while let Some(seg) = st.purge_queue.front() {
                if !os::reached(now, seg.purge_at()) {
                    break;
                }
                st.purge_queue.remove(seg);
                purge_free_spans(seg, now, &self.counters, &mut st.links);
            }
        });
    }

    /// Decommits every dirty free page now and unmaps every empty segment.
    pub fn trim(&self) {
        self.unmap_empty_segments(Some(os::now_ms()));
    }

    /// Unmaps every empty segment, the retained ones included (memory or
    /// address space ran out: `Backend::release_for_retry`).
    pub fn release_empty(&self) {
        self.unmap_empty_segments(None);
    }

    /// Unmaps every empty segment; with `purge_at` (the time now), also
    /// empties the purge queue and decommits the dirty free pages of every
    /// segment kept.
    fn unmap_empty_segments(&self, purge_at: Option<u32>) {
        let mut doomed: Option<SegmentRef> = None;
        self.state.with(|st| {
            if purge_at.is_some() {
                while let Some(seg) = st.purge_queue.front() {
                    st.purge_queue.remove(seg);
                }
            }
            let mut cur = st.segments;
            while let Some(seg) = cur {
                cur = seg.next(&st.links);
                if is_empty(seg) {
                    st.empty_segments -= 1;
                    st.unlink_empty(seg, &self.counters);
                    seg.link_before(doomed, &mut st.links);
                    doomed = Some(seg);
                } else if let Some(now) = purge_at {
                    purge_free_spans(seg, now, &self.counters, &mut st.links);
                }
            }
        });
        // SAFETY: the doomed segments are unlinked from the arena, and
        // only this thread knows them.
        let doomed_links = unsafe { SegmentLinks::new() };
        while let Some(seg) = doomed {
            doomed = seg.next(&doomed_links);
            // SAFETY: unlinked above; none of its spans is used.
            unsafe { seg.destroy() };
        }
    }

    /// Decommits pages `[first, first + n)` of `seg`, which belong to a slab
    /// whose owner (a central pool) has parked every block on them.
    pub fn decommit_slab_pages(&self, seg: SegmentRef, first: usize, n: usize) -> usize {
        let (pages, calls) = seg.decommit(first, n);
        self.counters.note_decommit(pages, calls);
        pages
    }

    /// Marks pages `[first, first + n)` of a slab in `seg` as in use again.
    pub fn recommit_slab_pages(&self, seg: SegmentRef, first: usize, n: usize) {
        let newly = seg.mark_dirty(first, n);
        self.counters.committed_pages.fetch_add(newly, Relaxed);
    }

    /// This arena's counters.
    pub fn counts(&self) -> ArenaCounts {
        let c = &self.counters;
        ArenaCounts {
            committed_bytes: c.committed_pages.load(Relaxed) * PAGE,
            segments: c.segments.load(Relaxed),
            released_bytes: c.released_bytes.load(Relaxed),
            decommits: c.decommits.load(Relaxed),
        }
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
}

/// Consistency checks (tests, fuzzing).
#[cfg(any(test, fuzzing, feature = "invariants"))]
impl Arena {
    /// Checks the arena, which is `arenas[index]` of its heap: its segments
    /// (see `SegmentRef::check`), the bins (every free span binned once, by
    /// length), the purge queue, the empty-segment and committed-page
    /// counts. Calls `f` on every slab and large span. The heap must be
    /// quiescent (slab state belongs to the central pools' locks).
    pub fn check(&self, index: usize, mut f: impl FnMut(SpanRef)) {
        self.state.with(|st| {
            let (mut segments, mut empty, mut queued, mut free_spans, mut committed) =
                (0, 0, 0, 0, 0);
            let mut cur = st.segments;
            while let Some(seg) = cur {
                seg.check(index, |span| match span.kind() {
                    SpanKind::Free => free_spans += 1,
                    _ => f(span),
                });
                segments += 1;
                empty += usize::from(seg.free_pages() == USABLE_PAGES);
                queued += usize::from(seg.queued());
                committed += seg.dirty_pages() + crate::segment::HEADER_PAGES;
                cur = seg.next(&st.links);
            }
            assert_eq!(segments, st.segment_count, "arena {index}: segment count");
            assert_eq!(
                segments,
                self.counters.segments.load(Relaxed),
                "arena {index}: segments counter"
            );
            assert_eq!(empty, st.empty_segments, "arena {index}: empty segments");
            assert_eq!(queued, st.purge_queue.check(), "arena {index}: purge queue");
            assert_eq!(
                committed,
                self.counters.committed_pages.load(Relaxed),
                "arena {index}: committed pages"
            );
            let mut binned = 0;
            for (bin, list) in st.bins.iter().enumerate() {
                assert_eq!(
                    st.nonempty & (1 << bin) != 0,
                    !list.is_empty(),
                    "arena {index}: bin bit {bin}"
                );
                if list.is_empty() {
                    continue;
                }
                list.check("arena bin", |span| {
                    assert_eq!(
                        span.kind(),
                        SpanKind::Free,
                        "arena {index}: busy span in bin {bin}"
                    );
                    assert_eq!(
                        bin_floor(span.pages()),
                        bin,
                        "arena {index}: span in the wrong bin"
                    );
                    assert_eq!(span.segment().arena(), index, "arena {index}: foreign span");
                    binned += 1;
                });
            }
            assert_eq!(binned, free_spans, "arena {index}: free spans binned");
        });
    }
}

impl ArenaCounters {
    fn note_decommit(&self, pages: usize, calls: usize) {
        self.committed_pages.fetch_sub(pages, Relaxed);
        self.released_bytes.fetch_add(pages * PAGE, Relaxed);
        self.decommits.fetch_add(calls, Relaxed);
    }
}

/// Whether `seg` is empty: one free, binned span covers it (a segment
/// whose pages are all free but in two spans, one of them being purged
/// outside the lock, is not yet).
fn is_empty(seg: SegmentRef) -> bool {
    let first = seg.first_span();
    first.kind() == SpanKind::Free && first.pages() == USABLE_PAGES
}

/// Decommits the dirty pages of every free span of `seg` (arena lock).
fn purge_free_spans(seg: SegmentRef, now: u32, counters: &ArenaCounters, links: &mut SegmentLinks) {
    seg.set_purged_at(now, links);
    let mut cur = Some(seg.first_span());
    while let Some(span) = cur {
        if span.kind() == SpanKind::Free {
            let (pages, calls) = seg.decommit(span.first_page(), span.pages());
            counters.note_decommit(pages, calls);
        }
        cur = seg.next_span(span);
    }
}

mod state;
use state::{ArenaState, Freed};

#[cfg(all(test, not(loom)))]
mod tests;

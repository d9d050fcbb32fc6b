//! Consistency checks of a segment (tests, fuzzing and the `invariants`
//! build), under the arena lock with the heap quiescent: the spans tile the
//! usable pages, free spans are coalesced and counted, the page map finds
//! every span from its ends, and the dirty bitmap agrees.

use super::{FIRST_PAGE, MAGIC, PAGES, SegmentRef, SpanKind, SpanRef};
#[cfg(not(loom))]
use crate::registry::{self, ChunkKind};

/// Consistency checks (tests, fuzzing), under the arena lock with the
/// heap quiescent.
impl SegmentRef {
    /// Checks the header of a segment of arena `arena`: the spans tile the
    /// usable pages, free spans are coalesced and counted in `free_pages`,
    /// the page map finds every span from its ends, no header page is dirty
    /// and every page of a large span is. Calls `f` on each span.
    pub fn check(self, arena: usize, mut f: impl FnMut(SpanRef)) {
        let base = self.base();
        // SAFETY: the header is mapped; `magic` is written once at creation.
        let magic = unsafe { (*self.hdr()).magic };
        assert_eq!(magic, MAGIC, "segment {base:p}: magic");
        assert_eq!(self.arena(), arena, "segment {base:p}: arena");
        #[cfg(not(loom))]
        assert_eq!(
            registry::kind_of(base),
            ChunkKind::Segment,
            "segment {base:p}: registry"
        );
        assert!(
            self.is_clean(0, FIRST_PAGE),
            "segment {base:p}: dirty header page"
        );
        let (mut page, mut free, mut prev_free) = (FIRST_PAGE, 0, false);
        while page < PAGES {
            let span = self.span(page);
            let (kind, pages) = (span.kind(), span.pages());
            assert!(
                pages >= 1 && page + pages <= PAGES,
                "segment {base:p}: span at {page} has {pages} pages"
            );
            assert!(
                matches!(kind, SpanKind::Free | SpanKind::Slab | SpanKind::Large),
                "segment {base:p}: span at {page} has kind {kind:?}"
            );
            assert_eq!(
                self.map_get(page),
                page,
                "segment {base:p}: page map at {page}"
            );
            assert_eq!(
                self.map_get(page + pages - 1),
                page,
                "segment {base:p}: page map at the end of {page}"
            );
            let is_free = kind == SpanKind::Free;
            assert!(
                !(is_free && prev_free),
                "segment {base:p}: free spans not merged at {page}"
            );
            if is_free {
                free += pages;
            }
            if kind == SpanKind::Large {
                let mut dirty = 0;
                self.dirty_runs(page, pages, |_, n| dirty += n);
                assert_eq!(
                    dirty, pages,
                    "segment {base:p}: clean page in the large span at {page}"
                );
            }
            prev_free = is_free;
            f(span);
            page += pages;
        }
        assert_eq!(self.free_pages(), free, "segment {base:p}: free page count");
    }
}

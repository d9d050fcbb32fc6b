//! Consistency checks of a slab (tests, fuzzing and the `invariants`
//! build): the owner's lock must be held, or the heap be quiescent.

use super::{Slab, SlabLock};
use crate::block;
use crate::os::PAGE;
use crate::segment::SpanKind;
use crate::size_class::CLASSES;

/// Consistency checks (tests, fuzzing): the owner's lock must be held, or
/// the heap be quiescent.
impl Slab {
    /// Panics unless `b` is a block this slab has carved and that lies on
    /// no purged page (so it may be live, cached, or on a free list).
    pub fn check_block(&self, b: *const u8, what: &str, lock: &mut SlabLock) {
        let (bumped, capacity, purged) = {
            let st = self.st(lock);
            (self.0.bumped(), st.capacity, st.purged)
        };
        let size = CLASSES[self.0.class()].size as usize;
        let off = (b as usize).wrapping_sub(self.0.start() as usize);
        assert!(
            off % size == 0 && off / size < capacity as usize,
            "{what}: {b:p} is no block of the slab at {:p} (size {size})",
            self.0.start()
        );
        let i = (off / size) as u32;
        assert!(i < bumped, "{what}: {b:p} is past the bump pointer");
        assert!(
            Self::pages_of(i, size) & purged == 0,
            "{what}: {b:p} lies on a purged page"
        );
    }

    /// Checks the invariants at the top of this file and the slab's span:
    /// geometry of `class`, page map, free list, parked blocks, dirty bits
    /// of the pages in use. Returns the live count.
    pub fn check(&self, class: usize, lock: &mut SlabLock) -> u32 {
        let info = &CLASSES[class];
        let size = info.size as usize;
        let span = self.0;
        let start = span.start();
        assert_eq!(span.kind(), SpanKind::Slab, "slab {start:p}: kind");
        assert_eq!(span.class(), class, "slab {start:p}: class");
        assert_eq!(
            span.pages(),
            info.slab_pages as usize + super::guard_pages(),
            "slab {start:p}: pages"
        );
        let align = info.align_pages as usize * PAGE;
        assert!(start as usize % align == 0, "slab {start:p}: alignment");
        let st = self.st(lock);
        let (free, live, bumped, parked, purged) =
            (st.free, st.live, self.0.bumped(), st.parked, st.purged);
        assert_eq!(st.capacity, info.capacity, "slab {start:p}: capacity");
        assert!(
            bumped <= info.capacity && live + parked <= bumped,
            "slab {start:p}: live {live} + parked {parked} > bumped {bumped}"
        );
        let pages = self.block_pages();
        assert!(
            pages >= 64 || purged >> pages == 0,
            "slab {start:p}: purged mask"
        );
        let parked_blocks = match purged {
            0 => 0,
            _ => (0..bumped)
                .filter(|&i| Self::pages_of(i, size) & purged != 0)
                .count(),
        };
        assert_eq!(parked as usize, parked_blocks, "slab {start:p}: parked");
        let what = "slab free list";
        block::check_chain(what, free, bumped - live - parked, |b| {
            self.check_block(b.cast(), what, lock)
        });
        let seg = span.segment();
        let first = span.first_page();
        for p in 0..pages {
            assert_eq!(seg.map_get(first + p), first, "slab {start:p}: page map");
            assert!(
                purged & (1 << p) != 0 || !seg.is_clean(first + p, 1),
                "slab {start:p}: page {p} in use but clean"
            );
        }
        live
    }
}

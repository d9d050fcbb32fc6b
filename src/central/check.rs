//! Consistency checks of a central pool (tests, fuzzing and the
//! `invariants` build): the transfer stack and inbox hold well-formed
//! batches of the class, each listed slab is this arena's, not full, and in
//! the bucket of its occupancy.

use super::Central;
use super::state::{bucket, transfer_cap};
use crate::segment::SpanKind;
use crate::size_class::CLASSES;
use crate::slab::{Slab, SlabLock};
use crate::sync::Ordering::Relaxed;

/// What `Central::check` counted, for the heap to compare with the slabs.
#[derive(Clone, Copy, Debug, Default)]
pub struct CentralCheck {
    pub slabs: usize,
    pub live_blocks: usize,
    pub transfer_blocks: usize,
    pub purged_pages: usize,
    /// Slabs on the partial lists (those with a free block).
    pub listed: usize,
    pub cached_blocks: usize,
}

impl Central {
    /// Checks the pool of `class` in arena `index`: the transfer stack (its
    /// count, every batch a well-formed list of blocks of the class), the
    /// partial lists (each slab of this arena, in the bucket of its
    /// occupancy, the non-empty bits). The slabs themselves are checked by
    /// the heap, which finds them all.
    pub fn check(&self, class: usize, index: usize) -> CentralCheck {
        let info = &CLASSES[class];
        let mut c = self.state.with(|st| {
            assert!(
                st.transfer_len <= transfer_cap(info),
                "class {class}: transfer stack overfull"
            );
            let mut transfer = 0;
            for (i, list) in st.transfer.iter().enumerate() {
                assert_eq!(
                    i < st.transfer_len,
                    !list.is_empty(),
                    "class {class}: transfer slot {i}"
                );
                list.check("transfer batch", |b| {
                    check_block(class, b.cast(), "transfer batch")
                });
                transfer += list.len() as usize;
            }
            assert_eq!(
                transfer, st.transfer_blocks,
                "class {class}: transfer count"
            );
            self.inbox.for_each(|chain| {
                chain.check("inbox batch", |b| {
                    check_block(class, b.cast(), "inbox batch")
                });
                transfer += chain.len() as usize;
            });
            let mut listed = 0;
            for (b, list) in st.partial.iter().enumerate() {
                assert_eq!(
                    st.nonempty & (1 << b) != 0,
                    !list.is_empty(),
                    "class {class}: bucket bit {b}"
                );
                list.check("partial slabs", |span| {
                    let slab = Slab(span);
                    assert_eq!(span.class(), class, "class {class}: foreign slab listed");
                    assert_eq!(
                        span.segment().arena(),
                        index,
                        "class {class}: slab of another arena listed in arena {index}"
                    );
                    assert!(
                        slab.live(&mut st.owned) < slab.capacity(&mut st.owned),
                        "class {class}: full slab listed"
                    );
                    assert_eq!(
                        slab.bucket(&mut st.owned),
                        b,
                        "class {class}: slab bucket field"
                    );
                    assert_eq!(
                        bucket(slab.live(&mut st.owned), slab.capacity(&mut st.owned)),
                        b,
                        "class {class}: slab in the wrong bucket"
                    );
                    listed += 1;
                });
            }
            CentralCheck {
                slabs: st.slabs,
                live_blocks: st.live_blocks,
                transfer_blocks: transfer,
                purged_pages: st.purged_pages,
                listed,
                cached_blocks: 0,
            }
        });
        c.cached_blocks = self.cached.load(Relaxed);
        c
    }

    /// Panics unless `b` is a carved block of a slab of `class` (under the
    /// lock of this pool, which must own `b`'s slab).
    pub fn check_block(&self, class: usize, b: *const u8, what: &str) {
        self.state.with(|_| check_block(class, b, what));
    }
}

/// Panics unless `b` lies in a slab of `class` at a block boundary below
/// its bump pointer (the caller holds the lock of the slab's pool, or the
/// heap is quiescent).
fn check_block(class: usize, b: *const u8, what: &str) {
    #[cfg(not(loom))]
    assert_eq!(
        crate::registry::kind_of(b),
        crate::registry::ChunkKind::Segment,
        "{what}: {b:p} is not in a segment"
    );
    // SAFETY: `b` lies in a segment if it came from a slab; a segment
    // header is readable whatever the page map says, which is checked next.
    let span = unsafe { crate::segment::SegmentRef::of(b).span_of(b) };
    assert_eq!(
        span.kind(),
        SpanKind::Slab,
        "{what}: {b:p} is not in a slab"
    );
    assert_eq!(
        span.class(),
        class,
        "{what}: {b:p} is in a slab of class {}",
        span.class()
    );
    // SAFETY: checks run on a quiescent heap (or under the pool's lock, by
    // its own check): no other thread uses the slab.
    let mut lock = unsafe { SlabLock::new() };
    Slab(span).check_block(b, what, &mut lock);
}

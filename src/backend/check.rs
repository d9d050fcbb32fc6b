//! Consistency checks of the whole backend (tests, fuzzing): every
//! structure by its own `check`, and the counts that tie them.

use super::{Backend, MAX_ARENAS};
use crate::segment::{SegmentRef, SpanKind};
use crate::size_class::NUM_CLASSES;
use crate::sync::Ordering;

/// What [`Backend::check`] counted of the blocks the program holds.
#[cfg(any(test, fuzzing, feature = "invariants"))]
#[derive(Clone, Copy, Debug)]
pub struct BackendCheck {
    /// Small blocks per class out of the heap and out of the thread caches
    /// passed to `check` (so exact when those are all the caches).
    pub held: [usize; NUM_CLASSES],
    /// Bytes of live large spans.
    pub large_bytes: usize,
    /// Live huge blocks.
    pub huge_blocks: usize,
}

/// The arena of the segment holding `b`; panics unless `b` lies in a
/// segment of one of the heap's arenas.
#[cfg(any(test, fuzzing, feature = "invariants"))]
fn owner_checked(b: *const u8, what: &str) -> usize {
    #[cfg(not(loom))]
    assert_eq!(
        crate::registry::kind_of(b),
        crate::registry::ChunkKind::Segment,
        "{what}: {b:p} is not in a segment"
    );
    // SAFETY: `b` lies in a segment (checked above; under loom the models
    // pass blocks only), whose header is readable.
    let owner = unsafe { SegmentRef::of(b) }.arena();
    assert!(owner < MAX_ARENAS, "{what}: {b:p} in a segment of no arena");
    owner
}

/// What a thread cache's `check` found, for [`Backend::check`]: blocks cached
/// and the counts last published to the central pools, per class.
#[cfg(any(test, fuzzing, feature = "invariants"))]
pub struct CacheCounts {
    pub cached: [u32; NUM_CLASSES],
    pub published: [u32; NUM_CLASSES],
}

/// Consistency checks (tests, fuzzing).
#[cfg(any(test, fuzzing, feature = "invariants"))]
impl Backend {
    /// Checks every structure of the heap (each by its own `check`) and the
    /// counters that tie them: per class, the central pool's slab, live and
    /// purged-page counts against the slabs the arenas hold, its partial
    /// lists against the slabs with a free block; the large-byte counter
    /// against the large spans. `caches`, when given, are the counts of all
    /// the thread caches of this heap (each from its own `check`): their
    /// published counts are compared. Panics with a message on the first
    /// violation.
    ///
    /// The heap must be quiescent: no other thread may be inside it.
    pub fn check(&self, caches: Option<&[CacheCounts]>) -> BackendCheck {
        let mut large = 0;
        let mut in_pools = [[0usize; 3]; NUM_CLASSES]; // live, transfer, published
        for (i, shard) in self.shards.iter().enumerate() {
            let mut slabs = [[0usize; 4]; NUM_CLASSES]; // slabs, live, purged, full
            shard.arena.check(i, |span| {
                if span.kind() == SpanKind::Large {
                    large += span.bytes();
                    return;
                }
                let (class, slab) = (span.class(), crate::slab::Slab(span));
                // SAFETY: the heap is quiescent (this method's contract).
                let lock = &mut unsafe { crate::slab::SlabLock::new() };
                let live = slab.check(class, lock);
                let s = &mut slabs[class];
                s[0] += 1;
                s[1] += live as usize;
                s[2] += slab.purged_pages(lock);
                s[3] += usize::from(live == slab.capacity(lock));
            });
            for (class, central) in shard.central.iter().enumerate() {
                let c = central.check(class, i);
                let [n, live, purged, full] = slabs[class];
                assert_eq!(
                    (c.slabs, c.live_blocks, c.purged_pages, c.listed),
                    (n, live, purged, n - full),
                    "class {class}, arena {i}: central (slabs, live, purged pages, listed) vs the slabs of its arena"
                );
                let p = &mut in_pools[class];
                p[0] += c.live_blocks;
                p[1] += c.transfer_blocks;
                p[2] = p[2].wrapping_add(c.cached_blocks);
            }
            let used = self.used.load(Ordering::Relaxed) | 1;
            assert!(
                used & (1 << i) != 0 || shard.arena.counts().segments == 0,
                "arena {i} holds segments but was never a home"
            );
        }
        let large_bytes = self.large_bytes.load(Ordering::Relaxed);
        assert_eq!(
            large, large_bytes,
            "heap: large bytes counter vs large spans"
        );
        let mut cached = [[0usize; 2]; NUM_CLASSES]; // cached, published
        for tc in caches.unwrap_or(&[]) {
            for (class, sums) in cached.iter_mut().enumerate() {
                sums[0] += tc.cached[class] as usize;
                sums[1] += tc.published[class] as usize;
            }
        }
        let mut held = [0; NUM_CLASSES];
        for class in 0..NUM_CLASSES {
            let [live, transfer, published_in_pools] = in_pools[class];
            let [in_caches, published] = cached[class];
            if caches.is_some() {
                assert_eq!(
                    published_in_pools, published,
                    "class {class}: published cache counts"
                );
            }
            held[class] = (live.checked_sub(transfer + in_caches)).unwrap_or_else(|| {
                panic!("class {class}: more blocks in transfer and caches than live")
            });
        }
        self.huge.cache.check();
        BackendCheck {
            held,
            large_bytes,
            huge_blocks: self.huge.counts().blocks,
        }
    }

    /// Panics unless `b` is a carved block of a slab of `class`.
    pub fn check_block(&self, class: usize, b: *const u8, what: &str) {
        let owner = owner_checked(b, what);
        self.shards[owner].central[class].check_block(class, b, what);
    }
}

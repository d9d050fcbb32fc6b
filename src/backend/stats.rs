//! The backend's statistics: a snapshot of every counter, taken lock by
//! lock (approximate under concurrent use, exact when quiescent).

use super::Backend;
use crate::central::CentralCounts;
use crate::layout::SEGMENT_SIZE;
use crate::os::PAGE;
use crate::size_class::CLASSES;
use crate::stats::{ClassStats, Stats};
use crate::sync::Ordering;

impl Backend {
    /// A snapshot of the heap's counters (see [`Stats`]). Takes each lock
    /// briefly, one at a time, so under concurrent use the figures are
    /// approximate; they are exact when the heap is quiescent.
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        let mut small_allocated = 0;
        let mut slab_bytes = 0;
        for (class, info) in CLASSES.iter().enumerate() {
            let mut c = CentralCounts::default();
            for (_, shard) in self.used_shards() {
                c.add(&shard.central[class].counts());
            }
            let size = info.size as usize;
            let held = c
                .live_blocks
                .saturating_sub(c.transfer_blocks + c.cached_blocks);
            s.classes[class] = ClassStats {
                size,
                slabs: c.slabs,
                empty_slabs: c.empty_slabs,
                allocated_blocks: held,
                cached_blocks: c.cached_blocks,
                transfer_blocks: c.transfer_blocks,
                free_blocks: c.slabs * info.capacity as usize - c.live_blocks,
                purged_pages: c.purged_pages,
                lock_acquisitions: c.locks.acquisitions,
                lock_waits: c.locks.waits,
                lock_sleeps: c.locks.sleeps,
                cross_thread_batches: c.cross_thread_batches,
            };
            s.lock_acquisitions += c.locks.acquisitions;
            s.lock_waits += c.locks.waits;
            s.lock_sleeps += c.locks.sleeps;
            s.cross_thread_batches += c.cross_thread_batches;
            small_allocated += held * size;
            slab_bytes += (c.slabs * info.slab_pages as usize - c.purged_pages) * PAGE;
        }
        let huge = self.huge.counts();
        let (huge_blocks, huge_bytes) = (huge.blocks, huge.bytes);
        let large = self.large_bytes.load(Ordering::Relaxed);
        for (_, shard) in self.used_shards() {
            let a = shard.arena.counts();
            s.committed += a.committed_bytes;
            s.segments += a.segments;
            s.released += a.released_bytes;
            s.purges += a.decommits;
        }
        s.allocated = small_allocated + large + huge_bytes;
        s.active = slab_bytes + large + huge_bytes;
        // A huge block's header page is resident too.
        s.committed += huge_bytes + huge_blocks * PAGE + huge.cached_dirty;
        s.mapped = s.segments * SEGMENT_SIZE + huge.mapped;
        s.huge_blocks = huge_blocks;
        s.threads = self.threads.load(Ordering::Relaxed);
        // Each counter is read on its own: a block mapped or unmapped
        // meanwhile can be in one figure and not in the next. Clamp so the
        // figures nest as documented (they are exact when quiescent).
        s.committed = s.committed.min(s.mapped);
        s.active = s.active.min(s.committed);
        s.allocated = s.allocated.min(s.active);
        s
    }
}

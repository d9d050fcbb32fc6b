//! What the loom models (`tests/loom.rs`) see of slabpool's internals; built
//! under `cfg(loom)` only.
//!
//! A model builds its own tiny instances of the concurrent structures (a
//! central pool with its arena, arenas alone, the huge-mapping cache, a
//! whole [`Backend`] with thread caches) over memory mapped by `os` (never the
//! global allocator, which loom itself allocates through), runs two threads
//! on them, and checks the counts afterwards. Under loom the geometry is small (64 KiB segments of
//! 16 pages, slabs of a few blocks, batches of two, transfer stacks of two
//! batches, two arenas: see `segment`, `size_class`, `central`, `heap`), the
//! clock is the model's ([`set_clock_ms`], the clock seam of `sync`), and a lock can be broken on
//! purpose ([`break_locks`]) to show that the models catch a lost mutual
//! exclusion. The global front end (`global`, `raw`, and what only they
//! use) does not exist under loom.
//!
//! The types are re-exported as they are: their safe methods keep the
//! locking contracts written on them (a [`Slab`] or [`SpanRef`] may only be
//! inspected once the threads that own it have been joined).

pub use crate::arena::Arena;
pub use crate::backend::{Backend, Owners, Route, Sender, route};
pub use crate::block::{Block, BlockList, Chain};
pub use crate::central::{Central, CentralCounts, Home, Refill};
pub use crate::huge_cache::HugeCache;
pub use crate::layout::SEGMENT_SIZE;
pub use crate::os::{PAGE, reserve};
/// The heap profiler's shared state (`prof` feature): a model's own.
#[cfg(feature = "prof")]
pub use crate::prof::{
    MAX_DEPTH as PROF_MAX_DEPTH, Misuse as ProfMisuse, ProfStats, Shared as ProfShared,
};
pub use crate::segment::{FIRST_PAGE, PAGES, SegmentRef, SpanKind, SpanRef, USABLE_PAGES};
pub use crate::size_class::{CLASSES, ClassInfo, SizeClass};
pub use crate::slab::{Slab, SlabLock};
pub use crate::sync::clock::set_model_ms as set_clock_ms;
pub use crate::sync::{CachePadded, Lock, LockCounts, Wait, break_locks};
pub use crate::tcache::ThreadCache;

// Exported here, the pools' `new` wants a `Default` beside it.
impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for Central {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for HugeCache {
    fn default() -> Self {
        Self::new()
    }
}

//! slabpool: a general-purpose memory allocator.
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: slabpool::SlabPool = slabpool::SlabPool;
//! ```
//!
//! ## Layers
//!
//! The modules, from the bottom up. A module uses only modules listed
//! before it (`tests/layers.rs` reads this list and every module's
//! `crate::` paths, and fails on any other edge, so the order is kept and
//! there is no cycle). Unit tests may use anything.
//!
//! 1. `sync`: the concurrency primitives (loom replaces them) and the
//!    clock seam of tests;
//! 2. `poison`: AddressSanitizer hooks (the `asan` feature);
//! 3. `entropy`: random words from the OS;
//! 4. `layout`: the segment size every layer agrees on;
//! 5. `config`: settings from the environment;
//! 6. `os`: reserve, commit, decommit and release address space (mmap),
//!    the clock, stderr without allocating;
//! 7. `registry`: which chunks of the address space are slabpool's;
//! 8. `size_class`: the size classes;
//! 9. `purge`: the adaptive decommit policy;
//! 10. `carve_order`: the hardened build's random carve order;
//! 11. `block`: intrusive free lists, links encoded with a per-process
//!     secret and checked on every read;
//! 12. `canary`: the hardened build's canaries;
//! 13. `quarantine`: the hardened build's delayed reuse;
//! 14. `inbox`: batches other shards' threads hand a central pool without
//!     its lock;
//! 15. `stats`: the [`Stats`] types;
//! 16. `segment`: 4 MiB aligned segments whose headers describe their spans;
//! 17. `arena`: page-run allocation over segments, with coalescing;
//! 18. `slab`: slabs (bump pointer, free list, purge of idle pages);
//! 19. `central`: per-class pools of batches and partial slabs, per arena;
//! 20. `huge_cache`: free runs of chunks kept for reuse;
//! 21. `huge`: direct mappings;
//! 22. `guard`: sampled guarded allocations and their fault handler;
//! 23. `lookup`: which block a bare pointer starts;
//! 24. `heap`: the shared state below the thread caches (shards, routes);
//! 25. `tcache`: per-thread, per-class caches (no lock, no atomic);
//! 26. `global`: the [`SlabPool`] `GlobalAlloc`, the thread lifecycle,
//!     [`collect`] and [`stats`];
//! 27. `pointer`: the pointer-only API as every build has it;
//! 28. `hardened`: the hardened build's doors (canaries, zero on free,
//!     delayed reuse around `pointer`);
//! 29. `raw`: the pointer-only API (`pointer`'s or `hardened`'s doors);
//! 30. `fuzzing`, `model`: what the fuzz targets and the loom models see
//!     (test support, hidden).
//!
//! With `cfg(fuzzing)` or the `invariants` feature each structure has a `check`
//! method verifying the invariants written at the top of its file (FUZZ.md).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod arena;
mod block;
#[cfg(feature = "hardened")]
mod canary;
#[cfg(feature = "hardened")]
mod carve_order;
mod central;
mod config;
mod entropy;
#[cfg(all(any(fuzzing, feature = "invariants"), not(loom)))]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(not(loom))]
mod global;
#[cfg(not(loom))]
mod guard;
#[cfg(all(feature = "hardened", not(loom)))]
mod hardened;
mod heap;
mod huge;
mod huge_cache;
mod inbox;
mod layout;
#[cfg(not(loom))]
mod lookup;
#[cfg(loom)]
pub mod model;
mod os;
#[cfg(not(loom))]
mod pointer;
mod poison;
mod purge;
#[cfg(feature = "hardened")]
mod quarantine;
#[cfg(not(loom))]
pub mod raw;
mod registry;
mod segment;
mod size_class;
mod slab;
mod stats;
mod sync;
mod tcache;

#[cfg(not(loom))]
pub use global::{SlabPool, collect, stats};
#[cfg(not(loom))]
pub use guard::{GuardStats, guard_stats};
pub use size_class::NUM_CLASSES;
pub use stats::{ClassStats, Stats};

//! slabpool: a general-purpose memory allocator.
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: slabpool::SlabPool = slabpool::SlabPool;
//! ```
//!
//! Layers, each a module that talks only to the one below it:
//! - `os`: reserve, commit, decommit and release address space (mmap);
//! - `segment`: 4 MiB aligned segments whose headers describe their spans;
//!   `arena`: page-run allocation over segments, with coalescing;
//! - `size_class`, `block`, `slab`: the size classes, intrusive free lists
//!   (links encoded with a per-process secret from `entropy`, checked on
//!   every read), and slabs (bump pointer, free list, purge of idle pages);
//! - `central`: per-class pools of batches and partial slabs, per arena;
//!   `inbox`: the batches other shards' threads hand a pool without its
//!   lock;
//! - `tcache`: per-thread, per-class caches (no lock, no atomic);
//! - `heap`: all shared state below the caches; `huge`: direct mappings;
//! - `global`: the [`SlabPool`] `GlobalAlloc` and the thread lifecycle;
//!   [`collect`] and [`stats`];
//! - `config`: settings from the environment; `stats`: the [`Stats`] types;
//!   `poison`: AddressSanitizer hooks (the `asan` feature);
//! - `guard`: the guard pool of sampled guarded allocations, beside the
//!   heap (it maps its own chunks), and its fault handler; [`guard_stats`];
//! - `prof` (the `prof` feature): the sampling heap profiler, beside the
//!   heap (sampled blocks live in its own pool), and its pprof output;
//! - the `hardened` feature's mitigations (README, "Hardened build"):
//!   `canary`, `quarantine` (in each thread cache), `carve_order` (in
//!   `block::carve`), a guard page after each segment header (`segment`),
//!   and `hardened`, the front doors (`raw`'s functions, `GlobalAlloc`)
//!   that apply them and zero on free.
//!
//! With `cfg(fuzzing)` or the `check` feature each structure has a `check`
//! method verifying the invariants written at the top of its file, and the
//! hidden `fuzzing` module exposes what the fuzz targets need (FUZZ.md).
//!
//! Concurrency primitives come from `sync` only, so loom can replace them.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(all(feature = "prof", feature = "hardened"))]
compile_error!("the `prof` and `hardened` features do not combine yet");

mod arena;
mod block;
#[cfg(feature = "hardened")]
mod canary;
#[cfg(feature = "hardened")]
mod carve_order;
mod central;
mod config;
mod entropy;
#[cfg(all(any(fuzzing, feature = "check"), not(loom)))]
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
#[cfg(loom)]
pub mod model;
mod os;
mod poison;
#[cfg(all(feature = "prof", not(loom)))]
pub mod prof;
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

//! slabpool: a general-purpose memory allocator, in Rust, for Rust
//! programs (`#[global_allocator]`) and, as `libslabpool.so`, for C ones.
//!
//! It has a native port to Linux on x86_64 and aarch64 (glibc or musl). On
//! any other target [`SlabPool`](struct@SlabPool) still compiles and forwards every call to
//! the system allocator ([`std::alloc::System`]), and [`stats`],
//! [`collect`] and [`guard_stats`] return zero figures, so a
//! cross-platform program needs no `cfg` around its global allocator.
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: slabpool::SlabPool = slabpool::SlabPool;
//!
//! fn main() {
//!     let v: Vec<u64> = (0..1000).collect();
//!     assert_eq!(v.iter().sum::<u64>(), 499_500);
//! }
//! ```
//!
//! Settings can be given in code, with a `const` [`Config`]; the
//! environment (`SLABPOOL_*` variables) still overrides them, unless
//! [`Config::ignore_environment`] says not to (see [`Config`] for the
//! table):
//!
//! ```
//! use slabpool::{Config, SlabPool};
//!
//! #[global_allocator]
//! static GLOBAL: SlabPool = SlabPool::with(Config::new().purge_delay_ms(50).show_stats(false));
//!
//! fn main() {
//!     let s = String::from("configured");
//!     assert_eq!(s.len(), 10);
//! }
//! ```
//!
//! # Native port
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
//! - `global`: the [`SlabPool`](struct@SlabPool) `GlobalAlloc` and the
//!   thread lifecycle; [`collect`] and [`stats`]; `pool`: the
//!   [`SlabPool`](struct@SlabPool) type itself;
//! - `config`: settings, from code ([`Config`]) and the environment;
//!   `stats`: the [`Stats`] types;
//!   `poison`: AddressSanitizer hooks (the `asan` feature);
//! - `guard`: the guard pool of sampled guarded allocations, beside the
//!   heap (it maps its own chunks), and its fault handler; [`guard_stats`];
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
//! `fallback` is the stand-in for all of this on other targets.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
// The public API is documented; the hidden `fuzzing` module (the `check`
// feature's) re-exports internals that are not an API.
#![cfg_attr(not(any(fuzzing, feature = "check")), warn(missing_docs))]

/// Items of the native port: `build.rs` sets `cfg(native)` on Linux for
/// x86_64 and aarch64; elsewhere `fallback` stands in for them.
macro_rules! native {
    ($($item:item)*) => { $(#[cfg(native)] $item)* };
}

native! {
    mod arena;
    mod block;
    #[cfg(feature = "hardened")]
    mod canary;
    #[cfg(feature = "hardened")]
    mod carve_order;
    mod central;
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
    #[doc(hidden)]
    pub mod model;
    mod os;
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
    mod sync;
    mod tcache;

    #[cfg(not(loom))]
    pub use global::{collect, stats};
    #[cfg(not(loom))]
    pub use guard::guard_stats;
    pub use size_class::NUM_CLASSES;
}

// Compiled in the native port's tests too, which check it.
#[cfg(any(not(native), test))]
mod fallback;
#[cfg(not(native))]
pub use fallback::{NUM_CLASSES, collect, guard_stats, stats};

mod config;
mod pool;
mod stats;

pub use config::Config;
pub use pool::SlabPool;
pub use stats::{ClassStats, GuardStats, Stats};

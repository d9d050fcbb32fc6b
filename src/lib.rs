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
//! ## Layers of the native port
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
//! 5. `config`: settings, from code ([`Config`]) and the environment;
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
//! 15. `stats`: the [`Stats`] types and their table;
//! 16. `segment`: 4 MiB aligned segments whose headers describe their spans;
//! 17. `arena`: page-run allocation over segments, with coalescing;
//! 18. `slab`: slabs (bump pointer, free list, purge of idle pages);
//! 19. `central`: per-class pools of batches and partial slabs, per arena;
//! 20. `huge_cache`: free runs of chunks kept for reuse;
//! 21. `huge`: direct mappings;
//! 22. `guard`: sampled guarded allocations and their fault handler;
//! 23. `lookup`: which block a bare pointer starts;
//! 24. `backend`: the state every thread shares below the thread caches
//!     (shards, routes, the huge mappings; called the heap elsewhere, but
//!     mimalloc's heap is per thread);
//! 25. `tcache`: per-thread, per-class caches (no lock, no atomic);
//! 26. `prof` (the `prof` feature): the sampling heap profiler (sampled
//!     blocks in a pool of its own, stacks, pprof output);
//! 27. `pool`: the [`SlabPool`](struct@SlabPool) type and its
//!     configuration;
//! 28. `global`: the [`SlabPool`](struct@SlabPool) `GlobalAlloc`, the
//!     thread lifecycle, [`collect`] and [`stats`];
//! 29. `pointer`: the pointer-only API as every build has it;
//! 30. `hardened`: the hardened build's doors (canaries, zero on free,
//!     delayed reuse around `pointer`);
//! 31. `raw`: the pointer-only API (`pointer`'s or `hardened`'s doors);
//! 32. `fallback`: the stand-in for all of this on other targets
//!     (forwards to the system allocator);
//! 33. `testing`: what the fuzz targets (`testing::fuzzing`) and the loom
//!     models (`testing::model`) see of the internals (test support,
//!     hidden).
//!
//! Words used with one meaning throughout: to **purge** is to decommit the
//! resident pages of free memory (`MADV_DONTNEED`; the address space
//! stays), on a delay (`purge`) or at once; to **release** is to unmap
//! address space; to **flush** is to move blocks from a thread cache to the
//! central pools; to **trim** is to give what a layer holds idle back to
//! the layer below (a central pool's batches and empty slabs to its slabs
//! and arena, an arena's free pages and empty segments to the OS); to
//! **collect** ([`collect`]) is all of these at once, on request.
//!
//! With `cfg(fuzzing)` or the `invariants` feature each structure has a `check`
//! method verifying the invariants written at the top of its file (FUZZ.md).

// The C library's build needs no part of std (the allocator never
// allocates, its OS layer is libc, and its thread cache is initial-exec
// TLS), so `libslabpool.so` carries no Rust runtime: no unwinder, no
// backtrace printer, no libgcc_s (see `capi`). Elsewhere std is used: the
// thread cache of a Rust program is a `thread_local!`, and tests, loom and
// fuzz models, the invariant checks, the heap profiler (pprof output) and
// the forwarding port use std.
#![cfg_attr(
    all(
        native,
        feature = "initial-exec-tls",
        target_arch = "x86_64",
        target_os = "linux",
        not(any(test, loom, fuzzing, feature = "invariants", feature = "prof"))
    ),
    no_std
)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
// The public API is documented; the hidden `testing` module (of the
// `invariants` feature and of loom) re-exports internals, not an API.
#![cfg_attr(not(any(fuzzing, loom, feature = "invariants")), warn(missing_docs))]

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
    #[cfg(not(loom))]
    mod global;
    #[cfg(not(loom))]
    mod guard;
    #[cfg(all(feature = "hardened", not(loom)))]
    mod hardened;
    mod backend;
    mod huge;
    mod huge_cache;
    mod inbox;
    mod layout;
    #[cfg(not(loom))]
    mod lookup;
    mod os;
    #[cfg(not(loom))]
    mod pointer;
    mod poison;
    #[cfg(feature = "prof")]
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
    mod sync;
    mod tcache;
    #[cfg(any(loom, fuzzing, feature = "invariants"))]
    #[doc(hidden)]
    pub mod testing;

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

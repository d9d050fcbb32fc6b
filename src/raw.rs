//! The pointer-only API: allocation without a `Layout`, for the C ABI
//! (`malloc`, `free`, `realloc`, `malloc_usable_size`) and other foreign
//! function interfaces. Rust code should use [`SlabPool`](struct@crate::SlabPool) through
//! `GlobalAlloc`, which never needs to look a block up.
//!
//! A pointer that slabpool did not hand out is reported on stderr (written
//! without allocating) and the process aborts: a pointer outside slabpool's
//! memory (stack, static, another allocator's heap), into a segment header,
//! an interior or unaligned pointer of a block, a block past its slab's
//! bump pointer (never handed out), a small block freed twice while it is
//! free (in any thread's cache or in the central pool), a large or huge
//! block freed twice (`lookup` and `pointer` say how). Small blocks
//! from [`alloc`] may be guarded (`SLABPOOL_GUARD_SAMPLE`): free them
//! through [`free`] (or [`realloc`]), never `GlobalAlloc::dealloc`.
//! [`free`] never changes `errno`.

pub use crate::global::print_stats;
pub use crate::lookup::{Found, Invalid, find};

// ---- the doors -------------------------------------------------------------
//
// Each function of this API is one of the `_bare` functions of `pointer` or, in
// the hardened build, its counterpart in `hardened`, which adds the canary,
// zero on free and delayed reuse around them (`malloc_usable_size` then
// gives the size asked for, and `realloc` always moves).

#[cfg(feature = "hardened")]
pub use crate::hardened::{alloc, alloc_zeroed, calloc, free, malloc, realloc, usable_size};
#[cfg(not(feature = "hardened"))]
pub use crate::pointer::{
    alloc_bare as alloc, alloc_zeroed_bare as alloc_zeroed, calloc_bare as calloc,
    free_bare as free, malloc_bare as malloc, realloc_bare as realloc,
    usable_size_bare as usable_size,
};

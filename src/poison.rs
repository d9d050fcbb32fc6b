//! AddressSanitizer hooks (the `asan` feature): memory slabpool holds free
//! is poisoned, so ASan reports a use after free or an overflow into a free
//! block or page; memory handed out is unpoisoned. Build with
//! `-Zsanitizer=address` (see FUZZ.md): the feature links ASan's runtime
//! functions. Without it every hook is an empty `#[inline(always)]` function
//! and its length argument, a closure, is never called: the default build
//! compiles to the same code as without the hooks.
//!
//! What is poisoned: a small block while it is free, its link word included
//! (`block::next_of` / `set_next` unpoison the word around their own access);
//! a slab's pages from its creation (blocks are unpoisoned as they are handed
//! out); free pages of segments; cached huge runs. A large span and a huge
//! mapping are unpoisoned while live. Memory is unpoisoned again before it
//! is unmapped, so a later mapping at that address starts clean.

#[cfg(feature = "asan")]
unsafe extern "C" {
    fn __asan_poison_memory_region(addr: *const u8, size: usize);
    fn __asan_unpoison_memory_region(addr: *const u8, size: usize);
    fn __asan_address_is_poisoned(addr: *const u8) -> core::ffi::c_int;
}

/// Marks `[p, p + len())` unaddressable.
#[inline(always)]
#[cfg_attr(not(feature = "asan"), allow(unused_variables))]
pub fn poison(p: *const u8, len: impl FnOnce() -> usize) {
    // SAFETY: ASan only updates its shadow of the range, which is memory
    // slabpool owns (the callers' ranges lie in its mappings).
    #[cfg(feature = "asan")]
    unsafe {
        __asan_poison_memory_region(p, len())
    }
}

/// Whether the byte at `p` is poisoned (a free block's, under ASan); always
/// false without the `asan` feature.
#[cfg(not(loom))]
#[inline(always)]
#[cfg_attr(not(feature = "asan"), allow(unused_variables))]
pub fn is_poisoned(p: *const u8) -> bool {
    // SAFETY: ASan only reads its shadow of the address.
    #[cfg(feature = "asan")]
    unsafe {
        __asan_address_is_poisoned(p) != 0
    }
    #[cfg(not(feature = "asan"))]
    false
}

/// Marks `[p, p + len())` addressable.
#[inline(always)]
#[cfg_attr(not(feature = "asan"), allow(unused_variables))]
pub fn unpoison(p: *const u8, len: impl FnOnce() -> usize) {
    // SAFETY: as for `poison`.
    #[cfg(feature = "asan")]
    unsafe {
        __asan_unpoison_memory_region(p, len())
    }
}

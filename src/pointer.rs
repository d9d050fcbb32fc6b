//! The pointer-only API's functions as every build has them (`_bare`):
//! allocation without a `Layout`, and `free`, `realloc` and
//! `malloc_usable_size` of a bare pointer, which `lookup` finds. `raw`
//! makes them the public API, or in the hardened build wraps them
//! (`hardened`).
//!
//! Invalid frees: whatever `lookup` tells apart is reported (the process
//! aborts), and a small block freed twice while it is still free, with any
//! number of other frees in between. The double-free check on the common
//! path is one load and a compare: a free block's first word is an encoded
//! link (`block`), which a live block's first word matches only by chance
//! (2^-20). Only then is it confirmed: the block is found in the freeing
//! thread's cache or the central pool that owns it, or its link names a
//! block of its class or the end of a list, as a free block's does
//! wherever it waits (in another thread's cache, where no search reaches);
//! a live block's never does, since every door clears the link word of the
//! blocks it hands out (`block::handed_out`). `realloc` checks its pointer
//! the same way.
//!
//! Sampled guarded blocks (`SLABPOOL_GUARD_SAMPLE`, see `guard`) live in
//! the guard pool: small blocks from `alloc_bare` may be guarded, so they
//! must be freed through `free_bare` (or `realloc_bare`), never
//! `GlobalAlloc::dealloc`, whose small path caches a block without looking
//! at it.
//!
//! `free` never changes `errno` (POSIX 2024): the system calls of its slow
//! paths (futex, munmap, madvise) may, so those paths restore it.
//!
//! Fast paths: `alloc` of a small size at an alignment up to 16 bytes is
//! inlined into the caller (C's `malloc`) and needs no `Layout`; `free` of
//! a small block finds its class from the registry, the page map and the
//! span record, checks that it is a block start with one multiplication
//! (no division), and pushes it onto the thread cache, without a stack
//! frame; everything else is out of line.

// In the hardened build the public doors are `hardened`'s, which wrap only
// some of these functions (its `free` and `realloc` have their own).
#![cfg_attr(feature = "hardened", allow(dead_code))]

use crate::backend::{LARGE_LIMIT, Route, copy_small, route};
use crate::block::{self, handed_out};
use crate::global::{self, DEFAULTS, alloc_big, alloc_small_sampled, dealloc_small};
use crate::guard;
use crate::huge;
use crate::lookup::{Found, Invalid, find, invalid, slab_class};
use crate::os::SavedErrno;
use crate::registry::{self, ChunkKind};
use crate::size_class::{SMALL_LIMIT, SizeClass, c_class_of, c_table_class, size_class};
use crate::tcache::{FarHead, NearPop};
use core::alloc::Layout;
use core::ptr;

/// What `free(p)` would report, without freeing: `None` for a live block
/// (the fuzz targets check that every block they free is reported as a
/// double free right after).
///
/// # Safety
/// `p` must be readable if it lies in a segment (any pointer slabpool
/// handed out, live or freed, is).
#[cfg(any(fuzzing, feature = "invariants"))]
pub unsafe fn free_error(p: *mut u8) -> Option<Invalid> {
    // A sampled small block: freed if its slot says so, or if it waits in
    // this thread's cache (`GlobalAlloc`'s free pushed it there).
    #[cfg(feature = "prof")]
    if global::sampled(p) {
        return match crate::prof::usable_size(p) {
            Err(why) => Some(why.into()),
            Ok(usable) => {
                global::cached(p, size_class(usable).index()).then_some(Invalid::DoubleFree)
            }
        };
    }
    match find(p) {
        Err(why) => Some(why),
        Ok(Found::Small(class)) => {
            // SAFETY: `p` starts a block of `class`, at least 8 bytes, in a
            // live segment.
            let free = unsafe { block::looks_free(p) && is_free(p, class) };
            free.then_some(Invalid::DoubleFree)
        }
        Ok(_) => None,
    }
}

/// Confirms a suspected double free of `p`, a block of `class` whose first
/// word reads as a free block's link: aborts if the block is free.
#[cold]
#[inline(never)]
pub(crate) fn confirm_not_free(call: &str, p: *mut u8, class: SizeClass) {
    // SAFETY: `small_class` found `p` to be a block start of a slab of
    // `class` in a live segment.
    if unsafe { is_free(p, class) } {
        invalid(call, p, Invalid::DoubleFree);
    }
}

/// Whether `p`, a block of `class` whose first word reads as a link, is
/// free: found where this thread can search (`global::is_free`), or named
/// free by its link ([`links_to_a_block`]).
///
/// # Safety
/// `p` must start a block of `class` in a live segment.
unsafe fn is_free(p: *mut u8, class: SizeClass) -> bool {
    // SAFETY: forwarded contract.
    unsafe { global::is_free(p, class.index()) || links_to_a_block(p, class) }
}

/// Whether the link word of `p`, a block of `class`, names what a free
/// list could hold next: null (the end of a list) or a carved block of
/// `class`. A free block's always does, wherever it waits: in another
/// thread's cache too, where `global::is_free` cannot look. A live block's
/// first word was cleared when it was handed out (`block::handed_out`), so
/// it names one only if the program wrote the encoding of such an address,
/// which takes the secret (or the bytes of a free block, read after free).
///
/// # Safety
/// `p` must start a block of `class` in a live segment.
unsafe fn links_to_a_block(p: *mut u8, class: SizeClass) -> bool {
    // Under ASan a free block is poisoned whole (see `block::looks_free`).
    if crate::poison::is_poisoned(p) {
        return true;
    }
    // SAFETY: a live block of at least 8 bytes, by contract.
    let next = unsafe { block::link_target(p) }.cast::<u8>();
    if next.is_null() {
        return true;
    }
    // SAFETY: the registry says `next` lies in a segment.
    registry::kind_of(next) == ChunkKind::Segment && unsafe { slab_class(next) } == Some(class)
}

/// Alignments served by `alloc`'s fast path: sizes rounded up to them stay
/// within `SMALL_LIMIT` (a power of two), and every class is naturally
/// aligned.
const MAX_FAST_ALIGN: usize = 16;

/// `size` bytes aligned to `align` (a power of two); null when out of
/// memory or the request is impossible. `size` 0 gives a unique block.
#[inline]
pub fn alloc_bare(size: usize, align: usize) -> *mut u8 {
    // The common case, every C `malloc` of a small size.
    if let Some(class) = fast_class(size, align) {
        return alloc_small_sampled(class, size, align);
    }
    alloc_other(size, align)
}

/// The class of a small request whose alignment every class honours (up
/// to [`MAX_FAST_ALIGN`]): no `Layout` to check, the sum cannot overflow.
/// Size 0 counts as 1, so that it rounds up to a block of the alignment
/// asked for. `None` for anything else.
#[inline(always)]
fn fast_class(size: usize, align: usize) -> Option<SizeClass> {
    if align.is_power_of_two() && align <= MAX_FAST_ALIGN && size <= SMALL_LIMIT {
        Some(size_class((size.max(1) + align - 1) & !(align - 1)))
    } else {
        None
    }
}

/// C's `malloc(size)`: aligned to 8 bytes up to 8 bytes, to 16 above
/// (`max_align_t`); on failure null with `errno` ENOMEM. The fast path is
/// a table load and a pop from the thread cache; every other exit is a tail
/// call, so it needs no stack frame.
#[inline(always)]
pub fn malloc_bare(size: usize) -> *mut u8 {
    match c_table_class(size) {
        Some(class) => malloc_cached(size, class),
        None => malloc_mid(size),
    }
}

/// `malloc` of a size past the class table: its class from the formula,
/// then the same fast path (out of line, so that the sizes up to 1 KiB
/// jump over no code of theirs).
#[inline(never)]
fn malloc_mid(size: usize) -> *mut u8 {
    match c_class_of(size) {
        Some(class) => malloc_cached(size, class),
        None => malloc_slow(size),
    }
}

/// `malloc` of `size` bytes, of `class`: the head of the class's bin if
/// its link leads into its own segment (`ThreadCache::pop_near`).
#[inline(always)]
fn malloc_cached(size: usize, class: SizeClass) -> *mut u8 {
    // SAFETY: the only reference to the thread's cache in this call.
    match unsafe { global::tcache() }.pop_near(class) {
        NearPop::Taken(p) => handed_out(p),
        NearPop::Far(head) => malloc_far_link(size, head),
        NearPop::Empty => malloc_slow(size),
    }
}

/// [`malloc_cached`] when the head of the bin has a link that leads out of
/// its segment: the end of the list (a bin down to its last block, as a
/// `malloc`/`free` loop of a class a refill gives one block at a time
/// keeps it), or another segment. The C door checks that link more
/// strictly than `block` does: the next block must lie in a segment, so a
/// link whose flipped bit still decodes to an address fails here rather
/// than faulting in the next `malloc`. Reached by a jump.
#[inline(never)]
fn malloc_far_link(size: usize, head: FarHead<'_>) -> *mut u8 {
    let (p, next) = (head.head(), head.next());
    // A sampled block of the profiler freed into the bin by `GlobalAlloc`
    // (see `tcache::bin`) is not in a segment either.
    if !block::is_link(next.cast())
        || !next.is_null() && !registry::in_segment(next) && !global::sampled(next)
    {
        // SAFETY: `p` is a block of at least 8 bytes.
        unsafe { block::corrupt_link_in(p) }
    }
    let p = head.take(|| c_class_of(size).map_or(0, |c| c.info().size as usize));
    if p.is_null() {
        return malloc_slow(size);
    }
    handed_out(p)
}

/// The alignment of C's `malloc(size)`: 8 bytes up to 8 bytes, 16 above
/// (`max_align_t`).
#[inline(always)]
pub(crate) fn c_align(size: usize) -> usize {
    if size <= 8 { 8 } else { 16 }
}

/// `malloc` past its fast path.
#[inline(never)]
fn malloc_slow(size: usize) -> *mut u8 {
    let p = alloc_bare(size, c_align(size));
    if p.is_null() {
        // SAFETY: `__errno_location` returns the calling thread's errno.
        unsafe { *libc::__errno_location() = libc::ENOMEM };
    }
    p
}

/// `alloc` past its fast path.
#[inline(never)]
fn alloc_other(size: usize, align: usize) -> *mut u8 {
    match layout(size, align) {
        Some(l) => match route(l.size(), l.align()) {
            Route::Small(class) => alloc_small_sampled(class, size, align),
            _ => alloc_big(l, false, &DEFAULTS),
        },
        None => ptr::null_mut(),
    }
}

/// C's `calloc` of `size` bytes (the product, checked by the caller):
/// [`malloc_bare`]'s block, zeroed; null when out of memory. Past the small
/// sizes, [`alloc_zeroed_bare`], which does not clear fresh pages again.
#[inline(always)]
pub fn calloc_bare(size: usize) -> *mut u8 {
    if size <= SMALL_LIMIT {
        let p = malloc_bare(size);
        if !p.is_null() {
            // SAFETY: a fresh block of at least `size` bytes.
            unsafe { p.write_bytes(0, size) };
        }
        return p;
    }
    alloc_zeroed_bare(size, 16)
}

/// As [`alloc_bare`], with the memory zeroed: a small
/// request whose alignment every class honours takes the thread cache
/// directly, as [`alloc_bare`]'s does.
pub fn alloc_zeroed_bare(size: usize, align: usize) -> *mut u8 {
    if let Some(class) = fast_class(size, align) {
        return zeroed_small(class, size, align);
    }
    match layout(size, align) {
        Some(l) => match route(l.size(), l.align()) {
            Route::Small(class) => zeroed_small(class, size, align),
            _ => alloc_big(l, true, &DEFAULTS),
        },
        None => ptr::null_mut(),
    }
}

/// A block of `class` for `size` bytes at `align`, its first `size` bytes
/// (at least one) zeroed.
#[inline(always)]
fn zeroed_small(class: SizeClass, size: usize, align: usize) -> *mut u8 {
    let p = alloc_small_sampled(class, size, align);
    if !p.is_null() {
        // SAFETY: a fresh block of at least `size` bytes (and one).
        unsafe { p.write_bytes(0, size.max(1)) };
    }
    p
}

#[inline(always)]
fn layout(size: usize, align: usize) -> Option<Layout> {
    Layout::from_size_align(size.max(1), align).ok()
}

/// Frees `p` (null is ignored); aborts with a message if `p` is not a live
/// block of slabpool's. Never changes `errno`.
///
/// # Safety
/// If `p` is a live block, the caller gives it up.
///
/// Inlined into each caller (C's `free` and the C++ deletes hold its fast
/// path: a jump to it cost each `free` an instruction).
#[inline(always)]
pub unsafe fn free_bare(p: *mut u8) {
    // The common case inline (a small block in a segment of the registry's
    // window); everything else out of line, by a jump. Null is never in a
    // segment (chunk 0 is never slabpool's): `free_other` ignores it, so
    // the fast path needs no test of its own.
    if !registry::in_window_segment(p) {
        // SAFETY: forwarded contract.
        return unsafe { free_other(p) };
    }
    // SAFETY: the registry says `p` lies in a segment.
    let Some(class) = (unsafe { slab_class(p) }) else {
        // SAFETY: forwarded contract.
        return unsafe { free_other(p) };
    };
    // SAFETY: the only reference to the thread's cache in this call.
    let tc = unsafe { global::tcache() };
    // SAFETY: `p` starts a block of `class`, at least 8 bytes.
    if unsafe { tc.looks_free(p) } {
        // SAFETY: forwarded contract.
        return unsafe { free_suspect(p, class) };
    }
    // SAFETY: `p` is a live block of `class` given up by the caller.
    if unsafe { tc.push(class, p) } {
        return;
    }
    // SAFETY: forwarded contract.
    unsafe { free_small_slow(p, class) }
}

/// `free` of a small block whose first word reads as a free block's link:
/// aborts if it is free indeed, else frees it.
///
/// # Safety
/// `p` starts a block of `class`; if it is live, the caller gives it up.
#[cold]
#[inline(never)]
unsafe fn free_suspect(p: *mut u8, class: SizeClass) {
    let _errno = SavedErrno::new();
    confirm_not_free("free", p, class);
    // SAFETY: `p` is live (not free), given up by the caller.
    unsafe { dealloc_small(p, class) }
}

/// `free` of a small block when the thread cache cannot take it.
///
/// # Safety
/// `p` starts a block of `class`; if it is live, the caller gives it up.
#[cold]
#[inline(never)]
unsafe fn free_small_slow(p: *mut u8, class: SizeClass) {
    let _errno = SavedErrno::new();
    // The cache's check used its key, which an inactive cache lacks:
    // check again with the secret.
    // SAFETY: `p` starts a block of `class`, at least 8 bytes.
    if unsafe { block::looks_free(p) } {
        confirm_not_free("free", p, class);
    }
    // SAFETY: forwarded contract (a live block).
    unsafe { dealloc_small(p, class) }
}

/// `free` of anything but a small block: null (ignored), a large or huge
/// block, or an invalid pointer.
///
/// # Safety
/// If `p` is a live block, the caller gives it up.
#[cold]
#[inline(never)]
unsafe fn free_other(p: *mut u8) {
    if p.is_null() {
        return;
    }
    let _errno = SavedErrno::new();
    #[cfg(feature = "prof")]
    if global::sampled(p) {
        // SAFETY: forwarded contract; `p` is in the profiler's pool.
        return unsafe { global::free_sampled("free", p) };
    }
    let found = find(p);
    // A sampled large or huge block's sample ends (one load while none is
    // live).
    #[cfg(feature = "prof")]
    if matches!(found, Ok(Found::Large(_) | Found::Huge)) {
        crate::prof::big_freed(p);
    }
    match found {
        // SAFETY: `p` is a live small block given up by the caller.
        Ok(Found::Small(class)) => unsafe { dealloc_small(p, class) },
        // SAFETY: `p` is a live large block.
        Ok(Found::Large(_)) => unsafe { global::heap().free_large(p) },
        // SAFETY: `p` is a live huge block.
        Ok(Found::Huge) => unsafe { global::heap().free_huge(p) },
        Ok(Found::Guarded(_)) => {
            // SAFETY: `p` is a live guarded block given up by the caller.
            if let Err(why) = unsafe { guard::free(p) } {
                invalid("free", p, why.into());
            }
        }
        Err(why) => invalid("free", p, why),
    }
}

/// Bytes usable at `p`, a live block (at least what was asked); 0 for null.
/// Aborts with a message if `p` is not a live block.
pub fn usable_size_bare(p: *const u8) -> usize {
    if p.is_null() {
        return 0;
    }
    #[cfg(feature = "prof")]
    if global::sampled(p) {
        return crate::prof::usable_size(p)
            .unwrap_or_else(|why| invalid("malloc_usable_size", p, why.into()));
    }
    match find(p) {
        Ok(Found::Small(class)) => class.info().size as usize,
        Ok(Found::Large(bytes)) => bytes,
        // SAFETY: `p` is a live huge block.
        Ok(Found::Huge) => unsafe { huge::usable_size(p.cast_mut()) },
        Ok(Found::Guarded(bytes)) => bytes,
        Err(why) => invalid("malloc_usable_size", p, why),
    }
}

/// Resizes `p` to `size` bytes, keeping its contents up to the smaller
/// size; the result is aligned to `align` if it moves. Null `p` allocates;
/// null result when out of memory (then `p` is untouched). Aborts with a
/// message if `p` is not a live block.
///
/// The common case inline, as in `free`: a small block of the registry's
/// window resized within its class stays where it is (a string grown by a
/// few bytes at a time); everything else out of line.
///
/// # Safety
/// If the result is not null and differs from `p`, `p` is dead.
#[inline(always)]
pub unsafe fn realloc_bare(p: *mut u8, size: usize, align: usize) -> *mut u8 {
    if let Some(new_class) = fast_class(size, align)
        && registry::in_window_segment(p)
        // SAFETY: the registry says `p` lies in a segment.
        && let Some(class) = unsafe { slab_class(p) }
        // SAFETY: `p` starts a block of `class`, at least 8 bytes. A block
        // that reads as free is checked out of line.
        && !unsafe { block::looks_free(p) }
    {
        if class == new_class {
            return p;
        }
        // SAFETY: `p` is a live block of `class`.
        return unsafe { realloc_small(p, class, new_class, size, align) };
    }
    // SAFETY: forwarded contract.
    unsafe { realloc_other(p, size, align) }
}

/// Moves `p`, a live block of `class`, to a block of `new_class` for a
/// request of `size` bytes at `align`: null when out of memory (then `p`
/// is untouched). A block stays where it is only within its class, so
/// that it is always of the class `alloc` gives for its size (and may be
/// freed through `GlobalAlloc` with that layout).
///
/// # Safety
/// `p` must be a live block of `class`; if the result is not null, `p` is
/// dead.
#[inline(never)]
unsafe fn realloc_small(
    p: *mut u8,
    class: SizeClass,
    new_class: SizeClass,
    size: usize,
    align: usize,
) -> *mut u8 {
    let q = alloc_small_sampled(new_class, size, align);
    if !q.is_null() {
        let block = class.info().size as usize;
        // SAFETY: both blocks hold at least the smaller class's size (and
        // the request) and differ; `p` is a live block of `class`.
        unsafe {
            copy_small(q, p, class.min(new_class).index(), block.min(size));
            dealloc_small(p, class);
        }
    }
    q
}

/// `realloc` past its fast path: a null `p`, a move, a block that is not
/// small, or an invalid one.
///
/// # Safety
/// As [`realloc_bare`].
#[inline(never)]
unsafe fn realloc_other(p: *mut u8, size: usize, align: usize) -> *mut u8 {
    if p.is_null() {
        return alloc_bare(size, align);
    }
    let size = size.max(1);
    #[cfg(feature = "prof")]
    if global::sampled(p) {
        // A sampled small block stays in its slot if it has room for a
        // size past the small ones, else moves (to a block sampled anew or
        // not).
        if size > SMALL_LIMIT && crate::prof::resize(p, size) {
            return p;
        }
        let old_size =
            crate::prof::usable_size(p).unwrap_or_else(|why| invalid("realloc", p, why.into()));
        let q = alloc_bare(size, align);
        if !q.is_null() {
            // SAFETY: both blocks hold at least the bytes copied; they
            // differ; `p` is live, given up.
            unsafe {
                ptr::copy_nonoverlapping(p, q, old_size.min(size));
                free_bare(p);
            }
        }
        return q;
    }
    let old = match find(p) {
        Ok(b) => b,
        Err(why) => invalid("realloc", p, why),
    };
    if let Found::Small(class) = old {
        // SAFETY: `p` starts a block of `class`, at least 8 bytes.
        if unsafe { block::looks_free(p) } {
            confirm_not_free("realloc", p, class);
        }
    }
    let heap = global::heap();
    let old_size = match old {
        Found::Small(class) => {
            if let Some(new_class) = fast_class(size, align) {
                if new_class == class {
                    return p;
                }
                // SAFETY: `p` is a live block of `class` (checked above).
                return unsafe { realloc_small(p, class, new_class, size, align) };
            }
            class.info().size as usize
        }
        Found::Large(bytes) => {
            if size > SMALL_LIMIT && size <= LARGE_LIMIT {
                // SAFETY: `p` is a live large block.
                let q = unsafe { heap.resize_large(p, size) };
                if !q.is_null() {
                    #[cfg(feature = "prof")]
                    global::big_resized((p, bytes), (q, size));
                    return q;
                }
            }
            bytes
        }
        Found::Huge => {
            if size > LARGE_LIMIT {
                // SAFETY: `p` is a live huge block.
                #[cfg(feature = "prof")]
                let old = unsafe { huge::usable_size(p) };
                // SAFETY: `p` is a live huge block.
                let q = unsafe { heap.resize_huge(p, size) };
                if !q.is_null() {
                    #[cfg(feature = "prof")]
                    global::big_resized((p, old), (q, size));
                    return q;
                }
            }
            // SAFETY: `p` is a live huge block.
            unsafe { huge::usable_size(p) }
        }
        // A guarded block always moves (to a block of the new size, guarded
        // or not), so a stale pointer to it faults.
        Found::Guarded(bytes) => bytes,
    };
    let q = alloc_bare(size, align);
    if !q.is_null() {
        // SAFETY: both blocks hold at least the bytes copied; they differ.
        unsafe {
            ptr::copy_nonoverlapping(p, q, old_size.min(size));
            free_bare(p);
        }
    }
    q
}

#[cfg(all(test, not(loom)))]
mod tests;

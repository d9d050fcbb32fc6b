//! The pointer-only API: allocation without a `Layout`, for the C ABI
//! (`malloc`, `free`, `realloc`, `malloc_usable_size`) and other foreign
//! function interfaces. Rust code should use [`crate::SlabPool`] through
//! `GlobalAlloc`, which never needs to look a block up.
//!
//! A block is found from its address alone: the chunk registry says whether
//! slabpool owns the address and whether it is a segment (small and large
//! blocks: the segment header's page map gives the span, whose record gives
//! the class) or a huge mapping (whose header precedes the block). There is
//! no header on small blocks.
//!
//! A pointer that slabpool did not hand out is reported on stderr (written
//! without allocating) and the process aborts. Always detected: a pointer
//! outside slabpool's memory (stack, static, another allocator's heap), a
//! pointer into a segment header, an interior or unaligned pointer of a
//! small, large or huge block, a small block past its slab's bump pointer
//! (never handed out), a large or huge block freed twice, and a small block
//! freed twice while it is still free in the freeing thread's cache or in
//! the central pool that owns it (with any number of other frees in
//! between). The double-free check on the common path is one load and a
//! compare: a free block's first word is an encoded link (`block`), which
//! a live block's first word matches only by chance (2^-20); only then
//! are the cache and the pool searched. A block freed twice while it sits
//! in another thread's cache is not found (as with glibc's tcache).
//! `realloc` checks its pointer the same way.
//!
//! Sampled guarded blocks (`SLABPOOL_GUARD_SAMPLE`, see `guard`) live in
//! the guard pool, whose chunks the registry knows: `free`, `realloc` and
//! `usable_size` find them exactly, and a guarded block freed twice, or an
//! interior pointer of one, is reported like the cases above. Small blocks
//! from [`alloc`] may be guarded: free them through [`free`] (or
//! [`realloc`]), never `GlobalAlloc::dealloc`, whose small path caches a
//! block without looking at it.
//!
//! `free` never changes `errno` (POSIX 2024): the system calls of its slow
//! paths (futex, munmap, madvise) may, so those paths restore it.
//!
//! The public functions are the `_bare` ones below, or in the hardened
//! build their counterparts in `hardened` (canaries, zero on free, delayed
//! reuse around them): see the end of this file.
//!
//! Fast paths: `alloc` of a small size at an alignment up to 16 bytes is
//! inlined into the caller (C's `malloc`) and needs no `Layout`; `free` of
//! a small block finds its class from the registry, the page map and the
//! span record, checks that it is a block start with one multiplication
//! (no division), and pushes it onto the thread cache, without a stack
//! frame; everything else is out of line.

use crate::block;
use crate::global::{self, alloc_big, alloc_small_sampled, dealloc_small};
use crate::guard;
use crate::heap::{LARGE_LIMIT, Route, copy_small, route};
use crate::huge;
use crate::os::{self, PAGE_SHIFT};
use crate::registry;
use crate::segment::{FIRST_PAGE, FREE, LARGE, SEGMENT_SHIFT, SLAB, SegmentRef, SpanRef};
use crate::size_class::{CLASSES, NUM_CLASSES, SMALL_LIMIT, c_class_of, class_of};
use core::alloc::Layout;
use core::fmt::Write;
use core::ptr;

/// What a valid block pointer refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// A block of this size class.
    Small(usize),
    /// A large span of this many bytes.
    Large(usize),
    /// A huge mapping.
    Huge,
    /// A guarded block (in the guard pool) of this many usable bytes.
    Guarded(usize),
}

/// Why a pointer is not a live block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Not in memory slabpool owns.
    Foreign,
    /// Inside slabpool's memory, but not the start of a block.
    Interior,
    /// In pages that are free: the block was already freed.
    AlreadyFree,
    /// The block is free already (in a cache or a central pool).
    DoubleFree,
    /// A block of a slab that was never handed out (past the bump pointer).
    NeverAllocated,
    /// A guarded block that was freed (its slot says so).
    GuardedFreed,
}

impl From<guard::Misuse> for Invalid {
    fn from(m: guard::Misuse) -> Self {
        match m {
            guard::Misuse::Freed => Invalid::GuardedFreed,
            guard::Misuse::NotBlock => Invalid::Interior,
        }
    }
}

#[cfg(feature = "prof")]
impl From<crate::prof::Misuse> for Invalid {
    fn from(m: crate::prof::Misuse) -> Self {
        match m {
            crate::prof::Misuse::Freed => Invalid::DoubleFree,
            crate::prof::Misuse::NotBlock => Invalid::Interior,
        }
    }
}

impl Invalid {
    fn describe(self) -> &'static str {
        match self {
            Invalid::Foreign => "pointer not allocated by slabpool",
            Invalid::Interior => "pointer inside a block, not at its start",
            Invalid::AlreadyFree => "double free (the block's pages are free)",
            Invalid::DoubleFree => "double free (the block is already free)",
            Invalid::NeverAllocated => "pointer to a block that was never allocated",
            Invalid::GuardedFreed => "double free (a guarded block, already freed)",
        }
    }
}

/// Divides an offset in a slab by the block size with one multiplication
/// (Lemire, Kaser and Kurz, "Faster remainder by direct computation",
/// 2019): with `c = ceil(2^64 / size)` and `offset * size < 2^64`, the high
/// 64 bits of `offset * c` are `offset / size`, and the low 64 bits are
/// below `c` exactly when `size` divides `offset`. Offsets lie within a
/// segment and sizes are at most `SMALL_LIMIT`, far within that bound.
/// Returns the block index when `offset` is a block start.
#[inline(always)]
fn block_index(offset: u64, reciprocal: u64) -> Option<u64> {
    let product = u128::from(offset) * u128::from(reciprocal);
    ((product as u64) < reciprocal).then_some((product >> 64) as u64)
}

// offset < 2^SEGMENT_SHIFT and size <= SMALL_LIMIT, so offset * size < 2^64.
const _: () = assert!(SEGMENT_SHIFT + SMALL_LIMIT.trailing_zeros() < 64);

/// `ceil(2^64 / size)` of each class, indexed by a span's class byte:
/// entries past the classes are 0, which no offset passes (see
/// `block_index`), so no bounds check is needed.
static RECIPROCAL: [u64; 256] = {
    let mut table = [0; 256];
    let mut i = 0;
    while i < NUM_CLASSES {
        table[i] = u64::MAX / CLASSES[i].size as u64 + 1;
        i += 1;
    }
    table
};

/// Looks `p` up: which block it starts.
#[inline(always)]
pub fn find(p: *const u8) -> Result<Block, Invalid> {
    match small_class(p) {
        Some(class) => Ok(Block::Small(class)),
        None => find_other(p),
    }
}

/// The class of the small block `p` starts; `None` if `p` is anything
/// else (a large or huge block, or not a block): the fast path of `find`.
#[inline(always)]
fn small_class(p: *const u8) -> Option<usize> {
    if registry::kind_of(p) != registry::SEGMENT {
        return None;
    }
    // SAFETY: the registry says `p` lies in a live segment.
    unsafe { slab_class(p) }
}

/// The class of the small block `p` starts, `p` being in a live segment.
///
/// # Safety
/// The registry must say `p` lies in a segment.
#[inline(always)]
unsafe fn slab_class(p: *const u8) -> Option<usize> {
    // SAFETY: by contract.
    let seg = unsafe { SegmentRef::of(p) };
    // No range checks on the page map entry: the page map entries of the
    // header's pages are 0 and the span records below `FIRST_PAGE` are
    // never written (class NO_CLASS), so a header address fails the class
    // check; an entry is never past its page, and if it were, the offset
    // below would wrap to far beyond any slab.
    // Only a slab's record has a class below NO_CLASS (`set_kind`), whose
    // reciprocal is 0: the check below rejects every other span.
    let first = seg.map_get(seg.page_of(p));
    let span = seg.span(first);
    // A stale page map entry may name a slab that does not cover `p`'s page
    // (see `span_at`); the bump check rejects such a `p` (the bump pointer is at
    // most the capacity), since a slab's blocks lie within its pages.
    let class = span.class();
    let reciprocal = RECIPROCAL[class as u8 as usize];
    let start = seg.base() as usize + (first << PAGE_SHIFT);
    let offset = (p as usize).wrapping_sub(start) as u64;
    // A block past the bump pointer was never handed out: refusing it
    // keeps `free(malloc(48) + 240)` from putting a fresh block on a list
    // (it would be handed out twice).
    match block_index(offset, reciprocal) {
        Some(index) if index < u64::from(span.bumped()) => {}
        _ => return None,
    }
    // SAFETY: entries of `RECIPROCAL` past the classes are
    // 0, which no offset passes (`block_index` needs a low product below
    // it), so the check above failed for them.
    unsafe { core::hint::assert_unchecked(class < NUM_CLASSES) };
    Some(class)
}

/// The first page and the span holding `p` in `seg`, if `p` lies past the
/// header in a span that covers it.
#[inline(always)]
fn span_at(seg: SegmentRef, p: *const u8) -> Option<(usize, SpanRef)> {
    let page = seg.page_of(p);
    if page < FIRST_PAGE {
        return None;
    }
    // The page map entry may be stale for pages inside a large or free span;
    // a span that starts there and covers the page is the right one, since
    // spans tile the segment.
    let first = seg.map_get(page);
    if first < FIRST_PAGE || first > page {
        return None;
    }
    let span = seg.span(first);
    if page >= first + span.pages() {
        return None;
    }
    Some((first, span))
}

/// `find` of anything but a small block start.
#[cold]
#[inline(never)]
fn find_other(p: *const u8) -> Result<Block, Invalid> {
    match registry::kind_of(p) {
        registry::SEGMENT => {}
        registry::HUGE_FREE => return Err(Invalid::AlreadyFree),
        registry::GUARD => {
            return guard::usable_size(p)
                .map(Block::Guarded)
                .map_err(Invalid::from);
        }
        registry::HUGE => {
            return match huge::lookup(p.cast_mut()) {
                huge::Lookup::Live => Ok(Block::Huge),
                huge::Lookup::Freed => Err(Invalid::AlreadyFree),
                huge::Lookup::Other => Err(Invalid::Interior),
            };
        }
        _ => return Err(Invalid::Foreign),
    }
    // SAFETY: the registry says `p` lies in a live segment.
    let seg = unsafe { SegmentRef::of(p) };
    let Some((_, span)) = span_at(seg, p) else {
        return Err(Invalid::Interior);
    };
    match span.kind() {
        SLAB => small_class(p)
            .map(Block::Small)
            .ok_or_else(|| never_allocated(span, p)),
        LARGE if p == span.start().cast_const() => Ok(Block::Large(span.bytes())),
        FREE => Err(Invalid::AlreadyFree),
        _ => Err(Invalid::Interior),
    }
}

/// Why `p`, in slab `span` but not a live block start, is not
/// one: a block start past the bump pointer was never handed out.
fn never_allocated(span: SpanRef, p: *const u8) -> Invalid {
    let class = span.class() as u8 as usize;
    let offset = (p as usize).wrapping_sub(span.start() as usize) as u64;
    match block_index(offset, RECIPROCAL[class]) {
        Some(index) if index < u64::from(CLASSES[class].capacity) => Invalid::NeverAllocated,
        _ => Invalid::Interior,
    }
}

/// What `free(p)` would report, without freeing: `None` for a live block
/// (the fuzz targets check that every block they free is reported as a
/// double free right after).
///
/// # Safety
/// `p` must be readable if it lies in a segment (any pointer slabpool
/// handed out, live or freed, is).
pub unsafe fn free_error(p: *mut u8) -> Option<Invalid> {
    match find(p) {
        Err(why) => Some(why),
        // SAFETY: `p` starts a block of `class`, at least 8 bytes, in a
        // live segment.
        Ok(Block::Small(class)) => unsafe { block::looks_free(p) && global::is_free(p, class) }
            .then_some(Invalid::DoubleFree),
        Ok(_) => None,
    }
}

/// Confirms a suspected double free of `p`, a block of `class` whose first
/// word reads as a free block's link: aborts if the block is free.
#[cold]
#[inline(never)]
pub(crate) fn confirm_not_free(call: &str, p: *mut u8, class: usize) {
    // SAFETY: `small_class` found `p` to be a block start of a slab of
    // `class` in a live segment.
    if unsafe { global::is_free(p, class) } {
        invalid(call, p, Invalid::DoubleFree);
    }
}

/// Reports `why` for `p` in `call` on stderr and aborts the process.
#[cold]
#[inline(never)]
pub fn invalid(call: &str, p: *const u8, why: Invalid) -> ! {
    let mut out = os::StderrWriter::new();
    let _ = writeln!(out, "slabpool: {call}({p:p}): {}; aborting", why.describe());
    out.flush();
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// Alignments served by `alloc`'s fast path: sizes rounded up to them stay
/// within `SMALL_LIMIT` (a power of two), and every class is naturally
/// aligned.
const MAX_FAST_ALIGN: usize = 16;

/// `size` bytes aligned to `align` (a power of two); null when out of
/// memory or the request is impossible. `size` 0 gives a unique block.
#[inline]
pub fn alloc_bare(size: usize, align: usize) -> *mut u8 {
    // The common case, every C `malloc` of a small size: no `Layout` to
    // check (the sum cannot overflow). Size 0 counts as 1, so that it
    // rounds up to a block of the alignment asked for.
    if align.is_power_of_two() && align <= MAX_FAST_ALIGN && size <= SMALL_LIMIT {
        let class = class_of((size.max(1) + align - 1) & !(align - 1));
        return handed_out(alloc_small_sampled(class, size, align));
    }
    alloc_other(size, align)
}

/// C's `malloc(size)`: aligned to 8 bytes up to 8 bytes, to 16 above
/// (`max_align_t`); on failure null with `errno` ENOMEM. The fast path is
/// a table load and a pop from the thread cache; every other exit is a tail
/// call, so it needs no stack frame.
#[inline(always)]
pub fn malloc_bare(size: usize) -> *mut u8 {
    if let Some(class) = c_class_of(size) {
        let tc = global::tcache();
        let p = tc.pop(class);
        if !p.is_null() {
            // The C door checks the link it just followed more strictly
            // than `block` does: the next block must lie in a segment, so
            // a link whose flipped bit still decodes to an address fails
            // here rather than faulting in the next `malloc`.
            let next = tc.head(class);
            if !next.is_null() && !registry::in_window_segment(next) {
                return next_outside_the_window(p, next);
            }
            return handed_out(p);
        }
    }
    malloc_slow(size)
}

/// `malloc` of `p`, whose link leads to `next` outside the registry's
/// window: valid if `next` lies in a segment elsewhere, else a corrupt
/// link (reported; the process stops). Out of line, reached by a jump.
#[cold]
#[inline(never)]
fn next_outside_the_window(p: *mut u8, next: *mut u8) -> *mut u8 {
    if !registry::in_segment(next) {
        // SAFETY: `p` is a block of at least 8 bytes.
        unsafe { block::corrupt_link_in(p) }
    }
    handed_out(p)
}

/// `malloc` past its fast path.
#[inline(never)]
fn malloc_slow(size: usize) -> *mut u8 {
    let p = alloc_bare(size, if size <= 8 { 8 } else { 16 });
    if p.is_null() {
        // SAFETY: `__errno_location` returns the calling thread's errno.
        unsafe { *libc::__errno_location() = libc::ENOMEM };
    }
    p
}

/// `p`, a small block just taken from a free list (or null), with its link
/// word cleared: a block the program never writes must not read as free
/// to `free`'s double-free check (see `block::looks_free`).
#[inline(always)]
fn handed_out(p: *mut u8) -> *mut u8 {
    if !p.is_null() {
        // SAFETY: a small block holds at least 8 bytes, 8-aligned.
        unsafe { p.cast::<usize>().write(0) };
    }
    p
}

/// `alloc` past its fast path.
#[inline(never)]
fn alloc_other(size: usize, align: usize) -> *mut u8 {
    match layout(size, align) {
        Some(l) => match route(l.size(), l.align()) {
            Route::Small(class) => handed_out(alloc_small_sampled(class, size, align)),
            _ => alloc_big(l, false),
        },
        None => ptr::null_mut(),
    }
}

/// As [`alloc`], with the memory zeroed.
pub fn alloc_zeroed_bare(size: usize, align: usize) -> *mut u8 {
    match layout(size, align) {
        Some(l) => match route(l.size(), l.align()) {
            Route::Small(class) => {
                let p = alloc_small_sampled(class, size, align);
                if !p.is_null() {
                    // SAFETY: a fresh block of at least `size` bytes.
                    unsafe { p.write_bytes(0, l.size()) };
                }
                p
            }
            _ => alloc_big(l, true),
        },
        None => ptr::null_mut(),
    }
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
pub unsafe fn free_bare(p: *mut u8) {
    if p.is_null() {
        return;
    }
    // The common case inline (a small block in a segment of the registry's
    // window); everything else out of line, by a jump.
    if !registry::in_window_segment(p) {
        // SAFETY: forwarded contract.
        return unsafe { free_other(p) };
    }
    // SAFETY: the registry says `p` lies in a segment.
    let Some(class) = (unsafe { slab_class(p) }) else {
        // SAFETY: forwarded contract.
        return unsafe { free_other(p) };
    };
    // SAFETY: `p` starts a block of `class`, at least 8 bytes.
    if unsafe { block::looks_free(p) } {
        // SAFETY: forwarded contract.
        return unsafe { free_suspect(p, class) };
    }
    // SAFETY: `p` is a live block of `class` given up by the caller.
    if unsafe { global::tcache().push(class, p) } {
        return;
    }
    // SAFETY: as above.
    unsafe { free_small_slow(p, class) }
}

/// `free` of a small block whose first word reads as a free block's link:
/// aborts if it is free indeed, else frees it.
///
/// # Safety
/// `p` starts a block of `class`; if it is live, the caller gives it up.
#[cold]
#[inline(never)]
unsafe fn free_suspect(p: *mut u8, class: usize) {
    let _errno = SavedErrno::new();
    confirm_not_free("free", p, class);
    // SAFETY: `p` is live (not free), given up by the caller.
    unsafe { dealloc_small(p, class) }
}

/// `free` of a small block when the thread cache cannot take it.
///
/// # Safety
/// `p` is a live block of `class` given up by the caller.
#[cold]
#[inline(never)]
unsafe fn free_small_slow(p: *mut u8, class: usize) {
    let _errno = SavedErrno::new();
    // SAFETY: forwarded contract.
    unsafe { dealloc_small(p, class) }
}

/// `free` of anything but a small block: a large or huge block, or an
/// invalid pointer.
///
/// # Safety
/// If `p` is a live block, the caller gives it up.
#[cold]
#[inline(never)]
unsafe fn free_other(p: *mut u8) {
    let _errno = SavedErrno::new();
    #[cfg(feature = "prof")]
    if global::sampled(p) {
        // SAFETY: forwarded contract; `p` is in the profiler's pool.
        return unsafe { global::free_sampled("free", p) };
    }
    match find(p) {
        // SAFETY: `p` is a live small block given up by the caller.
        Ok(Block::Small(class)) => unsafe { dealloc_small(p, class) },
        // SAFETY: `p` is a live large block.
        Ok(Block::Large(_)) => unsafe { global::heap().free_large(p) },
        // SAFETY: `p` is a live huge block.
        Ok(Block::Huge) => unsafe { global::heap().free_huge(p) },
        Ok(Block::Guarded(_)) => {
            // SAFETY: `p` is a live guarded block given up by the caller.
            if let Err(why) = unsafe { guard::free(p) } {
                invalid("free", p, why.into());
            }
        }
        Err(why) => invalid("free", p, why),
    }
}

/// Saves `errno` and restores it when dropped.
pub(crate) struct SavedErrno(i32);

impl SavedErrno {
    pub(crate) fn new() -> Self {
        // SAFETY: `__errno_location` returns the calling thread's errno.
        SavedErrno(unsafe { *libc::__errno_location() })
    }
}

impl Drop for SavedErrno {
    fn drop(&mut self) {
        // SAFETY: as in `new`.
        unsafe { *libc::__errno_location() = self.0 };
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
        Ok(Block::Small(class)) => CLASSES[class].size as usize,
        Ok(Block::Large(bytes)) => bytes,
        // SAFETY: `p` is a live huge block.
        Ok(Block::Huge) => unsafe { huge::usable_size(p.cast_mut()) },
        Ok(Block::Guarded(bytes)) => bytes,
        Err(why) => invalid("malloc_usable_size", p, why),
    }
}

/// Resizes `p` to `size` bytes, keeping its contents up to the smaller
/// size; the result is aligned to `align` if it moves. Null `p` allocates;
/// null result when out of memory (then `p` is untouched). Aborts with a
/// message if `p` is not a live block.
///
/// # Safety
/// If the result is not null and differs from `p`, `p` is dead.
pub unsafe fn realloc_bare(p: *mut u8, size: usize, align: usize) -> *mut u8 {
    if p.is_null() {
        return alloc_bare(size, align);
    }
    let size = size.max(1);
    #[cfg(feature = "prof")]
    if global::sampled(p) {
        // A sampled block stays in its slot if it has room, else moves (to
        // a block sampled anew or not).
        if size > SMALL_LIMIT {
            if crate::prof::resize(p, size) {
                return p;
            }
            let q = crate::prof::grow(p, size);
            if !q.is_null() {
                return q;
            }
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
    if let Block::Small(class) = old {
        // SAFETY: `p` starts a block of `class`, at least 8 bytes.
        if unsafe { block::looks_free(p) } {
            confirm_not_free("realloc", p, class);
        }
    }
    let heap = global::heap();
    let old_size = match old {
        Block::Small(class) => {
            let block = CLASSES[class].size as usize;
            if align.is_power_of_two() && align <= MAX_FAST_ALIGN && size <= SMALL_LIMIT {
                // A block stays where it is only within its class, so that
                // it is always of the class `alloc` gives for its size (and
                // may be freed through `GlobalAlloc` with that layout).
                let new_class = class_of(size.next_multiple_of(align));
                if new_class == class {
                    return p;
                }
                let q = alloc_small_sampled(new_class, size, align);
                if !q.is_null() {
                    // SAFETY: both blocks hold at least the smaller class's
                    // size and differ; `p` is a live block of `class`.
                    unsafe {
                        copy_small(q, p, class.min(new_class), block.min(size));
                        dealloc_small(p, class);
                    }
                }
                return q;
            }
            block
        }
        Block::Large(bytes) => {
            if size > SMALL_LIMIT && size <= LARGE_LIMIT {
                // SAFETY: `p` is a live large block.
                let q = unsafe { heap.resize_large(p, size) };
                if !q.is_null() {
                    return q;
                }
            }
            bytes
        }
        Block::Huge => {
            if size > LARGE_LIMIT {
                // SAFETY: `p` is a live huge block.
                let q = unsafe { heap.resize_huge(p, size) };
                if !q.is_null() {
                    return q;
                }
            }
            // SAFETY: `p` is a live huge block.
            unsafe { huge::usable_size(p) }
        }
        // A guarded block always moves (to a block of the new size, guarded
        // or not), so a stale pointer to it faults.
        Block::Guarded(bytes) => bytes,
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

// ---- the doors -------------------------------------------------------------
//
// Each function of this API is one of the `_bare` functions above or, in
// the hardened build, its counterpart in `hardened`, which adds the canary,
// zero on free and delayed reuse around them (`malloc_usable_size` then
// gives the size asked for, and `realloc` always moves).

#[cfg(not(feature = "hardened"))]
pub use self::{
    alloc_bare as alloc, alloc_zeroed_bare as alloc_zeroed, free_bare as free,
    malloc_bare as malloc, realloc_bare as realloc, usable_size_bare as usable_size,
};
#[cfg(feature = "hardened")]
pub use crate::hardened::{alloc, alloc_zeroed, free, malloc, realloc, usable_size};

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    // The bare functions: these tests are about the lookup and the routes.
    use super::{
        alloc_bare as alloc, free_bare as free, realloc_bare as realloc,
        usable_size_bare as usable_size,
    };

    #[test]
    fn finds_blocks_of_every_kind_from_their_address() {
        let small = alloc(100, 16);
        let large = alloc(100_000, 16);
        let huge = alloc(5 << 20, 16);
        assert_eq!(find(small), Ok(Block::Small(class_of(112))));
        assert_eq!(find(large), Ok(Block::Large(25 * os::PAGE)));
        assert_eq!(find(huge), Ok(Block::Huge));
        assert_eq!(usable_size(small), 112);
        assert!(usable_size(huge) >= 5 << 20);
        assert_eq!(find(small.wrapping_add(8)), Err(Invalid::Interior));
        assert_eq!(find(large.wrapping_add(4096)), Err(Invalid::Interior));
        assert_eq!(find(huge.wrapping_add(4096)), Err(Invalid::Interior));
        let local = 0u64;
        assert_eq!(find((&local as *const u64).cast()), Err(Invalid::Foreign));
        // SAFETY: each block is live and given up once.
        unsafe {
            free(small);
            free(huge);
            free(large);
        }
        assert_eq!(find(huge), Err(Invalid::AlreadyFree));
    }

    #[test]
    fn block_index_divides_every_offset_in_a_segment_exactly() {
        for (class, &reciprocal) in RECIPROCAL[..NUM_CLASSES].iter().enumerate() {
            let capacity = u64::from(CLASSES[class].capacity);
            let size = u64::from(CLASSES[class].size);
            for offset in 0..1u64 << SEGMENT_SHIFT {
                let expected = (offset % size == 0).then_some(offset / size);
                assert_eq!(block_index(offset, reciprocal), expected);
            }
            // Offsets from a stale page map entry past the page wrap around.
            for back in [1, 8, size, 1 << 20] {
                let index = block_index(back.wrapping_neg(), reciprocal);
                assert!(index.is_none_or(|i| i >= capacity));
            }
        }
        assert!(RECIPROCAL[NUM_CLASSES..].iter().all(|&r| r == 0));
    }

    #[test]
    fn zero_bytes_get_the_alignment_asked_for() {
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            let p = alloc(0, align);
            assert!(!p.is_null() && p as usize % align == 0, "alloc(0, {align})");
            // SAFETY: live, freed once.
            unsafe { free(p) };
        }
    }

    #[test]
    fn header_addresses_are_not_blocks() {
        let p = alloc(48, 16);
        let base = p as usize & !(crate::segment::SEGMENT_SIZE - 1);
        for page in 0..FIRST_PAGE {
            for offset in [0, 8, os::PAGE - 8] {
                let q = (base + page * os::PAGE + offset) as *const u8;
                assert_eq!(small_class(q), None);
                assert_eq!(find(q), Err(Invalid::Interior));
            }
        }
        // SAFETY: live, freed once.
        unsafe { free(p) };
    }

    #[test]
    fn every_block_of_a_slab_is_found_and_no_interior_byte() {
        for class in [0, 2, 4, 9, 20, NUM_CLASSES - 1] {
            let size = CLASSES[class].size as usize;
            let p = alloc(size, 8);
            assert_eq!(find(p), Ok(Block::Small(class)));
            for delta in [1, 8, size / 2, size - 1] {
                if delta > 0 && delta < size {
                    assert_eq!(find(p.wrapping_add(delta)), Err(Invalid::Interior));
                }
            }
            // SAFETY: live, freed once.
            unsafe { free(p) };
        }
    }

    #[test]
    fn realloc_stays_within_its_class_and_copies_across_classes() {
        let p = alloc(200, 16);
        assert_eq!(usable_size(p), 224);
        // SAFETY: `p` is live with 224 bytes; each result replaces it.
        unsafe {
            for i in 0..224 {
                *p.add(i) = i as u8;
            }
            assert_eq!(realloc(p, 193, 16), p, "same class: in place");
            let q = realloc(p, 100, 16);
            assert_ne!(q, p, "another class: moved");
            assert_eq!(usable_size(q), 112);
            assert!((0..100).all(|i| *q.add(i) == i as u8));
            // Growth through every small class keeps what was written.
            let mut r = q;
            let mut len = 100;
            for size in (101..=4096).step_by(37) {
                r = realloc(r, size, 16);
                assert!((0..len).all(|i| *r.add(i) == i as u8), "to {size}");
                for i in len..size {
                    *r.add(i) = i as u8;
                }
                len = size;
            }
            free(r);
        }
    }

    #[test]
    fn realloc_moves_across_routes_and_keeps_contents() {
        let mut p = alloc(10, 16);
        // SAFETY: `p` is live with at least 10 bytes.
        unsafe { p.write_bytes(7, 10) };
        for size in [12, 100, 40_000, 300_000, 3 << 20, 9 << 20, 50, 8] {
            // SAFETY: `p` is live; the result replaces it.
            p = unsafe { realloc(p, size, 16) };
            assert!(!p.is_null());
            assert_eq!(p as usize % 16, 0);
            assert!(usable_size(p) >= size);
            // SAFETY: at least 8 bytes survive every step.
            let kept = unsafe { core::slice::from_raw_parts(p, 8) };
            assert!(kept.iter().all(|&b| b == 7));
        }
        // SAFETY: live.
        unsafe { free(p) };
    }
}

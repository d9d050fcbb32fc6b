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
//! pointer into a segment header, an interior pointer of a small, large or
//! huge block, a large block freed twice while its pages are free, and a
//! small block freed twice in a row by one thread. A small block freed twice
//! with other frees in between is not detected (the block would have to
//! carry a state bit; the C ABI's `checked` feature catches the cases where
//! the block is still in the freeing thread's cache).

use crate::global::{self, alloc_big, alloc_small, dealloc_small};
use crate::heap::{LARGE_LIMIT, Route, route};
use crate::huge;
use crate::os;
use crate::registry;
use crate::segment::{FIRST_PAGE, FREE, LARGE, SLAB, SegmentRef};
use crate::size_class::{CLASSES, SMALL_LIMIT, class_of};
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
    /// The block was the last one this thread freed.
    DoubleFree,
}

impl Invalid {
    fn describe(self) -> &'static str {
        match self {
            Invalid::Foreign => "pointer not allocated by slabpool",
            Invalid::Interior => "pointer inside a block, not at its start",
            Invalid::AlreadyFree => "double free (the block's pages are free)",
            Invalid::DoubleFree => "double free (freed twice in a row)",
        }
    }
}

/// Looks `p` up: which block it starts.
pub fn find(p: *const u8) -> Result<Block, Invalid> {
    match registry::kind_of(p) {
        registry::SEGMENT => find_in_segment(p),
        registry::HUGE_FREE => Err(Invalid::AlreadyFree),
        registry::HUGE => match huge::lookup(p.cast_mut()) {
            huge::Lookup::Live => Ok(Block::Huge),
            huge::Lookup::Freed => Err(Invalid::AlreadyFree),
            huge::Lookup::Other => Err(Invalid::Interior),
        },
        _ => Err(Invalid::Foreign),
    }
}

fn find_in_segment(p: *const u8) -> Result<Block, Invalid> {
    // SAFETY: the registry says `p` lies in a live segment.
    let seg = unsafe { SegmentRef::of(p) };
    let page = seg.page_of(p);
    if page < FIRST_PAGE {
        return Err(Invalid::Interior);
    }
    // The page map entry may be stale for pages inside a large or free span;
    // a span that starts there and covers the page is the right one, since
    // spans tile the segment.
    let first = seg.map_get(page);
    if first < FIRST_PAGE || first > page {
        return Err(Invalid::Interior);
    }
    let span = seg.span(first);
    if page >= first + span.pages() {
        return Err(Invalid::Interior);
    }
    let offset = p as usize - span.start() as usize;
    match span.kind() {
        SLAB => {
            let class = span.class();
            let info = &CLASSES[class];
            let size = info.size as usize;
            if offset % size != 0 || offset / size >= info.capacity as usize {
                return Err(Invalid::Interior);
            }
            Ok(Block::Small(class))
        }
        LARGE if offset == 0 => Ok(Block::Large(span.bytes())),
        FREE => Err(Invalid::AlreadyFree),
        _ => Err(Invalid::Interior),
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

/// `size` bytes aligned to `align` (a power of two); null when out of
/// memory or the request is impossible. `size` 0 gives a unique block.
pub fn alloc(size: usize, align: usize) -> *mut u8 {
    match layout(size, align) {
        Some(l) => match route(l.size(), l.align()) {
            Route::Small(class) => alloc_small(class),
            _ => alloc_big(l, false),
        },
        None => ptr::null_mut(),
    }
}

/// As [`alloc`], with the memory zeroed.
pub fn alloc_zeroed(size: usize, align: usize) -> *mut u8 {
    match layout(size, align) {
        Some(l) => match route(l.size(), l.align()) {
            Route::Small(class) => {
                let p = alloc_small(class);
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

fn layout(size: usize, align: usize) -> Option<Layout> {
    Layout::from_size_align(size.max(1), align).ok()
}

/// Frees `p` (null is ignored); aborts with a message if `p` is not a live
/// block of slabpool's.
///
/// # Safety
/// If `p` is a live block, the caller gives it up.
pub unsafe fn free(p: *mut u8) {
    if p.is_null() {
        return;
    }
    match find(p) {
        Ok(Block::Small(class)) => {
            if global::is_last_freed(p, class) {
                invalid("free", p, Invalid::DoubleFree);
            }
            // SAFETY: `p` is a live block of `class` given up by the caller.
            unsafe { dealloc_small(p, class) }
        }
        // SAFETY: `p` is a live large block.
        Ok(Block::Large(_)) => unsafe { global::heap().free_large(p) },
        // SAFETY: `p` is a live huge block.
        Ok(Block::Huge) => unsafe { global::heap().free_huge(p) },
        Err(why) => invalid("free", p, why),
    }
}

/// Bytes usable at `p`, a live block (at least what was asked); 0 for null.
/// Aborts with a message if `p` is not a live block.
pub fn usable_size(p: *const u8) -> usize {
    if p.is_null() {
        return 0;
    }
    match find(p) {
        Ok(Block::Small(class)) => CLASSES[class].size as usize,
        Ok(Block::Large(bytes)) => bytes,
        // SAFETY: `p` is a live huge block.
        Ok(Block::Huge) => unsafe { huge::usable_size(p.cast_mut()) },
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
pub unsafe fn realloc(p: *mut u8, size: usize, align: usize) -> *mut u8 {
    if p.is_null() {
        return alloc(size, align);
    }
    let size = size.max(1);
    let old = match find(p) {
        Ok(b) => b,
        Err(why) => invalid("realloc", p, why),
    };
    let heap = global::heap();
    let old_size = match old {
        Block::Small(class) => {
            if size <= SMALL_LIMIT && class_of(size.next_multiple_of(align)) == class {
                return p;
            }
            CLASSES[class].size as usize
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
    };
    let q = alloc(size, align);
    if !q.is_null() {
        // SAFETY: both blocks hold at least the bytes copied; they differ.
        unsafe {
            ptr::copy_nonoverlapping(p, q, old_size.min(size));
            free(p);
        }
    }
    q
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

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

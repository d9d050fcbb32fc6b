//! Huge blocks: one direct mapping each, for requests above the large limit.
//!
//! Layout: the block starts at an address aligned as requested (at least a
//! page), and its header sits in the page right before it, so the header is
//! found from the block pointer alone. The mapping starts at the chunk
//! (4 MiB) holding the header and ends at a chunk boundary, so it covers
//! whole chunks and is recorded in the [`registry`]: a bare pointer can be
//! checked against it (C's `free`) and the header read safely. The tail
//! past the block is never touched, so costs address space only; it is
//! usable (`malloc_usable_size` reports it) and lets a `realloc` grow in
//! place.
//!
//! `realloc` beyond the mapping moves the pages with `mremap` (no copy
//! through user space): in place when the address space after it is free,
//! else into a fresh chunk-aligned reservation (`MREMAP_FIXED`). Fresh
//! mappings read as zero, so `alloc_zeroed` never clears them.
//!
//! Invariants: `header.check == MAGIC ^ block address`; the mapping
//! `[map_base, map_base + map_len)` is chunk-aligned, chunk-rounded and
//! registered as [`registry::HUGE`] for as long as the block lives.

use crate::os::{self, PAGE};
use crate::registry;
use crate::segment::SEGMENT_SIZE;
use crate::sync::{AtomicUsize, Ordering};
use core::ptr;

const MAGIC: usize = 0x6875_6765_626c_6b21; // "hugeblk!"

#[repr(C)]
struct HugeHeader {
    /// `MAGIC ^` the block's address.
    check: usize,
    /// The whole mapping.
    map_base: *mut u8,
    map_len: usize,
    /// Bytes requested, rounded up to pages.
    size: usize,
    align: usize,
}

/// Live huge blocks: count, bytes (page-rounded sizes) and mapped bytes.
pub struct HugeCounts {
    pub blocks: AtomicUsize,
    pub bytes: AtomicUsize,
    pub mapped: AtomicUsize,
}

impl HugeCounts {
    crate::sync::const_fn! {
        pub fn new() -> Self {
            Self {
                blocks: AtomicUsize::new(0),
                bytes: AtomicUsize::new(0),
                mapped: AtomicUsize::new(0),
            }
        }
    }

    fn add(&self, blocks: usize, bytes: usize, mapped: usize) {
        self.blocks.fetch_add(blocks, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.mapped.fetch_add(mapped, Ordering::Relaxed);
    }

    fn sub(&self, blocks: usize, bytes: usize, mapped: usize) {
        self.blocks.fetch_sub(blocks, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.mapped.fetch_sub(mapped, Ordering::Relaxed);
    }
}

/// Rounds `n` up to pages, `None` on overflow.
fn pages_of(n: usize) -> Option<usize> {
    n.checked_add(PAGE - 1).map(|n| n & !(PAGE - 1))
}

/// Maps a huge block of `size` bytes aligned to `align`. Null on failure.
pub fn alloc(size: usize, align: usize, counts: &HugeCounts) -> *mut u8 {
    let Some(rounded) = pages_of(size) else {
        return ptr::null_mut();
    };
    let align = align.max(PAGE);
    // The block sits `align` bytes into a reservation aligned to at least a
    // chunk; the chunks wholly before its header page are trimmed.
    let base_align = align.max(SEGMENT_SIZE);
    let Some(total) = rounded
        .checked_add(align)
        .and_then(|n| n.checked_add(SEGMENT_SIZE - 1))
        .map(|n| n & !(SEGMENT_SIZE - 1))
    else {
        return ptr::null_mut();
    };
    let Some(base) = os::reserve(total, base_align) else {
        return ptr::null_mut();
    };
    let base = base.as_ptr();
    let block = base.wrapping_add(align);
    let map_base = (block as usize - PAGE) & !(SEGMENT_SIZE - 1);
    let lead = map_base - base as usize;
    // SAFETY: [base, map_base) is the unused lead of the reservation.
    unsafe { os::release(base, lead) };
    let map_base = map_base as *mut u8;
    let map_len = total - lead;
    if !registry::register(map_base, map_len, registry::HUGE) {
        // SAFETY: the mapping is ours and unused.
        unsafe { os::release(map_base, map_len) };
        return ptr::null_mut();
    }
    // SAFETY: the header page lies in the mapping, before the block.
    unsafe {
        header(block).write(HugeHeader {
            check: MAGIC ^ block as usize,
            map_base,
            map_len,
            size: rounded,
            align,
        });
    }
    counts.add(1, rounded, map_len);
    block
}

/// The header of huge block `p` (not checked).
fn header(p: *mut u8) -> *mut HugeHeader {
    p.wrapping_sub(PAGE).cast::<HugeHeader>()
}

/// Whether `p`, in a chunk registered as huge, starts a live huge block.
///
/// # Safety
/// The chunk holding `p` must be registered as [`registry::HUGE`] (so the
/// page before `p`, in that chunk or the one before, is readable if it is
/// registered too, which this checks).
pub unsafe fn is_block(p: *mut u8) -> bool {
    let h = header(p);
    if p as usize % PAGE != 0 || registry::kind_of(h.cast()) != registry::HUGE {
        return false;
    }
    // SAFETY: the header's chunk is a huge mapping, wholly readable.
    unsafe { (*h).check == MAGIC ^ p as usize }
}

/// Bytes usable at `p`: up to the end of its mapping.
///
/// # Safety
/// `p` must be a live huge block.
pub unsafe fn usable_size(p: *mut u8) -> usize {
    // SAFETY: by contract `p` has a header.
    let h = unsafe { &*header(p) };
    debug_assert_eq!(h.check, MAGIC ^ p as usize);
    h.map_base as usize + h.map_len - p as usize
}

/// Unmaps huge block `p`.
///
/// # Safety
/// `p` must be a live huge block; it is dead afterwards.
pub unsafe fn free(p: *mut u8, counts: &HugeCounts) {
    // SAFETY: by contract `p` has a header, read before the unmap.
    let (base, len, size) = unsafe {
        let h = header(p);
        debug_assert_eq!((*h).check, MAGIC ^ p as usize);
        (*h).check = 0;
        ((*h).map_base, (*h).map_len, (*h).size)
    };
    counts.sub(1, size, len);
    registry::unregister(base, len);
    // SAFETY: the mapping is exactly [base, base + len) and now unused.
    unsafe { os::release(base, len) };
}

/// Resizes huge block `p` to `new_size` bytes: in place within its mapping
/// (unmapping whole chunks it no longer needs), or by moving the mapping
/// with `mremap`. Returns the (possibly moved) block, or null if the caller
/// must copy.
///
/// # Safety
/// `p` must be a live huge block; if the result is not null and differs
/// from `p`, the old pointer is dead.
pub unsafe fn resize(p: *mut u8, new_size: usize, counts: &HugeCounts) -> *mut u8 {
    let h = header(p);
    // SAFETY: by contract `p` has a header.
    let (map_base, map_len, size, align) =
        unsafe { ((*h).map_base, (*h).map_len, (*h).size, (*h).align) };
    let Some(new_rounded) = pages_of(new_size) else {
        return ptr::null_mut();
    };
    let offset = p as usize - map_base as usize;
    let Some(new_len) = offset
        .checked_add(new_rounded)
        .and_then(|n| n.checked_add(SEGMENT_SIZE - 1))
        .map(|n| n & !(SEGMENT_SIZE - 1))
    else {
        return ptr::null_mut();
    };
    let moved = if new_len <= map_len {
        // Shrink (or stay) in place; give back whole chunks past the end.
        if new_len < map_len {
            let tail = map_base.wrapping_add(new_len);
            registry::unregister(tail, map_len - new_len);
            // SAFETY: the tail chunks lie past the new end of the block.
            unsafe { os::release(tail, map_len - new_len) };
        }
        map_base
    } else {
        // SAFETY: [map_base, map_base + map_len) is exactly this mapping.
        match unsafe { grow_mapping(map_base, map_len, new_len, align) } {
            Some(q) => q,
            None => return ptr::null_mut(),
        }
    };
    let q = moved.wrapping_add(offset);
    // SAFETY: the header moved with the mapping and is ours.
    unsafe {
        let h = header(q);
        (*h).check = MAGIC ^ q as usize;
        (*h).map_base = moved;
        (*h).map_len = new_len;
        (*h).size = new_rounded;
    }
    counts.sub(1, size, map_len);
    counts.add(1, new_rounded, new_len);
    q
}

/// Grows the mapping `[base, base + len)` to `new_len` bytes, moving it to
/// a fresh chunk-aligned place if it cannot grow in place. Returns its new
/// base; `None` if the caller must copy.
///
/// # Safety
/// `[base, base + len)` must be a whole huge mapping made here.
unsafe fn grow_mapping(base: *mut u8, len: usize, new_len: usize, align: usize) -> Option<*mut u8> {
    // In place, when the address space after the mapping is free.
    // SAFETY: forwarded contract; without MREMAP_MAYMOVE nothing moves.
    if let Some(q) = unsafe { os::remap(base, len, new_len, None) } {
        if registry::register(base, new_len, registry::HUGE) {
            return Some(q.as_ptr());
        }
        // SAFETY: shrinking back the part we just grew.
        unsafe { os::release(base.wrapping_add(len), new_len - len) };
        return None;
    }
    if align > SEGMENT_SIZE {
        // A move must keep the block's alignment: copy instead.
        return None;
    }
    let target = os::reserve(new_len, SEGMENT_SIZE)?.as_ptr();
    if !registry::register(target, new_len, registry::HUGE) {
        // SAFETY: the reservation is ours and unused.
        unsafe { os::release(target, new_len) };
        return None;
    }
    // SAFETY: forwarded contract; `target` is our reservation of `new_len`
    // bytes, which MREMAP_FIXED replaces.
    match unsafe { os::remap(base, len, new_len, Some(target)) } {
        Some(q) => {
            registry::unregister(base, len);
            Some(q.as_ptr())
        }
        None => {
            registry::unregister(target, new_len);
            // SAFETY: the reservation is ours and unused.
            unsafe { os::release(target, new_len) };
            None
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn alloc_aligned_resize_free() {
        let counts = HugeCounts::new();
        for align in [8, PAGE, 64 * 1024, 4 << 20, 16 << 20] {
            let size = (5 << 20) + 3;
            let p = alloc(size, align, &counts);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            // SAFETY: `p` is a live huge block of at least `size` bytes.
            unsafe {
                assert!(is_block(p));
                assert!(!is_block(p.add(PAGE)), "interior pointer");
                assert_eq!(registry::kind_of(p.add(size)), registry::HUGE);
                assert!(usable_size(p) >= size);
                assert_eq!(*p, 0);
                *p = 1;
                *p.add(size - 1) = 2;
                let q = resize(p, 40 << 20, &counts);
                let q = if q.is_null() { p } else { q };
                assert_eq!((*q, *q.add(size - 1)), (1, 2));
                assert_eq!(q as usize % align, 0);
                assert!(is_block(q));
                let r = resize(q, 3 << 20, &counts);
                assert_eq!(r, q, "shrinking stays in place");
                assert!(usable_size(r) >= 3 << 20 && usable_size(r) < 8 << 20);
                free(r, &counts);
                assert_eq!(registry::kind_of(r), registry::NONE);
            }
        }
        assert_eq!(counts.blocks.load(Ordering::Relaxed), 0);
        assert_eq!(counts.bytes.load(Ordering::Relaxed), 0);
        assert_eq!(counts.mapped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn growth_moves_pages_when_blocked() {
        let counts = HugeCounts::new();
        let p = alloc(5 << 20, 8, &counts);
        // SAFETY: `p` is live; block the address space right after it.
        unsafe {
            let end = p.add(usable_size(p));
            let blocker = libc::mmap(
                end.cast(),
                PAGE,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            );
            p.add(4 << 20).write(9);
            let q = resize(p, 100 << 20, &counts);
            assert!(!q.is_null());
            if blocker != libc::MAP_FAILED {
                assert_ne!(q, p, "moved past the blocker");
                libc::munmap(blocker, PAGE);
            }
            assert_eq!(q.add(4 << 20).read(), 9);
            assert_eq!(q as usize % PAGE, 0);
            assert!(is_block(q));
            free(q, &counts);
        }
    }
}

//! Huge blocks: one direct mapping each, for requests above the large limit.
//!
//! Layout of a mapping: one header page, then the block, which starts at an
//! address aligned as requested. The header sits in the page right before
//! the block, so a huge block's header is found from the block pointer
//! alone. `realloc` resizes the mapping with `mremap` (which keeps the
//! contents without copying through user space) when the alignment is no
//! more than a page; fresh mappings read as zero, so `alloc_zeroed` never
//! clears them.

use crate::os::{self, PAGE};
use crate::sync::{AtomicUsize, Ordering};
use core::ptr;

const MAGIC: usize = 0x6875_6765_626c_6b21; // "hugeblk!"

#[repr(C)]
struct HugeHeader {
    magic: usize,
    /// The whole mapping: the header page and the block.
    map_base: *mut u8,
    map_len: usize,
    align: usize,
}

/// Live huge mappings: count and bytes.
pub struct HugeCounts {
    pub blocks: AtomicUsize,
    pub bytes: AtomicUsize,
}

impl HugeCounts {
    crate::sync::const_fn! {
        pub fn new() -> Self {
            Self { blocks: AtomicUsize::new(0), bytes: AtomicUsize::new(0) }
        }
    }

    fn add(&self, bytes: usize) {
        self.blocks.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn sub(&self, bytes: usize) {
        self.blocks.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Maps a huge block of `size` bytes aligned to `align`. Null on failure.
pub fn alloc(size: usize, align: usize, counts: &HugeCounts) -> *mut u8 {
    let Some(rounded) = size.checked_add(PAGE - 1).map(|n| n & !(PAGE - 1)) else {
        return ptr::null_mut();
    };
    let align = align.max(PAGE);
    // Reserve `align` bytes before the block so the block can start at an
    // aligned address with a page in front of it, then trim the lead.
    let Some(total) = rounded.checked_add(align) else {
        return ptr::null_mut();
    };
    let Some(base) = os::reserve(total, align) else {
        return ptr::null_mut();
    };
    let block = base.as_ptr().wrapping_add(align);
    let map_base = block.wrapping_sub(PAGE);
    // SAFETY: [base, map_base) is the unused lead of the reservation.
    unsafe { os::release(base.as_ptr(), align - PAGE) };
    let header = map_base.cast::<HugeHeader>();
    // SAFETY: the header page is ours, mapped and aligned.
    unsafe {
        header.write(HugeHeader {
            magic: MAGIC,
            map_base,
            map_len: PAGE + rounded,
            align,
        });
    }
    counts.add(PAGE + rounded);
    block
}

/// The header of huge block `p`.
///
/// # Safety
/// `p` must be a live huge block.
unsafe fn header(p: *mut u8) -> *mut HugeHeader {
    let h = p.wrapping_sub(PAGE).cast::<HugeHeader>();
    // SAFETY: by contract the page before `p` is its header.
    debug_assert_eq!(unsafe { (*h).magic }, MAGIC);
    h
}

/// Bytes usable at `p`.
#[cfg(test)]
///
/// # Safety
/// `p` must be a live huge block.
pub unsafe fn usable_size(p: *mut u8) -> usize {
    // SAFETY: by contract `p` has a header.
    let h = unsafe { &*header(p) };
    h.map_base as usize + h.map_len - p as usize
}

/// Unmaps huge block `p`.
///
/// # Safety
/// `p` must be a live huge block; it is dead afterwards.
pub unsafe fn free(p: *mut u8, counts: &HugeCounts) {
    // SAFETY: by contract `p` has a header, read before the unmap.
    let (base, len) = unsafe {
        let h = header(p);
        (*h).magic = 0;
        ((*h).map_base, (*h).map_len)
    };
    counts.sub(len);
    // SAFETY: the mapping is exactly [base, base + len) and now unused.
    unsafe { os::release(base, len) };
}

/// Resizes huge block `p` to `new_size` bytes in place or by `mremap`.
/// Returns the (possibly moved) block, or null if it must be copied.
///
/// # Safety
/// `p` must be a live huge block; on success the old pointer is dead.
pub unsafe fn resize(p: *mut u8, new_size: usize, counts: &HugeCounts) -> *mut u8 {
    // SAFETY: by contract `p` has a header.
    let h = unsafe { header(p) };
    // SAFETY: as above.
    let (map_base, map_len, align) = unsafe { ((*h).map_base, (*h).map_len, (*h).align) };
    let Some(new_len) = new_size.checked_add(PAGE * 2 - 1).map(|n| n & !(PAGE - 1)) else {
        return ptr::null_mut();
    };
    if new_len == map_len {
        return p;
    }
    if new_len < map_len {
        // Shrink in place: unmap the tail.
        // SAFETY: the tail beyond `new_len` is part of this mapping and lies
        // past the new size of the block.
        unsafe {
            os::release(map_base.add(new_len), map_len - new_len);
            (*h).map_len = new_len;
        }
        counts.sub(map_len);
        counts.add(new_len);
        return p;
    }
    if align > PAGE {
        return ptr::null_mut();
    }
    // SAFETY: [map_base, map_base + map_len) is exactly this mapping.
    let Some(moved) = (unsafe { os::remap(map_base, map_len, new_len) }) else {
        return ptr::null_mut();
    };
    let new_header = moved.as_ptr().cast::<HugeHeader>();
    // SAFETY: the header moved with the mapping and is ours.
    unsafe {
        (*new_header).map_base = moved.as_ptr();
        (*new_header).map_len = new_len;
    }
    counts.sub(map_len);
    counts.add(new_len);
    moved.as_ptr().wrapping_add(PAGE)
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
                assert!(usable_size(p) >= size);
                assert_eq!(*p, 0);
                *p = 1;
                *p.add(size - 1) = 2;
                let q = resize(p, 12 << 20, &counts);
                let q = if q.is_null() { p } else { q };
                assert_eq!((*q, *q.add(size - 1)), (1, 2));
                assert_eq!(q as usize % align, 0);
                let r = resize(q, 3 << 20, &counts);
                assert_eq!(r, q, "shrinking stays in place");
                assert!(usable_size(r) >= 3 << 20 && usable_size(r) < 4 << 20);
                free(r, &counts);
            }
        }
        assert_eq!(counts.blocks.load(Ordering::Relaxed), 0);
        assert_eq!(counts.bytes.load(Ordering::Relaxed), 0);
    }
}

//! Routing by size and alignment: which requests are small blocks of a
//! size class, which are large spans of an arena's pages, and which are
//! huge mappings of their own; and the copy of a small block's contents
//! when it moves to another class.

use crate::layout::SEGMENT_SIZE;
use crate::os::align_up;
#[cfg(not(loom))]
use crate::size_class::CLASSES;
use crate::size_class::{SMALL_LIMIT, SizeClass, size_class};
#[cfg(not(loom))]
use core::ptr;

/// Largest request served from an arena's pages; above it, a mapping.
pub const LARGE_LIMIT: usize = SEGMENT_SIZE / 2;

/// Where a request of a given size and alignment is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// A block of this size class.
    Small(SizeClass),
    /// A span of pages in an arena.
    Large,
    /// A direct mapping.
    Huge,
}

/// Routes `size` bytes at `align`: both must come from a valid `Layout`
/// (so rounding `size` up to `align` cannot overflow).
#[inline(always)]
pub fn route(size: usize, align: usize) -> Route {
    let rounded = align_up(size, align);
    if rounded <= SMALL_LIMIT {
        Route::Small(size_class(rounded))
    } else if rounded <= LARGE_LIMIT {
        Route::Large
    } else {
        Route::Huge
    }
}

/// Copies a small block's contents to a block of another class: the whole
/// of `class`, the smaller of the two, when that is short enough to copy
/// inline, else the `len` bytes the program asked for.
///
/// # Safety
/// `dst` and `src` must be distinct live small blocks of at least the size
/// of `class`, and `len` must not exceed it.
#[cfg(not(loom))]
#[inline(always)]
#[cfg_attr(feature = "hardened", allow(dead_code))]
pub unsafe fn copy_small(dst: *mut u8, src: *const u8, class: usize, len: usize) {
    let size = CLASSES[class].size as usize;
    if size <= crate::block::INLINE_COPY {
        // SAFETY: both blocks hold at least `size` bytes (contract).
        unsafe { crate::block::copy_contents(dst, src, size) }
    } else {
        // SAFETY: both blocks hold at least `len <= size` bytes.
        unsafe { ptr::copy_nonoverlapping(src, dst, len) }
    }
}

/// Routes a request that is known not to be small.
#[inline]
pub(super) fn is_large(size: usize, align: usize) -> bool {
    align_up(size, align) <= LARGE_LIMIT
}

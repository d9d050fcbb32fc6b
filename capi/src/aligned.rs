//! The aligned allocations: `posix_memalign`, `aligned_alloc`, `memalign`,
//! `valloc`, `pvalloc`. Every result is also aligned as `malloc`'s would be
//! for its size.
//!
//! Argument checks follow glibc (2.38): `posix_memalign` returns EINVAL for
//! an alignment that is not a power of two multiple of `sizeof(void *)`;
//! `aligned_alloc` fails with EINVAL for one that is not a power of two;
//! `memalign` rounds such an alignment up to a power of two (EINVAL above
//! 2^63). Out of memory is ENOMEM everywhere.

use crate::{c_align, errno};
use core::ffi::{c_int, c_void};
use slabpool::raw;

/// Page size for `valloc` and `pvalloc`.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 { page as usize } else { 4096 }
}

/// `size` bytes at `align` (a power of two), ENOMEM on failure.
fn aligned(align: usize, size: usize) -> *mut c_void {
    let p = raw::alloc(size, align.max(c_align(size)));
    if p.is_null() {
        return errno::enomem();
    }
    p.cast()
}

/// # Safety
/// `out` must be valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    if !align.is_power_of_two() || align % size_of::<*mut c_void>() != 0 {
        return libc::EINVAL;
    }
    let p = aligned(align, size);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller's contract.
    unsafe { *out = p };
    0
}

/// # Safety
/// Callable from C at any time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        errno::set(libc::EINVAL);
        return core::ptr::null_mut();
    }
    aligned(align, size)
}

/// # Safety
/// Callable from C at any time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    match align.max(1).checked_next_power_of_two() {
        Some(align) => aligned(align, size),
        None => {
            errno::set(libc::EINVAL);
            core::ptr::null_mut()
        }
    }
}

/// # Safety
/// Callable from C at any time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    aligned(page_size(), size)
}

/// `valloc` of `size` rounded up to whole pages (one page for 0).
///
/// # Safety
/// Callable from C at any time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let page = page_size();
    match size.max(1).checked_next_multiple_of(page) {
        Some(rounded) => aligned(page, rounded),
        None => errno::enomem(),
    }
}

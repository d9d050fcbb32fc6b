//! `malloc`, `calloc`, `realloc`, `reallocarray`, `free` and `cfree`.
//!
//! glibc semantics: `malloc(0)` and `realloc(NULL, 0)` return a unique
//! pointer; `realloc(p, 0)` frees `p` and returns NULL; a failed `realloc`
//! leaves `p` untouched; `calloc` and `reallocarray` fail with ENOMEM when
//! the product overflows. Invalid pointers abort with a message (see
//! `slabpool::raw`).

use crate::{c_align, errno};
use core::ffi::c_void;
use slabpool::raw;

/// # Safety
/// Callable from C at any time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    raw::malloc(size).cast()
}

/// # Safety
/// `p` is null or a live block of this allocator, given up by the caller.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: forwarded contract; invalid pointers abort.
    unsafe { raw::free(p.cast()) }
}

/// The obsolete alias of `free` that glibc still exports.
///
/// # Safety
/// As [`free`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { raw::free(p.cast()) }
}

/// # Safety
/// Callable from C at any time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    let Some(bytes) = n.checked_mul(size) else {
        return errno::enomem();
    };
    let p = raw::calloc(bytes);
    if p.is_null() {
        return errno::enomem();
    }
    p.cast()
}

/// # Safety
/// `p` is null or a live block of this allocator; if the result is not
/// null, `p` is dead.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if size == 0 {
        // SAFETY: forwarded contract.
        return unsafe { realloc_to_zero(p) };
    }
    // SAFETY: forwarded contract; invalid pointers abort.
    let q = unsafe { raw::realloc(p.cast(), size, c_align(size)) };
    if q.is_null() {
        return errno::enomem();
    }
    q.cast()
}

/// `realloc(p, 0)`, out of line (one test of the size on the common path):
/// as glibc (REALLOC_ZERO_BYTES_FREES), frees `p` and returns NULL; with a
/// null `p`, `malloc(0)`.
///
/// # Safety
/// As [`realloc`].
#[cold]
#[inline(never)]
unsafe fn realloc_to_zero(p: *mut c_void) -> *mut c_void {
    if p.is_null() {
        return raw::malloc(0).cast();
    }
    // SAFETY: `p` is a live block given up by the caller.
    unsafe { raw::free(p.cast()) };
    core::ptr::null_mut()
}

/// # Safety
/// As [`realloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    let Some(bytes) = n.checked_mul(size) else {
        return errno::enomem();
    };
    // SAFETY: forwarded contract.
    unsafe { realloc(p, bytes) }
}

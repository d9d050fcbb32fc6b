//! glibc's other names for its allocator, and C23's sized frees, so that
//! no pointer of ours ever reaches glibc's `free` and no pointer of glibc's
//! ever reaches ours.
//!
//! - `__libc_malloc`, `__libc_free`, `__libc_calloc`, `__libc_realloc`,
//!   `__libc_memalign`, `__libc_valloc`, `__libc_pvalloc` (glibc only):
//!   glibc exports its allocator under these names too, and programs and
//!   libraries call them to reach "the real malloc" from a wrapper of
//!   their own (tracers, leak checkers, language runtimes). Under
//!   `LD_PRELOAD` they would get glibc's heap while `free` is ours (an
//!   abort on a foreign pointer), or hand our blocks to glibc's `free`.
//!   Each forwards to this library's function of the same meaning.
//! - `free_sized` and `free_aligned_sized` (C23): `free` with the size
//!   (and alignment) the caller allocated with. A C library that has them
//!   implements them with its own `free`, which must not see our blocks.
//!   The size is not trusted (the block's own size is found as `free`
//!   finds it), so a wrong one is harmless.

#[cfg(target_env = "gnu")]
use crate::aligned;
use crate::alloc;
use core::ffi::c_void;

/// # Safety
/// As `malloc`.
#[cfg(target_env = "gnu")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_malloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { alloc::malloc(size) }
}

/// # Safety
/// As `free`.
#[cfg(target_env = "gnu")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_free(p: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { alloc::free(p) }
}

/// # Safety
/// As `calloc`.
#[cfg(target_env = "gnu")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_calloc(n: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { alloc::calloc(n, size) }
}

/// # Safety
/// As `realloc`.
#[cfg(target_env = "gnu")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { alloc::realloc(p, size) }
}

/// # Safety
/// As `memalign`.
#[cfg(target_env = "gnu")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_memalign(align: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { aligned::memalign(align, size) }
}

/// # Safety
/// As `valloc`.
#[cfg(target_env = "gnu")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_valloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { aligned::valloc(size) }
}

/// # Safety
/// As `pvalloc`.
#[cfg(target_env = "gnu")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_pvalloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { aligned::pvalloc(size) }
}

/// C23's `free_sized`: `free(p)`; `size` is not trusted.
///
/// # Safety
/// As `free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free_sized(p: *mut c_void, _size: usize) {
    // SAFETY: forwarded contract.
    unsafe { alloc::free(p) }
}

/// C23's `free_aligned_sized`: `free(p)`; `align` and `size` are not
/// trusted.
///
/// # Safety
/// As `free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, _align: usize, _size: usize) {
    // SAFETY: forwarded contract.
    unsafe { alloc::free(p) }
}

//! `malloc_usable_size` and `malloc_trim`.

use core::ffi::{c_int, c_void};
use slabpool::raw;

/// The bytes usable at `p` (its block's real size, at least what was
/// asked); 0 for NULL. Aborts with a message if `p` is not a live block.
///
/// # Safety
/// `p` is null or a live block of this allocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    raw::usable_size(p.cast())
}

/// Returns free memory to the OS (`slabpool::collect`); `pad` is ignored.
/// 1 if committed memory went down, 0 otherwise (as glibc).
///
/// # Safety
/// Callable from C at any time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_trim(_pad: usize) -> c_int {
    let before = slabpool::stats().committed;
    slabpool::collect();
    c_int::from(slabpool::stats().committed < before)
}

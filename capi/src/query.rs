//! `malloc_usable_size`, `malloc_trim` and `malloc_stats`.

use core::ffi::{c_int, c_void};
use core::fmt;
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

/// Prints slabpool's statistics to stderr: the summary and the per-class
/// table that `SLABPOOL_SHOW_STATS` prints at exit (glibc's prints its
/// arenas, which hold nothing of the program's under the preload).
/// Formatting never allocates.
///
/// # Safety
/// Callable from C at any time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_stats() {
    let _ = slabpool::stats().write_table(&mut Stderr);
}

/// Unbuffered `write(2)` to stderr, for `malloc_stats`.
struct Stderr;

impl fmt::Write for Stderr {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s.as_bytes();
        while !rest.is_empty() {
            // SAFETY: `rest` is valid for `rest.len()` bytes.
            let n = unsafe { libc::write(libc::STDERR_FILENO, rest.as_ptr().cast(), rest.len()) };
            if n <= 0 {
                return Err(fmt::Error);
            }
            rest = &rest[n as usize..];
        }
        Ok(())
    }
}

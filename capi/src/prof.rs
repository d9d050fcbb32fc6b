//! The heap profiler through the C ABI (`prof` feature): the functions of
//! `slabpool::prof`, for C programs and for any program run under
//! `LD_PRELOAD` (which may also use `SLABPOOL_PROF=1`,
//! `SLABPOOL_PROF_SAMPLE` and `SLABPOOL_PROF_DUMP=path` alone).
//!
//! Dumping allocates (through this library): call it outside signal
//! handlers, as any allocation.

use core::ffi::{CStr, c_char, c_int};
use slabpool::prof;

/// The path at `path`, if it is a valid string.
///
/// # Safety
/// `path` is null or a NUL-terminated string.
unsafe fn path_of<'a>(path: *const c_char) -> Option<&'a str> {
    if path.is_null() {
        return None;
    }
    // SAFETY: by contract, a NUL-terminated string.
    unsafe { CStr::from_ptr(path) }.to_str().ok()
}

/// Starts sampling allocations; 0 on success, -1 if the profiler could not
/// map its memory.
///
/// # Safety
/// Callable from C at any time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn slabpool_prof_activate() -> c_int {
    if prof::activate() { 0 } else { -1 }
}

/// Stops sampling new allocations (blocks sampled so far are followed).
///
/// # Safety
/// Callable from C at any time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn slabpool_prof_deactivate() {
    prof::deactivate();
}

/// Makes the current live heap the peak.
///
/// # Safety
/// Callable from C at any time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn slabpool_prof_reset_peak() {
    prof::reset_peak();
}

/// Writes the live heap profile (gzip-compressed pprof) to `path`; 0 on
/// success, -1 on failure.
///
/// # Safety
/// `path` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn slabpool_prof_dump(path: *const c_char) -> c_int {
    // SAFETY: forwarded contract.
    match unsafe { path_of(path) } {
        Some(p) if prof::dump(p).is_ok() => 0,
        _ => -1,
    }
}

/// Writes the peak heap profile to `path`; 0 on success, -1 on failure.
///
/// # Safety
/// `path` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn slabpool_prof_dump_peak(path: *const c_char) -> c_int {
    // SAFETY: forwarded contract.
    match unsafe { path_of(path) } {
        Some(p) if prof::dump_peak(p).is_ok() => 0,
        _ => -1,
    }
}

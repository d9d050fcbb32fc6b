//! slabpool as a C ABI shared library, `libslabpool.so`: the malloc family
//! with glibc's semantics, for `LD_PRELOAD` or linking, as a thin layer over
//! `slabpool::raw` (the pointer-only API).
//!
//! - `malloc`: C alignment (8 bytes up to 8 bytes, 16 above: `max_align_t`;
//!   slabpool's classes of 24, 40 and 56 bytes are only 8-aligned, so a
//!   request above 8 bytes asks for 16);
//! - `errno` (`errno`): ENOMEM on every allocation failure, EINVAL for a
//!   bad alignment where glibc gives it; `free` never changes `errno`;
//! - `alloc`: `malloc`, `calloc`, `realloc`, `reallocarray`, `free`, `cfree`;
//! - `aligned`: `posix_memalign`, `aligned_alloc`, `memalign`, `valloc`,
//!   `pvalloc`;
//! - `query`: `malloc_usable_size`, `malloc_trim`, `malloc_stats`;
//! - `glibc`: glibc's `__libc_malloc` family (glibc only) and C23's
//!   `free_sized`, `free_aligned_sized`;
//! - `cpp`: C++'s `operator new` and `operator delete` (x86_64);
//! - `prof` (the `prof` feature): the heap profiler's `slabpool_prof_*`.
//!
//! Only this crate exports C symbols; the `slabpool` library never does.
//! Nothing here unwinds: the release profile aborts on panic, and a panic
//! cannot leave an `extern "C"` function anyway (it aborts). Nothing here
//! allocates through Rust's global allocator (this library *is* the
//! allocator of the process it is loaded into).
//!
//! First calls: the dynamic loader and libc call `malloc` before `main` and
//! before any Rust runtime setup. slabpool's statics are `const`, its
//! one-time setup (environment, `pthread_atfork`, the thread-exit key) runs
//! on the first slow path and bypasses the thread cache while it runs, and
//! its thread cache is initial-exec TLS (feature `initial-exec-tls`, on by
//! default): no `__tls_get_addr`, which may itself call `malloc`.

// No Rust runtime in the library built to abort on panic (the release
// profile: see `slabpool`'s crate attributes), so no unwinder, backtrace
// printer or libgcc_s is loaded into the program: a panic (none is
// expected) aborts at once. A build that unwinds (the dev profile) needs
// std's panic runtime; so does the heap profiler's pprof output.
#![cfg_attr(
    all(
        feature = "initial-exec-tls",
        target_arch = "x86_64",
        target_os = "linux",
        panic = "abort",
        not(any(test, feature = "prof"))
    ),
    no_std
)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod aligned;
mod alloc;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod cpp;
mod errno;
mod glibc;
#[cfg(feature = "prof")]
mod prof;
mod query;
#[cfg(all(
    feature = "initial-exec-tls",
    target_arch = "x86_64",
    target_os = "linux",
    panic = "abort",
    not(any(test, feature = "prof"))
))]
mod runtime;

/// The alignment C's `malloc(size)` guarantees: that of any object that fits
/// (`max_align_t` is 16 bytes on x86_64 and aarch64 Linux).
#[inline(always)]
fn c_align(size: usize) -> usize {
    if size <= 8 { 8 } else { 16 }
}

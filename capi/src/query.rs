//! `malloc_usable_size`, `malloc_trim`, `malloc_stats`, and glibc's
//! `mallinfo2` and `mallinfo`.

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

/// Prints slabpool's statistics to stderr: the table that
/// `SLABPOOL_SHOW_STATS` prints at exit (`raw::print_stats`; glibc's
/// prints its arenas, which hold nothing of the program's under the
/// preload). Never allocates.
///
/// # Safety
/// Callable from C at any time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_stats() {
    raw::print_stats();
}

/// glibc's `struct mallinfo2`: the same fields as `struct mallinfo`, as
/// `size_t`.
#[cfg(target_env = "gnu")]
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct MallInfo2 {
    arena: usize,
    ordblks: usize,
    smblks: usize,
    hblks: usize,
    hblkhd: usize,
    usmblks: usize,
    fsmblks: usize,
    uordblks: usize,
    fordblks: usize,
    keepcost: usize,
}

/// slabpool's figures in glibc's fields (glibc's would describe its own
/// arenas, which hold nothing of the program's under the preload):
/// `arena`, the bytes that may be resident (`Stats::committed`);
/// `uordblks`, the bytes in blocks the program holds (`Stats::allocated`);
/// `fordblks`, the rest of `arena`; `hblks`, the live huge blocks (each
/// its own mapping, counted in `arena`). The fields glibc's heap alone
/// has (`ordblks`, `smblks`, `hblkhd`, `usmblks`, `fsmblks`, `keepcost`)
/// are 0.
///
/// # Safety
/// Callable from C at any time.
#[cfg(target_env = "gnu")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mallinfo2() -> MallInfo2 {
    let s = slabpool::stats();
    MallInfo2 {
        arena: s.committed,
        hblks: s.huge_blocks,
        uordblks: s.allocated,
        fordblks: s.committed.saturating_sub(s.allocated),
        ..MallInfo2::default()
    }
}

/// glibc's `struct mallinfo` (`int` fields).
#[cfg(target_env = "gnu")]
#[repr(C)]
pub struct MallInfo {
    fields: [c_int; 10],
}

/// [`mallinfo2`] with each field clamped to `int`, as glibc's older call.
///
/// # Safety
/// Callable from C at any time.
#[cfg(target_env = "gnu")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mallinfo() -> MallInfo {
    // SAFETY: no precondition.
    let i = unsafe { mallinfo2() };
    let all = [
        i.arena, i.ordblks, i.smblks, i.hblks, i.hblkhd, i.usmblks, i.fsmblks, i.uordblks,
        i.fordblks, i.keepcost,
    ];
    MallInfo {
        fields: all.map(|v| c_int::try_from(v).unwrap_or(c_int::MAX)),
    }
}

//! Where each thread's cache lives: a `thread_local!` with a `const`
//! initialiser and no destructor, or (the C library) a zero-filled
//! initial-exec TLS object reached from the thread pointer in two
//! instructions; and the one accessor, [`tcache`], whose contract says how
//! long its reference may live.

use crate::tcache::ThreadCache;
#[cfg(not(all(
    feature = "initial-exec-tls",
    target_arch = "x86_64",
    target_os = "linux"
)))]
use core::cell::UnsafeCell;

#[cfg(not(all(
    feature = "initial-exec-tls",
    target_arch = "x86_64",
    target_os = "linux"
)))]
thread_local! {
    static TCACHE: UnsafeCell<ThreadCache> = const { UnsafeCell::new(ThreadCache::new()) };
}

/// The calling thread's cache.
///
/// # Safety
/// The result must not outlive the allocator call that took it, and no
/// other reference to the thread's cache may be alive while it lives (the
/// allocator never re-enters itself, so a call takes it once and passes it
/// down).
#[cfg(not(all(
    feature = "initial-exec-tls",
    target_arch = "x86_64",
    target_os = "linux"
)))]
#[inline(always)]
pub(crate) unsafe fn tcache<'a>() -> &'a mut ThreadCache {
    // SAFETY: the cache is this thread's own; exclusive by the contract. A
    // const-initialised thread local without destructor is valid for the
    // thread's whole life, including its TLS destructors.
    TCACHE.with(|tc| unsafe { &mut *tc.get() })
}

/// The calling thread's cache, in initial-exec TLS (as [`tcache`] above).
///
/// # Safety
/// As for the `thread_local!` version: the result must not outlive the
/// allocator call, and no other reference to the cache may be alive.
#[cfg(all(
    feature = "initial-exec-tls",
    target_arch = "x86_64",
    target_os = "linux"
))]
#[inline(always)]
pub(crate) unsafe fn tcache<'a>() -> &'a mut ThreadCache {
    // SAFETY: the address is this thread's zero-filled cache (see
    // `initial_exec`), valid for the thread's whole life; all-zero bytes are
    // a valid `ThreadCache` (integers, raw pointers and a `CacheState`, whose
    // 0 is `Uninit`) that reads as `Uninit` with empty lists and zero
    // limits, and `activate` makes it
    // `ThreadCache::new()` before its first use. Exclusive by the contract.
    unsafe { &mut *initial_exec::cache() }
}

/// The thread cache of a shared library (the C ABI's `libslabpool.so`).
///
/// A `thread_local!` in a shared library uses the general-dynamic TLS
/// model: every access calls `__tls_get_addr`, which costs a third of a
/// malloc+free pair and may itself call `malloc` (to grow the thread's TLS
/// vector after a `dlopen`). The initial-exec model instead reads the
/// variable's offset from the thread pointer out of the GOT: two
/// instructions, no call. Its price is a place in the static TLS block, so
/// a library using it must be loaded at start-up (`LD_PRELOAD` or linked),
/// not `dlopen`ed. Stable Rust has no `#[thread_local]` with a TLS model,
/// so the variable is a zero-filled `.tbss` object defined in assembly, and
/// its address is computed in assembly; elsewhere `thread_local!` is used.
#[cfg(all(
    feature = "initial-exec-tls",
    target_arch = "x86_64",
    target_os = "linux"
))]
mod initial_exec {
    use crate::tcache::ThreadCache;

    core::arch::global_asm!(
        ".pushsection .tbss.slabpool_tcache,\"awT\",@nobits",
        ".globl slabpool_tcache",
        ".hidden slabpool_tcache",
        ".type slabpool_tcache,@object",
        ".p2align {align_log2}",
        "slabpool_tcache:",
        ".zero {size}",
        ".size slabpool_tcache, {size}",
        ".popsection",
        size = const size_of::<ThreadCache>(),
        align_log2 = const align_of::<ThreadCache>().trailing_zeros(),
    );

    /// This thread's cache: the thread pointer plus the variable's offset.
    #[inline(always)]
    pub fn cache() -> *mut ThreadCache {
        let p: *mut ThreadCache;
        // SAFETY: reads the GOT slot the dynamic linker filled with the
        // variable's offset from the thread pointer (an R_X86_64_TPOFF64
        // relocation), and adds the thread pointer, which `fs:0` holds on
        // x86_64 Linux (the TLS ABI). Nothing is written; the result only
        // depends on the calling thread, so it may be reused (pure, nomem).
        unsafe {
            core::arch::asm!(
                "mov {p}, qword ptr [rip + slabpool_tcache@GOTTPOFF]",
                "add {p}, qword ptr fs:[0]",
                p = out(reg) p,
                options(pure, nomem, nostack),
            );
        }
        p
    }
}

//! The process's and the threads' lifecycle around the allocator: the
//! one-time setup (settings, the thread-exit key, fork handlers, the
//! statistics at exit, pinning a shared object that embeds slabpool), a
//! thread cache's registration, its flush at thread exit, and `fork`.

use super::{Config, HEAP, stats, tcache};
use crate::config;
use crate::guard;
use crate::os;
use crate::sync::{AtomicUsize, Ordering};
use crate::tcache::{CacheState, ThreadCache};
use core::fmt::Write;
use core::ptr;

/// `atexit` handler for `SLABPOOL_SHOW_STATS=1`.
extern "C" fn print_stats_at_exit() {
    print_stats();
}

/// Prints the statistics table (and the guard pool's line when sampling
/// is on) to stderr, without allocating: what `SLABPOOL_SHOW_STATS=1`
/// prints at exit, and the C library's `malloc_stats`.
pub fn print_stats() {
    let mut out = os::StderrWriter::new();
    // Formatting into a stack buffer cannot fail but for a full pipe.
    let _ = stats().write_table(&mut out);
    let g = guard::guard_stats();
    if g.sample != 0 {
        let _ = writeln!(
            out,
            "  guard pool: 1 in {} sampled, {} guarded blocks handed out, {} live, {} freed slots protected, {} chunks",
            g.sample, g.guarded, g.live, g.freed, g.chunks
        );
    }
}

/// `atexit` handler of the hardened build: the exiting thread's quarantine
/// is checked for writes after free (other threads' are at their exit).
#[cfg(feature = "hardened")]
extern "C" fn check_quarantine_at_exit() {
    // SAFETY: the only reference to the thread's cache in this call.
    let tc = unsafe { tcache() };
    if tc.state() == CacheState::Active {
        tc.check_quarantine();
    }
}

/// Key whose destructor flushes a thread's cache, plus one; 0 until
/// created, [`KEY_FAILED`] if it could not be, and [`KEY_CREATING`] with
/// the creating process's id while the process is being set up.
static EXIT_KEY: AtomicUsize = AtomicUsize::new(0);
const KEY_FAILED: usize = usize::MAX - 1;
/// The set-up's mark (a pid is positive and below 2^31, so the mark is
/// neither a key nor [`KEY_FAILED`]).
const KEY_CREATING: usize = 1 << (usize::BITS - 1);

/// The calling process's id (by the system call itself: the C library's
/// wrapper would fault in its code around it for this one call).
fn pid() -> usize {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::syscall(libc::SYS_getpid) as usize }
}

/// Returns the exit key plus one (0 when it cannot be created). The first
/// call sets the process up, with `config`.
///
/// A process forked while another of its threads was setting it up (the
/// first allocation of a program that forks as its threads start) has the
/// set-up's mark but not the thread that would finish it: it goes on
/// without the key (its threads do not cache) rather than wait forever.
/// The C library sets the process up before `main` (`SET_UP_AT_LOAD`).
pub(super) fn exit_key(config: &Config) -> usize {
    loop {
        match EXIT_KEY.load(Ordering::Acquire) {
            0 => {
                if EXIT_KEY
                    .compare_exchange(
                        0,
                        KEY_CREATING | pid(),
                        Ordering::Acquire,
                        Ordering::Acquire,
                    )
                    .is_ok()
                {
                    config::init(config);
                    // Where the profiler's sampled blocks can live (before
                    // any thread cache is activated).
                    #[cfg(feature = "prof")]
                    crate::tcache::set_floor();
                    #[cfg(feature = "prof")]
                    if config::environment_applies(config) {
                        crate::prof::configure(
                            config::env_u32(c"SLABPOOL_PROF").is_some_and(|v| v != 0),
                            config::env_u32(c"SLABPOOL_PROF_SAMPLE"),
                            config::env_bytes(c"SLABPOOL_PROF_DUMP"),
                        );
                    }
                    os::init_page_size();
                    if config::show_stats() {
                        // SAFETY: an `extern "C"` fn without arguments.
                        unsafe { libc::atexit(print_stats_at_exit) };
                    }
                    #[cfg(feature = "hardened")]
                    // SAFETY: as above.
                    unsafe {
                        libc::atexit(check_quarantine_at_exit)
                    };
                    let mut key: libc::pthread_key_t = 0;
                    // SAFETY: `key` is a valid out-pointer; the destructor
                    // and fork handlers are `extern "C"` fns with the
                    // expected signatures.
                    let ok = unsafe {
                        libc::pthread_atfork(
                            Some(fork_prepare),
                            Some(fork_parent),
                            Some(fork_child),
                        );
                        libc::pthread_key_create(&mut key, Some(thread_exit))
                    } == 0;
                    let value = if ok { key as usize + 1 } else { KEY_FAILED };
                    EXIT_KEY.store(value, Ordering::Release);
                    // After the key is published: `dlopen` may wait for the
                    // loader's lock, and nobody may wait for us meanwhile.
                    pin_library();
                }
            }
            KEY_FAILED => return 0,
            v if v & KEY_CREATING != 0 => {
                if v != KEY_CREATING | pid() {
                    return 0;
                }
                crate::sync::spin_loop();
            }
            v => return v,
        }
    }
}

/// The C library sets the process up when it is loaded, before `main` and
/// before any thread of the program exists: a thread's first `malloc`
/// racing a `fork` (musl's threads start without one, so the first may be
/// theirs) then never leaves a child with a set-up begun by a thread it
/// does not have. It does so as the first `malloc` would, by activating
/// the loading thread's cache with the C door's configuration (the
/// built-in one, read with the environment): the C library's own
/// allocations during the set-up (musl's `pthread_atfork` takes one) find
/// that cache registering and bypass it.
#[cfg(all(feature = "c-malloc", target_os = "linux", not(loom)))]
#[used]
#[unsafe(link_section = ".init_array")]
static SET_UP_AT_LOAD: extern "C" fn() = {
    extern "C" fn set_up() {
        // SAFETY: the only reference to the thread's cache in this call.
        let tc = unsafe { tcache() };
        activate(tc, &super::DEFAULTS);
    }
    set_up
};

/// Keeps the shared object holding this code loaded until the process
/// exits, by opening it again with `RTLD_NODELETE` (a no-op for the main
/// program). Called once, at the one-time setup.
///
/// Why pin rather than clean up at unload: a `dlclose`d library must leave
/// nothing behind that points into it, and slabpool leaves the
/// `pthread_key_create` destructor (run by every thread that used the
/// allocator when it exits, perhaps long after the `dlclose`), the
/// `pthread_atfork` handlers, and the thread caches, which hold blocks of
/// its heap. Deleting the key in a destructor of the library would still
/// race with a thread that has begun to exit (glibc reads the destructor's
/// address before calling it, and the unmap may fall in between), and
/// every load and unload would leak the heap (its segments, the caches of
/// live threads, the huge cache). Pinned, the library stays with its heap,
/// which a later `dlopen` of the same file finds again; the price is that
/// a plugin using slabpool is never unmapped (a host cannot reload a new
/// build of it under the same path), as with other libraries that own
/// thread-exit hooks (glibc's own libpthread was `-z nodelete`).
///
/// `dladdr` and `dlopen` allocate with the C `malloc`, which is not this
/// allocator in a Rust library (so nothing re-enters slabpool). The C ABI
/// library (`c-malloc` feature) is the C `malloc`, is loaded at start-up
/// and never unloaded, and may first be called from inside the dynamic
/// loader, where calling `dlopen` is not safe: it does not pin itself.
#[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "c-malloc")))]
fn pin_library() {
    // SAFETY: `Dl_info` is plain old data; all zero bytes is a valid value.
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    let here = thread_exit as extern "C" fn(*mut libc::c_void);
    // SAFETY: `info` is a valid out-pointer; the address is a function of
    // this object.
    if unsafe { libc::dladdr(here as *const libc::c_void, &mut info) } == 0
        || info.dli_fname.is_null()
    {
        return;
    }
    // The main program (whose program headers the kernel reports) is
    // never unloaded.
    // SAFETY: `Dl_info` is plain old data; all zero bytes is a valid value.
    let mut main: libc::Dl_info = unsafe { core::mem::zeroed() };
    // SAFETY: getauxval has no preconditions; dladdr only reads the
    // loader's tables for the address, and `main` is a valid out-pointer.
    let found = unsafe {
        let phdr = libc::getauxval(libc::AT_PHDR) as *const libc::c_void;
        libc::dladdr(phdr, &mut main)
    };
    if found != 0 && main.dli_fbase == info.dli_fbase {
        return;
    }
    // SAFETY: `dli_fname` is the NUL-terminated name of the object loaded
    // at `dli_fbase`; RTLD_NOLOAD only finds it, it loads nothing new.
    let handle = unsafe {
        libc::dlopen(
            info.dli_fname,
            libc::RTLD_LAZY | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
        )
    };
    if handle.is_null() {
        os::warn(b"could not pin the shared object holding slabpool: do not dlclose it");
        return;
    }
    // The count that `dlopen` took is not needed: RTLD_NODELETE stays.
    // SAFETY: `handle` came from the `dlopen` above.
    unsafe { libc::dlclose(handle) };
}

/// Elsewhere (musl never unloads a library; the C ABI library is never
/// unloaded) nothing needs pinning.
#[cfg(not(all(target_os = "linux", target_env = "gnu", not(feature = "c-malloc"))))]
fn pin_library() {}

/// Registers the calling thread for the exit flush and activates its cache
/// (the process's first call sets it up with `config`). Returns false when
/// the cache must be bypassed (re-entered while registering, or the thread
/// is exiting).
#[cold]
pub(super) fn activate(tc: &mut ThreadCache, config: &Config) -> bool {
    if tc.state() != CacheState::Uninit {
        return tc.state() == CacheState::Active;
    }
    // A cache in initial-exec TLS starts as zero bytes: make it the real
    // initial value (a no-op for the `thread_local!` one).
    *tc = ThreadCache::new();
    tc.set_state(CacheState::Registering);
    let key = exit_key(config);
    if key == 0 {
        // No way to learn of this thread's exit: do not cache at all.
        tc.set_state(CacheState::Dead);
        return false;
    }
    // SAFETY: `key` is a live pthread key; the value only needs to be
    // non-null for the destructor to run.
    let ok = unsafe {
        libc::pthread_setspecific(
            (key - 1) as libc::pthread_key_t,
            ptr::dangling::<u8>().cast(),
        )
    } == 0;
    if !ok {
        tc.set_state(CacheState::Dead);
        return false;
    }
    tc.activate(&HEAP, HEAP.assign_arena());
    #[cfg(feature = "prof")]
    crate::prof::thread_started(tc);
    true
}

/// `fork` prepare handler: holds every heap lock across the fork, so the
/// child never inherits a lock taken by a thread that does not exist there.
extern "C" fn fork_prepare() {
    // SAFETY: released by `fork_parent` and `fork_child`. No path holds the
    // guard pool's lock while it takes a heap lock, or the reverse.
    unsafe {
        HEAP.lock_all();
        guard::fork_lock();
        #[cfg(feature = "prof")]
        crate::prof::fork_lock();
    }
}

/// `fork` handler in the parent.
extern "C" fn fork_parent() {
    // SAFETY: `fork_prepare` took the locks on this thread before the fork.
    unsafe {
        #[cfg(feature = "prof")]
        crate::prof::fork_unlock(false);
        guard::fork_unlock();
        HEAP.unlock_all();
    }
}

/// `fork` handler in the child.
extern "C" fn fork_child() {
    // SAFETY: `fork_prepare` took the locks on this thread before the fork;
    // the child's copy of them is held by this, its only, thread.
    unsafe {
        #[cfg(feature = "prof")]
        crate::prof::fork_unlock(true);
        guard::fork_unlock();
        HEAP.unlock_all();
    }
    // SAFETY: the only reference to the thread's cache in this call.
    let tc = unsafe { tcache() };
    HEAP.after_fork_in_child((tc.state() == CacheState::Active).then(|| tc.arena()));
}

/// pthread key destructor: flushes the exiting thread's cache.
extern "C" fn thread_exit(_value: *mut libc::c_void) {
    // SAFETY: the only reference to the thread's cache in this call.
    let tc = unsafe { tcache() };
    super::flush_cache(tc);
    tc.set_state(CacheState::Dead);
    HEAP.thread_exited(tc.arena());
}

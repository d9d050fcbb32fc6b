//! Stack capture for samples: frame-pointer walking that never allocates,
//! never takes a lock and never faults.
//!
//! With frame pointers (x86_64's `rbp`, aarch64's `x29`), each frame
//! starts with the caller's frame pointer and the return address. The walk
//! follows that chain from its own frame and keeps the return addresses of
//! the frames above `above` (the stack pointer of the allocator's function
//! that called the profiler: the allocator's own frames are left out, and
//! the first frame kept is the program's call into the allocator), at most
//! [`MAX_DEPTH`].
//!
//! Safety of the walk, without knowing the thread's stack bounds (glibc's
//! `pthread_getattr_np` allocates and reads `/proc` for the main thread):
//! a frame pointer must be aligned, above the previous one by less than
//! [`MAX_FRAME`], and readable. Readability is proven without a fault: the
//! walk's own stack page is readable, and a pair of words on any other page
//! is read with `process_vm_readv` on the calling process (the kernel
//! returns `EFAULT` for memory that is not readable, instead of a signal);
//! once a page has been read that way, the next frames on the same page
//! are read directly. A typical stack costs a few system calls per sample,
//! at most [`MAX_CHECKED_PAGES`], and samples are rare (one per 512 KiB
//! allocated by default).
//!
//! Code built without frame pointers (Rust's default in release builds)
//! uses the register for other values: the walk stops at the first value
//! that fails the checks above, so stacks are cut short or miss frames,
//! never wrong memory read. Profiled programs are built with
//! `RUSTFLAGS="-C force-frame-pointers=yes"` (README, "Heap profiling");
//! libunwind-style unwinding from DWARF tables is not used: libgcc's
//! `_Unwind_Backtrace` finds the tables through `dl_iterate_phdr`, which
//! takes the loader's lock and may allocate, the deadlocks and crashes
//! jemalloc's profiler is known for.
//!
//! Invariants: nothing here writes memory but `out` and its own locals.

use crate::sync::Ordering::Relaxed;
use crate::sync::unmodeled::AtomicI32;

pub use super::MAX_DEPTH;
/// The largest step between two frame pointers the walk follows.
const MAX_FRAME: usize = 16 << 20;
/// Pages a walk reads through `process_vm_readv` at most (a system call
/// each): 64 frames of a real chain lie on a few pages, but code built
/// without frame pointers leaves values in the register that may lead the
/// walk from page to page, a system call per step, for up to 256 steps.
const MAX_CHECKED_PAGES: usize = 16;
const PAGE: usize = crate::os::PAGE;

/// The process's id for `process_vm_readv` (refreshed after `fork`).
static PID: AtomicI32 = AtomicI32::new(0);

/// Learns the process id (at activation and in a forked child).
pub fn refresh_pid() {
    // SAFETY: getpid has no preconditions.
    PID.store(unsafe { libc::getpid() }, Relaxed);
}

/// The calling function's frame pointer.
#[inline(always)]
fn frame_pointer() -> usize {
    let fp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads a register; nothing else.
    unsafe {
        core::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads a register; nothing else.
    unsafe {
        core::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        fp = 0;
    }
    fp
}

/// The calling function's stack pointer: a sample's stack keeps only the
/// frames above it (the allocator's own frames are left out).
#[inline(always)]
pub fn stack_pointer() -> usize {
    let sp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads a register; nothing else.
    unsafe {
        core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads a register; nothing else.
    unsafe {
        core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        sp = 0;
    }
    sp
}

/// Reads the two words at `addr` (8-aligned) without faulting: `None` if
/// they are not readable.
fn read_pair_checked(addr: usize) -> Option<[usize; 2]> {
    let mut pair = [0usize; 2];
    let local = libc::iovec {
        iov_base: pair.as_mut_ptr().cast(),
        iov_len: 16,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: 16,
    };
    let pid = PID.load(Relaxed);
    if pid == 0 {
        return None;
    }
    // SAFETY: `local` describes `pair`, 16 writable bytes; the kernel reads
    // `remote` from this process and reports unreadable memory as an error.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    (n == 16).then_some(pair)
}

/// Fills `out` with the return addresses of the calling thread's frames
/// whose frame pointer lies above `above`, innermost first; returns how
/// many.
#[inline(never)]
pub fn capture(out: &mut [usize; MAX_DEPTH], above: usize) -> usize {
    let mut fp = frame_pointer();
    // The page of this frame is this thread's stack, readable.
    let here = core::ptr::addr_of!(fp) as usize;
    let mut readable_page = here & !(PAGE - 1);
    let mut n = 0;
    let mut steps = 0;
    let mut checked = 0;
    while n < MAX_DEPTH && steps < 4 * MAX_DEPTH && fp != 0 {
        steps += 1;
        if fp % 8 != 0 || fp < here {
            break;
        }
        let pair = if fp & !(PAGE - 1) == readable_page && (fp + 15) & !(PAGE - 1) == readable_page
        {
            // SAFETY: the two words lie on a page known to be readable (the
            // walk's own stack page, or one `read_pair_checked` read), which
            // stays mapped: it is this thread's stack, in use below us.
            unsafe { [*(fp as *const usize), *((fp + 8) as *const usize)] }
        } else {
            checked += 1;
            if checked > MAX_CHECKED_PAGES {
                break;
            }
            match read_pair_checked(fp) {
                Some(pair) => {
                    readable_page = fp & !(PAGE - 1);
                    pair
                }
                None => break,
            }
        };
        let [next, ret] = pair;
        if ret == 0 {
            break;
        }
        if fp > above {
            out[n] = ret;
            n += 1;
        }
        if next <= fp || next - fp > MAX_FRAME {
            break;
        }
        fp = next;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_never_reads_past_bad_pointers() {
        refresh_pid();
        assert_eq!(read_pair_checked(8), None, "page zero is never readable");
        let words = [1usize, 2];
        assert_eq!(read_pair_checked(words.as_ptr() as usize), Some([1, 2]));
        let mut out = [0; MAX_DEPTH];
        // Whatever the build's frame pointers, the walk ends.
        let n = capture(&mut out, 0);
        assert!(n <= MAX_DEPTH);
    }
}

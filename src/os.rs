//! OS layer: the only module that asks the kernel for memory.
//!
//! Memory that backs requests (segments, huge blocks) is mapped read-write
//! *without* `MAP_NORESERVE`, so the kernel's overcommit policy applies to
//! it: a mapping the machine cannot back fails here, at `mmap`, and the
//! request fails with null (C: ENOMEM) as glibc's would, instead of
//! succeeding and dying by the OOM killer on first touch. Pages are still
//! committed page by page on first touch; [`decommit`] gives them back with
//! `MADV_DONTNEED` (not `MADV_FREE`, which leaves RSS looking high until
//! memory pressure).
//!
//! Aligned reservations ([`reserve`], [`reserve_placed`]) first try a plain
//! mapping of the size asked (often aligned already, as the kernel places
//! mappings next to each other); otherwise they over-reserve `PROT_NONE`
//! (address space only: not commit-charged), trim the excess with `munmap`
//! and make only the part asked for read-write with `mprotect`, which is
//! where the commit charge applies. So an alignment of 2^40 costs 2^40
//! bytes of address space for a moment, never of commit charge, and only
//! the block's own pages stay. [`reserve_address`] is such a `PROT_NONE`
//! range for `mremap` to move pages onto.
//!
//! Nothing here uses `MAP_NORESERVE`: the one pure address-space
//! reservation slabpool had (the chunk registry's 32 MiB map, which never
//! backs a request) is gone (see `registry`); should one come back, it is
//! the only kind of mapping that may use it.
//!
//! Nothing here allocates or prints through std; failures return `None` or
//! `false` and the caller turns them into a null pointer (after releasing
//! what the heap holds and retrying once: `Backend::release_for_retry`).
//!
//! ## Two page sizes
//!
//! [`PAGE`] (4 KiB) is slabpool's own unit, and [`page_size`] the kernel's
//! base page (4, 16 or 64 KiB on aarch64 Linux), read once at start-up
//! (`getauxval(AT_PAGESZ)`, `sysconf` as a fallback) into a static that is
//! read with a relaxed load, never on the thread cache's or the C door's
//! fast paths. As mimalloc's slices, slabpool's pages are bookkeeping only;
//! every operation the kernel applies by its own page uses the OS page:
//!
//! - slabpool's 4 KiB [`PAGE`]: spans, slab geometry (size classes and
//!   their slab pages), the segment's page map, span records and dirty
//!   bitmap (a bit per 4 KiB: a clean page still reads as zero when a
//!   neighbour in its OS page was touched, so only the committed-memory
//!   figure becomes a lower bound), large-block sizes, a huge block's
//!   header page and page rounding, the registry's leaves, the profiler's
//!   frame-pointer walk (a 4 KiB page inside a readable page is readable);
//! - the OS page: every `madvise` range (decommit gives back only the whole
//!   OS pages inside a range, start rounded up and end rounded down:
//!   [`whole_pages`]; a segment widens its dirty runs to whole OS pages of
//!   the free range, a slab parks and purges only pages whose whole OS page
//!   is idle and inside it, the hardened build's zero on free decommits the
//!   whole OS pages of a huge block and writes zeros over the rest), every
//!   `mprotect` range (the guard pool's chunk layout, the hardened segment's
//!   guard after its header, the profiler's slots), and `mmap` sizes and
//!   alignments (rounded up to the OS page here). The C library's `valloc`
//!   and `pvalloc` round to it too.
//!
//! Where geometry changes with the page it is computed from [`page_size`]
//! at run time (the guard pool's slots, the profiler's smallest slot), or
//! laid out for [`MAX_OS_PAGE`] where a compile-time bound is needed (the
//! hardened segment's first span: after the header, the next 64 KiB
//! boundary and a 64 KiB guard). Each such computation takes the page size
//! as an argument, so its unit tests run it with 4, 16 and 64 KiB.

use crate::sync::Ordering::Relaxed;
use crate::sync::unmodeled::AtomicUsize;
use core::ptr::{self, NonNull};

/// slabpool's page: the unit of spans, slab geometry, the page map and the
/// dirty bitmap (bookkeeping only). The kernel's page may be larger: see
/// [`page_size`].
pub const PAGE: usize = 4096;
pub const PAGE_SHIFT: u32 = PAGE.trailing_zeros();
/// The largest OS page the compile-time geometry is laid out for (the
/// hardened segment's header guard; the guard pool's slot records): 64 KiB,
/// aarch64's largest base page. With a larger one slabpool still runs and
/// returns memory, without those guard pages.
pub const MAX_OS_PAGE: usize = 64 << 10;

/// Rounds `n` up to a multiple of `align` (a power of two). Callers keep
/// `n + align` below `usize::MAX` (a `Layout` guarantees it).
#[inline(always)]
pub const fn align_up(n: usize, align: usize) -> usize {
    (n + align - 1) & !(align - 1)
}

/// The OS page in bytes; 0 until [`init_page_size`] has read it.
static OS_PAGE: AtomicUsize = AtomicUsize::new(0);

/// The kernel's base page in bytes (a power of two, at least [`PAGE`]):
/// read once, at start-up (`global`'s set-up calls [`init_page_size`]), or
/// by the first caller before it.
#[inline]
pub fn page_size() -> usize {
    match OS_PAGE.load(Relaxed) {
        0 => init_page_size(),
        page => page,
    }
}

/// Reads the kernel's page size into the static [`page_size`] returns:
/// `getauxval(AT_PAGESZ)`, else `sysconf(_SC_PAGESIZE)`, else (or if the
/// answer is not a power of two) 4 KiB; below 4 KiB, 4 KiB (a multiple of
/// it). Racing callers store the same value. Returns it.
#[cold]
pub fn init_page_size() -> usize {
    // SAFETY: getauxval has no preconditions; 0 if the entry is missing.
    let mut page = unsafe { libc::getauxval(libc::AT_PAGESZ) } as usize;
    if page == 0 {
        // SAFETY: sysconf has no memory-safety preconditions.
        page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(0);
    }
    let page = if page.is_power_of_two() {
        page.max(PAGE)
    } else {
        PAGE
    };
    if page > MAX_OS_PAGE {
        warn(b"OS page above 64 KiB: no guard pages (guard pool, hardened segment guard)");
    }
    OS_PAGE.store(page, Relaxed);
    page
}

/// The whole pages of `page` bytes (a power of two) inside `[start, end)`:
/// `start` rounded up and `end` rounded down to the page. The range is
/// empty (`start >= end` in the result) when no whole page lies inside.
/// What may be decommitted of a range whose OS pages at the ends may hold
/// live data.
#[inline]
pub const fn whole_pages(start: usize, end: usize, page: usize) -> (usize, usize) {
    (align_up(start, page), end & !(page - 1))
}

/// Maps `size` bytes aligned to `align` (a power of two, at least
/// [`PAGE`]), read-write and commit-charged; `size` (a multiple of [`PAGE`])
/// is rounded up to the OS page, as the kernel would. The memory reads as
/// zero. `None` when the kernel refuses (address space, overcommit).
pub fn reserve(size: usize, align: usize) -> Option<NonNull<u8>> {
    reserve_placed(size, align, 0)
}

/// As [`reserve`], placed so that `p + offset` is aligned to `align`
/// (`offset` a multiple of the OS page below `align`): a huge block's
/// mapping starts a chunk before its aligned block, and only that much is
/// mapped.
pub fn reserve_placed(size: usize, align: usize, offset: usize) -> Option<NonNull<u8>> {
    debug_assert!(size % PAGE == 0 && align.is_power_of_two() && align >= PAGE);
    debug_assert!(offset % page_size() == 0 && offset < align);
    let size = align_up(size, page_size());
    let placed = |p: usize| (p + offset) & (align - 1) == 0;
    // A plain mapping first: it may happen to be placed right.
    let p = map(size, libc::PROT_READ | libc::PROT_WRITE)?;
    if placed(p.as_ptr() as usize) {
        return Some(p);
    }
    // SAFETY: `p` is the mapping of `size` bytes made just above.
    unsafe { release(p.as_ptr(), size) };
    let start = reserve_range(size, align, offset)?;
    // Only now is the range committed (charged), and only `size` bytes.
    // SAFETY: [start, start + size) is our fresh PROT_NONE range.
    let ok = unsafe { libc::mprotect(start.cast(), size, libc::PROT_READ | libc::PROT_WRITE) } == 0;
    if !ok {
        warn(b"mprotect failed: out of memory (overcommit limit)");
        // SAFETY: the range is ours and unused.
        unsafe { release(start, size) };
        return None;
    }
    NonNull::new(start)
}

/// `size` bytes of address space aligned to `align`, `PROT_NONE` (not
/// commit-charged): a target for [`remap`], which replaces it.
pub fn reserve_address(size: usize, align: usize) -> Option<NonNull<u8>> {
    debug_assert!(size % PAGE == 0 && align.is_power_of_two() && align >= PAGE);
    NonNull::new(reserve_range(align_up(size, page_size()), align, 0)?)
}

/// A `PROT_NONE` range of `size` bytes (a multiple of the OS page) with
/// `start + offset` aligned to `align`: an over-sized reservation, trimmed.
/// A mapping is aligned to the OS page already: only a larger alignment
/// needs padding, and the trimmed ends are whole OS pages.
fn reserve_range(size: usize, align: usize, offset: usize) -> Option<*mut u8> {
    let page = page_size();
    let align = align.max(page);
    let padded = size.checked_add(align - page)?;
    let base = map(padded, libc::PROT_NONE)?.as_ptr() as usize;
    let start = align_up(base + offset, align) - offset;
    let end = start + size;
    // SAFETY: [base, start) and [end, base + padded) lie inside the mapping
    // made above and are not handed to anyone.
    unsafe {
        release(base as *mut u8, start - base);
        release(end as *mut u8, base + padded - end);
    }
    Some(start as *mut u8)
}

fn map(size: usize, prot: libc::c_int) -> Option<NonNull<u8>> {
    let p = map_raw(size, prot);
    if p.is_none() {
        warn(b"mmap failed: out of memory or address space");
    }
    p
}

fn map_raw(size: usize, prot: libc::c_int) -> Option<NonNull<u8>> {
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing touches no existing memory.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    NonNull::new(p.cast())
}

/// Returns `[p, p + size)` to the OS (the kernel rounds `size` up to its
/// page: a mapping of a size that was rounded up here is released whole).
///
/// # Safety
/// The range must be a part of a reservation made here, starting on an OS
/// page, that nobody uses any more, up to the end of an OS page or of the
/// reservation.
pub unsafe fn release(p: *mut u8, size: usize) {
    if size == 0 {
        return;
    }
    // SAFETY: by the caller's contract the range is ours and unused.
    if unsafe { libc::munmap(p.cast(), size) } != 0 {
        warn(b"munmap failed; address space leaked");
    }
}

/// Gives the physical pages of `[p, p + size)` back; the range stays
/// reserved and reads as zero when touched again. The range is whole OS
/// pages: the kernel would discard all of a partly covered page (callers
/// round with [`whole_pages`]).
///
/// # Safety
/// The range must be aligned to the OS page at both ends ([`page_size`]),
/// inside a reservation made here, and hold nothing anybody still needs.
pub unsafe fn decommit(p: *mut u8, size: usize) -> bool {
    if size == 0 {
        return true;
    }
    debug_assert!(
        (p as usize | size) % page_size() == 0,
        "decommit of a partial OS page"
    );
    // SAFETY: by the caller's contract the range is ours and unused.
    let ok = unsafe { libc::madvise(p.cast(), size, libc::MADV_DONTNEED) } == 0;
    if !ok {
        warn(b"madvise(MADV_DONTNEED) failed; the pages stay resident");
    }
    ok
}

/// Writes in the whole OS pages of `[p, p + size)` ahead of use, as zero
/// pages (what a write fault would map), in one system call instead of a
/// fault per page (`MADV_POPULATE_WRITE`): for memory the program is about
/// to fill. Best effort: a kernel without it (before Linux 5.14), or short
/// of memory, leaves the pages to fault in when they are touched. Data
/// already there is kept. `errno` is kept. Returns whether the kernel did
/// it.
///
/// # Safety
/// The range must lie in a read-write mapping made here.
#[cfg(not(loom))]
pub unsafe fn populate(p: *mut u8, size: usize) -> bool {
    let (start, end) = whole_pages(p as usize, p as usize + size, page_size());
    if start >= end {
        return true;
    }
    let _errno = SavedErrno::new();
    let range = start as *mut libc::c_void;
    // SAFETY: by the caller's contract; the call changes no byte.
    unsafe { libc::madvise(range, end - start, libc::MADV_POPULATE_WRITE) == 0 }
}

/// [`PAGE`]s of a range [`clear`] asks the kernel about per `mincore`
/// call. Its answer, a byte per page, is a buffer on the stack of this
/// many bytes: enough for any page of at least 4 KiB (an emulator such as
/// qemu-user answers with a byte per page of its host, 4 KiB, when the
/// program sees 16 or 64 KiB pages).
#[cfg(any(feature = "hardened", test))]
const CLEAR_BATCH: usize = 512;

/// Zeroes `[p, p + len)` without faulting in pages that are not in RAM:
/// the OS pages that are (`mincore`) are written, and stay resident for
/// the memory's next owner; runs of the others are decommitted, which
/// makes them read as zero (never touched, or swapped out: decommit drops
/// the swap copy). The partial OS pages at the ends are written. A big
/// block the program touched only in part is cleared at the cost of the
/// part it touched, not of its whole size in page faults.
///
/// # Safety
/// The range must lie in one read-write mapping made here and hold
/// nothing anybody still needs.
#[cfg(any(feature = "hardened", test))]
pub unsafe fn clear(p: *mut u8, len: usize) {
    let page = page_size();
    let start = p as usize;
    let (from, to) = whole_pages(start, start + len, page);
    if from >= to {
        // SAFETY: by the caller's contract.
        unsafe { p.write_bytes(0, len) };
        return;
    }
    // SAFETY: the bytes before and after the whole OS pages, in the range.
    unsafe {
        p.write_bytes(0, from - start);
        (to as *mut u8).write_bytes(0, start + len - to);
    }
    let mut resident = [0u8; CLEAR_BATCH];
    let mut at = from;
    while at < to {
        // Whole OS pages (both are multiples of the OS page).
        let bytes = (to - at).min(CLEAR_BATCH * PAGE);
        let pages = bytes / page;
        // SAFETY: `[at, at + bytes)` is whole OS pages of the caller's
        // mapping; `resident` holds a byte for each 4 KiB of it.
        let known = unsafe { libc::mincore(at as *mut _, bytes, resident.as_mut_ptr()) } == 0;
        let mut i = 0;
        while i < pages {
            let in_ram = !known || resident[i] & 1 != 0;
            let mut j = i + 1;
            while j < pages && (!known || resident[j] & 1 != 0) == in_ram {
                j += 1;
            }
            let run = (at + i * page) as *mut u8;
            let bytes = (j - i) * page;
            // SAFETY: whole OS pages of the range, nobody's.
            unsafe {
                if in_ram || !decommit(run, bytes) {
                    run.write_bytes(0, bytes);
                }
            }
            i = j;
        }
        at += bytes;
    }
}

/// Resizes the mapping `[p, p + old)` to `new` bytes: in place (`to` is
/// `None`; fails if the address space after it is taken, or the kernel
/// will not commit the growth), or moved onto `to`, a reservation of `new`
/// bytes made here (see [`reserve_address`]), which it replaces. The
/// pages move without a copy; growth reads as zero. Returns the address.
///
/// # Safety
/// `[p, p + old)` must be a whole mapping made here, page-aligned sizes;
/// `to`, if given, a reservation of `new` bytes nobody uses.
pub unsafe fn remap(
    p: *mut u8,
    old: usize,
    new: usize,
    to: Option<*mut u8>,
) -> Option<NonNull<u8>> {
    // SAFETY: by the caller's contract `p` starts a mapping of `old` bytes
    // and `to` is ours to replace.
    let q = unsafe {
        match to {
            None => libc::mremap(p.cast(), old, new, 0),
            Some(to) => libc::mremap(
                p.cast(),
                old,
                new,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                to.cast::<libc::c_void>(),
            ),
        }
    };
    if q == libc::MAP_FAILED {
        return None;
    }
    NonNull::new(q.cast())
}

/// A coarse monotonic clock in milliseconds (a few milliseconds of
/// resolution; read from the vDSO without a system call). Wraps after 49
/// days: compare instants with [`reached`]. In tests, the time of the
/// clock seam (`sync::clock`) when it sets one.
pub fn now_ms() -> u32 {
    if let Some(ms) = crate::sync::clock::fixed_ms() {
        return ms;
    }
    let ts = vdso::clock_gettime(libc::CLOCK_MONOTONIC_COARSE);
    (ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000) as u32
}

/// Whether instant `now` is at or after `deadline` (both from [`now_ms`]).
/// Every deadline is set at most minutes ahead, so one more than 2^30 ms
/// (12 days) ahead is stale (set before weeks of idleness) and counts as
/// reached, and so does 0, the value of a deadline never set: with a plain
/// wrapping comparison a fresh heap whose clock reads above 2^31 ms (half
/// of the time on a host up 25 to 50 days, modulo 50) would see them 25
/// days ahead and skip maintenance and purges that long.
#[inline]
pub fn reached(now: u32, deadline: u32) -> bool {
    deadline == 0 || deadline.wrapping_sub(now).wrapping_sub(1) >= 1 << 30
}

/// Number of CPUs the process may run on (at least 1): its affinity mask,
/// so a program confined with `taskset` or a cpuset gets as many shards as
/// it has CPUs, not as many as the machine has; the CPUs online when the
/// mask cannot be read. The mask is read with the raw system call, which
/// opens no file (glibc's count of online CPUs reads `/sys`).
pub fn cpu_count() -> usize {
    // Room for 1024 CPUs; a kernel built for more refuses it (EINVAL).
    let mut mask = [0u64; 16];
    // SAFETY: the kernel writes at most `size_of_val(&mask)` bytes into
    // `mask`, a live local array.
    let copied = unsafe {
        libc::syscall(
            libc::SYS_sched_getaffinity,
            0,
            core::mem::size_of_val(&mask),
            mask.as_mut_ptr(),
        )
    };
    if copied > 0 {
        let words = (copied as usize / 8).min(mask.len());
        let n: u32 = mask[..words].iter().map(|w| w.count_ones()).sum();
        if n > 0 {
            return n as usize;
        }
    }
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n < 1 { 1 } else { n as usize }
}

/// Writes `bytes` to standard error with `write(2)`: no allocation, no lock.
pub fn write_stderr(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: `rest` is a live byte slice; write reads at most its length.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            return;
        }
        rest = &rest[n as usize..];
    }
}

/// Writes `slabpool: <message>` to stderr when `SLABPOOL_VERBOSE` is set.
pub fn warn(message: &[u8]) {
    if crate::config::verbose() {
        write_stderr(b"slabpool: ");
        write_stderr(message);
        write_stderr(b"\n");
    }
}

/// A `core::fmt::Write` sink that buffers on the stack and writes to stderr
/// with `write(2)`: formatting through it never allocates.
#[cfg(not(loom))]
pub struct StderrWriter {
    buf: [u8; 512],
    len: usize,
}

#[cfg(not(loom))]
impl StderrWriter {
    pub const fn new() -> Self {
        Self {
            buf: [0; 512],
            len: 0,
        }
    }

    pub fn flush(&mut self) {
        write_stderr(&self.buf[..self.len]);
        self.len = 0;
    }
}

#[cfg(not(loom))]
impl Default for StderrWriter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(loom))]
impl core::fmt::Write for StderrWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for chunk in s.as_bytes().chunks(self.buf.len()) {
            if self.len + chunk.len() > self.buf.len() {
                self.flush();
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
        }
        Ok(())
    }
}

#[cfg(not(loom))]
impl Drop for StderrWriter {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Saves `errno` and restores it when dropped (C's `free` never changes
/// `errno`, and its slow paths make system calls that may).
#[cfg(not(loom))]
pub struct SavedErrno(i32);

#[cfg(not(loom))]
impl SavedErrno {
    pub fn new() -> Self {
        // SAFETY: `__errno_location` returns the calling thread's errno.
        SavedErrno(unsafe { *libc::__errno_location() })
    }
}

#[cfg(not(loom))]
impl Drop for SavedErrno {
    fn drop(&mut self) {
        // SAFETY: as in `new`.
        unsafe { *libc::__errno_location() = self.0 };
    }
}

/// Makes `[p, p + size)` readable and writable (`access`), or inaccessible
/// and empty: the pages of the guard pool. Made inaccessible, the range is
/// mapped afresh (`PROT_NONE`, one system call instead of `mprotect` and
/// `madvise`), so its pages go back to the OS and read as zero once made
/// accessible again. False if the kernel refuses.
///
/// # Safety
/// The range must be aligned to the OS page at both ends ([`page_size`])
/// and inside a reservation made here; made inaccessible, it must hold
/// nothing anybody still needs.
#[cfg(not(loom))]
pub unsafe fn protect(p: *mut u8, size: usize, access: bool) -> bool {
    debug_assert!(
        (p as usize | size) % page_size() == 0,
        "protect of a partial OS page"
    );
    // SAFETY: by the caller's contract the range is ours; a fixed mapping
    // replaces only it.
    let ok = unsafe {
        if access {
            libc::mprotect(p.cast(), size, libc::PROT_READ | libc::PROT_WRITE) == 0
        } else {
            libc::mmap(
                p.cast(),
                size,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            ) != libc::MAP_FAILED
        }
    };
    if !ok {
        warn(b"mprotect or mmap failed: guard pages not changed");
    }
    ok
}

/// Makes `[p, p + size)` inaccessible (`access` false) or readable and
/// writable again, in place (`mprotect`): its pages, commit charge and
/// mapping flags stay as they were, so made accessible again the range
/// rejoins the mapping around it (no mapping is left split). The slab
/// guard pages of the hardened build. False if the kernel refuses (its
/// limit on mappings, to split one).
///
/// # Safety
/// The range must be aligned to the OS page at both ends ([`page_size`])
/// and inside a read-write reservation made here; made inaccessible, it
/// must hold nothing anybody accesses until it is made accessible again.
pub unsafe fn fence(p: *mut u8, size: usize, access: bool) -> bool {
    debug_assert!(
        (p as usize | size) % page_size() == 0,
        "fence of a partial OS page"
    );
    let prot = if access {
        libc::PROT_READ | libc::PROT_WRITE
    } else {
        libc::PROT_NONE
    };
    // SAFETY: by the caller's contract the range is ours and idle.
    unsafe { libc::mprotect(p.cast(), size, prot) == 0 }
}

mod vdso;

#[cfg(all(test, not(loom)))]
pub(crate) mod tests;

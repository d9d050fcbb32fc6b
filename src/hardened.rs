//! The hardened build's front doors: the pointer-only API of `raw` (the C
//! library's) and `GlobalAlloc`, with the mitigations of the `hardened`
//! feature around the bare allocator:
//!
//! - canaries checked on free (`canary`): every request grows by a tag,
//!   written on allocation and checked first on free, `realloc`,
//!   `malloc_usable_size` and `dealloc`, for small, large and huge blocks;
//! - zero on free ([`zero_on_free`]): the bytes the program asked for are
//!   cleared before the block goes anywhere;
//! - delayed reuse (`quarantine`, through `global::dealloc_small_delayed`):
//!   a small block waits in the thread's quarantine before it is freed for
//!   real, marked free, so a second free is caught from any thread;
//! - randomised carve order (`carve_order`, in `block::carve`).
//!
//! Every allocation here clears a small block's first word before the
//! canary is written, so a live block never reads as free (the double-free
//! check relies on it: see `quarantine`). `realloc` always moves. Damage
//! and invalid pointers are reported on one line (no allocation), then the
//! process aborts. Guarded sampled allocations (`SLABPOOL_GUARD_SAMPLE`)
//! are another module's; their hook would be in [`alloc`] and [`free`].
//!
//! With the heap profiler (`prof`), a sampled small block lives in the
//! profiler's pool, where no segment describes it: [`find_block`] takes it
//! for a block of the class of its size, so it gets its canary, zero on
//! free and the quarantine like any other (it reaches the profiler when it
//! leaves the quarantine for a thread cache: see `tcache::bin`); a
//! sampled large or huge block is the heap's, and its free and resize tell
//! the profiler.

use crate::backend::{LARGE_LIMIT, Route, route};
use crate::block;
use crate::canary::{self, TAG};
use crate::global::{self, alloc_big, alloc_small};
use crate::guard;
use crate::huge;
use crate::lookup::Invalid;
use crate::lookup::{self, Found, find};
use crate::os;
use crate::os::SavedErrno;
use crate::pointer;
use crate::pool::SlabPool;
use crate::quarantine;
use crate::registry;
use crate::size_class::SMALL_LIMIT;
use crate::size_class::{SizeClass, c_class_of};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr;

/// Which block `p` starts (`lookup::find`); a sampled small block of the
/// heap profiler is one of the class of its size.
#[inline]
fn find_block(p: *const u8) -> Result<Found, Invalid> {
    #[cfg(feature = "prof")]
    if global::sampled(p) {
        let usable = crate::prof::usable_size(p)?;
        return Ok(Found::Small(crate::size_class::size_class(usable)));
    }
    find(p)
}

/// Requested bytes from which zero on free asks the kernel which pages
/// are in RAM ([`os::clear`]) instead of writing them all: a system call
/// costs about what writing a few OS pages does, and a big block is often
/// touched only in part (a vector's spare capacity).
const CLEAR_BY_PAGES: usize = 128 * 1024;

/// Clears the `requested` bytes of `p`, a block being freed (zero on
/// free: data left in freed memory is not read back through a dangling
/// pointer or by the block's next owner). From [`CLEAR_BY_PAGES`] bytes
/// (large and huge blocks) only the OS pages in RAM are written, and the
/// others decommitted: clearing by decommitting every page made the next
/// owner of a cached huge block fault each page in again (the `large`
/// workload: a million page faults instead of fifty thousand).
///
/// # Safety
/// `p` must be a live block of at least `requested` bytes.
#[inline]
unsafe fn zero_on_free(p: *mut u8, requested: usize) {
    // SAFETY: by contract: the block's own bytes, given up (a large or huge
    // block lies in one mapping made by `os`).
    unsafe {
        if requested >= CLEAR_BY_PAGES {
            os::clear(p, requested);
        } else {
            p.write_bytes(0, requested);
        }
    }
}

/// Zero on free of `p`, a small block of `usable` bytes, its first part:
/// the first [`quarantine::zero_checked`] bytes, whatever was requested
/// (the quarantine checks them when the block leaves it, and they hold the
/// pattern past a short request), by word stores inline. Returns how many
/// ([`clear_rest`] clears the requested bytes past them).
///
/// # Safety
/// `p` must be a live block of `usable` bytes.
#[inline(always)]
unsafe fn clear_head(p: *mut u8, usable: usize) -> usize {
    const _: () = assert!(quarantine::ZERO_CHECKED == 4 * size_of::<u64>());
    let head = quarantine::zero_checked(usable);
    // SAFETY: `head` bytes from `p`, a multiple of 8 short of the tag.
    // Explicit stores: a loop becomes a call to `memset`.
    unsafe {
        let words = p.cast::<[u64; 4]>();
        if head == quarantine::ZERO_CHECKED {
            // Every class from 40 bytes.
            words.write([0; 4]);
        } else {
            // The classes of 8 to 32 bytes: 0 to 24 bytes.
            let words = p.cast::<u64>();
            if head >= 8 {
                words.write(0);
            }
            if head >= 16 {
                words.add(1).write(0);
            }
            if head >= 24 {
                words.add(2).write(0);
            }
        }
    }
    head
}

/// Clears the bytes from `from` to `end` if there are any (the requested
/// bytes of a block past those [`clear_head`] cleared): `memset`, called
/// last (a jump). Two pointers, so that the closure carrying them to the
/// end of `free` stays in two registers.
///
/// # Safety
/// `[from, end)` must lie in a block the caller owns, if not empty.
#[inline(always)]
unsafe fn clear_rest(from: *mut u8, end: *mut u8) {
    if end > from {
        // SAFETY: by contract.
        unsafe { from.write_bytes(0, end as usize - from as usize) }
    }
}

/// `p`, a fresh block (or null), armed for a request of `requested` bytes
/// (a huge block also before its start: `canary::arm_front`).
///
/// # Safety
/// `p` is null or a fresh block of at least `requested + TAG` bytes.
#[inline]
unsafe fn armed(p: *mut u8, requested: usize) -> *mut u8 {
    if p.is_null() {
        return p;
    }
    let b = match find_block(p) {
        Ok(b) => b,
        // A fresh block is always found.
        Err(why) => lookup::invalid("malloc", p, why),
    };
    // A large or huge block may come before any carve set the secret.
    block::ensure_secret();
    if b == Found::Huge {
        // SAFETY: `p` is a fresh huge block.
        unsafe { canary::arm_front(p) };
    }
    // SAFETY: `p` is the fresh block `b` of at least `requested + TAG`.
    unsafe { canary::arm(p, requested, usable(p, b)) }
}

/// The bytes a request of `size` takes: the size, the tag, rounded up to 8
/// (a block whose size is exactly what it asked, as a guarded one, still
/// has its tag 8-aligned).
#[inline(always)]
fn padded_size(size: usize) -> Option<usize> {
    Some(size.checked_add(TAG + 7)? & !7)
}

/// The usable size of `b`, the block at `p`.
///
/// # Safety
/// `p` must be the live block `b`.
#[inline]
unsafe fn usable(p: *const u8, b: Found) -> usize {
    match b {
        Found::Small(class) => class.info().size as usize,
        Found::Large(bytes) => bytes,
        // SAFETY: `p` is a live huge block.
        Found::Huge => unsafe { huge::usable_size(p.cast_mut()) },
        Found::Guarded(bytes) => bytes,
    }
}

/// `size` bytes aligned to `align` (`raw::alloc`).
pub fn alloc(size: usize, align: usize) -> *mut u8 {
    let Some(total) = padded_size(size) else {
        return ptr::null_mut();
    };
    let p = pointer::alloc_bare(total, align.max(8));
    // SAFETY: `p` is null or a fresh block of at least `total` bytes, its
    // first word cleared by `alloc_bare` when small.
    unsafe { armed(p, size) }
}

/// C's `malloc` (`raw::malloc`): null with `errno` ENOMEM on failure.
pub fn malloc(size: usize) -> *mut u8 {
    let Some(total) = padded_size(size) else {
        // SAFETY: `__errno_location` returns the calling thread's errno.
        unsafe { *libc::__errno_location() = libc::ENOMEM };
        return ptr::null_mut();
    };
    // `malloc_bare` aligns `total` (above 8 bytes) to 16: at least what
    // `malloc(size)` must be.
    let p = pointer::malloc_bare(total);
    match c_class_of(total) {
        // The class `malloc_bare` took (no lookup of the block), unless the
        // block is a guarded one (`SLABPOOL_GUARD_SAMPLE`), which holds
        // exactly `total` bytes against its guard page: its tag goes there.
        // SAFETY: `p` is null or a fresh block of `class`, its first word
        // cleared.
        Some(class) if !guard::owns(p) => unsafe {
            canary::arm(p, size, class.info().size as usize)
        },
        // SAFETY: as in `alloc`.
        _ => unsafe { armed(p, size) },
    }
}

/// As [`alloc`], the requested bytes zeroed (`raw::alloc_zeroed`).
pub fn alloc_zeroed(size: usize, align: usize) -> *mut u8 {
    let Some(total) = padded_size(size) else {
        return ptr::null_mut();
    };
    let p = pointer::alloc_zeroed_bare(total, align.max(8));
    // SAFETY: as in `alloc`; the block is zeroed, its first word with it.
    unsafe { armed(p, size) }
}

/// C's `calloc` of `size` bytes (the product, checked by the caller):
/// aligned as `malloc`'s (`raw::calloc`).
pub fn calloc(size: usize) -> *mut u8 {
    alloc_zeroed(size, pointer::c_align(size))
}

/// Looks `p` up for `call` and checks it: a live block (not free, not
/// invalid) whose canary is intact. Returns the block and its requested
/// size; aborts with a message otherwise.
fn checked(call: &str, p: *mut u8) -> (Found, usize) {
    let b = match find_block(p) {
        Ok(b) => b,
        Err(why) => lookup::invalid(call, p, why),
    };
    if let Found::Small(class) = b {
        // SAFETY: `p` starts a block of `class`.
        return (b, unsafe { checked_small(call, p, class) });
    }
    if b == Found::Huge {
        // SAFETY: `p` is a live huge block, armed when handed out.
        unsafe { canary::check_front(call, p) };
    }
    // SAFETY: `p` is the live block `b`.
    let usable = unsafe { usable(p, b) };
    // SAFETY: as above.
    (b, unsafe { canary::check(call, p, usable) })
}

/// [`checked`] of `p`, found to start a block of `class`: not free, its
/// canary intact. Returns its requested size; aborts with a message
/// otherwise.
///
/// # Safety
/// `p` must start a block of `class` in a live segment (or the profiler's
/// pool).
#[inline(always)]
unsafe fn checked_small(call: &str, p: *mut u8, class: SizeClass) -> usize {
    // SAFETY: `p` starts a block of `class`, at least 8 bytes.
    if unsafe { block::looks_free(p) } {
        pointer::confirm_not_free(call, p, class);
    }
    // SAFETY: `p` is a live block of `class` (not free), armed when handed
    // out.
    unsafe { canary::check(call, p, class.info().size as usize) }
}

/// Frees `p`, a checked small block of `class` holding `requested` bytes:
/// zero on free, then the quarantine.
///
/// # Safety
/// `p` must be a live block of `class`, given up by the caller.
#[inline(always)]
unsafe fn release_small(p: *mut u8, class: SizeClass, requested: usize) {
    // A sampled small block's sample ends now, not when it leaves the
    // quarantine.
    #[cfg(feature = "prof")]
    if global::sampled(p) {
        crate::prof::end_sample("free", p);
    }
    // SAFETY: forwarded contract; a block of its class's size holds at
    // least `requested` bytes and its tag. The rest is cleared last, once
    // `p` is in the quarantine, where only this thread reads it (before it
    // is freed, if the thread has no cache).
    let head = unsafe { clear_head(p, class.info().size as usize) };
    let (from, end) = (p.wrapping_add(head), p.wrapping_add(requested));
    // SAFETY: forwarded contract; the quarantine holds `p` (or it is not
    // freed yet) when `finish` runs.
    unsafe { global::dealloc_small_delayed(p, class, move || clear_rest(from, end)) }
}

/// Frees `p`, the checked block `b` of `requested` bytes: zero on free,
/// then a small block to the quarantine, a large or huge one to the heap.
///
/// # Safety
/// `p` must be the live block `b`, given up by the caller.
unsafe fn release(p: *mut u8, b: Found, requested: usize) {
    if let Found::Small(class) = b {
        // SAFETY: forwarded contract.
        return unsafe { release_small(p, class, requested) };
    }
    // A sampled large or huge block's sample ends (one load while none is
    // live).
    #[cfg(feature = "prof")]
    if matches!(b, Found::Large(_) | Found::Huge) {
        crate::prof::big_freed(p);
    }
    // SAFETY: `p` is the live block `b` of at least `requested` bytes.
    unsafe { zero_on_free(p, requested) };
    match b {
        // Released above.
        Found::Small(_) => {}
        // SAFETY: `p` is a live large block, given up.
        Found::Large(_) => unsafe { global::heap().free_large(p) },
        // SAFETY: `p` is a live huge block, given up.
        Found::Huge => unsafe { global::heap().free_huge(p) },
        Found::Guarded(_) => {
            // SAFETY: `p` is a live guarded block given up by the caller.
            if let Err(why) = unsafe { guard::free(p) } {
                lookup::invalid("free", p, why.into());
            }
        }
    }
}

/// `GlobalAlloc::dealloc` of `p`, a small block of `class` that does not
/// read as free: its canary checked against `layout`, then released.
///
/// # Safety
/// `p` must be a live block of `class`, given up by the caller.
#[inline(always)]
unsafe fn dealloc_small_checked(p: *mut u8, layout: Layout, class: SizeClass) {
    let usable = class.info().size as usize;
    // SAFETY: `p` is a live block of `usable` bytes.
    // (The damage is found again out of line: building it here would keep
    // a frame on the common path.)
    let Ok(requested) = (unsafe { canary::inspect(p, usable) }) else {
        damaged_small(p, class, layout.size())
    };
    if requested != layout.size() {
        canary::wrong_size("dealloc", p, requested, layout.size());
    }
    // SAFETY: `p` is a live block of `class`, given up.
    unsafe { release_small(p, class, requested) }
}

/// `GlobalAlloc::dealloc` of a large or huge block (or a guarded one), out
/// of line: checked, then released.
///
/// # Safety
/// `p` must be a live block allocated with `layout`, given up.
#[inline(never)]
unsafe fn dealloc_big(p: *mut u8, layout: Layout) {
    let (b, requested) = checked("dealloc", p);
    if requested != layout.size() {
        canary::wrong_size("dealloc", p, requested, layout.size());
    }
    // SAFETY: `p` is the live block `b`, given up.
    unsafe { release(p, b, requested) }
}

/// `GlobalAlloc::dealloc` of a small block whose first word reads as a
/// free block's link: aborts if it is free indeed, else frees it.
///
/// # Safety
/// `p` must be a block of `class`; if it is live, the caller gives it up.
#[cold]
#[inline(never)]
unsafe fn dealloc_suspect(p: *mut u8, layout: Layout, class: SizeClass) {
    pointer::confirm_not_free("dealloc", p, class);
    // SAFETY: not free: a live block of `class`, given up.
    unsafe { dealloc_small_checked(p, layout, class) }
}

/// Frees `p` (`raw::free`): null is ignored; aborts with a message if `p`
/// is not a live block or its canary is damaged. Never changes `errno`.
///
/// # Safety
/// If `p` is a live block, the caller gives it up.
pub unsafe fn free(p: *mut u8) {
    if p.is_null() {
        return;
    }
    // The common case inline, found as the default build's `free` finds
    // it: a small block of a segment in the registry's window. (A sampled
    // block of the heap profiler lies in no segment.)
    if registry::in_window_segment(p)
        // SAFETY: the registry says `p` lies in a segment.
        && let Some(class) = unsafe { lookup::slab_class(p) }
    {
        // SAFETY: `p` starts a block of `class`, at least 8 bytes. One that
        // reads as free is looked at out of line (a jump: no call on the
        // common path returns into it).
        if unsafe { block::looks_free(p) } {
            // SAFETY: forwarded contract.
            return unsafe { free_suspect(p, class) };
        }
        // SAFETY: `p` is a live block of `class` (not free), armed when
        // handed out.
        let requested = unsafe { canary::check("free", p, class.info().size as usize) };
        // SAFETY: checked above, given up by the caller. No need to save
        // `errno`: the slow paths of a small block's free restore it.
        return unsafe { release_small(p, class, requested) };
    }
    // SAFETY: forwarded contract.
    unsafe { free_other(p) }
}

/// [`free`] of a small block whose first word reads as a free block's
/// link: aborts if it is free indeed, else frees it.
///
/// # Safety
/// `p` starts a block of `class` in a live segment; if it is live, the
/// caller gives it up.
#[cold]
#[inline(never)]
unsafe fn free_suspect(p: *mut u8, class: SizeClass) {
    pointer::confirm_not_free("free", p, class);
    // SAFETY: not free: a live block of `class`, armed when handed out,
    // given up by the caller.
    unsafe {
        let requested = canary::check("free", p, class.info().size as usize);
        release_small(p, class, requested)
    }
}

/// [`free`] of anything but a small block in the registry's window: a
/// large, huge or guarded block, one outside the window, or an invalid
/// pointer.
///
/// # Safety
/// As for [`free`]; `p` is not null.
#[inline(never)]
unsafe fn free_other(p: *mut u8) {
    let (b, requested) = checked("free", p);
    // A small block's free keeps `errno` itself (its slow paths restore
    // it: `global::dealloc_small_delayed`); a big one's may not (munmap,
    // madvise), nor the profiler's end of a sample.
    let _errno = (!matches!(b, Found::Small(_)) || cfg!(feature = "prof")).then(SavedErrno::new);
    // SAFETY: `p` is the live block `b`, given up by the caller.
    unsafe { release(p, b, requested) }
}

/// The bytes asked for at `p` (`raw::usable_size`); 0 for null.
pub fn usable_size(p: *const u8) -> usize {
    if p.is_null() {
        return 0;
    }
    checked("malloc_usable_size", p.cast_mut()).1
}

/// Resizes `p` (`raw::realloc`): always to a new block.
///
/// # Safety
/// If the result is not null, `p` is dead.
pub unsafe fn realloc(p: *mut u8, size: usize, align: usize) -> *mut u8 {
    if p.is_null() {
        return alloc(size, align);
    }
    let (b, requested) = checked("realloc", p);
    // A large or huge block that stays large or huge is resized where it
    // lies when the heap can (a large span within its segment, a huge
    // mapping by `mremap`), as the default build does: moving a 32 MiB
    // block on every realloc cost the comparison suite's `large` workload
    // 3.8 times System's time. Its canary moves to the new end, and the old
    // one, now inside the request, is cleared (it holds secret-keyed bits).
    if let (Found::Large(_) | Found::Huge, Some(total)) = (b, padded_size(size))
        && align <= os::PAGE
    {
        // SAFETY: `p` is the live block `b`, checked above.
        let old_usable = unsafe { usable(p, b) };
        let heap = global::heap();
        // SAFETY: `p` is a live large (huge) block; the new size routes to
        // the same kind.
        let q = unsafe {
            match b {
                Found::Large(_) if total > SMALL_LIMIT && total <= LARGE_LIMIT => {
                    heap.resize_large(p, total)
                }
                Found::Huge if total > LARGE_LIMIT => heap.resize_huge(p, total),
                _ => ptr::null_mut(),
            }
        };
        if !q.is_null() {
            #[cfg(feature = "prof")]
            global::big_resized((p, old_usable), (q, total));
            let stale = old_usable.min(size);
            if stale > requested {
                // SAFETY: `q` holds at least `size` bytes, its first
                // `old_usable.min(size)` the old block's.
                unsafe { q.add(requested).write_bytes(0, stale - requested) };
            }
            // SAFETY: `q` is the resized block of at least `total` bytes.
            return unsafe { armed(q, size) };
        }
    }
    let q = alloc(size, align);
    if !q.is_null() {
        // SAFETY: both blocks hold at least the bytes copied; they differ;
        // `p` is the live block `b`, given up.
        unsafe {
            ptr::copy_nonoverlapping(p, q, requested.min(size));
            release(p, b, requested);
        }
    }
    q
}

/// Reports the damaged canary of `p`, freed through `GlobalAlloc` as a
/// block of `class` of `size` bytes: as a wrong size if the block is of
/// another class with an intact canary (the layout routed elsewhere), else
/// as the damage. Aborts.
#[cold]
#[inline(never)]
fn damaged_small(p: *mut u8, class: SizeClass, size: usize) -> ! {
    if let Ok(Found::Small(real)) = find_block(p)
        && real != class
    {
        // SAFETY: `p` is a live block of `real`.
        if let Ok(requested) = unsafe { canary::inspect(p, real.info().size as usize) } {
            canary::wrong_size("dealloc", p, requested, size);
        }
    }
    // SAFETY: `p` is a block of `class` (the caller found it damaged).
    unsafe { canary::damaged_at("dealloc", p, class.info().size as usize) }
}

/// `layout` grown by the tag, if that is a layout.
#[inline]
fn padded(layout: Layout) -> Option<Layout> {
    Layout::from_size_align(padded_size(layout.size())?, layout.align().max(8)).ok()
}

// SAFETY: as the bare build's (`global`): blocks of at least
// `layout.size() + TAG` bytes at `layout.align()`, routed by the padded
// layout both ways; the canary lies past `layout.size()`. `realloc` is the
// trait's default (allocate, copy, deallocate): it always moves.
unsafe impl GlobalAlloc for SlabPool {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // No overflow: a layout's size rounded up to its alignment is at
        // most `isize::MAX`.
        let size = layout.size() + TAG;
        match route(size, layout.align()) {
            Route::Small(class) => {
                let p = alloc_small(class, self.config());
                if !p.is_null() {
                    // SAFETY: a fresh block of at least 8 bytes: its link
                    // word cleared, so it does not read as free.
                    unsafe { p.cast::<usize>().write(0) };
                }
                // SAFETY: `p` is null or a fresh block of its class, at
                // least `layout.size() + TAG` bytes.
                unsafe { canary::arm(p, layout.size(), class.info().size as usize) }
            }
            _ => match padded(layout) {
                // SAFETY: null or a fresh block of at least `l.size()` bytes.
                Some(l) => unsafe { armed(alloc_big(l, false, self.config()), layout.size()) },
                None => ptr::null_mut(),
            },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let Some(l) = padded(layout) else {
            return ptr::null_mut();
        };
        match route(l.size(), l.align()) {
            Route::Small(class) => {
                let p = alloc_small(class, self.config());
                if !p.is_null() {
                    // SAFETY: a fresh block of at least `l.size()` bytes.
                    unsafe { p.write_bytes(0, l.size()) };
                }
                // SAFETY: as in `alloc`.
                unsafe { canary::arm(p, layout.size(), class.info().size as usize) }
            }
            // SAFETY: as in `alloc`.
            _ => unsafe { armed(alloc_big(l, true, self.config()), layout.size()) },
        }
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // No overflow (see `alloc`).
        match route(layout.size() + TAG, layout.align()) {
            Route::Small(class) => {
                // SAFETY: `p` is a block of `class` (the caller's contract),
                // at least 8 bytes. One that reads as free is looked at out
                // of line (a jump).
                if unsafe { block::looks_free(p) } {
                    // SAFETY: forwarded contract.
                    return unsafe { dealloc_suspect(p, layout, class) };
                }
                // SAFETY: `p` is a live block of `class` (not free), given up.
                unsafe { dealloc_small_checked(p, layout, class) }
            }
            // SAFETY: forwarded contract.
            _ => unsafe { dealloc_big(p, layout) },
        }
    }

    /// Small blocks move (allocate, copy, free: the trait's way); a large
    /// or huge block that stays large or huge is resized where it lies,
    /// as `realloc` of the C door does.
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        let big = |size: usize| !matches!(route(size + TAG, align), Route::Small(_));
        if big(layout.size()) && big(new_size) && align <= os::PAGE {
            // SAFETY: `p` is a live large or huge block of this allocator
            // (the caller's contract); `realloc` checks it and its canary.
            return unsafe { realloc(p, new_size, align) };
        }
        // SAFETY: a valid layout of `new_size` bytes (the caller's contract).
        let new = unsafe { Layout::from_size_align_unchecked(new_size, align) };
        // SAFETY: as `GlobalAlloc::alloc`.
        let q = unsafe { self.alloc(new) };
        if !q.is_null() {
            // SAFETY: both blocks hold the bytes copied; `p` is live with
            // `layout` and given up.
            unsafe {
                ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                self.dealloc(p, layout);
            }
        }
        q
    }
}

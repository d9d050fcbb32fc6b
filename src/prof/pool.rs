//! The pool of sampled small blocks: a region of address space of their
//! own, so that a free recognises one by its address alone. (Sampled large
//! and huge blocks stay where the heap puts them: see `big`.)
//!
//! Layout: the region is [`REGION`] bytes aligned to a subregion, reserved
//! `PROT_NONE` at the first activation (10 GiB of address space, no
//! memory; below the thread caches' split, 2^45, where the heap's own
//! mappings never are, so that a thread cache's fast `pop` refuses a
//! sampled block freed into it with the compare it makes anyway: see
//! `tcache::bin`), and cut into [`KINDS`] subregions of [`SUBREGION`]
//! bytes; subregion `k` holds slots of `PAGE << k` bytes (4 KiB to
//! 64 KiB), each aligned to its size. A block starts at its slot's start
//! (so it has the slot's alignment) and its record, a [`Header`], fills the
//! last [`HEADER`] bytes of the slot. A block takes the smallest slot that
//! holds its size plus the header and its alignment, and at least an OS
//! page. A slot's last OS page is its header page: what `mprotect` makes
//! accessible and `madvise` gives back are whole OS pages (`Pool::page`,
//! read from `os` when the region is reserved; a kind smaller than it is
//! unused; with 64 KiB pages a slot is its header page).
//!
//! Memory: a slot becomes readable and writable at its first use and stays
//! so (the used slots of a kind are one mapping for the kernel, whatever
//! their number: sampled blocks never use up the process's mappings);
//! pages are touched as blocks use them. A freed slot keeps its pages
//! while the free slots keep at most [`RETAIN`] bytes resident (the next
//! block of its kind reuses them warm); past that they are given back to
//! the OS (`MADV_DONTNEED`, the mapping stays). A `realloc` within a
//! slot's room (down to a quarter of it) stays in place. Freed slots go on
//! their kind's free list (LIFO); the header says how far a free slot is
//! accessible and how far it may hold old bytes (zeroed for a zeroed
//! request).
//!
//! Invariants: every change is under the profiler's lock (the caller's);
//! a header reads `LIVE` exactly while its block is handed out, `ENDED`
//! while the program has freed it but the allocator still holds it (the
//! hardened build's quarantine: its sample ended at the free), and `FREE`
//! while the slot is on its free list; slots
//! past a kind's bump count were never used. [`Region::owns`] reads only
//! the region's base, published once (Release, with the flag it reads
//! first with Acquire) before any block is handed out.

use crate::os::{self, PAGE};
use crate::size_class::SMALL_LIMIT;
use crate::sync::Ordering::{Acquire, Relaxed, Release};
#[cfg(not(loom))]
use crate::sync::unmodeled::{AtomicBool, AtomicUsize};
#[cfg(loom)]
use crate::sync::{AtomicBool, AtomicUsize};
use core::ptr;

/// Kinds of slot: `PAGE << k` bytes for `k` below this (4 KiB to 64 KiB:
/// a small block, its header and its alignment).
const KINDS: usize = 5;
const _: () = assert!(SMALL_LIMIT + HEADER <= PAGE << (KINDS - 1) && SMALL_LIMIT.is_power_of_two());
#[cfg(not(loom))]
const SUBREGION_SHIFT: u32 = 31;
/// (Loom models: one slot of the largest kind.)
#[cfg(loom)]
const SUBREGION_SHIFT: u32 = 16;
/// Bytes of a kind's subregion.
const SUBREGION: usize = 1 << SUBREGION_SHIFT;
/// Bytes of the region.
const REGION: usize = KINDS * SUBREGION;
const _: () = assert!(PAGE << (KINDS - 1) <= SUBREGION);
/// Bytes of pages free slots keep resident at most (the next sampled
/// block of their kind reuses them warm, without a system call or page
/// faults); a slot freed past it gives its pages back to the OS.
const RETAIN: usize = 16 << 20;
/// Bytes of a block's record at its slot's end.
pub const HEADER: usize = size_of::<Header>();

const LIVE: u64 = 0x5350_5052_4f46_4c56; // "SPPROFLV"
/// Freed by the program, the slot still held (the hardened build's
/// quarantine): the sample has ended.
const ENDED: u64 = 0x5350_5052_4f46_454e; // "SPPROFEN"
const FREE: u64 = 0x5350_5052_4f46_4652; // "SPPROFFR"

/// The record of a sampled block, at the end of its slot.
#[derive(Clone, Copy)]
#[repr(C)]
struct Header {
    state: u64,
    /// Bytes from the slot's start that may hold old data (not zero).
    dirty: usize,
    /// Bytes usable at the block.
    usable: usize,
    /// Its stack's entry in the table.
    entry: usize,
    /// The weights counted for it in the table.
    objects: f64,
    space: f64,
    /// The next free slot of the kind (free slots).
    next: usize,
    /// Bytes from the slot's start made readable and writable (the
    /// header page aside).
    accessible: usize,
}
const _: () = assert!(HEADER == 64);

/// Where the region is, for lookups without the lock: set once, when it
/// is reserved (under the lock), before any block is handed out.
pub struct Region {
    in_use: AtomicBool,
    /// The region's base (aligned to `SUBREGION`).
    base: AtomicUsize,
}

impl Region {
    crate::sync::const_fn! {
        pub fn new() -> Self {
            Self {
                in_use: AtomicBool::new(false),
                base: AtomicUsize::new(0),
            }
        }
    }

    /// Whether `p` lies in the region: a flag load while it does not exist.
    #[inline(always)]
    pub fn owns(&self, p: *const u8) -> bool {
        self.in_use() && (p as usize).wrapping_sub(self.base.load(Relaxed)) < REGION
    }

    /// Whether the region exists (a sampled small block was ever placed).
    #[inline(always)]
    pub fn in_use(&self) -> bool {
        self.in_use.load(Acquire)
    }

    fn publish(&self, base: usize) {
        self.base.store(base, Relaxed);
        self.in_use.store(true, Release);
    }
}

pub struct Pool {
    base: usize,
    /// The OS page (set with `base`): slots are at least one, and the
    /// accessible part of a slot is whole ones.
    page: usize,
    /// Slots of each kind ever handed out (the next fresh one).
    bump: [usize; KINDS],
    /// The first free slot of each kind, 0 if none.
    free: [usize; KINDS],
    /// Samples the pool could not hold.
    pub dropped: u64,
    /// Bytes usable in the live blocks.
    pub live_bytes: usize,
    /// Bytes free slots may keep resident (their `dirty` bytes).
    retained: usize,
}

/// The slot size of a block of `usable` bytes at `align`, with an OS page
/// of `page` bytes, if any kind holds it.
fn kind_for(usable: usize, align: usize, page: usize) -> Option<usize> {
    let need = usable.checked_add(HEADER)?.max(align).max(page);
    let slot = need.checked_next_power_of_two()?;
    let kind = (slot / PAGE).trailing_zeros() as usize;
    (kind < KINDS).then_some(kind)
}

impl Pool {
    pub const fn new() -> Self {
        Self {
            base: 0,
            page: PAGE,
            bump: [0; KINDS],
            free: [0; KINDS],
            dropped: 0,
            live_bytes: 0,
            retained: 0,
        }
    }

    /// Reserves the region (once) and publishes it in `region`. False if
    /// the OS refuses.
    pub fn init(&mut self, region: &Region) -> bool {
        if self.base != 0 {
            return true;
        }
        let Some(base) = reserve_region() else {
            return false;
        };
        self.base = base;
        self.page = os::page_size();
        region.publish(base);
        // Thread caches may hold sampled blocks from now on (freed into
        // them by `GlobalAlloc`'s small free, which never looks).
        #[cfg(not(loom))]
        crate::tcache::admit_foreign();
        true
    }

    /// A slot for `usable` bytes at `align`, recorded for table entry
    /// `entry` with its weights; null if there is none.
    pub fn alloc(
        &mut self,
        usable: usize,
        align: usize,
        zero: bool,
        entry: usize,
        objects: f64,
        space: f64,
    ) -> *mut u8 {
        let Some(kind) = kind_for(usable, align, self.page) else {
            self.dropped += 1;
            return ptr::null_mut();
        };
        if self.base == 0 {
            return ptr::null_mut();
        }
        let slot_size = PAGE << kind;
        let header_page = slot_size - self.page;
        // A free slot keeps its accessible pages and says how far they
        // may hold old bytes; a fresh one has neither.
        let Some((slot, accessible, dirty)) = self.take_slot(kind) else {
            return ptr::null_mut();
        };
        // The block's pages before the header page.
        let data = os::align_up(usable, self.page).min(header_page);
        if data > accessible {
            // SAFETY: `[slot + accessible, slot + data)` lies in this slot,
            // inaccessible and unused.
            let ok = unsafe { open((slot + accessible) as *mut u8, data - accessible) };
            if !ok {
                // SAFETY: the slot is used; nobody holds it.
                unsafe { self.push_free(slot, slot_size, accessible, dirty) };
                return ptr::null_mut();
            }
        }
        // A slot freed through a thread cache was poisoned there as a free
        // block (the `asan` feature): it is the program's again.
        crate::poison::unpoison(slot as *mut u8, || usable);
        if zero && dirty > 0 {
            // SAFETY: `[slot, slot + min(usable, dirty))` is accessible (kept
            // pages, or the header page) and holds no live block.
            unsafe { ptr::write_bytes(slot as *mut u8, 0, usable.min(dirty)) };
        }
        // SAFETY: the header page is readable and writable (above).
        unsafe {
            header_of(slot, slot_size).write(Header {
                state: LIVE,
                dirty: dirty.max(usable),
                usable,
                entry,
                objects,
                space,
                next: 0,
                accessible: accessible.max(data),
            });
        }
        self.live_bytes += usable;
        slot as *mut u8
    }

    /// A slot of `kind` with the bytes from its start that are accessible
    /// and that may be dirty: a free one, else a fresh one (its header page
    /// made accessible); `None` if the kind is full.
    fn take_slot(&mut self, kind: usize) -> Option<(usize, usize, usize)> {
        let slot_size = PAGE << kind;
        if self.free[kind] != 0 {
            let slot = self.free[kind];
            // SAFETY: a used slot's header page stays readable and writable.
            let h = unsafe { &*header_of(slot, slot_size) };
            self.free[kind] = h.next;
            self.retained -= h.dirty;
            return Some((slot, h.accessible, h.dirty));
        }
        if self.bump[kind] >= SUBREGION / slot_size {
            self.dropped += 1;
            return None;
        }
        let slot = self.base + kind * SUBREGION + self.bump[kind] * slot_size;
        // The whole slot at once: the used slots of a kind are then one
        // readable and writable mapping for the kernel (one VMA), however
        // many there are; pages are still only touched as blocks use them.
        // SAFETY: the slot lies in the reserved region and holds nothing.
        if !unsafe { open(slot as *mut u8, slot_size) } {
            return None;
        }
        self.bump[kind] += 1;
        Some((slot, slot_size - self.page, 0))
    }

    /// Calls `f` with the header of each sampled block that waits in a
    /// thread cache's bin, by the look of it: live (or ended) and whose
    /// first word reads as a free block's link. `GlobalAlloc`'s small free
    /// pushes a sampled block into its bin like any other, writing that
    /// link; a live block reads so only by chance (`block::looks_free`).
    /// A walk of the slots' headers (each kind's used slots).
    #[cfg(not(loom))]
    fn in_bins(&self, mut f: impl FnMut(&Header)) {
        if self.base == 0 {
            return;
        }
        for kind in 0..KINDS {
            let slot_size = PAGE << kind;
            for index in 0..self.bump[kind] {
                let slot = self.base + kind * SUBREGION + index * slot_size;
                // SAFETY: a used slot's header page stays readable.
                let h = unsafe { &*header_of(slot, slot_size) };
                // (A block resized past the small sizes is freed as a
                // large one, never into a bin.)
                if h.state != LIVE && h.state != ENDED || h.usable > SMALL_LIMIT {
                    continue;
                }
                // SAFETY: a live or ended block's first word lies on the
                // slot's accessible first page; the program may be writing
                // it (the answer is then a guess either way: a bin walked
                // for nothing, or a sample counted freed a little early).
                if unsafe { crate::block::looks_free(slot as *const u8) } {
                    f(h);
                }
            }
        }
    }

    /// The size classes of the sampled blocks that may wait in a thread
    /// cache's bin ([`Pool::in_bins`]; a bit per class, the class of the
    /// block's usable size), where walking the bins would touch every
    /// cached block. All classes (`u64::MAX`) when more than `at_most`
    /// slots were ever used: the bins' walk is then the shorter.
    #[cfg(not(loom))]
    pub fn cached_classes(&self, at_most: usize) -> u64 {
        if self.bump.iter().sum::<usize>() > at_most {
            return u64::MAX;
        }
        let mut classes = 0;
        self.in_bins(|h| classes |= 1 << crate::size_class::size_class(h.usable).index());
        classes
    }

    /// Calls `f` with the table entry and weights of each live sample whose
    /// block the program freed into a thread cache's bin
    /// ([`Pool::in_bins`]): freed, though the profiler learns it only when
    /// the bin gives the block back. (An ended one was counted freed at its
    /// free already.)
    #[cfg(not(loom))]
    pub fn freed_in_bins(&self, mut f: impl FnMut(usize, f64, f64)) {
        self.in_bins(|h| {
            if h.state == LIVE {
                f(h.entry, h.objects, h.space);
            }
        });
    }

    /// The slot size and header of the live block `p`, or why not.
    fn live(&self, p: *const u8) -> Result<(usize, *mut Header), super::shared::Misuse> {
        let (slot_size, header) = self.held(p)?;
        // SAFETY: `held` checked the header, on a readable page.
        if unsafe { (*header).state } != LIVE {
            return Err(super::shared::Misuse::Freed);
        }
        Ok((slot_size, header))
    }

    /// As `live`, for a block live or ended (see `ENDED`).
    fn held(&self, p: *const u8) -> Result<(usize, *mut Header), super::shared::Misuse> {
        let offset = (p as usize).wrapping_sub(self.base);
        let kind = offset >> SUBREGION_SHIFT;
        if self.base == 0 || kind >= KINDS {
            return Err(super::shared::Misuse::NotBlock);
        }
        let slot_size = PAGE << kind;
        let index = (offset & (SUBREGION - 1)) / slot_size;
        if index >= self.bump[kind] {
            return Err(super::shared::Misuse::NotBlock);
        }
        let slot = self.base + kind * SUBREGION + index * slot_size;
        if p as usize != slot {
            return Err(super::shared::Misuse::NotBlock);
        }
        let header = header_of(slot, slot_size);
        // SAFETY: the header page of a slot below the bump count is readable.
        let state = unsafe { (*header).state };
        if state != LIVE && state != ENDED {
            return Err(super::shared::Misuse::Freed);
        }
        Ok((slot_size, header))
    }

    /// Ends the sample of the live block `p` (the program freed it; the
    /// allocator still holds it): its table entry and weights, to take out
    /// of the table.
    #[cfg(feature = "hardened")]
    pub fn end(&mut self, p: *mut u8) -> Result<(usize, f64, f64), super::shared::Misuse> {
        let (_, header) = self.live(p)?;
        // SAFETY: `live` checked the header, on a readable page.
        let h = unsafe { &mut *header };
        h.state = ENDED;
        Ok((h.entry, h.objects, h.space))
    }

    /// Frees the live (or ended) block `p`; returns its table entry and
    /// weights if its sample had not ended.
    ///
    /// # Safety
    /// If `p` is a live block, the caller gives it up.
    pub unsafe fn free(
        &mut self,
        p: *mut u8,
    ) -> Result<Option<(usize, f64, f64)>, super::shared::Misuse> {
        let (slot_size, header) = self.held(p)?;
        // SAFETY: `held` checked the header, on a readable page.
        let (live, entry, objects, space, usable, accessible, mut dirty) = unsafe {
            let h = &*header;
            let live = h.state == LIVE;
            (
                live,
                h.entry,
                h.objects,
                h.space,
                h.usable,
                h.accessible,
                h.dirty,
            )
        };
        self.live_bytes -= usable;
        let resident = os::align_up(dirty, self.page).min(accessible);
        if resident > 0 && self.retained + dirty > RETAIN {
            // SAFETY: the pages before the header page belong to this block,
            // which the caller gives up; they stay mapped, reading as zero.
            if unsafe { os::decommit(p, resident) } && dirty <= slot_size - self.page {
                dirty = 0;
            }
        }
        // SAFETY: as above.
        unsafe { self.push_free(p as usize, slot_size, accessible, dirty) };
        Ok(live.then_some((entry, objects, space)))
    }

    /// Resizes the live block `p` to `usable` bytes in place if its slot
    /// holds them and they fill more than a quarter of it; returns whether
    /// it did, and the change of the live bytes.
    pub fn resize(&mut self, p: *mut u8, usable: usize) -> bool {
        let Ok((slot_size, header)) = self.live(p) else {
            return false;
        };
        let need = usable.saturating_add(HEADER);
        if need > slot_size || need <= slot_size / 4 || usable == 0 {
            return false;
        }
        let data = os::align_up(usable, self.page).min(slot_size - self.page);
        // SAFETY: `live` checked the header, on a readable page.
        let h = unsafe { &mut *header };
        if data > h.accessible {
            // SAFETY: `[p + accessible, p + data)` lies in this live block's
            // slot, inaccessible and unused.
            if !unsafe { open(p.add(h.accessible), data - h.accessible) } {
                return false;
            }
            h.accessible = data;
        }
        self.live_bytes = self.live_bytes - h.usable + usable;
        h.usable = usable;
        h.dirty = h.dirty.max(usable);
        true
    }

    /// Puts `slot` on its kind's free list, its first `accessible` bytes
    /// readable and writable and its first `dirty` bytes maybe not zero.
    ///
    /// # Safety
    /// `slot` is a used slot of `slot_size` bytes that nobody holds.
    unsafe fn push_free(&mut self, slot: usize, slot_size: usize, accessible: usize, dirty: usize) {
        let kind = (slot_size / PAGE).trailing_zeros() as usize;
        let header = header_of(slot, slot_size);
        // SAFETY: a used slot's header page is readable and writable.
        unsafe {
            (*header).state = FREE;
            (*header).next = self.free[kind];
            (*header).accessible = accessible;
            (*header).dirty = dirty;
        }
        self.retained += dirty;
        self.free[kind] = slot;
    }

    /// Bytes usable at the live block `p`.
    pub fn usable_size(&self, p: *const u8) -> Result<usize, super::shared::Misuse> {
        let (_, header) = self.live(p)?;
        // SAFETY: `live` checked the header, on a readable page.
        Ok(unsafe { (*header).usable })
    }

    /// The record of the live block `p`: its table entry, its usable bytes
    /// and its weights.
    pub fn record_of(&self, p: *const u8) -> Result<Record, super::shared::Misuse> {
        let (_, header) = self.live(p)?;
        // SAFETY: `live` checked the header, on a readable page.
        let h = unsafe { &*header };
        Ok(Record {
            entry: h.entry,
            usable: h.usable,
            objects: h.objects,
            space: h.space,
        })
    }

    /// Sets the weights of the live block `p` (resized: see
    /// `sampler::reweigh`).
    pub fn set_weights(&mut self, p: *const u8, objects: f64, space: f64) {
        if let Ok((_, header)) = self.live(p) {
            // SAFETY: `live` checked the header, on a readable page.
            unsafe {
                (*header).objects = objects;
                (*header).space = space;
            }
        }
    }
}

/// What the pool records of a live sampled block.
#[derive(Clone, Copy, Debug)]
pub struct Record {
    pub entry: usize,
    pub usable: usize,
    pub objects: f64,
    pub space: f64,
}

/// Reserves the region below the thread caches' split, where their fast
/// `pop` refuses its blocks (see `tcache::bin`): at one of a few places
/// from just under the split down to 16 TiB, where AddressSanitizer's
/// shadow memory ends (`MAP_FIXED_NOREPLACE` never replaces a mapping;
/// a kernel older than 4.17 that takes the address as a hint is checked).
/// `None` if the thread caches have no floor there (the heap lies low, as
/// under valgrind or with a 39-bit address space) or no place is free.
#[cfg(not(loom))]
fn reserve_region() -> Option<usize> {
    use crate::tcache::SPLIT;
    if crate::tcache::floor() != SPLIT {
        os::warn(b"heap profiler: the heap lies below 2^46, no room for the pool under it");
        return None;
    }
    const LOWEST: usize = 16 << 40;
    let mut hint = (SPLIT - REGION) & !(SUBREGION - 1);
    while hint >= LOWEST {
        // SAFETY: an anonymous private reservation at `hint` that replaces
        // nothing (the kernel fails rather than replace).
        let p = unsafe {
            libc::mmap(
                hint as *mut libc::c_void,
                REGION,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            if p as usize == hint {
                return Some(hint);
            }
            // SAFETY: the mapping made just above, elsewhere, unused.
            unsafe { os::release(p.cast(), REGION) };
        }
        hint -= 4 * REGION.next_multiple_of(SUBREGION);
    }
    os::warn(b"heap profiler: no room for its pool below 2^45");
    None
}

/// Loom models: anywhere (no thread cache takes part), readable and
/// writable whole (`open` has nothing to do).
#[cfg(loom)]
fn reserve_region() -> Option<usize> {
    os::reserve(REGION, SUBREGION).map(|p| p.as_ptr() as usize)
}

/// Makes `[p, p + len)`, a part of the region, readable and writable.
///
/// # Safety
/// The range must be page-aligned, in the region, and hold nothing.
unsafe fn open(p: *mut u8, len: usize) -> bool {
    // SAFETY: by contract.
    #[cfg(not(loom))]
    return unsafe { os::protect(p, len, true) };
    #[cfg(loom)]
    {
        let _ = (p, len);
        true
    }
}

impl Drop for Pool {
    /// Gives the region back (a pool of a loom model; the process's lives
    /// as long as the process).
    fn drop(&mut self) {
        if self.base != 0 {
            // SAFETY: the region reserved by `init`, which nothing uses now.
            unsafe { os::release(self.base as *mut u8, REGION) };
        }
    }
}

/// The header of the slot at `slot` of `slot_size` bytes.
fn header_of(slot: usize, slot_size: usize) -> *mut Header {
    (slot + slot_size - HEADER) as *mut Header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_hold_the_block_its_header_and_its_alignment() {
        assert_eq!(kind_for(8, 8, PAGE), Some(0));
        assert_eq!(kind_for(PAGE - HEADER, 16, PAGE), Some(0));
        assert_eq!(kind_for(PAGE - HEADER + 1, 16, PAGE), Some(1));
        assert_eq!(kind_for(32, 1 << 16, PAGE), Some(4));
        assert_eq!(kind_for(32 << 10, 4096, PAGE), Some(4));
        assert_eq!(kind_for(64 << 10, 16, PAGE), None);
    }

    #[test]
    fn slots_are_at_least_an_os_page() {
        for (page, smallest) in [(4 << 10, 0), (16 << 10, 2), (64 << 10, 4)] {
            assert_eq!(kind_for(8, 8, page), Some(smallest), "{page}");
            assert_eq!(kind_for(page - HEADER, 8, page), Some(smallest));
            // Every small block fits, whatever the page.
            assert_eq!(kind_for(32 << 10, 4096, page), Some(4));
            // A slot's header page and its data are whole OS pages.
            for kind in smallest..KINDS {
                let slot = PAGE << kind;
                assert!(slot % page == 0 && (slot - page) % page == 0);
            }
        }
    }
}

//! The pool of sampled blocks: a region of address space of their own, so
//! that a free recognises one by its address alone.
//!
//! Layout: the region is [`REGION`] bytes aligned to a subregion, reserved
//! `PROT_NONE` at the first activation (38 GiB of address space, no
//! memory), and cut into [`KINDS`] subregions of [`SUBREGION`] bytes; subregion `k` holds slots of `PAGE << k` bytes,
//! each aligned to its size. A block starts at its slot's start (so it has
//! the slot's alignment) and its record, a [`Header`], fills the last
//! [`HEADER`] bytes of the slot. A block takes the smallest slot that holds
//! its size plus the header and its alignment, and at least an OS page;
//! blocks larger than the largest slot (1 GiB) are not sampled. A slot's
//! last OS page is its header page: what `mprotect` makes accessible and
//! `madvise` gives back are whole OS pages ([`Pool::page`], read from `os`
//! when the region is reserved; a kind smaller than it is unused).
//!
//! Memory: a slot becomes readable and writable at its first use and stays
//! so (the used slots of a kind are one mapping for the kernel, whatever
//! their number: sampled blocks never use up the process's mappings);
//! pages are touched as blocks use them. A freed slot keeps its pages
//! while the free slots keep at most [`RETAIN`] bytes resident (the next
//! block of its kind reuses them warm: sampling large blocks costs no
//! system call in a steady state); past that they are given back to the OS
//! (`MADV_DONTNEED`, the mapping stays). A `realloc` within a slot's room
//! (down to a quarter of it) stays in place; one into a slot of at least
//! [`MOVE_SLOT`] bytes moves the pages there without a copy. Freed slots go on their kind's free list (LIFO); the header says how
//! far a free slot is accessible and how far it may hold old bytes (zeroed
//! for a zeroed request).
//!
//! Invariants: every change is under the profiler's lock (the caller's);
//! a header reads `LIVE` exactly while its block is handed out, with the
//! block's address, and `FREE` while the slot is on its free list; slots
//! past a kind's bump count were never used. [`in_use`] and [`in_region`]
//! read only the region's base, set once before any block is handed out.

use crate::os::{self, PAGE};
use crate::sync::Ordering::{Acquire, Release};
use crate::sync::unmodeled::AtomicBool;
use core::ptr;
use crate::sync::unmodeled::AtomicUsize;

/// Kinds of slot: `PAGE << k` bytes for `k` below this (4 KiB to 1 GiB).
const KINDS: usize = 19;
const SUBREGION_SHIFT: u32 = 31;
/// Bytes of a kind's subregion.
const SUBREGION: usize = 1 << SUBREGION_SHIFT;
/// Bytes of the region.
const REGION: usize = KINDS * SUBREGION;
const _: () = assert!(PAGE << (KINDS - 1) <= SUBREGION);
/// Bytes of pages free slots keep resident at most (the next sampled
/// block of their kind reuses them warm, without a system call or page
/// faults); a slot freed past it gives its pages back to the OS. As much as
/// the huge cache keeps resident (`huge_cache::CACHE_DIRTY_BYTES`): at the
/// default interval nearly every huge block is sampled, so for them the
/// pool stands in for that cache.
const RETAIN: usize = 256 << 20;
/// A block grows into a slot of at least this size by moving its pages.
const MOVE_SLOT: usize = 8 << 20;
/// Bytes of a block's record at its slot's end.
pub const HEADER: usize = size_of::<Header>();

const LIVE: u64 = 0x5350_5052_4f46_4c56; // "SPPROFLV"
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

/// Set once the region is reserved; its base (aligned to `SUBREGION`).
static IN_USE: AtomicBool = AtomicBool::new(false);
static BASE: AtomicUsize = AtomicUsize::new(0);

/// Whether the region exists (then [`in_region`] tells).
#[inline(always)]
pub fn in_use() -> bool {
    IN_USE.load(Acquire)
}

/// Whether `p` lies in the region (once [`in_use`]).
#[inline(always)]
pub fn in_region(p: *const u8) -> bool {
    (p as usize).wrapping_sub(BASE.load(crate::sync::Ordering::Relaxed)) < REGION
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

    /// Reserves the region (once). False if the OS refuses.
    pub fn init(&mut self) -> bool {
        if self.base != 0 {
            return true;
        }
        let Some(base) = os::reserve_address(REGION, SUBREGION) else {
            return false;
        };
        self.base = base.as_ptr() as usize;
        self.page = os::page_size();
        BASE.store(self.base, crate::sync::Ordering::Relaxed);
        IN_USE.store(true, Release);
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
            let ok =
                unsafe { os::protect((slot + accessible) as *mut u8, data - accessible, true) };
            if !ok {
                // SAFETY: the slot is used; nobody holds it.
                unsafe { self.push_free(slot, slot_size, accessible, dirty) };
                return ptr::null_mut();
            }
        }
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
        if !unsafe { os::protect(slot as *mut u8, slot_size, true) } {
            return None;
        }
        self.bump[kind] += 1;
        Some((slot, slot_size - self.page, 0))
    }

    /// Moves the live block `p` to a larger slot for `usable` bytes
    /// without copying its pages (they are remapped); the block keeps its
    /// sample. Null if no slot or the OS refuses (then `p` is unchanged).
    pub fn grow(&mut self, p: *mut u8, usable: usize) -> *mut u8 {
        let Ok((old_size, header)) = self.live(p) else {
            return ptr::null_mut();
        };
        let Some(kind) = kind_for(usable, old_size, self.page) else {
            return ptr::null_mut();
        };
        let new_size = PAGE << kind;
        // SAFETY: `live` checked the header, on a readable page.
        let old = unsafe { header.read() };
        // Moved pages keep a kernel mapping (VMA) of their own: only for
        // the few slots of the largest kinds.
        if new_size <= old_size || new_size < MOVE_SLOT || old.accessible == 0 {
            return ptr::null_mut();
        }
        let Some((slot, accessible, dirty)) = self.take_slot(kind) else {
            return ptr::null_mut();
        };
        let q = slot as *mut u8;
        // SAFETY: `[p, p + accessible)` is a page-aligned, readable and
        // writable part of the region holding the block (which moves), and
        // `[q, q + old.accessible)` lies in the free slot taken above, below
        // its header page (the new slot is larger): the kernel moves the
        // pages there, replacing what was there, and leaves a hole at `p`.
        let moved = unsafe { os::remap(p, old.accessible, old.accessible, Some(q)) };
        if moved.is_none() {
            // SAFETY: the slot is used; nobody holds it.
            unsafe { self.push_free(slot, new_size, accessible, dirty) };
            return ptr::null_mut();
        }
        // The hole becomes readable and writable again (fresh zero pages).
        // SAFETY: `[p, p + old.accessible)` is the hole left by the move.
        unsafe { refill_hole(p, old.accessible) };
        let data = os::align_up(usable, self.page).min(new_size - self.page);
        let mut now_accessible = accessible.max(old.accessible);
        if data > now_accessible {
            // SAFETY: `[q + now_accessible, q + data)` lies in the new slot,
            // below its header page, inaccessible and unused.
            if unsafe { os::protect(q.add(now_accessible), data - now_accessible, true) } {
                now_accessible = data;
            }
        }
        if now_accessible < data {
            // Out of memory for the growth: move the pages back.
            // SAFETY: `p`'s range is reserved again, `q`'s holds the pages.
            let back = unsafe { os::remap(q, old.accessible, old.accessible, Some(p)) };
            if back.is_some() {
                // SAFETY: the hole left at `q` by the move back.
                unsafe {
                    refill_hole(q, old.accessible);
                    self.push_free(slot, new_size, accessible, dirty);
                }
                return ptr::null_mut();
            }
            // Cannot happen short of a broken kernel: keep the block where
            // it is now (its bytes are there), at the size it had.
        }
        // The old slot's tail bytes in its header page, if any.
        let old_header_page = old_size - self.page;
        if old.usable > old_header_page {
            // SAFETY: the tail lies before the old header, readable; the
            // destination lies in the new slot below its header page
            // (the new slot is at least twice the old one).
            unsafe {
                ptr::copy_nonoverlapping(
                    p.add(old_header_page),
                    q.add(old_header_page),
                    old.usable - old_header_page,
                );
            }
        }
        let grown = if now_accessible >= data {
            usable
        } else {
            old.usable
        };
        // SAFETY: the new slot's header page is readable and writable.
        unsafe {
            header_of(slot, new_size).write(Header {
                state: LIVE,
                dirty: dirty.max(grown).max(old.dirty),
                usable: grown,
                next: 0,
                accessible: now_accessible,
                ..old
            });
            // The old slot is free, its data pages fresh; its header page
            // may hold the tail copied out.
            let tail = if old.dirty > old_header_page {
                old.dirty
            } else {
                0
            };
            self.push_free(p as usize, old_size, old.accessible, tail);
        }
        self.live_bytes = self.live_bytes - old.usable + grown;
        q
    }

    /// The slot size and header of the live block `p`, or why not.
    fn live(&self, p: *const u8) -> Result<(usize, *mut Header), super::Misuse> {
        let offset = (p as usize).wrapping_sub(self.base);
        let kind = offset >> SUBREGION_SHIFT;
        if self.base == 0 || kind >= KINDS {
            return Err(super::Misuse::NotBlock);
        }
        let slot_size = PAGE << kind;
        let index = (offset & (SUBREGION - 1)) / slot_size;
        if index >= self.bump[kind] {
            return Err(super::Misuse::NotBlock);
        }
        let slot = self.base + kind * SUBREGION + index * slot_size;
        if p as usize != slot {
            return Err(super::Misuse::NotBlock);
        }
        let header = header_of(slot, slot_size);
        // SAFETY: the header page of a slot below the bump count is readable.
        if unsafe { (*header).state } != LIVE {
            return Err(super::Misuse::Freed);
        }
        Ok((slot_size, header))
    }

    /// Frees the live block `p`; returns its table entry and weights.
    ///
    /// # Safety
    /// If `p` is a live block, the caller gives it up.
    pub unsafe fn free(&mut self, p: *mut u8) -> Result<(usize, f64, f64), super::Misuse> {
        let (slot_size, header) = self.live(p)?;
        // SAFETY: `live` checked the header, on a readable page.
        let (entry, objects, space, usable, accessible, mut dirty) = unsafe {
            let h = &*header;
            (h.entry, h.objects, h.space, h.usable, h.accessible, h.dirty)
        };
        self.live_bytes -= usable;
        let resident = os::align_up(dirty, self.page).min(accessible);
        if resident > 0 && self.retained + dirty > RETAIN {
            // SAFETY: the OS pages before the header page belong to this
            // block, which the caller gives up; they stay mapped, reading as
            // zero.
            if unsafe { os::decommit(p, resident) } && dirty <= slot_size - self.page {
                dirty = 0;
            }
        }
        // SAFETY: as above.
        unsafe { self.push_free(p as usize, slot_size, accessible, dirty) };
        Ok((entry, objects, space))
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
            if !unsafe { os::protect(p.add(h.accessible), data - h.accessible, true) } {
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
    pub fn usable_size(&self, p: *const u8) -> Result<usize, super::Misuse> {
        let (_, header) = self.live(p)?;
        // SAFETY: `live` checked the header, on a readable page.
        Ok(unsafe { (*header).usable })
    }
}

/// Maps `[p, p + len)`, a hole in the region left by a move, readable and
/// writable again (zero pages).
///
/// # Safety
/// The range must be page-aligned, in the region, and hold nothing.
unsafe fn refill_hole(p: *mut u8, len: usize) {
    // SAFETY: by contract; a fixed mapping replaces only the hole.
    unsafe {
        os::protect(p, len, false);
        os::protect(p, len, true);
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
        assert_eq!(kind_for(1 << 29, 16, PAGE), Some(18));
        assert_eq!(kind_for(1 << 30, 16, PAGE), None);
    }

    #[test]
    fn slots_are_at_least_an_os_page() {
        for (page, smallest) in [(4 << 10, 0), (16 << 10, 2), (64 << 10, 4)] {
            assert_eq!(kind_for(8, 8, page), Some(smallest), "{page}");
            assert_eq!(kind_for(page - HEADER, 8, page), Some(smallest));
            assert_eq!(kind_for(page - HEADER + 1, 8, page), Some(smallest + 1));
            assert_eq!(kind_for(1 << 29, 16, page), Some(18));
            assert_eq!(kind_for(1 << 30, 16, page), None);
            // A slot's header page and its data are whole OS pages.
            for kind in smallest..KINDS {
                let slot = PAGE << kind;
                assert!(slot % page == 0 && (slot - page) % page == 0);
            }
        }
    }
}

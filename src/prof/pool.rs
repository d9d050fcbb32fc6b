//! The pool of sampled blocks: a region of address space of their own, so
//! that a free recognises one by its address alone.
//!
//! Layout: the region is [`REGION`] bytes aligned to a subregion, reserved
//! `PROT_NONE` at the first activation (38 GiB of address space, no
//! memory), and cut into [`KINDS`] subregions of [`SUBREGION`] bytes; subregion `k` holds slots of `PAGE << k` bytes,
//! each aligned to its size. A block starts at its slot's start (so it has
//! the slot's alignment) and its record, a [`Header`], fills the last
//! [`HEADER`] bytes of the slot. A block takes the smallest slot that holds
//! its size plus the header and its alignment; blocks larger than the
//! largest slot (1 GiB) are not sampled.
//!
//! Memory: a slot's last page (the header's) becomes readable and writable
//! at the slot's first use and stays so; the pages before it are made so
//! for a block's bytes when it is handed out, and made inaccessible again
//! (which gives them back to the OS) when it is freed. A slot of one page
//! keeps its page. Freed slots go on their kind's free list (LIFO).
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
use core::sync::atomic::AtomicUsize;

/// Kinds of slot: `PAGE << k` bytes for `k` below this (4 KiB to 1 GiB).
const KINDS: usize = 19;
const SUBREGION_SHIFT: u32 = 31;
/// Bytes of a kind's subregion.
const SUBREGION: usize = 1 << SUBREGION_SHIFT;
/// Bytes of the region.
const REGION: usize = KINDS * SUBREGION;
const _: () = assert!(PAGE << (KINDS - 1) <= SUBREGION);
/// Bytes of a block's record at its slot's end.
pub const HEADER: usize = size_of::<Header>();

const LIVE: u64 = 0x5350_5052_4f46_4c56; // "SPPROFLV"
const FREE: u64 = 0x5350_5052_4f46_4652; // "SPPROFFR"

/// The record of a sampled block, at the end of its slot.
#[repr(C)]
struct Header {
    state: u64,
    block: usize,
    /// Bytes usable at the block.
    usable: usize,
    /// Its stack's entry in the table.
    entry: usize,
    /// The weights counted for it in the table.
    objects: f64,
    space: f64,
    /// The next free slot of the kind (free slots).
    next: usize,
    _reserved: usize,
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
    (p as usize).wrapping_sub(BASE.load(core::sync::atomic::Ordering::Relaxed)) < REGION
}

pub struct Pool {
    base: usize,
    /// Slots of each kind ever handed out (the next fresh one).
    bump: [usize; KINDS],
    /// The first free slot of each kind, 0 if none.
    free: [usize; KINDS],
    /// Samples the pool could not hold.
    pub dropped: u64,
    /// Bytes usable in the live blocks.
    pub live_bytes: usize,
}

/// The slot size of a block of `usable` bytes at `align`, if any kind
/// holds it.
fn kind_for(usable: usize, align: usize) -> Option<usize> {
    let need = usable.checked_add(HEADER)?.max(align).max(PAGE);
    let slot = need.checked_next_power_of_two()?;
    let kind = (slot / PAGE).trailing_zeros() as usize;
    (kind < KINDS).then_some(kind)
}

impl Pool {
    pub const fn new() -> Self {
        Self {
            base: 0,
            bump: [0; KINDS],
            free: [0; KINDS],
            dropped: 0,
            live_bytes: 0,
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
        BASE.store(self.base, core::sync::atomic::Ordering::Relaxed);
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
        let Some(kind) = kind_for(usable, align) else {
            self.dropped += 1;
            return ptr::null_mut();
        };
        if self.base == 0 {
            return ptr::null_mut();
        }
        let slot_size = PAGE << kind;
        let header_page = slot_size - PAGE;
        let (slot, fresh) = if self.free[kind] != 0 {
            let slot = self.free[kind];
            // SAFETY: a free slot's header page stays readable and writable.
            self.free[kind] = unsafe { (*header_of(slot, slot_size)).next };
            (slot, false)
        } else {
            if self.bump[kind] >= SUBREGION / slot_size {
                self.dropped += 1;
                return ptr::null_mut();
            }
            let slot = self.base + kind * SUBREGION + self.bump[kind] * slot_size;
            // SAFETY: the slot's last page lies in the reserved region and
            // holds nothing yet.
            if !unsafe { os::protect((slot + header_page) as *mut u8, PAGE, true) } {
                return ptr::null_mut();
            }
            self.bump[kind] += 1;
            (slot, true)
        };
        // The block's pages before the header page.
        let data = os::align_up(usable, PAGE).min(header_page);
        // SAFETY: `[slot, slot + data)` lies in this slot, inaccessible and
        // unused since the slot was freed or reserved.
        if data > 0 && !unsafe { os::protect(slot as *mut u8, data, true) } {
            // SAFETY: as above; the header page is readable.
            unsafe { self.push_free(slot, slot_size) };
            return ptr::null_mut();
        }
        if zero && !fresh {
            // Pages made accessible again read as zero; the header page may
            // hold a previous block's bytes.
            let from = slot + header_page;
            let to = slot + usable;
            if to > from {
                // SAFETY: `[from, to)` lies in the slot's header page, before
                // the header (a block and its header fit in the slot).
                unsafe { ptr::write_bytes(from as *mut u8, 0, to - from) };
            }
        }
        // SAFETY: the header page is readable and writable (above).
        unsafe {
            header_of(slot, slot_size).write(Header {
                state: LIVE,
                block: slot,
                usable,
                entry,
                objects,
                space,
                next: 0,
                _reserved: 0,
            });
        }
        self.live_bytes += usable;
        slot as *mut u8
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
        let (state, block) = unsafe { ((*header).state, (*header).block) };
        if state != LIVE || block != slot {
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
        let (entry, objects, space, usable) = unsafe {
            let h = &*header;
            (h.entry, h.objects, h.space, h.usable)
        };
        self.live_bytes -= usable;
        if slot_size > PAGE {
            // SAFETY: the pages before the header page belong to this block,
            // which the caller gives up.
            unsafe { os::protect(p, slot_size - PAGE, false) };
        }
        // SAFETY: as above.
        unsafe { self.push_free(p as usize, slot_size) };
        Ok((entry, objects, space))
    }

    /// Puts `slot` on its kind's free list.
    ///
    /// # Safety
    /// `slot` is a used slot of `slot_size` bytes that nobody holds.
    unsafe fn push_free(&mut self, slot: usize, slot_size: usize) {
        let kind = (slot_size / PAGE).trailing_zeros() as usize;
        let header = header_of(slot, slot_size);
        // SAFETY: a used slot's header page is readable and writable.
        unsafe {
            (*header).state = FREE;
            (*header).next = self.free[kind];
        }
        self.free[kind] = slot;
    }

    /// Bytes usable at the live block `p`.
    pub fn usable_size(&self, p: *const u8) -> Result<usize, super::Misuse> {
        let (_, header) = self.live(p)?;
        // SAFETY: `live` checked the header, on a readable page.
        Ok(unsafe { (*header).usable })
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
        assert_eq!(kind_for(8, 8), Some(0));
        assert_eq!(kind_for(PAGE - HEADER, 16), Some(0));
        assert_eq!(kind_for(PAGE - HEADER + 1, 16), Some(1));
        assert_eq!(kind_for(32, 1 << 16), Some(4));
        assert_eq!(kind_for(1 << 29, 16), Some(18));
        assert_eq!(kind_for(1 << 30, 16), None);
    }
}

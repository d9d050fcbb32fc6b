//! The sampled large and huge blocks: they stay where the heap put them
//! (a span or a mapping, resized where it lies, cached when freed, like any
//! other), and the profiler keeps their records here, by address, in
//! memory it maps itself. Their frees are slow paths already (a span
//! record or a mapping to look at, a lock to take), and look here only
//! while some are live (one counter load otherwise: `prof::big_live`).
//!
//! An open-addressing table of [`SLOTS`] slots, linear probing, filled to
//! three quarters at most; a removal shifts the records after it back
//! (no tombstones). A sample that finds it full is dropped (counted).
//!
//! Invariants: under the profiler's lock; `len <= SLOTS * 3 / 4`; every
//! record lies between its home slot and the first empty slot after it; a
//! record's address is the block's start, present once.

use crate::os::{self, PAGE};

/// Records the table holds at most (a quarter more slots are empty).
#[cfg(not(loom))]
pub const SLOTS: usize = 1 << 16;
#[cfg(loom)]
pub const SLOTS: usize = 1 << 4;
const MAX_FILL: usize = SLOTS * 3 / 4;

const EMPTY: usize = 0;

/// A sampled large or huge block.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Record {
    /// Its address (`EMPTY`: a free slot).
    addr: usize,
    /// Its stack's entry in the table.
    pub entry: usize,
    /// Bytes it was asked for.
    pub size: usize,
    /// Its weights (objects, bytes).
    pub objects: f64,
    pub space: f64,
}

pub struct BigSamples {
    slots: *mut Record,
    len: usize,
    /// Samples dropped: the table was full.
    pub dropped: u64,
}

// SAFETY: the table's memory is the profiler's own, used under its lock.
unsafe impl Send for BigSamples {}

fn slot_of(addr: usize) -> usize {
    // Blocks are page-aligned or nearly: mix the high bits down.
    let h = (addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 32) as usize % SLOTS
}

impl BigSamples {
    pub const fn new() -> Self {
        Self {
            slots: core::ptr::null_mut(),
            len: 0,
            dropped: 0,
        }
    }

    /// Maps the table (once). False if the OS refuses.
    pub fn init(&mut self) -> bool {
        if !self.slots.is_null() {
            return true;
        }
        let Some(p) = os::reserve(Self::bytes(), PAGE) else {
            return false;
        };
        self.slots = p.as_ptr().cast();
        true
    }

    /// Bytes of the mapping.
    fn bytes() -> usize {
        os::align_up(SLOTS * size_of::<Record>(), PAGE)
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.len
    }

    fn at(&self, i: usize) -> *mut Record {
        debug_assert!(i < SLOTS);
        // SAFETY: `i < SLOTS`, within the mapping.
        unsafe { self.slots.add(i) }
    }

    /// The slot holding `addr`, if any.
    fn find(&self, addr: usize) -> Option<usize> {
        if self.slots.is_null() || addr == EMPTY {
            return None;
        }
        let mut i = slot_of(addr);
        loop {
            // SAFETY: a slot of the mapping (zero bytes read as `EMPTY`).
            let a = unsafe { (*self.at(i)).addr };
            if a == addr {
                return Some(i);
            }
            if a == EMPTY {
                return None;
            }
            i = (i + 1) % SLOTS;
        }
    }

    /// Records `addr` (not present); false if the table is full.
    pub fn insert(&mut self, addr: usize, entry: usize, size: usize, weights: (f64, f64)) -> bool {
        if self.slots.is_null() || addr == EMPTY {
            return false;
        }
        if self.len >= MAX_FILL {
            self.dropped += 1;
            return false;
        }
        let mut i = slot_of(addr);
        loop {
            // SAFETY: a slot of the mapping.
            let r = unsafe { &mut *self.at(i) };
            if r.addr == EMPTY {
                *r = Record {
                    addr,
                    entry,
                    size,
                    objects: weights.0,
                    space: weights.1,
                };
                self.len += 1;
                return true;
            }
            i = (i + 1) % SLOTS;
        }
    }

    /// Removes the record of `addr`, if it is one; the records after it in
    /// its run move back where their probe finds them.
    pub fn remove(&mut self, addr: usize) -> Option<Record> {
        let mut hole = self.find(addr)?;
        // SAFETY: a slot of the mapping, holding `addr`.
        let out = unsafe { *self.at(hole) };
        let mut j = hole;
        loop {
            j = (j + 1) % SLOTS;
            // SAFETY: a slot of the mapping.
            let r = unsafe { *self.at(j) };
            if r.addr == EMPTY {
                break;
            }
            // `r` may fill the hole unless its home lies cyclically in
            // (hole, j]: then its probe would not pass the hole.
            let home = slot_of(r.addr);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                // SAFETY: both are slots of the mapping.
                unsafe { *self.at(hole) = r };
                hole = j;
            }
        }
        // SAFETY: a slot of the mapping.
        unsafe { (*self.at(hole)).addr = EMPTY };
        self.len -= 1;
        Some(out)
    }
}

impl Drop for BigSamples {
    /// Gives the memory back (a table of a loom model, or of a test; the
    /// process's lives as long as the process).
    fn drop(&mut self) {
        if !self.slots.is_null() {
            // SAFETY: the mapping made by `init`, which nothing uses now.
            unsafe { os::release(self.slots.cast(), Self::bytes()) };
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn records_come_and_go_in_any_order() {
        let mut t = BigSamples::new();
        assert!(t.init());
        let n = MAX_FILL;
        let addr = |k: usize| (k + 1) << 21;
        for k in 0..n {
            assert!(t.insert(addr(k), k, 1 << 21, (1.0, 2.0)), "{k}");
        }
        assert!(!t.insert(7 << 40, 0, 1, (1.0, 1.0)), "full");
        // Every other one out, then every record still found.
        for k in (0..n).step_by(2) {
            assert_eq!(t.remove(addr(k)).map(|r| r.entry), Some(k));
        }
        assert!(t.remove(addr(0)).is_none());
        for k in 0..n {
            assert_eq!(t.find(addr(k)).is_some(), k % 2 == 1, "{k}");
        }
        for k in (0..n).step_by(2) {
            assert!(t.insert(addr(k), k, 1, (1.0, 1.0)), "{k}");
        }
        for k in (0..n).rev() {
            assert!(t.remove(addr(k)).is_some(), "{k}");
        }
        assert_eq!(t.len(), 0);
    }
}

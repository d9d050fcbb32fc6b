//! The stack table: each distinct stack seen in a sample, with its
//! counters, in memory the profiler maps itself (no allocation).
//!
//! Entries are appended in the order their stacks are first seen (an index
//! is stable for the process's life) and found again through an
//! open-addressing hash index of `u32`s. Each entry counts, in estimated
//! objects and bytes (the samples' weights): allocations since start
//! (`alloc`), blocks live now (`inuse`), and the live counts at the last
//! peak (`peak`). The peak is followed on the estimated live bytes: when
//! they pass the last peak by more than [`peak_slack`] (an interval, or
//! 1/64 of the peak), every entry's live counters are copied to its peak
//! counters, so the peak profile is within about 1.6% of the highest point
//! and the copies are few (logarithmic in the heap's growth).
//!
//! Invariants: under the profiler's lock; `len <= MAX_STACKS`; the index
//! holds `i + 1` for each entry `i` at the first free slot of its hash's
//! probe sequence, 0 in empty slots; the totals are the sums of the
//! entries' counters.

use super::MAX_DEPTH;
use crate::os::{self, PAGE};

/// Distinct stacks the table holds; samples of further stacks are dropped.
#[cfg(not(loom))]
pub const MAX_STACKS: usize = 1 << 14;
#[cfg(loom)]
pub const MAX_STACKS: usize = 1 << 3;
const INDEX_SLOTS: usize = 2 * MAX_STACKS;

/// A stack and its counters.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Entry {
    pub hash: u64,
    pub depth: usize,
    pub frames: [usize; MAX_DEPTH],
    pub alloc_objects: f64,
    pub alloc_space: f64,
    pub inuse_objects: f64,
    pub inuse_space: f64,
    pub peak_objects: f64,
    pub peak_space: f64,
}

impl Entry {
    /// One of the entry's live samples, of weights `(objects, space)`, was
    /// freed (in the table, or on a copy of it: see `Pool::freed_in_bins`).
    pub fn freed(&mut self, (objects, space): (f64, f64)) {
        self.inuse_objects -= objects;
        self.inuse_space -= space;
    }
}

impl super::ProfStats {
    /// A live sample of weights `(objects, space)` was freed (as
    /// [`Entry::freed`], on the figures).
    #[cfg(not(loom))]
    pub(super) fn freed(&mut self, (objects, space): (f64, f64)) {
        self.live_samples = self.live_samples.saturating_sub(1);
        self.live_bytes = (self.live_bytes - space).max(0.0);
        let var = self.live_bytes_sd * self.live_bytes_sd - variance(objects, space);
        self.live_bytes_sd = var.max(0.0).sqrt();
    }
}

pub struct Table {
    entries: *mut Entry,
    index: *mut u32,
    len: usize,
    live_space: f64,
    /// The variance of `live_space` as an estimate: the sum over live
    /// samples of `space^2 (1 - 1/objects)` (a sample of probability `p`
    /// standing for `space = bytes / p`).
    live_var: f64,
    live_samples: u64,
    peak_space: f64,
    /// Live bytes past which the next peak snapshot is taken.
    peak_mark: f64,
    alloc_space: f64,
    samples: u64,
    dropped: u64,
}

// SAFETY: the table's memory is the profiler's own, used under its lock.
unsafe impl Send for Table {}

fn hash(frames: &[usize]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ frames.len() as u64;
    for &f in frames {
        h = (h ^ f as u64)
            .wrapping_mul(0x0000_0100_0000_01B3)
            .rotate_left(29);
    }
    h ^ (h >> 32)
}

/// A sample's share of the variance of the live estimate (see `live_var`).
fn variance(objects: f64, space: f64) -> f64 {
    space * space * (1.0 - 1.0 / objects.max(1.0))
}

/// How far live bytes pass the last peak before a new snapshot.
fn peak_slack(peak: f64) -> f64 {
    (super::sample_interval() as f64).max(peak / 64.0)
}

impl Table {
    pub const fn new() -> Self {
        Self {
            entries: core::ptr::null_mut(),
            index: core::ptr::null_mut(),
            len: 0,
            live_space: 0.0,
            live_var: 0.0,
            live_samples: 0,
            peak_space: 0.0,
            peak_mark: 0.0,
            alloc_space: 0.0,
            samples: 0,
            dropped: 0,
        }
    }

    /// Maps the table's memory (once). False if the OS refuses.
    pub fn init(&mut self) -> bool {
        if !self.entries.is_null() {
            return true;
        }
        let (entries, index) = Self::sizes();
        let Some(e) = os::reserve(entries, PAGE) else {
            return false;
        };
        let Some(i) = os::reserve(index, PAGE) else {
            // SAFETY: just mapped, unused.
            unsafe { os::release(e.as_ptr(), entries) };
            return false;
        };
        self.entries = e.as_ptr().cast();
        self.index = i.as_ptr().cast();
        true
    }

    /// Bytes of the entries' and the index's mappings.
    fn sizes() -> (usize, usize) {
        (
            os::align_up(MAX_STACKS * size_of::<Entry>(), PAGE),
            os::align_up(INDEX_SLOTS * size_of::<u32>(), PAGE),
        )
    }

    pub fn len(&self) -> usize {
        self.len
    }

    fn entry(&mut self, i: usize) -> &mut Entry {
        debug_assert!(i < self.len);
        // SAFETY: entries below `len` are initialised, in the mapping.
        unsafe { &mut *self.entries.add(i) }
    }

    /// The entry of `frames`, added if new; `None` when the table is full.
    pub fn intern(&mut self, frames: &[usize]) -> Option<usize> {
        if self.entries.is_null() {
            return None;
        }
        let h = hash(frames);
        let mut slot = h as usize % INDEX_SLOTS;
        loop {
            // SAFETY: `slot < INDEX_SLOTS`, within the index mapping.
            let at = unsafe { *self.index.add(slot) };
            if at == 0 {
                break;
            }
            let i = at as usize - 1;
            let e = self.entry(i);
            if e.hash == h && e.frames[..e.depth] == *frames {
                return Some(i);
            }
            slot = (slot + 1) % INDEX_SLOTS;
        }
        if self.len == MAX_STACKS {
            self.dropped += 1;
            return None;
        }
        let i = self.len;
        let mut e = Entry {
            hash: h,
            depth: frames.len(),
            frames: [0; MAX_DEPTH],
            alloc_objects: 0.0,
            alloc_space: 0.0,
            inuse_objects: 0.0,
            inuse_space: 0.0,
            peak_objects: 0.0,
            peak_space: 0.0,
        };
        e.frames[..frames.len()].copy_from_slice(frames);
        // SAFETY: `i < MAX_STACKS`, within the mapping; `slot` is free.
        unsafe {
            self.entries.add(i).write(e);
            *self.index.add(slot) = i as u32 + 1;
        }
        self.len += 1;
        Some(i)
    }

    /// A sample of entry `i` with its weights.
    pub fn add(&mut self, i: usize, objects: f64, space: f64) {
        let e = self.entry(i);
        e.alloc_objects += objects;
        e.alloc_space += space;
        e.inuse_objects += objects;
        e.inuse_space += space;
        self.alloc_space += space;
        self.live_space += space;
        self.live_var += variance(objects, space);
        self.live_samples += 1;
        self.samples += 1;
        if self.live_space > self.peak_mark {
            self.snapshot_peak();
        }
    }

    /// A sampled block of entry `i` freed.
    pub fn remove(&mut self, i: usize, objects: f64, space: f64) {
        self.entry(i).freed((objects, space));
        self.live_space -= space;
        self.live_var -= variance(objects, space);
        self.live_samples -= 1;
    }

    /// A sampled block of entry `i` resized: its weights go from
    /// `(objects, space)` to `(objects2, space2)`; what it gained counts as
    /// allocated.
    pub fn reweigh(
        &mut self,
        i: usize,
        (objects, space): (f64, f64),
        (objects2, space2): (f64, f64),
    ) {
        let e = self.entry(i);
        e.inuse_objects += objects2 - objects;
        e.inuse_space += space2 - space;
        let gained = (space2 - space).max(0.0);
        e.alloc_space += gained;
        self.alloc_space += gained;
        self.live_space += space2 - space;
        self.live_var += variance(objects2, space2) - variance(objects, space);
        if self.live_space > self.peak_mark {
            self.snapshot_peak();
        }
    }

    /// The live counters become the peak.
    fn snapshot_peak(&mut self) {
        for i in 0..self.len {
            let e = self.entry(i);
            e.peak_objects = e.inuse_objects;
            e.peak_space = e.inuse_space;
        }
        self.peak_space = self.live_space;
        self.peak_mark = self.live_space + peak_slack(self.live_space);
    }

    pub fn reset_peak(&mut self) {
        self.snapshot_peak();
    }

    /// Copies the entries into `out` if its spare capacity holds them (no
    /// allocation); false otherwise.
    pub fn copy_into(&self, out: &mut Vec<Entry>) -> bool {
        if out.capacity() - out.len() < self.len {
            return false;
        }
        for i in 0..self.len {
            // SAFETY: entries below `len` are initialised.
            out.push(unsafe { *self.entries.add(i) });
        }
        true
    }

    pub fn stats(&self) -> super::ProfStats {
        super::ProfStats {
            live_samples: self.live_samples,
            live_bytes: self.live_space.max(0.0),
            live_bytes_sd: self.live_var.max(0.0).sqrt(),
            peak_bytes: self.peak_space.max(0.0),
            alloc_bytes: self.alloc_space,
            samples: self.samples,
            stacks: self.len,
            dropped: self.dropped,
            ..Default::default()
        }
    }
}

impl Drop for Table {
    /// Gives the memory back (a table of a loom model; the process's lives
    /// as long as the process).
    fn drop(&mut self) {
        if !self.entries.is_null() {
            let (entries, index) = Self::sizes();
            // SAFETY: the mappings made by `init`, which nothing uses now.
            unsafe {
                os::release(self.entries.cast(), entries);
                os::release(self.index.cast(), index);
            }
        }
    }
}

//! What the profiler's threads share: the sampled blocks and the stack
//! table under one lock, and the two facts read without it on the free
//! paths: where the pool's region is ([`Region`]: whether a small block is
//! a sampled one) and whether any sampled large or huge block is live (so
//! their frees skip the lock while none is). The process has one
//! (`prof::SHARED`); a loom model builds its own (`testing::model::ProfShared`).
//!
//! Invariants: the pool, the big-block records and the table change under
//! the lock only, together (a sample is in the table exactly while its
//! block's record is live); `big_live` is the records' count, stored under
//! the lock after every change, so a thread that received a sampled block
//! from the thread that recorded it (through any synchronisation) sees it
//! non-zero; the region is published before any of its blocks is handed
//! out.

use super::big::BigSamples;
use super::pool::{Pool, Region};
use super::table::{Entry, Table};
use super::{ProfStats, weight};
#[cfg(loom)]
use crate::sync::AtomicUsize;
use crate::sync::Lock;
use crate::sync::Ordering::Relaxed;
#[cfg(not(loom))]
use crate::sync::unmodeled::AtomicUsize;

/// Misuse of a sampled block's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misuse {
    /// Not a live sampled block (freed already, or never handed out).
    Freed,
    /// Inside a sampled block, not at its start.
    NotBlock,
}

/// The sampled blocks and the stacks.
pub struct State {
    pub pool: Pool,
    pub big: BigSamples,
    pub table: Table,
}

/// The profiler's shared state (see the module docs).
pub struct Shared {
    state: Lock<State>,
    region: Region,
    /// Sampled large and huge blocks live now.
    big_live: AtomicUsize,
}

impl Shared {
    crate::sync::const_fn! {
        /// An empty one: no memory until [`Shared::init`].
        pub fn new() -> Self {
            Self {
                state: Lock::new(State {
                    pool: Pool::new(),
                    big: BigSamples::new(),
                    table: Table::new(),
                }),
                region: Region::new(),
                big_live: AtomicUsize::new(0),
            }
        }
    }

    /// Runs `f` under the lock.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        self.state.with(f)
    }

    /// Maps the profiler's memory (once). False if the OS refuses.
    pub fn init(&self) -> bool {
        self.with(|s| s.pool.init(&self.region) && s.big.init() && s.table.init())
    }

    /// Whether `p` lies in the pool of sampled small blocks (no lock).
    #[inline(always)]
    pub fn owns(&self, p: *const u8) -> bool {
        self.region.owns(p)
    }

    /// Whether a sampled large or huge block is live (no lock).
    #[inline(always)]
    pub fn big_live(&self) -> bool {
        self.big_live.load(Relaxed) != 0
    }

    /// A sampled small block: a slot for `usable` bytes at `align` (zeroed
    /// if `zero`), charged `bytes` at interval `interval`, recorded for the
    /// stack `frames`. Null when the pool or the table is full.
    pub fn record_small(
        &self,
        frames: &[usize],
        (bytes, usable, align, zero): (usize, usize, usize, bool),
        interval: u64,
    ) -> *mut u8 {
        let (objects, space) = weight::weights(bytes, interval);
        self.with(|s| {
            let Some(entry) = s.table.intern(frames) else {
                s.pool.dropped += 1;
                return core::ptr::null_mut();
            };
            let p = s.pool.alloc(usable, align, zero, entry, objects, space);
            if !p.is_null() {
                s.table.add(entry, objects, space);
            }
            p
        })
    }

    /// Frees `p`, a sampled small block (its sample ends, unless it
    /// already has: see `end`).
    ///
    /// # Safety
    /// `p` must be in the pool ([`Shared::owns`]); if it is a live block,
    /// the caller gives it up.
    pub unsafe fn free_small(&self, p: *mut u8) -> Result<(), Misuse> {
        self.with(|s| {
            // SAFETY: `p` is in the pool (contract); `free` checks the rest.
            if let Some((entry, objects, space)) = unsafe { s.pool.free(p) }? {
                s.table.remove(entry, objects, space);
            }
            Ok(())
        })
    }

    /// Ends the sample of `p`, a live sampled small block that the
    /// allocator holds a while before [`Shared::free_small`] (the hardened
    /// build's quarantine).
    #[cfg(feature = "hardened")]
    pub fn end(&self, p: *mut u8) -> Result<(), Misuse> {
        self.with(|s| {
            let (entry, objects, space) = s.pool.end(p)?;
            s.table.remove(entry, objects, space);
            Ok(())
        })
    }

    /// Resizes `p`, a sampled small block, to `size` bytes where it lies if
    /// its slot has room (reweighed at interval `interval`); false
    /// otherwise.
    pub fn resize_small(&self, p: *mut u8, size: usize, interval: u64) -> bool {
        self.with(|s| {
            let Ok(before) = s.pool.record_of(p) else {
                return false;
            };
            if !s.pool.resize(p, size) {
                return false;
            }
            let old = (before.objects, before.space);
            let new = weight::reweigh(before.usable, size, before.objects, interval);
            s.pool.set_weights(p, new.0, new.1);
            s.table.reweigh(before.entry, old, new);
            true
        })
    }

    /// The classes whose thread-cache bins may hold a sampled block (see
    /// `Pool::cached_classes`; all of them past `at_most` slots): none
    /// without taking the lock while the pool was never used.
    #[cfg(not(loom))]
    pub fn cached_classes(&self, at_most: usize) -> u64 {
        if !self.region.in_use() {
            return 0;
        }
        self.with(|s| s.pool.cached_classes(at_most))
    }

    /// Bytes usable at `p`, a live sampled small block.
    pub fn usable_size(&self, p: *const u8) -> Result<usize, Misuse> {
        self.with(|s| s.pool.usable_size(p))
    }

    /// Records `p`, a large or huge block of `size` bytes, as sampled at
    /// interval `interval` for the stack `frames`; nothing if a table is
    /// full.
    pub fn record_big(&self, p: *mut u8, frames: &[usize], size: usize, interval: u64) {
        let (objects, space) = weight::weights(size, interval);
        self.with(|s| {
            let Some(entry) = s.table.intern(frames) else {
                s.big.dropped += 1;
                return;
            };
            if s.big.insert(p as usize, entry, size, (objects, space)) {
                s.table.add(entry, objects, space);
                self.big_live.store(s.big.len(), Relaxed);
            }
        })
    }

    /// `p`, a large or huge block, is freed: its sample, if it has one,
    /// ends.
    pub fn big_freed(&self, p: *mut u8) {
        self.with(|s| {
            if let Some(r) = s.big.remove(p as usize) {
                s.table.remove(r.entry, r.objects, r.space);
                self.big_live.store(s.big.len(), Relaxed);
            }
        })
    }

    /// `p`, a large or huge block, now has `new` bytes at `q`: if it is a
    /// sampled one, its record moves there, reweighed at interval
    /// `interval` (true); false otherwise.
    pub fn big_moved(&self, p: *mut u8, q: *mut u8, new: usize, interval: u64) -> bool {
        self.with(|s| {
            let Some(r) = s.big.remove(p as usize) else {
                return false;
            };
            let weights = weight::reweigh(r.size, new, r.objects, interval);
            s.table.reweigh(r.entry, (r.objects, r.space), weights);
            if !s.big.insert(q as usize, r.entry, new, weights) {
                s.table.remove(r.entry, weights.0, weights.1);
            }
            self.big_live.store(s.big.len(), Relaxed);
            true
        })
    }

    /// The table's figures and the pool's; the live ones without the
    /// samples whose blocks were freed into a thread cache's bin (see
    /// `Pool::freed_in_bins`).
    pub fn stats(&self) -> ProfStats {
        self.with(|s| {
            let mut st = s.table.stats();
            st.dropped += s.pool.dropped + s.big.dropped;
            st.pool_bytes = s.pool.live_bytes;
            #[cfg(not(loom))]
            s.pool
                .freed_in_bins(|_, objects, space| st.freed((objects, space)));
            st
        })
    }

    /// Copies the table's entries into `out` if its spare capacity holds
    /// them (no allocation under the lock); false otherwise. The live
    /// counters of the copy leave out the samples whose blocks were freed
    /// into a thread cache's bin (as [`Shared::stats`]).
    pub fn copy_table(&self, out: &mut Vec<Entry>) -> bool {
        self.with(|s| {
            #[cfg(not(loom))]
            let start = out.len();
            if !s.table.copy_into(out) {
                return false;
            }
            #[cfg(not(loom))]
            s.pool.freed_in_bins(|entry, objects, space| {
                if let Some(e) = out.get_mut(start + entry) {
                    e.freed((objects, space));
                }
            });
            true
        })
    }

    /// Entries of the table.
    pub fn stacks(&self) -> usize {
        self.with(|s| s.table.len())
    }

    /// Makes the current live heap the peak.
    pub fn reset_peak(&self) {
        self.with(|s| s.table.reset_peak());
    }

    /// Takes the lock across `fork` (see `global::fork_prepare`).
    ///
    /// # Safety
    /// As `Lock::force_lock`: [`Shared::fork_unlock`] must follow once.
    #[cfg(not(loom))]
    pub unsafe fn fork_lock(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.state.force_lock() }
    }

    /// Releases the lock taken by [`Shared::fork_lock`].
    ///
    /// # Safety
    /// The lock must be held through [`Shared::fork_lock`].
    #[cfg(not(loom))]
    pub unsafe fn fork_unlock(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.state.force_unlock() }
    }
}

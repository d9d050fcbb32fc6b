//! The thread cache's slow paths: refilling a class from its central pool
//! (`refill`, with a first refill of about a page for a class the thread
//! has not used), sending a batch back when a class overflows its limit
//! (`overflow`), the adaptive limits within the byte budget (`set_limit`),
//! the chores every slow path does first (maintenance, the collect epoch,
//! the decay of idle classes) and the flush of everything (`flush_all`).
//!
//! Invariant (with `tcache`'s): `limit_bytes` is the sum of the limits in
//! bytes, and only `set_limit` changes a limit.

use super::{BUDGET_BYTES, CacheState, FIRST_REFILL_BYTES, MAX_OVERAGES, ThreadCache};
use crate::backend::{Backend, Owners};
use crate::block::Chain;
use crate::central::Refill;
use crate::config;
use crate::os;
use crate::poison;
use crate::size_class::{CLASSES, NUM_CLASSES, SizeClass};
use core::ptr;

impl ThreadCache {
    /// Work every slow path does first: heap maintenance when due, a flush
    /// when `collect` asked for one, and the decay of idle classes.
    fn slow_path_chores(&mut self, heap: &Backend, class: usize) {
        let now = heap.tick();
        self.touched |= 1 << class;
        let epoch = heap.epoch();
        if epoch != self.epoch {
            self.epoch = epoch;
            self.flush_all(heap);
        } else if os::reached(now, self.next_decay) {
            self.decay(heap);
            self.next_decay = now.wrapping_add(config::purge_delay_ms());
        }
    }

    /// Classes untouched by a slow path since the last decay give back half
    /// of their blocks, and their limits halve.
    fn decay(&mut self, heap: &Backend) {
        let idle = !self.touched;
        self.touched = 0;
        for (class, info) in CLASSES.iter().enumerate() {
            if idle & (1 << class) == 0 || self.bins.count(class) == 0 {
                continue;
            }
            let n = self.bins.count(class).div_ceil(2);
            let (batch, owners) = self.take_batch(class, n);
            let halved = (self.bins.limit(class) / 2).max(info.batch);
            heap.flush(class, batch, owners, self.sender());
            self.set_limit(class, halved.max(self.bins.count(class)));
            self.publish(heap, class);
        }
    }

    /// Publishes the count of `class` to its central pool (statistics).
    fn publish(&mut self, heap: &Backend, class: usize) {
        let count = self.bins.count(class);
        let delta = count as isize - self.published[class] as isize;
        if delta != 0 {
            heap.publish_cached(class, delta, self.arena());
            self.published[class] = count;
        }
    }

    /// Slow path of `pop` on an active cache: refills `class` from the
    /// central pool and returns one block (null when out of memory).
    pub fn refill(&mut self, heap: &Backend, class: usize) -> *mut u8 {
        debug_assert!(self.state == CacheState::Active && self.bins.count(class) == 0);
        self.slow_path_chores(heap, class);
        let info = &CLASSES[class];
        // A class this thread has not used yet (or gave back) starts with
        // about a page of blocks: a program that allocates a few blocks of
        // many classes touches little memory.
        let first = self.refilled & (1 << class) == 0;
        self.refilled |= 1 << class;
        let want = if first {
            let page = FIRST_REFILL_BYTES.div_ceil(info.size as usize) as u32;
            info.batch.min(page).max(2)
        } else {
            info.batch
        };
        let ask = Refill {
            want,
            thread: self.serial,
        };
        // A chain ends at a null link, where the fast path stops: it becomes
        // the bin as it is.
        let mut chain = heap.refill(class, ask, self.arena());
        let Some(b) = chain.pop() else {
            return ptr::null_mut();
        };
        // A refill means the thread allocates from this class: let it keep
        // more of what it frees (the limit first: the bin is empty).
        let current = self.bins.limit(class);
        let grown = (current + info.batch).min(info.max_cached).max(chain.len());
        self.set_limit(class, grown);
        self.bin(class).set_chain(chain);
        self.publish(heap, class);
        poison::unpoison(b.cast(), || info.size as usize);
        b.cast()
    }

    /// Slow path of `push` on an active cache: the bin is full (or was never
    /// used). Sends a batch to the central pool and caches `p`.
    ///
    /// # Safety
    /// `p` must be a live block of `class` that the caller gives up.
    pub unsafe fn overflow(&mut self, heap: &Backend, size_class: SizeClass, p: *mut u8) {
        let class = size_class.index();
        debug_assert!(self.state == CacheState::Active);
        self.slow_path_chores(heap, class);
        let info = &CLASSES[class];
        let limit = self.bins.limit(class);
        if limit == 0 {
            // The first block of a class this thread has not allocated was
            // allocated by another thread: it goes back to its slab rather
            // than being handed out here next, where it would share cache
            // lines with the other thread's blocks (passive false sharing).
            // Later frees of the class are cached as usual.
            self.set_limit(class, info.batch);
            // SAFETY: `p` is a live block of `class` given up by the caller.
            unsafe { heap.free_block(class, p) };
            return;
        } else {
            // Frequent overflows: this thread frees more than it allocates.
            self.overages[class] += 1;
            let mut limit = limit;
            if self.overages[class] > MAX_OVERAGES {
                self.overages[class] = 0;
                if limit > info.batch {
                    limit -= info.batch;
                }
            }
            let count = self.bins.count(class);
            // At least a batch, and enough to make room under the limit.
            let n = info.batch.max((count + 1).saturating_sub(limit)).min(count);
            let (batch, owners) = self.take_batch(class, n);
            heap.flush(class, batch, owners, self.sender());
            // The frees that overflow stands for (see `note_ops`).
            #[cfg(all(feature = "prof", not(loom)))]
            self.note_ops(u64::from(n));
            // The limit after the batch went: the count stays within it.
            if limit != self.bins.limit(class) {
                self.set_limit(class, limit.max(self.bins.count(class)));
            }
        }
        // SAFETY: the bin has room (a flush above, or a chore emptied it);
        // `p` is handed over by the caller.
        let pushed = unsafe { self.push(size_class, p) };
        debug_assert!(pushed);
        self.publish(heap, class);
    }

    /// The first `n` blocks of `class` as a batch to flush (see
    /// `Bin::take_batch`); in the `prof` build, the profiler's sampled
    /// blocks among them (below the floor, in no segment) go aside, found
    /// by the walk that takes the batch.
    fn take_batch(&mut self, class: usize, n: u32) -> (Chain, Owners) {
        #[cfg(all(feature = "prof", not(loom)))]
        let floor = self.floor;
        #[cfg(not(all(feature = "prof", not(loom))))]
        let floor = 1;
        #[cfg_attr(not(all(feature = "prof", not(loom))), allow(unused_mut))]
        let (mut batch, owners, foreign) = self.bin(class).take_batch(n, floor);
        #[cfg(all(feature = "prof", not(loom)))]
        if foreign {
            super::bin::split_foreign(&mut batch, &mut self.outcasts, floor);
        }
        #[cfg(not(all(feature = "prof", not(loom))))]
        let _ = foreign;
        (batch, owners)
    }

    /// Every block of `class`, as a chain, without walking it (the bins
    /// were scrubbed: see `flush_scrubbed`).
    fn take_all(&mut self, class: usize) -> Chain {
        let mut bin = self.bin(class);
        let count = bin.count();
        bin.take(count)
    }

    /// Sets the limit of `class` within the byte budget; trims the list if
    /// the new limit is below its length.
    fn set_limit(&mut self, class: usize, limit: u32) {
        let size = CLASSES[class].size as usize;
        let old = self.bins.limit(class) as usize * size;
        let mut new = limit as usize * size;
        let others = self.limit_bytes - old;
        if new > old && others + new > BUDGET_BYTES {
            // Over budget: grow no further than the budget allows, but keep
            // at least the current limit and one batch.
            let floor = old.max(CLASSES[class].batch as usize * size);
            new = BUDGET_BYTES.saturating_sub(others).max(floor);
        }
        let limit = (new / size) as u32;
        self.limit_bytes = others + limit as usize * size;
        self.bin(class).set_limit(limit);
    }

    /// Puts every cached block back on its slab (thread exit or an explicit
    /// collect) and resets the limits; the cache stays usable. Not as
    /// batches on the transfer stacks: those would keep each block's slab
    /// from emptying, and with whole bins of short-lived threads they piled
    /// up (a new thread takes its first blocks of a class from the slabs'
    /// free lists, which this feeds; `larson`'s peak RSS went from 1.8 to
    /// about 1.1 times glibc's).
    /// With `prof`, every bin is walked first for the profiler's sampled
    /// blocks ([`ThreadCache::flush_scrubbed`] walks only those named).
    pub fn flush_all(&mut self, heap: &Backend) {
        #[cfg(all(feature = "prof", not(loom)))]
        self.scrub_classes(u64::MAX);
        self.flush_scrubbed(heap);
    }

    /// As [`ThreadCache::flush_all`], the bins rid of the profiler's sampled
    /// blocks by the caller (`prof::scrub_cache`), or without `prof`.
    pub fn flush_scrubbed(&mut self, heap: &Backend) {
        // The quarantine first: its blocks are freed for real (the
        // profiler's sampled blocks among them go aside, as in `scrub`).
        #[cfg(feature = "hardened")]
        {
            #[cfg(all(feature = "prof", not(loom)))]
            let (floor, outcasts) = (self.floor, &mut self.outcasts);
            self.quarantine.drain(|b, class| {
                #[cfg(all(feature = "prof", not(loom)))]
                if (b as usize) < floor && !crate::registry::in_segment(b) {
                    // SAFETY: a quarantined block is free, the cache's.
                    unsafe { outcasts.push(b.cast()) };
                    return;
                }
                // SAFETY: a quarantined block is a live block of `class` that
                // the program gave up.
                unsafe { heap.free_block(class.index(), b) }
            });
        }
        for class in 0..NUM_CLASSES {
            // The whole bin, without walking it: blocks of other arenas in it
            // are sorted out when they go back to their slabs.
            let all = self.take_all(class);
            self.bin(class).set_limit(0);
            heap.give_back(class, all);
            self.publish(heap, class);
        }
        self.overages = [0; NUM_CLASSES];
        self.refilled = 0;
        self.limit_bytes = 0;
    }
}

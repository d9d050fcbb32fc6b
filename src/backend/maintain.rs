//! Maintenance without a thread of its own, and the release-and-retry of
//! a request the OS refused: [`Backend::tick`] (called on every slow path)
//! runs a pass at most once per half purge delay, trimming idle classes and
//! decommitting the free pages whose delay has passed; [`Backend::collect`]
//! does all of it at once; [`Backend::release_for_retry`] unmaps what the
//! heap holds without need before a failed request is tried once more.
//!
//! Invariant: one maintenance pass runs at a time (`maintaining`), and the
//! collect epoch only grows.

use super::Backend;
use crate::config;
use crate::os;
use crate::sync::Ordering;

impl Backend {
    /// Called on every slow path: runs maintenance when it is due. Returns
    /// the current time ([`os::now_ms`]).
    #[inline]
    pub fn tick(&self) -> u32 {
        let now = os::now_ms();
        if os::reached(now, self.next_maintenance.load(Ordering::Relaxed))
            && !self.maintaining.swap(true, Ordering::Acquire)
        {
            // Another thread may have run a pass between the load above and
            // the swap; the swap read its release, so its deadline shows.
            if os::reached(now, self.next_maintenance.load(Ordering::Relaxed)) {
                let period = (config::purge_delay_ms() / 2).max(1);
                self.next_maintenance
                    .store(now.wrapping_add(period), Ordering::Relaxed);
                self.maintain(now);
            }
            self.maintaining.store(false, Ordering::Release);
        }
        now
    }

    /// Trims idle classes and purges the free pages that are due.
    #[cold]
    fn maintain(&self, now: u32) {
        for (index, shard) in self.used_shards() {
            for (class, central) in shard.central.iter().enumerate() {
                let foreign = central.trim(class, self.home(index));
                self.give_back(class, foreign);
            }
        }
        for (_, shard) in self.used_shards() {
            shard.arena.purge_expired(now);
        }
        self.huge.cache.purge_expired(now);
    }

    /// Returns every free page to the OS now: transfer stacks to slabs,
    /// empty slabs to arenas, free pages of sparse slabs and of segments
    /// decommitted, empty segments unmapped. Thread caches flush at their
    /// next slow path (the caller flushes its own first).
    pub fn collect(&self) {
        self.return_cached_blocks();
        for (_, shard) in self.used_shards() {
            shard.arena.trim();
        }
        self.huge.cache.release_all();
    }

    /// Asks every thread cache to flush at its next slow path, and moves
    /// the central pools' cached batches back to their slabs, empty slabs
    /// back to their arenas.
    fn return_cached_blocks(&self) {
        self.epoch.fetch_add(1, Ordering::Relaxed);
        for (index, shard) in self.used_shards() {
            for (class, central) in shard.central.iter().enumerate() {
                let (_, foreign) = central.collect(class, self.home(index));
                self.give_back(class, foreign);
            }
        }
        // Blocks given back to a shard collected before them may have left
        // a slab empty there: a second pass releases it. (Other threads may
        // be flushing meanwhile: what their batches brought goes home too.)
        for (index, shard) in self.used_shards() {
            for (class, central) in shard.central.iter().enumerate() {
                let (_, foreign) = central.collect(class, self.home(index));
                self.give_back(class, foreign);
            }
        }
    }

    /// A request failed, because an `mmap` did: unmaps what the heap holds
    /// without need (cached blocks go back to their slabs and empty slabs
    /// to their arenas, then every empty segment and every cached huge
    /// run is unmapped), so that a retry finds the address space and
    /// commit charge they held. Other threads' caches flush at their next
    /// slow path. Unlike `collect`, partly used segments are not purged:
    /// decommitting gives back neither.
    #[cold]
    #[inline(never)]
    pub fn release_for_retry(&self) {
        self.return_cached_blocks();
        for (_, shard) in self.used_shards() {
            shard.arena.release_empty();
        }
        self.huge.cache.release_all();
    }

    /// `attempt()`, and if it `failed`, once more after
    /// [`Backend::release_for_retry`].
    #[inline]
    pub(super) fn retry_after_release<T>(
        &self,
        attempt: impl Fn() -> T,
        failed: impl Fn(&T) -> bool,
    ) -> T {
        let got = attempt();
        if !failed(&got) {
            return got;
        }
        self.release_for_retry();
        attempt()
    }

    /// The collect epoch (see `ThreadCache`).
    pub fn epoch(&self) -> u32 {
        self.epoch.load(Ordering::Relaxed)
    }
}

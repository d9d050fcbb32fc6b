//! `fork` safety: every lock of the backend taken in the global lock order
//! before a `fork` and released after it in both processes, and the state a
//! forked child resets (it has one thread left).

use super::Backend;
#[cfg(not(loom))]
use super::shards::Exits;
#[cfg(not(loom))]
use crate::sync::Ordering;

impl Backend {
    /// Takes every lock of the heap, in the global lock order (the
    /// assignment lock, central pools, then arenas), so that a `fork`
    /// happens with none held midway. Shards never used have nothing to
    /// lock, and none becomes used meanwhile (the assignment lock is held).
    ///
    /// # Safety
    /// Must be followed by [`Backend::unlock_all`] in the parent and the child.
    #[cfg(not(loom))]
    pub unsafe fn lock_all(&self) {
        // SAFETY: every lock taken here is released by `unlock_all`, which
        // sees the same used shards (none is added while `assigning` is
        // held).
        unsafe {
            self.assigning.force_lock();
            for (_, shard) in self.used_shards() {
                shard.central.iter().for_each(|c| c.fork_lock());
            }
            for (_, shard) in self.used_shards() {
                shard.arena.fork_lock();
            }
            self.huge.cache.fork_lock();
        }
    }

    /// Releases the locks taken by [`Backend::lock_all`].
    ///
    /// # Safety
    /// The locks must be held through `lock_all`.
    #[cfg(not(loom))]
    pub unsafe fn unlock_all(&self) {
        // SAFETY: `lock_all` took exactly these locks.
        unsafe {
            self.huge.cache.fork_unlock();
            for (_, shard) in self.used_shards() {
                shard.arena.fork_unlock();
            }
            for (_, shard) in self.used_shards() {
                shard.central.iter().for_each(|c| c.fork_unlock());
            }
            self.assigning.force_unlock();
        }
    }

    /// In a forked child: only the forking thread exists (its cache's home
    /// is `home`, if it has one), so a maintenance pass another thread was
    /// running will never finish; allow new ones, and count the threads left.
    #[cfg(not(loom))]
    pub fn after_fork_in_child(&self, home: Option<usize>) {
        self.maintaining.store(false, Ordering::Release);
        self.assigning.with(|exits| *exits = Exits::new());
        self.threads
            .store(home.is_some() as usize, Ordering::Relaxed);
        for (i, n) in self.arena_threads.iter().enumerate() {
            n.store((home == Some(i)) as usize, Ordering::Relaxed);
        }
    }
}

//! The shards and the threads that call them home: a shard is an arena and
//! the central pools of its slabs, one per class. A new thread is assigned
//! a home shard (preferring the shard of the thread that exited last, so
//! its memory, the most likely to be still written, is taken over rather
//! than fresh pages touched or segments mapped), and only
//! shards that have been a home are ever visited (maintenance, statistics,
//! `fork`).
//!
//! Invariant: bit `i` of `Backend::used` is set before shard `i` holds any
//! memory, under the assignment lock.

use super::{Backend, MAX_ARENAS};
use crate::arena::Arena;
use crate::central::{Central, Home};
use crate::os;
use crate::segment::SegmentRef;
use crate::size_class::NUM_CLASSES;
use crate::sync::{CachePadded, Ordering, array_of, const_fn};

/// Shards per CPU: threads spread over them, so that two threads running at
/// once rarely share one (and with it slabs and locks).
const ARENAS_PER_CPU: usize = 2;

/// An arena and the central pools of its slabs, one per class.
pub(super) struct Shard {
    pub(super) arena: CachePadded<Arena>,
    pub(super) central: [CachePadded<Central>; NUM_CLASSES],
}

impl Shard {
    const_fn! {
        pub(super) fn new() -> Self {
            Self {
                arena: CachePadded::new(Arena::new()),
                central: array_of!(NUM_CLASSES, CachePadded::new(Central::new())),
            }
        }
    }
}

/// The shards of the last threads that exited, in order (a ring; the
/// newest is taken first, the oldest forgotten first).
pub(super) struct Exits {
    shards: [u8; EXITS],
    oldest: usize,
    len: usize,
}

/// Exits remembered; older ones are forgotten.
const EXITS: usize = 64;
const _: () = assert!(MAX_ARENAS <= u8::MAX as usize);

impl Exits {
    pub(super) const fn new() -> Self {
        Self {
            shards: [0; EXITS],
            oldest: 0,
            len: 0,
        }
    }

    fn push(&mut self, shard: usize) {
        if self.len == EXITS {
            self.oldest = (self.oldest + 1) % EXITS;
            self.len -= 1;
        }
        self.shards[(self.oldest + self.len) % EXITS] = shard as u8;
        self.len += 1;
    }

    fn pop_newest(&mut self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        Some(usize::from(self.shards[(self.oldest + self.len) % EXITS]))
    }
}

impl Backend {
    /// Registers a new thread cache; returns the shard it should use. A new
    /// thread takes the place of the thread that exited last, if that
    /// leaves the shards balanced (its shard has at most one thread more
    /// than the emptiest); otherwise the shard with the fewest live
    /// threads, lowest index first. A thread that replaces one that exited
    /// thus takes over its shard and the memory it holds (rather than
    /// touching fresh pages in another); the last exit's memory is the one
    /// still written (its blocks cached in the pools, its free pages not
    /// yet decommitted), where an older exit's may have been purged since.
    /// Threads replaced in turn (a pool of workers, a thread handing its
    /// data to the next) each take over a predecessor's shard.
    pub fn assign_arena(&self) -> usize {
        self.threads.fetch_add(1, Ordering::Relaxed);
        self.assigning.with(|exits| {
            let arenas = &self.arena_threads[..self.arenas_in_use()];
            let count = |i: usize| arenas[i].load(Ordering::Relaxed);
            let fewest = (0..arenas.len()).min_by_key(|&i| count(i)).unwrap_or(0);
            let home = match exits.pop_newest() {
                Some(i) if i < arenas.len() && count(i) <= count(fewest) + 1 => i,
                _ => fewest,
            };
            arenas[home].fetch_add(1, Ordering::Relaxed);
            self.used.fetch_or(1 << home, Ordering::Relaxed);
            home
        })
    }

    /// A new serial number for a thread cache (statistics tell a thread's
    /// own batches from other threads' by it).
    pub fn thread_serial(&self) -> u32 {
        self.thread_serials.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The thread cache of arena `home` was flushed for good (its thread
    /// exited).
    pub fn thread_exited(&self, home: usize) {
        self.threads.fetch_sub(1, Ordering::Relaxed);
        self.assigning.with(|exits| {
            self.arena_threads[home].fetch_sub(1, Ordering::Relaxed);
            exits.push(home);
        });
    }

    /// The shards in use, with their indexes: the set bits of the mask,
    /// not a scan of all [`MAX_ARENAS`] (a refill that finds nothing at
    /// home walks this, and most programs use one or two shards).
    pub(super) fn used_shards(&self) -> impl Iterator<Item = (usize, &Shard)> {
        let mut used = self.used.load(Ordering::Relaxed) | 1;
        core::iter::from_fn(move || {
            let i = used.trailing_zeros() as usize;
            used &= used.wrapping_sub(1);
            // A bit past the shards (none is ever set) ends the walk, as
            // the empty mask does (`trailing_zeros` is then the width).
            self.shards.get(i).map(|shard| (i, shard))
        })
    }

    /// Shard `index` as the home of its central pools.
    pub(super) fn home(&self, index: usize) -> Home<'_> {
        Home {
            arena: &self.shards[index].arena,
            index,
        }
    }

    /// The shard owning block `b` (the arena of its segment).
    ///
    /// # Safety
    /// `b` must be a live small or large block of this heap.
    #[inline]
    pub unsafe fn owner_of(b: *const u8) -> usize {
        // SAFETY: by contract `b` lies in a live segment.
        unsafe { SegmentRef::of(b) }.arena()
    }

    pub(super) fn arenas_in_use(&self) -> usize {
        let mut count = self.arena_count.load(Ordering::Relaxed);
        if count == 0 {
            count = (os::cpu_count() * ARENAS_PER_CPU).clamp(1, MAX_ARENAS);
            self.arena_count.store(count, Ordering::Relaxed);
        }
        count
    }
}

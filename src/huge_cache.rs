//! The cache of freed huge mappings: runs of whole chunks (4 MiB) that held
//! huge blocks, kept mapped for the next huge request instead of being
//! unmapped and mapped again (a system call each, and a page fault for
//! every page touched).
//!
//! A run is split to serve a smaller request and merged with the runs right
//! next to it in the address space, so freed memory serves any later size,
//! and a block that grows in place can take the run right after it. The
//! runs follow the `purge` policy: while the cache is cold a freed run is
//! decommitted at once (only its address space is kept); while hot it stays
//! resident for the (adaptive) purge delay, then maintenance decommits it.
//! Bounds: [`RUNS`] runs and [`CACHE_BYTES`] of address space (the runs that
//! waited longest are unmapped first), [`CACHE_DIRTY_BYTES`] resident (the
//! oldest are decommitted first).
//!
//! Invariants (under the lock): runs are chunk-aligned, chunk-rounded,
//! pairwise disjoint, never adjacent to a run in the same state (those are
//! merged), recorded in
//! the registry as [`ChunkKind::HugeFree`]; `bytes` and `dirty_bytes` are
//! the sums of the lengths of all runs and of the dirty ones.

use crate::layout::SEGMENT_SIZE;
use crate::os;
use crate::poison;
use crate::purge::PurgePolicy;
use crate::registry::{self, ChunkKind};
use crate::sync::{Lock, const_fn};
use core::ptr;

/// Runs the cache keeps at most.
pub const RUNS: usize = 16;
/// Address space the cache keeps at most.
pub const CACHE_BYTES: usize = 512 << 20;
/// Cached bytes that may stay resident (while hot).
pub const CACHE_DIRTY_BYTES: usize = 256 << 20;

/// Freed chunk runs, behind a lock.
pub struct HugeCache {
    state: Lock<CacheState>,
}

struct CacheState {
    runs: [Run; RUNS],
    len: usize,
    bytes: usize,
    dirty_bytes: usize,
    policy: PurgePolicy,
}

/// A free run of chunks.
#[derive(Clone, Copy, Debug)]
struct Run {
    base: *mut u8,
    len: usize,
    /// Its pages may be resident.
    dirty: bool,
    /// When it was freed (dirty) or last decommitted (clean).
    since: u32,
}

// SAFETY: the runs are address ranges nobody else uses; the lock serialises
// access to them.
unsafe impl Send for CacheState {}

const NO_RUN: Run = Run {
    base: ptr::null_mut(),
    len: 0,
    dirty: false,
    since: 0,
};

/// Memory handed out by the cache.
pub struct Taken {
    pub base: *mut u8,
    /// Its pages may hold old data.
    pub dirty: bool,
}

impl HugeCache {
    const_fn! {
        pub fn new() -> Self {
            Self {
                state: Lock::new(CacheState {
                    runs: [NO_RUN; RUNS],
                    len: 0,
                    bytes: 0,
                    dirty_bytes: 0,
                    policy: PurgePolicy::new(),
                }),
            }
        }
    }

    /// `len` bytes (chunk-rounded) from the smallest run that holds them;
    /// clean memory only if `clean`.
    pub fn take(&self, len: usize, clean: bool) -> Option<Taken> {
        let now = os::now_ms();
        self.state.with(|st| {
            let mut best: Option<usize> = None;
            for (i, r) in st.runs[..st.len].iter().enumerate() {
                if r.len >= len
                    && !(clean && r.dirty)
                    && best.is_none_or(|b| r.len < st.runs[b].len)
                {
                    best = Some(i);
                }
            }
            let i = best?;
            Some(st.take_front(i, len, now))
        })
    }

    /// Whether a resident run holds `len` bytes.
    pub fn has_dirty(&self, len: usize) -> bool {
        self.state
            .with(|st| st.runs[..st.len].iter().any(|r| r.dirty && r.len >= len))
    }

    /// `len` bytes starting at `at`, if a run starts there and holds them
    /// (growing a block in place).
    pub fn take_at(&self, at: *mut u8, len: usize) -> Option<Taken> {
        let now = os::now_ms();
        self.state.with(|st| {
            let i = st.runs[..st.len]
                .iter()
                .position(|r| r.base == at && r.len >= len)?;
            Some(st.take_front(i, len, now))
        })
    }

    /// Takes back `[base, base + len)`, a chunk-aligned, chunk-rounded range
    /// of a huge mapping that holds nothing any more.
    pub fn put(&self, base: *mut u8, len: usize) {
        poison::poison(base, || len);
        registry::set(base, len, ChunkKind::HugeFree);
        let now = os::now_ms();
        self.state.with(|st| st.put(base, len, now));
    }

    /// Decommits the runs freed at least a delay before `now`.
    pub fn purge_expired(&self, now: u32) {
        self.state.with(|st| {
            let delay = st.policy.delay();
            let expired = |r: &Run| r.dirty && os::reached(now, r.since.wrapping_add(delay));
            // A decommit may merge runs, which reorders them: search again.
            while let Some(i) = st.runs[..st.len].iter().position(expired) {
                st.decommit(i, now);
            }
        });
    }

    /// Unmaps every run.
    pub fn release_all(&self) {
        self.state.with(|st| {
            while st.len > 0 {
                let r = st.remove(st.len - 1);
                unmap(r.base, r.len);
            }
        });
    }

    /// (address space, resident bytes) of the runs.
    pub fn bytes(&self) -> (usize, usize) {
        self.state.with(|st| (st.bytes, st.dirty_bytes))
    }

    /// Takes this cache's lock and keeps it (around `fork`).
    ///
    /// # Safety
    /// Must be paired with [`Self::fork_unlock`].
    #[cfg(not(loom))]
    pub unsafe fn fork_lock(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.state.force_lock() }
    }

    /// Releases the lock taken by [`Self::fork_lock`].
    ///
    /// # Safety
    /// The lock must be held through `fork_lock`.
    #[cfg(not(loom))]
    pub unsafe fn fork_unlock(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.state.force_unlock() }
    }

    /// Makes the cache defer its purges (tests).
    #[cfg(all(test, not(loom)))]
    pub fn force_hot(&self) {
        self.state
            .with(|st| st.policy.force_hot(os::now_ms().wrapping_add(1 << 30)));
    }
}

/// Consistency checks (tests, fuzzing).
#[cfg(any(test, fuzzing, feature = "invariants"))]
impl HugeCache {
    /// Checks the invariants at the top of this file and the bounds.
    pub fn check(&self) {
        self.state.with(|st| {
            let runs = &st.runs[..st.len];
            let (mut bytes, mut dirty) = (0, 0);
            for (i, r) in runs.iter().enumerate() {
                let (a, end) = (r.base as usize, r.base as usize + r.len);
                assert!(
                    r.len > 0 && a % SEGMENT_SIZE == 0 && r.len % SEGMENT_SIZE == 0,
                    "huge cache: run {:p}+{:#x} not whole chunks",
                    r.base,
                    r.len
                );
                for o in &runs[i + 1..] {
                    let (b, o_end) = (o.base as usize, o.base as usize + o.len);
                    assert!(end <= b || o_end <= a, "huge cache: runs overlap");
                    let touch = end == b || o_end == a;
                    assert!(
                        !touch || r.dirty != o.dirty,
                        "huge cache: adjacent runs not merged"
                    );
                }
                #[cfg(not(loom))]
                for c in (a..end).step_by(SEGMENT_SIZE) {
                    assert_eq!(
                        registry::kind_of(c as *const u8),
                        ChunkKind::HugeFree,
                        "huge cache: registry"
                    );
                }
                bytes += r.len;
                dirty += if r.dirty { r.len } else { 0 };
            }
            assert_eq!(
                (bytes, dirty),
                (st.bytes, st.dirty_bytes),
                "huge cache: byte counts"
            );
            assert!(
                bytes <= CACHE_BYTES && dirty <= CACHE_DIRTY_BYTES,
                "huge cache: over its bounds"
            );
        });
    }
}

impl CacheState {
    /// Removes run `i` (order is not kept).
    fn remove(&mut self, i: usize) -> Run {
        let r = self.runs[i];
        self.len -= 1;
        self.runs[i] = self.runs[self.len];
        self.bytes -= r.len;
        if r.dirty {
            self.dirty_bytes -= r.len;
        }
        r
    }

    /// Adds run `r`, which touches no other run.
    fn add(&mut self, r: Run) {
        self.runs[self.len] = r;
        self.len += 1;
        self.bytes += r.len;
        if r.dirty {
            self.dirty_bytes += r.len;
        }
    }

    /// Hands out the first `len` bytes of run `i`; the rest stays cached.
    fn take_front(&mut self, i: usize, len: usize, now: u32) -> Taken {
        let r = self.remove(i);
        if r.len > len {
            self.add(Run {
                base: r.base.wrapping_add(len),
                len: r.len - len,
                ..r
            });
        }
        let pages = len / os::PAGE;
        let (clean, dirty) = if r.dirty { (0, pages) } else { (pages, 0) };
        self.policy.note_reuse(clean, dirty, r.since, now);
        registry::set(r.base, len, ChunkKind::Huge);
        poison::unpoison(r.base, || len);
        Taken {
            base: r.base,
            dirty: r.dirty,
        }
    }

    /// Decommits run `i`, which then merges with its clean neighbours
    /// (runs are reordered).
    fn decommit(&mut self, i: usize, now: u32) {
        let mut r = self.remove(i);
        // SAFETY: the run is ours and holds nothing.
        unsafe { os::decommit(r.base, r.len) };
        r.dirty = false;
        r.since = now;
        let merged = self.merge(r);
        self.add(merged);
    }

    /// Takes the runs right before and after `run` in its state out of the
    /// cache and returns them merged with it (a clean run merged into a
    /// dirty one would be decommitted again).
    fn merge(&mut self, mut run: Run) -> Run {
        let mut i = 0;
        while i < self.len {
            let r = self.runs[i];
            let adjacent =
                r.base.wrapping_add(r.len) == run.base || run.base.wrapping_add(run.len) == r.base;
            if adjacent && r.dirty == run.dirty {
                self.remove(i);
                run = Run {
                    base: r.base.min(run.base),
                    len: r.len + run.len,
                    dirty: run.dirty,
                    since: r.since.max(run.since),
                };
                i = 0;
                continue;
            }
            i += 1;
        }
        run
    }

    fn put(&mut self, base: *mut u8, len: usize, now: u32) {
        let dirty = !self.policy.eager(now);
        if !dirty {
            // SAFETY: the range is ours and holds nothing.
            unsafe { os::decommit(base, len) };
        }
        let run = self.merge(Run {
            base,
            len,
            dirty,
            since: now,
        });
        // Make room: unmap the runs that waited longest.
        while self.len == RUNS || self.bytes + run.len > CACHE_BYTES {
            let Some(oldest) = self.oldest(now, false) else {
                break; // the cache is empty
            };
            let r = self.remove(oldest);
            unmap(r.base, r.len);
        }
        if run.len > CACHE_BYTES {
            unmap(run.base, run.len);
            return;
        }
        self.add(run);
        // Dirty bytes are in dirty runs, so this stops at the bound.
        while self.dirty_bytes > CACHE_DIRTY_BYTES {
            let Some(oldest) = self.oldest(now, true) else {
                break;
            };
            self.decommit(oldest, now);
        }
    }

    /// The run (a dirty one if `dirty`) that waited longest.
    fn oldest(&self, now: u32, dirty: bool) -> Option<usize> {
        (0..self.len)
            .filter(|&i| !dirty || self.runs[i].dirty)
            .max_by_key(|&i| now.wrapping_sub(self.runs[i].since))
    }
}

/// Forgets and unmaps `[base, base + len)`.
fn unmap(base: *mut u8, len: usize) {
    debug_assert!(len % SEGMENT_SIZE == 0);
    poison::unpoison(base, || len);
    registry::set(base, len, ChunkKind::None);
    // SAFETY: the range is ours, whole chunks, and unused.
    unsafe { os::release(base, len) };
}

#[cfg(all(test, not(loom)))]
mod tests;

//! The guard pool: sampled guarded allocations (`SLABPOOL_GUARD_SAMPLE=N`).
//! (The fault handler that reports a bad access is in `guard/fault.rs`.)
//!
//! A sampled allocation gets pages of its own instead of a slab block or a
//! span: the block ends exactly where a page that is never accessible
//! (`PROT_NONE`) starts, at an address that honours its alignment, so an
//! access one byte past its alignment-rounded size faults; the pages before
//! the block's first page are inaccessible too, so an underflow faults once
//! it leaves that page. When the block is freed its pages become
//! inaccessible (and go back to the OS), and they stay so while the pool
//! hands out every other slot first: a new block takes a slot never used
//! while the pool may still map more, then the slot freed longest ago
//! (FIFO), so a use after free faults for as long as possible. A freed
//! block freed again is found by its slot's state. A fault in the pool is
//! reported on stderr, in one line written without allocating, as what it
//! is (overflow past a block, underflow before it, use after free) with the
//! block's address and size and the fault address; then the fault goes to
//! the action that was in place before ours (the program's handler is
//! called, or the default action kills the process).
//!
//! Layout: the pool is made of chunks of [`CHUNK`] bytes (the registry's
//! unit, registered as `ChunkKind::Guard`), mapped on demand, at most
//! [`MAX_CHUNKS_PER_KIND`] per kind of slot. A chunk holds slots of one
//! kind, `KIND_BYTES[kind]` data bytes each:
//!
//! ```text
//! | header and slot records | guard | slot 0 data | guard | slot 1 data | guard | ...
//! ```
//!
//! Every part is whole OS pages, which `mprotect` works in: the header is
//! 16 KiB rounded up to the OS page, a guard is one OS page, a slot's data
//! its kind's bytes rounded up to the OS page ([`Geometry`], computed from
//! the OS page read at start-up: with 4 KiB pages 509 slots of the
//! smallest kind, with 64 KiB pages 31; an OS page above
//! [`os::MAX_OS_PAGE`] leaves the pool unused). A block of `usable` bytes
//! (its size rounded up to its alignment) takes the smallest kind that
//! holds it, ends at its slot's data end, and only its own OS pages are
//! made accessible; the slot's pages before them stay inaccessible (so an
//! underflow faults once it leaves the block's first OS page). Kinds of 4
//! KiB, 32 KiB, 256 KiB and 2 MiB: every small class and large request up
//! to 2 MiB at alignments up to 4 KiB; huge requests (above 2 MiB) and
//! larger alignments are never guarded.
//!
//! What is sampled (the per-thread countdown lives in the thread cache):
//! - the pointer API (`raw`, under C's `malloc`): a small allocation that
//!   reaches the refill path. Refills subtract the blocks they hand to the
//!   thread cache from the countdown; once it is at or below zero, the
//!   next allocation that reaches the slow path gets a guarded block and
//!   the countdown goes up by N. About one in N blocks handed to the cache,
//!   then: blocks freed back to the cache and reused are not counted, so a
//!   program in a steady state takes few samples and the fast paths pay
//!   nothing. With N = 1 every small allocation of the pointer API that
//!   finds its cache empty is guarded while the pool has room, and the
//!   cache is not refilled: in a C program, every allocation. (The thread
//!   cache is shared with `GlobalAlloc`, whose refills are not counted.)
//! - both doors: a large allocation (above 32 KiB, up to 2 MiB) counts one
//!   on the same countdown and is guarded when it reaches zero.
//! - never small allocations through `GlobalAlloc`: its `dealloc` pushes a
//!   small block onto the thread cache without looking it up (no
//!   instruction spent on it), so a guarded block freed there would be
//!   handed out again as a block of its class and flushed to slabs whose
//!   headers it does not have. Sending it back would need an owner check on
//!   every block of every flush and in the central pools' paths (transfer
//!   batches are reused whole without looking at their blocks); and while
//!   cached it would be accessible, so a use after free would go unseen.
//!   `dealloc` of a large block already reads the block's span: it looks
//!   at the registry first when the pool is in use.
//!
//! So the C door detects overflows (one byte past the 16-byte-rounded
//! size, or 8 for requests up to 8 bytes), underflows past the block's
//! first page, uses after free, double frees and interior frees of sampled
//! blocks of every size up to 2 MiB, and `realloc` and
//! `malloc_usable_size` find them; the Rust door the same for sampled large
//! blocks (33 KiB to 2 MiB, alignment up to 4 KiB).
//!
//! Invariants: a slot is `FRESH` (never used: all its pages inaccessible),
//! `LIVE` (the pages of its block accessible, every other page of the slot
//! inaccessible) or `FREED` (all its pages inaccessible and decommitted,
//! once it is on its kind's FIFO); its state, block and size change under
//! the pool lock only; a slot is on the FIFO only when `FREED` with its
//! pages protected, and the pool hands out a slot only from there or from
//! a chunk's never-used slots. Chunks are never unmapped, so a chunk's
//! header stays readable for the life of the process. The fault handler
//! only reads (atomics) and never takes the lock.

use crate::config;
use crate::os::{self, PAGE, align_up};
use crate::registry::{self, ChunkKind};
use crate::stats::GuardStats;
use crate::sync::Ordering::{Acquire, Relaxed, Release};
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Lock};
use core::ptr;

/// The slots of one kind.
#[derive(Clone, Copy)]
struct KindPool {
    /// Chunks mapped.
    chunks: usize,
    /// The newest chunk (0 before the first) and how many of its slots were
    /// ever handed out.
    newest: usize,
    used: usize,
    /// The FIFO of freed slots: the records of the slots freed longest ago
    /// and last (0: empty).
    oldest: usize,
    youngest: usize,
}

/// The pool's state, under [`POOL`]'s lock.
struct Pool {
    kinds: [KindPool; KINDS],
    /// Whether the fault handler was installed.
    handler: bool,
}

impl Pool {
    const fn new() -> Self {
        Pool {
            kinds: [KindPool {
                chunks: 0,
                newest: 0,
                used: 0,
                oldest: 0,
                youngest: 0,
            }; KINDS],
            handler: false,
        }
    }

    /// A slot of `kind` for a block: never used ones first while the pool
    /// may grow, then the one freed longest ago.
    fn take(&mut self, kind: usize) -> Option<(Chunk, usize)> {
        let k = &mut self.kinds[kind];
        if k.newest != 0 && k.used < Geometry::os().slots(kind) {
            k.used += 1;
            return Some((Chunk(k.newest), k.used - 1));
        }
        if k.chunks < MAX_CHUNKS_PER_KIND && os::page_size() <= os::MAX_OS_PAGE {
            if !self.handler {
                install_handler();
                self.handler = true;
            }
            if let Some(chunk) = Chunk::map(kind) {
                let k = &mut self.kinds[kind];
                k.chunks += 1;
                k.newest = chunk.0;
                k.used = 1;
                CHUNKS.fetch_add(1, Relaxed);
                IN_USE.store(true, Release);
                return Some((chunk, 0));
            }
        }
        let k = &mut self.kinds[kind];
        if k.oldest == 0 {
            return None;
        }
        let record = k.oldest;
        let (chunk, i) = Chunk::of_record(record);
        k.oldest = chunk.slot(i).next.load(Relaxed);
        if k.oldest == 0 {
            k.youngest = 0;
        }
        FREED_SLOTS.fetch_sub(1, Relaxed);
        Some((chunk, i))
    }

    /// Appends freed slot `i` of `chunk` to its kind's FIFO.
    fn push_freed(&mut self, chunk: Chunk, i: usize) {
        let slot = chunk.slot(i);
        let record = slot as *const Slot as usize;
        slot.next.store(0, Relaxed);
        let k = &mut self.kinds[chunk.kind()];
        if k.youngest == 0 {
            k.oldest = record;
        } else {
            let (c, j) = Chunk::of_record(k.youngest);
            c.slot(j).next.store(record, Relaxed);
        }
        k.youngest = record;
        FREED_SLOTS.fetch_add(1, Relaxed);
    }
}

static POOL: Lock<Pool> = Lock::new(Pool::new());
/// Set once the first chunk is registered: until then no pointer can be a
/// guarded block, and `owns` needs no registry lookup.
static IN_USE: AtomicBool = AtomicBool::new(false);
/// Counters for [`guard_stats`].
static CHUNKS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BLOCKS: AtomicUsize = AtomicUsize::new(0);
static FREED_SLOTS: AtomicUsize = AtomicUsize::new(0);
static GUARDED: AtomicU64 = AtomicU64::new(0);

/// A snapshot of the guard pool's counters.
pub fn guard_stats() -> GuardStats {
    GuardStats {
        sample: config::guard_sample(),
        chunks: CHUNKS.load(Relaxed),
        live: LIVE_BLOCKS.load(Relaxed),
        freed: FREED_SLOTS.load(Relaxed),
        guarded: GUARDED.load(Relaxed),
    }
}

/// Why a pointer into the pool is not a live guarded block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misuse {
    /// It is a guarded block that was freed.
    Freed,
    /// It is not the start of a guarded block.
    NotBlock,
}

/// Whether a request of `size` bytes at `align` can be guarded.
#[inline]
pub fn eligible(size: usize, align: usize) -> bool {
    align <= PAGE && size <= MAX_BLOCK && align_up(size.max(1), align) <= MAX_BLOCK
}

/// Whether `p` lies in the guard pool (a guarded block, or not a block).
#[inline]
#[cfg_attr(feature = "hardened", allow(dead_code))]
pub fn owns(p: *const u8) -> bool {
    IN_USE.load(Relaxed) && registry::kind_of(p) == ChunkKind::Guard
}

/// A guarded block of `size` bytes at `align`, reading as zero (a slot's
/// pages are fresh or were decommitted when it was freed); null when the
/// request is not eligible or the pool has no slot for it (the caller then
/// allocates as usual).
pub fn alloc(size: usize, align: usize) -> *mut u8 {
    if !eligible(size, align) {
        return ptr::null_mut();
    }
    let usable = align_up(size.max(1), align);
    let geometry = Geometry::os();
    let Some(kind) = (0..KINDS).position(|kind| usable <= geometry.data(kind)) else {
        return ptr::null_mut();
    };
    // The block's own OS pages, at the end of its slot's data.
    let accessible = align_up(usable, geometry.page);
    let Some((chunk, i)) = POOL.with(|pool| {
        let (chunk, i) = pool.take(kind)?;
        let slot = chunk.slot(i);
        slot.block.store(chunk.data_end(i) - usable, Relaxed);
        slot.size.store(size, Relaxed);
        slot.state.store(LIVE, Release);
        Some((chunk, i))
    }) else {
        return ptr::null_mut();
    };
    let end = chunk.data_end(i);
    let first = (end - accessible) as *mut u8;
    // SAFETY: the pages (whole OS pages: the slot's data ends on one) belong
    // to slot `i`, which is ours alone (taken under the lock); they hold no
    // block.
    if !unsafe { os::protect(first, accessible, true) } {
        POOL.with(|pool| {
            chunk.slot(i).state.store(FREED, Release);
            pool.push_freed(chunk, i);
        });
        return ptr::null_mut();
    }
    LIVE_BLOCKS.fetch_add(1, Relaxed);
    GUARDED.fetch_add(1, Relaxed);
    (end - usable) as *mut u8
}

/// The live slot whose block starts at `p` (in the pool), or why not.
fn live_slot(p: *const u8) -> Result<(Chunk, usize), Misuse> {
    let chunk = Chunk::of(p as usize);
    let Place::Data(i) = chunk.place(p as usize) else {
        return Err(Misuse::NotBlock);
    };
    let slot = chunk.slot(i);
    if slot.block.load(Relaxed) != p as usize {
        return Err(Misuse::NotBlock);
    }
    match slot.state.load(Acquire) {
        LIVE => Ok((chunk, i)),
        FREED => Err(Misuse::Freed),
        _ => Err(Misuse::NotBlock),
    }
}

/// Bytes usable at `p` (its size rounded to its alignment), if `p` is a
/// live guarded block; `p` must be in the pool ([`owns`]).
pub fn usable_size(p: *const u8) -> Result<usize, Misuse> {
    let (chunk, i) = live_slot(p)?;
    Ok(chunk.data_end(i) - p as usize)
}

/// Frees guarded block `p` (in the pool: [`owns`]): its pages become
/// inaccessible and are decommitted, and its slot goes to the end of the
/// FIFO. An error (nothing changed) if `p` is not a live guarded block.
///
/// # Safety
/// If `p` is a live guarded block, the caller gives it up.
pub unsafe fn free(p: *mut u8) -> Result<(), Misuse> {
    let (chunk, i) = live_slot(p)?;
    let slot = chunk.slot(i);
    // Recheck under the lock: of two racing frees, one wins.
    POOL.with(|_| {
        if slot.state.load(Relaxed) != LIVE || slot.block.load(Relaxed) != p as usize {
            return Err(Misuse::Freed);
        }
        slot.freed_at.store(os::now_ms(), Relaxed);
        slot.state.store(FREED, Release);
        Ok(())
    })?;
    let end = chunk.data_end(i);
    let first = (p as usize & !(Geometry::os().page - 1)) as *mut u8;
    let len = end - first as usize;
    // SAFETY: the block's OS pages are ours (its slot is FREED and not yet
    // on the FIFO, so nobody else takes it) and the caller gave the block
    // up.
    let clean = unsafe { os::protect(first, len, false) };
    LIVE_BLOCKS.fetch_sub(1, Relaxed);
    // A slot whose pages could not be protected and cleared is never
    // reused: a block must read as zero, and stale pages must not be
    // reachable again.
    if clean {
        POOL.with(|pool| pool.push_freed(chunk, i));
    }
    Ok(())
}

/// Holds the pool lock across `fork` (see `global`'s fork handlers).
///
/// # Safety
/// Must be followed by [`fork_unlock`] in the parent and the child.
pub unsafe fn fork_lock() {
    // SAFETY: released by `fork_unlock`.
    unsafe { POOL.force_lock() }
}

/// Releases the lock taken by [`fork_lock`].
///
/// # Safety
/// The lock must be held through `fork_lock`.
pub unsafe fn fork_unlock() {
    // SAFETY: forwarded contract.
    unsafe { POOL.force_unlock() }
}

mod chunk;
mod fault;
use chunk::{Chunk, FREED, FRESH, Geometry, KINDS, LIVE, Place, Slot};
pub use chunk::{MAX_BLOCK, MAX_CHUNKS_PER_KIND};
use fault::install_handler;
#[cfg(test)]
use fault::{Fault, diagnose};

#[cfg(all(test, not(loom)))]
mod tests;

//! The guard pool's chunks: their layout in whole OS pages (a readable
//! header of slot records, then each slot's data followed by an
//! inaccessible guard page) and the address arithmetic from a pointer to
//! its chunk, slot and place.
//!
//! Invariant: a chunk is [`CHUNK`] bytes aligned to its size, never
//! unmapped; its header pages stay readable and hold only atomics.

use crate::layout::SEGMENT_SIZE;
use crate::os::{self, PAGE, align_up};
use crate::registry::{self, ChunkKind};
use crate::sync::Ordering::Relaxed;
use crate::sync::{AtomicU8, AtomicU32, AtomicUsize};

/// Bytes of a pool chunk: the registry's unit, so a chunk is found by
/// masking an address.
pub(super) const CHUNK: usize = SEGMENT_SIZE;
/// Readable bytes at the start of a chunk, before rounding to the OS page:
/// its header and slot records.
pub(super) const HEADER_BYTES: usize = 4 * PAGE;
/// Kinds of slot.
pub(super) const KINDS: usize = 4;
/// Data bytes per slot, by kind, before rounding to the OS page.
pub(super) const KIND_BYTES: [usize; KINDS] = [PAGE, 8 * PAGE, 64 * PAGE, 512 * PAGE];
/// Chunks the pool maps at most per kind (16 MiB of address space each).
pub const MAX_CHUNKS_PER_KIND: usize = 4;
/// Largest guarded block (its size rounded to its alignment): the data of
/// the largest kind, which is the large limit.
pub const MAX_BLOCK: usize = KIND_BYTES[KINDS - 1];

/// A chunk's layout for an OS page of `page` bytes (a power of two from 4
/// KiB to [`os::MAX_OS_PAGE`]): header, then one guard page, then each
/// slot's data followed by a guard page, all whole OS pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Geometry {
    pub(super) page: usize,
}

impl Geometry {
    /// The layout for the OS page of this process.
    pub(super) fn os() -> Geometry {
        Geometry {
            page: os::page_size(),
        }
    }

    /// Bytes of the header (readable).
    pub(super) const fn header(self) -> usize {
        align_up(HEADER_BYTES, self.page)
    }

    /// Data bytes of a slot of `kind`.
    pub(super) const fn data(self, kind: usize) -> usize {
        align_up(KIND_BYTES[kind], self.page)
    }

    /// Bytes from one slot's data to the next's: its data and a guard.
    pub(super) const fn stride(self, kind: usize) -> usize {
        self.data(kind) + self.page
    }

    /// Slots of a chunk of `kind`.
    pub(super) const fn slots(self, kind: usize) -> usize {
        (CHUNK - self.header() - self.page) / self.stride(kind)
    }

    /// Offset in the chunk of the first byte past slot `i`'s data (where
    /// its guard page starts).
    pub(super) const fn data_end(self, kind: usize, i: usize) -> usize {
        self.header() + self.page + i * self.stride(kind) + self.data(kind)
    }

    /// Where offset `at` of a chunk of `kind` falls.
    pub(super) const fn place(self, kind: usize, at: usize) -> Place {
        if at < self.header() {
            return Place::Header;
        }
        // The first page after the header is the guard before slot 0;
        // then each slot's data and the guard before the next slot.
        let r = at - self.header();
        let i = r / self.stride(kind);
        let slots = self.slots(kind);
        if i >= slots {
            Place::Guard(slots)
        } else if r % self.stride(kind) < self.page {
            Place::Guard(i)
        } else {
            Place::Data(i)
        }
    }
}

/// The records of the most slots a chunk has (the smallest kind with 4 KiB
/// pages; larger pages give fewer) fit the header; the largest kind has a
/// slot with the largest OS page.
const _: () = {
    let small = Geometry { page: PAGE };
    assert!(size_of::<ChunkHeader>() + small.slots(0) * size_of::<Slot>() <= HEADER_BYTES);
    let big = Geometry {
        page: os::MAX_OS_PAGE,
    };
    assert!(big.slots(KINDS - 1) >= 1 && big.slots(0) <= small.slots(0));
};

/// Slot states.
pub(super) const FRESH: u8 = 0;
pub(super) const LIVE: u8 = 1;
pub(super) const FREED: u8 = 2;

/// The record of one slot, in its chunk's header. Atomics: the fault
/// handler and lookups of stray pointers read them without the lock.
#[repr(C)]
pub(super) struct Slot {
    pub(super) state: AtomicU8,
    /// When the block was freed ([`os::now_ms`]), for a `FREED` slot.
    pub(super) freed_at: AtomicU32,
    /// The block's address (`LIVE` and `FREED` slots).
    pub(super) block: AtomicUsize,
    /// Bytes the program asked for.
    pub(super) size: AtomicUsize,
    /// The record of the slot freed next after this one (the FIFO of its
    /// kind), 0 at the end. Under the pool lock.
    pub(super) next: AtomicUsize,
}

/// The start of a chunk, followed by its slot records.
#[repr(C)]
pub(super) struct ChunkHeader {
    /// Kind of its slots, written before the chunk is registered.
    pub(super) kind: AtomicUsize,
}

/// A chunk of the pool, by its base address: the address arithmetic of its
/// pages and records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Chunk(pub(super) usize);

/// Where an address falls in a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Place {
    /// In the header pages.
    Header,
    /// In the data pages of this slot.
    Data(usize),
    /// In the guard page before this slot's data (or after the last slot's
    /// data, for the slot count).
    Guard(usize),
}

impl Chunk {
    /// The chunk holding `p`, which the registry says is in the pool.
    pub(super) fn of(p: usize) -> Chunk {
        Chunk(p & !(CHUNK - 1))
    }

    pub(super) fn header(self) -> &'static ChunkHeader {
        // SAFETY: a pool chunk's header pages stay mapped and readable for
        // the life of the process (chunks are never unmapped), and the
        // header is all atomics.
        unsafe { &*(self.0 as *const ChunkHeader) }
    }

    pub(super) fn kind(self) -> usize {
        self.header().kind.load(Relaxed).min(KINDS - 1)
    }

    pub(super) fn slots(self) -> usize {
        Geometry::os().slots(self.kind())
    }

    /// The record of slot `i` (below `slots()`).
    pub(super) fn slot(self, i: usize) -> &'static Slot {
        debug_assert!(i < self.slots());
        let at = self.0 + size_of::<ChunkHeader>() + i * size_of::<Slot>();
        // SAFETY: records lie in the header pages (checked at compile time
        // for the kind with the most slots), mapped for the life of the
        // process; they are all atomics, zero (`FRESH`) when fresh.
        unsafe { &*(at as *const Slot) }
    }

    /// The slot whose record is at `record` (an address from the FIFO).
    pub(super) fn of_record(record: usize) -> (Chunk, usize) {
        let chunk = Chunk::of(record);
        let i = (record - chunk.0 - size_of::<ChunkHeader>()) / size_of::<Slot>();
        (chunk, i)
    }

    /// First byte past slot `i`'s data (where its guard page starts).
    pub(super) fn data_end(self, i: usize) -> usize {
        self.0 + Geometry::os().data_end(self.kind(), i)
    }

    /// Where `p` (inside this chunk) falls.
    pub(super) fn place(self, p: usize) -> Place {
        Geometry::os().place(self.kind(), p - self.0)
    }

    /// Maps a chunk of `kind`: header readable, the rest inaccessible,
    /// registered. `None` when the OS refuses.
    pub(super) fn map(kind: usize) -> Option<Chunk> {
        let base = os::reserve(CHUNK, CHUNK)?.as_ptr();
        let header = Geometry::os().header();
        // SAFETY: the reservation is ours and unused; past the header
        // nothing may be accessed until a block is placed there.
        let protected = unsafe { os::protect(base.wrapping_add(header), CHUNK - header, false) };
        let chunk = Chunk(base as usize);
        chunk.header().kind.store(kind, Relaxed);
        if !protected || !registry::register(base, CHUNK, ChunkKind::Guard) {
            // SAFETY: never published.
            unsafe { os::release(base, CHUNK) };
            return None;
        }
        Some(chunk)
    }
}

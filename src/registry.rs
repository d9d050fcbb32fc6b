//! The chunk registry: which 4 MiB chunks of the address space slabpool
//! owns, so a bare pointer (from C's `free`) can be checked and routed
//! without a header on small blocks.
//!
//! One byte per chunk of the 47-bit user address space, in two parts:
//! - the *window*: a static map of [`WINDOW_CHUNKS`] consecutive chunks
//!   (1 MiB of `.bss` describing 4 TiB), placed once, at the first
//!   registration, around the chunk registered (the kernel hands out
//!   mappings next to each other, mostly downwards), so nearly every lookup
//!   is one subtraction, one compare and one load;
//! - *leaves* for chunks outside the window: a static table of pointers to
//!   one-page maps of 4096 chunks (16 GiB) each, mapped when a chunk of
//!   theirs is first registered.
//!
//! The map used to be one flat 32 MiB reservation: address space that
//! counts against `RLIMIT_AS` (`ulimit -v`) although only a few of its
//! pages are ever touched; the window costs 1 MiB and a leaf a page.
//!
//! Every chunk is one of (`ChunkKind`):
//! - `None`: not slabpool's;
//! - `Segment`: a segment, whose header sits at the chunk's base;
//! - `Huge`: part of a huge block's mapping, which covers the whole chunk
//!   (huge mappings are chunk-aligned and chunk-rounded), so any address in
//!   it can be read;
//! - `HugeFree`: part of a freed huge mapping kept in the cache;
//! - `Guard`: a chunk of the guard pool (sampled guarded blocks), whose
//!   header sits at the chunk's base (see `guard`).
//!
//! Entries are written when slabpool maps or unmaps a chunk, before the
//! memory is handed out and after it is taken back, so a pointer the program
//! legitimately holds always finds its entry. Reads are relaxed: a stale read
//! only concerns a pointer the program does not own (an invalid free). The
//! window's place is set once (compare-exchange) before any entry is
//! written, and every chunk has exactly one entry: in the window if it lies
//! there, else in its leaf.

#[cfg(not(loom))]
use crate::layout::{SEGMENT_SHIFT, SEGMENT_SIZE};
#[cfg(not(loom))]
use crate::os;
#[cfg(not(loom))]
use crate::sync::AtomicUsize;
#[cfg(not(loom))]
use crate::sync::Ordering::{AcqRel, Acquire, Relaxed, Release};
#[cfg(not(loom))]
use crate::sync::unmodeled::{AtomicPtr, AtomicU8};
#[cfg(not(loom))]
use core::ptr;

/// What a chunk of the address space is to slabpool (one byte per chunk).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkKind {
    /// Not slabpool's.
    None = 0,
    /// A segment (small and large blocks).
    Segment = 1,
    /// A chunk of a live huge mapping.
    Huge = 2,
    /// A chunk of a huge mapping in the huge cache (freed).
    HugeFree = 3,
    /// A chunk of the guard pool.
    #[cfg(not(loom))]
    Guard = 4,
}

impl ChunkKind {
    /// The kind a registry byte records (any other byte: `None`).
    #[cfg(not(loom))]
    #[inline(always)]
    fn from_byte(b: u8) -> ChunkKind {
        match b {
            1 => ChunkKind::Segment,
            2 => ChunkKind::Huge,
            3 => ChunkKind::HugeFree,
            4 => ChunkKind::Guard,
            _ => ChunkKind::None,
        }
    }
}

/// Bits of user address space covered.
#[cfg(not(loom))]
const ADDRESS_BITS: u32 = 47;
#[cfg(not(loom))]
const CHUNKS: usize = 1 << (ADDRESS_BITS - SEGMENT_SHIFT);

/// Chunks the window describes (4 TiB).
#[cfg(not(loom))]
const WINDOW_CHUNKS: usize = 1 << 20;
/// Chunks per leaf: a page of entries.
#[cfg(not(loom))]
const LEAF_CHUNKS: usize = os::PAGE;
#[cfg(not(loom))]
const LEAVES_LEN: usize = CHUNKS / LEAF_CHUNKS;

/// The window's first chunk before it is placed: 0, so that the window is
/// all zero bytes and lies in `.bss` (a non-zero field put its 1 MiB in the
/// binary's `.data`, where each page a lookup read was mapped from the file
/// with its neighbours, 64 KiB at a time). Unplaced, a lookup of chunk `i`
/// reads entry `i` of the window (or a leaf): `None`, as nothing is recorded
/// before the window is placed; a placed window never starts at chunk 0.
#[cfg(not(loom))]
const UNPLACED: usize = 0;

/// The window: its first chunk and its entries, in one static so that the
/// lookup reaches both from one address.
#[cfg(not(loom))]
#[repr(C)]
struct Window {
    base: AtomicUsize,
    entries: [AtomicU8; WINDOW_CHUNKS],
}

#[cfg(not(loom))]
static WINDOW: Window = Window {
    base: AtomicUsize::new(UNPLACED),
    entries: [const { AtomicU8::new(ChunkKind::None as u8) }; WINDOW_CHUNKS],
};
#[cfg(not(loom))]
static LEAVES: [AtomicPtr<AtomicU8>; LEAVES_LEN] =
    [const { AtomicPtr::new(ptr::null_mut()) }; LEAVES_LEN];

/// Loom models never free bare pointers: their segments go unrecorded (the
/// models' small segments would need a far larger map).
#[cfg(loom)]
pub fn register(_base: *mut u8, _len: usize, _kind: ChunkKind) -> bool {
    true
}

#[cfg(loom)]
pub fn unregister(_base: *mut u8, _len: usize) {}

#[cfg(loom)]
pub fn set(_base: *mut u8, _len: usize, _kind: ChunkKind) {}

#[cfg(not(loom))]
/// Index of the chunk holding `addr`, if it is in the covered space.
#[inline]
fn chunk(addr: usize) -> Option<usize> {
    let i = addr >> SEGMENT_SHIFT;
    (i < CHUNKS).then_some(i)
}

#[cfg(not(loom))]
/// The window's first chunk, placing the window around chunk `near` if it
/// has no place yet: three quarters of it below `near` (the kernel places
/// new mappings below the last ones), a quarter above.
fn place_window(near: usize) -> usize {
    let base = WINDOW.base.load(Acquire);
    if base != UNPLACED {
        return base;
    }
    let wanted = near
        .saturating_sub(WINDOW_CHUNKS / 4 * 3)
        .clamp(UNPLACED + 1, CHUNKS - WINDOW_CHUNKS);
    match WINDOW
        .base
        .compare_exchange(UNPLACED, wanted, AcqRel, Acquire)
    {
        Ok(_) => wanted,
        Err(placed) => placed,
    }
}

#[cfg(not(loom))]
/// The entry of chunk `i` (`i < CHUNKS`), given the window's place `base`;
/// `None` if it lies in a leaf not mapped yet and `create` is false, or
/// mapping the leaf failed.
fn entry(i: usize, base: usize, create: bool) -> Option<&'static AtomicU8> {
    let w = i.wrapping_sub(base);
    if w < WINDOW_CHUNKS {
        return Some(&WINDOW.entries[w]);
    }
    let slot = &LEAVES[i / LEAF_CHUNKS];
    let mut leaf = slot.load(Acquire);
    if leaf.is_null() {
        if !create {
            return None;
        }
        // A page of entries, zero (NONE) when fresh.
        let fresh = os::reserve(os::PAGE, os::PAGE)?.as_ptr().cast::<AtomicU8>();
        leaf = match slot.compare_exchange(ptr::null_mut(), fresh, AcqRel, Acquire) {
            Ok(_) => fresh,
            Err(winner) => {
                // SAFETY: our page was never published.
                unsafe { os::release(fresh.cast(), os::PAGE) };
                winner
            }
        };
    }
    // SAFETY: `leaf` is a published page of LEAF_CHUNKS entries, never
    // unmapped; the index is below LEAF_CHUNKS.
    Some(unsafe { &*leaf.add(i % LEAF_CHUNKS) })
}

#[cfg(not(loom))]
/// Records `[base, base + len)` (chunk-aligned) as `kind`. Returns false if
/// the range cannot be recorded (the caller then must not hand it out).
#[must_use]
pub fn register(base: *mut u8, len: usize, kind: ChunkKind) -> bool {
    debug_assert!(base as usize % SEGMENT_SIZE == 0 && len % SEGMENT_SIZE == 0);
    let (Some(first), Some(last)) = (chunk(base as usize), chunk(base as usize + len - 1)) else {
        return false;
    };
    let window = place_window(first);
    // Every leaf first, so that a failure leaves nothing recorded.
    if (first..=last).any(|i| entry(i, window, true).is_none()) {
        return false;
    }
    for i in first..=last {
        if let Some(e) = entry(i, window, false) {
            e.store(kind as u8, Release);
        }
    }
    true
}

#[cfg(not(loom))]
/// Forgets `[base, base + len)`, which is about to be unmapped.
pub fn unregister(base: *mut u8, len: usize) {
    set(base, len, ChunkKind::None);
}

#[cfg(not(loom))]
/// Re-records `[base, base + len)`, already registered, as `kind`.
pub fn set(base: *mut u8, len: usize, kind: ChunkKind) {
    let (Some(first), Some(last)) = (chunk(base as usize), chunk(base as usize + len - 1)) else {
        return;
    };
    let window = WINDOW.base.load(Acquire);
    for i in first..=last {
        if let Some(e) = entry(i, window, false) {
            e.store(kind as u8, Release);
        }
    }
}

#[cfg(not(loom))]
/// Whether `p` lies in a segment recorded in the window: the fast test of
/// the C door's `malloc` and `free`, whose other cases go out of line
/// (where [`kind_of`] looks at the leaves too).
#[inline(always)]
#[cfg_attr(feature = "hardened", allow(dead_code))]
pub fn in_window_segment(p: *const u8) -> bool {
    let w = (p as usize >> SEGMENT_SHIFT).wrapping_sub(WINDOW.base.load(Relaxed));
    w < WINDOW_CHUNKS && WINDOW.entries[w].load(Relaxed) == ChunkKind::Segment as u8
}

#[cfg(not(loom))]
/// What slabpool knows of the chunk holding `p`. Inside the window: one
/// subtraction, one compare, one load. Outside, the leaf lookup is inline
/// too (no call): a call would make C's `free`, which inlines this, set up
/// a stack frame on its fast path.
#[inline]
pub fn kind_of(p: *const u8) -> ChunkKind {
    let i = p as usize >> SEGMENT_SHIFT;
    let w = i.wrapping_sub(WINDOW.base.load(Relaxed));
    if w < WINDOW_CHUNKS {
        return ChunkKind::from_byte(WINDOW.entries[w].load(Relaxed));
    }
    if i >= CHUNKS {
        return ChunkKind::None;
    }
    let leaf = LEAVES[i / LEAF_CHUNKS].load(Acquire);
    if leaf.is_null() {
        return ChunkKind::None;
    }
    // SAFETY: a published leaf is a page of LEAF_CHUNKS entries, never
    // unmapped; the index is below LEAF_CHUNKS.
    ChunkKind::from_byte(unsafe { (*leaf.add(i % LEAF_CHUNKS)).load(Relaxed) })
}

#[cfg(not(loom))]
/// Whether `p` lies in a segment.
#[inline(always)]
pub fn in_segment(p: *const u8) -> bool {
    kind_of(p) == ChunkKind::Segment
}

#[cfg(all(test, not(loom)))]
mod tests;

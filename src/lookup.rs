//! Pointer lookup: which block a bare address starts, from the address
//! alone (the C door's `free`, `realloc` and `malloc_usable_size`, and the
//! hardened build's checks).
//!
//! The chunk registry says whether slabpool owns the address and whether it
//! is a segment (small and large blocks: the segment header's page map
//! gives the span, whose record gives the class) or a huge mapping (whose
//! header precedes the block), or a chunk of the guard pool. There is no
//! header on small blocks: a small block start is checked with one
//! multiplication by its span's reciprocal (no division) and against the
//! slab's bump pointer.
//!
//! What is always told apart: a pointer outside slabpool's memory (stack,
//! static, another allocator's heap), a pointer into a segment header, an
//! interior or unaligned pointer of a small, large or huge block, a small
//! block past its slab's bump pointer (never handed out), a large or huge
//! block whose pages are free, and a guarded block freed or an interior
//! pointer of one. [`invalid`] reports one on stderr (written without
//! allocating) and aborts. Whether a small block is free already is the
//! callers' question (`pointer`): its answer needs the thread cache.
//!
//! Invariant relied on: a span record's reciprocal is 0 and its carved
//! count 0 unless it is a slab's (`segment::Span`), so the small-block test
//! alone rejects every other span.

use crate::guard;
use crate::huge;
use crate::layout::SEGMENT_SHIFT;
use crate::os;
use crate::registry::{self, ChunkKind};
use crate::segment::{FIRST_PAGE, SegmentRef, SpanKind, SpanRef};
use crate::size_class::{CLASSES, SMALL_LIMIT, SizeClass};
use core::fmt::Write;

/// What a valid block pointer refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// A block of this size class.
    Small(SizeClass),
    /// A large span of this many bytes.
    Large(usize),
    /// A huge mapping.
    Huge,
    /// A guarded block (in the guard pool) of this many usable bytes.
    Guarded(usize),
}

/// Why a pointer is not a live block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Not in memory slabpool owns.
    Foreign,
    /// Inside slabpool's memory, but not the start of a block.
    Interior,
    /// In pages that are free: the block was already freed.
    AlreadyFree,
    /// The block is free already (in a cache or a central pool).
    DoubleFree,
    /// A block of a slab that was never handed out (past the bump pointer).
    NeverAllocated,
    /// A guarded block that was freed (its slot says so).
    GuardedFreed,
}

impl From<guard::Misuse> for Invalid {
    fn from(m: guard::Misuse) -> Self {
        match m {
            guard::Misuse::Freed => Invalid::GuardedFreed,
            guard::Misuse::NotBlock => Invalid::Interior,
        }
    }
}

impl Invalid {
    fn describe(self) -> &'static str {
        match self {
            Invalid::Foreign => "pointer not allocated by slabpool",
            Invalid::Interior => "pointer inside a block, not at its start",
            Invalid::AlreadyFree => "double free (the block's pages are free)",
            Invalid::DoubleFree => "double free (the block is already free)",
            Invalid::NeverAllocated => "pointer to a block that was never allocated",
            Invalid::GuardedFreed => "double free (a guarded block, already freed)",
        }
    }
}

/// Divides an offset in a slab by the block size with one multiplication
/// (Lemire, Kaser and Kurz, "Faster remainder by direct computation",
/// 2019): with `c = ceil(2^64 / size)` and `offset * size < 2^64`, the high
/// 64 bits of `offset * c` are `offset / size`, and the low 64 bits are
/// below `c` exactly when `size` divides `offset`. Offsets lie within a
/// segment and sizes are at most `SMALL_LIMIT`, far within that bound.
/// Returns the block index when `offset` is a block start.
#[inline(always)]
fn block_index(offset: u64, reciprocal: u64) -> Option<u64> {
    let product = u128::from(offset) * u128::from(reciprocal);
    ((product as u64) < reciprocal).then_some((product >> 64) as u64)
}

// offset < 2^SEGMENT_SHIFT and size <= SMALL_LIMIT, so offset * size < 2^64.
const _: () = assert!(SEGMENT_SHIFT + SMALL_LIMIT.trailing_zeros() < 64);

/// Looks `p` up: which block it starts.
#[inline(always)]
pub fn find(p: *const u8) -> Result<Found, Invalid> {
    match small_class(p) {
        Some(class) => Ok(Found::Small(class)),
        None => find_other(p),
    }
}

/// The class of the small block `p` starts; `None` if `p` is anything
/// else (a large or huge block, or not a block): the fast path of `find`.
#[inline(always)]
fn small_class(p: *const u8) -> Option<SizeClass> {
    if registry::kind_of(p) != ChunkKind::Segment {
        return None;
    }
    // SAFETY: the registry says `p` lies in a live segment.
    unsafe { slab_class(p) }
}

/// The class of the small block `p` starts, `p` being in a live segment.
///
/// # Safety
/// The registry must say `p` lies in a segment.
#[inline(always)]
pub(crate) unsafe fn slab_class(p: *const u8) -> Option<SizeClass> {
    // SAFETY: by contract.
    let seg = unsafe { SegmentRef::of(p) };
    // No range checks on the page map entry: the page map entries of the
    // header's pages are 0 and the span records below `FIRST_PAGE` are
    // never written (class NO_CLASS), so a header address fails the class
    // check; an entry is never past its page, and if it were, the offset
    // below would wrap to far beyond any slab.
    // Only a slab's record has a class below NO_CLASS (`set_kind`), whose
    // reciprocal is 0: the check below rejects every other span.
    let (span, offset) = seg.span_and_offset(p);
    // A stale page map entry may name a slab that does not cover `p`'s
    // page (see `span_at`); the bump check rejects such a `p` (the bump
    // pointer is at most the capacity), since a slab's blocks lie within
    // its pages. Any span but a slab has reciprocal 0, which no offset
    // passes, and nothing carved.
    let offset = offset as u64;
    let word = span.carved_word();
    // A block past the bump pointer was never handed out: refusing it
    // keeps `free(malloc(48) + 240)` from putting a fresh block on a list
    // (it would be handed out twice).
    match block_index(offset, span.reciprocal()) {
        Some(index) if index < u64::from(word >> 8) => {}
        _ => return None,
    }
    // SAFETY: a carved count above 0 comes with a slab's class, in range
    // (`Span::carved`: one word holds both); the check above needs one.
    Some(unsafe { SizeClass::new_unchecked((word & 0xff) as usize) })
}

/// The first page and the span holding `p` in `seg`, if `p` lies past the
/// header in a span that covers it.
#[inline(always)]
fn span_at(seg: SegmentRef, p: *const u8) -> Option<(usize, SpanRef)> {
    let page = seg.page_of(p);
    if page < FIRST_PAGE {
        return None;
    }
    // The page map entry may be stale for pages inside a large or free span;
    // a span that starts there and covers the page is the right one, since
    // spans tile the segment.
    let first = seg.map_get(page);
    if first < FIRST_PAGE || first > page {
        return None;
    }
    let span = seg.span(first);
    if page >= first + span.pages() {
        return None;
    }
    Some((first, span))
}

/// `find` of anything but a small block start.
#[cold]
#[inline(never)]
fn find_other(p: *const u8) -> Result<Found, Invalid> {
    match registry::kind_of(p) {
        ChunkKind::Segment => {}
        ChunkKind::HugeFree => return Err(Invalid::AlreadyFree),
        ChunkKind::Guard => {
            return guard::usable_size(p)
                .map(Found::Guarded)
                .map_err(Invalid::from);
        }
        ChunkKind::Huge => {
            return match huge::lookup(p.cast_mut()) {
                huge::Lookup::Live => Ok(Found::Huge),
                huge::Lookup::Freed => Err(Invalid::AlreadyFree),
                huge::Lookup::Other => Err(Invalid::Interior),
            };
        }
        _ => return Err(Invalid::Foreign),
    }
    // SAFETY: the registry says `p` lies in a live segment.
    let seg = unsafe { SegmentRef::of(p) };
    let Some((_, span)) = span_at(seg, p) else {
        return Err(Invalid::Interior);
    };
    match span.kind() {
        SpanKind::Slab => small_class(p)
            .map(Found::Small)
            .ok_or_else(|| never_allocated(span, p)),
        SpanKind::Large if p == span.start().cast_const() => Ok(Found::Large(span.bytes())),
        SpanKind::Free => Err(Invalid::AlreadyFree),
        _ => Err(Invalid::Interior),
    }
}

/// Why `p`, in slab `span` but not a live block start, is not
/// one: a block start past the bump pointer was never handed out.
fn never_allocated(span: SpanRef, p: *const u8) -> Invalid {
    // The span may have changed since the caller looked (a stray pointer
    // racing its owner): no class, no capacity.
    let capacity = CLASSES.get(span.class()).map_or(0, |info| info.capacity);
    let offset = (p as usize).wrapping_sub(span.start() as usize) as u64;
    match block_index(offset, span.reciprocal()) {
        Some(index) if index < u64::from(capacity) => Invalid::NeverAllocated,
        _ => Invalid::Interior,
    }
}

/// Reports `why` for `p` in `call` on stderr and aborts the process.
#[cold]
#[inline(never)]
pub(crate) fn invalid(call: &str, p: *const u8, why: Invalid) -> ! {
    let mut out = os::StderrWriter::new();
    let _ = writeln!(out, "slabpool: {call}({p:p}): {}; aborting", why.describe());
    out.flush();
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

#[cfg(all(test, not(loom)))]
mod tests;

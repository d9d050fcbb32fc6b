//! Segments and spans: the address arithmetic of slabpool's memory.
//!
//! A segment is a [`SEGMENT_SIZE`] region mapped at an address aligned to its
//! own size, so the segment of any pointer inside it is found by masking the
//! low bits. Its first [`FIRST_PAGE`] pages hold the header: the owning
//! arena, a page map and one [`Span`] record per page (and in the hardened
//! build a PROT_NONE guard after them, from the first OS page boundary past
//! the header to the first span: [`header_guard`]). The remaining pages
//! are tiled by spans: runs of pages that are free, a slab of one size class,
//! or one large block. A span's record is the one at its first page.
//!
//! This file holds the header, the page map and the dirty bitmap; the span
//! records, their handle and lists are in `segment/span.rs`, the arena's
//! purge queue and lock witness in `segment/queue.rs`.
//!
//! 4 MiB segments: large enough that a large block up to 2 MiB at any
//! alignment fits in one, small enough that a process with little memory
//! touches little (the header is 68 KiB of address space, of which only the
//! records of spans in use are ever written, so resident).
//!
//! The header also keeps a dirty bitmap: bit `p` is set while page `p` may
//! hold data (it was handed out since the segment was mapped or the page
//! was last decommitted). Free spans are decommitted by their dirty runs
//! only, a span is known to read as zero when none of its bits is set, and
//! the count of set bits is the segment's share of committed memory. The
//! bits are atomic: the arena (free spans) and a central pool (pages of one
//! of its slabs) may update different bits of one word at once.
//!
//! Pages and bits are slabpool's 4 KiB pages; the kernel's page may be 16
//! or 64 KiB (`os`'s top comment). Decommit then gives back only the whole
//! OS pages inside the range it is given, each dirty run widened to the
//! OS pages it touches there (its clean neighbours in the range read as
//! zero either way), and clears only the bits of the pages given back: a
//! dirty page sharing an OS page with a page outside the range stays
//! dirty. A clean page still reads as zero when its OS page is touched
//! through a neighbour (the kernel fills a fresh page with zeros), so only
//! the committed figure becomes a lower bound (by at most the rest of each
//! OS page touched).
//!
//! Invariants (each span record is protected by whoever owns the span: the
//! arena lock while free, the central lock of its class while a slab, the
//! owning thread while a large block):
//! - spans tile `[FIRST_PAGE, PAGES)`: every page lies in exactly one span;
//! - `page_map[p]` names the span holding `p` (by its record's byte offset
//!   in `spans`: the first page times 64, so that `free` reaches the record
//!   and the span's start without a shift of its own) for every page
//!   of a slab (any block address finds its slab), and at least for the
//!   first and last page of a large or free span (a large block is found
//!   from its first page; a freed span finds its neighbours through the
//!   pages next to it);
//! - a span's dirty bits cover every page of it that may be resident: pages
//!   handed out are marked when they are carved, and only pages of free
//!   spans or parked slab pages are decommitted;
//! - a record that is not the first page of a live span has kind `INVALID`
//!   or `FREE` and is never reached from a live span's neighbours;
//! - a span of kind `PURGING` is free but out of its arena's bins while one
//!   thread decommits it outside the arena lock; no other thread carves,
//!   merges or purges it, and it is never seen once the heap is quiescent.

use crate::layout::SEGMENT_SIZE;
use crate::os::{self, PAGE, PAGE_SHIFT};
use crate::poison;
use crate::registry::{self, ChunkKind};
use crate::sync::{AtomicU16, AtomicU32, AtomicU64, Ordering};
use core::ptr::{self, NonNull};

const SEGMENT_MASK: usize = SEGMENT_SIZE - 1;
/// A page map entry is its span's first page shifted by this much: the
/// byte offset of the span's record among the header's records (a record
/// is 64 bytes; under loom, larger, and found by its index instead).
const RECORD_SHIFT: u32 = 6;
/// Pages per segment, header included.
pub const PAGES: usize = SEGMENT_SIZE / PAGE;
/// Pages of the header: what a segment commits of its own (its guard, in
/// the hardened build, is never accessible).
pub const HEADER_PAGES: usize = size_of::<SegmentHeader>().div_ceil(PAGE);
/// Whether a PROT_NONE guard follows the header (the hardened build): an
/// underflow of the segment's first span faults there instead of reaching
/// the page map and the span records.
const GUARDED: bool = cfg!(all(feature = "hardened", not(loom)));
/// First page after the header (and its guard). With the guard, laid out
/// for the largest OS page (a compile-time bound: `FIRST_PAGE` is read on
/// the lookup paths): the header rounded up to [`os::MAX_OS_PAGE`], then
/// one such page of guard, so the first span starts on an OS page of any
/// supported size and at least one OS page is inaccessible before it
/// (`header_guard`). 48 pages; 17 without the guard.
pub const FIRST_PAGE: usize = if GUARDED {
    (HEADER_PAGES * PAGE).next_multiple_of(os::MAX_OS_PAGE) / PAGE + os::MAX_OS_PAGE / PAGE
} else {
    HEADER_PAGES
};
/// Pages a segment can hand out.
pub const USABLE_PAGES: usize = PAGES - FIRST_PAGE;
/// Words of the dirty bitmap.
const DIRTY_WORDS: usize = PAGES.div_ceil(64);

const MAGIC: usize = 0x736c_6162_706f_6f6c; // "slabpool"

#[cfg(any(test, fuzzing, feature = "invariants"))]
mod check;
mod dirty;
mod queue;
mod span;
pub use queue::{SegmentLinks, SegmentQueue};
pub use span::{MAX_CARVED, Span, SpanKind, SpanList, SpanRef, SpanState};

#[repr(C)]
struct SegmentHeader {
    magic: usize,
    arena: u32,
    /// Pages in free spans. Written under the arena lock; read without it
    /// by a central pool deciding whether an empty slab pins its segment.
    free_pages: AtomicU32,
    /// Links in the arena's segment list (arena lock).
    next: *mut SegmentHeader,
    prev: *mut SegmentHeader,
    /// Links in the arena's purge queue, and when the segment's dirty free
    /// pages are due for decommit (arena lock).
    purge_next: *mut SegmentHeader,
    purge_prev: *mut SegmentHeader,
    purge_at: u32,
    queued: bool,
    /// When the segment's free pages were last decommitted (arena lock).
    purged_at: u32,
    /// Bit `p`: page `p` may be resident.
    dirty: [AtomicU64; DIRTY_WORDS],
    page_map: [AtomicU16; PAGES],
    spans: [Span; PAGES],
}

#[cfg(not(loom))]
const _: () = {
    assert!(size_of::<Span>() == 1 << RECORD_SHIFT);
    assert!(HEADER_PAGES == 17);
    assert!(PAGES <= u16::MAX as usize);
    // A page map entry (a record offset) fits its u16.
    assert!(PAGES << RECORD_SHIFT <= 1 << 16);
    assert!(FIRST_PAGE == if GUARDED { 48 } else { 17 });
};

/// The hardened build's guard after the header, as byte offsets in the
/// segment, for an OS page of `os_page` bytes: from the first OS page
/// boundary past the header to the first span ([`FIRST_PAGE`]), whole OS
/// pages (at least one up to [`os::MAX_OS_PAGE`]); empty without the guard
/// or with a larger OS page.
#[cfg_attr(not(all(feature = "hardened", not(loom))), allow(dead_code))]
pub const fn header_guard(os_page: usize) -> (usize, usize) {
    let start = os::align_up(HEADER_PAGES * PAGE, os_page);
    let end = FIRST_PAGE * PAGE;
    if GUARDED && start < end && end % os_page == 0 {
        (start, end)
    } else {
        (end, end)
    }
}

/// A segment, by the address of its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentRef(NonNull<SegmentHeader>);

// SAFETY: both are addresses into segment headers, which live until the
// segment is released; the locking protocol above governs access.
unsafe impl Send for SegmentRef {}
// SAFETY: as above.
unsafe impl Send for SpanRef {}

impl SegmentRef {
    /// Maps a new segment for `arena`; its pages are all one free span
    /// (not yet in any list).
    pub fn create(arena: u32) -> Option<(SegmentRef, SpanRef)> {
        let base = os::reserve(SEGMENT_SIZE, SEGMENT_SIZE)?;
        if !registry::register(base.as_ptr(), SEGMENT_SIZE, ChunkKind::Segment) {
            // SAFETY: the fresh mapping is ours and unused.
            unsafe { os::release(base.as_ptr(), SEGMENT_SIZE) };
            return None;
        }
        let header = base.cast::<SegmentHeader>();
        // SAFETY: the fresh mapping is zeroed, aligned and large enough for
        // the header; zero bytes are a valid header (null links, zero
        // atomics) except under loom, where atomics are built in place.
        unsafe {
            #[cfg(loom)]
            init_atomics(header.as_ptr());
            (*header.as_ptr()).magic = MAGIC;
            (*header.as_ptr()).arena = arena;
        }
        let seg = SegmentRef(header);
        #[cfg(all(feature = "hardened", not(loom)))]
        {
            let (start, end) = header_guard(os::page_size());
            if start < end {
                // SAFETY: the guard lies in the fresh mapping, past the
                // header, whole OS pages; nothing is ever placed there. If
                // it fails the pages are merely unprotected.
                unsafe { os::protect(base.as_ptr().add(start), end - start, false) };
            }
        }
        let span = seg.span(FIRST_PAGE);
        span.set_kind(SpanKind::Free);
        span.set_pages(USABLE_PAGES);
        seg.map_ends(span);
        seg.add_free_pages(USABLE_PAGES as i64);
        poison::poison(span.start(), || span.bytes());
        Some((seg, span))
    }

    /// Returns the whole segment to the OS.
    ///
    /// # Safety
    /// No span of the segment may be in use or in any list.
    pub unsafe fn destroy(self) {
        poison::unpoison(self.base(), || SEGMENT_SIZE);
        registry::unregister(self.base(), SEGMENT_SIZE);
        // SAFETY: the segment was reserved by `create` with this size, and by
        // the caller's contract nothing refers into it.
        unsafe { os::release(self.base(), SEGMENT_SIZE) }
    }

    /// The segment holding `p`.
    ///
    /// # Safety
    /// `p` must point into a live segment (a block slabpool handed out).
    #[inline(always)]
    pub unsafe fn of(p: *const u8) -> SegmentRef {
        let header = (p as usize & !SEGMENT_MASK) as *mut SegmentHeader;
        // SAFETY: masking a pointer inside a segment gives its non-null base.
        SegmentRef(unsafe { NonNull::new_unchecked(header) })
    }

    #[inline(always)]
    fn hdr(self) -> *mut SegmentHeader {
        self.0.as_ptr()
    }

    /// First byte of the segment.
    #[inline(always)]
    pub fn base(self) -> *mut u8 {
        self.hdr().cast()
    }

    pub fn arena(self) -> usize {
        // SAFETY: `arena` is written once before the segment is shared.
        unsafe { (*self.hdr()).arena as usize }
    }

    /// Pages currently in free spans.
    pub fn free_pages(self) -> usize {
        // SAFETY: the header is mapped; the field is atomic.
        unsafe { (*self.hdr()).free_pages.load(Ordering::Relaxed) as usize }
    }

    /// Adjusts the free page count by `delta` (arena lock).
    pub fn add_free_pages(self, delta: i64) {
        let free = self.free_pages() as i64 + delta;
        // SAFETY: the header is mapped; only the arena lock holder writes.
        unsafe {
            (*self.hdr())
                .free_pages
                .store(free as u32, Ordering::Relaxed)
        }
    }

    /// The next segment in the arena's list.
    pub fn next(self, _links: &SegmentLinks) -> Option<SegmentRef> {
        // SAFETY: the list links are the arena lock's, which `_links`
        // proves the caller holds (`SegmentLinks`).
        NonNull::new(unsafe { (*self.hdr()).next }).map(SegmentRef)
    }

    /// Links `self` in front of `head`.
    pub fn link_before(self, head: Option<SegmentRef>, _links: &mut SegmentLinks) {
        // SAFETY: as in `next`; `&mut` makes this the only writer.
        unsafe {
            (*self.hdr()).prev = ptr::null_mut();
            (*self.hdr()).next = head.map_or(ptr::null_mut(), |h| h.hdr());
            if let Some(h) = head {
                (*h.hdr()).prev = self.hdr();
            }
        }
    }

    /// Unlinks `self`; returns its successor (the new head if it was first).
    pub fn unlink(self, _links: &mut SegmentLinks) -> Option<SegmentRef> {
        // SAFETY: as in `link_before`.
        unsafe {
            let (prev, next) = ((*self.hdr()).prev, (*self.hdr()).next);
            if !prev.is_null() {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            NonNull::new(next).map(SegmentRef)
        }
    }

    /// The record at page `page` (a span start if a span begins there).
    #[inline(always)]
    pub fn span(self, page: usize) -> SpanRef {
        debug_assert!(page < PAGES);
        // SAFETY: `page < PAGES`, so the record lies in the header.
        let rec = unsafe {
            ptr::addr_of_mut!((*self.hdr()).spans)
                .cast::<Span>()
                .add(page)
        };
        // SAFETY: derived from a non-null header address.
        SpanRef(unsafe { NonNull::new_unchecked(rec) })
    }

    /// Page index of `p` within this segment.
    #[inline(always)]
    pub fn page_of(self, p: *const u8) -> usize {
        (p as usize - self.base() as usize) >> PAGE_SHIFT
    }

    /// First page of the span holding `page`, from the page map.
    #[inline(always)]
    pub fn map_get(self, page: usize) -> usize {
        self.map_record(page) >> RECORD_SHIFT
    }

    /// The page map entry of `page`: the byte offset, in the header's
    /// records, of the record of the span holding it.
    #[inline(always)]
    fn map_record(self, page: usize) -> usize {
        debug_assert!(page < PAGES);
        // SAFETY: `page < PAGES`; the entry is an atomic in the header.
        unsafe { (*self.hdr()).page_map[page].load(Ordering::Relaxed) as usize }
    }

    fn map_set(self, page: usize, first: usize) {
        let record = (first << RECORD_SHIFT) as u16;
        // SAFETY: as in `map_record`.
        unsafe { (*self.hdr()).page_map[page].store(record, Ordering::Relaxed) }
    }

    /// The span the page map names for `p`'s page, and `p`'s offset from
    /// that span's start (wrapped, if the entry is stale and the span starts
    /// past `p`: then far beyond any span). `p` lies in this segment.
    ///
    /// The C door's `free` path: one load of the entry, which gives both
    /// the record's address and the span's start.
    #[inline(always)]
    pub fn span_and_offset(self, p: *const u8) -> (SpanRef, usize) {
        let record = self.map_record(self.page_of(p));
        #[cfg(not(loom))]
        // SAFETY: an entry is at most `(PAGES - 1) << RECORD_SHIFT`, a
        // record's offset (a record is `1 << RECORD_SHIFT` bytes), so the
        // record lies in the header; derived from a non-null address.
        let span = unsafe {
            let spans = ptr::addr_of_mut!((*self.hdr()).spans).cast::<u8>();
            SpanRef(NonNull::new_unchecked(spans.add(record).cast::<Span>()))
        };
        #[cfg(loom)]
        let span = self.span(record >> RECORD_SHIFT);
        let start = record << (PAGE_SHIFT - RECORD_SHIFT);
        let offset = (p as usize & SEGMENT_MASK).wrapping_sub(start);
        (span, offset)
    }

    /// The span holding `p`.
    ///
    /// # Safety
    /// `p` must lie in a slab or large span of this segment.
    #[inline(always)]
    pub unsafe fn span_of(self, p: *const u8) -> SpanRef {
        self.span(self.map_get(self.page_of(p)))
    }

    /// Maps every page of `span` to it (slab and large spans).
    pub fn map_all(self, span: SpanRef) {
        let first = span.first_page();
        for page in first..first + span.pages() {
            self.map_set(page, first);
        }
    }

    /// Maps the first and last page of `span` to it (free spans).
    pub fn map_ends(self, span: SpanRef) {
        let first = span.first_page();
        self.map_set(first, first);
        self.map_set(first + span.pages() - 1, first);
    }
}

/// The purge queue links and the span walk (arena lock).
impl SegmentRef {
    pub fn purge_at(self) -> u32 {
        // SAFETY: the arena lock is held by the caller (protocol above).
        unsafe { (*self.hdr()).purge_at }
    }

    pub fn queued(self) -> bool {
        // SAFETY: as above.
        unsafe { (*self.hdr()).queued }
    }

    /// When the free pages were last decommitted (0 if never).
    pub fn purged_at(self, _links: &SegmentLinks) -> u32 {
        // SAFETY: an arena-lock field, as in `next`.
        unsafe { (*self.hdr()).purged_at }
    }

    /// Records that the free pages were decommitted at `now`.
    pub fn set_purged_at(self, now: u32, _links: &mut SegmentLinks) {
        // SAFETY: as in `link_before`.
        unsafe { (*self.hdr()).purged_at = now }
    }

    /// The span after `span` in this segment, if any.
    pub fn next_span(self, span: SpanRef) -> Option<SpanRef> {
        let page = span.first_page() + span.pages();
        (page < PAGES).then(|| self.span(page))
    }

    /// The first span of the segment.
    pub fn first_span(self) -> SpanRef {
        self.span(FIRST_PAGE)
    }
}

#[cfg(loom)]
/// Builds every atomic of a fresh header in place.
///
/// # Safety
/// `header` must point to a zeroed, writable header.
unsafe fn init_atomics(header: *mut SegmentHeader) {
    // SAFETY: inside the zeroed header.
    unsafe { ptr::addr_of_mut!((*header).free_pages).write(AtomicU32::new(0)) };
    for w in 0..DIRTY_WORDS {
        // SAFETY: `w < DIRTY_WORDS`, inside the header; the bytes are zero.
        unsafe { ptr::addr_of_mut!((*header).dirty[w]).write(AtomicU64::new(0)) };
    }
    for i in 0..PAGES {
        // SAFETY: `i < PAGES`, inside the header; the bytes are zero.
        unsafe {
            ptr::addr_of_mut!((*header).page_map[i]).write(AtomicU16::new(0));
            Span::init_atomics(ptr::addr_of_mut!((*header).spans[i]));
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

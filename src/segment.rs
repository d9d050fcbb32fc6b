//! Segments and spans: the address arithmetic of slabpool's memory.
//!
//! A segment is a [`SEGMENT_SIZE`] region mapped at an address aligned to its
//! own size, so the segment of any pointer inside it is found by masking the
//! low bits. Its first [`FIRST_PAGE`] pages hold the header: the owning
//! arena, a page map and one [`Span`] record per page. The remaining pages
//! are tiled by spans: runs of pages that are free, a slab of one size class,
//! or one large block. A span's record is the one at its first page.
//!
//! 4 MiB segments: large enough that a large block up to 2 MiB at any
//! alignment fits in one, small enough that a process with little memory
//! touches little (the header is 66 KiB of address space, of which only the
//! records of spans in use are ever written, so resident).
//!
//! Invariants (each span record is protected by whoever owns the span: the
//! arena lock while free, the central lock of its class while a slab, the
//! owning thread while a large block):
//! - spans tile `[FIRST_PAGE, PAGES)`: every page lies in exactly one span;
//! - `page_map[p]` is the first page of the span holding `p` for every page
//!   of a slab or large span, and at least for the first and last page of a
//!   free span;
//! - a record that is not the first page of a live span has kind `INVALID`
//!   or `FREE` and is never reached from a live span's neighbours.

use crate::block::Block;
use crate::os::{self, PAGE, PAGE_SHIFT};
use crate::sync::{AtomicU8, AtomicU16, AtomicU32, Ordering};
use core::ptr::{self, NonNull};

#[cfg(not(loom))]
pub const SEGMENT_SHIFT: u32 = 22;
/// Loom models use 64 KiB segments so a header has few atomics.
#[cfg(loom)]
pub const SEGMENT_SHIFT: u32 = 16;
pub const SEGMENT_SIZE: usize = 1 << SEGMENT_SHIFT;
const SEGMENT_MASK: usize = SEGMENT_SIZE - 1;
/// Pages per segment, header included.
pub const PAGES: usize = SEGMENT_SIZE / PAGE;
/// First page after the header.
pub const FIRST_PAGE: usize = size_of::<SegmentHeader>().div_ceil(PAGE);
/// Pages a segment can hand out.
pub const USABLE_PAGES: usize = PAGES - FIRST_PAGE;

const MAGIC: usize = 0x736c_6162_706f_6f6c; // "slabpool"

/// Span kinds.
pub const INVALID: u8 = 0;
pub const FREE: u8 = 1;
pub const SLAB: u8 = 2;
pub const LARGE: u8 = 3;

/// The record describing one span.
#[repr(C, align(64))]
pub struct Span {
    /// One of the kinds above. The three atomics may be read by a lookup of
    /// a stray pointer racing with the owner, so their reads are defined.
    kind: AtomicU8,
    /// Size class of a slab.
    class: AtomicU8,
    /// Length in pages.
    pages: AtomicU32,
    /// Everything else, owned by the span's owner.
    state: SpanState,
}

/// The owner-only part of a span record.
#[repr(C)]
pub struct SpanState {
    /// Links in one list: an arena's free bin or a central partial list.
    pub next: *mut Span,
    pub prev: *mut Span,
    /// Slab: free blocks returned to this slab.
    pub free: *mut Block,
    /// Slab: blocks handed out of the slab and not returned.
    pub live: u32,
    /// Slab: blocks carved so far by the bump pointer.
    pub bumped: u32,
    /// Slab: blocks in the slab.
    pub capacity: u32,
    /// Free span: arena clock tick when it was last freed (purge delay).
    pub freed_at: u32,
    /// Central occupancy bucket of a partial slab.
    pub bucket: u8,
    /// Free span: all its pages read as zero.
    pub zero: bool,
}

#[repr(C)]
struct SegmentHeader {
    magic: usize,
    arena: u32,
    /// Pages in free spans (arena lock).
    free_pages: u32,
    /// Links in the arena's segment list (arena lock).
    next: *mut SegmentHeader,
    prev: *mut SegmentHeader,
    page_map: [AtomicU16; PAGES],
    spans: [Span; PAGES],
}

#[cfg(not(loom))]
const _: () = {
    assert!(size_of::<Span>() == 64);
    assert!(FIRST_PAGE == 17);
    assert!(PAGES <= u16::MAX as usize);
};

/// A segment, by the address of its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentRef(NonNull<SegmentHeader>);

/// A span, by the address of its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanRef(NonNull<Span>);

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
        let span = seg.span(FIRST_PAGE);
        span.set_kind(FREE);
        span.set_pages(USABLE_PAGES);
        span.set_zero(true);
        seg.map_ends(span);
        seg.add_free_pages(USABLE_PAGES as i64);
        Some((seg, span))
    }

    /// Returns the whole segment to the OS.
    ///
    /// # Safety
    /// No span of the segment may be in use or in any list.
    pub unsafe fn destroy(self) {
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

    /// Whether the header carries slabpool's mark (for checks of foreign
    /// pointers; the caller must know the address is mapped).
    pub fn is_valid(self) -> bool {
        // SAFETY: `self` addresses a mapped header.
        unsafe { (*self.hdr()).magic == MAGIC }
    }

    pub fn arena(self) -> usize {
        // SAFETY: `arena` is written once before the segment is shared.
        unsafe { (*self.hdr()).arena as usize }
    }

    /// Pages currently in free spans.
    pub fn free_pages(self) -> usize {
        // SAFETY: the arena lock is held by the caller (protocol above).
        unsafe { (*self.hdr()).free_pages as usize }
    }

    /// Adjusts the free page count by `delta` (arena lock).
    pub fn add_free_pages(self, delta: i64) {
        // SAFETY: the arena lock is held by the caller (protocol above).
        unsafe {
            let fp = &mut (*self.hdr()).free_pages;
            *fp = (*fp as i64 + delta) as u32;
        }
    }

    /// The next segment in the arena's list (arena lock).
    pub fn next(self) -> Option<SegmentRef> {
        // SAFETY: links are protected by the arena lock the caller holds.
        NonNull::new(unsafe { (*self.hdr()).next }).map(SegmentRef)
    }

    /// Links `self` in front of `head` (arena lock).
    pub fn link_before(self, head: Option<SegmentRef>) {
        // SAFETY: links are protected by the arena lock the caller holds.
        unsafe {
            (*self.hdr()).prev = ptr::null_mut();
            (*self.hdr()).next = head.map_or(ptr::null_mut(), |h| h.hdr());
            if let Some(h) = head {
                (*h.hdr()).prev = self.hdr();
            }
        }
    }

    /// Unlinks `self`; returns its successor (the new head if it was first).
    pub fn unlink(self) -> Option<SegmentRef> {
        // SAFETY: links are protected by the arena lock the caller holds.
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
        debug_assert!(page < PAGES);
        // SAFETY: `page < PAGES`; the entry is an atomic in the header.
        unsafe { (*self.hdr()).page_map[page].load(Ordering::Relaxed) as usize }
    }

    fn map_set(self, page: usize, first: usize) {
        // SAFETY: as in `map_get`.
        unsafe { (*self.hdr()).page_map[page].store(first as u16, Ordering::Relaxed) }
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

#[cfg(loom)]
/// Builds every atomic of a fresh header in place.
///
/// # Safety
/// `header` must point to a zeroed, writable header.
unsafe fn init_atomics(header: *mut SegmentHeader) {
    for i in 0..PAGES {
        // SAFETY: `i < PAGES`, inside the header; the bytes are zero.
        unsafe {
            ptr::addr_of_mut!((*header).page_map[i]).write(AtomicU16::new(0));
            let span = ptr::addr_of_mut!((*header).spans[i]);
            ptr::addr_of_mut!((*span).kind).write(AtomicU8::new(INVALID));
            ptr::addr_of_mut!((*span).class).write(AtomicU8::new(0));
            ptr::addr_of_mut!((*span).pages).write(AtomicU32::new(0));
        }
    }
}

impl SpanRef {
    /// The span record at `p`.
    ///
    /// # Safety
    /// `p` must be the address of a span record in a live segment.
    pub unsafe fn from_ptr(p: *mut Span) -> SpanRef {
        // SAFETY: by contract `p` is a record address, never null.
        SpanRef(unsafe { NonNull::new_unchecked(p) })
    }

    #[inline(always)]
    pub fn as_ptr(self) -> *mut Span {
        self.0.as_ptr()
    }

    #[inline(always)]
    fn rec(self) -> *mut Span {
        self.0.as_ptr()
    }

    /// The segment holding this record.
    #[inline(always)]
    pub fn segment(self) -> SegmentRef {
        // SAFETY: the record lies in a segment header.
        unsafe { SegmentRef::of(self.rec().cast()) }
    }

    /// Index of the span's first page (the record's index in the header).
    #[inline(always)]
    pub fn first_page(self) -> usize {
        let spans = self.segment().span(0).rec() as usize;
        (self.rec() as usize - spans) / size_of::<Span>()
    }

    /// First byte of the span's memory.
    #[inline(always)]
    pub fn start(self) -> *mut u8 {
        // SAFETY: the span lies inside its segment.
        unsafe { self.segment().base().add(self.first_page() << PAGE_SHIFT) }
    }

    /// Size of the span in bytes.
    #[inline(always)]
    pub fn bytes(self) -> usize {
        self.pages() << PAGE_SHIFT
    }

    #[inline(always)]
    pub fn kind(self) -> u8 {
        // SAFETY: the record is in a mapped header; the field is atomic.
        unsafe { (*self.rec()).kind.load(Ordering::Relaxed) }
    }

    #[inline(always)]
    pub fn set_kind(self, kind: u8) {
        // SAFETY: as in `kind`.
        unsafe { (*self.rec()).kind.store(kind, Ordering::Relaxed) }
    }

    #[inline(always)]
    pub fn class(self) -> usize {
        // SAFETY: as in `kind`.
        unsafe { (*self.rec()).class.load(Ordering::Relaxed) as usize }
    }

    #[inline(always)]
    pub fn set_class(self, class: usize) {
        // SAFETY: as in `kind`.
        unsafe { (*self.rec()).class.store(class as u8, Ordering::Relaxed) }
    }

    #[inline(always)]
    pub fn pages(self) -> usize {
        // SAFETY: as in `kind`.
        unsafe { (*self.rec()).pages.load(Ordering::Relaxed) as usize }
    }

    #[inline(always)]
    pub fn set_pages(self, pages: usize) {
        // SAFETY: as in `kind`.
        unsafe { (*self.rec()).pages.store(pages as u32, Ordering::Relaxed) }
    }

    /// The owner-only fields.
    ///
    /// # Safety
    /// The caller must own the span under the module protocol and hold no
    /// other reference to this span's state.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn state(&self) -> &mut SpanState {
        // SAFETY: by contract the caller has exclusive access to `state`,
        // which no atomic shares.
        unsafe { &mut (*self.rec()).state }
    }

    /// Whether the span's pages read as zero (free spans; owner only).
    pub fn zero(self) -> bool {
        // SAFETY: the caller owns the span; the reference is dropped at once.
        unsafe { self.state().zero }
    }

    pub fn set_zero(self, zero: bool) {
        // SAFETY: as in `zero`.
        unsafe { self.state().zero = zero }
    }
}

/// An intrusive doubly linked list of spans through `next` / `prev`, used
/// for an arena's free bins and a central class's partial slabs. The list's
/// owner (its lock holder) owns the links of every span on it.
pub struct SpanList {
    head: *mut Span,
    len: usize,
}

// SAFETY: the list is only touched under its owner's lock.
unsafe impl Send for SpanList {}

impl SpanList {
    pub const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
            len: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn first(&self) -> Option<SpanRef> {
        NonNull::new(self.head).map(SpanRef)
    }

    /// The span after `span` on this list.
    pub fn next(&self, span: SpanRef) -> Option<SpanRef> {
        // SAFETY: `span` is on this list, whose links we own.
        NonNull::new(unsafe { span.state().next }).map(SpanRef)
    }

    /// Adds `span` at the front.
    pub fn push(&mut self, span: SpanRef) {
        // SAFETY: the list owner owns the links of `span` (being added) and
        // of the current head; each state reference is dropped at once.
        unsafe {
            let st = span.state();
            st.prev = ptr::null_mut();
            st.next = self.head;
            if let Some(head) = self.first() {
                head.state().prev = span.rec();
            }
        }
        self.head = span.rec();
        self.len += 1;
    }

    /// Removes `span`, which must be on this list.
    pub fn remove(&mut self, span: SpanRef) {
        // SAFETY: `span` and its neighbours are on this list.
        unsafe {
            let (prev, next) = (span.state().prev, span.state().next);
            if prev.is_null() {
                self.head = next;
            } else {
                SpanRef::from_ptr(prev).state().next = next;
            }
            if !next.is_null() {
                SpanRef::from_ptr(next).state().prev = prev;
            }
            let st = span.state();
            st.next = ptr::null_mut();
            st.prev = ptr::null_mut();
        }
        self.len -= 1;
    }
}

impl Default for SpanList {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        assert_eq!(SEGMENT_SIZE, 4 << 20);
        assert_eq!(PAGES, 1024);
        assert!(FIRST_PAGE * PAGE >= size_of::<SegmentHeader>());
        assert_eq!(size_of::<Span>(), 64);
    }

    #[test]
    fn masking_and_page_map() {
        let (seg, span) = SegmentRef::create(3).expect("segment");
        assert!(seg.is_valid());
        assert_eq!(seg.arena(), 3);
        assert_eq!(seg.base() as usize % SEGMENT_SIZE, 0);
        assert_eq!(span.first_page(), FIRST_PAGE);
        assert_eq!(span.segment(), seg);
        assert_eq!(span.kind(), FREE);
        assert_eq!(span.pages(), USABLE_PAGES);
        assert_eq!(seg.free_pages(), USABLE_PAGES);
        // Carve a 5-page slab at page 100 and check every interior pointer
        // masks to the segment and maps to the slab.
        let slab = seg.span(100);
        slab.set_kind(SLAB);
        slab.set_pages(5);
        seg.map_all(slab);
        assert_eq!(slab.start(), seg.base().wrapping_add(100 * PAGE));
        for off in [0, 1, PAGE - 1, PAGE, 5 * PAGE - 1] {
            let p = slab.start().wrapping_add(off);
            // SAFETY: `p` lies in the 5-page span of this live segment.
            unsafe {
                assert_eq!(SegmentRef::of(p), seg);
                assert_eq!(seg.span_of(p), slab);
            }
        }
        // SAFETY: nothing uses the segment any more.
        unsafe { seg.destroy() };
    }
}

//! Span records: what each run of pages of a segment is (`SpanKind`), its
//! record in the segment header (`Span`: the fields any lookup may read
//! atomically, and `SpanState`, its owner's), the handle to a record
//! (`SpanRef`), and the intrusive list of spans an arena bin or a central
//! pool keeps (`SpanList`).
//!
//! Invariants: a record that is not the first page of a live span has kind
//! `Invalid` or `Free` and is never reached from a live span's neighbours;
//! a record's reciprocal is 0 and its carved count 0 unless it is a
//! slab's; the links of a span on a list belong to the list's owner.

use super::{PAGES, SegmentRef};
use crate::block::Block;
use crate::os::PAGE_SHIFT;
use crate::sync::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};
use core::ptr::{self, NonNull};

/// What a span is (the `kind` byte of its record).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    /// Not a span start (a record inside a span, or merged away).
    Invalid = 0,
    /// Free pages, in one of the arena's bins.
    Free = 1,
    /// A slab of one size class.
    Slab = 2,
    /// A large block.
    Large = 3,
    /// A free span out of its arena's bins while its pages are decommitted
    /// outside the arena lock: not carved, merged or purged by anyone else.
    Purging = 4,
}

impl SpanKind {
    /// The kind a record's byte holds (any other byte: `Invalid`).
    #[inline(always)]
    fn from_byte(b: u8) -> SpanKind {
        match b {
            1 => SpanKind::Free,
            2 => SpanKind::Slab,
            3 => SpanKind::Large,
            4 => SpanKind::Purging,
            _ => SpanKind::Invalid,
        }
    }
}

/// The class byte of every span record that is not a slab's (beyond every
/// size class).
pub const NO_CLASS: u8 = u8::MAX;

/// Most blocks a slab may carve (the bits above the class in
/// `Span::carved`).
pub const MAX_CARVED: u32 = u32::MAX >> 8;

/// The record describing one span.
#[repr(C, align(64))]
pub struct Span {
    /// One of the kinds above. The atomics may be read by a lookup of a
    /// stray pointer racing with the owner, so their reads are defined.
    kind: AtomicU8,
    /// Length in pages.
    pages: AtomicU16,
    /// A slab's class (low byte) and blocks carved so far by the bump
    /// pointer (the bits above), in one word so that one load gives both
    /// consistently: the C door's `free` rejects a block past the bump
    /// pointer, and a carved count above 0 implies a class in range. Any
    /// other span: [`NO_CLASS`] and 0 carved. Written by the owner.
    carved: AtomicU32,
    /// A slab's `ceil(2^64 / block size)` (the block-start test of the C
    /// door's `free`, `raw::block_index`); 0 for any other span, which no
    /// offset passes.
    reciprocal: AtomicU64,
    /// Everything else, owned by the span's owner.
    state: SpanState,
}

#[cfg(loom)]
impl Span {
    /// Builds the record's atomics in place (loom's are not all-zero
    /// bytes): no kind, no class, nothing carved.
    ///
    /// # Safety
    /// `span` must point to a zeroed, writable record.
    pub(super) unsafe fn init_atomics(span: *mut Span) {
        // SAFETY: by contract.
        unsafe {
            ptr::addr_of_mut!((*span).kind).write(AtomicU8::new(SpanKind::Invalid as u8));
            ptr::addr_of_mut!((*span).pages).write(AtomicU16::new(0));
            ptr::addr_of_mut!((*span).carved).write(AtomicU32::new(u32::from(NO_CLASS)));
            ptr::addr_of_mut!((*span).reciprocal).write(AtomicU64::new(0));
        }
    }
}

/// The owner-only part of a span record.
#[repr(C)]
pub struct SpanState {
    /// Links in one list: an arena's free bin or a central partial list.
    pub next: *mut Span,
    pub prev: *mut Span,
    /// Slab: free blocks returned to this slab.
    pub free: *mut Block,
    /// Slab: bit `i` set when page `i` of the slab was decommitted with the
    /// free blocks overlapping it parked.
    pub purged: u64,
    /// Slab: blocks handed out of the slab and not returned.
    pub live: u32,
    /// Slab: blocks in the slab.
    pub capacity: u32,
    /// Slab: free blocks parked because they overlap a decommitted page of
    /// the slab (they are on no list; see `purged`).
    pub parked: u32,
    /// Central occupancy bucket of a listed slab.
    pub bucket: u8,
    /// Slab: its guard page is inaccessible (the hardened build).
    pub guarded: bool,
}

/// A span, by the address of its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanRef(pub(super) NonNull<Span>);

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
    pub fn kind(self) -> SpanKind {
        // SAFETY: the record is in a mapped header; the field is atomic.
        SpanKind::from_byte(unsafe { (*self.rec()).kind.load(Ordering::Relaxed) })
    }

    /// Sets the kind; a span that is not a slab has class [`NO_CLASS`],
    /// nothing carved and reciprocal 0, so the C door's `free` rejects it.
    #[inline(always)]
    pub fn set_kind(self, kind: SpanKind) {
        // SAFETY: as in `kind`.
        unsafe { (*self.rec()).kind.store(kind as u8, Ordering::Relaxed) }
        if kind != SpanKind::Slab {
            self.set_class(NO_CLASS as usize, 0);
        }
    }

    #[inline(always)]
    pub fn class(self) -> usize {
        (self.carved_word() & 0xff) as usize
    }

    /// Makes the span a slab of `class` whose block size has the given
    /// `ceil(2^64 / size)`, with nothing carved.
    #[inline(always)]
    pub fn set_class(self, class: usize, reciprocal: u64) {
        debug_assert!(class <= NO_CLASS as usize);
        // SAFETY: as in `kind`.
        unsafe {
            (*self.rec()).carved.store(class as u32, Ordering::Relaxed);
            (*self.rec())
                .reciprocal
                .store(reciprocal, Ordering::Relaxed);
        }
    }

    /// The class and carved count in one word (see `Span::carved`): the
    /// class is `word & 0xff`, the count `word >> 8`.
    #[inline(always)]
    pub fn carved_word(self) -> u32 {
        // SAFETY: as in `kind`.
        unsafe { (*self.rec()).carved.load(Ordering::Relaxed) }
    }

    /// `ceil(2^64 / block size)` of a slab, 0 for any other span.
    #[inline(always)]
    pub fn reciprocal(self) -> u64 {
        // SAFETY: as in `kind`.
        unsafe { (*self.rec()).reciprocal.load(Ordering::Relaxed) }
    }

    /// Blocks a slab has carved (see `Span::carved`).
    #[inline(always)]
    pub fn bumped(self) -> u32 {
        self.carved_word() >> 8
    }

    /// Sets the carved count (the slab's owner only).
    #[inline(always)]
    pub fn set_bumped(self, bumped: u32) {
        debug_assert!(bumped <= MAX_CARVED);
        let word = bumped << 8 | self.class() as u32;
        // SAFETY: as in `kind`.
        unsafe { (*self.rec()).carved.store(word, Ordering::Relaxed) }
    }

    #[inline(always)]
    pub fn pages(self) -> usize {
        // SAFETY: as in `kind`.
        unsafe { (*self.rec()).pages.load(Ordering::Relaxed) as usize }
    }

    #[inline(always)]
    pub fn set_pages(self, pages: usize) {
        debug_assert!(pages <= PAGES);
        // SAFETY: as in `kind`.
        unsafe { (*self.rec()).pages.store(pages as u16, Ordering::Relaxed) }
    }

    /// The owner-only fields, for as long as the caller chooses.
    ///
    /// # Safety
    /// The caller must own the span under the module protocol (its list's
    /// or pool's lock, or a witness of it) and hold no other reference to
    /// this span's state while the result lives.
    #[inline(always)]
    pub unsafe fn state<'a>(self) -> &'a mut SpanState {
        // SAFETY: by contract the caller has exclusive access to `state`,
        // which no atomic shares.
        unsafe { &mut (*self.rec()).state }
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

#[cfg(any(test, fuzzing, feature = "invariants"))]
impl SpanList {
    /// Checks the links and the length, calling `f` on each span.
    pub fn check(&self, what: &str, mut f: impl FnMut(SpanRef)) {
        let (mut prev, mut n) = (ptr::null_mut(), 0);
        let mut cur = self.first();
        while let Some(span) = cur {
            assert!(n < self.len, "{what}: longer than its length {}", self.len);
            // SAFETY: `span` is on this list, whose owner's lock is held.
            assert_eq!(unsafe { span.state().prev }, prev, "{what}: prev link");
            f(span);
            prev = span.rec();
            n += 1;
            cur = self.next(span);
        }
        assert_eq!(n, self.len, "{what}: length");
    }
}

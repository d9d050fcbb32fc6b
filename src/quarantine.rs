//! Delayed reuse (the `hardened` build): a freed small block waits in a
//! per-thread FIFO ring of [`SLOTS`] blocks before it is freed for real, so
//! it is not handed out again until [`SLOTS`] later small frees of the
//! thread. A use after free then does not reach the next owner of the
//! block right away, and a second free of a block that was freed and
//! handed out again straight away (`free(p); q = malloc(n); free(p)`) finds
//! it still free instead of freeing `q`.
//!
//! A quarantined block is marked as free: its first word is an encoded
//! null link (`block::set_next(p, null)`), as the last block of a free
//! list's is. A live block's first word never holds that (the doors of the
//! hardened build clear it on allocation, and the program cannot encode a
//! link without the secret), so a block whose first word decodes to null
//! is free ([`is_marked`]): the double-free check finds a quarantined block
//! from any thread without searching.
//!
//! A block leaving the quarantine (evicted, or drained at thread exit and
//! on `collect`; and the main thread's at process exit) is checked first:
//! its first [`ZERO_CHECKED`] bytes (short of its tag: [`zero_checked`])
//! still as the hardened `free` left them, the first word the mark and the
//! others zero (`free` clears at least those bytes, pattern bytes
//! included, whatever was requested). That is where a use after free
//! writes first: a free-list link overwritten, a struct's header cleared
//! or filled. The check reads only those bytes, beside the link the block
//! is pushed with next; the canary's tag, at the block's end, was checked
//! on free and is not read again (reading it on the way out, another
//! cache line and the key's multiplication, was a quarter of the hardened
//! build's time on alloc-test). A write found stops the process with a
//! message naming the block and the byte.
//!
//! Invariants: every non-null slot is a live block of its class, given up
//! by the program, zeroed and marked (the `free` that puts a block in
//! clears its bytes past the first [`ZERO_CHECKED`] last, before it
//! returns: see `global::dealloc_small_delayed`); the ring is owned by one
//! thread's cache and emptied ([`Ring::drain`]) at thread exit and on
//! `collect`.

use crate::block::{self, Block};
use crate::canary::{self, TAG};
use crate::os;
use crate::size_class::{NUM_CLASSES, SizeClass};
use core::fmt::Write;
use core::ptr;

/// Blocks a thread's quarantine holds.
pub const SLOTS: usize = 64;
/// Bytes at the start of a quarantined block that the hardened `free`
/// clears and that are checked to be still zero when it leaves (the link
/// word included, which holds the mark instead): see [`zero_checked`].
pub const ZERO_CHECKED: usize = 32;

/// Bytes of a block of `usable` bytes that the hardened `free` clears at
/// least, whatever was requested: the first [`ZERO_CHECKED`], short of the
/// tag (the last [`TAG`] bytes, which stay as they are).
#[inline(always)]
pub fn zero_checked(usable: usize) -> usize {
    usable.saturating_sub(TAG).min(ZERO_CHECKED)
}

/// A class as the ring keeps it: its index in one byte (a [`SizeClass`]
/// is a word). Made only from a [`SizeClass`], or zero (class 0) for an
/// empty slot, so it is always below `NUM_CLASSES`.
#[derive(Clone, Copy)]
#[repr(transparent)]
struct StoredClass(u8);

// Every class index fits in the byte, and the ring keeps one byte a slot.
const _: () = assert!(NUM_CLASSES <= 1 << u8::BITS && size_of::<StoredClass>() == 1);

impl StoredClass {
    /// An empty slot's: class 0 (all-zero bytes).
    const EMPTY: Self = Self(0);

    #[inline(always)]
    fn new(class: SizeClass) -> Self {
        // Lossless: the index is below NUM_CLASSES, which fits (above).
        Self(class.index() as u8)
    }

    #[inline(always)]
    fn get(self) -> SizeClass {
        // SAFETY: a `StoredClass` is made only by `new`, from a
        // `SizeClass`'s index (below NUM_CLASSES, kept whole in the byte:
        // checked at compile time above), or is `EMPTY`, class 0.
        unsafe { SizeClass::new_unchecked(self.0 as usize) }
    }
}

/// A thread's quarantine. All-zero bytes are an empty ring (the thread
/// cache may start as zeroed TLS).
pub struct Ring {
    blocks: [*mut u8; SLOTS],
    classes: [StoredClass; SLOTS],
    /// The slot the next block goes to: the oldest block's.
    next: u32,
}

impl Default for Ring {
    fn default() -> Self {
        Self::new()
    }
}

impl Ring {
    pub const fn new() -> Self {
        Self {
            blocks: [ptr::null_mut(); SLOTS],
            classes: [StoredClass::EMPTY; SLOTS],
            next: 0,
        }
    }

    /// Quarantines `p`, a small block of `class`, and returns the block
    /// that leaves the ring to make room for it (the oldest), if any, with
    /// its class: the caller checks it ([`untouched`], or
    /// [`check_untouched`]) and frees it for real.
    ///
    /// # Safety
    /// `p` must be a live block of `class` that the caller gives up.
    #[inline]
    pub unsafe fn put(&mut self, p: *mut u8, class: SizeClass) -> Option<(*mut u8, SizeClass)> {
        // SAFETY: `p` is a block of at least 8 bytes given up by the caller.
        unsafe { mark(p) };
        let at = self.next as usize % SLOTS;
        self.next = (at as u32 + 1) % SLOTS as u32;
        let old = core::mem::replace(&mut self.blocks[at], p);
        let old_class = core::mem::replace(&mut self.classes[at], StoredClass::new(class)).get();
        if old.is_null() {
            return None;
        }
        Some((old, old_class))
    }

    /// Checks every block in the ring (see [`check_untouched`]).
    pub fn check_all(&self) {
        for (&b, &class) in self.blocks.iter().zip(&self.classes) {
            if !b.is_null() {
                // SAFETY: a quarantined block of `class`.
                unsafe { check_untouched(b, class.get()) };
            }
        }
    }

    /// Whether `p` is in the ring (a walk: double-free confirmation only).
    pub fn holds(&self, p: *const u8) -> bool {
        self.blocks.iter().any(|&b| b.cast_const() == p)
    }

    /// Empties the ring, oldest first, calling `free` on each block with
    /// its class.
    pub fn drain(&mut self, mut free: impl FnMut(*mut u8, SizeClass)) {
        for i in 0..SLOTS {
            let at = (self.next as usize + i) % SLOTS;
            let b = core::mem::replace(&mut self.blocks[at], ptr::null_mut());
            if !b.is_null() {
                let class = self.classes[at].get();
                // SAFETY: a quarantined block of `class`.
                unsafe { check_untouched(b, class) };
                free(b, class);
            }
        }
        self.next = 0;
    }

    /// Blocks in the ring (tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.blocks.iter().filter(|b| !b.is_null()).count()
    }
}

/// Marks `p` as free: its first word becomes an encoded null link.
///
/// # Safety
/// `p` must be a block of at least 8 bytes that the caller owns.
#[inline]
unsafe fn mark(p: *mut u8) {
    // SAFETY: by contract.
    unsafe { block::set_next(p.cast::<Block>(), ptr::null_mut()) }
}

/// Whether `p`'s first word is an encoded null link: `p` is quarantined,
/// or the last block of a free list.
///
/// # Safety
/// `p` must point to at least 8 readable bytes.
#[inline]
pub unsafe fn is_marked(p: *const u8) -> bool {
    // SAFETY: by contract.
    unsafe { block::links_to_null(p) }
}

/// Checks that `p`, a quarantined block of `class`, was not written since
/// it was freed; stops the process if it was.
///
/// # Safety
/// `p` must be a quarantined block of `class`.
#[inline(always)]
pub unsafe fn check_untouched(p: *mut u8, class: SizeClass) {
    // The common case, inline: marked, the tag decodes, the first requested
    // words are zero. Anything else is looked at again out of line.
    // SAFETY: forwarded contract.
    if !unsafe { untouched(p, class) } {
        // SAFETY: forwarded contract.
        unsafe { report_written(p, class) };
    }
}

/// Whether `p`, a quarantined block of `class`, reads as it was freed:
/// marked, and zero from its second word to [`zero_checked`].
///
/// # Safety
/// `p` must be a quarantined block of `class`.
#[inline(always)]
pub unsafe fn untouched(p: *mut u8, class: SizeClass) -> bool {
    // `SizeClass::info` reads the table without a bounds check (which
    // would bring a panic into `free`).
    let usable = class.info().size as usize;
    // SAFETY: a block of `usable` bytes, at least 8; the words read lie in
    // its first `zero_checked(usable)` bytes when it has 32 past its tag.
    unsafe {
        if !is_marked(p) {
            return false;
        }
        let head = zero_checked(usable);
        let w = p.cast::<u64>();
        if head == ZERO_CHECKED {
            // The usual case: three words.
            return w.add(1).read() | w.add(2).read() | w.add(3).read() == 0;
        }
        // The classes of 8 to 32 bytes: a multiple of 8 below 32, so at
        // most the second and third words (no loop, no call).
        (head < 16 || w.add(1).read() == 0) && (head < 24 || w.add(2).read() == 0)
    }
}

/// Reports how `p`, a quarantined block of `class`, was written, if it was.
///
/// # Safety
/// `p` must be a quarantined block of `class`.
#[cold]
#[inline(never)]
pub unsafe fn report_written(p: *mut u8, class: SizeClass) {
    // SAFETY: forwarded contract.
    if let Some(at) = unsafe { written(p, class) } {
        written_after_free(p, at);
    }
}

/// Where `p`, a quarantined block of `class`, was written since it was
/// freed (the first byte found), if it was.
///
/// # Safety
/// `p` must be a quarantined block of `class`.
unsafe fn written(p: *mut u8, class: SizeClass) -> Option<usize> {
    // SAFETY: a block of at least 8 bytes.
    if !unsafe { is_marked(p) } {
        return Some(0);
    }
    let from = size_of::<usize>();
    let len = zero_checked(class.info().size as usize).saturating_sub(from);
    // SAFETY: within the block's first `zero_checked` bytes.
    unsafe { canary::first_other(p.add(from), len, 0) }.map(|at| from + at)
}

/// Reports a quarantined block written after free (at byte `at`) and
/// aborts.
#[cold]
#[inline(never)]
fn written_after_free(p: *const u8, at: usize) -> ! {
    let mut out = os::StderrWriter::new();
    let _ = writeln!(
        out,
        "slabpool: use after free: block {p:p}, freed and in quarantine, was written \
         at byte {at}; aborting"
    );
    out.flush();
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

#[cfg(test)]
mod tests;

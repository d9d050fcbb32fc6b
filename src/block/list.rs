//! Lists of free blocks: `BlockList`, an owned list with its tail (what
//! a refill or a carve builds), `Chain`, a null-terminated list without
//! one (a batch on its way between caches and pools), and the walks over
//! them (`split_chain` checks each block it hands out; `contains`,
//! `check_chain`). `carve` links fresh blocks into a list.
//!
//! Invariant: a list's `len` counts exactly the blocks reached from its
//! head through encoded links (`next_of`), the last one linking to null.

#[cfg(feature = "hardened")]
use super::secret;
use super::{Block, foreign_block, init_secret, next_of, secret_is_set, set_next};
use core::ptr;

/// An owned list of free blocks of one class.
#[derive(Debug)]
pub struct BlockList {
    head: *mut Block,
    tail: *mut Block,
    len: u32,
}

// SAFETY: a list exclusively owns its blocks; moving it to another thread
// moves that ownership.
unsafe impl Send for BlockList {}

impl Default for BlockList {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockList {
    pub const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
            len: 0,
        }
    }

    #[inline]
    pub fn len(&self) -> u32 {
        self.len
    }

    #[cfg(test)]
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a block at the front.
    ///
    /// # Safety
    /// `block` must be a free block of this list's class owned by the caller,
    /// not on any list.
    #[inline]
    pub unsafe fn push(&mut self, block: *mut Block) {
        // SAFETY: the caller hands `block` over.
        unsafe { set_next(block, self.head) };
        if self.len == 0 {
            self.tail = block;
        }
        self.head = block;
        self.len += 1;
    }

    /// Adds a block at the back.
    ///
    /// # Safety
    /// As for [`BlockList::push`].
    #[inline]
    pub unsafe fn push_back(&mut self, block: *mut Block) {
        if self.len == 0 {
            self.head = block;
        } else {
            // SAFETY: `self.tail` is the last block of this list, owned by
            // us; the caller hands `block` over.
            unsafe { set_next(self.tail, block) };
        }
        self.tail = block;
        self.len += 1;
    }

    /// The list as a chain: its last link is cleared.
    pub fn into_chain(self) -> Chain {
        if self.len > 0 {
            // SAFETY: `tail` is the last block of this list, owned by us.
            unsafe { set_next(self.tail, ptr::null_mut()) };
        }
        Chain {
            head: self.head,
            len: self.len,
        }
    }

    /// Appends `other` at the back, in O(1).
    pub fn append(&mut self, other: BlockList) {
        if other.len == 0 {
            return;
        }
        if self.len == 0 {
            *self = other;
            return;
        }
        // SAFETY: `self.tail` is the last block of this list, owned by us.
        unsafe { set_next(self.tail, other.head) };
        self.tail = other.tail;
        self.len += other.len;
    }
}

/// Detaches the first `n` blocks of the chain at `head` (which must hold at
/// least `n` blocks) and returns them with the rest of the chain, stopping
/// the process if `belongs` rejects one of them (a link that decodes to a
/// valid address outside the list's owner: see `Slab::take_freed`).
///
/// # Safety
/// The chain must be of free blocks owned by the caller, at least `n` long.
pub unsafe fn split_chain(
    head: *mut Block,
    n: u32,
    mut belongs: impl FnMut(*mut Block) -> bool,
) -> (BlockList, *mut Block) {
    if n == 0 {
        return (BlockList::new(), head);
    }
    if !belongs(head) {
        foreign_block(head);
    }
    let mut last = head;
    for _ in 1..n {
        // SAFETY: fewer than `n` links are followed, all in the chain.
        last = unsafe { next_of(last) };
        if !belongs(last) {
            foreign_block(last);
        }
    }
    // SAFETY: `last` is the n-th block of the chain.
    let rest = unsafe { next_of(last) };
    (
        BlockList {
            head,
            tail: last,
            len: n,
        },
        rest,
    )
}

/// Links `n` consecutive blocks of `size` bytes starting at `start` into a
/// list, in address order (in the hardened build, in a random order: see
/// `carve_order`).
///
/// # Safety
/// `[start, start + n * size)` must be unused memory owned by the caller,
/// `start` 8-aligned, `size` a multiple of 8, `n >= 1`.
pub unsafe fn carve(start: *mut u8, size: usize, n: u32) -> BlockList {
    debug_assert!(n >= 1);
    if !secret_is_set() {
        init_secret();
    }
    #[cfg(feature = "hardened")]
    if crate::carve_order::applies(size) {
        let block_at = |i: u32| start.wrapping_add(i as usize * size).cast::<Block>();
        // SAFETY: forwarded contract. The order is read from the blocks'
        // second words and the links go to their first words, which never
        // overlap; every block lies in the caller's range.
        unsafe {
            crate::carve_order::shuffle(start, size, n, secret());
            let head = block_at(crate::carve_order::at(start, size, 0));
            let mut cur = head;
            for i in 1..n {
                let next = block_at(crate::carve_order::at(start, size, i));
                set_next(cur, next);
                cur = next;
            }
            return BlockList {
                head,
                tail: cur,
                len: n,
            };
        }
    }
    let head = start.cast::<Block>();
    let mut cur = head;
    for _ in 1..n {
        // SAFETY: each block lies inside the range, which the caller owns.
        unsafe {
            let next = cur.cast::<u8>().add(size).cast::<Block>();
            set_next(cur, next);
            cur = next;
        }
    }
    BlockList {
        head,
        tail: cur,
        len: n,
    }
}

/// A null-terminated list of free blocks and its length; it owns them.
/// Invariants: `len == 0` iff `head` is null; following `len` links from
/// `head` reaches null.
#[derive(Debug)]
pub struct Chain {
    head: *mut Block,
    len: u32,
}

// SAFETY: a chain exclusively owns its blocks; moving it to another thread
// moves that ownership.
unsafe impl Send for Chain {}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

impl Chain {
    pub const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
            len: 0,
        }
    }

    /// The chain starting at `head`.
    ///
    /// # Safety
    /// `head` must start a null-terminated chain of exactly `len` free blocks
    /// of one class, owned by the caller.
    pub unsafe fn from_raw(head: *mut Block, len: u32) -> Self {
        Self { head, len }
    }

    /// The chain as `(head, len)`; the caller takes ownership.
    pub fn into_raw(self) -> (*mut Block, u32) {
        (self.head, self.len)
    }

    #[inline]
    pub fn len(&self) -> u32 {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The front block, if any.
    #[inline]
    pub fn first(&self) -> Option<*mut Block> {
        (self.len > 0).then_some(self.head)
    }

    /// Adds a block at the front.
    ///
    /// # Safety
    /// `block` must be a free block of this chain's class owned by the
    /// caller, not on any list.
    #[inline]
    pub unsafe fn push(&mut self, block: *mut Block) {
        // SAFETY: the caller hands `block` over.
        unsafe { set_next(block, self.head) };
        self.head = block;
        self.len += 1;
    }

    /// Whether `p` is one of the chain's blocks (a walk; double-free
    /// confirmation only).
    pub fn contains(&self, p: *const u8) -> bool {
        contains(self.head, self.len, p)
    }

    /// Removes the front block.
    #[inline]
    pub fn pop(&mut self) -> Option<*mut Block> {
        let block = self.first()?;
        // SAFETY: `block` is on this chain, so it is a free block we own;
        // the last block's link is null, which empties the chain.
        self.head = unsafe { next_of(block) };
        self.len -= 1;
        Some(block)
    }

    /// Splits off and returns the first `n` blocks: all of them in O(1) if
    /// `n >= len`, else by walking `n` links.
    pub fn take_front(&mut self, n: u32) -> Chain {
        if n >= self.len {
            return core::mem::take(self);
        }
        self.take_front_with(n, |_| {})
    }

    /// As [`Chain::take_front`], calling `each` on every block taken, in
    /// order, as the walk passes it (so it always walks).
    pub fn take_front_with(&mut self, n: u32, mut each: impl FnMut(*mut Block)) -> Chain {
        if n >= self.len {
            let mut b = self.head;
            for _ in 0..self.len {
                each(b);
                // SAFETY: `b` is one of the `len` blocks of this chain.
                b = unsafe { next_of(b) };
            }
            return core::mem::take(self);
        }
        if n == 0 {
            return Chain::new();
        }
        let mut last = self.head;
        each(last);
        for _ in 1..n {
            // SAFETY: fewer than `n < len` links are followed.
            last = unsafe { next_of(last) };
            each(last);
        }
        // SAFETY: `last` is the n-th block, followed by at least one more;
        // its link ends the front part.
        let rest = unsafe {
            let rest = next_of(last);
            set_next(last, ptr::null_mut());
            rest
        };
        let front = Chain {
            head: self.head,
            len: n,
        };
        self.head = rest;
        self.len -= n;
        front
    }

    /// Calls `f` on every block, checking the chain's shape (tests and
    /// checks).
    #[cfg(any(test, fuzzing, feature = "invariants"))]
    pub fn check(&self, what: &str, f: impl FnMut(*mut Block)) {
        check_chain(what, self.head, self.len, f);
    }
}

/// Whether `p` is among the `len` blocks of the chain at `head` (a walk
/// that stops at a null link).
///
/// The caller owns the chain or holds the lock that guards it.
pub fn contains(head: *mut Block, len: u32, p: *const u8) -> bool {
    let mut b = head;
    for _ in 0..len {
        if b.is_null() {
            break;
        }
        if b.cast_const().cast() == p {
            return true;
        }
        // SAFETY: `b` is one of the chain's blocks, free and guarded by the
        // caller.
        b = unsafe { next_of(b) };
    }
    false
}

/// Checks a null-terminated chain of exactly `len` free blocks from `head`
/// (a slab's free list, a thread cache's bin): calls `f` on each block
/// before following its link (so `f` can reject a wild pointer), and panics
/// if the chain ends early or goes on (a cycle: a block listed twice).
#[cfg(any(test, fuzzing, feature = "invariants"))]
pub fn check_chain(what: &str, head: *mut Block, len: u32, mut f: impl FnMut(*mut Block)) {
    let mut b = head;
    for i in 0..len {
        assert!(!b.is_null(), "{what}: chain ends at {i} of {len} blocks");
        assert!(b as usize % 8 == 0, "{what}: misaligned block {b:p}");
        f(b);
        // SAFETY: `f` accepted `b` as a free block of the chain's owner.
        b = unsafe { next_of(b) };
    }
    assert!(b.is_null(), "{what}: more than {len} blocks (a cycle?)");
}

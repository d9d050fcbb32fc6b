//! A thread cache's bin: the cached blocks of one class (a null-terminated
//! chain), how many there are and how many it may hold, and the fast paths
//! that take and give one block.
//!
//! The bins of a cache are three arrays indexed by class ([`Bins`]: the
//! heads, the rooms, the limits), not an array of records: a fast path
//! then reaches a head or a room with one scaled-index address (a 16-byte
//! record needs a shift and an add for it). A [`Bin`] is one class's
//! place in them.
//!
//! Two layouts, one behaviour. Both keep the *room* (`limit - count`)
//! rather than the count, so that a `push` tests it against zero without
//! loading the limit. The default build keeps the room and the limit as
//! two words. The `prof` build packs the room into one word with the
//! heap profiler's per-class countdown, so that counting allocations costs
//! the fast paths nothing more (see [`Bin`] there): `word` holds, from bit
//! 16 up, the *budget* (allocations of the class before the next one the
//! profiler must see on a slow path) and, in bits 0..16, the room. A
//! `pop` adds `1 - 2^16` (room + 1, budget - 1) and goes slow when the sum
//! turns negative (the budget was 0); a `push` needs a non-zero room and
//! subtracts 1. The count, the limit and their setters are written once,
//! over each layout's room. All zero bytes read as an empty bin with no
//! room and a budget of 0 in both layouts (the initial-exec thread cache is
//! zero-filled).
//!
//! In the `prof` build, `pop` also refuses a head below the thread
//! cache's *floor* (null included: the compare replaces the null test):
//! the profiler's sampled blocks live below it, and the `GlobalAlloc` free
//! of a small block pushes one like any other (it never looks at the
//! block), so a sampled block freed into a bin is found at the next `pop`
//! of its class or when the bin is flushed (`scrub`), never handed out.
//! The floor is [`SPLIT`] where the heap's mappings lie above it, else 1
//! (then the profiler cannot start: see `set_floor`).
//!
//! Invariants: `count <= limit`; the chain has `count` blocks of the class;
//! (`prof`) the room is below 2^16 and the budget at most 2^47.

use crate::backend::{Backend, Owners};
use crate::block::{self, Block, Chain};
use crate::size_class::{NUM_CLASSES, SizeClass};
use core::ptr;

/// What [`Bin::pop_near`] found.
#[cfg(not(loom))]
pub enum NearPop<'a> {
    /// No block to take (in the `prof` layout: none the fast path may).
    Empty,
    /// The head, taken: its link led into its own segment.
    Taken(*mut u8),
    /// The head, left in its bin: its link leads elsewhere.
    Far(FarHead<'a>),
}

/// A bin's head that [`Bin::pop_near`] left in place because its link
/// leads out of its segment (the end of the list, or another segment): the
/// caller checks the link, then takes the head. It holds the bin, so the
/// caller need not find the class and the cache again.
#[cfg(not(loom))]
pub struct FarHead<'a> {
    bin: Bin<'a>,
}

#[cfg(not(loom))]
impl FarHead<'_> {
    /// The head.
    #[inline(always)]
    pub fn head(&self) -> *mut u8 {
        self.bin.head().cast()
    }

    /// What the head's link decodes to, unchecked (decoded again: the
    /// fast path passes no more than the bin, in two registers).
    #[inline(always)]
    pub fn next(&self) -> *mut u8 {
        // SAFETY: the head of a bin is a free block the cache owns.
        unsafe { block::next_keyed(self.bin.head(), self.bin.key()).cast() }
    }

    /// Takes the head, its link checked by the caller, and returns it
    /// (unpoisoned: `size` gives its class's block size); null if the bin
    /// cannot give it now (the `prof` layout's budget: see
    /// `Bin::advance`), the bin then as it was.
    #[inline(always)]
    pub fn take(mut self, size: impl FnOnce() -> usize) -> *mut u8 {
        let (head, next) = (self.head(), self.next());
        if !self.bin.advance(next.cast()) {
            return ptr::null_mut();
        }
        crate::poison::unpoison(head, size);
        head
    }
}

/// Where the heap profiler's sampled blocks live: below `1 << SPLIT_BIT`
/// (`prof` builds, when the heap lies above: see [`set_floor`]). The
/// heap's own mappings lie far above it in the usual address-space layouts
/// of 64-bit Linux (top-down from below the stack, near 2^47 on x86_64 and
/// 2^48 on aarch64, or x86_64's legacy bottom-up layout from 2^45 * 4/3); a
/// heap block below it is only slower (its `pop` goes slow).
#[cfg(all(feature = "prof", not(loom)))]
pub const SPLIT_BIT: u32 = 45;
/// `1 << SPLIT_BIT`.
#[cfg(all(feature = "prof", not(loom)))]
pub const SPLIT: usize = 1 << SPLIT_BIT;

/// The floor thread caches take at their activation (`prof` builds): 1
/// until the process's setup says the heap lies above [`SPLIT`].
#[cfg(all(feature = "prof", not(loom)))]
static FLOOR: crate::sync::unmodeled::AtomicUsize = crate::sync::unmodeled::AtomicUsize::new(1);

/// Sets the floor of the thread caches activated from now on: [`SPLIT`]
/// if a fresh mapping lands at or above twice it (the heap's mappings
/// will too), else 1. Called once, at the process's setup, before any
/// thread cache is activated; returns whether the floor is the split
/// (the profiler's pool can then live below it).
#[cfg(all(feature = "prof", not(loom)))]
pub fn set_floor() -> bool {
    let probe = crate::os::reserve_address(crate::os::PAGE, crate::os::PAGE);
    let high = probe.is_some_and(|p| p.as_ptr() as usize >= 2 * SPLIT);
    if let Some(p) = probe {
        // SAFETY: the page reserved just above, unused.
        unsafe { crate::os::release(p.as_ptr(), crate::os::PAGE) };
    }
    FLOOR.store(if high { SPLIT } else { 1 }, crate::sync::Ordering::Relaxed);
    high
}

/// The floor of a thread cache activated now.
#[cfg(all(feature = "prof", not(loom)))]
pub fn floor() -> usize {
    FLOOR.load(crate::sync::Ordering::Relaxed)
}

/// Whether `b`, a bin's head, may be handed out by the fast path: at or
/// above the cache's floor (so not null).
#[cfg(all(feature = "prof", not(loom)))]
#[inline(always)]
pub fn fast_block(b: *mut Block, floor: usize) -> bool {
    b as usize >= floor
}

/// A room as a bin keeps it: in the default layout the room (`limit -
/// count`) rather than the count, so that `push` tests it against zero
/// without loading the limit; in the `prof` layout a word with the budget
/// (see the module docs).
#[cfg(not(all(feature = "prof", not(loom))))]
type RoomWord = u32;
#[cfg(all(feature = "prof", not(loom)))]
type RoomWord = u64;

/// The bins of one thread cache, by class (all zero: empty, no room).
#[repr(C)]
pub struct Bins {
    heads: [*mut Block; NUM_CLASSES],
    rooms: [RoomWord; NUM_CLASSES],
    limits: [u32; NUM_CLASSES],
    /// The free-list secret, beside the bins so the fast paths encode and
    /// decode links without another load; set when the cache is
    /// activated, before any bin can hold a block (0 until then).
    pub(super) key: usize,
}

impl Bins {
    pub const fn new() -> Self {
        Self {
            heads: [ptr::null_mut(); NUM_CLASSES],
            rooms: [0; NUM_CLASSES],
            limits: [0; NUM_CLASSES],
            key: 0,
        }
    }

    /// The bin of `class` (slow paths: checked).
    #[inline(always)]
    pub fn bin(&mut self, class: usize) -> Bin<'_> {
        assert!(class < NUM_CLASSES, "no class {class}");
        Bin { bins: self, class }
    }

    /// The bin of `class` (fast paths: the type says the index is in range).
    #[inline(always)]
    pub fn bin_of(&mut self, class: SizeClass) -> Bin<'_> {
        Bin {
            bins: self,
            class: class.index(),
        }
    }

    /// The head of `class`'s chain.
    #[cfg(any(loom, test, fuzzing, feature = "invariants", feature = "prof"))]
    #[inline(always)]
    pub fn head(&self, class: usize) -> *mut Block {
        self.heads[class]
    }

    /// Blocks cached of `class`.
    #[inline(always)]
    pub fn count(&self, class: usize) -> u32 {
        self.limits[class] - room_of(self.rooms[class])
    }

    /// The most blocks of `class` the bin may hold.
    #[inline(always)]
    pub fn limit(&self, class: usize) -> u32 {
        self.limits[class]
    }

    /// Allocations of `class` the fast path may still hand out before the
    /// profiler's slow path must see one.
    #[cfg(all(feature = "prof", not(loom)))]
    #[inline(always)]
    pub fn budget(&self, class: usize) -> u64 {
        self.rooms[class] >> ROOM_BITS
    }

    /// Whether `p` is among the cached blocks of `class` (a walk: double
    /// free confirmation only).
    pub fn holds(&self, class: usize, p: *const u8) -> bool {
        block::contains(self.heads[class], self.count(class), p)
    }
}

/// The room a bin's room word holds.
#[cfg(not(all(feature = "prof", not(loom))))]
#[inline(always)]
fn room_of(word: RoomWord) -> u32 {
    word
}

#[cfg(all(feature = "prof", not(loom)))]
#[inline(always)]
fn room_of(word: RoomWord) -> u32 {
    (word & ROOM_MASK) as u32
}

/// One class's bin: its place in its cache's [`Bins`].
///
/// Invariant: `class < NUM_CLASSES` (both constructors ensure it), so the
/// accessors below index the arrays without a check.
pub struct Bin<'a> {
    bins: &'a mut Bins,
    class: usize,
}

/// The fields of the bin, without bounds checks.
impl Bin<'_> {
    #[inline(always)]
    fn head(&self) -> *mut Block {
        // SAFETY: `class < NUM_CLASSES` (the type's invariant).
        unsafe { *self.bins.heads.get_unchecked(self.class) }
    }

    #[inline(always)]
    fn set_head(&mut self, head: *mut Block) {
        // SAFETY: as in `head`.
        unsafe { *self.bins.heads.get_unchecked_mut(self.class) = head }
    }

    #[inline(always)]
    fn word(&mut self) -> &mut RoomWord {
        // SAFETY: as in `head`.
        unsafe { self.bins.rooms.get_unchecked_mut(self.class) }
    }

    #[inline(always)]
    fn room(&self) -> u32 {
        // SAFETY: as in `head`.
        room_of(unsafe { *self.bins.rooms.get_unchecked(self.class) })
    }

    /// The free-list secret.
    #[inline(always)]
    fn key(&self) -> usize {
        self.bins.key
    }

    #[inline(always)]
    fn limit_word(&mut self) -> &mut u32 {
        // SAFETY: as in `head`.
        unsafe { self.bins.limits.get_unchecked_mut(self.class) }
    }
}

#[cfg(not(all(feature = "prof", not(loom))))]
impl<'a> Bin<'a> {
    #[inline(always)]
    fn set_room(&mut self, room: u32) {
        *self.word() = room;
    }

    /// Fast path: the head, or null if there is none.
    #[inline(always)]
    pub fn pop(&mut self) -> *mut Block {
        let b = self.head();
        if b.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: `b` heads this bin's list, a free block we own; a bin
        // holds blocks only after `activate` set the key.
        self.set_head(unsafe { block::next_keyed(b, self.key()) });
        *self.word() += 1;
        b
    }

    /// The C door's fast path: as [`Bin::pop`], but the head is taken only
    /// if its link leads into its own segment (`block::next_near_keyed`);
    /// otherwise it is left for the caller to check and take
    /// ([`FarHead`]).
    #[cfg(not(loom))]
    #[inline(always)]
    pub fn pop_near(mut self) -> NearPop<'a> {
        let b = self.head();
        if b.is_null() {
            return NearPop::Empty;
        }
        // SAFETY: as in `pop`.
        match unsafe { block::next_near_keyed(b, self.key()) } {
            Ok(next) => {
                self.advance(next);
                NearPop::Taken(b.cast())
            }
            Err(_) => NearPop::Far(FarHead { bin: self }),
        }
    }

    /// Takes the head, whose link decoded to `next`; false if it cannot
    /// now (the `prof` layout's budget), the bin then as it was.
    #[cfg(not(loom))]
    #[inline(always)]
    fn advance(&mut self, next: *mut Block) -> bool {
        self.set_head(next);
        *self.word() += 1;
        true
    }

    /// Fast path: caches `p` unless the bin is full.
    ///
    /// # Safety
    /// `p` must be a live block of the bin's class that the caller gives
    /// up.
    #[inline(always)]
    pub unsafe fn push(&mut self, p: *mut u8) -> bool {
        if self.room() == 0 {
            return false;
        }
        // SAFETY: `p` is handed over by the caller; it becomes a free block.
        unsafe { block::set_next_keyed(p.cast(), self.head(), self.key()) };
        self.set_head(p.cast());
        *self.word() -= 1;
        true
    }
}

/// Bits of the room (the low half-word: the push tests it with one
/// compare).
#[cfg(all(feature = "prof", not(loom)))]
const ROOM_BITS: u32 = 16;
#[cfg(all(feature = "prof", not(loom)))]
const ROOM_MASK: u64 = (1 << ROOM_BITS) - 1;
/// What a `pop` adds to the word: room + 1, budget - 1.
#[cfg(all(feature = "prof", not(loom)))]
const POP: u64 = 1u64.wrapping_sub(1 << ROOM_BITS);
/// The largest budget a bin holds.
#[cfg(all(feature = "prof", not(loom)))]
pub const MAX_BUDGET: u64 = 1 << 47;

// Every limit fits the room's bits (a limit never exceeds its class's
// `max_cached`).
#[cfg(all(feature = "prof", not(loom)))]
const _: () = {
    let mut i = 0;
    while i < crate::size_class::NUM_CLASSES {
        assert!(crate::size_class::CLASSES[i].max_cached < 1 << ROOM_BITS);
        i += 1;
    }
};

/// The `prof` layout: the room word is `budget << 16 | (limit - count)`
/// (see the module docs).
#[cfg(all(feature = "prof", not(loom)))]
impl<'a> Bin<'a> {
    #[inline(always)]
    fn set_room(&mut self, room: u32) {
        let word = self.word();
        *word = *word & !ROOM_MASK | u64::from(room);
    }

    /// Allocations of the class the fast path may still hand out before
    /// the profiler's slow path must see one.
    #[inline(always)]
    fn budget(&self) -> u64 {
        // SAFETY: `class < NUM_CLASSES` (the type's invariant).
        unsafe { *self.bins.rooms.get_unchecked(self.class) >> ROOM_BITS }
    }

    /// Sets the budget (at most [`MAX_BUDGET`]).
    #[inline(always)]
    pub fn set_budget(&mut self, budget: u64) {
        let word = self.word();
        *word = budget.min(MAX_BUDGET) << ROOM_BITS | *word & ROOM_MASK;
    }

    /// Fast path: the head, or null if there is none, if it lies below
    /// `floor`, or if the budget is spent (then the word is as it was).
    /// (A zero-filled cache has a floor of 0 but a budget of 0.)
    #[inline(always)]
    pub fn pop(&mut self, floor: usize) -> *mut Block {
        let b = self.head();
        if (b as usize) < floor {
            return ptr::null_mut();
        }
        let word = self.word().wrapping_add(POP);
        *self.word() = word;
        if (word as i64) < 0 {
            self.unpop();
            return ptr::null_mut();
        }
        // SAFETY: `b` heads this bin's list, a free block we own; a bin
        // holds blocks only after `activate` set the key.
        self.set_head(unsafe { block::next_keyed(b, self.key()) });
        b
    }

    /// The C door's fast path: as [`Bin::pop`], but the head is taken only
    /// if its link leads into its own segment (`block::next_near_keyed`);
    /// otherwise it is left for the caller to check and take
    /// ([`FarHead`]). A spent budget reads as an empty bin (the caller's
    /// slow path goes to the profiler).
    #[inline(always)]
    pub fn pop_near(mut self, floor: usize) -> NearPop<'a> {
        let b = self.head();
        if (b as usize) < floor {
            return NearPop::Empty;
        }
        // SAFETY: as in `pop`.
        let next = match unsafe { block::next_near_keyed(b, self.key()) } {
            Ok(next) => next,
            Err(_) => return NearPop::Far(FarHead { bin: self }),
        };
        if !self.advance(next) {
            return NearPop::Empty;
        }
        NearPop::Taken(b.cast())
    }

    /// Takes the head, whose link decoded to `next`; false if the budget is
    /// spent, the bin then as it was.
    #[inline(always)]
    fn advance(&mut self, next: *mut Block) -> bool {
        let word = self.word().wrapping_add(POP);
        *self.word() = word;
        if (word as i64) < 0 {
            self.unpop();
            return false;
        }
        self.set_head(next);
        true
    }

    /// Undoes the count of a `pop` that found the budget spent. The word
    /// is read again (a volatile read): the `pop` then counts with one
    /// instruction on memory, keeping no copy of the old word for this rare
    /// branch (nor calling out of line, which would cost the C door's
    /// `malloc` a stack frame).
    #[inline(always)]
    fn unpop(&mut self) {
        let word: *mut u64 = self.word();
        // SAFETY: `word` is this bin's room word, valid and exclusively ours.
        unsafe { word.write_volatile(word.read_volatile().wrapping_sub(POP)) };
    }

    /// Fast path: caches `p` unless the bin is full.
    ///
    /// # Safety
    /// `p` must be a live block of the bin's class (or a sampled block of
    /// the profiler, below the split) that the caller gives up.
    #[inline(always)]
    pub unsafe fn push(&mut self, p: *mut u8) -> bool {
        if *self.word() as u16 == 0 {
            return false;
        }
        // SAFETY: `p` is handed over by the caller; it becomes a free block.
        unsafe { block::set_next_keyed(p.cast(), self.head(), self.key()) };
        self.set_head(p.cast());
        *self.word() -= 1;
        true
    }

    /// Removes the head (not null), charging the budget if `charge`: the
    /// slow path's pop.
    ///
    /// # Safety
    /// The bin must hold a block.
    pub unsafe fn take_head(&mut self, charge: bool) -> *mut Block {
        let b = self.head();
        debug_assert!(!b.is_null());
        // SAFETY: `b` heads this bin's list (the caller's contract), a free
        // block we own; a bin holds blocks only after `activate` set the
        // key.
        self.set_head(unsafe { block::next_keyed(b, self.key()) });
        let count = self.count() - 1;
        if charge {
            self.set_budget(self.budget().saturating_sub(1));
        }
        self.set_count(count);
        b
    }

    /// Moves the blocks below `floor` that are not the heap's (no
    /// segment holds them) among the first `n` blocks (or all) to `out`,
    /// keeping the others in order: the profiler's sampled blocks that
    /// `GlobalAlloc`'s free pushed, so that a flush never takes one to a
    /// central pool. A walk of `n` links.
    pub fn scrub(&mut self, n: u32, out: &mut Chain, floor: usize) {
        let key = self.key();
        let mut count = self.count();
        let mut prev: *mut Block = ptr::null_mut();
        let mut b = self.head();
        let mut seen = 0;
        while !b.is_null() && seen < n {
            // SAFETY: `b` is on this bin's chain, a free block we own.
            let next = unsafe { block::next_keyed(b, key) };
            if b as usize >= floor || crate::registry::in_segment(b.cast()) {
                prev = b;
                seen += 1;
            } else {
                if prev.is_null() {
                    self.set_head(next);
                } else {
                    // SAFETY: `prev` is on this chain, before `b`.
                    unsafe { block::set_next_keyed(prev, next, key) };
                }
                // SAFETY: `b` is off the chain now, handed to `out`.
                unsafe { out.push(b) };
                count -= 1;
            }
            b = next;
        }
        self.set_count(count);
    }
}

/// Moves the blocks of `batch` below `floor` that are not the heap's to
/// `out` (a batch `Bin::take_batch` said holds some); the others stay, in
/// another order.
#[cfg(all(feature = "prof", not(loom)))]
pub fn split_foreign(batch: &mut Chain, out: &mut Chain, floor: usize) {
    let mut kept = Chain::new();
    while let Some(b) = batch.pop() {
        let to = if (b as usize) < floor && !crate::registry::in_segment(b.cast()) {
            &mut *out
        } else {
            &mut kept
        };
        // SAFETY: `b` is off `batch`, a free block the caller owns.
        unsafe { to.push(b) };
    }
    *batch = kept;
}

/// The count and the limit, in both layouts: each keeps the room.
impl Bin<'_> {
    #[inline(always)]
    pub fn count(&mut self) -> u32 {
        *self.limit_word() - self.room()
    }

    /// Sets the count (the chain was changed to hold `count` blocks).
    #[inline(always)]
    fn set_count(&mut self, count: u32) {
        let limit = *self.limit_word();
        debug_assert!(count <= limit || limit == 0 && count == 0);
        self.set_room(limit.saturating_sub(count));
    }

    /// Sets the limit; the count must not be above it.
    #[inline(always)]
    pub fn set_limit(&mut self, limit: u32) {
        let count = self.count();
        debug_assert!(count <= limit);
        *self.limit_word() = limit;
        self.set_count(count);
    }
}

impl Bin<'_> {
    /// Takes the first `n` (at most `count`) cached blocks as a chain.
    pub fn take(&mut self, n: u32) -> Chain {
        // SAFETY: the bin is a null-terminated chain of `count` blocks that
        // the cache owns.
        let mut chain = unsafe { Chain::from_raw(self.head(), self.count()) };
        let front = chain.take_front(n);
        let (head, count) = chain.into_raw();
        self.set_head(head);
        self.set_count(count);
        front
    }

    /// Makes `chain` the bin's blocks (the bin was empty).
    pub fn set_chain(&mut self, chain: Chain) {
        debug_assert!(self.count() == 0);
        let (head, count) = chain.into_raw();
        self.set_head(head);
        self.set_count(count);
    }

    /// Takes the first `n` cached blocks as a batch to flush, noting
    /// whether they belong to more than one arena (the flush then sorts
    /// them: see `Backend::flush`). The walk that finds the batch's end reads
    /// each block's arena on the way. With `prof`, a block below `floor`
    /// that is not the heap's (a sampled block) is only noted: the third
    /// value says whether the batch holds one (the caller sets it aside).
    pub fn take_batch(&mut self, n: u32, floor: usize) -> (Chain, Owners, bool) {
        let mut first = None;
        let mut mixed = false;
        #[cfg_attr(not(all(feature = "prof", not(loom))), allow(unused_mut))]
        let mut foreign = false;
        // SAFETY: the bin is a null-terminated chain of `count` blocks that
        // the cache owns.
        let mut chain = unsafe { Chain::from_raw(self.head(), self.count()) };
        let batch = chain.take_front_with(n, |b| {
            #[cfg(all(feature = "prof", not(loom)))]
            if (b as usize) < floor && !crate::registry::in_segment(b.cast()) {
                foreign = true;
                return;
            }
            #[cfg(not(all(feature = "prof", not(loom))))]
            let _ = floor;
            // SAFETY: a cached block is a live block of the heap.
            let owner = unsafe { Backend::owner_of(b.cast()) };
            match first {
                None => first = Some(owner),
                Some(o) => mixed |= o != owner,
            }
        });
        let (head, count) = chain.into_raw();
        self.set_head(head);
        self.set_count(count);
        let owners = if mixed { Owners::Mixed } else { Owners::One };
        (batch, owners, foreign)
    }
}

//! Free blocks and intrusive lists of them. This file holds the link
//! word (its encoding, the per-process secret, the checks on reading it);
//! the lists and the walks over them are in `block/list.rs`.
//!
//! A free block's first word holds the link to the next free block, so a
//! list of free blocks costs no memory beyond the blocks themselves. A
//! [`BlockList`] is a head, a tail and a length; it owns the blocks on it.
//! Invariants: `len == 0` iff `head` is null; following `len - 1` links from
//! `head` reaches `tail`, whose link is not read.
//!
//! A [`Chain`] is a head and a length, its last link null: the form of a
//! thread cache's bin, and of the batches that move between thread caches
//! and central pools. It has no tail to find, so a bin of any length is
//! handed over without walking it, and a batch becomes a bin as it is.
//!
//! **Protected links.** A link is stored encoded, XORed with a per-process
//! secret, so a program that knows heap addresses still cannot forge one.
//! Every link read is decoded and checked before it is followed or handed
//! out: a decoded address must lie in the user address space and be
//! 8-aligned. An overwritten link (an address, garbage, a flip of one of
//! its 20 checked bits) fails that check except with probability 2^-20
//! for a random word, and the process stops with a message naming the
//! block; the central pool checks links more strictly where the slab is
//! known (same slab, on a block boundary: `Slab::take_freed`). [`next_of`]
//! and [`set_next`] are the one pair that reads and writes links; the
//! secret is set once, before the first link is written (at load, or at
//! the first carve), and never changes. glibc's safe-linking also mixes in
//! the block's own address (its only secret is ASLR's); with a random
//! secret that term only adds protection against moving a valid link from
//! one free block to another, and costs three instructions per allocation
//! and free pair through `GlobalAlloc` (24 against 21 measured with
//! callgrind, 16 without encoding), so it is left out. The same encoding
//! tells a free block from a live one cheaply ([`looks_free`]): a live
//! block's first word decodes to a valid address only by chance (2^-20)
//! or if the program wrote a forged link.
//!
//! With the `asan` feature free blocks are poisoned whole: the two link
//! helpers below unpoison the link word around their access.

use crate::entropy;
#[cfg(not(loom))]
use crate::os;
use crate::poison;
use crate::sync::Ordering::{Acquire, Release};
use crate::sync::unmodeled::AtomicU8;
#[cfg(not(loom))]
use core::fmt::Write;
#[cfg(feature = "hardened")]
use core::ptr;

/// Bytes of a free block's link.
const LINK: usize = size_of::<*mut Block>();

/// Bits of the user address space (x86_64: 47; aarch64 and others: 48).
#[cfg(target_arch = "x86_64")]
const ADDRESS_BITS: u32 = 47;
#[cfg(not(target_arch = "x86_64"))]
const ADDRESS_BITS: u32 = 48;

/// Bits a decoded link never has: above the user address space, and below
/// a block's 8-byte alignment.
const NOT_A_LINK: usize = !((1 << ADDRESS_BITS) - 1) | (LINK - 1);

/// The secret links are encoded with: written once by [`init_secret`]
/// before the first link is written, then only read. Its bits above the
/// address space are never all 0, so a zeroed word never decodes to a link.
///
/// Reads are plain loads, so the compiler keeps the secret in a register
/// across a loop of allocations: a thread that reads a link either set the
/// secret itself or received the block, directly or not, from a thread that
/// had (through a lock, the inbox's atomics or the program's own
/// synchronisation), which orders the write before its reads.
///
/// In the hardened build a second word, drawn independently, keys the
/// canaries ([`tag_secret`]); other builds have no canaries, and leave it 0
/// without drawing it.
struct Secret(core::cell::UnsafeCell<[usize; 2]>);

// SAFETY: written once under `SECRET_STATE`'s protocol before any read
// (see above); never written again.
unsafe impl Sync for Secret {}

static SECRET: Secret = Secret(core::cell::UnsafeCell::new([0; 2]));

/// `SECRET`'s state: 0 unset, 1 being set, 2 set (published with Release).
static SECRET_STATE: AtomicU8 = AtomicU8::new(0);

/// Sets the secret if it is not set yet, and returns once it is. Called
/// before the first link is written (at load time where the platform runs
/// constructors, and by every carve that finds it unset).
#[cold]
pub fn init_secret() {
    loop {
        match SECRET_STATE.compare_exchange(0, 1, Acquire, Acquire) {
            Ok(_) => {
                let word = (entropy::random_word() as usize) | 1 << (usize::BITS - 2);
                // The canaries' secret, only where there are canaries: no
                // entropy spent on it elsewhere.
                let tags = if cfg!(feature = "hardened") {
                    entropy::random_word() as usize
                } else {
                    0
                };
                // SAFETY: state 1 makes this the only writer, and no thread
                // reads the secret before it sees state 2 (or synchronises
                // with one that did).
                unsafe { *SECRET.0.get() = [word, tags] };
                SECRET_STATE.store(2, Release);
                return;
            }
            Err(2) => return,
            Err(_) => core::hint::spin_loop(),
        }
    }
}

/// Whether the secret is set (a carve checks it before writing links).
#[inline(always)]
fn secret_is_set() -> bool {
    SECRET_STATE.load(Acquire) == 2
}

/// Sets the secret if it is not set yet (the hardened build's canaries may
/// be written before the first carve).
#[inline(always)]
pub fn ensure_secret() {
    if !secret_is_set() {
        init_secret();
    }
}

/// The secret, set first if need be: the copy a thread cache keeps beside
/// its bins, so that its fast paths encode and decode links without
/// another load (`next_keyed`, `set_next_keyed`, `looks_free_keyed`).
pub fn key() -> usize {
    ensure_secret();
    secret()
}

/// Sets the secret before `main` (and before any allocation the dynamic
/// loader makes through the C library, in the usual order).
#[cfg(all(target_os = "linux", not(loom)))]
#[used]
#[unsafe(link_section = ".init_array")]
static INIT_SECRET: extern "C" fn() = {
    extern "C" fn init() {
        init_secret();
    }
    init
};

/// The per-process secret links are encoded with.
#[inline(always)]
pub(crate) fn secret() -> usize {
    // SAFETY: see `Secret`: the write happened before this read.
    unsafe { (*SECRET.0.get())[0] }
}

/// The per-process secret of the hardened build's canaries, drawn apart
/// from [`secret`]: a block's tag can be read by an over-read of the block
/// (a bug class of its own), and the key it yields must tell nothing of
/// how free-list links are encoded. Set with [`secret`] (`ensure_secret`).
#[cfg(feature = "hardened")]
#[inline(always)]
pub(crate) fn tag_secret() -> usize {
    // SAFETY: as in `secret`.
    unsafe { (*SECRET.0.get())[1] }
}

/// The stored form of a link to `next`, under `key` (the secret).
#[inline(always)]
fn encode(next: *mut Block, key: usize) -> usize {
    next as usize ^ key
}

/// The block a stored link word names, unchecked, under `key` (the secret).
#[inline(always)]
fn decode(word: usize, key: usize) -> *mut Block {
    (word ^ key) as *mut Block
}

/// A free block, viewed as its link word.
#[repr(C)]
pub struct Block {
    next: usize,
}

/// Reads and checks the link of `block`; stops the process if it does not
/// decode to a block address.
///
/// # Safety
/// `block` must be a free block owned by the caller.
#[inline(always)]
pub unsafe fn next_of(block: *mut Block) -> *mut Block {
    // SAFETY: forwarded contract.
    unsafe { next_keyed(block, secret()) }
}

/// [`next_of`] with the secret given (`key`: a thread cache's copy).
///
/// # Safety
/// As for [`next_of`]; `key` must be the secret ([`key`]).
#[inline(always)]
pub unsafe fn next_keyed(block: *mut Block, key: usize) -> *mut Block {
    poison::unpoison(block.cast(), || LINK);
    // SAFETY: a free block is at least 8 bytes, 8-aligned, owned by the caller.
    let word = unsafe { (*block).next };
    poison::poison(block.cast(), || LINK);
    let next = decode(word, key);
    if next as usize & NOT_A_LINK != 0 {
        corrupt_link(block, word);
    }
    next
}

/// A link that names an 8-aligned address in the same chunk
/// (`SEGMENT_SIZE`, a segment's alignment) as the block holding it: its
/// XOR with that block's address has none of these bits set.
#[cfg(not(loom))]
const NOT_NEAR: usize = !(crate::layout::SEGMENT_SIZE - 1) | (LINK - 1);

/// [`next_keyed`] as a filter, for the C door's `malloc`, which takes a
/// block on its fast path only when the link leads into the block's own
/// segment: `Ok` with the next block if so; else `Err` with what the link
/// decodes to, unchecked (the end of the list, another segment, or a
/// corrupt link), for the caller's own checks. One test covers both of
/// [`next_keyed`]'s: an address in the block's segment is a canonical one.
///
/// # Safety
/// As for [`next_keyed`].
#[cfg(not(loom))]
#[inline(always)]
pub unsafe fn next_near_keyed(block: *mut Block, key: usize) -> Result<*mut Block, *mut Block> {
    poison::unpoison(block.cast(), || LINK);
    // SAFETY: as for `next_keyed`.
    let word = unsafe { (*block).next };
    poison::poison(block.cast(), || LINK);
    let next = decode(word, key);
    if (next as usize ^ block as usize) & NOT_NEAR != 0 {
        return Err(next);
    }
    Ok(next)
}

/// Whether `next`, what a link decodes to, is one that [`next_keyed`] would
/// follow: an 8-aligned address of the user address space (or null).
#[cfg(not(loom))]
#[inline(always)]
pub fn is_link(next: *mut Block) -> bool {
    next as usize & NOT_A_LINK == 0
}

/// Sets the link of `block`.
///
/// # Safety
/// `block` must be a free block owned by the caller.
#[inline(always)]
pub unsafe fn set_next(block: *mut Block, next: *mut Block) {
    // SAFETY: forwarded contract.
    unsafe { set_next_keyed(block, next, secret()) }
}

/// [`set_next`] with the secret given (`key`: a thread cache's copy).
///
/// # Safety
/// As for [`set_next`]; `key` must be the secret ([`key`]).
#[inline(always)]
pub unsafe fn set_next_keyed(block: *mut Block, next: *mut Block, key: usize) {
    poison::unpoison(block.cast(), || LINK);
    // SAFETY: as for `next_of`.
    unsafe { (*block).next = encode(next, key) };
    poison::poison(block.cast(), || LINK);
}

/// Whether the first word of `p`, a block of slabpool's, reads as the link
/// of a free block: always true for a free block, true for a live one only
/// if its first 8 bytes happen to (or were made to) decode to an address.
/// The C door's `free` calls it on every small block: a true answer is a
/// suspected double free, which the caller confirms by looking the block up
/// where free blocks are.
///
/// # Safety
/// `p` must point to at least 8 readable bytes.
#[cfg(not(loom))]
#[inline(always)]
pub unsafe fn looks_free(p: *const u8) -> bool {
    // SAFETY: forwarded contract.
    unsafe { looks_free_keyed(p, secret()) }
}

/// [`looks_free`] with the secret given (`key`: a thread cache's copy).
///
/// # Safety
/// As for [`looks_free`]; `key` must be the secret ([`key`]).
#[cfg(not(loom))]
#[inline(always)]
pub unsafe fn looks_free_keyed(p: *const u8, key: usize) -> bool {
    // Under ASan a free block is poisoned whole: that says it already.
    if poison::is_poisoned(p) {
        return true;
    }
    // SAFETY: by contract. A live block's first word may be uninitialised
    // to the program, never to the allocator: blocks are carved from zeroed
    // or previously written memory.
    let word = unsafe { p.cast::<usize>().read() };
    decode(word, key) as usize & NOT_A_LINK == 0
}

/// `p`, a small block being handed out (or null), with its link word
/// cleared. Every door hands small blocks out through this, so that a
/// block the program has not written does not read as free to the C
/// door's double-free check ([`looks_free`], and [`link_target`] when it
/// confirms), nor shows the program an encoded link.
#[cfg(not(loom))]
#[inline(always)]
pub fn handed_out(p: *mut u8) -> *mut u8 {
    if !p.is_null() {
        // SAFETY: a small block holds at least 8 bytes, 8-aligned, and is
        // being handed out by the caller (unpoisoned).
        unsafe { p.cast::<usize>().write(0) };
    }
    p
}

/// The block the link word of `p` names, decoded unchecked: the double-free
/// check's confirmation asks whether it names a block of `p`'s class (a
/// free block's always does: the next on its list, or null at the end).
///
/// # Safety
/// `p` must point to at least 8 readable bytes, unpoisoned.
#[cfg(not(loom))]
#[inline(always)]
pub unsafe fn link_target(p: *const u8) -> *mut Block {
    // SAFETY: by contract.
    decode(unsafe { p.cast::<usize>().read() }, secret())
}

/// Whether the first word of `p` is an encoded null link: the last block of
/// a list, or a block in the hardened build's quarantine. A live block's
/// first word holds that only if the program wrote the secret itself.
///
/// # Safety
/// `p` must point to at least 8 readable bytes.
#[cfg(feature = "hardened")]
#[inline(always)]
pub unsafe fn links_to_null(p: *const u8) -> bool {
    // SAFETY: by contract.
    unsafe { p.cast::<usize>().read() == encode(ptr::null_mut(), secret()) }
}

/// Under loom a foreign block on a list fails the model.
#[cfg(loom)]
#[cold]
fn foreign_block(block: *mut Block) -> ! {
    panic!("free-list corruption: block {block:p} is not one of its list's")
}

/// Reports a block on a slab's free list that is not one of the slab's
/// blocks (a link that decoded to a valid address elsewhere), and aborts.
#[cfg(not(loom))]
#[cold]
#[inline(never)]
fn foreign_block(block: *mut Block) -> ! {
    let mut out = os::StderrWriter::new();
    let _ = writeln!(
        out,
        "slabpool: free-list corruption: {block:p} on a slab's free list is not a block \
         of that slab (a link overwritten after free?); aborting"
    );
    out.flush();
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// Reports the link in `block`, a free block just taken off a list, as
/// corrupt (a caller's stricter check failed), and aborts.
///
/// # Safety
/// `block` must point to at least 8 readable bytes.
#[cfg(not(loom))]
#[cold]
pub unsafe fn corrupt_link_in(block: *mut u8) -> ! {
    // SAFETY: by contract.
    corrupt_link(block.cast(), unsafe { block.cast::<usize>().read() })
}

/// Under loom a corrupt link fails the model.
#[cfg(loom)]
#[cold]
fn corrupt_link(block: *mut Block, word: usize) -> ! {
    panic!("free-list corruption: link {word:#x} in free block {block:p}")
}

/// Reports a link that does not decode to a block, and aborts.
#[cfg(not(loom))]
#[cold]
#[inline(never)]
fn corrupt_link(block: *mut Block, word: usize) -> ! {
    let mut out = os::StderrWriter::new();
    let _ = writeln!(
        out,
        "slabpool: free-list corruption: the link in free block {block:p} \
         (stored {word:#x}) does not decode to a block (written after free?); aborting"
    );
    out.flush();
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// Largest copy [`copy_contents`] does inline.
#[cfg(not(loom))]
#[cfg_attr(feature = "hardened", allow(dead_code))]
pub const INLINE_COPY: usize = 128;

/// Copies the first `n` bytes of a small block to another (a `realloc`
/// that changes class). `n` is a class size (a multiple of 8) of at most
/// [`INLINE_COPY`]: the copy is a few 16-byte moves, inline, where a call
/// to `memcpy` would cost as much as the copy itself. Bytes the program
/// never wrote may be copied: they are moved as `MaybeUninit`, never read
/// as values.
///
/// # Safety
/// `src` and `dst` must be distinct live blocks of at least `n` bytes.
#[cfg(not(loom))]
#[inline(always)]
#[cfg_attr(feature = "hardened", allow(dead_code))]
pub unsafe fn copy_contents(dst: *mut u8, src: *const u8, n: usize) {
    type Word = core::mem::MaybeUninit<u64>;
    type Chunk = core::mem::MaybeUninit<[u8; 16]>;
    debug_assert!(n % 8 == 0 && (8..=INLINE_COPY).contains(&n));
    // SAFETY: every move below lies within the first `n` bytes of both
    // blocks (offsets `0..=n - 16` for chunks when `n >= 16`), which the
    // caller guarantees are readable at `src` and writable at `dst`.
    unsafe {
        let mov = |at: usize| {
            let chunk = src.add(at).cast::<Chunk>().read_unaligned();
            dst.add(at).cast::<Chunk>().write_unaligned(chunk);
        };
        if n < 16 {
            let word = src.cast::<Word>().read_unaligned();
            dst.cast::<Word>().write_unaligned(word);
            return;
        }
        let mut at = 0;
        while at + 16 < n {
            mov(at);
            at += 16;
        }
        // The last 16 bytes, overlapping the previous move if `n` is not a
        // multiple of 16.
        mov(n - 16);
    }
}

mod list;
#[cfg(any(test, fuzzing, feature = "invariants"))]
pub use list::check_chain;
pub use list::{BlockList, Chain, carve, contains, split_chain};

#[cfg(all(test, not(loom)))]
mod tests;

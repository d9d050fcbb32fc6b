//! Randomised carve order (the `hardened` build): the fresh blocks of a
//! carve are linked in a random order, so the block a `malloc` returns next
//! is not the one after the last (an attacker cannot place an object right
//! after the one they overflow by allocating in sequence).
//!
//! The order is a Fisher-Yates shuffle of the carve's block indices, kept
//! in the blocks' second words (the blocks are fresh and the caller's, so
//! no other memory is needed); `block::carve` then links them through their
//! first words in that order. This module only decides the order. The random numbers come from a xorshift generator seeded
//! per carve from the per-process secret, the carve's address and a
//! counter, mixed; a carve is at most a page of blocks, so the walk stays
//! within the pages the carve touches anyway.
//!
//! Blocks smaller than two words (the 8-byte class, which the hardened
//! build's canary keeps requests out of but for `malloc(0)`) are linked in
//! address order.

use crate::sync::Ordering::Relaxed;
use crate::sync::unmodeled::AtomicU32;

/// Carves so far (part of each carve's seed).
static CARVES: AtomicU32 = AtomicU32::new(0);

/// A xorshift64* generator.
struct Rng(u64);

impl Rng {
    /// A generator for the carve at `start`, keyed by the secret.
    fn for_carve(start: *mut u8, key: usize) -> Rng {
        let count = CARVES.fetch_add(1, Relaxed) as u64;
        let mut x = key as u64 ^ start as u64 ^ count.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // splitmix64's finaliser.
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((x ^ (x >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..=max` (the bias of a 64-bit product is negligible).
    fn up_to(&mut self, max: u32) -> u32 {
        ((u128::from(self.next()) * (u128::from(max) + 1)) >> 64) as u32
    }
}

/// Whether blocks of `size` bytes can be linked in a random order.
#[inline]
pub fn applies(size: usize) -> bool {
    size >= 2 * size_of::<usize>()
}

/// Shuffles the `n` blocks of `size` bytes at `start`: afterwards the
/// second word of block `i` holds the index of the block at position `i`
/// of a random order ([`at`] reads it), for `block::carve` to link them.
/// `key` is the per-process secret (part of the seed).
///
/// # Safety
/// `[start, start + n * size)` must be unused memory owned by the caller,
/// `start` 8-aligned, `size` a multiple of 8 with [`applies`], `n >= 1`.
pub unsafe fn shuffle(start: *mut u8, size: usize, n: u32, key: usize) {
    debug_assert!(applies(size) && n >= 1);
    let mut rng = Rng::for_carve(start, key);
    for i in 0..n {
        // SAFETY: the second word of block `i`, within the caller's range.
        unsafe { slot(start, size, i).write(i) };
    }
    for i in (1..n).rev() {
        let j = rng.up_to(i);
        // SAFETY: `i` and `j` are below `n`: slots in the caller's range.
        unsafe {
            let (a, b) = (slot(start, size, i).read(), slot(start, size, j).read());
            slot(start, size, i).write(b);
            slot(start, size, j).write(a);
        }
    }
}

/// The index of the block at position `i` of the order [`shuffle`] wrote.
///
/// # Safety
/// `shuffle(start, size, n, _)` wrote the order, `i < n`, and no second
/// word of those blocks was written since.
#[inline]
pub unsafe fn at(start: *mut u8, size: usize, i: u32) -> u32 {
    // SAFETY: by contract, a slot of the shuffled range.
    unsafe { slot(start, size, i).read() }
}

/// Where the order keeps position `i`: the second word of block `i`.
#[inline]
fn slot(start: *mut u8, size: usize, i: u32) -> *mut u32 {
    start.wrapping_add(i as usize * size + 8).cast::<u32>()
}

#[cfg(test)]
mod tests;

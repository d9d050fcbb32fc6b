//! Randomised carve order (the `hardened` build): the fresh blocks of a
//! carve are linked in a random order, so the block a `malloc` returns next
//! is not the one after the last (an attacker cannot place an object right
//! after the one they overflow by allocating in sequence).
//!
//! The order is a Fisher-Yates shuffle of the carve's block indices, kept
//! in the blocks' second words while it is built (the blocks are fresh and
//! the caller's, so no other memory is needed), then linked through their
//! first words. The random numbers come from a xorshift generator seeded
//! per carve from the per-process secret, the carve's address and a
//! counter, mixed; a carve is at most a page of blocks, so the walk stays
//! within the pages the carve touches anyway.
//!
//! Blocks smaller than two words (the 8-byte class, which the hardened
//! build's canary keeps requests out of but for `malloc(0)`) are linked in
//! address order.

use crate::block::{self, Block};
use crate::sync::Ordering::Relaxed;
use crate::sync::unmodeled::AtomicU32;

/// Carves so far (part of each carve's seed).
static CARVES: AtomicU32 = AtomicU32::new(0);

/// A xorshift64* generator.
struct Rng(u64);

impl Rng {
    /// A generator for the carve at `start`.
    fn for_carve(start: *mut u8) -> Rng {
        let count = CARVES.fetch_add(1, Relaxed) as u64;
        let mut x =
            block::secret() as u64 ^ start as u64 ^ count.wrapping_mul(0x9e37_79b9_7f4a_7c15);
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

/// Links the `n` blocks of `size` bytes at `start` in a random order and
/// returns the first and the last; the last one's link is not written.
///
/// # Safety
/// `[start, start + n * size)` must be unused memory owned by the caller,
/// `start` 8-aligned, `size` a multiple of 8 with [`applies`], `n >= 1`,
/// and the secret set.
pub unsafe fn link_shuffled(start: *mut u8, size: usize, n: u32) -> (*mut Block, *mut Block) {
    debug_assert!(applies(size) && n >= 1);
    // The second word of block `i` holds the index of the block at
    // position `i` of the order.
    let slot = |i: u32| start.wrapping_add(i as usize * size + 8).cast::<u32>();
    let block_at = |i: u32| start.wrapping_add(i as usize * size).cast::<Block>();
    let mut rng = Rng::for_carve(start);
    for i in 0..n {
        // SAFETY: the second word of block `i`, within the caller's range.
        unsafe { slot(i).write(i) };
    }
    for i in (1..n).rev() {
        let j = rng.up_to(i);
        // SAFETY: `i` and `j` are below `n`: slots in the caller's range.
        unsafe {
            let (a, b) = (slot(i).read(), slot(j).read());
            slot(i).write(b);
            slot(j).write(a);
        }
    }
    // SAFETY: slot 0 lies in the caller's range.
    let head = block_at(unsafe { slot(0).read() });
    let mut cur = head;
    for i in 1..n {
        // SAFETY: links go to first words and the order is read from
        // second words, which never overlap; every block lies in the
        // caller's range.
        unsafe {
            let next = block_at(slot(i).read());
            block::set_next(cur, next);
            cur = next;
        }
    }
    (head, cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(storage: &mut [[u64; 4]]) -> Vec<usize> {
        let start = storage.as_mut_ptr().cast::<u8>();
        let n = storage.len() as u32;
        block::ensure_secret();
        // SAFETY: `n` unused blocks of 32 bytes.
        let (head, tail) = unsafe { link_shuffled(start, 32, n) };
        let mut out = vec![(head as usize - start as usize) / 32];
        let mut b = head;
        while b != tail {
            // SAFETY: every block but the tail was linked.
            b = unsafe { block::next_of(b) };
            out.push((b as usize - start as usize) / 32);
        }
        out
    }

    #[test]
    fn a_carve_is_a_permutation_and_two_carves_differ() {
        let mut storage = vec![[0u64; 4]; 128];
        let first = order(&mut storage);
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(sorted, (0..128).collect::<Vec<_>>(), "every block once");
        assert_ne!(first, sorted, "not in address order");
        let second = order(&mut storage);
        assert_ne!(first, second, "the next carve of the same blocks differs");
    }
}

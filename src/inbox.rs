//! A central pool's inbox: batches freed by threads of other shards,
//! handed over without the pool's lock.
//!
//! A thread that flushes blocks another shard allocated (a consumer giving
//! a producer's blocks back) puts the batch in a free slot of the owner
//! pool's inbox with one compare-exchange; the owner's next refill moves
//! the slots' batches onto its transfer stack, under its own lock. So the
//! threads that free into a pool never wait for its lock, and the pool's
//! lock is taken by the threads of its own shard only.
//!
//! A slot holds a null-terminated chain as one word: its first block's
//! address in the low 48 bits, its length in the high 16. A slot goes from
//! empty to full only by a compare-exchange from zero (so two threads never
//! fill one slot), and from full to empty only by the swap of whoever
//! empties the inbox (under the pool's lock); there is nothing else to
//! race with, so no ABA. The release of the filling compare-exchange
//! publishes the chain's links to the acquire of the emptying swap.
//!
//! When every slot is full (the owner has not refilled meanwhile), the
//! batch goes the locked way instead.

use crate::block::{Block, Chain};
use crate::sync::{AtomicU64, Ordering};

/// Batches an inbox holds.
#[cfg(not(loom))]
const SLOTS: usize = 8;
/// Loom models fill it with two.
#[cfg(loom)]
const SLOTS: usize = 2;

const ADDRESS_BITS: u32 = 48;
const ADDRESS_MASK: u64 = (1 << ADDRESS_BITS) - 1;

pub struct Inbox {
    slots: [AtomicU64; SLOTS],
}

impl Inbox {
    crate::sync::const_fn! {
        pub fn new() -> Self {
            Self {
                slots: crate::sync::array_of!(SLOTS, AtomicU64::new(0)),
            }
        }
    }

    /// Puts `chain` in a free slot; gives it back if every slot is full or
    /// it does not fit in a slot's word.
    pub fn put(&self, chain: Chain) -> Result<(), Chain> {
        let (head, len) = chain.into_raw();
        let address = head as u64;
        if len == 0 || address & !ADDRESS_MASK != 0 || len >> (64 - ADDRESS_BITS) != 0 {
            // SAFETY: as it came.
            return Err(unsafe { Chain::from_raw(head, len) });
        }
        let word = address | u64::from(len) << ADDRESS_BITS;
        for slot in &self.slots {
            if slot.load(Ordering::Relaxed) == 0
                && slot
                    .compare_exchange(0, word, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
            {
                return Ok(());
            }
        }
        // SAFETY: no slot took it: it is still the caller's.
        Err(unsafe { Chain::from_raw(head, len) })
    }

    /// Takes a batch out of the inbox, if there is one. Only the owner
    /// pool's lock holder takes from an inbox.
    pub fn take(&self) -> Option<Chain> {
        for slot in &self.slots {
            if slot.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let word = slot.swap(0, Ordering::Acquire);
            if word != 0 {
                let head = (word & ADDRESS_MASK) as usize as *mut Block;
                let len = (word >> ADDRESS_BITS) as u32;
                // SAFETY: the slot held a chain of `len` blocks, whose
                // links the filling thread's release published; taking it
                // out of the slot hands it over.
                return Some(unsafe { Chain::from_raw(head, len) });
            }
        }
        None
    }

    /// Blocks in the inbox (a snapshot, exact when nobody fills it).
    pub fn blocks(&self) -> usize {
        self.slots
            .iter()
            .map(|s| (s.load(Ordering::Relaxed) >> ADDRESS_BITS) as usize)
            .sum()
    }

    /// Calls `f` on every batch in the inbox. Only the owner pool's lock
    /// holder may call it (or checks, with the heap quiescent): batches are
    /// then not taken meanwhile, and a put only fills an empty slot, with
    /// the chain's links published by its release.
    pub fn for_each(&self, mut f: impl FnMut(&Chain)) {
        for slot in &self.slots {
            let word = slot.load(Ordering::Acquire);
            if word != 0 {
                let head = (word & ADDRESS_MASK) as usize as *mut Block;
                // SAFETY: looked at, not taken: the chain stays in the slot.
                let chain = unsafe { Chain::from_raw(head, (word >> ADDRESS_BITS) as u32) };
                f(&chain);
                let _ = chain.into_raw();
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

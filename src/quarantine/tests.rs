//! Unit tests of `quarantine`.

use super::*;
use crate::size_class::class_of;

/// `n` freed blocks of 32 bytes that held 20: armed, then zeroed.
fn freed_blocks(n: usize) -> (Vec<[u64; 4]>, usize) {
    block::ensure_secret();
    let mut storage = vec![[0u64; 4]; n];
    for b in storage.iter_mut() {
        // SAFETY: 32 bytes, 8-aligned; the request fits with the tag.
        unsafe { canary::arm(b.as_mut_ptr().cast(), 20, 32) };
    }
    (storage, class_of(32))
}

#[test]
fn a_block_leaves_after_slots_more_puts_oldest_first() {
    let (mut storage, class) = freed_blocks(2 * SLOTS);
    let ptrs: Vec<*mut u8> = storage.iter_mut().map(|b| b.as_mut_ptr().cast()).collect();
    let mut ring = Ring::new();
    for (i, &p) in ptrs.iter().enumerate() {
        // SAFETY: each slot is a distinct freed block of `class`.
        let out = unsafe { ring.put(p, class) };
        // SAFETY: `p` holds 8 readable bytes.
        assert!(unsafe { is_marked(p) });
        if i < SLOTS {
            assert_eq!(out, None, "put {i}");
        } else {
            assert_eq!(out, Some((ptrs[i - SLOTS], class)), "put {i}");
        }
    }
    assert_eq!(ring.len(), SLOTS);
    assert!(ring.holds(ptrs[SLOTS]) && !ring.holds(ptrs[0]));
    ring.check_all();
    let mut drained = Vec::new();
    ring.drain(|b, _| drained.push(b));
    assert_eq!(drained, ptrs[SLOTS..]);
    assert_eq!(ring.len(), 0);
    // A live block (zeroed, or holding data) is not marked.
    storage[0][0] = 0;
    // SAFETY: 8 readable bytes.
    assert!(!unsafe { is_marked(ptrs[0]) });
}

#[test]
fn writes_after_free_are_found() {
    let (mut storage, class) = freed_blocks(4);
    let ptrs: Vec<*mut u8> = storage.iter_mut().map(|b| b.as_mut_ptr().cast()).collect();
    let mut ring = Ring::new();
    for &p in &ptrs {
        // SAFETY: distinct freed blocks of `class`.
        unsafe { ring.put(p, class) };
    }
    // SAFETY: each is a quarantined block of `class`; the writes stay
    // within its 32 bytes.
    unsafe {
        assert_eq!(written(ptrs[0], class), None, "untouched");
        ptrs[0].cast::<u64>().write(0x4141);
        assert_eq!(written(ptrs[0], class), Some((0, None)), "link overwritten");
        ptrs[1].add(12).write(1);
        assert_eq!(written(ptrs[1], class), Some((12, None)), "data written");
        // Flipped, not set: a constant equals the secret-keyed byte
        // there once in 256 runs.
        ptrs[2].add(31).write(!ptrs[2].add(31).read());
        assert!(
            matches!(written(ptrs[2], class), Some((32, Some(_)))),
            "tag"
        );
    }
}

//! Unit tests of `quarantine`.

use super::*;
use crate::size_class::size_class;

/// `n` freed blocks of 32 bytes that held 20: armed, then cleared as the
/// hardened `free` clears them (the request and the pattern after it, up
/// to the tag).
fn freed_blocks(n: usize) -> (Vec<[u64; 4]>, SizeClass) {
    block::ensure_secret();
    let mut storage = vec![[0u64; 4]; n];
    for b in storage.iter_mut() {
        let p: *mut u8 = b.as_mut_ptr().cast();
        // SAFETY: 32 bytes, 8-aligned; the request fits with the tag, and
        // the bytes cleared stop short of it.
        unsafe {
            canary::arm(p, 20, 32);
            p.write_bytes(0, zero_checked(32).max(20));
        }
    }
    assert_eq!(zero_checked(32), 24, "up to the tag");
    (storage, size_class(32))
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
        assert_eq!(written(ptrs[0], class), Some(0), "link overwritten");
        ptrs[1].add(12).write(1);
        assert_eq!(written(ptrs[1], class), Some(12), "data written");
        // The pattern's place, past the 20 bytes requested, was cleared
        // too and is checked.
        ptrs[2].add(23).write(0x55);
        assert_eq!(written(ptrs[2], class), Some(23), "pattern bytes");
        // The tag was checked on free; it is not read on the way out.
        ptrs[3].add(31).write(!ptrs[3].add(31).read());
        assert_eq!(written(ptrs[3], class), None, "tag");
    }
}

#[test]
fn the_check_on_leaving_covers_the_first_32_bytes_of_bigger_blocks() {
    block::ensure_secret();
    let class = size_class(64);
    assert_eq!(zero_checked(64), ZERO_CHECKED);
    for at in [0, 8, 17, 31, 32, 40] {
        let mut b = [0u64; 8];
        let p: *mut u8 = b.as_mut_ptr().cast();
        // SAFETY: 64 bytes, 8-aligned, a request of 4 and its tag fit;
        // every write stays within them.
        let (fast, slow) = unsafe {
            canary::arm(p, 4, 64);
            p.write_bytes(0, zero_checked(64).max(4));
            mark(p);
            assert!(untouched(p, class) && written(p, class).is_none(), "clean");
            p.add(at).write(!p.add(at).read());
            (untouched(p, class), written(p, class))
        };
        let expected = (at < ZERO_CHECKED).then_some(at);
        assert_eq!(slow, expected, "written at {at}");
        assert_eq!(fast, expected.is_none(), "written at {at}");
    }
}

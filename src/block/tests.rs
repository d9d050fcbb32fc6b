//! Unit tests of `block`.

use super::*;

fn blocks(n: usize) -> Vec<[usize; 2]> {
    vec![[0usize; 2]; n]
}

fn collect(mut chain: Chain) -> Vec<*mut Block> {
    let mut out = Vec::new();
    while let Some(b) = chain.pop() {
        out.push(b);
    }
    assert!(chain.is_empty() && chain.first().is_none());
    out
}

#[test]
fn lists_push_append_and_become_chains() {
    let mut storage = blocks(10);
    let ptrs: Vec<*mut Block> = storage.iter_mut().map(|b| b.as_mut_ptr().cast()).collect();
    let (mut front, mut back) = (BlockList::new(), BlockList::new());
    for &p in &ptrs[..3] {
        // SAFETY: each storage slot is a distinct, aligned, unused block.
        unsafe { front.push(p) };
    }
    for &p in &ptrs[3..] {
        // SAFETY: as above.
        unsafe { back.push_back(p) };
    }
    front.append(back);
    assert_eq!(front.len(), 10);
    let chain = front.into_chain();
    assert_eq!(chain.len(), 10);
    let mut expected: Vec<_> = ptrs[..3].iter().rev().copied().collect();
    expected.extend(&ptrs[3..]);
    assert_eq!(collect(chain), expected, "null-terminated after 10");
}

#[test]
fn chains_split_at_the_front() {
    let mut storage = blocks(10);
    let ptrs: Vec<*mut Block> = storage.iter_mut().map(|b| b.as_mut_ptr().cast()).collect();
    let mut chain = Chain::new();
    for &p in &ptrs {
        // SAFETY: each storage slot is a distinct, aligned, unused block.
        unsafe { chain.push(p) };
    }
    assert!(chain.take_front(0).is_empty());
    let front = chain.take_front(3);
    assert_eq!((front.len(), chain.len()), (3, 7));
    let rev: Vec<_> = ptrs.iter().rev().copied().collect();
    assert_eq!(collect(front), rev[..3], "the front ends at a null link");
    let rest = chain.take_front(100);
    assert!(chain.is_empty());
    assert_eq!(collect(rest), rev[3..]);
}

#[cfg(not(feature = "hardened"))]
#[test]
fn carve_links_in_address_order() {
    let mut storage = blocks(8);
    let start = storage.as_mut_ptr().cast::<u8>();
    // SAFETY: 8 blocks of 16 bytes, unused.
    let list = unsafe { carve(start, 16, 8) };
    let order = collect(list.into_chain());
    let expected: Vec<_> = (0..8)
        .map(|i| start.wrapping_add(16 * i).cast::<Block>())
        .collect();
    assert_eq!(order, expected);
}

#[test]
fn links_are_stored_encoded_and_tell_free_blocks_from_live_ones() {
    let mut storage = blocks(3);
    let ptrs: Vec<*mut Block> = storage.iter_mut().map(|b| b.as_mut_ptr().cast()).collect();
    let mut chain = Chain::new();
    for &p in &ptrs {
        // SAFETY: each storage slot is a distinct, aligned, unused block.
        unsafe { chain.push(p) };
    }
    // The top block's stored word is not the next block's address, and
    // not null at the end either.
    assert_ne!(storage[2][0], ptrs[1] as usize);
    assert_ne!(storage[0][0], 0);
    for &p in &ptrs {
        // SAFETY: each slot holds at least 8 bytes.
        assert!(unsafe { looks_free(p.cast()) }, "a free block looks free");
    }
    assert!(chain.contains(ptrs[0].cast()) && !chain.contains(ptrs[0].wrapping_add(1).cast()));
    assert_eq!(collect(chain), [ptrs[2], ptrs[1], ptrs[0]]);
    // Live data (zeros, a heap pointer, small integers) does not look free.
    for word in [0usize, ptrs[1] as usize, 1, 42] {
        storage[1][0] = word;
        // SAFETY: the slot holds at least 8 bytes.
        assert!(!unsafe { looks_free(ptrs[1].cast()) }, "{word:#x}");
    }
}

#[test]
fn copies_contents_of_every_inline_size() {
    for n in (8..=INLINE_COPY).step_by(8) {
        let src: Vec<u8> = (0..INLINE_COPY as u8 + 16).collect();
        let mut dst = vec![0xEEu8; INLINE_COPY + 16];
        // SAFETY: both buffers hold more than `n` bytes.
        unsafe { copy_contents(dst.as_mut_ptr(), src.as_ptr(), n) };
        assert_eq!(dst[..n], src[..n], "{n} bytes");
        assert!(dst[n..].iter().all(|&b| b == 0xEE), "{n}: wrote past");
    }
}

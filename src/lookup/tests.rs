//! Unit tests of `lookup`.

use super::*;
use crate::pointer::{alloc_bare as alloc, free_bare as free, usable_size_bare as usable_size};

#[test]
fn finds_blocks_of_every_kind_from_their_address() {
    let small = alloc(100, 16);
    let large = alloc(100_000, 16);
    let huge = alloc(5 << 20, 16);
    assert_eq!(
        find(small),
        Ok(Found::Small(crate::size_class::size_class(112)))
    );
    assert_eq!(find(large), Ok(Found::Large(25 * os::PAGE)));
    assert_eq!(find(huge), Ok(Found::Huge));
    assert_eq!(usable_size(small), 112);
    assert!(usable_size(huge) >= 5 << 20);
    assert_eq!(find(small.wrapping_add(8)), Err(Invalid::Interior));
    assert_eq!(find(large.wrapping_add(4096)), Err(Invalid::Interior));
    assert_eq!(find(huge.wrapping_add(4096)), Err(Invalid::Interior));
    let local = 0u64;
    assert_eq!(find((&local as *const u64).cast()), Err(Invalid::Foreign));
    // SAFETY: each block is live and given up once.
    unsafe {
        free(small);
        free(huge);
        free(large);
    }
    assert_eq!(find(huge), Err(Invalid::AlreadyFree));
}

#[test]
fn block_index_divides_every_offset_in_a_segment_exactly() {
    for info in &CLASSES {
        let (capacity, size) = (u64::from(info.capacity), u64::from(info.size));
        let reciprocal = info.reciprocal;
        for offset in 0..1u64 << SEGMENT_SHIFT {
            let expected = (offset % size == 0).then_some(offset / size);
            assert_eq!(block_index(offset, reciprocal), expected);
        }
        // Offsets from a stale page map entry past the page wrap around.
        for back in [1, 8, size, 1 << 20] {
            let index = block_index(back.wrapping_neg(), reciprocal);
            assert!(index.is_none_or(|i| i >= capacity));
        }
    }
    // Spans that are not slabs have reciprocal 0.
    assert!((0..1u64 << SEGMENT_SHIFT).all(|offset| block_index(offset, 0).is_none()));
}

#[test]
fn header_addresses_are_not_blocks() {
    let p = alloc(48, 16);
    let base = p as usize & !(crate::layout::SEGMENT_SIZE - 1);
    for page in 0..FIRST_PAGE {
        for offset in [0, 8, os::PAGE - 8] {
            let q = (base + page * os::PAGE + offset) as *const u8;
            assert_eq!(small_class(q), None);
            assert_eq!(find(q), Err(Invalid::Interior));
        }
    }
    // SAFETY: live, freed once.
    unsafe { free(p) };
}

#[test]
fn every_block_of_a_slab_is_found_and_no_interior_byte() {
    for class in [0, 2, 4, 9, 20, crate::size_class::NUM_CLASSES - 1] {
        let size = CLASSES[class].size as usize;
        let p = alloc(size, 8);
        assert_eq!(find(p), Ok(Found::Small(SizeClass::new(class).unwrap())));
        for delta in [1, 8, size / 2, size - 1] {
            if delta > 0 && delta < size {
                assert_eq!(find(p.wrapping_add(delta)), Err(Invalid::Interior));
            }
        }
        // SAFETY: live, freed once.
        unsafe { free(p) };
    }
}

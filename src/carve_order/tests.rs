//! Unit tests of `carve_order`.

use super::*;

fn order(storage: &mut [[u64; 4]]) -> Vec<usize> {
    let start = storage.as_mut_ptr().cast::<u8>();
    let n = storage.len() as u32;
    // SAFETY: `n` unused blocks of 32 bytes; the order is read back
    // before anything else is written.
    unsafe {
        shuffle(start, 32, n, 0x5eed);
        (0..n).map(|i| at(start, 32, i) as usize).collect()
    }
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

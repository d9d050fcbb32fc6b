//! Filled blocks and their checks: every workload writes a pattern derived
//! from a tag into what it allocates and verifies it before freeing, so an
//! allocator that hands out overlapping or corrupted memory fails the run
//! instead of winning it.

/// The fill byte for `tag` (never zero, so `vec![b; n]` is not a calloc).
pub fn fill_byte(tag: u64) -> u8 {
    (tag as u8) | 1
}

/// A block of `size` bytes, all set to [`fill_byte`]`(tag)`.
pub fn filled(size: usize, tag: u64) -> Vec<u8> {
    vec![fill_byte(tag); size]
}

/// Checks the first, middle and last bytes of a block made by [`filled`]
/// with `tag`; panics (failing the run) on a mismatch. Returns a checksum
/// contribution.
pub fn check(block: &[u8], tag: u64) -> u64 {
    let b = fill_byte(tag);
    let n = block.len();
    if n > 0 && (block[0] != b || block[n / 2] != b || block[n - 1] != b) {
        panic!("corrupted block: size {n}, tag {tag:#x}");
    }
    mix(n as u64 ^ (u64::from(b) << 40))
}

/// Checks every byte of a block made by [`filled`] with `tag`.
pub fn check_all(block: &[u8], tag: u64) -> u64 {
    let b = fill_byte(tag);
    if let Some(i) = block.iter().position(|&x| x != b) {
        panic!(
            "corrupted block: size {}, byte {i}, tag {tag:#x}",
            block.len()
        );
    }
    mix(block.len() as u64 ^ (u64::from(b) << 40))
}

/// A 64-bit mixer for checksums (results are summed with wrapping adds, so
/// the order in which threads finish does not matter).
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 33)).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    z ^ (z >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_blocks_check() {
        let b = filled(100, 6);
        assert_eq!(check(&b, 6), check_all(&b, 6));
    }

    #[test]
    #[should_panic(expected = "corrupted")]
    fn corruption_is_caught() {
        let mut b = filled(100, 6);
        b[99] ^= 0xff;
        check(&b, 6);
    }
}

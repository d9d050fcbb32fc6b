//! Unit tests of `entropy`.

use super::*;

#[test]
fn words_differ() {
    let (a, b) = (random_word(), random_word());
    assert_ne!(a, b);
    assert_ne!(fallback(), 0);
}

//! Text for the small programs: a deterministic vocabulary of made-up
//! words (word `i` is spelt from the base-16 digits of `i`, one syllable
//! each, so low indices are short words, as common words are), and
//! appends to a `String` that count the growth of its buffer (see
//! [`super::ops`]).

use super::ops::grew;

const SYLLABLES: [&str; 16] = [
    "ka", "to", "ri", "mu", "se", "la", "no", "vi", "de", "po", "ga", "zu", "fe", "hi", "ba", "qu",
];

/// The longest word: 16 syllables of 2 bytes.
pub const WORD_MAX: usize = 32;

/// Word `i` of the vocabulary, spelt into `buf`.
pub fn word(mut i: u64, buf: &mut [u8; WORD_MAX]) -> &str {
    let mut n = 0;
    loop {
        let s = SYLLABLES[(i & 15) as usize].as_bytes();
        buf[n..n + 2].copy_from_slice(s);
        n += 2;
        i >>= 4;
        if i == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[..n]).expect("syllables are ASCII")
}

/// Appends `piece` to `s`; `ops` counts a growth of its buffer (a single
/// `push_str` reserves at most once).
pub fn append(s: &mut String, piece: &str, ops: &mut u64) {
    let cap = s.capacity();
    s.push_str(piece);
    *ops += grew(cap, s.capacity());
}

/// Appends `n` in decimal to `s` (one `push_str`), counting as [`append`].
pub fn append_num(s: &mut String, mut n: u64, ops: &mut u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let text = std::str::from_utf8(&digits[at..]).expect("digits are ASCII");
    append(s, text, ops);
}

/// A checksum of some bytes (FNV-1a), for programs whose result is text.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_appends() {
        let mut buf = [0; WORD_MAX];
        assert_eq!(word(0, &mut buf), "ka");
        assert_eq!(word(0x21, &mut buf), "tori");
        assert_eq!(word(u64::MAX, &mut buf).len(), WORD_MAX);
        let (mut s, mut ops) = (String::new(), 0);
        append_num(&mut s, 0, &mut ops);
        append(&mut s, " ", &mut ops);
        append_num(&mut s, 1234567890, &mut ops);
        assert_eq!((s.as_str(), ops), ("0 1234567890", 2));
        assert_ne!(fnv(b"ab"), fnv(b"ba"));
    }
}

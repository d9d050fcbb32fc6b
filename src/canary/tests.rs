//! Unit tests of `canary`.

use super::*;

fn block(usable: usize) -> Vec<u64> {
    vec![0; usable / 8]
}

#[test]
fn a_fresh_canary_gives_back_the_request() {
    for (requested, usable) in [(0, 8), (1, 16), (8, 16), (40, 48), (48, 64), (100, 4096)] {
        let mut b = block(usable);
        let p = b.as_mut_ptr().cast::<u8>();
        // SAFETY: `p` holds `usable` bytes, 8-aligned.
        unsafe {
            arm(p, requested, usable);
            assert_eq!(inspect(p, usable), Ok(requested), "{requested} in {usable}");
        }
    }
}

#[test]
fn a_tag_tells_nothing_of_the_free_list_secret() {
    block::ensure_secret();
    assert_ne!(block::tag_secret(), block::secret());
    let (requested, usable) = (40, 64);
    let mut b = block(usable);
    let p = b.as_mut_ptr().cast::<u8>();
    // SAFETY: `p` holds `usable` bytes, 8-aligned.
    let tag = unsafe {
        arm(p, requested, usable);
        p.add(usable - TAG).cast::<u64>().read()
    };
    let slack = ((usable - requested) as u64) << CHECK_BITS;
    // The tag decodes under the canary secret's key, not under a key
    // made the same way from the free lists' secret.
    assert_eq!(tag ^ key(p), slack);
    assert_ne!(tag ^ key_with(block::secret(), p), slack);
}

#[test]
fn one_byte_past_the_request_is_caught() {
    for (requested, usable) in [(1, 16), (8, 16), (40, 48), (48, 64), (100, 4096)] {
        let mut b = block(usable);
        let p = b.as_mut_ptr().cast::<u8>();
        // SAFETY: as above; the write stays within the block.
        unsafe {
            arm(p, requested, usable);
            p.add(requested).write(0);
            assert!(inspect(p, usable).is_err(), "{requested} in {usable}");
        }
    }
}

#[test]
fn first_other_finds_the_first_changed_byte_at_every_length_and_offset() {
    for len in 0..40 {
        let mut buf = [0u8; 48];
        buf[3..3 + len].fill(0xA7);
        // SAFETY: `len + 3 <= 48` bytes.
        assert_eq!(unsafe { first_other(buf.as_ptr().add(3), len, 0xA7) }, None);
        for at in 0..len {
            let mut b = buf;
            b[3 + at] = 1;
            // SAFETY: as above.
            let found = unsafe { first_other(b.as_ptr().add(3), len, 0xA7) };
            assert_eq!(found, Some(at), "{len}, {at}");
        }
    }
}

#[test]
fn every_pattern_byte_is_checked_and_named_and_no_byte_of_the_request_is() {
    // Slack past the request from 8 (the tag alone) to 24 (a whole word of
    // pattern and more), at every alignment of the request.
    for requested in 40..=56 {
        let usable = 64;
        let pattern = (usable - requested - TAG).min(PATTERN_MAX);
        let mut b = block(usable);
        let p = b.as_mut_ptr().cast::<u8>();
        // SAFETY: `p` holds `usable` bytes, 8-aligned; every write below
        // stays within the block.
        unsafe {
            p.write_bytes(0x5A, usable);
            arm(p, requested, usable);
            // The request is the program's: writing all of it is fine.
            p.write_bytes(0xFF, requested);
            assert_eq!(inspect(p, usable), Ok(requested), "{requested}");
            for at in 0..pattern {
                let q = p.add(requested + at);
                let old = q.read();
                q.write(!old);
                assert_eq!(
                    inspect(p, usable),
                    Err(Damage::Pattern {
                        offset: requested + at,
                        byte: !old
                    }),
                    "{requested}, {at}"
                );
                q.write(old);
            }
            assert_eq!(inspect(p, usable), Ok(requested), "{requested}");
        }
    }
}

#[test]
fn a_tag_moved_to_another_block_or_changed_is_caught() {
    let mut a = block(64);
    let mut b = block(64);
    let (pa, pb) = (a.as_mut_ptr().cast::<u8>(), b.as_mut_ptr().cast::<u8>());
    // SAFETY: both hold 64 bytes, 8-aligned.
    unsafe {
        arm(pa, 48, 64);
        arm(pb, 20, 64);
        // Copying a's last 8 bytes to b: b's key differs.
        b[7] = a[7];
        assert_eq!(inspect(pb, 64), Err(Damage::Tag(a[7])));
        // The last byte underflowed into, as from the next block, and
        // the first byte of a tag right after the request (no pattern).
        // Flipped, not set: a constant equals the secret-keyed byte
        // there once in 256 runs.
        pa.add(63).write(!pa.add(63).read());
        assert!(matches!(inspect(pa, 64), Err(Damage::Tag(_))));
        arm(pa, 56, 64);
        pa.add(56).write(!pa.add(56).read());
        assert!(matches!(inspect(pa, 64), Err(Damage::Tag(_))));
    }
}

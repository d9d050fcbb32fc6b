//! Unit tests of `pointer`.

use super::{
    alloc_bare as alloc, free_bare as free, realloc_bare as realloc,
    usable_size_bare as usable_size,
};

#[test]
fn zero_bytes_get_the_alignment_asked_for() {
    for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
        let p = alloc(0, align);
        assert!(!p.is_null() && p as usize % align == 0, "alloc(0, {align})");
        // SAFETY: live, freed once.
        unsafe { free(p) };
    }
}

#[test]
fn realloc_stays_within_its_class_and_copies_across_classes() {
    let p = alloc(200, 16);
    assert_eq!(usable_size(p), 224);
    // SAFETY: `p` is live with 224 bytes; each result replaces it.
    unsafe {
        for i in 0..224 {
            *p.add(i) = i as u8;
        }
        assert_eq!(realloc(p, 193, 16), p, "same class: in place");
        let q = realloc(p, 100, 16);
        assert_ne!(q, p, "another class: moved");
        assert_eq!(usable_size(q), 112);
        assert!((0..100).all(|i| *q.add(i) == i as u8));
        // Growth through every small class keeps what was written.
        let mut r = q;
        let mut len = 100;
        for size in (101..=4096).step_by(37) {
            r = realloc(r, size, 16);
            assert!((0..len).all(|i| *r.add(i) == i as u8), "to {size}");
            for i in len..size {
                *r.add(i) = i as u8;
            }
            len = size;
        }
        free(r);
    }
}

#[test]
fn realloc_moves_across_routes_and_keeps_contents() {
    let mut p = alloc(10, 16);
    // SAFETY: `p` is live with at least 10 bytes.
    unsafe { p.write_bytes(7, 10) };
    for size in [12, 100, 40_000, 300_000, 3 << 20, 9 << 20, 50, 8] {
        // SAFETY: `p` is live; the result replaces it.
        p = unsafe { realloc(p, size, 16) };
        assert!(!p.is_null());
        assert_eq!(p as usize % 16, 0);
        assert!(usable_size(p) >= size);
        // SAFETY: at least 8 bytes survive every step.
        let kept = unsafe { core::slice::from_raw_parts(p, 8) };
        assert!(kept.iter().all(|&b| b == 7));
    }
    // SAFETY: live.
    unsafe { free(p) };
}

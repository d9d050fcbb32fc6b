//! Unit tests of `huge`.

use super::*;

#[test]
fn alloc_aligned_resize_free() {
    let huge = Huge::new();
    for align in [8, PAGE, 64 * 1024, 4 << 20, 16 << 20] {
        let size = (5 << 20) + 3;
        let p = alloc(size, align, false, &huge);
        assert!(!p.is_null());
        assert_eq!(p as usize % align, 0);
        // SAFETY: `p` is a live huge block of at least `size` bytes.
        unsafe {
            assert!(is_block(p));
            assert!(!is_block(p.add(PAGE)), "interior pointer");
            assert_eq!(registry::kind_of(p.add(size)), ChunkKind::Huge);
            assert!(usable_size(p) >= size);
            *p = 1;
            *p.add(size - 1) = 2;
            let q = resize(p, 40 << 20, &huge);
            let q = if q.is_null() { p } else { q };
            assert_eq!((*q, *q.add(size - 1)), (1, 2));
            assert_eq!(q as usize % align, 0);
            assert!(is_block(q));
            let r = resize(q, 3 << 20, &huge);
            assert_eq!(r, q, "shrinking stays in place");
            assert!(usable_size(r) >= 3 << 20 && usable_size(r) < 8 << 20);
            free(r, &huge);
            assert_eq!(lookup(r), Lookup::Freed, "a freed block is no block");
        }
    }
    let c = huge.counts();
    assert_eq!((c.blocks, c.bytes), (0, 0));
    assert!(c.mapped > 0, "freed mappings are cached");
    huge.cache.release_all();
    assert_eq!(huge.counts(), HugeCounts::default());
}

#[test]
fn large_alignments_map_only_the_block() {
    // The alignment is met by placing the mapping, not by mapping it:
    // a chunk for the header page, a chunk for the block.
    let huge = Huge::new();
    for align in [1 << 30, 1 << 40] {
        let p = alloc(100, align, true, &huge);
        assert!(!p.is_null());
        assert_eq!(p as usize % align, 0);
        assert_eq!(huge.counts().mapped, 2 * SEGMENT_SIZE);
        // SAFETY: a live block of at least 100 bytes.
        unsafe {
            assert_eq!(*p.add(99), 0);
            *p.add(99) = 1;
            check_block(p, 100, align);
            free(p, &huge);
        }
        huge.cache.release_all();
    }
}

#[test]
fn freed_mappings_are_reused_and_zeroed_when_asked() {
    let huge = Huge::new();
    let p = alloc(6 << 20, 64, false, &huge);
    // SAFETY: `p` is a live block of 6 MiB.
    unsafe {
        p.write_bytes(0xAB, 6 << 20);
        free(p, &huge);
    }
    let q = alloc(5 << 20, 64, true, &huge);
    assert_eq!(q, p, "the cached mapping is reused");
    // SAFETY: `q` is live with 5 MiB.
    unsafe {
        assert!(
            core::slice::from_raw_parts(q, 5 << 20)
                .iter()
                .all(|&b| b == 0)
        );
        free(q, &huge);
    }
    // A block grows in place into the run after it.
    let a = alloc(3 << 20, 64, false, &huge);
    let b = alloc(3 << 20, 64, false, &huge);
    // SAFETY: live blocks.
    unsafe {
        if b as usize == a as usize + SEGMENT_SIZE {
            free(b, &huge);
            assert_eq!(resize(a, 7 << 20, &huge), a, "grown into the freed run");
        } else {
            free(b, &huge);
        }
        free(a, &huge);
    }
    huge.cache.release_all();
    assert_eq!(huge.counts(), HugeCounts::default());
}

#[test]
fn growth_moves_pages_when_blocked() {
    let huge = Huge::new();
    let p = alloc(5 << 20, 8, false, &huge);
    // SAFETY: `p` is live; block the address space right after it.
    unsafe {
        let end = p.add(usable_size(p));
        let blocker = libc::mmap(
            end.cast(),
            PAGE,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        );
        p.add(4 << 20).write(9);
        let q = resize(p, 100 << 20, &huge);
        assert!(!q.is_null());
        if blocker != libc::MAP_FAILED {
            assert_ne!(q, p, "moved past the blocker");
            libc::munmap(blocker, PAGE);
        }
        assert_eq!(q.add(4 << 20).read(), 9);
        assert_eq!(q as usize % PAGE, 0);
        assert!(is_block(q));
        free(q, &huge);
    }
    huge.cache.release_all();
}

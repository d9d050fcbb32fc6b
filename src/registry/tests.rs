//! Unit tests of `registry`.

use super::*;

#[test]
fn registers_and_forgets_chunks() {
    let base = os::reserve(3 * SEGMENT_SIZE, SEGMENT_SIZE).expect("reserve");
    let p = base.as_ptr();
    assert_eq!(kind_of(p), ChunkKind::None);
    assert!(register(p, SEGMENT_SIZE, ChunkKind::Segment));
    assert!(register(
        p.wrapping_add(SEGMENT_SIZE),
        2 * SEGMENT_SIZE,
        ChunkKind::Huge
    ));
    assert_eq!(kind_of(p.wrapping_add(12345)), ChunkKind::Segment);
    assert_eq!(kind_of(p.wrapping_add(SEGMENT_SIZE)), ChunkKind::Huge);
    assert_eq!(
        kind_of(p.wrapping_add(3 * SEGMENT_SIZE - 1)),
        ChunkKind::Huge
    );
    unregister(p, 3 * SEGMENT_SIZE);
    assert_eq!(kind_of(p.wrapping_add(SEGMENT_SIZE)), ChunkKind::None);
    let stack = 0u64;
    assert_eq!(kind_of((&stack as *const u64).cast()), ChunkKind::None);
    assert_eq!(kind_of(usize::MAX as *const u8), ChunkKind::None);
    // SAFETY: the reservation is ours and unused.
    unsafe { os::release(p, 3 * SEGMENT_SIZE) };
}

#[test]
fn chunks_outside_the_window_are_recorded_in_leaves() {
    // Any registration places the window.
    let near = os::reserve(SEGMENT_SIZE, SEGMENT_SIZE).expect("reserve");
    assert!(register(near.as_ptr(), SEGMENT_SIZE, ChunkKind::Segment));
    let window = WINDOW.base.load(Acquire);
    assert_ne!(window, UNPLACED);
    // `near` is usually in the window (it was placed around the first
    // chunk registered, by this test or another); not necessarily: an
    // emulator (qemu-user) places mappings upwards, and the tests that
    // reserve 2^36 bytes for a moment move its next mappings that far. It
    // is found either way (checked at the end).
    // A chunk well outside the window, mapped there if that space is
    // free (it is, but for an unusual address-space layout).
    let far = if window >= 16 {
        window - 16
    } else {
        window + WINDOW_CHUNKS + 16
    };
    let addr = far << SEGMENT_SHIFT;
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
    let p = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            SEGMENT_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p as usize == addr {
        let p = p.cast::<u8>();
        assert_eq!(kind_of(p), ChunkKind::None);
        assert!(register(p, SEGMENT_SIZE, ChunkKind::Huge));
        assert!(!LEAVES[far / LEAF_CHUNKS].load(Relaxed).is_null());
        assert_eq!(kind_of(p.wrapping_add(SEGMENT_SIZE - 1)), ChunkKind::Huge);
        assert_eq!(kind_of(p.wrapping_add(SEGMENT_SIZE)), ChunkKind::None);
        set(p, SEGMENT_SIZE, ChunkKind::HugeFree);
        assert_eq!(kind_of(p), ChunkKind::HugeFree);
        unregister(p, SEGMENT_SIZE);
        assert_eq!(kind_of(p), ChunkKind::None);
        // SAFETY: the mapping is ours and unused.
        unsafe { os::release(p, SEGMENT_SIZE) };
    } else if p != libc::MAP_FAILED {
        // An old kernel took the address as a hint only.
        // SAFETY: as above.
        unsafe { os::release(p.cast(), SEGMENT_SIZE) };
    }
    assert_eq!(kind_of(near.as_ptr()), ChunkKind::Segment);
    unregister(near.as_ptr(), SEGMENT_SIZE);
    // SAFETY: the reservation is ours and unused.
    unsafe { os::release(near.as_ptr(), SEGMENT_SIZE) };
}

//! Unit tests of `guard`.

use super::chunk::{CHUNK, ChunkHeader, KIND_BYTES};
use super::*;

/// The OS pages the geometry is checked with: 4, 16 and 64 KiB.
const OS_PAGES: [usize; 3] = [4 << 10, 16 << 10, 64 << 10];

#[test]
fn slots_and_their_guard_pages_fit_a_chunk_with_any_page() {
    for page in OS_PAGES {
        let g = Geometry { page };
        assert_eq!(g.header() % page, 0);
        assert!(g.header() >= size_of::<ChunkHeader>() + g.slots(0) * size_of::<Slot>());
        for (kind, &bytes) in KIND_BYTES.iter().enumerate() {
            let n = g.slots(kind);
            assert!(n >= 1, "{page}: kind {kind}");
            assert!(g.data(kind) >= bytes && g.data(kind) % page == 0);
            // Every slot's data and guard are whole OS pages inside the
            // chunk, after the header and the first guard.
            assert_eq!(g.data_end(kind, 0), g.header() + page + g.data(kind));
            for i in [0, n / 2, n - 1] {
                let end = g.data_end(kind, i);
                assert_eq!(end % page, 0, "{page}: kind {kind} slot {i}");
                assert!(end + page <= CHUNK, "{page}: kind {kind}: the last guard");
                let start = end - g.data(kind);
                assert_eq!(g.place(kind, start), Place::Data(i));
                assert_eq!(g.place(kind, end - 1), Place::Data(i));
                assert_eq!(g.place(kind, end), Place::Guard(i + 1));
                assert_eq!(g.place(kind, start - 1), Place::Guard(i));
                assert_eq!(g.place(kind, start - page), Place::Guard(i));
            }
            assert_eq!(g.place(kind, 0), Place::Header);
            assert_eq!(g.place(kind, g.header() - 1), Place::Header);
            assert_eq!(g.place(kind, CHUNK - 1), Place::Guard(n));
        }
    }
    assert_eq!(Geometry { page: 4 << 10 }.slots(0), 509);
    assert_eq!(Geometry { page: 16 << 10 }.slots(0), 127);
    assert_eq!(Geometry { page: 64 << 10 }.slots(0), 31);
    assert_eq!(Geometry { page: 64 << 10 }.slots(KINDS - 1), 1);
    assert!(eligible(MAX_BLOCK, 8) && !eligible(MAX_BLOCK + 1, 8));
    assert!(eligible(100, PAGE) && !eligible(100, 2 * PAGE));
    assert!(!eligible(usize::MAX, 8) && eligible(MAX_BLOCK - 8, 16));
}

#[test]
fn blocks_end_at_a_guard_page_and_their_slots_know_them() {
    for (size, align, usable) in [(40, 16, 48), (1, 8, 8), (5000, 8, 5000), (3, 1, 3)] {
        let p = alloc(size, align);
        assert!(!p.is_null() && owns(p));
        assert_eq!(p as usize % align, 0);
        let page = os::page_size();
        assert_eq!((p as usize + usable) % page, 0, "{size}: right-aligned");
        assert_eq!(usable_size(p), Ok(usable));
        // SAFETY: the block has `usable` accessible bytes, zero at first.
        unsafe {
            assert!((0..usable).all(|i| *p.add(i) == 0));
            p.write_bytes(0xA5, usable);
        }
        let end = p as usize + usable;
        let d = diagnose(end).expect("past the end");
        assert_eq!(
            (d.fault, d.block, d.size),
            (Fault::Overflow, p as usize, size)
        );
        let before = (p as usize & !(page - 1)) - 1;
        let d = diagnose(before).expect("before the first page");
        assert_eq!((d.fault, d.block), (Fault::Underflow, p as usize));
        assert_eq!(usable_size(p.wrapping_add(1)), Err(Misuse::NotBlock));
        // SAFETY: not a block: refused, nothing changes.
        assert_eq!(unsafe { free(p.wrapping_add(1)) }, Err(Misuse::NotBlock));
        // SAFETY: live, given up once; the second free is refused.
        unsafe {
            assert_eq!(free(p), Ok(()));
            assert_eq!(free(p), Err(Misuse::Freed));
        }
        assert_eq!(usable_size(p), Err(Misuse::Freed));
        let d = diagnose(p as usize + usable / 2).expect("inside");
        assert_eq!((d.fault, d.block), (Fault::UseAfterFree, p as usize));
        assert!(d.freed_ms_ago.is_some());
    }
    assert!(alloc(MAX_BLOCK + 1, 8).is_null());
    assert!(alloc(64, 2 * PAGE).is_null());
}

#[test]
fn freed_slots_are_reused_oldest_first_once_the_pool_is_full() {
    // Blocks of 1 MiB take the largest kind (one slot per chunk), which
    // no other test uses.
    let size = 1 << 20;
    let blocks: Vec<_> = (0..MAX_CHUNKS_PER_KIND).map(|_| alloc(size, 8)).collect();
    assert!(blocks.iter().all(|p| !p.is_null()));
    assert!(alloc(size, 8).is_null(), "every slot of the kind is live");
    // SAFETY: live blocks, each freed once.
    unsafe {
        assert_eq!(free(blocks[2]), Ok(()));
        assert_eq!(free(blocks[0]), Ok(()));
    }
    assert_eq!(alloc(size, 8), blocks[2], "freed longest ago first");
    assert_eq!(alloc(size, 8), blocks[0]);
    assert!(alloc(size, 8).is_null());
    for p in blocks {
        // SAFETY: live (or live again), freed once.
        assert_eq!(unsafe { free(p) }, Ok(()));
    }
}

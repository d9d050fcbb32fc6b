//! Unit tests of `slab`.

use super::*;

/// A witness: each test's slabs are its own.
fn lock() -> SlabLock {
    // SAFETY: no other thread reaches a test's slabs.
    unsafe { SlabLock::new() }
}
use crate::size_class::{CLASSES, class_of};

fn new_slab(arena: &Arena, size: usize) -> (Slab, usize) {
    let class = class_of(size);
    let info = &CLASSES[class];
    let span = arena
        .alloc_span(
            0,
            info.slab_pages as usize + guard_pages(),
            info.align_pages as usize,
            SpanKind::Slab,
        )
        .expect("span")
        .span;
    (
        Slab::init(span, class, info, &mut lock()),
        info.size as usize,
    )
}

/// `want` blocks, over as many takes as it needs (a carve links at most
/// `MAX_CARVE_BYTES`).
fn take_all(slab: &Slab, want: u32, size: usize, arena: &Arena) -> Vec<*mut Block> {
    let mut v = Vec::new();
    while (v.len() as u32) < want {
        let got = drain(slab.take(want - v.len() as u32, size, arena, &mut lock()));
        assert!(!got.is_empty(), "the slab ran out");
        v.extend(got);
    }
    v
}

fn drain(list: BlockList) -> Vec<*mut Block> {
    let mut chain = list.into_chain();
    let mut v = Vec::new();
    while let Some(b) = chain.pop() {
        v.push(b);
    }
    v
}

#[cfg(not(feature = "hardened"))] // address order (see `carve_order`)
#[test]
fn bump_then_free_list() {
    let arena = Arena::new();
    let (slab, size) = new_slab(&arena, 100);
    let start = slab.0.start();
    // Blocks per carve that ends on a cache line.
    let unit = (CACHE_LINE / gcd(size, CACHE_LINE)) as u32;
    assert!(
        unit > 1,
        "the test needs a size that is no multiple of a line"
    );
    let n = 4 * unit;
    let got = drain(slab.take(n + 1, size, &arena, &mut lock()));
    assert_eq!(got.len() as u32, n, "the carve stops at a line boundary");
    assert_eq!((start as usize + n as usize * size) % CACHE_LINE, 0);
    assert_eq!(got[0].cast::<u8>(), start);
    for w in got.windows(2) {
        assert_eq!(w[1] as usize - w[0] as usize, size, "address order");
    }
    assert_eq!(slab.accounting(&mut lock()), (n, n, 0, 0));
    for &b in &got[..4] {
        // SAFETY: each block is live and of this slab.
        unsafe { slab.put(b, &mut lock()) };
    }
    assert_eq!(slab.accounting(&mut lock()), (n - 4, n, 4, 0));
    // The free list first (LIFO), then the bump pointer.
    let again = drain(slab.take(4 + unit, size, &arena, &mut lock()));
    assert_eq!(again[0], got[3]);
    assert_eq!(again[4].cast::<u8>(), start.wrapping_add(n as usize * size));
    assert_eq!(slab.accounting(&mut lock()), (n + unit, n + unit, 0, 0));
    // The rest of the slab, over several carves; then nothing.
    let cap = slab.capacity(&mut lock());
    assert!(
        cap - n - unit > (MAX_CARVE_BYTES / size) as u32,
        "several carves"
    );
    let rest = take_all(&slab, cap - n - unit, size, &arena);
    assert_eq!(slab.fresh_left(&mut lock()), 0, "the rest of the slab");
    assert!(
        rest.iter()
            .zip(rest.iter().skip(1))
            .all(|(a, b)| *b as usize - *a as usize == size),
        "address order"
    );
    assert_eq!(slab.accounting(&mut lock()), (cap, cap, 0, 0));
    assert!(slab.take(1, size, &arena, &mut lock()).is_empty());
}

#[cfg(not(feature = "hardened"))] // address order (see `carve_order`)
#[test]
fn carves_end_on_cache_lines() {
    let arena = Arena::new();
    for request in [8, 24, 48, 80, 160, 224, 640] {
        let (slab, size) = new_slab(&arena, request);
        let unit = (CACHE_LINE / gcd(size, CACHE_LINE)) as u32;
        let mut end = slab.0.start() as usize;
        // Odd requests: each carve still ends on a line, except the
        // slab's last.
        for want in [5u32, 9, 13, 7].iter().cycle() {
            let got = drain(slab.take(*want, size, &arena, &mut lock()));
            if got.is_empty() {
                break;
            }
            assert_eq!(got[0] as usize, end, "carves are contiguous");
            end += got.len() * size;
            if slab.fresh_left(&mut lock()) > 0 && *want >= unit {
                assert_eq!(end % CACHE_LINE, 0, "size {size}, want {want}");
            }
        }
        assert_eq!(slab.fresh_left(&mut lock()), 0);
    }
}

#[test]
fn page_masks() {
    assert_eq!(Slab::pages_of(0, 4096), 1);
    assert_eq!(Slab::pages_of(1, 4096), 2);
    assert_eq!(Slab::pages_of(0, 8192), 3);
    assert_eq!(Slab::pages_of(1, 3072), 0b11, "bytes 3072..6144");
    assert_eq!(Slab::pages_of(63, 64), 1);
    assert_eq!(Slab::pages_of(64, 64), 2);
}

#[test]
fn only_idle_pages_whose_whole_os_page_is_in_the_slab_are_purged() {
    let all = |n: usize| u64::MAX >> (64 - n);
    // 4 KiB OS pages: every idle page.
    assert_eq!(
        Slab::whole_os_pages(0b1011_0110, 19, 8, 4 << 10),
        0b1011_0110
    );
    // 16 KiB (4 pages): a slab of 16 pages at page 18 (not aligned): the
    // OS pages at 20, 24, 28 lie in it, the ones at 16 and 32 do not.
    let (first, pages, k) = (18, 16, 4);
    let whole = Slab::whole_os_pages(all(pages), first, pages, k * PAGE);
    assert_eq!(whole, 0b11_1111_1111_1100, "pages 20..32");
    // A live block on page 21 keeps the OS page 20..24 (bits 2..6).
    let idle = all(pages) & !(1 << 3);
    assert_eq!(
        Slab::whole_os_pages(idle, first, pages, k * PAGE),
        0b11_1111_1100_0000
    );
    // 64 KiB (16 pages): one OS page fits a 32-page slab at page 24.
    assert_eq!(
        Slab::whole_os_pages(all(32), 24, 32, 64 << 10),
        all(16) << 8
    );
    assert_eq!(
        Slab::whole_os_pages(all(32) & !(1 << 20), 24, 32, 64 << 10),
        0
    );
    // A slab within one OS page, or smaller than one, never purges.
    assert_eq!(Slab::whole_os_pages(all(8), 17, 8, 64 << 10), 0);
    assert_eq!(Slab::whole_os_pages(all(4), 32, 4, 64 << 10), 0);
    // A whole 64-page slab on aligned pages: everything, at every size.
    for os_page in [4 << 10, 16 << 10, 64 << 10] {
        assert_eq!(Slab::whole_os_pages(u64::MAX, 64, 64, os_page), u64::MAX);
    }
}

#[test]
fn purge_parks_blocks_on_idle_pages_and_unpark_restores_them() {
    let arena = Arena::new();
    let (slab, size) = new_slab(&arena, 1024); // 4 blocks per page
    let cap = slab.capacity(&mut lock()) as usize;
    let blocks = take_all(&slab, cap as u32, size, &arena);
    // Keep one block on page 0 and one on page 2; free the rest.
    let keep = [blocks[1], blocks[9]];
    for &b in &blocks {
        if !keep.contains(&b) {
            // SAFETY: a distinct live block of this slab.
            unsafe {
                b.cast::<u8>().write_bytes(0x77, size);
                slab.put(b, &mut lock());
            }
        }
    }
    let pages = slab.block_pages();
    let purged = slab.purge(size, &arena, &mut lock());
    let os_page = crate::os::page_size();
    if os_page != PAGE {
        // Only the whole OS pages of the slab with no live block: what
        // `whole_os_pages` (tested with every page size below) gives.
        let idle = (u64::MAX >> (64 - pages)) & !0b101;
        let whole = Slab::whole_os_pages(idle, slab.0.first_page(), pages, os_page);
        assert_eq!(purged, whole.count_ones() as usize);
        assert_eq!(slab.check(slab.0.class(), &mut lock()), 2);
        return;
    }
    assert_eq!(purged, pages - 2, "all pages but the two with a live block");
    assert_eq!(slab.check(slab.0.class(), &mut lock()), 2);
    let (live, bumped, on_free, parked) = slab.accounting(&mut lock());
    assert_eq!((live, bumped), (2, cap as u32));
    assert_eq!(on_free, 6, "the free blocks sharing a page with a live one");
    assert_eq!(parked as usize, cap - 2 - 6);
    let seg = slab.0.segment();
    assert!(seg.is_clean(slab.0.first_page() + 3, pages - 3));
    // SAFETY: the kept blocks are live and untouched by the purge.
    unsafe { keep[0].cast::<u8>().write_bytes(1, size) };
    // Taking blocks recommits the pages and brings the parked ones back.
    // A second purge after more frees decommits the newly idle pages.
    // SAFETY: `keep[1]` is live and of this slab.
    unsafe { slab.put(keep[1], &mut lock()) };
    assert_eq!(
        slab.purge(size, &arena, &mut lock()),
        1,
        "page 2 is idle now"
    );
    let (_, _, on_free, parked) = slab.accounting(&mut lock());
    assert_eq!((on_free, parked as usize), (3, cap - 1 - 3));
    assert_eq!(
        slab.purge(size, &arena, &mut lock()),
        0,
        "nothing more to purge"
    );
    let all = take_all(&slab, cap as u32 - 1, size, &arena);
    assert!(slab.take(1, size, &arena, &mut lock()).is_empty());
    assert_eq!(slab.accounting(&mut lock()), (cap as u32, cap as u32, 0, 0));
    assert!(!seg.is_clean(slab.0.first_page() + 3, 1));
    let mut sorted: Vec<_> = all.iter().chain(&keep[..1]).map(|&b| b as usize).collect();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), cap, "no block lost or duplicated");
}

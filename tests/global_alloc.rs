//! slabpool as the `#[global_allocator]` of this test binary: every `Vec`,
//! `String` and `Box` below, and the test harness itself, go through it.
//! Raw `std::alloc` calls exercise each route (small, large, huge) with
//! checked contents, alignment and zeroing.

mod common;

use common::{Rng, check, check_as, fill};
use std::alloc::{Layout, alloc, alloc_zeroed, dealloc, realloc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Barrier, Mutex};

#[global_allocator]
static A: slabpool::SlabPool = slabpool::SlabPool;

/// A live block of the stress test.
#[derive(Clone, Copy)]
struct Live {
    p: usize,
    layout: Layout,
}

fn random_align(rng: &mut Rng) -> usize {
    match rng.below(64) {
        0 => 1 << (12 + rng.below(10)),   // 4 KiB .. 2 MiB
        1..=7 => 1 << (5 + rng.below(7)), // 32 B .. 2 KiB
        _ => 1 << rng.below(5),           // 1 .. 16 B
    }
}

/// Allocates a block of `layout`, checks its alignment and fills it.
fn new_block(layout: Layout) -> Live {
    // SAFETY: non-zero size.
    let p = unsafe { alloc(layout) };
    assert!(!p.is_null(), "out of memory for {layout:?}");
    assert_eq!(p as usize % layout.align(), 0, "misaligned {layout:?}");
    // SAFETY: a fresh block of `layout.size()` bytes.
    unsafe { fill(p, layout.size()) };
    Live {
        p: p as usize,
        layout,
    }
}

/// Checks a block's pattern and frees it.
fn free_block(b: Live) {
    // SAFETY: `b` is live and holds its pattern.
    unsafe {
        check(b.p as *const u8, b.layout.size());
        dealloc(b.p as *mut u8, b.layout);
    }
}

/// Reallocates `b` to `new_size`; checks the kept prefix and refills.
fn realloc_block(b: Live, new_size: usize) -> Live {
    // SAFETY: `b` is live; `new_size` is non-zero and, rounded up to the
    // alignment, far below isize::MAX.
    let q = unsafe { realloc(b.p as *mut u8, b.layout, new_size) };
    assert!(!q.is_null(), "realloc to {new_size} failed");
    assert_eq!(q as usize % b.layout.align(), 0, "realloc misaligned");
    // SAFETY: `q` holds `new_size` bytes whose prefix moved from `b.p`.
    unsafe {
        check_as(q, new_size.min(b.layout.size()), b.p);
        fill(q, new_size);
    }
    Live {
        p: q as usize,
        layout: Layout::from_size_align(new_size, b.layout.align()).unwrap(),
    }
}

/// 4 threads x 1M operations: random sizes (1 B .. 1 MiB, skewed small),
/// random alignments (1 B .. 2 MiB), reallocs, and one free in eight done
/// by a thread other than the one that allocated. Every block carries a
/// pattern derived from its address, checked before it is freed, so any
/// overlap or corruption fails the test.
#[test]
fn stress_cross_thread() {
    const THREADS: usize = 4;
    const OPS: usize = 1_000_000;
    const SLOTS: usize = 4096;
    /// Blocks sent to a thread, as (address, size, align).
    type Mailbox = Mutex<Vec<(usize, usize, usize)>>;
    let mailboxes: Arc<Vec<Mailbox>> =
        Arc::new((0..THREADS).map(|_| Mutex::new(Vec::new())).collect());
    let start = Arc::new(Barrier::new(THREADS));
    let unpack = |(p, size, align): (usize, usize, usize)| Live {
        p,
        layout: Layout::from_size_align(size, align).unwrap(),
    };
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let mailboxes = Arc::clone(&mailboxes);
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                let mut rng = Rng::new(t as u64 + 1);
                let mut slots: Vec<Option<Live>> = vec![None; SLOTS];
                let (mut sent, mut received) = (0usize, 0usize);
                start.wait();
                for op in 0..OPS {
                    if op % 512 == 0 {
                        let inbox = std::mem::take(&mut *mailboxes[t].lock().unwrap());
                        received += inbox.len();
                        inbox.into_iter().map(unpack).for_each(free_block);
                    }
                    let i = rng.below(SLOTS as u64) as usize;
                    slots[i] = match slots[i].take() {
                        Some(b) if rng.below(8) == 0 => {
                            let to = (t + 1 + rng.below(THREADS as u64 - 1) as usize) % THREADS;
                            let packed = (b.p, b.layout.size(), b.layout.align());
                            mailboxes[to].lock().unwrap().push(packed);
                            sent += 1;
                            None
                        }
                        Some(b) if rng.below(16) == 0 => Some(realloc_block(b, rng.size())),
                        Some(b) => {
                            free_block(b);
                            None
                        }
                        None => {
                            let layout =
                                Layout::from_size_align(rng.size(), random_align(&mut rng));
                            Some(new_block(layout.unwrap()))
                        }
                    };
                }
                slots.into_iter().flatten().for_each(free_block);
                (sent, received)
            })
        })
        .collect();
    let (mut sent, mut received) = (0, 0);
    for h in handles {
        let (s, r) = h.join().expect("stress thread panicked");
        sent += s;
        received += r;
    }
    for m in mailboxes.iter() {
        let rest = std::mem::take(&mut *m.lock().unwrap());
        received += rest.len();
        rest.into_iter().map(unpack).for_each(free_block);
    }
    assert_eq!(sent, received, "every block sent across threads was freed");
    assert!(
        sent > THREADS * OPS / 64,
        "too few cross-thread frees: {sent}"
    );
}

/// Sizes on both sides of every routing boundary (small/large/huge).
const EDGE_SIZES: &[usize] = &[
    1,
    8,
    9,
    64,
    65,
    1024,
    1025,
    32 << 10,
    (32 << 10) + 1,
    100_000,
    (2 << 20) - 1,
    2 << 20,
    (2 << 20) + 1,
    5 << 20,
    40 << 20,
];

#[test]
fn realloc_preserves_contents_across_routes() {
    for align in [8, 64, 4096, 1 << 16] {
        for &from in EDGE_SIZES {
            for &to in EDGE_SIZES {
                let b = new_block(Layout::from_size_align(from, align).unwrap());
                let b = realloc_block(b, to);
                free_block(realloc_block(b, from));
            }
        }
    }
}

#[cfg(not(feature = "hardened"))] // the hardened build's realloc always moves
#[test]
fn realloc_within_a_class_keeps_the_pointer() {
    let b = new_block(Layout::from_size_align(100, 8).unwrap());
    // 100 B and 112 B share the 112 B class.
    let c = realloc_block(b, 112);
    assert_eq!(c.p, b.p);
    let d = realloc_block(c, 97);
    assert_eq!(d.p, b.p);
    free_block(d);
}

#[cfg(not(feature = "hardened"))] // the hardened build's realloc always moves
#[test]
fn large_realloc_grows_in_place_when_pages_are_free() {
    // A fresh large block is usually followed by free pages of its segment.
    let b = new_block(Layout::from_size_align(40_000, 8).unwrap());
    let c = realloc_block(b, 80_000);
    let d = realloc_block(c, 50_000);
    assert_eq!(d.p, c.p, "shrinking a large block stays in place");
    free_block(d);
}

/// `alloc_zeroed` returns zeroes even when the block was just freed dirty.
#[test]
fn alloc_zeroed_clears_reused_memory() {
    for &size in EDGE_SIZES {
        for align in [1, 16, 4096] {
            let layout = Layout::from_size_align(size, align).unwrap();
            for _ in 0..3 {
                // SAFETY: non-zero layout; filled then freed with it.
                unsafe {
                    let p = alloc(layout);
                    assert!(!p.is_null());
                    p.write_bytes(0xA5, size);
                    dealloc(p, layout);
                    let z = alloc_zeroed(layout);
                    assert!(!z.is_null());
                    assert_eq!(z as usize % align, 0);
                    let s = std::slice::from_raw_parts(z, size);
                    assert!(s.iter().all(|&b| b == 0), "{layout:?} not zeroed");
                    z.write_bytes(0x5A, size);
                    dealloc(z, layout);
                }
            }
        }
    }
}

/// Every power-of-two alignment from 1 B to 2 MiB, at sizes below, at and
/// above the alignment; blocks are kept live together to catch overlap.
#[test]
fn every_alignment_up_to_2_mib() {
    let mut live = Vec::new();
    for shift in 0..=21 {
        let align = 1usize << shift;
        for size in [1, align / 2 + 1, align, align + 8, 3 * align + 1] {
            for _ in 0..3 {
                live.push(new_block(Layout::from_size_align(size, align).unwrap()));
            }
        }
    }
    let mut ranges: Vec<(usize, usize)> = live.iter().map(|b| (b.p, b.layout.size())).collect();
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "overlapping blocks {w:?}");
    }
    live.into_iter().for_each(free_block);
}

/// Ordinary Rust collections on top of slabpool.
#[test]
fn collections_work() {
    let mut map: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..20_000u32 {
        map.insert(format!("key-{i:06}"), vec![i as u8; (i % 300) as usize]);
    }
    let mut hm: HashMap<u32, String> = HashMap::new();
    for i in 0..50_000u32 {
        hm.insert(i, i.to_string());
        if i % 3 == 0 {
            hm.remove(&(i / 2));
        }
    }
    for (i, (k, v)) in map.iter().enumerate() {
        assert_eq!(k, &format!("key-{i:06}"));
        assert!(v.iter().all(|&b| b == i as u8));
    }
    assert_eq!(hm.get(&49_999).map(String::as_str), Some("49999"));
    let mut s = String::new();
    for i in 0..100_000 {
        s.push(char::from(b'a' + (i % 26) as u8));
    }
    assert_eq!(s.len(), 100_000);
    assert!(s.starts_with("abcdefghijklmnopqrstuvwxyza"));
}

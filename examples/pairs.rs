//! Instruction-count harness for callgrind: alloc+free pairs through
//! `GlobalAlloc` called directly on an allocator instance.
//!
//! `cargo build --release --example pairs` then
//! `valgrind --tool=callgrind target/release/examples/pairs <alloc> <loop> <n>`
//! with `<alloc>` one of `slabpool`, `system`, `mimalloc` and `<loop>` one of
//! `fixed32` (n pairs of 32 B) or `random` (n pairs of random sizes with
//! 1,000 live blocks). Instructions per pair = (total - baseline) / n, where
//! the baseline is the same run with n = 0.
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

fn fixed32<A: GlobalAlloc>(a: &A, n: usize) {
    let layout = Layout::from_size_align(32, 8).unwrap();
    for _ in 0..n {
        // SAFETY: a valid non-zero layout; the block is freed with it.
        unsafe {
            let p = a.alloc(layout);
            black_box(p);
            a.dealloc(p, layout);
        }
    }
}

fn random<A: GlobalAlloc>(a: &A, n: usize) {
    const LIVE: usize = 1000;
    let mut slots: [(usize, usize); LIVE] = [(0, 0); LIVE];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    // Pre-generate nothing: a xorshift step per pair is part of the loop.
    for i in 0..n + LIVE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let slot = (x as usize >> 8) % LIVE;
        let size = 8 + ((x as usize >> 24) & 511);
        let (p, old) = slots[slot];
        if p != 0 {
            // SAFETY: allocated below with this layout.
            unsafe { a.dealloc(p as *mut u8, Layout::from_size_align_unchecked(old, 8)) };
        }
        if i < n {
            // SAFETY: non-zero size, align 8.
            let q = unsafe { a.alloc(Layout::from_size_align_unchecked(size, 8)) };
            slots[slot] = (q as usize, size);
        } else {
            slots[slot] = (0, 0);
        }
    }
    black_box(&slots);
}

fn cross<A: GlobalAlloc + Sync>(a: &A, n: usize) {
    let layout = Layout::from_size_align(64, 8).unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<usize>>(8);
    std::thread::scope(|s| {
        s.spawn(move || {
            for _ in 0..n / 256 {
                // SAFETY: non-zero layout; the consumer frees each block.
                let v = (0..256)
                    .map(|_| unsafe { a.alloc(layout) } as usize)
                    .collect();
                tx.send(v).unwrap();
            }
        });
        s.spawn(move || {
            for v in rx {
                for p in v {
                    // SAFETY: allocated by the producer with `layout`.
                    unsafe { a.dealloc(p as *mut u8, layout) };
                }
            }
        });
    });
}

/// An allocator that does no work: one static block for every request. It
/// measures the loop's own instructions, to subtract from the others.
struct Null;

static mut NULL_BLOCK: [u64; 4096] = [0; 4096];

// SAFETY: only for counting loop overhead; the block is never read.
unsafe impl GlobalAlloc for Null {
    #[inline(never)]
    unsafe fn alloc(&self, _: Layout) -> *mut u8 {
        (&raw mut NULL_BLOCK).cast()
    }
    #[inline(never)]
    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("slabpool");
    let kind = args.get(2).map(String::as_str).unwrap_or("fixed32");
    let n: usize = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    macro_rules! run {
        ($a:expr) => {
            match kind {
                "fixed32" => fixed32(&$a, n),
                "random" => random(&$a, n),
                "cross" => cross(&$a, n),
                other => panic!("unknown loop {other}"),
            }
        };
    }
    match which {
        "slabpool" => run!(slabpool::SlabPool),
        "system" => run!(System),
        "null" => run!(Null),
        "mimalloc" => run!(mimalloc::MiMalloc),
        other => panic!("unknown allocator {other}"),
    }
}

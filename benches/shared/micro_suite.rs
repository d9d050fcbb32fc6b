// The micro benchmarks, shared by `benches/micro.rs` (slabpool, System,
// mimalloc) and `compare/benches/micro.rs` (every peer): the including file
// defines `with_allocators!`, which calls back a macro with `[name alloc]`
// pairs, slabpool first. Each allocator is a `GlobalAlloc` instance called
// directly (monomorphic calls, as for a `#[global_allocator]`), in one
// binary and one run:
//
// - `pair/<size>`: one alloc + free of `size` bytes;
// - `churn`: random sizes (1 B .. 4 KiB, skewed small) with 1,000 live
//   blocks, one free and one alloc per iteration;
// - `cross_thread`: a producer thread allocates 64 B blocks and a consumer
//   thread frees them (batches of 256 through a channel).
//
// After criterion's own output, `main` prints a table of each allocator's
// median per operation and slabpool's throughput relative to each peer.

use criterion::{Criterion, Throughput, criterion_group};
use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Registers `$bench(allocator, iterations, $arg)` (a fn generic over the
/// allocator) for every allocator, in group `$group`.
macro_rules! register {
    (($group:expr, $bench:ident, $arg:expr) $([$name:literal $alloc:expr])*) => {
        $($group.bench_function($name, |b| b.iter_custom(|n| $bench(&$alloc, n, $arg)));)*
    };
}

/// One `CrossPair` per allocator, with its name.
macro_rules! cross_pairs {
    (() $([$name:literal $alloc:expr])*) => {
        [$(($name, CrossPair::start(&$alloc))),*]
    };
}

/// The allocators' names.
macro_rules! names {
    (() $([$name:literal $alloc:expr])*) => {
        [$($name),*]
    };
}

fn pairs<A: GlobalAlloc>(a: &A, iters: u64, layout: Layout) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        // SAFETY: a non-zero layout; the block is freed with the same one.
        unsafe {
            let p = a.alloc(black_box(layout));
            black_box(p);
            a.dealloc(p, layout);
        }
    }
    start.elapsed()
}

fn bench_pairs(c: &mut Criterion) {
    for size in [16usize, 64, 256, 1024, 4096] {
        let mut group = c.benchmark_group(format!("pair/{size}"));
        group.throughput(Throughput::Elements(1));
        let layout = Layout::from_size_align(size, 8).unwrap();
        with_allocators!(register!(group, pairs, layout));
        group.finish();
    }
}

/// xorshift64: cheap and deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// 1 B .. 4 KiB, three quarters of them at most 256 B.
    fn size(&mut self) -> usize {
        let r = self.next();
        let top = if r & 3 == 0 { 4096 } else { 256 };
        1 + (r >> 8) as usize % top
    }
}

fn churn<A: GlobalAlloc>(a: &A, iters: u64, (): ()) -> Duration {
    const LIVE: usize = 1000;
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut slots: Vec<(*mut u8, Layout)> = (0..LIVE)
        .map(|_| {
            let l = Layout::from_size_align(rng.size(), 8).unwrap();
            // SAFETY: non-zero layout.
            (unsafe { a.alloc(l) }, l)
        })
        .collect();
    let start = Instant::now();
    for _ in 0..iters {
        let i = (rng.next() >> 40) as usize % LIVE;
        let l = Layout::from_size_align(rng.size(), 8).unwrap();
        // SAFETY: each slot holds a live block with its layout.
        unsafe {
            a.dealloc(slots[i].0, slots[i].1);
            slots[i] = (black_box(a.alloc(l)), l);
        }
    }
    let t = start.elapsed();
    for (p, l) in slots {
        // SAFETY: live blocks with their layouts.
        unsafe { a.dealloc(p, l) };
    }
    t
}

fn bench_churn(c: &mut Criterion) {
    let mut group = c.benchmark_group("churn");
    group.throughput(Throughput::Elements(1));
    with_allocators!(register!(group, churn, ()));
    group.finish();
}

/// A producer and a consumer thread that live across samples, so a sample
/// times block traffic, not thread creation.
struct CrossPair {
    work: mpsc::Sender<u64>,
    done: mpsc::Receiver<()>,
}

impl CrossPair {
    fn start<A: GlobalAlloc + Sync>(a: &'static A) -> Self {
        const BATCH: usize = 256;
        let layout = Layout::from_size_align(64, 8).unwrap();
        let (work, work_rx) = mpsc::channel::<u64>();
        let (blocks_tx, blocks_rx) = mpsc::sync_channel::<Vec<usize>>(8);
        let (done_tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            for n in work_rx {
                let mut left = n as usize;
                while left > 0 {
                    let k = left.min(BATCH);
                    // SAFETY: non-zero layout; the consumer frees each block.
                    let batch = (0..k)
                        .map(|_| unsafe { a.alloc(layout) } as usize)
                        .collect();
                    blocks_tx.send(batch).unwrap();
                    left -= k;
                }
                blocks_tx.send(Vec::new()).unwrap();
            }
        });
        std::thread::spawn(move || {
            for batch in blocks_rx {
                if batch.is_empty() {
                    done_tx.send(()).unwrap();
                    continue;
                }
                for p in batch {
                    // SAFETY: allocated by the producer with `layout`.
                    unsafe { a.dealloc(p as *mut u8, layout) };
                }
            }
        });
        CrossPair { work, done }
    }

    fn run(&self, iters: u64) -> Duration {
        let start = Instant::now();
        self.work.send(iters).unwrap();
        self.done.recv().unwrap();
        start.elapsed()
    }
}

fn bench_cross_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("cross_thread");
    group.throughput(Throughput::Elements(1));
    for (name, pair) in &with_allocators!(cross_pairs!()) {
        group.bench_function(*name, |b| b.iter_custom(|n| pair.run(n)));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_pairs, bench_churn, bench_cross_thread
}
/// Median time of `group/alloc` in this run, from criterion's estimates.
fn median_ns(group: &str, alloc: &str) -> Option<f64> {
    // The workspace's target directory: this crate's own, or an ancestor's.
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|d| d.join("target"))
                .find(|t| t.join("criterion").is_dir())
        })?;
    let path = dir
        .join("criterion")
        .join(group.replace('/', "_")) // criterion stores group "a/b" as "a_b"
        .join(alloc)
        .join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// Prints each allocator's median per operation, and slabpool's throughput
/// relative to each of them (higher is better for slabpool).
fn summary() {
    let names = with_allocators!(names!());
    let groups = [
        "pair/16",
        "pair/64",
        "pair/256",
        "pair/1024",
        "pair/4096",
        "churn",
        "cross_thread",
    ];
    print!("\nmedian ns per op{:<4}", "");
    for n in &names {
        print!(" {n:>10}");
    }
    for n in &names[1..] {
        print!(" {:>11}", format!("x {n}"));
    }
    println!();
    for g in groups {
        let medians: Vec<Option<f64>> = names.iter().map(|n| median_ns(g, n)).collect();
        let Some(ours) = medians[0] else { continue };
        print!("{g:<20}");
        for m in &medians {
            match m {
                Some(m) => print!(" {m:>10.2}"),
                None => print!(" {:>10}", "-"),
            }
        }
        for m in &medians[1..] {
            match m {
                Some(m) => print!(" {:>11.2}", m / ours),
                None => print!(" {:>11}", "-"),
            }
        }
        println!();
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if !std::env::args().any(|a| a == "--list" || a == "--test") {
        summary();
    }
}

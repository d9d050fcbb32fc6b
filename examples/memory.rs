//! Memory-return benchmark: how much memory each allocator keeps after the
//! program frees it. slabpool, the system allocator (glibc) and mimalloc run
//! the same scenarios, each in a fresh child process, side by side:
//!
//! - `burst`: 4 threads allocate 1 GiB in total of mixed small objects,
//!   free all of it and exit; the program idles 200 ms. RSS after the idle,
//!   against the peak.
//! - `sparse`: 1 GiB of 64 B - 1 KiB objects, a random 90% freed, then the
//!   allocator's own collect (`slabpool::collect`, `malloc_trim(0)`,
//!   `mi_collect(true)`). RSS against the live bytes, and against the least
//!   RSS any page-granular allocator could reach (the distinct pages that
//!   hold a survivor, counted from their addresses).
//! - `churn`: 1,000 short threads, one after the other, each allocating and
//!   freeing 1 MiB of small blocks. RSS growth against one thread's 1 MiB.
//! - `cliff`: 1,000,000 alloc/free pairs of 800 KB, a byte written per page.
//!   Time, and `madvise` + `munmap` calls (counted with `strace -f -c` when
//!   strace is installed).
//! - `steady`: 2 threads each keep 2,048 blocks of 16 B - 16 KiB
//!   (log-uniform), and for 2,000,000 steps replace one or grow it by
//!   `realloc` (rptest's churn). At the end, with every block still live:
//!   RSS against the live bytes, and slabpool's own account of the
//!   difference (blocks in thread caches, on transfer stacks, free in
//!   slabs); then RSS after the allocator's collect.
//!
//! `cargo run --release --example memory [-- --scale F] [scenario...]`;
//! `--scale 0.25` shrinks every size and count for a quick run (`steady`:
//! its steps; the live blocks stay as many).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::time::{Duration, Instant};

const ALLOCATORS: [&str; 3] = ["slabpool", "system", "mimalloc"];
const SCENARIOS: [&str; 5] = ["burst", "sparse", "churn", "cliff", "steady"];
const GIB: f64 = (1u64 << 30) as f64;

/// A global allocator chosen once, by the child's `MEMBENCH_ALLOC`, before
/// the first allocation (read with `getenv`, which does not allocate).
struct Chosen;

static CHOICE: AtomicU8 = AtomicU8::new(0);

fn choice() -> u8 {
    let c = CHOICE.load(Relaxed);
    if c != 0 {
        return c;
    }
    // SAFETY: a NUL-terminated name; the result is read at once.
    let v = unsafe { libc::getenv(c"MEMBENCH_ALLOC".as_ptr()) };
    let c = if v.is_null() {
        1
    } else {
        // SAFETY: getenv returned a NUL-terminated string.
        match unsafe { std::ffi::CStr::from_ptr(v) }.to_bytes() {
            b"slabpool" => 2,
            b"mimalloc" => 3,
            _ => 1,
        }
    };
    CHOICE.store(c, Relaxed);
    c
}

macro_rules! dispatch {
    ($method:ident($($arg:expr),*)) => {
        // SAFETY: forwarded contract; every call of the process goes to the
        // same allocator, fixed at the first call.
        unsafe {
            match choice() {
                2 => slabpool::SlabPool.$method($($arg),*),
                3 => mimalloc::MiMalloc.$method($($arg),*),
                _ => System.$method($($arg),*),
            }
        }
    };
}

// SAFETY: forwards to one allocator for the whole process.
unsafe impl GlobalAlloc for Chosen {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        dispatch!(alloc(l))
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        dispatch!(dealloc(p, l))
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        dispatch!(alloc_zeroed(l))
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        dispatch!(realloc(p, l, n))
    }
}

#[global_allocator]
static GLOBAL: Chosen = Chosen;

/// The allocator's own "give memory back now".
fn allocator_collect() {
    match choice() {
        2 => slabpool::collect(),
        // SAFETY: plain calls without preconditions.
        3 => unsafe { libmimalloc_sys::mi_collect(true) },
        // SAFETY: as above. (musl has no `malloc_trim`: nothing to ask.)
        #[cfg(target_env = "gnu")]
        _ => unsafe {
            libc::malloc_trim(0);
        },
        #[cfg(not(target_env = "gnu"))]
        _ => {}
    }
}

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn rss_mib() -> f64 {
    status_kib("VmRSS") as f64 / 1024.0
}

/// xorshift64*.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Allocates `size` bytes and writes each of its pages.
fn alloc_touched(size: usize) -> (usize, Layout) {
    let l = Layout::from_size_align(size, 8).unwrap();
    // SAFETY: non-zero layout.
    let p = unsafe { std::alloc::alloc(l) };
    assert!(!p.is_null());
    let mut off = 0;
    while off < size {
        // SAFETY: inside the block.
        unsafe { p.add(off).write(off as u8 | 1) };
        off += 4096;
    }
    // SAFETY: as above.
    unsafe { p.add(size - 1).write(1) };
    (p as usize, l)
}

fn free((p, l): (usize, Layout)) {
    // SAFETY: allocated by `alloc_touched` with `l`.
    unsafe { std::alloc::dealloc(p as *mut u8, l) };
}

fn burst(scale: f64) -> Vec<(String, f64)> {
    let base = rss_mib();
    let per_thread = (GIB * scale / 4.0) as usize;
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut rng = Rng(t * 7919 + 1);
                let mut blocks = Vec::new();
                let mut total = 0;
                while total < per_thread {
                    let size = 8 + (rng.next() % 2040) as usize;
                    blocks.push(alloc_touched(size));
                    total += size;
                }
                blocks.into_iter().for_each(free);
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let peak = status_kib("VmHWM") as f64 / 1024.0;
    std::thread::sleep(Duration::from_millis(200));
    let after = rss_mib();
    // MEMBENCH_STATS=1: slabpool's own view of the same moment.
    if std::env::var_os("MEMBENCH_STATS").is_some() && choice() == 2 {
        let mut t = String::new();
        slabpool::stats().write_table(&mut t).unwrap();
        eprintln!("{t}");
    }
    vec![
        ("peak MiB".into(), peak),
        ("after idle MiB".into(), after),
        (
            "after/peak %".into(),
            100.0 * (after - base) / (peak - base),
        ),
    ]
}

fn sparse(scale: f64) -> Vec<(String, f64)> {
    let target = (GIB * scale) as usize;
    let mut rng = Rng(42);
    let mut blocks = Vec::with_capacity(target / 500);
    let mut total = 0;
    while total < target {
        let size = 64 + (rng.next() % 961) as usize;
        blocks.push(alloc_touched(size));
        total += size;
    }
    let peak = status_kib("VmHWM") as f64 / 1024.0;
    let mut live = 0usize;
    let mut pages = std::collections::HashSet::new();
    let mut survivors = Vec::with_capacity(blocks.len() / 9);
    for b in blocks {
        if rng.next() % 10 == 0 {
            live += b.1.size();
            for page in b.0 / 4096..=(b.0 + b.1.size() - 1) / 4096 {
                pages.insert(page);
            }
            survivors.push(b);
        } else {
            free(b);
        }
    }
    let before_collect = rss_mib();
    allocator_collect();
    let after = rss_mib();
    let live_mib = mib(live);
    let bound = pages.len() as f64 * 4096.0 / (1 << 20) as f64;
    let out = vec![
        ("peak MiB".into(), peak),
        ("live MiB".into(), live_mib),
        ("RSS before collect MiB".into(), before_collect),
        ("RSS after collect MiB".into(), after),
        ("RSS/live".into(), after / live_mib),
        ("page bound/live".into(), bound / live_mib),
    ];
    survivors.into_iter().for_each(free);
    out
}

fn churn(scale: f64) -> Vec<(String, f64)> {
    let threads = (1000.0 * scale.max(0.1)) as usize;
    // One thread first: its working set is the reference.
    let one = || {
        std::thread::spawn(|| {
            let mut rng = Rng(7);
            let mut blocks = Vec::new();
            let mut total = 0;
            while total < 1 << 20 {
                let size = 16 + (rng.next() % 496) as usize;
                blocks.push(alloc_touched(size));
                total += size;
            }
            blocks.into_iter().for_each(free);
        })
        .join()
        .unwrap()
    };
    let base = rss_mib();
    one();
    let after_one = rss_mib();
    for _ in 1..threads {
        one();
    }
    let after_all = rss_mib();
    vec![
        ("RSS growth after 1 thread MiB".into(), after_one - base),
        ("RSS growth after all MiB".into(), after_all - base),
        ("growth / 1 MiB".into(), after_all - base),
    ]
}

fn cliff(scale: f64) -> Vec<(String, f64)> {
    let n = (1_000_000.0 * scale) as usize;
    let start = Instant::now();
    for _ in 0..n {
        free(alloc_touched(800 * 1000));
    }
    let secs = start.elapsed().as_secs_f64();
    vec![
        ("seconds".into(), secs),
        ("ns per pair".into(), secs * 1e9 / n as f64),
    ]
}

/// Log-uniform in `[lo, hi]`.
fn log_uniform(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    let (l, h) = ((lo as f64).ln(), (hi as f64).ln());
    ((l + u * (h - l)).exp() as usize).clamp(lo, hi)
}

fn steady(scale: f64) -> Vec<(String, f64)> {
    const SLOTS: usize = 2048;
    const MAX: usize = 16 * 1024;
    let steps = (2_000_000.0 * scale) as usize;
    let parked = std::sync::Barrier::new(3);
    let done = std::sync::Barrier::new(3);
    let live = std::sync::atomic::AtomicUsize::new(0);
    let mut out = Vec::new();
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (parked, done, live) = (&parked, &done, &live);
            s.spawn(move || {
                let mut rng = Rng(t * 104_729 + 3);
                let mut slots: Vec<Vec<u8>> = (0..SLOTS)
                    .map(|_| vec![1; log_uniform(&mut rng, 16, MAX)])
                    .collect();
                for _ in 0..steps {
                    let slot = &mut slots[rng.next() as usize % SLOTS];
                    let len = slot.len();
                    if rng.next() % 4 == 0 && len < MAX {
                        let span = (2 * len).min(MAX) - len;
                        let new_len = len + 1 + rng.next() as usize % span;
                        slot.reserve_exact(new_len - len);
                        slot.resize(new_len, 2);
                    } else {
                        *slot = vec![3; log_uniform(&mut rng, 16, MAX)];
                    }
                }
                let bytes: usize = slots.iter().map(Vec::capacity).sum();
                live.fetch_add(bytes, Relaxed);
                parked.wait();
                done.wait();
            });
        }
        parked.wait();
        out.push(("live MiB".into(), mib(live.load(Relaxed))));
        out.push(("RSS MiB".into(), rss_mib()));
        let mut account = [f64::NAN; 4];
        if choice() == 2 {
            let st = slabpool::stats();
            let sum = |f: fn(&slabpool::ClassStats) -> usize| {
                mib(st.classes().iter().map(|c| f(c) * c.size).sum())
            };
            account = [
                sum(|c| c.allocated_blocks),
                sum(|c| c.cached_blocks),
                sum(|c| c.transfer_blocks),
                sum(|c| c.free_blocks),
            ];
        }
        let names = [
            "blocks live MiB",
            "thread caches MiB",
            "transfer stacks MiB",
            "free in slabs MiB",
        ];
        for (name, v) in names.into_iter().zip(account) {
            out.push((name.into(), v));
        }
        allocator_collect();
        out.push(("RSS after collect MiB".into(), rss_mib()));
        done.wait();
    });
    out
}

fn run_child(scenario: &str, scale: f64) {
    let figures = match scenario {
        "burst" => burst(scale),
        "sparse" => sparse(scale),
        "churn" => churn(scale),
        "cliff" => cliff(scale),
        "steady" => steady(scale),
        other => panic!("unknown scenario {other}"),
    };
    for (k, v) in figures {
        println!("{k}\t{v}");
    }
}

/// Runs one scenario under one allocator in a child; returns its figures.
fn measure(scenario: &str, alloc: &str, scale: f64) -> Vec<(String, f64)> {
    let exe = std::env::current_exe().unwrap();
    let strace = scenario == "cliff"
        && Command::new("strace")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
    let trace =
        std::env::temp_dir().join(format!("membench-{}-{alloc}.strace", std::process::id()));
    let mut cmd = if strace {
        let mut c = Command::new("strace");
        c.args(["-f", "-qq", "-c", "-e", "trace=madvise,munmap", "-o"])
            .arg(&trace)
            .arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args(["--child", scenario, &scale.to_string()])
        .env("MEMBENCH_ALLOC", alloc);
    let out = cmd.output().expect("run child");
    assert!(
        out.status.success(),
        "{scenario}/{alloc} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut figures: Vec<(String, f64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('\t')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect();
    if strace {
        let text = std::fs::read_to_string(&trace).unwrap_or_default();
        let _ = std::fs::remove_file(&trace);
        let mut calls = 0.0;
        for line in text.lines() {
            let cols: Vec<_> = line.split_whitespace().collect();
            if cols.len() >= 5
                && (cols.last() == Some(&"madvise") || cols.last() == Some(&"munmap"))
            {
                calls += cols[3].parse::<f64>().unwrap_or(0.0);
            }
        }
        figures.push(("madvise+munmap calls".into(), calls));
    }
    figures
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        run_child(&args[1], args[2].parse().unwrap());
        return;
    }
    let mut scale = 1.0;
    let mut chosen = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--scale" => scale = it.next().and_then(|s| s.parse().ok()).expect("--scale F"),
            s if SCENARIOS.contains(&s) => chosen.push(s.to_string()),
            other => panic!("unknown argument {other}"),
        }
    }
    if chosen.is_empty() {
        chosen = SCENARIOS.iter().map(|s| s.to_string()).collect();
    }
    for scenario in &chosen {
        let mut rows: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut order = Vec::new();
        for alloc in ALLOCATORS {
            eprintln!("[memory] {scenario} / {alloc}");
            for (k, v) in measure(scenario, alloc, scale) {
                if !order.contains(&k) {
                    order.push(k.clone());
                }
                rows.entry(k).or_default().push(v);
            }
        }
        println!("\n{scenario} (scale {scale})");
        println!(
            "{:<32} {:>12} {:>12} {:>12}",
            "", ALLOCATORS[0], ALLOCATORS[1], ALLOCATORS[2]
        );
        for k in order {
            let v = &rows[&k];
            print!("{k:<32}");
            for x in v {
                if x.is_nan() {
                    print!(" {:>12}", "-");
                } else {
                    print!(" {x:>12.3}");
                }
            }
            println!();
        }
    }
}

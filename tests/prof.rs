//! The heap profiler (`prof` feature), end to end: a test binary whose
//! `#[global_allocator]` is slabpool re-runs itself as child processes,
//! one per case, with `SLABPOOL_PROF=1` and a sample interval in the
//! environment, and reads the pprof profiles back with the small protobuf
//! decoder below (independent of the encoder in `src/prof/pprof.rs`).
//!
//! Stacks are walked by frame pointer: build with
//! `RUSTFLAGS="-C force-frame-pointers=yes" cargo test --features prof
//! --test prof` (`.ci/run` does). Without them the attribution cases fail
//! and say so.
//!
//! No test harness: each case runs in a process of its own (the profiler's
//! counters are process-wide), under a watchdog.

use std::alloc::{GlobalAlloc, Layout, alloc, dealloc, realloc};
use std::hint::black_box;
use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

#[global_allocator]
static A: slabpool::SlabPool = slabpool::SlabPool;

const MIB: usize = 1 << 20;

fn main() {
    if let Ok(case) = std::env::var("PROF_CASE") {
        match case.as_str() {
            "sites" => sites(),
            "peak" => peak(),
            "stress" => stress(),
            "frees" => frees_and_reallocs(),
            _ => panic!("unknown case {case}"),
        }
        return;
    }
    let cases: [(&str, u64, u64); 4] = [
        // (case, sample interval, watchdog seconds)
        ("sites", 32 * 1024, 300),
        ("peak", 32 * 1024, 300),
        ("stress", 4 * 1024, 300),
        ("frees", 1, 300),
    ];
    let (mut passed, mut failed) = (0, 0);
    for (case, interval, seconds) in cases {
        let ok = run_child(case, interval, Duration::from_secs(seconds));
        println!("case {case}: {}", if ok { "ok" } else { "FAILED" });
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    println!("\n{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

/// Runs this binary as `case` under a watchdog; true if it exited 0.
fn run_child(case: &str, interval: u64, limit: Duration) -> bool {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("PROF_CASE", case)
        .env("SLABPOOL_PROF", "1")
        .env("SLABPOOL_PROF_SAMPLE", interval.to_string())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            if !status.success() {
                println!("case {case}: {status}");
            }
            return status.success();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            println!("case {case}: still running after {limit:?} (deadlock?): killed");
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---- a minimal pprof reader ------------------------------------------------

/// A decoded profile: samples (location addresses, values), sample types.
struct Profile {
    types: Vec<String>,
    samples: Vec<(Vec<u64>, Vec<i64>)>,
    mappings: usize,
    build_ids: usize,
    period: i64,
}

fn varint(b: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = b[*at];
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// The fields of a message: (field number, varint value or bytes).
fn fields(b: &[u8]) -> Vec<(u32, u64, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let key = varint(b, &mut at);
        let (field, wire) = ((key >> 3) as u32, key & 7);
        match wire {
            0 => out.push((field, varint(b, &mut at), &b[0..0])),
            2 => {
                let len = varint(b, &mut at) as usize;
                out.push((field, 0, &b[at..at + len]));
                at += len;
            }
            1 => {
                out.push((
                    field,
                    u64::from_le_bytes(b[at..at + 8].try_into().unwrap()),
                    &b[0..0],
                ));
                at += 8;
            }
            5 => {
                out.push((
                    field,
                    u64::from(u32::from_le_bytes(b[at..at + 4].try_into().unwrap())),
                    &b[0..0],
                ));
                at += 4;
            }
            w => panic!("wire type {w}"),
        }
    }
    out
}

/// A repeated integer field, packed or not.
fn ints(f: &(u32, u64, &[u8]), out: &mut Vec<u64>) {
    if f.2.is_empty() {
        out.push(f.1);
    } else {
        let mut at = 0;
        while at < f.2.len() {
            out.push(varint(f.2, &mut at));
        }
    }
}

fn decode(gz: &[u8]) -> Profile {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut raw)
        .expect("gzip");
    let mut strings = Vec::new();
    let mut type_ids = Vec::new();
    let mut locations = std::collections::HashMap::new();
    let mut raw_samples = Vec::new();
    let mut mappings = 0;
    let mut build_id_strings = Vec::new();
    let mut period = 0;
    for f in fields(&raw) {
        match f.0 {
            1 => type_ids.push(fields(f.2).iter().find(|g| g.0 == 1).map_or(0, |g| g.1)),
            2 => {
                let (mut locs, mut values) = (Vec::new(), Vec::new());
                for g in fields(f.2) {
                    match g.0 {
                        1 => ints(&g, &mut locs),
                        2 => ints(&g, &mut values),
                        _ => {}
                    }
                }
                raw_samples.push((locs, values));
            }
            3 => {
                mappings += 1;
                if let Some(g) = fields(f.2).iter().find(|g| g.0 == 6) {
                    build_id_strings.push(g.1);
                }
            }
            4 => {
                let g = fields(f.2);
                let id = g.iter().find(|g| g.0 == 1).map_or(0, |g| g.1);
                let addr = g.iter().find(|g| g.0 == 3).map_or(0, |g| g.1);
                locations.insert(id, addr);
            }
            6 => strings.push(String::from_utf8(f.2.to_vec()).unwrap()),
            12 => period = f.1 as i64,
            _ => {}
        }
    }
    let samples = raw_samples
        .into_iter()
        .map(|(locs, values)| {
            (
                locs.iter().map(|id| locations[id]).collect(),
                values.into_iter().map(|v| v as i64).collect(),
            )
        })
        .collect();
    let build_ids = build_id_strings
        .iter()
        .filter(|&&i| !strings[i as usize].is_empty())
        .count();
    Profile {
        types: type_ids
            .iter()
            .map(|&i| strings[i as usize].clone())
            .collect(),
        samples,
        mappings,
        build_ids,
        period,
    }
}

impl Profile {
    /// The sum of value `kind` over the samples whose stack passes through
    /// `range` (all samples for `None`).
    fn total(&self, kind: &str, range: Option<(u64, u64)>) -> i64 {
        let k = self.types.iter().position(|t| t == kind).expect(kind);
        self.samples
            .iter()
            .filter(|(addrs, _)| range.is_none_or(|(a, b)| addrs.iter().any(|&x| a <= x && x < b)))
            .map(|(_, v)| v[k])
            .sum()
    }
}

// ---- where functions lie (this binary's symbol table) ----------------------

/// The address range of the function `f` whose symbol name contains
/// `name`, read from the ELF symbol table of this binary.
fn function_range(f: usize, name: &str) -> (u64, u64) {
    let elf = std::fs::read("/proc/self/exe").unwrap();
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    let (shoff, shentsize, shnum) = (u64_at(0x28) as usize, u16_at(0x3a), u16_at(0x3c));
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        if u32_at(sh + 4) != 2 {
            continue; // SHT_SYMTAB
        }
        let (off, size, link) = (
            u64_at(sh + 0x18) as usize,
            u64_at(sh + 0x20) as usize,
            u32_at(sh + 0x28),
        );
        let str_sh = shoff + link * shentsize;
        let str_off = u64_at(str_sh + 0x18) as usize;
        for s in (off..off + size).step_by(24) {
            let name_at = str_off + u32_at(s);
            let end = elf[name_at..].iter().position(|&c| c == 0).unwrap();
            let sym = std::str::from_utf8(&elf[name_at..name_at + end]).unwrap_or("");
            let size = u64_at(s + 16);
            // The function itself (legacy mangling: length, name, hash), not
            // its closures.
            let exact = format!("{}{name}17h", name.len());
            if sym.contains(&exact) && size > 0 && elf[s + 4] & 0xf == 2 {
                return (f as u64, f as u64 + size);
            }
        }
    }
    panic!("no symbol {name} in this binary");
}

// ---- the cases ---------------------------------------------------------------

/// Allocates `total` bytes in blocks of `size`, kept.
#[inline(never)]
fn alloc_through_a(total: usize, size: usize) -> Vec<Vec<u8>> {
    (0..total / size)
        .map(|_| black_box(vec![1u8; size]))
        .collect()
}

/// As `alloc_through_a`, another site.
#[inline(never)]
fn alloc_through_b(total: usize, size: usize) -> Vec<Vec<u8>> {
    (0..total / size)
        .map(|_| black_box(vec![2u8; size]))
        .collect()
}

fn within(what: &str, got: f64, want: f64, tolerance: f64) {
    let ok = (got / want - 1.0).abs() <= tolerance;
    println!(
        "  {what}: {:.2} MiB, expected {:.2} MiB ±{:.0}%: {}",
        got / MIB as f64,
        want / MIB as f64,
        tolerance * 100.0,
        if ok { "ok" } else { "FAILED" }
    );
    assert!(ok, "{what}");
}

/// The bytes the profiler counts for a block of `size` bytes: its class's
/// size for a small block (in the hardened build a request grows by its
/// 8-byte canary first, which may take it to the next class), the request
/// for a large one (with the canary in the hardened build).
fn counted(size: usize) -> usize {
    for _ in 0..100 {
        let v = black_box(vec![0u8; size]);
        match slabpool::raw::find(v.as_ptr()) {
            Ok(slabpool::raw::Found::Small(class)) => return class.info().size as usize,
            Ok(_) => return size + if cfg!(feature = "hardened") { 8 } else { 0 },
            // A sampled block (in the profiler's pool): try another.
            Err(_) => continue,
        }
    }
    panic!("no block of {size} bytes found");
}

/// 64 MiB live through A (small and large blocks), 8 MiB through B freed:
/// the live profile attributes A within ±10% and B about 0; the estimate
/// of live bytes matches the allocator's statistics within ±10%.
fn sites() {
    let (a_bytes, b_bytes) = (
        32 * MIB / 1024 * counted(1024) + 32 * MIB / (256 * 1024) * counted(256 * 1024),
        4 * MIB / 1024 * counted(1024) + 4 * MIB / (128 * 1024) * counted(128 * 1024),
    );
    let before = slabpool::stats().allocated as f64;
    let mut a = alloc_through_a(32 * MIB, 1024);
    a.extend(alloc_through_a(32 * MIB, 256 * 1024));
    let b = alloc_through_b(4 * MIB, 1024);
    let b2 = alloc_through_b(4 * MIB, 128 * 1024);
    drop((b, b2));
    let gz = slabpool::prof::profile(slabpool::prof::Which::Live).unwrap();
    let p = decode(&gz);
    assert_eq!(
        p.types,
        [
            "alloc_objects",
            "alloc_space",
            "inuse_objects",
            "inuse_space"
        ]
    );
    assert_eq!(p.period, 32 * 1024);
    assert!(p.mappings > 0 && p.build_ids > 0, "mappings with build IDs");
    let ra = function_range(alloc_through_a as *const () as usize, "alloc_through_a");
    let rb = function_range(alloc_through_b as *const () as usize, "alloc_through_b");
    let in_a = p.total("inuse_space", Some(ra)) as f64;
    let in_b = p.total("inuse_space", Some(rb)) as f64;
    let alloc_b = p.total("alloc_space", Some(rb)) as f64;
    println!(
        "  samples {}, inuse total {:.2} MiB",
        p.samples.len(),
        p.total("inuse_space", None) as f64 / MIB as f64
    );
    assert!(
        in_a > 0.0,
        "no sample's stack passes through alloc_through_a: build with RUSTFLAGS=\"-C force-frame-pointers=yes\""
    );
    within("live through A", in_a, a_bytes as f64, 0.10);
    // B's 4 MiB of 1 KiB blocks hold about 128 samples at this interval:
    // the estimate's standard deviation is about 4.5% of B's 8 MiB, so
    // ±20% (4.5 sigma; ±10% failed one run in fifty).
    within("allocated through B", alloc_b, b_bytes as f64, 0.20);
    println!("  live through B: {in_b} bytes");
    assert!(in_b < 0.01 * b_bytes as f64, "B is freed");
    // The heap: the allocator's blocks and the sampled blocks (which live
    // in the profiler's pool, outside `stats()`).
    let st = slabpool::prof::stats();
    let heap = slabpool::stats().allocated as f64 + st.pool_bytes as f64 - before;
    println!(
        "  accuracy: estimated live {:.2} MiB, stats().allocated + sampled blocks grew {:.2} MiB ({:+.1}%)",
        st.live_bytes / MIB as f64,
        heap / MIB as f64,
        (st.live_bytes / heap - 1.0) * 100.0
    );
    within("estimated live vs stats()", st.live_bytes, heap, 0.10);
    black_box(&a);
}

/// The heap peaks at 200 MiB and ends at 10 MiB: the peak profile shows
/// 200 MiB ±10%, the live one 10 MiB.
fn peak() {
    let (small, large) = (100 * MIB / 1024, 100 * MIB / (64 * 1024));
    let (small_bytes, large_bytes) = (counted(1024), counted(64 * 1024));
    let mut blocks = Vec::with_capacity(small + large);
    blocks.extend(alloc_through_a(100 * MIB, 1024));
    blocks.extend(alloc_through_a(100 * MIB, 64 * 1024));
    let outer = (blocks.capacity() * size_of::<Vec<u8>>()) as f64;
    // Keep every 20th block: 10 MiB (the outer vector is freed).
    let mut kept = Vec::with_capacity(blocks.len() / 20 + 1);
    for (i, b) in blocks.into_iter().enumerate() {
        if i % 20 == 0 {
            kept.push(b);
        }
    }
    let peak = decode(&slabpool::prof::profile(slabpool::prof::Which::Peak).unwrap());
    let live = decode(&slabpool::prof::profile(slabpool::prof::Which::Live).unwrap());
    let ten = (small.div_ceil(20) * small_bytes + large.div_ceil(20) * large_bytes) as f64
        + (kept.capacity() * size_of::<Vec<u8>>()) as f64;
    within(
        "peak",
        peak.total("inuse_space", None) as f64,
        (small * small_bytes + large * large_bytes) as f64 + outer,
        0.10,
    );
    within(
        "live after the frees",
        live.total("inuse_space", None) as f64,
        ten,
        0.25,
    );
    // After a reset the peak is the live heap.
    slabpool::prof::reset_peak();
    let peak = decode(&slabpool::prof::profile(slabpool::prof::Which::Peak).unwrap());
    within(
        "peak after reset",
        peak.total("inuse_space", None) as f64,
        ten,
        0.25,
    );
    black_box(&kept);
}

/// Allocation of random sizes (small, large, huge) and frees across
/// threads, for `millis`.
fn churn(seed: u64, millis: u64) {
    let mut x = seed | 1;
    let mut live: Vec<(usize, usize)> = Vec::new();
    let end = Instant::now() + Duration::from_millis(millis);
    while Instant::now() < end {
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let size = match x % 100 {
                0 => 3 * MIB,
                1..=5 => 40_000 + (x >> 20) as usize % 200_000,
                _ => 8 + (x >> 20) as usize % 2000,
            };
            if live.len() > 500 || (x >> 40) % 3 == 0 && !live.is_empty() {
                let (p, s) = live.swap_remove((x >> 8) as usize % live.len());
                // SAFETY: allocated below with this layout.
                unsafe { dealloc(p as *mut u8, Layout::from_size_align(s, 8).unwrap()) };
            } else {
                // SAFETY: non-zero size.
                let p = unsafe { alloc(Layout::from_size_align(size, 8).unwrap()) };
                assert!(!p.is_null());
                // SAFETY: `p` holds `size` bytes.
                unsafe { p.write_bytes(1, size.min(64)) };
                live.push((p as usize, size));
            }
        }
    }
    for (p, s) in live {
        // SAFETY: allocated above with this layout.
        unsafe { dealloc(p as *mut u8, Layout::from_size_align(s, 8).unwrap()) };
    }
}

/// Sampling every 4 KiB while threads allocate, start and exit, the main
/// thread forks (children allocate, dump and exit) and loads and unloads a
/// library: no deadlock (the parent's watchdog), no crash.
fn stress() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for t in 0..3u64 {
        let stop = stop.clone();
        workers.push(std::thread::spawn(move || {
            let mut round = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Short-lived threads too: they exit with sampled blocks
                // freed by others.
                let h = std::thread::spawn(move || churn(t * 1000 + round, 20));
                churn(t * 7919 + round, 30);
                h.join().unwrap();
                round += 1;
            }
        }));
    }
    let end = Instant::now() + Duration::from_secs(6);
    let mut forks = 0;
    while Instant::now() < end {
        // SAFETY: the child only allocates, dumps a profile and `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            churn(99, 10);
            let ok = slabpool::prof::profile(slabpool::prof::Which::Live).is_ok();
            // SAFETY: ends the child without running the parent's handlers.
            unsafe { libc::_exit(if ok { 0 } else { 3 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child status {status}"
        );
        forks += 1;
        for lib in [c"libresolv.so.2", c"libutil.so.1", c"libdl.so.2"] {
            // SAFETY: loads and unloads a system library.
            unsafe {
                let h = libc::dlopen(lib.as_ptr(), libc::RTLD_NOW);
                if !h.is_null() {
                    libc::dlclose(h);
                }
            }
        }
        let _ = slabpool::prof::profile(slabpool::prof::Which::Peak).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let st = slabpool::prof::stats();
    println!(
        "  {forks} forks, {} samples, {} live",
        st.samples, st.live_samples
    );
    assert!(st.samples > 1000, "sampling happened");
}

/// Every allocation sampled (interval 1): blocks freed by other threads,
/// `realloc` in place and moved, huge blocks, the pointer API; nothing
/// sampled stays live.
fn frees_and_reallocs() {
    let base = slabpool::prof::stats().live_samples;
    // Allocated here, freed by another thread.
    let blocks: Vec<Box<[u8; 100]>> = (0..1000).map(|i| Box::new([i as u8; 100])).collect();
    let mid = slabpool::prof::stats().live_samples;
    assert!(mid >= base + 1000, "every block sampled: {base} -> {mid}");
    std::thread::spawn(move || drop(blocks)).join().unwrap();
    // realloc within a class (in place), across classes and routes (moved).
    let mut layout = Layout::from_size_align(24, 8).unwrap();
    // SAFETY: a valid layout; each realloc replaces the block.
    unsafe {
        let mut p = alloc(layout);
        p.write_bytes(7, 24);
        for size in [30, 100, 5000, 40_000, 500_000, 3 * MIB, 9 * MIB, 64, 16] {
            let q = realloc(p, layout, size);
            assert!(!q.is_null());
            let kept = layout.size().min(size);
            assert!((0..kept).all(|i| *q.add(i) == 7), "contents kept to {size}");
            q.write_bytes(7, size);
            p = q;
            layout = Layout::from_size_align(size, 8).unwrap();
        }
        dealloc(p, layout);
    }
    // Huge blocks, zeroed.
    for size in [5 * MIB, 100 * MIB] {
        let l = Layout::from_size_align(size, 4096).unwrap();
        // SAFETY: a valid layout.
        unsafe {
            let p = A.alloc_zeroed(l);
            assert!(!p.is_null() && p as usize % 4096 == 0);
            assert!(*p == 0 && *p.add(size - 1) == 0);
            p.write_bytes(1, size);
            A.dealloc(p, l);
            let p = A.alloc_zeroed(l);
            assert!(
                *p == 0 && *p.add(size / 2) == 0 && *p.add(size - 1) == 0,
                "zeroed again"
            );
            A.dealloc(p, l);
        }
    }
    // The pointer API: malloc-style blocks, realloc, usable size.
    // SAFETY: each block is live until freed once.
    unsafe {
        let p = slabpool::raw::alloc(40, 16);
        assert!(slabpool::raw::usable_size(p) >= 40);
        p.write_bytes(3, 40);
        let q = slabpool::raw::realloc(p, 300_000, 16);
        assert!((0..40).all(|i| *q.add(i) == 3));
        let r = slabpool::raw::alloc_zeroed(10_000, 64);
        assert!(r as usize % 64 == 0 && (0..10_000).all(|i| *r.add(i) == 0));
        slabpool::raw::free(q);
        slabpool::raw::free(r);
    }
    let end = slabpool::prof::stats();
    println!(
        "  {} samples taken, {} live at the end",
        end.samples, end.live_samples
    );
    assert!(end.samples >= 1000 + 20, "sampled: {}", end.samples);
    // (The harness's own blocks, such as the spawned thread's, may come and
    // go: a few at most.)
    assert!(end.live_samples <= base + 8, "every sampled block freed");
}

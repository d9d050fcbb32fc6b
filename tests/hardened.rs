//! The hardened build through `GlobalAlloc` (`#[global_allocator]`), run
//! with `cargo test --features hardened --test hardened`: programs run
//! unchanged, a freed block is not handed out again before the quarantine
//! has seen its length in frees, and an overflow of one byte past a small
//! or huge block, or a `dealloc` with another size, aborts with the
//! canary's message (in a child process: the test runs itself).

use slabpool::SlabPool;
use std::alloc::{GlobalAlloc, Layout};
use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Output;

mod common;

#[global_allocator]
static GLOBAL: SlabPool = SlabPool;

/// Blocks the quarantine holds (`quarantine::SLOTS`).
const QUARANTINE_SLOTS: usize = 64;

/// Set in the child process, naming the misuse it commits.
const CHILD: &str = "SLABPOOL_HARDENED_TEST_CHILD";
/// How a child reports the byte it wrote into a canary.
const OVERWRITTEN: &str = "overwritten with ";

#[test]
fn programs_run_unchanged() {
    let mut map = HashMap::new();
    let mut total = 0usize;
    for i in 0..20_000usize {
        let s = format!("{i:>width$}", width = i % 300);
        total += s.len();
        map.insert(i, s);
    }
    assert_eq!(map.values().map(String::len).sum::<usize>(), total);
    // Growth through small, large and huge blocks keeps the contents.
    let mut v: Vec<u32> = Vec::new();
    for i in 0..3_000_000u32 {
        v.push(i);
    }
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
    v.truncate(10);
    v.shrink_to_fit();
    assert_eq!(v, (0..10).collect::<Vec<_>>());
    let zeroed = vec![0u64; 1 << 20];
    assert!(zeroed.iter().all(|&x| x == 0));
}

#[test]
fn a_freed_block_waits_for_the_quarantine() {
    let layout = Layout::from_size_align(48, 8).unwrap();
    // SAFETY: a valid layout; every block is freed once, with it.
    unsafe {
        let p = GLOBAL.alloc(layout);
        GLOBAL.dealloc(p, layout);
        let mut frees = 0;
        loop {
            let q = GLOBAL.alloc(layout);
            assert!(!q.is_null());
            if q == p {
                GLOBAL.dealloc(q, layout);
                break;
            }
            GLOBAL.dealloc(q, layout);
            frees += 1;
            assert!(frees <= 1000, "never handed out again");
        }
        assert_eq!(frees, QUARANTINE_SLOTS);
    }
}

/// Runs this test binary's `child` test with `CHILD=mode`.
fn run_child(mode: &str) -> Output {
    let mut cmd = common::self_command();
    cmd.args(["--exact", "child", "--include-ignored", "--nocapture"])
        .env(CHILD, mode);
    if mode == "slab_guard" {
        // No sampled guarded blocks: their slots' guard pages would count.
        cmd.env("SLABPOOL_GUARD_SAMPLE", "0");
    }
    cmd.output().expect("run the test binary")
}

/// Checks that the child run `out` (of `mode`) was killed by `signal`.
fn assert_signal(out: &Output, mode: &str, signal: libc::c_int) {
    assert_eq!(
        out.status.signal(),
        Some(signal),
        "{mode}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the `child` test with `CHILD=mode` and checks that it aborted with
/// a line containing `what` (`{now}` in it stands for the byte the child
/// wrote into a canary).
fn expect_abort(mode: &str, what: &str) {
    let out = run_child(mode);
    assert_signal(&out, mode, libc::SIGABRT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let written = stdout.lines().find_map(|l| l.strip_prefix(OVERWRITTEN));
    let what = &what.replace("{now}", written.unwrap_or("(nothing written)"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("slabpool: dealloc(0x") && l.contains(what)),
        "{mode}: stderr lacks {what:?}:\n{stderr}"
    );
}

#[test]
fn an_overflow_of_one_byte_aborts_on_dealloc() {
    // 48 bytes and the tag fill a block of 56: the byte lands in the tag.
    expect_abort(
        "small",
        "heap overflow or underflow: the canary tag in the block's last 8 of 56 bytes",
    );
    expect_abort(
        "huge",
        &format!(
            "heap overflow: the canary past the block's requested bytes is overwritten \
             at byte {} (now {{now}})",
            5 << 20
        ),
    );
}

#[test]
fn big_blocks_are_resized_and_keep_a_canary_at_their_new_end() {
    // Large (100 KiB -> 200 KiB) and huge (5 MiB -> 9 MiB -> 6 MiB).
    for (from, to) in [
        (100 << 10, 200 << 10),
        (5 << 20, 9 << 20),
        (9 << 20, 6 << 20),
    ] {
        let layout = Layout::from_size_align(from, 8).unwrap();
        // SAFETY: valid layouts; each block is used within its size and
        // freed once with its layout.
        unsafe {
            let p = GLOBAL.alloc(layout);
            assert!(!p.is_null());
            for i in (0..from).step_by(4093) {
                *p.add(i) = (i % 251) as u8;
            }
            let q = GLOBAL.realloc(p, layout, to);
            assert!(!q.is_null());
            for i in (0..from.min(to)).step_by(4093) {
                assert_eq!(*q.add(i), (i % 251) as u8, "{from} -> {to}: byte {i}");
            }
            if to > from {
                // The old canary, now inside the request, was cleared.
                assert!((from..from + 8).all(|i| *q.add(i) == 0), "{from} -> {to}");
            }
            GLOBAL.dealloc(q, Layout::from_size_align(to, 8).unwrap());
        }
    }
    expect_abort(
        "realloc",
        &format!(
            "heap overflow: the canary past the block's requested bytes is overwritten \
             at byte {} (now {{now}})",
            6 << 20
        ),
    );
}

#[test]
fn a_dealloc_with_another_size_aborts() {
    expect_abort(
        "size",
        "the block was allocated with 48 bytes and is freed with a layout of 40",
    );
}

#[test]
fn the_pages_after_a_segment_header_fault() {
    for mode in ["guard", "guard_end"] {
        assert_signal(&run_child(mode), mode, libc::SIGSEGV);
    }
}

#[test]
fn a_write_past_a_slab_faults_on_its_guard_page() {
    if common::os_page() != 4096 {
        println!("skipped: no slab guard pages with OS pages above 4 KiB");
        return;
    }
    let out = run_child("slab_guard");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let guards: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("guards "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    // 256 blocks of 4 KiB fill 16 slabs of 16 blocks: most end on a guard
    // (the open slab and blocks still cached may not).
    assert!(
        guards >= 12,
        "{guards} blocks end on a guard page\n{stdout}"
    );
    assert_signal(&out, "slab_guard", libc::SIGSEGV);
}

#[test]
fn slab_guards_are_lifted_when_their_slabs_go_back() {
    if common::os_page() != 4096 {
        return;
    }
    // A class no other test uses: 8 KiB blocks (the tag makes 8184 + 8).
    let layout = Layout::from_size_align(8192 - 8, 8).unwrap();
    let count = || {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count()
    };
    let before = count();
    // SAFETY: valid layout; each block is freed once, with it.
    unsafe {
        let blocks: Vec<*mut u8> = (0..512).map(|_| GLOBAL.alloc(layout)).collect();
        assert!(blocks.iter().all(|p| !p.is_null()));
        let during = count();
        // 512 blocks of 8 KiB: 64 slabs, each guard splitting a mapping.
        assert!(during >= before + 64, "{before} mappings, then {during}");
        for &p in &blocks {
            GLOBAL.dealloc(p, layout);
        }
    }
    slabpool::collect();
    let after = count();
    // The lifted guards rejoin their segments' mappings (other tests may
    // run meanwhile, so allow a few of theirs).
    assert!(
        after <= before + 16,
        "{before} mappings before, {after} after"
    );
}

/// The one-page `PROT_NONE` mappings of this process, by start address.
fn guard_pages() -> Vec<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    maps.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (range, perms) = (f.next()?, f.next()?);
            let (a, b) = range.split_once('-')?;
            let (a, b) = (
                usize::from_str_radix(a, 16).ok()?,
                usize::from_str_radix(b, 16).ok()?,
            );
            (perms == "---p" && b - a == 4096).then_some(a)
        })
        .collect()
}

/// Overwrites the byte at `p`, a canary's, with its complement (the
/// canaries are random, so a fixed value may be the one already there:
/// 1 in 128 runs) and prints the value written for the parent to expect.
///
/// # Safety
/// `p` must be readable and writable.
unsafe fn overwrite(p: *mut u8) {
    // SAFETY: by contract.
    let flipped = unsafe { !std::ptr::read_volatile(p) };
    println!("{OVERWRITTEN}{flipped:#04x}");
    // SAFETY: by contract.
    unsafe { std::ptr::write_volatile(p, flipped) };
}

/// The child's misuse (run by `run_child` only).
#[test]
#[ignore = "run by run_child in a child process"]
fn child() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    if mode == "guard" || mode == "guard_end" {
        // The guard after the 17 header pages of the 4 MiB segment holding
        // a small block: from the first OS page boundary past them to the
        // first span, at 192 KiB (laid out for OS pages up to 64 KiB). Its
        // first and last bytes, with the OS page the kernel has.
        let b = Box::new([7u8; 48]);
        let segment = &*b as *const [u8; 48] as usize & !((4 << 20) - 1);
        let first = (17 * 4096usize).next_multiple_of(common::os_page());
        let at = if mode == "guard" {
            first
        } else {
            (192 << 10) - 1
        };
        // SAFETY: none: the read must fault (the misuse under test).
        let byte = unsafe { std::ptr::read_volatile((segment + at) as *const u8) };
        println!("read {byte} from the guard page");
        return;
    }
    if mode == "slab_guard" {
        // 256 blocks of the 4 KiB class (the request grows by the 8-byte
        // tag): the page right after a block that ends its slab is the
        // slab's guard; write one byte there.
        let layout = Layout::from_size_align(4096 - 8, 8).unwrap();
        // SAFETY: valid layout; the blocks stay live.
        let blocks: Vec<usize> = (0..256)
            .map(|_| unsafe { GLOBAL.alloc(layout) } as usize)
            .collect();
        let guards = guard_pages();
        let ending: Vec<usize> = blocks
            .iter()
            .copied()
            .filter(|&b| guards.binary_search(&(b + 4096)).is_ok())
            .collect();
        println!("guards {}", ending.len());
        if let Some(&b) = ending.first() {
            // SAFETY: none: the write must fault (the misuse under test).
            unsafe { std::ptr::write_volatile((b + 4096) as *mut u8, 1) };
        }
        return;
    }
    if mode == "realloc" {
        // A huge block grown, then written one byte past its new size.
        let layout = Layout::from_size_align(5 << 20, 8).unwrap();
        // SAFETY: the write lands in the canary (the misuse under test).
        unsafe {
            let p = GLOBAL.realloc(GLOBAL.alloc(layout), layout, 6 << 20);
            overwrite(p.add(6 << 20));
            GLOBAL.dealloc(p, Layout::from_size_align(6 << 20, 8).unwrap());
        }
        return;
    }
    let size = if mode == "huge" { 5 << 20 } else { 48 };
    let layout = Layout::from_size_align(size, 8).unwrap();
    // SAFETY: the write lands in the block's canary, past the request but
    // within the block; that is the misuse under test.
    unsafe {
        let p = GLOBAL.alloc(layout);
        if mode == "size" {
            GLOBAL.dealloc(p, Layout::from_size_align(40, 8).unwrap());
        } else {
            overwrite(p.add(size));
            GLOBAL.dealloc(p, layout);
        }
    }
}

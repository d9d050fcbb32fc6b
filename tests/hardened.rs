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
use std::process::Command;

#[global_allocator]
static GLOBAL: SlabPool = SlabPool;

/// Blocks the quarantine holds (`quarantine::SLOTS`).
const QUARANTINE_SLOTS: usize = 64;

/// Set in the child process, naming the misuse it commits.
const CHILD: &str = "SLABPOOL_HARDENED_TEST_CHILD";

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

/// Runs this test binary's `child` test with `CHILD=mode` and checks that
/// it aborted with a line containing `what`.
fn expect_abort(mode: &str, what: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--include-ignored", "--nocapture"])
        .env(CHILD, mode)
        .output()
        .expect("run the test binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{mode}: {}\n{stderr}",
        out.status
    );
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
             at byte {} (now 0x01)",
            5 << 20
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
fn the_page_after_a_segment_header_faults() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--include-ignored", "--nocapture"])
        .env(CHILD, "guard")
        .output()
        .expect("run the test binary");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The child's misuse (run by `expect_abort` only).
#[test]
#[ignore = "run by expect_abort in a child process"]
fn child() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    if mode == "guard" {
        // The page after the 17 header pages of the 4 MiB segment holding
        // a small block.
        let b = Box::new([7u8; 48]);
        let segment = &*b as *const [u8; 48] as usize & !((4 << 20) - 1);
        // SAFETY: none: the read must fault (the misuse under test).
        let byte = unsafe { std::ptr::read_volatile((segment + 17 * 4096) as *const u8) };
        println!("read {byte} from the guard page");
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
            std::ptr::write_volatile(p.add(size), 1);
            GLOBAL.dealloc(p, layout);
        }
    }
}

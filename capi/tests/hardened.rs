//! The hardened build's mitigations through the C library
//! (`libslabpool-hardened.so`), each checked against the default build
//! (`libslabpool.so`), which lacks them: canaries (an overflow of one byte
//! and an underflow into the previous block abort on free with the
//! canary's message), zero on free, delayed reuse, randomised carve order.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

/// Blocks the quarantine holds (`quarantine::SLOTS`).
const QUARANTINE_SLOTS: usize = 64;

fn program() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = scratch("hardened").join("hardened");
        compile(
            "cc",
            &["tests/c/hardened.c"],
            &["-O2", "-fno-builtin"],
            &exe,
        );
        exe
    })
}

fn run_mode(lib: &Path, mode: &str) -> Output {
    let mut cmd = Command::new(program());
    cmd.arg(mode);
    run(cmd, Some(lib), Duration::from_secs(60))
}

/// Runs `mode` under `lib`, expecting success; returns its stdout.
fn stdout_of(lib: &Path, mode: &str) -> String {
    let out = run_mode(lib, mode);
    assert_ok(&format!("hardened {mode}"), &out);
    text(&out.stdout)
}

/// Runs `mode` under `lib` and checks it aborted with a line starting
/// `slabpool: free(<pointer>): ` and containing `what`.
fn expect_abort(lib: &Path, mode: &str, what: &str) {
    let (pointer, stderr) = aborted_after_pointer(mode, &run_mode(lib, mode));
    let start = format!("slabpool: free({pointer}): ");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(&start) && l.contains(what) && l.ends_with("; aborting")),
        "{mode}: stderr lacks {start}...{what}:\n{stderr}"
    );
}

#[test]
fn an_overflow_of_one_byte_aborts_on_free() {
    expect_abort(
        hardened_library(),
        "overflow1",
        "heap overflow: the canary past the block's requested bytes is overwritten \
         at byte 48 (now 0x",
    );
    // The default build does not see it.
    assert_ok(
        "overflow1, default build",
        &run_mode(library(), "overflow1"),
    );
}

#[test]
fn an_underflow_aborts_when_the_previous_block_is_freed() {
    expect_abort(
        hardened_library(),
        "underflow",
        "heap overflow or underflow: the canary tag in the block's last 8 of 64 bytes \
         is overwritten",
    );
}

#[test]
fn guarded_blocks_from_malloc_get_their_canary_within_them() {
    // Every allocation sampled: `malloc`'s guarded blocks hold exactly the
    // request and its canary, against their guard page; a canary placed as
    // for a block of the size class wrote past it (a fault in `malloc`).
    for lib in [hardened_library(), library()] {
        let mut cmd = Command::new(program());
        cmd.arg("sizes").env("SLABPOOL_GUARD_SAMPLE", "1");
        let out = run(cmd, Some(lib), Duration::from_secs(60));
        assert_ok(&format!("sizes under {}", lib.display()), &out);
        assert!(text(&out.stdout).contains("sizes ok"));
    }
}

#[test]
fn freed_memory_reads_as_zero() {
    assert_eq!(stdout_of(hardened_library(), "zeroed").trim(), "zeroed");
    assert_eq!(stdout_of(library(), "zeroed").trim(), "kept 40");
}

#[test]
fn quarantine_delays_reuse_by_its_length_in_frees() {
    assert_eq!(
        stdout_of(hardened_library(), "quarantine").trim(),
        format!("reused after {QUARANTINE_SLOTS} frees")
    );
    assert_eq!(
        stdout_of(library(), "quarantine").trim(),
        "reused after 0 frees"
    );
}

/// The offsets of 16 fresh blocks from the first, in allocation order.
fn carve_order(lib: &Path) -> Vec<i64> {
    let out = stdout_of(lib, "carve");
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("order "))
        .unwrap_or_else(|| panic!("no order line:\n{out}"));
    line.split(' ')
        .map(|d| d.parse().expect("an offset"))
        .collect()
}

#[test]
fn carve_order_is_random_and_differs_between_runs() {
    let first = carve_order(hardened_library());
    let second = carve_order(hardened_library());
    assert_eq!(first.len(), 15);
    assert_ne!(first, second, "two processes carve in the same order");
    // Every offset a whole block, distinct: a permutation of one carve.
    for order in [&first, &second] {
        assert!(order.iter().all(|d| d % 64 == 0 && *d != 0), "{order:?}");
        let mut sorted = order.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), order.len(), "{order:?}");
        assert!(!order.windows(2).all(|w| w[1] == w[0] + 64), "{order:?}");
    }
    // The default build carves in address order, the same in every run.
    let plain: Vec<i64> = (1..16).map(|i| 48 * i).collect();
    assert_eq!(carve_order(library()), plain);
}

#[test]
fn free_keeps_errno_on_its_fast_and_slow_paths() {
    for lib in [hardened_library(), library()] {
        assert_eq!(
            stdout_of(lib, "errno").trim(),
            "errno kept",
            "{}",
            lib.display()
        );
    }
}

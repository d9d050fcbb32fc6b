//! Sampled guarded allocations under `LD_PRELOAD` (`tests/c/guard.c`, one
//! case per process) with `SLABPOOL_GUARD_SAMPLE=1`, so every allocation
//! of the C program is guarded: a one-byte overflow, an underflow and a
//! use after free fault with slabpool's one-line report naming the block;
//! a double free, `realloc` or `malloc_usable_size` of a freed guarded
//! block abort with its message; `realloc`, `malloc_usable_size`, `calloc`
//! and aligned allocation work on guarded blocks; the program's own SIGSEGV
//! handler still gets its faults; threads stay correct; without the
//! variable nothing is guarded, and with it about one block in N is.

mod common;

use common::*;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

fn program() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = scratch("guard").join("guard");
        compile("cc", &["tests/c/guard.c"], &["-O1", "-pthread"], &exe);
        exe
    })
}

/// Runs `guard ARGS` under the library with `SLABPOOL_GUARD_SAMPLE` set to
/// `sample` (unset for `None`).
fn run_case(args: &[&str], sample: Option<&str>) -> Output {
    let mut cmd = Command::new(program());
    cmd.args(args);
    match sample {
        Some(n) => cmd.env("SLABPOOL_GUARD_SAMPLE", n),
        None => cmd.env_remove("SLABPOOL_GUARD_SAMPLE"),
    };
    run(cmd, Some(library()), Duration::from_secs(120))
}

fn pointer(mode: &str, out: &Output) -> String {
    text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("pointer ").map(str::to_string))
        .unwrap_or_else(|| {
            panic!(
                "{mode}: no pointer printed:\n{}\n{}",
                text(&out.stdout),
                text(&out.stderr)
            )
        })
}

/// Runs `mode` with every allocation guarded and checks it died of
/// `signal` with a stderr line containing `expect` (`{p}`: the pointer the
/// program printed).
fn expect_death(mode: &str, signal: i32, expect: &str) {
    let out = run_case(&[mode], Some("1"));
    let p = pointer(mode, &out);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.signal(),
        Some(signal),
        "{mode}: expected signal {signal}, got {}\n{stdout}\n{stderr}",
        out.status
    );
    let want = expect.replace("{p}", &p);
    assert!(
        stderr.lines().any(|l| l.contains(&want)),
        "{mode}: stderr lacks {want:?}:\n{stderr}"
    );
}

const SEGV: i32 = libc::SIGSEGV;
const ABRT: i32 = libc::SIGABRT;
const FREED: &str = "double free (a guarded block, already freed); aborting";

#[test]
fn one_byte_past_a_small_block_faults_and_is_reported_as_an_overflow() {
    // malloc(40) is 16-aligned: its block has 48 bytes, and byte 48 faults.
    let out = run_case(&["overflow"], Some("1"));
    let p = pointer("overflow", &out);
    assert_eq!(out.status.signal(), Some(SEGV), "{}", text(&out.stderr));
    let block = usize::from_str_radix(p.trim_start_matches("0x"), 16).unwrap();
    let line = format!(
        "slabpool: SIGSEGV at {:#x}: overflow past guarded block {p} of 40 bytes (offset 48)",
        block + 48
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.lines().any(|l| l == line),
        "stderr lacks {line:?}:\n{stderr}"
    );
}

#[test]
fn one_byte_past_a_large_block_faults() {
    expect_death(
        "overflow-large",
        SEGV,
        "overflow past guarded block {p} of 100000 bytes (offset 100000)",
    );
}

#[test]
fn underflow_before_the_blocks_page_faults() {
    expect_death(
        "underflow",
        SEGV,
        "underflow before guarded block {p} of 40 bytes (offset -",
    );
}

#[test]
fn use_after_free_read_and_write_fault() {
    expect_death(
        "uaf-read",
        SEGV,
        "use after free of guarded block {p} of 200 bytes (offset 10, freed ",
    );
    expect_death(
        "uaf-write",
        SEGV,
        "use after free of guarded block {p} of 3000 bytes (offset 2999, freed ",
    );
}

#[test]
fn double_free_of_a_guarded_block_is_reported() {
    expect_death(
        "double-free",
        ABRT,
        &format!("slabpool: free({{p}}): {FREED}"),
    );
    expect_death(
        "double-free-later",
        ABRT,
        &format!("slabpool: free({{p}}): {FREED}"),
    );
    expect_death(
        "realloc-freed",
        ABRT,
        &format!("slabpool: realloc({{p}}): {FREED}"),
    );
    expect_death(
        "usable-freed",
        ABRT,
        &format!("slabpool: malloc_usable_size({{p}}): {FREED}"),
    );
    expect_death(
        "interior",
        ABRT,
        "slabpool: free({p}): pointer inside a block, not at its start; aborting",
    );
}

#[test]
fn realloc_usable_size_calloc_and_aligned_blocks_work_when_guarded() {
    let out = run_case(&["api"], Some("1"));
    assert_ok("api", &out);
    assert!(text(&out.stdout).contains("ok"));
}

#[test]
fn the_programs_own_sigsegv_handler_still_gets_its_faults() {
    let out = run_case(&["handler"], Some("1"));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    // The overflow is reported, then handed to the program's handler,
    // which exits with 42.
    assert_eq!(
        out.status.code(),
        Some(42),
        "{}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("own fault handled"), "{stdout}\n{stderr}");
    let p = pointer("handler", &out);
    let want = format!("overflow past guarded block {p} of 40 bytes (offset 48)");
    assert!(stderr.contains(&want), "stderr lacks {want:?}:\n{stderr}");
}

#[test]
fn threads_stay_correct_with_every_block_guarded() {
    for sample in ["1", "7"] {
        let out = run_case(&["threads"], Some(sample));
        assert_ok(&format!("threads, sample {sample}"), &out);
    }
}

/// `guarded K of N` from the `count` case.
fn guarded(out: &Output) -> (u64, u64) {
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("guarded "))
        .unwrap_or_else(|| panic!("no count: {stdout}\n{}", text(&out.stderr)));
    let (k, n) = line.split_once(" of ").expect("K of N");
    (k.parse().unwrap(), n.parse().unwrap())
}

#[test]
fn nothing_is_guarded_without_the_variable_and_one_in_n_with_it() {
    let out = run_case(&["count", "2000"], None);
    assert_ok("count, unset", &out);
    assert_eq!(guarded(&out), (0, 2000), "unset: nothing guarded");
    let out = run_case(&["count", "2000"], Some("0"));
    assert_ok("count, 0", &out);
    assert_eq!(guarded(&out), (0, 2000), "0: off");
    let out = run_case(&["count", "1000"], Some("1"));
    assert_ok("count, 1", &out);
    assert_eq!(guarded(&out), (1000, 1000), "1: every allocation");
    // One in about 64 blocks handed out: 20,000 live blocks all come from
    // refills.
    let out = run_case(&["count", "20000"], Some("64"));
    assert_ok("count, 64", &out);
    let (k, n) = guarded(&out);
    let expected = n / 64;
    assert!(
        k >= expected / 2 && k <= expected * 2,
        "sample 64: {k} of {n} guarded, expected about {expected}"
    );
}

//! Invalid frees abort with slabpool's one-line message naming the error
//! and the address (run as child processes: SIGABRT and stderr checked).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

fn program() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = scratch("invalid").join("invalid");
        compile("cc", &["tests/c/invalid.c"], &["-O2", "-pthread"], &exe);
        exe
    })
}

/// Runs `invalid MODE` on `lib`, checks it died of SIGABRT, and returns
/// the pointer it printed and its stderr.
fn run_aborting(lib: &Path, mode: &str) -> (String, String) {
    let mut cmd = Command::new(program());
    cmd.arg(mode);
    aborted_after_pointer(mode, &run(cmd, Some(lib), Duration::from_secs(60)))
}

/// Runs `invalid MODE` on `lib` and checks it aborted with
/// `slabpool: CALL(<pointer>): WHY; aborting` on stderr.
fn expect_abort(lib: &Path, mode: &str, call: &str, why: &str) {
    let (pointer, stderr) = run_aborting(lib, mode);
    let line = format!("slabpool: {call}({pointer}): {why}; aborting");
    assert!(
        stderr.lines().any(|l| l == line),
        "{mode}: stderr lacks {line:?}:\n{stderr}"
    );
}

const FOREIGN: &str = "pointer not allocated by slabpool";
const INTERIOR: &str = "pointer inside a block, not at its start";

#[test]
fn stack_pointer() {
    expect_abort(library(), "stack", "free", FOREIGN);
}

#[test]
fn static_buffer() {
    expect_abort(library(), "static", "free", FOREIGN);
}

#[test]
fn memory_from_mmap() {
    expect_abort(library(), "mmap", "free", FOREIGN);
}

#[test]
fn block_of_another_allocator() {
    expect_abort(library(), "glibc", "free", FOREIGN);
}

#[test]
fn interior_pointers_of_small_large_and_huge_blocks() {
    expect_abort(library(), "interior", "free", INTERIOR);
    expect_abort(library(), "interior-large", "free", INTERIOR);
    expect_abort(library(), "interior-huge", "free", INTERIOR);
}

const DOUBLE: &str = "double free (the block is already free)";

#[test]
fn double_free_in_a_row_of_a_small_block() {
    expect_abort(library(), "double-small", "free", DOUBLE);
}

#[test]
fn double_free_with_frees_in_between() {
    expect_abort(library(), "double-between", "free", DOUBLE);
}

#[test]
fn double_free_of_a_block_the_cache_passed_to_the_central_pool() {
    expect_abort(library(), "double-central", "free", DOUBLE);
}

/// The block waits in the cache of the thread that freed it, where the
/// second thread's search does not reach: its link names a block of its
/// class, which a live block's cleared first word does not.
#[test]
fn double_free_of_a_block_in_another_threads_cache() {
    expect_abort(library(), "double-other-cache", "free", DOUBLE);
}

#[test]
fn realloc_of_a_freed_block() {
    expect_abort(library(), "realloc-freed", "realloc", DOUBLE);
}

#[test]
fn free_of_a_block_never_handed_out() {
    expect_abort(
        library(),
        "never-allocated",
        "free",
        "pointer to a block that was never allocated",
    );
    expect_abort(library(), "cached-never-allocated", "free", DOUBLE);
}

#[test]
fn double_free_of_a_large_block() {
    expect_abort(
        library(),
        "double-large",
        "free",
        "double free (the block's pages are free)",
    );
}

#[test]
fn double_free_of_a_huge_block() {
    // Its mapping waits in the huge cache, recorded as freed.
    expect_abort(
        library(),
        "double-huge",
        "free",
        "double free (the block's pages are free)",
    );
}

#[test]
fn realloc_and_malloc_usable_size_check_their_pointer_too() {
    expect_abort(library(), "realloc-interior", "realloc", INTERIOR);
    expect_abort(library(), "usable-stack", "malloc_usable_size", FOREIGN);
}

/// Runs `invalid MODE` on `lib` and checks it aborted with slabpool's
/// free-list corruption message naming the block it printed.
fn expect_corruption(lib: &Path, mode: &str) {
    let (pointer, stderr) = run_aborting(lib, mode);
    let prefix = format!("slabpool: free-list corruption: the link in free block {pointer} ");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(&prefix) && l.ends_with("; aborting")),
        "{mode}: stderr lacks {prefix:?}:\n{stderr}"
    );
}

#[test]
fn a_free_list_link_overwritten_with_an_address_is_caught() {
    expect_corruption(library(), "link-static");
}

#[test]
fn a_free_list_link_overwritten_with_garbage_is_caught() {
    expect_corruption(library(), "link-garbage");
}

#[test]
fn a_free_list_link_with_a_flipped_bit_is_caught() {
    expect_corruption(library(), "link-bitflip-low");
    expect_corruption(library(), "link-bitflip-high");
    // Decodes to an aligned address in the user space, 1 GiB away: the C
    // door's malloc finds it outside every segment.
    expect_corruption(library(), "link-bitflip-30");
}

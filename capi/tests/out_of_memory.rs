//! Failure semantics of the OS, under `LD_PRELOAD` (issue 12, item 5):
//! requests the machine cannot back fail at once with NULL and ENOMEM (as
//! glibc's do). The program also runs on glibc, for comparison.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(300);

fn program(name: &str) -> PathBuf {
    let exe = scratch(&format!("oom-{name}")).join(name);
    compile(
        "cc",
        &[&format!("tests/c/{name}.c")],
        &["-O2", "-Wall"],
        &exe,
    );
    exe
}

#[test]
fn impossible_requests_fail_with_enomem() {
    if let Some(why) = kernel_would_back(1 << 40) {
        return skip("impossible_requests_fail_with_enomem", &why);
    }
    let exe = program("impossible");
    let glibc = run(Command::new(&exe), None, LIMIT);
    eprintln!("glibc:\n{}", text(&glibc.stdout));
    let ours = run(Command::new(&exe), Some(library()), LIMIT);
    eprintln!("slabpool:\n{}", text(&ours.stdout));
    assert_ok("impossible.c on slabpool", &ours);
    let stdout = text(&ours.stdout);
    assert!(
        stdout.contains("malloc(2^43): 0 of 15 succeeded"),
        "{stdout}"
    );
    assert!(stdout.contains("impossible: ok"), "{stdout}");
    // An alignment of 2^40 for 100 bytes can be backed: it costs the
    // block's two chunks of address space, not the alignment (glibc
    // reserves size plus alignment, and fails).
    let growth = field(&stdout, "aligned 2^40 small: ok")
        .unwrap_or_else(|| panic!("2^40-aligned 100 bytes failed:\n{stdout}"));
    assert!(growth <= 16 * 1024, "VmSize grew by {growth} KiB");
}

//! libslabpool.so for musl (`build-musl.sh`) under programs linked with
//! musl: every export and its edge cases, threads that exit, `fork` while
//! threads allocate, and requests no machine can back. Skipped, with the
//! reason, where the musl target or musl-gcc is missing (`.ci/run`
//! installs both before its musl step, which runs this file again).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

/// The musl library, built once per test binary, or why it cannot be.
fn musl_library() -> Result<&'static Path, String> {
    static LIB: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    LIB.get_or_init(|| {
        if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
            return Err("the musl library is built for x86_64 Linux".into());
        }
        if !have("musl-gcc") {
            return Err("no musl-gcc (Debian's musl-tools)".into());
        }
        let out = Command::new("sh")
            .arg(crate_dir().join("build-musl.sh"))
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("run build-musl.sh: {e}"))?;
        let stdout = text(&out.stdout);
        if !out.status.success() {
            return Err(format!("build-musl.sh failed: {}", out.status));
        }
        let lib = PathBuf::from(stdout.lines().last().unwrap_or_default());
        assert!(lib.is_file(), "build-musl.sh printed no library: {stdout}");
        Ok(lib)
    })
    .as_ref()
    .map(PathBuf::as_path)
    .map_err(Clone::clone)
}

/// `source` (under `tests/c/`) compiled with musl-gcc; `None` (the test
/// skipped) when there is no musl library.
fn musl_program(test: &str, source: &str, flags: &[&str]) -> Option<(PathBuf, &'static Path)> {
    let lib = match musl_library() {
        Ok(lib) => lib,
        Err(why) => {
            skip(test, &why);
            return None;
        }
    };
    let dir = scratch(&format!("musl-{source}"));
    let exe = dir.join(source);
    let mut all = vec!["-O2", "-pthread"];
    all.extend_from_slice(flags);
    compile("musl-gcc", &[&format!("tests/c/{source}.c")], &all, &exe);
    Some((exe, lib))
}

/// Whether `exe` is linked with musl: its interpreter is musl's loader.
fn linked_with_musl(exe: &Path) -> bool {
    let bytes = std::fs::read(exe).expect("read the program");
    bytes.windows(6).any(|w| w == b"ld-mus")
}

#[test]
fn every_export_and_edge_case_under_a_musl_program() {
    let Some((exe, lib)) = musl_program("musl api.c", "api", &["-ldl"]) else {
        return;
    };
    assert!(
        linked_with_musl(&exe),
        "{} is not a musl program",
        exe.display()
    );
    let out = run(Command::new(&exe), Some(lib), LIMIT);
    assert_api_passed("api.c (musl)", &out, lib);
}

#[test]
fn a_musl_program_s_exiting_threads_flush_their_caches() {
    let Some((exe, lib)) = musl_program("musl threads.c", "threads", &[]) else {
        return;
    };
    let mut cmd = Command::new(&exe);
    cmd.env("SLABPOOL_SHOW_STATS", "1");
    let out = run(cmd, Some(lib), LIMIT);
    assert_threads_flushed("threads.c (musl)", &out);
    // The statistics prove the preload served the program.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("slabpool statistics"), "{stderr}");
}

#[test]
fn a_musl_program_forks_while_its_threads_allocate() {
    let Some((exe, lib)) = musl_program("musl fork.c", "fork", &[]) else {
        return;
    };
    let out = run(Command::new(&exe), Some(lib), LIMIT);
    assert_ok("fork.c (musl)", &out);
    assert!(text(&out.stdout).contains("fork: 50 children ok"));
}

#[test]
fn a_musl_program_s_impossible_requests_fail_with_enomem() {
    // As on glibc (`out_of_memory.rs`), where the kernel would not back them.
    if let Some(why) = kernel_would_back(1 << 40) {
        return skip("musl impossible.c", &why);
    }
    let Some((exe, lib)) = musl_program("musl impossible.c", "impossible", &[]) else {
        return;
    };
    let out = run(Command::new(&exe), Some(lib), LIMIT);
    assert_impossible_failed("impossible.c (musl)", &out);
}

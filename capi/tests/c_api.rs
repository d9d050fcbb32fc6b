//! The C ABI from C and C++: every export and its edge cases (multi-threaded,
//! with content checks), the library linked instead of preloaded, C++
//! containers across threads, `fork` while threads allocate, the proof that
//! the preload is active, and the exported symbols.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

/// `api.c` under `lib`, checked for the library serving malloc and for its
/// closing line.
fn run_api(lib: &std::path::Path, dir: &str) {
    let dir = scratch(dir);
    let exe = dir.join("api");
    compile("cc", &["tests/c/api.c"], &["-O2", "-pthread", "-ldl"], &exe);
    let out = run(Command::new(&exe), Some(lib), LIMIT);
    assert_api_passed("api.c", &out, lib);
}

#[test]
fn every_export_and_edge_case_under_preload() {
    run_api(library(), "api");
}

#[test]
fn every_export_when_linked() {
    let lib = library();
    let libdir = lib.parent().expect("library directory");
    let dir = scratch("api-linked");
    let exe = dir.join("api");
    let libdir_flag = format!("-L{}", libdir.display());
    let rpath = format!("-Wl,-rpath,{}", libdir.display());
    compile(
        "cc",
        &["tests/c/api.c"],
        &[
            "-O2",
            "-pthread",
            &libdir_flag,
            &rpath,
            "-lslabpool",
            "-ldl",
        ],
        &exe,
    );
    let out = run(Command::new(&exe), None, LIMIT);
    assert_ok("api.c linked with -lslabpool", &out);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("libslabpool.so"), "{stdout}");
    assert!(stdout.contains("checks passed"), "{stdout}");
}

/// `tests/cpp/containers.cpp`, built in the scratch directory `name`.
fn containers(name: &str) -> std::path::PathBuf {
    let exe = scratch(name).join("containers");
    compile(
        "c++",
        &["tests/cpp/containers.cpp"],
        &["-O2", "-std=c++17", "-pthread", "-ldl"],
        &exe,
    );
    exe
}

#[test]
fn cpp_containers_across_threads_match_the_system_allocator() {
    let exe = containers("cpp");
    let ours = run(Command::new(&exe), Some(library()), LIMIT);
    assert_ok("containers.cpp on slabpool", &ours);
    let system = run(Command::new(&exe), None, LIMIT);
    assert_ok("containers.cpp on the system allocator", &system);
    let (ours, system) = (text(&ours.stdout), text(&system.stdout));
    assert!(ours.contains("libslabpool.so"), "{ours}");
    let result = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("containers: ok"))
            .map(String::from)
    };
    assert!(result(&ours).is_some(), "{ours}");
    assert_eq!(result(&ours), result(&system));
}

#[test]
fn cpp_operators_are_slabpools_with_the_runtimes_failure_semantics() {
    let exe = scratch("operators").join("operators");
    compile(
        "c++",
        &["tests/cpp/operators.cpp"],
        &["-O2", "-std=c++17", "-ldl"],
        &exe,
    );
    // The checks pass on the C++ runtime's own operators ...
    let system = run(Command::new(&exe), None, LIMIT);
    assert_ok("operators.cpp on the system allocator", &system);
    // ... and on slabpool's, which C++ programs then call (x86_64; elsewhere
    // the runtime's operators call slabpool's malloc and free).
    let ours = run(Command::new(&exe), Some(library()), LIMIT);
    assert_ok("operators.cpp on slabpool", &ours);
    let stdout = text(&ours.stdout);
    assert!(stdout.contains("operators: ok"), "{stdout}");
    if cfg!(target_arch = "x86_64") {
        assert!(
            stdout.contains("operator new from") && stdout.contains("libslabpool"),
            "{stdout}"
        );
    }
}

#[test]
fn fork_while_threads_allocate_does_not_deadlock() {
    let dir = scratch("fork");
    let exe = dir.join("fork");
    compile("cc", &["tests/c/fork.c"], &["-O2", "-pthread"], &exe);
    // The program kills a child stuck for 10 s and fails; the limit here
    // catches a parent that hangs.
    let out = run(Command::new(&exe), Some(library()), LIMIT);
    assert_ok("fork.c", &out);
    assert!(text(&out.stdout).contains("fork: 50 children ok"));
}

#[test]
fn exiting_threads_flush_their_caches() {
    let dir = scratch("threads");
    let exe = dir.join("threads");
    compile("cc", &["tests/c/threads.c"], &["-O2", "-pthread"], &exe);
    let mut cmd = Command::new(&exe);
    cmd.env("SLABPOOL_SHOW_STATS", "1");
    let out = run(cmd, Some(library()), LIMIT);
    assert_threads_flushed("threads.c", &out);
}

#[test]
fn show_stats_proves_the_preload_is_active() {
    let exe = containers("stats");
    let mut cmd = Command::new(&exe);
    cmd.env("SLABPOOL_SHOW_STATS", "1");
    let out = run(cmd, Some(library()), LIMIT);
    assert_ok("containers.cpp with SLABPOOL_SHOW_STATS=1", &out);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("slabpool statistics"), "{stderr}");
    assert!(stderr.contains("threads"), "{stderr}");
    // Without the preload, nothing reads the variable.
    let mut cmd = Command::new(&exe);
    cmd.env("SLABPOOL_SHOW_STATS", "1");
    let out = run(cmd, None, LIMIT);
    assert!(!text(&out.stderr).contains("slabpool"));
}

#[test]
fn exports_exactly_the_malloc_family_and_cpp_operators() {
    if !have("nm") {
        return skip(
            "exports_exactly_the_malloc_family_and_cpp_operators",
            "nm (binutils) not found",
        );
    }
    let out = Command::new("nm")
        .args(["-D", "--defined-only", "--format=posix"])
        .arg(library())
        .output()
        .expect("run nm");
    assert!(out.status.success());
    let mut names: Vec<String> = text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    names.sort();
    let mut expected = vec![
        "aligned_alloc",
        "calloc",
        "cfree",
        "free",
        "free_aligned_sized",
        "free_sized",
        "malloc",
        "malloc_stats",
        "malloc_trim",
        "malloc_usable_size",
        "memalign",
        "posix_memalign",
        "pvalloc",
        "realloc",
        "reallocarray",
        "valloc",
    ];
    // C++'s operator new and delete, every form (x86_64).
    if cfg!(target_arch = "x86_64") {
        expected.extend([
            "_ZdaPv",
            "_ZdaPvRKSt9nothrow_t",
            "_ZdaPvSt11align_val_t",
            "_ZdaPvSt11align_val_tRKSt9nothrow_t",
            "_ZdaPvm",
            "_ZdaPvmSt11align_val_t",
            "_ZdlPv",
            "_ZdlPvRKSt9nothrow_t",
            "_ZdlPvSt11align_val_t",
            "_ZdlPvSt11align_val_tRKSt9nothrow_t",
            "_ZdlPvm",
            "_ZdlPvmSt11align_val_t",
            "_Znam",
            "_ZnamRKSt9nothrow_t",
            "_ZnamSt11align_val_t",
            "_ZnamSt11align_val_tRKSt9nothrow_t",
            "_Znwm",
            "_ZnwmRKSt9nothrow_t",
            "_ZnwmSt11align_val_t",
            "_ZnwmSt11align_val_tRKSt9nothrow_t",
        ]);
    }
    // glibc's own names for its allocator (glibc only).
    if cfg!(target_env = "gnu") {
        expected.extend([
            "__libc_calloc",
            "__libc_free",
            "__libc_malloc",
            "__libc_memalign",
            "__libc_pvalloc",
            "__libc_realloc",
            "__libc_valloc",
            "mallinfo",
            "mallinfo2",
        ]);
    }
    expected.sort();
    assert_eq!(names, expected);
}

/// The library carries no Rust runtime (`runtime.rs`): it needs only the C
/// library (no `libgcc_s`, the unwinder std links), and none of std's
/// panic, backtrace or symbol-demangling code is in it. Each is pages that
/// every program under the preload would map and fault in.
#[test]
fn needs_only_the_c_library_and_no_rust_runtime() {
    // The no_std build is x86_64's (initial-exec TLS); glibc names its
    // library libc.so.6.
    if !cfg!(all(target_arch = "x86_64", target_env = "gnu")) {
        return skip(
            "needs_only_the_c_library_and_no_rust_runtime",
            "not x86_64 glibc",
        );
    }
    if !have("readelf") || !have("nm") {
        return skip(
            "needs_only_the_c_library_and_no_rust_runtime",
            "readelf or nm (binutils) not found",
        );
    }
    let out = Command::new("readelf")
        .arg("-d")
        .arg(library())
        .output()
        .expect("run readelf");
    assert!(out.status.success());
    let dynamic = text(&out.stdout);
    let needed: Vec<&str> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert_eq!(needed, ["libc.so.6"], "{dynamic}");
    let out = Command::new("nm").arg(library()).output().expect("run nm");
    assert!(out.status.success());
    let symbols = text(&out.stdout);
    // The unwinder's entry points, and the crates of std's backtrace
    // printer (in the mangled names of their functions).
    for runtime in ["_Unwind_", "gimli", "addr2line", "rustc_demangle"] {
        assert!(
            !symbols.contains(runtime),
            "the library holds std's runtime ({runtime})"
        );
    }
}

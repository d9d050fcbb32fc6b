//! A Rust `cdylib` whose global allocator is slabpool, in a plugin host:
//! `tests/c/dlclose.c` dlopens the plugin (`tests/plugin`), calls it from four threads that stay alive, dlcloses
//! it, forks, lets the threads exit (each runs slabpool's thread-exit
//! destructor), forks again, and opens and closes the plugin once more.
//! Without the pin (`pin_library` in src/global.rs) the threads' exit runs
//! the destructor of an unmapped library: SIGSEGV in
//! `__nptl_deallocate_tsd`.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

/// `dlclose.c`, built once.
fn host() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = scratch("dlclose").join("dlclose");
        compile(
            "cc",
            &["tests/c/dlclose.c"],
            &["-O2", "-Wall", "-pthread", "-ldl"],
            &exe,
        );
        exe
    })
}

fn check(what: &str, out: &std::process::Output) {
    assert_ok(what, out);
    let stdout = text(&out.stdout);
    for line in [
        "dlclose with the threads alive: ok",
        "fork after dlclose, threads alive: ok",
        "threads exited after dlclose: ok",
        "fork after the last dlclose: ok",
        // Pinned: the plugin stays mapped with its heap.
        "unloaded: no",
        "dlclose: ok",
    ] {
        assert!(stdout.contains(line), "{what}: no {line:?} in\n{stdout}");
    }
}

#[test]
fn threads_exit_and_fork_after_the_plugin_is_closed() {
    let mut cmd = Command::new(host());
    cmd.arg(plugin());
    check("dlclose.c on glibc", &run(cmd, None, LIMIT));
}

#[test]
fn plugin_closed_in_a_host_running_on_libslabpool() {
    // The host's C malloc is the C library (another slabpool, which never
    // pins itself); the plugin's Rust allocator is its own instance.
    let mut cmd = Command::new(host());
    cmd.arg(plugin());
    check(
        "dlclose.c under LD_PRELOAD",
        &run(cmd, Some(library()), LIMIT),
    );
}

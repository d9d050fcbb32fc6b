//! Cache lines shared between threads, measured by `c/linecount.c` (a probe
//! that works under any allocator): two threads that never exchange a block
//! must never be handed blocks on the same 64-byte line, on glibc as on
//! slabpool, at any time in the run. With a producer and a consumer the
//! sharing is the program's own and is only reported. The probe also runs
//! under every library listed in `LINE_SHARING_ALLOCATORS` (comma-separated
//! paths), to compare peers:
//!
//! ```sh
//! LINE_SHARING_ALLOCATORS=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
//!     cargo test -p slabpool-capi --test line_sharing -- --nocapture
//! ```

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// A probe run takes well under a second with its defaults (it is built
/// with `-O2` whatever the test profile).
const LIMIT: Duration = Duration::from_secs(60);

/// The probe, compiled once per test binary.
fn probe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = scratch("line-sharing").join("linecount");
        compile("cc", &["c/linecount.c"], &["-O2", "-pthread"], &exe);
        exe
    })
}

/// What one probe run printed.
struct Counts {
    total: u64,
    shared: u64,
    malloc_from: String,
    line: String,
}

/// Runs the probe in `mode` (default parameters: 2 threads, 4,000,000
/// mallocs each) on `lib` (none: the system allocator).
fn measure(lib: Option<&Path>, mode: &str) -> Counts {
    // One probe at a time: the machine may have two cores only.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let exe = probe();
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut cmd = Command::new(exe);
    cmd.arg(mode);
    let out = run(cmd, lib, LIMIT);
    let who = lib.map_or("the system allocator".into(), |l| l.display().to_string());
    assert_ok(&format!("linecount {mode} on {who}"), &out);
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("mode="))
        .unwrap_or_else(|| panic!("no result line from linecount:\n{stdout}"))
        .to_string();
    let field = |key: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in: {line}"))
    };
    let (total, shared) = (field("lines_total"), field("lines_shared"));
    // Last on the line, and a path may hold spaces.
    let malloc_from = line
        .split_once(" malloc_from=")
        .map(|(_, path)| path.to_string())
        .unwrap_or_else(|| panic!("no malloc_from in: {line}"));
    assert!(total > 0, "no line recorded: {line}");
    assert!(shared <= total, "more shared lines than lines: {line}");
    eprintln!("{who}: {line}");
    Counts {
        total,
        shared,
        malloc_from,
        line,
    }
}

/// Asserts that `lib`'s `malloc` served the probe (a preload that the
/// loader ignored would measure glibc instead).
fn assert_served_by(lib: &Path, c: &Counts) {
    let lib = lib
        .canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e}", lib.display()));
    assert_eq!(
        Path::new(&c.malloc_from),
        lib,
        "malloc was not served by the preloaded library: {}",
        c.line
    );
}

#[test]
fn independent_threads_share_no_line_on_glibc() {
    let c = measure(None, "independent");
    assert!(c.malloc_from.contains("libc.so"), "{}", c.line);
    assert_eq!(
        c.shared, 0,
        "glibc handed two threads that exchange no block the same cache line: {}",
        c.line
    );
}

#[test]
fn independent_threads_share_no_line_on_slabpool() {
    let c = measure(Some(library()), "independent");
    assert_served_by(library(), &c);
    assert_eq!(
        c.shared, 0,
        "slabpool handed two threads that exchange no block the same cache line \
         ({} of {} lines): {}",
        c.shared, c.total, c.line
    );
}

#[test]
fn producer_consumer_sharing_is_reported() {
    // The consumer frees the producer's blocks: sharing lines is the
    // program's doing, so only the counts' sanity is checked (in measure).
    measure(None, "producer-consumer");
    let c = measure(Some(library()), "producer-consumer");
    assert_served_by(library(), &c);
}

#[test]
fn allocators_from_the_environment() {
    let Ok(list) = std::env::var("LINE_SHARING_ALLOCATORS") else {
        return skip(
            "allocators_from_the_environment",
            "LINE_SHARING_ALLOCATORS not set (comma-separated paths of allocator libraries)",
        );
    };
    for lib in list.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        let lib = Path::new(lib);
        for mode in ["independent", "producer-consumer"] {
            // Counts are printed, not judged: this compares peers.
            let c = measure(Some(lib), mode);
            assert_served_by(lib, &c);
        }
    }
}

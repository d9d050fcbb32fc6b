//! Helpers for the C ABI tests: build `libslabpool.so` (once per test
//! binary), compile C and C++ programs with the system compilers, and run
//! programs with and without the library preloaded.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The directory of this crate (`capi/`).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the library in release mode (the profile that aborts on panic)
/// with `features`, in its own target directory when `dir` is given, and
/// returns the path of `libslabpool.so` as cargo reports it.
fn build(features: &str, dir: Option<&str>) -> PathBuf {
    build_cdylib("slabpool-capi", "slabpool", features, dir)
}

/// The test plugin (`capi/tests/plugin`): a Rust cdylib whose global
/// allocator is slabpool, built on its own (so slabpool has none of the C
/// library's features) in release mode.
pub fn plugin() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        build_cdylib(
            "slabpool-plugin-fixture",
            "slabpool_plugin_fixture",
            "",
            None,
        )
    })
}

/// Builds package `package` in release mode and returns the shared object
/// of its target `target` as cargo reports it.
fn build_cdylib(package: &str, target: &str, features: &str, dir: Option<&str>) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(crate_dir())
        .args(["build", "--release", "-p", package])
        .args(["--message-format", "json-render-diagnostics"]);
    if !features.is_empty() {
        cmd.args(["--features", features]);
    }
    if let Some(dir) = dir {
        cmd.arg("--target-dir").arg(target_dir().join(dir));
    }
    let out = cmd.stderr(Stdio::inherit()).output().expect("run cargo");
    assert!(out.status.success(), "cargo build of {package} failed");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact" && msg["target"]["name"] == target {
            for f in msg["filenames"].as_array().expect("filenames") {
                let f = f.as_str().expect("path");
                if f.ends_with(&format!("lib{target}.so")) {
                    return PathBuf::from(f);
                }
            }
        }
    }
    panic!("cargo reported no lib{target}.so");
}

/// The workspace's target directory.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => crate_dir().join("..").join("target"),
    }
}

/// `target/release/libslabpool.so`, the default build.
pub fn library() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| build("", None))
}

/// The library built with the `hardened` feature (its own target directory,
/// `target/capi-hardened/`), as `libslabpool-hardened.so` beside the
/// `libslabpool.so` cargo wrote (copied, then renamed into place, so a
/// process that has the previous copy mapped is never disturbed).
pub fn hardened_library() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let built = build("hardened", Some("capi-hardened"));
        let named = built.with_file_name("libslabpool-hardened.so");
        let partial = built.with_file_name(format!(
            "libslabpool-hardened.so.partial-{}",
            std::process::id()
        ));
        std::fs::copy(&built, &partial).expect("copy the hardened library");
        std::fs::rename(&partial, &named).expect("rename the hardened library");
        named
    })
}

/// Debian's packaged allocators that the hardening table compares with:
/// (column name, library file, Debian package).
pub const PEER_LIBRARIES: [(&str, &str, &str); 3] = [
    ("jemalloc", "libjemalloc.so.2", "libjemalloc2"),
    ("mimalloc", "libmimalloc.so.2", "libmimalloc2.0"),
    (
        "tcmalloc",
        "libtcmalloc_minimal.so.4",
        "libtcmalloc-minimal4",
    ),
];

/// The path of the installed shared library `file` (such as
/// `libjemalloc.so.2`) in the system's library directories, if any.
pub fn installed_library(file: &str) -> Option<PathBuf> {
    let arch = std::env::consts::ARCH;
    [
        format!("/usr/lib/{arch}-linux-gnu"),
        format!("/lib/{arch}-linux-gnu"),
        "/usr/lib64".to_string(),
        "/usr/lib".to_string(),
        "/usr/local/lib".to_string(),
    ]
    .iter()
    .map(|dir| Path::new(dir).join(file))
    .find(|path| path.is_file())
}

/// A scratch directory for one test, emptied first.
pub fn scratch(name: &str) -> PathBuf {
    let dir = target_dir().join("capi-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Compiles `sources` (relative to `capi/`) with `compiler` (`cc` or `c++`)
/// and `flags` into `out`.
pub fn compile(compiler: &str, sources: &[&str], flags: &[&str], out: &Path) {
    let mut cmd = Command::new(compiler);
    for s in sources {
        cmd.arg(crate_dir().join(s));
    }
    let status = cmd
        .args(flags)
        .arg("-o")
        .arg(out)
        .status()
        .unwrap_or_else(|e| panic!("run {compiler}: {e}"));
    assert!(status.success(), "{compiler} failed on {sources:?}");
}

/// Whether `program` can be run (found on PATH and starts).
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Prints why a test is skipped (shown with `--nocapture`, and in CI logs).
pub fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
}

/// Runs `cmd` with `lib` preloaded (none: the system allocator), killing it
/// and failing after `limit`.
pub fn run(mut cmd: Command, lib: Option<&Path>, limit: Duration) -> Output {
    match lib {
        Some(lib) => cmd.env("LD_PRELOAD", lib),
        None => cmd.env_remove("LD_PRELOAD"),
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    // Drain the pipes on threads so a chatty child never blocks on them.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut v).map(|_| v)
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut v).map(|_| v)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {limit:?}: killed (deadlock?)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader").expect("read stdout"),
        stderr: err.join().expect("stderr reader").expect("read stderr"),
    }
}

/// Text of a child's stream, for messages and checks.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts `out` is a clean exit, showing its output otherwise.
pub fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        tail(&out.stdout),
        tail(&out.stderr)
    );
}

fn tail(bytes: &[u8]) -> String {
    let t = text(bytes);
    let start = t.len().saturating_sub(4000);
    let start = (start..t.len())
        .find(|&i| t.is_char_boundary(i))
        .unwrap_or(t.len());
    t[start..].to_string()
}

/// Runs `cmd` as [`run`] does, under an address-space limit of `kib` KiB
/// (`ulimit -v`: `RLIMIT_AS`, set in the child before `exec`).
pub fn run_limited(mut cmd: Command, lib: Option<&Path>, kib: u64, limit: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    let bytes = kib * 1024;
    // SAFETY: the closure runs in the forked child before `exec` and only
    // calls `setrlimit`, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    run(cmd, lib, limit)
}

/// Why the kernel would back a mapping of `bytes` bytes that no process
/// could ever use (overcommit mode 1, or that much RAM and swap), if it
/// would: tests that need such requests to fail are skipped then.
pub fn kernel_would_back(bytes: u64) -> Option<String> {
    let mode = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap_or_default();
    if mode.trim() == "1" {
        return Some("vm.overcommit_memory is 1 (always overcommit)".into());
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let total = (kib("MemTotal:") + kib("SwapTotal:")) * 1024;
    (total >= bytes).then(|| format!("{total} bytes of RAM and swap"))
}

/// The value of the line `key value` of a child's output.
pub fn field(out: &str, key: &str) -> Option<u64> {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Checks that a child that printed `pointer <p>` before its misuse died
/// of SIGABRT; returns that pointer and its stderr (for the caller to
/// check slabpool's message).
pub fn aborted_after_pointer(mode: &str, out: &Output) -> (String, String) {
    use std::os::unix::process::ExitStatusExt;
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    let pointer = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pointer "))
        .unwrap_or_else(|| panic!("{mode}: no pointer printed:\n{stdout}\n{stderr}"))
        .to_string();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{mode}: expected SIGABRT, got {}\n{stdout}\n{stderr}",
        out.status
    );
    (pointer, stderr)
}

/// Checks a run of `api.c` under `lib` (`what` names it): a clean exit, the
/// library serving malloc, the closing line, and slabpool's statistics
/// from `malloc_stats` on stderr.
pub fn assert_api_passed(what: &str, out: &Output, lib: &Path) {
    assert_ok(what, out);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("malloc from: {}", lib.display())),
        "malloc is not served by {}:\n{stdout}",
        lib.display()
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("slabpool statistics"),
        "malloc_stats did not print slabpool's statistics:\n{stderr}"
    );
}

/// Checks a run of `threads.c` with `SLABPOOL_SHOW_STATS=1` (`what` names
/// it): a clean exit, a peak RSS that shows the exiting threads' caches
/// were flushed (about 18 MB; 118 MB when they strand their caches), and
/// only the main thread left registered at exit.
pub fn assert_threads_flushed(what: &str, out: &Output) {
    assert_ok(what, out);
    let stdout = text(&out.stdout);
    let peak_kib: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("peak rss "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak rss line: {stdout}"));
    assert!(
        peak_kib < 64 * 1024,
        "peak RSS {peak_kib} KiB: caches stranded?"
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("threads 1\n"), "{stderr}");
}

/// Checks a run of `impossible.c` on slabpool (`what` names it): a clean
/// exit, no 8 TiB `malloc` succeeding, and the closing line.
pub fn assert_impossible_failed(what: &str, out: &Output) {
    assert_ok(what, out);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("malloc(2^43): 0 of 15 succeeded"),
        "{stdout}"
    );
    assert!(stdout.contains("impossible: ok"), "{stdout}");
}

//! Real programs under `LD_PRELOAD`: python3 (`PYTHONMALLOC=malloc`, so
//! every object is a C allocation) building and freeing millions of objects
//! across threads, git on a repository it creates, and sort of a large
//! generated file. Each output is compared with the same program's output
//! on the system allocator. A program missing on the machine is skipped
//! with a notice.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(180);

/// The real python3 executable (not a wrapper script such as pyenv's shim).
fn python() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    let path = text(&out.stdout).trim().to_string();
    (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
}

#[test]
fn python_objects_across_threads() {
    let Some(python) = python() else {
        return skip("python_objects_across_threads", "python3 not found");
    };
    let script = crate_dir().join("tests/py/workload.py");
    let cmd = || {
        let mut c = Command::new(&python);
        c.arg(&script).env("PYTHONMALLOC", "malloc");
        c
    };
    let mut ours = cmd();
    ours.env("SLABPOOL_SHOW_STATS", "1");
    let ours = run(ours, Some(library()), LIMIT);
    assert_ok("workload.py on slabpool", &ours);
    let system = run(cmd(), None, LIMIT);
    assert_ok("workload.py on the system allocator", &system);
    let (out, expected) = (text(&ours.stdout), text(&system.stdout));
    assert!(out.contains("total: "), "{out}");
    assert_eq!(out, expected);
    // The preload was active: slabpool printed its statistics at exit,
    // having served four worker threads and the main one.
    let stderr = text(&ours.stderr);
    assert!(stderr.contains("slabpool statistics"), "{stderr}");
}

/// Runs the same git session in `dir` on `lib` (or the system allocator)
/// and returns everything it printed.
fn git_session(dir: &Path, lib: Option<&Path>) -> String {
    fs::create_dir_all(dir).expect("repo dir");
    let home = dir.join("home");
    fs::create_dir_all(&home).expect("home dir");
    let git = |args: &[&str]| {
        let mut c = Command::new("git");
        c.args(args)
            .current_dir(dir)
            .env("HOME", &home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Slab Pool")
            .env("GIT_AUTHOR_EMAIL", "slab@pool.invalid")
            .env("GIT_COMMITTER_NAME", "Slab Pool")
            .env("GIT_COMMITTER_EMAIL", "slab@pool.invalid")
            .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
            .env("LC_ALL", "C")
            .env("TZ", "UTC");
        let out = run(c, lib, LIMIT);
        assert_ok(&format!("git {args:?}"), &out);
        text(&out.stdout)
    };
    let mut log = String::new();
    git(&["init", "-q", "-b", "main", "."]);
    for commit in 0..12u64 {
        for f in 0..25u64 {
            let mut body = String::new();
            for line in 0..(40 + (f * 7 + commit * 3) % 200) {
                let v = (line * 2_654_435_761 + f * 97 + commit * (f % 3)) % 100_000;
                body.push_str(&format!("file {f} line {line}: value {v}\n"));
            }
            let sub = dir.join(format!("dir{}", f % 4));
            fs::create_dir_all(&sub).expect("subdir");
            fs::write(sub.join(format!("f{f}.txt")), body).expect("write");
        }
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", &format!("commit {commit}")]);
        if commit == 6 {
            git(&["checkout", "-q", "-b", "side"]);
        }
    }
    git(&["checkout", "-q", "main"]);
    for args in [
        &["log", "--stat", "--all"][..],
        &["diff", "main", "side", "--stat"],
        &["log", "-p", "-3", "side"],
        &["grep", "-c", "value 4"],
        // One thread: a threaded delta search may pick other deltas from
        // run to run, and the pack's size with them.
        &["-c", "pack.threads=1", "gc", "-q"],
        &["fsck", "--no-progress"],
        &["count-objects", "-v"],
        &["rev-list", "--objects", "--all"],
    ] {
        log.push_str(&format!("$ git {}\n", args.join(" ")));
        let out = git(args);
        // Sizes on disk depend on nothing but contents; keep them.
        log.push_str(&out);
    }
    log
}

#[test]
fn git_on_a_repository_it_creates() {
    if !have("git") {
        return skip("git_on_a_repository_it_creates", "git not found");
    }
    let dir = scratch("git");
    let ours = git_session(&dir.join("slabpool"), Some(library()));
    let system = git_session(&dir.join("system"), None);
    assert!(ours.contains("commit 11"), "{ours}");
    assert_eq!(ours, system);
}

#[test]
fn sort_of_a_large_file() {
    if !have("sort") {
        return skip("sort_of_a_large_file", "sort not found");
    }
    let dir = scratch("sort");
    let input = dir.join("input.txt");
    let mut data = String::with_capacity(40 << 20);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let lines = 1_000_000;
    for i in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let width = 1 + (x >> 59) as usize;
        data.push_str(&format!("{:0width$x} {i}\n", x >> 20, width = width));
    }
    fs::write(&input, &data).expect("write input");
    let sort = |lib: Option<&Path>, out: &str| {
        let mut c = Command::new("sort");
        // A small buffer forces temporary files and merges; two threads.
        c.args(["-S", "4M", "--parallel=2", "-T"])
            .arg(&dir)
            .arg("-o")
            .arg(dir.join(out))
            .arg(&input)
            .env("LC_ALL", "C");
        let status = run(c, lib, LIMIT);
        assert_ok("sort", &status);
        fs::read(dir.join(out)).expect("read sorted")
    };
    let ours = sort(Some(library()), "ours.txt");
    let system = sort(None, "system.txt");
    assert!(
        ours == system,
        "sort output differs from the system allocator's"
    );
    let ours = String::from_utf8(ours).expect("utf-8");
    let sorted: Vec<&str> = ours.lines().collect();
    assert_eq!(sorted.len(), lines);
    assert!(
        sorted
            .windows(2)
            .all(|w| w[0].as_bytes() <= w[1].as_bytes())
    );
}

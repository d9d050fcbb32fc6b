//! How each allocator is identified in the report: crate versions from
//! `cargo metadata`, the C library's own version where the crate carries
//! it, the glibc version for System and the git commit for slabpool.

use crate::allocators::Allocator;
use crate::cargo::Workspace;
use crate::sysinfo;
use std::path::Path;
use std::process::Command;

/// A one-line identification of `a` as built for `target` (`None`: the
/// host).
pub fn describe(a: &Allocator, ws: &Workspace, target: Option<&str>) -> String {
    let Some((first, rest)) = a.crates.split_first() else {
        return match target {
            // Rust's musl targets link the musl they ship, statically.
            Some(t) if t.contains("musl") => format!("musl's malloc ({t}, static)"),
            Some(t) => format!("the C library's malloc ({t})"),
            None => sysinfo::glibc(),
        };
    };
    let mut s = match ws.crates.get(*first) {
        Some((v, _)) => format!("{first} {v}"),
        None => format!("{first} (version unknown)"),
    };
    if *first == "slabpool"
        && let Some(commit) = git_commit(&ws.root)
    {
        s.push_str(&format!(" (git {commit})"));
    }
    for name in rest {
        let Some((v, dir)) = ws.crates.get(*name) else {
            continue;
        };
        let c = c_version(name, v, dir)
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        s.push_str(&format!(" ({name} {v}{c})"));
    }
    if !a.note.is_empty() {
        s.push_str(&format!(", {}", a.note));
    }
    s
}

/// The C library's version: mimalloc's header, or a -sys crate's build
/// metadata (`0.7.1+5.3.1-0-g81034ce` is jemalloc 5.3.1).
fn c_version(name: &str, version: &str, dir: &Path) -> Option<String> {
    if name == "libmimalloc-sys" {
        return mimalloc_header_version(dir);
    }
    let meta = version.split_once('+')?.1;
    let lib = name.trim_end_matches("-sys").trim_start_matches("tikv-");
    Some(format!("{lib} {}", meta.split('-').next()?))
}

/// `MI_MALLOC_VERSION` from the vendored header the crate builds (v3 unless
/// its `v2` feature is on, which we do not use).
fn mimalloc_header_version(dir: &Path) -> Option<String> {
    let candidates = [
        "c_src/mimalloc/v3/include/mimalloc.h",
        "c_src/mimalloc/include/mimalloc.h",
    ];
    let text = candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(dir.join(p)).ok())?;
    let n: u32 = text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("#define MI_MALLOC_VERSION")?;
        rest.split_whitespace().next()?.parse().ok()
    })?;
    Some(format!(
        "mimalloc {}.{}.{}",
        n / 10_000,
        n / 100 % 100,
        n % 100
    ))
}

/// The short commit of the workspace, with `+dirty` for local changes.
fn git_commit(root: &Path) -> Option<String> {
    let run = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "--short", "HEAD"])?;
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty {
        format!("{commit}+dirty")
    } else {
        commit
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_versions_from_build_metadata() {
        let d = Path::new("/nonexistent");
        assert_eq!(
            c_version("tikv-jemalloc-sys", "0.7.1+5.3.1-0-g81034ce", d).as_deref(),
            Some("jemalloc 5.3.1")
        );
        assert_eq!(
            c_version("rpmalloc-sys", "0.2.3+b097fd0", d).as_deref(),
            Some("rpmalloc b097fd0")
        );
        assert_eq!(c_version("snmalloc-sys", "0.7.6", d), None);
    }
}

//! Talking to cargo: where the workspace and its target directory are,
//! which crate versions are in use, and building the workload binaries
//! (release profile) so `cargo run -p slabpool-compare` needs no manual step.

use serde::Deserialize;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The cargo that started us (`cargo run` sets `CARGO`), else `cargo`.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The workspace root: compare/ is one of its members.
pub fn workspace_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("Cargo.toml")
}

#[derive(Deserialize)]
struct Metadata {
    target_directory: PathBuf,
    workspace_root: PathBuf,
    packages: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    version: String,
    manifest_path: PathBuf,
}

/// What `cargo metadata` tells us.
pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    /// Crate name to (version, directory of its manifest).
    pub crates: HashMap<String, (String, PathBuf)>,
}

/// Runs `cargo metadata` on the workspace (all features, so the peers'
/// crates are listed too).
pub fn workspace() -> Result<Workspace, String> {
    let out = cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--all-features",
            "--manifest-path",
        ])
        .arg(workspace_manifest())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed: {}", out.status));
    }
    let m: Metadata =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    let crates = m
        .packages
        .into_iter()
        .map(|p| {
            let dir = p
                .manifest_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            (p.name, (p.version, dir))
        })
        .collect();
    Ok(Workspace {
        root: m.workspace_root,
        target_dir: m.target_directory,
        crates,
    })
}

/// The peers' C/C++ code is built as its projects' own release builds
/// would be. The workspace's release profile has `debug = 1`, which cargo
/// passes to build scripts as `DEBUG=true`; with it the `cc` crate adds
/// `-g` and forces frame pointers, libmimalloc-sys leaves out NDEBUG and
/// MI_BUILD_RELEASE, and snmalloc-sys picks its Debug build type. So the
/// build turns debug info off for these -sys packages only (a profile
/// override on the command line, leaving Cargo.toml alone).
const NO_DEBUG_FOR: [&str; 4] = [
    "libmimalloc-sys",
    "tikv-jemalloc-sys",
    "snmalloc-sys",
    "rpmalloc-sys",
];

/// snmalloc-sys's `build_cc` path never defines NDEBUG on Linux (its cmake
/// path does, for Release), which leaves snmalloc's assertions on; the
/// `cc` crate appends `CXXFLAGS` from the environment to every C++ compile.
/// snmalloc is the only C++ among the peers.
fn cxxflags() -> String {
    match std::env::var("CXXFLAGS") {
        Ok(v) if !v.trim().is_empty() => format!("{v} -DNDEBUG"),
        _ => "-DNDEBUG".to_string(),
    }
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    executable: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
}

/// Builds the given workload binaries in release (with the given features:
/// the peers' `peer-*`; for `target` if given, else the host) and returns
/// their paths by binary name. Cargo's progress and diagnostics go to our
/// stderr.
pub fn build_bins(
    bins: &[&str],
    features: &[&str],
    target: Option<&str>,
) -> Result<HashMap<String, PathBuf>, String> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "-p", "slabpool-compare"])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(workspace_manifest())
        .env("CXXFLAGS", cxxflags())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
        for p in NO_DEBUG_FOR {
            cmd.arg("--config")
                .arg(format!("profile.release.package.{p}.debug=0"));
        }
    }
    for b in bins {
        cmd.args(["--bin", b]);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run cargo build: {e}"))?;
    let mut found = HashMap::new();
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading cargo output: {e}"))?;
        let Ok(msg) = serde_json::from_str::<Message>(&line) else {
            continue;
        };
        if let (true, Some(t), Some(exe)) = (
            msg.reason == "compiler-artifact",
            msg.target,
            msg.executable,
        ) {
            found.insert(t.name, exe);
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo build: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build of the workload binaries failed: {status}"
        ));
    }
    match bins.iter().find(|b| !found.contains_key(**b)) {
        Some(missing) => Err(format!("cargo build did not report the binary {missing}")),
        None => Ok(found),
    }
}

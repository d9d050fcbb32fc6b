//! The columns a run compares: each selected allocator's freshly built
//! workload binary, then each `--extra` binary, with the name and the
//! version line the reports show.

use crate::allocators::Allocator;
use crate::cargo::Workspace;
use crate::extra::Extra;
use crate::model::AllocatorInfo;
use crate::{sysinfo, versions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// One column: a name, the binary that runs its workloads, its version,
/// the environment of its runs.
#[derive(Clone, Debug, Default)]
pub struct Contender {
    pub name: String,
    pub exe: PathBuf,
    pub version: String,
    pub env: Vec<(String, String)>,
}

/// How reports name the contenders.
pub fn infos(contenders: &[Contender]) -> Vec<AllocatorInfo> {
    contenders
        .iter()
        .map(|c| AllocatorInfo {
            name: c.name.clone(),
            version: c.version.clone(),
        })
        .collect()
}

/// The allocators (their binaries from `built`, by binary name, for
/// `target`) and the extras, in that order.
pub fn resolve(
    allocators: &[&Allocator],
    extras: &[Extra],
    built: &HashMap<String, PathBuf>,
    ws: &Workspace,
    target: Option<&str>,
) -> Vec<Contender> {
    let built_ones = allocators.iter().map(|a| Contender {
        name: a.name.to_string(),
        exe: built[a.bin].clone(),
        version: versions::describe(a, ws, target),
        env: a
            .env
            .iter()
            .map(|&(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    });
    let extra_ones = extras.iter().map(|e| Contender {
        name: e.name.clone(),
        exe: e.path.clone(),
        version: describe_extra(&e.path),
        env: Vec::new(),
    });
    built_ones.chain(extra_ones).collect()
}

/// "prebuilt /path (modified <date>)".
fn describe_extra(path: &Path) -> String {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| format!(" (modified {})", sysinfo::format_utc(d.as_secs())))
        .unwrap_or_default();
    format!("prebuilt {}{modified}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_are_described_by_path_and_date() {
        let d = describe_extra(Path::new("/bin/sh"));
        assert!(d.starts_with("prebuilt /bin/sh (modified "), "{d}");
        assert_eq!(
            describe_extra(Path::new("/nonexistent")),
            "prebuilt /nonexistent"
        );
    }
}

//! `--extra NAME=PATH`: a prebuilt workload binary (for example
//! `wl-slabpool` built from an older commit) run as one more allocator
//! column called NAME, beside the binaries the driver builds. It must speak
//! the same child protocol; what an older build does not know shows in its
//! cells (see `measure.rs` and the reports), it does not stop the run.

use crate::allocators;
use std::path::PathBuf;

/// One `--extra` binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extra {
    /// Its column name in the reports.
    pub name: String,
    /// The workload binary.
    pub path: PathBuf,
}

/// Parses `NAME=PATH`; `taken` are the names already in use (the
/// allocators and earlier extras).
pub fn parse(arg: &str, taken: &[String]) -> Result<Extra, String> {
    let Some((name, path)) = arg.split_once('=') else {
        return Err(format!("--extra: expected NAME=PATH, got {arg:?}"));
    };
    let name = name.trim();
    if name.is_empty() || path.is_empty() {
        return Err(format!("--extra: expected NAME=PATH, got {arg:?}"));
    }
    if name.contains(['|', ',', '=']) || name.chars().any(char::is_control) {
        return Err(format!("--extra: {name:?} cannot be a column name"));
    }
    let clash =
        allocators::find(name).is_some() || taken.iter().any(|t| t.eq_ignore_ascii_case(name));
    if clash {
        return Err(format!(
            "--extra: the name {name:?} is already taken (allocators: {}; give the extra binary another name)",
            allocators::ALL
                .iter()
                .map(|a| a.name)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(Extra {
        name: name.to_string(),
        path: PathBuf::from(path),
    })
}

/// Checks that every extra binary exists and is executable, before
/// anything is built or run.
pub fn check(extras: &[Extra]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    for e in extras {
        let meta = std::fs::metadata(&e.path)
            .map_err(|err| format!("--extra {}: {}: {err}", e.name, e.path.display()))?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(format!(
                "--extra {}: {} is not an executable file",
                e.name,
                e.path.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let e = parse("base=/tmp/base/wl-slabpool", &[]).unwrap();
        assert_eq!(e.name, "base");
        assert_eq!(e.path, PathBuf::from("/tmp/base/wl-slabpool"));
        // A path may itself contain '='.
        assert_eq!(parse("b=/x=y", &[]).unwrap().path, PathBuf::from("/x=y"));
        assert!(parse("base", &[]).is_err());
        assert!(parse("=/x", &[]).is_err());
        assert!(parse("base=", &[]).is_err());
        assert!(parse("a|b=/x", &[]).is_err());
        // Allocator names and names already given are taken.
        assert!(parse("slabpool=/x", &[]).is_err());
        assert!(parse("SYSTEM=/x", &[]).is_err());
        assert!(parse("Base=/y", &["base".to_string()]).is_err());
    }

    #[test]
    fn checks_the_binaries() {
        let ok = |p: &str| {
            check(&[Extra {
                name: "x".into(),
                path: p.into(),
            }])
        };
        assert!(ok("/bin/sh").is_ok());
        assert!(ok("/nonexistent/wl").is_err());
        assert!(ok("/").is_err());
        use std::os::unix::fs::PermissionsExt;
        let plain =
            std::env::temp_dir().join(format!("slabpool-compare-extra-{}", std::process::id()));
        std::fs::write(&plain, "not a program").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(ok(plain.to_str().unwrap()).is_err());
        let _ = std::fs::remove_file(&plain);
    }
}

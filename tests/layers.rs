//! The layering rule of `src/lib.rs`: a module uses only modules listed
//! before it in the crate documentation's "Layers" list. Reads that list
//! and the `crate::` paths of every file of every module (`src/m.rs` or
//! `src/m/mod.rs` and the files under `src/m/`, outside unit tests and
//! comments) and fails on an edge to a module listed later, on a module
//! missing from the list, and on a listed module that does not exist.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// The modules in the order `lib.rs` lists them (an item may name two).
fn stated_order(lib: &str) -> Vec<Vec<String>> {
    let mut levels = Vec::new();
    let mut in_list = false;
    for line in lib.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.trim();
        if doc.starts_with("## Layers") {
            in_list = true;
            continue;
        }
        if !in_list {
            continue;
        }
        if doc.starts_with("## ") {
            break;
        }
        let Some((number, rest)) = doc.split_once(". ") else {
            continue;
        };
        if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        // The names before the colon: `a`, `b`: ...
        let head = rest.split(':').next().unwrap_or("");
        let names: Vec<String> = head
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        assert!(!names.is_empty(), "no module named in layer item {doc:?}");
        levels.push(names);
    }
    levels
}

/// The files of module `name`: `src/name.rs` or `src/name/mod.rs`, and
/// every file under `src/name/` but unit tests (`tests.rs`).
fn files_of(src: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut files = vec![src.join(format!("{name}.rs"))];
    let mut dirs = vec![src.join(name)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|f| f != "tests.rs")
            {
                files.push(path);
            }
        }
    }
    files.retain(|f| f.exists());
    files
}

/// The modules `path`'s code names as `crate::x` (its `mod tests` and
/// comments left out).
fn uses(path: &Path) -> BTreeSet<String> {
    let text = fs::read_to_string(path).unwrap();
    let code: String = text
        .split("\nmod tests {")
        .next()
        .unwrap()
        .lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // use crate::{a, b::c, ...}
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = item.trim().split("::").next().unwrap().trim();
                if !name.is_empty() {
                    found.insert(name.to_string());
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found
}

#[test]
fn every_module_uses_only_modules_listed_before_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap();
    let levels = stated_order(&lib);
    let level_of = |m: &str| levels.iter().position(|l| l.iter().any(|n| n == m));
    let mut modules = BTreeSet::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let is_module = path.extension().is_some_and(|e| e == "rs") && name != "lib"
            || path.is_dir() && path.join("mod.rs").exists();
        if is_module {
            modules.insert(name);
        }
    }
    let listed: BTreeSet<String> = levels.iter().flatten().cloned().collect();
    let unlisted: Vec<_> = modules.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "modules missing from lib.rs's Layers list: {unlisted:?}"
    );
    let gone: Vec<_> = listed.difference(&modules).collect();
    assert!(
        gone.is_empty(),
        "lib.rs lists modules that do not exist: {gone:?}"
    );
    let mut violations = Vec::new();
    let mut edges = 0;
    for m in &modules {
        let own = level_of(m).unwrap();
        let used_by_m: BTreeSet<String> = files_of(&src, m).iter().flat_map(|f| uses(f)).collect();
        for used in used_by_m {
            if used == *m || !modules.contains(&used) {
                continue;
            }
            edges += 1;
            let theirs = level_of(&used).unwrap();
            // Modules of one item may not use each other either: only
            // strictly lower items.
            if theirs >= own {
                violations.push(format!(
                    "{m} (item {}) uses {used} (item {})",
                    own + 1,
                    theirs + 1
                ));
            }
        }
    }
    assert!(
        edges > 50,
        "only {edges} edges found: is the parser broken?"
    );
    assert!(
        violations.is_empty(),
        "edges up the stated order:\n{}",
        violations.join("\n")
    );
}

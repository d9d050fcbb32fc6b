//! slabpool-compare, the comparison suite's driver (`cargo run --release -p
//! slabpool-compare`): builds the workload binaries, runs every workload
//! under every allocator as separate processes, and writes
//! report.md, report.json and report.svg under `target/slabpool-compare/`;
//! with `--scaling`, runs the threaded workloads at several thread counts
//! and writes scaling.md, scaling.json and scaling.svg instead.
//! Exits 1 if any run failed, 2 on a usage or build error.

mod affinity;
mod allocators;
mod cargo;
mod chart;
mod cli;
mod extra;
mod lineup;
mod measure;
mod model;
mod prof_accuracy;
mod publish;
mod report_md;
mod scaling;
mod scaling_chart;
mod scaling_md;
mod scaling_model;
mod schedule;
mod stats;
mod suite;
mod sysinfo;
mod targets;
mod versions;

use allocators::Allocator;
use cli::{Command, Options};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match cli::parse(&args) {
        Ok(Command::Help) => {
            print!("{}", cli::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Command::List) => {
            list();
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(o)) => run(&o),
        Err(e) => Err(e),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("slabpool-compare: {e}");
            ExitCode::from(2)
        }
    }
}

fn list() {
    println!(
        "workloads ([pinned]: also run pinned to one CPU; [scaling]: in --scaling too; \
         [small]: a small program, in a table of its own):"
    );
    for w in slabpool_compare::workload::ALL {
        let tag = match (w.threaded(), w.scaling.is_some(), w.small()) {
            (_, _, true) => "[small]",
            (true, true, _) => "[pinned, scaling]",
            (true, false, _) => "[pinned]",
            _ => "",
        };
        println!("  {:<14} {tag:<17} {}", w.name, w.about);
    }
    println!("allocators:");
    for a in allocators::ALL {
        println!("  {:<14} ({})", a.name, a.bin);
    }
}

/// Builds, runs, writes the reports; true if every run succeeded.
fn run(o: &Options) -> Result<bool, String> {
    extra::check(&o.extras)?;
    let ws = cargo::workspace()?;
    let target = o.target.as_deref();
    if o.prof_accuracy {
        return prof_accuracy(o, &ws);
    }
    let (built, left_out) = build(&o.allocators, target)?;
    let allocators: Vec<&Allocator> = o
        .allocators
        .iter()
        .copied()
        .filter(|a| built.contains_key(a.bin))
        .collect();
    let contenders = lineup::resolve(&allocators, &o.extras, &built, &ws, target);
    let pin = if o.pinned { pinned_cpu() } else { None };
    let dir = report_dir(&ws, target)?;
    if let Some(counts) = &o.scaling {
        let report = scaling::run(o, counts, &contenders, pin);
        let md = scaling_md::render(&report);
        let json =
            serde_json::to_string_pretty(&report).map_err(|e| format!("scaling.json: {e}"))?;
        let svg = scaling_chart::render(&report)?;
        write(&dir, "scaling", &md, &[("json", &json), ("svg", &svg)])?;
        if o.publish {
            publish::scaling(&ws.root, &md, &svg)?;
            eprintln!("slabpool-compare: updated docs/scaling.md and docs/scaling.svg");
        }
        return Ok(!report.any_failed());
    }
    let mut report = suite::run(o, &contenders, pin);
    report.header.left_out = left_out;
    let md = report_md::render(&report);
    let json = serde_json::to_string_pretty(&report).map_err(|e| format!("report.json: {e}"))?;
    let svg = chart::render(&report)?;
    write(&dir, "report", &md, &[("json", &json), ("svg", &svg)])?;
    if o.publish {
        let name = publish::block_name(target);
        publish::readme(&ws.root, &report_md::summary(&report), &svg, &name)?;
        eprintln!("slabpool-compare: updated README.md and docs/{name}.svg");
    }
    Ok(!report.any_failed())
}

/// Builds the allocators' workload binaries (for `target`, else the
/// host): the built ones by binary name, and the names of the peers left
/// out. Those built `alone` get a cargo invocation each (their feature
/// changes a dependency of the others); the others share one. For another
/// target a peer that fails to build (its C or C++ code may not build
/// there) is left out with a notice; on the host every failure is an
/// error.
fn build(
    allocators: &[&'static Allocator],
    target: Option<&str>,
) -> Result<(HashMap<String, PathBuf>, Vec<String>), String> {
    let (alone, together): (Vec<&'static Allocator>, Vec<&'static Allocator>) =
        allocators.iter().partition(|a| a.alone);
    let (mut built, mut left_out) = build_together(&together, target)?;
    let on = target.unwrap_or("the host");
    for a in alone {
        eprintln!(
            "slabpool-compare: building {} on its own (release, for {on})",
            a.bin
        );
        build_one(a, target, &mut built, &mut left_out)?;
    }
    Ok((built, left_out))
}

/// Builds `a`'s binary in a cargo invocation of its own, into `built`. A
/// peer that does not build for another target is left out (its name
/// pushed on `left_out`) with a notice; any other failure is an error.
fn build_one(
    a: &Allocator,
    target: Option<&str>,
    built: &mut HashMap<String, PathBuf>,
    left_out: &mut Vec<String>,
) -> Result<(), String> {
    let features: Vec<&str> = a.feature.into_iter().collect();
    match (cargo::build_bins(&[a.bin], &features, target), target) {
        (Ok(b), _) => built.extend(b),
        (Err(e), Some(on)) if a.peer => {
            eprintln!(
                "slabpool-compare: NOTICE: {} does not build for {on} ({e}): left out",
                a.name
            );
            left_out.push(a.name.to_string());
        }
        (Err(e), _) => return Err(e),
    }
    Ok(())
}

/// [`build`] for the allocators that share one cargo invocation.
fn build_together(
    allocators: &[&'static Allocator],
    target: Option<&str>,
) -> Result<(HashMap<String, PathBuf>, Vec<String>), String> {
    let bins: Vec<&str> = allocators.iter().map(|a| a.bin).collect();
    if bins.is_empty() {
        return Ok((HashMap::new(), Vec::new()));
    }
    let features: Vec<&str> = allocators.iter().filter_map(|a| a.feature).collect();
    let on = target.unwrap_or("the host");
    eprintln!(
        "slabpool-compare: building {} (release, for {on})",
        bins.join(", ")
    );
    let all = cargo::build_bins(&bins, &features, target);
    if all.is_ok() || target.is_none() || features.is_empty() {
        return all.map(|b| (b, Vec::new()));
    }
    // One at a time, to learn which peers do not build for the target.
    let own: Vec<&str> = allocators
        .iter()
        .filter(|a| !a.peer)
        .map(|a| a.bin)
        .collect();
    let mut built = if own.is_empty() {
        HashMap::new()
    } else {
        cargo::build_bins(&own, &[], target)?
    };
    let mut left_out = Vec::new();
    for a in allocators.iter().filter(|a| a.peer) {
        build_one(a, target, &mut built, &mut left_out)?;
    }
    Ok((built, left_out))
}

/// `--prof-accuracy`: builds `wl-slabpool-prof-check`, runs the check,
/// writes `prof-accuracy.{md,json}`.
fn prof_accuracy(o: &Options, ws: &cargo::Workspace) -> Result<bool, String> {
    let bin = "wl-slabpool-prof-check";
    eprintln!("slabpool-compare: building {bin} (release)");
    let built = cargo::build_bins(&[bin], &["prof-slabpool"], o.target.as_deref())?;
    let (acc, ok) = prof_accuracy::run(o, &built[bin], o.prof_sample);
    let dir = report_dir(ws, o.target.as_deref())?;
    let md = prof_accuracy::render(&acc);
    let json =
        serde_json::to_string_pretty(&acc).map_err(|e| format!("prof-accuracy.json: {e}"))?;
    write(&dir, "prof-accuracy", &md, &[("json", &json)])?;
    Ok(ok)
}

/// Where the reports go, created: `target/slabpool-compare/`, and in it a
/// directory per `target` built for.
fn report_dir(ws: &cargo::Workspace, target: Option<&str>) -> Result<PathBuf, String> {
    let mut dir = ws.target_dir.join("slabpool-compare");
    if let Some(t) = target {
        dir.push(t);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The CPU pinned runs use, or `None` (with a warning) if the driver's
/// CPU mask cannot be read.
fn pinned_cpu() -> Option<usize> {
    let cpu = affinity::first_cpu();
    if cpu.is_none() {
        eprintln!("slabpool-compare: cannot read the CPU mask; no pinned runs");
    }
    cpu
}

/// Writes `<stem>.md` and, for each `(ext, text)` of `others`,
/// `<stem>.<ext>` into `dir`, and prints the Markdown.
fn write(dir: &Path, stem: &str, md: &str, others: &[(&str, &str)]) -> Result<(), String> {
    let files: Vec<(&str, &str)> = std::iter::once(("md", md))
        .chain(others.iter().copied())
        .collect();
    for (ext, text) in &files {
        let path = dir.join(format!("{stem}.{ext}"));
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    println!("{md}");
    let exts: Vec<&str> = files.iter().map(|(ext, _)| *ext).collect();
    eprintln!(
        "slabpool-compare: wrote {}/{stem}.{{{}}}",
        dir.display(),
        exts.join(",")
    );
    Ok(())
}

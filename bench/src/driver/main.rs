//! slabpool-bench, the comparison suite's driver (`cargo run --release -p
//! slabpool-bench`): builds the workload binaries, runs every workload
//! under every allocator as separate processes, and writes
//! report.md, report.json and report.svg under `target/slabpool-bench/`;
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

use cli::{Command, Options};
use std::collections::HashMap;
use std::path::Path;
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
            eprintln!("slabpool-bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn list() {
    println!("workloads ([pinned]: also run pinned to one CPU; [scaling]: in --scaling too):");
    for w in slabpool_bench::workload::ALL {
        let tag = match (w.threaded(), w.scaling.is_some()) {
            (true, true) => "[pinned, scaling]",
            (true, false) => "[pinned]",
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
    let bins: Vec<&str> = o.allocators.iter().map(|a| a.bin).collect();
    let peers = o.allocators.iter().any(|a| a.peer);
    let built = if bins.is_empty() {
        HashMap::new()
    } else {
        eprintln!("slabpool-bench: building {} (release)", bins.join(", "));
        cargo::build_bins(&bins, peers)?
    };
    let contenders = lineup::resolve(&o.allocators, &o.extras, &built, &ws);
    let pin = if o.pinned { pinned_cpu() } else { None };
    let dir = ws.target_dir.join("slabpool-bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    if let Some(counts) = &o.scaling {
        let report = scaling::run(o, counts, &contenders, pin);
        let md = scaling_md::render(&report);
        let json =
            serde_json::to_string_pretty(&report).map_err(|e| format!("scaling.json: {e}"))?;
        let svg = scaling_chart::render(&report)?;
        write(&dir, "scaling", &md, &json, &svg)?;
        if o.publish {
            publish::scaling(&ws.root, &md, &svg)?;
            eprintln!("slabpool-bench: updated docs/scaling.md and docs/scaling.svg");
        }
        return Ok(!report.any_failed());
    }
    let report = suite::run(o, &contenders, pin);
    let md = report_md::render(&report);
    let json = serde_json::to_string_pretty(&report).map_err(|e| format!("report.json: {e}"))?;
    let svg = chart::render(&report)?;
    write(&dir, "report", &md, &json, &svg)?;
    if o.publish {
        publish::readme(&ws.root, &report_md::summary(&report), &svg)?;
        eprintln!("slabpool-bench: updated README.md and docs/bench.svg");
    }
    Ok(!report.any_failed())
}

/// The CPU pinned runs use, or `None` (with a warning) if the driver's
/// CPU mask cannot be read.
fn pinned_cpu() -> Option<usize> {
    let cpu = affinity::first_cpu();
    if cpu.is_none() {
        eprintln!("slabpool-bench: cannot read the CPU mask; no pinned runs");
    }
    cpu
}

/// Writes `<stem>.{md,json,svg}` into `dir` and prints the Markdown.
fn write(dir: &Path, stem: &str, md: &str, json: &str, svg: &str) -> Result<(), String> {
    for (ext, text) in [("md", md), ("json", json), ("svg", svg)] {
        let path = dir.join(format!("{stem}.{ext}"));
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    println!("{md}");
    eprintln!(
        "slabpool-bench: wrote {}/{stem}.{{md,json,svg}}",
        dir.display()
    );
    Ok(())
}

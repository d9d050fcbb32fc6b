//! slabpool-bench, the comparison suite's driver (`cargo run --release -p
//! slabpool-bench`): builds the workload binaries, runs every workload
//! under every allocator as separate processes, and writes
//! report.md, report.json and report.svg under `target/slabpool-bench/`.
//! Exits 1 if any run failed, 2 on a usage or build error.

mod allocators;
mod cargo;
mod chart;
mod cli;
mod measure;
mod model;
mod publish;
mod report_md;
mod stats;
mod suite;
mod sysinfo;
mod targets;
mod versions;

use cli::{Command, Options};
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
    println!("workloads:");
    for w in slabpool_bench::workload::ALL {
        println!("  {:<14} {}", w.name, w.about);
    }
    println!("allocators:");
    for a in allocators::ALL {
        println!("  {:<14} ({})", a.name, a.bin);
    }
}

/// Builds, runs, writes the reports; true if every run succeeded.
fn run(o: &Options) -> Result<bool, String> {
    let ws = cargo::workspace()?;
    let bins: Vec<&str> = o.allocators.iter().map(|a| a.bin).collect();
    let peers = o.allocators.iter().any(|a| a.peer);
    eprintln!("slabpool-bench: building {} (release)", bins.join(", "));
    let built = cargo::build_bins(&bins, peers)?;
    let report = suite::run(o, &built, &ws);
    let dir = ws.target_dir.join("slabpool-bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let md = report_md::render(&report);
    let json = serde_json::to_string_pretty(&report).map_err(|e| format!("report.json: {e}"))?;
    let svg = chart::render(&report)?;
    for (name, text) in [
        ("report.md", &md),
        ("report.json", &json),
        ("report.svg", &svg),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    println!("{md}");
    eprintln!(
        "slabpool-bench: wrote {}/report.{{md,json,svg}}",
        dir.display()
    );
    if o.publish {
        publish::readme(&ws.root, &report_md::summary(&report), &svg)?;
        eprintln!("slabpool-bench: updated README.md and docs/bench.svg");
    }
    Ok(!report.any_failed())
}

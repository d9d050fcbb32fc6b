//! Runs the suite: every (workload, allocator) pair `runs` times,
//! interleaved (within a round each workload runs under every allocator in
//! turn, the starting allocator rotating per round), with a progress line
//! on stderr; then turns the samples into the Report.

use crate::allocators::Allocator;
use crate::cargo::Workspace;
use crate::cli::Options;
use crate::model::{AllocatorInfo, Cell, Header, Report, WorkloadInfo};
use crate::{measure, stats, sysinfo, targets, versions};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// Runs everything and returns the report.
pub fn run(o: &Options, bins: &HashMap<String, PathBuf>, ws: &Workspace) -> Report {
    let date = sysinfo::now_utc();
    let mut cells: Vec<Cell> = o
        .workloads
        .iter()
        .flat_map(|w| {
            o.allocators.iter().map(|a| Cell {
                workload: w.name.into(),
                allocator: a.name.into(),
                ..Cell::default()
            })
        })
        .collect();
    let k = o.allocators.len();
    let total = o.runs * o.workloads.len() * k;
    let mut progress = Progress::new(total);
    for round in 0..o.runs {
        for (wi, w) in o.workloads.iter().enumerate() {
            for step in 0..k {
                let ai = (round + step) % k;
                let a: &Allocator = o.allocators[ai];
                progress.show(round + 1, o.runs, w.name, a.name);
                let size = o.suite.size_of(w);
                let sample = measure::run(&bins[a.bin], w.name, size, o.threads, o.timeout);
                progress.done(&sample);
                cells[wi * k + ai].samples.push(sample);
            }
        }
    }
    progress.finish();
    stats::check_checksums(&mut cells);
    cells.iter_mut().for_each(stats::summarise);
    stats::ratios(&mut cells);
    let names: Vec<&str> = o.allocators.iter().map(|a| a.name).collect();
    let geomeans = stats::geomeans(&cells, &names, o.workloads.len());
    let mut report = Report {
        header: Header {
            cpu: sysinfo::cpu_model(),
            cores: sysinfo::cores(),
            kernel: sysinfo::kernel(),
            date,
            suite: o.suite.name().into(),
            runs: o.runs,
            threads: o.threads,
        },
        allocators: o
            .allocators
            .iter()
            .map(|a| AllocatorInfo {
                name: a.name.into(),
                version: versions::describe(a, ws),
            })
            .collect(),
        workloads: o
            .workloads
            .iter()
            .map(|w| WorkloadInfo {
                name: w.name.into(),
                about: w.about.into(),
                size: o.suite.size_of(w),
                threads: (w.threads)(o.threads),
            })
            .collect(),
        cells,
        geomeans,
        targets: Vec::new(),
    };
    report.targets = targets::check(&report);
    report
}

/// The progress line: rewritten in place on a terminal, one line per run
/// otherwise (CI logs).
struct Progress {
    total: usize,
    done: usize,
    tty: bool,
    failed: usize,
}

impl Progress {
    fn new(total: usize) -> Self {
        Progress {
            total,
            done: 0,
            tty: std::io::stderr().is_terminal(),
            failed: 0,
        }
    }

    fn show(&self, round: usize, runs: usize, workload: &str, alloc: &str) {
        if self.tty {
            let mut e = std::io::stderr();
            let _ = write!(
                e,
                "\r\x1b[K[{:>3}/{}] round {round}/{runs} · {workload} · {alloc} · {} failed",
                self.done + 1,
                self.total,
                self.failed
            );
            let _ = e.flush();
        } else {
            eprint!(
                "[{:>3}/{}] round {round}/{runs} · {workload} · {alloc}",
                self.done + 1,
                self.total
            );
        }
    }

    fn done(&mut self, s: &crate::model::Sample) {
        self.done += 1;
        if !s.ok {
            self.failed += 1;
        }
        if !self.tty {
            match &s.error {
                None => eprintln!(
                    " · {:.3} s · {:.1} MiB",
                    s.time_s,
                    s.peak_rss_kib() as f64 / 1024.0
                ),
                Some(e) => eprintln!(" · FAILED: {e}"),
            }
        } else if let Some(e) = &s.error {
            eprintln!("\r\x1b[K  failed: {e}");
        }
    }

    fn finish(&self) {
        if self.tty {
            eprintln!("\r\x1b[K{} runs, {} failed", self.total, self.failed);
        }
    }
}

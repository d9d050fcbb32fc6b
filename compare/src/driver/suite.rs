//! Runs the suite: every (workload, allocator) pair `runs` times,
//! interleaved (see `schedule.rs`), and, unless `--no-pinned`, every
//! threaded workload a second time per allocator with the child pinned to
//! one CPU, in the same rounds and with the same thread count; then turns
//! the samples into the Report, the small programs apart from the main
//! suite's workloads.

use crate::cli::Options;
use crate::lineup::{self, Contender};
use crate::model::{Cell, Header, Report, SmallPrograms, WorkloadInfo};
use crate::schedule::{self, Job};
use crate::{stats, sysinfo, targets};
use slabpool_compare::workload::{self, Workload};

/// Runs everything and returns the report; `pin` is the CPU pinned runs
/// use (`None`: no pinned runs).
pub fn run(o: &Options, contenders: &[Contender], pin: Option<usize>) -> Report {
    let date = sysinfo::now_utc();
    // Per workload: the contenders unpinned, then pinned if it is threaded.
    let groups: Vec<Vec<Job>> = o
        .workloads
        .iter()
        .map(|w| {
            let pins = match pin {
                Some(cpu) if w.threaded() => vec![None, Some(cpu)],
                _ => vec![None],
            };
            pins.into_iter()
                .flat_map(|p| {
                    contenders.iter().map(move |c| Job {
                        label: match p {
                            None => format!("{} · {}", w.name, c.name),
                            Some(cpu) => format!("{} · {} pinned to CPU {cpu}", w.name, c.name),
                        },
                        exe: c.exe.clone(),
                        workload: w.name,
                        size: o.suite.size_of(w),
                        threads: o.threads,
                        pin: p,
                        env: c.env.clone(),
                    })
                })
                .collect()
        })
        .collect();
    let samples = schedule::run(&groups, o.runs, o.timeout);
    let k = contenders.len();
    let mut cells = Vec::new();
    let mut pinned = Vec::new();
    for (w, runs) in o.workloads.iter().zip(samples) {
        for (i, samples) in runs.into_iter().enumerate() {
            let cell = Cell {
                workload: w.name.into(),
                allocator: contenders[i % k].name.clone(),
                samples,
                ..Cell::default()
            };
            if i < k {
                cells.push(cell);
            } else {
                pinned.push(cell);
            }
        }
    }
    // Pinned runs did the same work: they are checked with the others.
    let unpinned = cells.len();
    cells.append(&mut pinned);
    stats::check_checksums(&mut cells);
    cells.iter_mut().for_each(stats::summarise);
    let pinned = cells.split_off(unpinned);
    stats::ratios(&mut cells);
    stats::speedups(&mut cells, &pinned);
    // The small programs have tables and geometric means of their own.
    let is_small = |c: &Cell| workload::find(&c.workload).is_some_and(|w| w.small());
    let (small_cells, cells): (Vec<Cell>, Vec<Cell>) = cells.into_iter().partition(is_small);
    let (small, main): (Vec<&Workload>, Vec<&Workload>) =
        o.workloads.iter().copied().partition(|w| w.small());
    let names: Vec<&str> = contenders.iter().map(|c| c.name.as_str()).collect();
    let geomeans = stats::geomeans(&cells, &names, main.len());
    let info = |w: &&Workload| WorkloadInfo {
        name: w.name.into(),
        about: w.about.into(),
        size: o.suite.size_of(w),
        threads: (w.threads)(o.threads),
    };
    let mut report = Report {
        header: Header {
            cpu: sysinfo::cpu_model(),
            cores: sysinfo::cores(),
            kernel: sysinfo::kernel(),
            date,
            suite: o.suite.name().into(),
            runs: o.runs,
            threads: o.threads,
            pinned_cpu: pin.filter(|_| !pinned.is_empty()),
            target: o.target.clone(),
            left_out: Vec::new(),
        },
        allocators: lineup::infos(contenders),
        workloads: main.iter().map(info).collect(),
        cells,
        pinned,
        geomeans,
        small_programs: SmallPrograms {
            workloads: small.iter().map(info).collect(),
            geomeans: stats::geomeans(&small_cells, &names, small.len()),
            cells: small_cells,
        },
        targets: Vec::new(),
    };
    report.targets = targets::check(&report);
    report
}

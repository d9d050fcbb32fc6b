//! Scaling mode (`--scaling 1,2,4,..`): every scaling workload at every
//! thread count under every allocator, interleaved like the suite (a group
//! per workload and thread count, see `schedule.rs`).
//!
//! Strong scaling: a run's total work is fixed per workload — what the
//! suite does at 2 threads — and shared out over the threads, so runs
//! take about as long at 64 threads as at 2 when the allocator scales, and
//! longer when it does not. The workloads take a per-thread (or, for
//! xmalloc, per-producer) size, so a run at `t` threads gets the suite's
//! size × shares(2) / shares(t), rounded up (see `Workload::scaling`).
//! A workload that cannot run at a count (xmalloc needs a producer and a
//! consumer, so 2 threads at least) is left out at that count rather than
//! run with more threads than the row says.

use crate::cli::Options;
use crate::lineup::{self, Contender};
use crate::model::AllocatorInfo;
use crate::scaling_model::{
    Column, Point, Row, ScalingHeader, ScalingReport, ScalingWorkload, Summary, WorkloadRatio,
    allocator_of,
};
use crate::schedule::{self, Job};
use crate::{stats, sysinfo};
use slabpool_compare::workload::Workload;

/// The thread count whose work every count shares out.
pub const REFERENCE_THREADS: usize = 2;

/// The size of `w`'s runs at `threads`, from its suite size `size` (the
/// work at 2 threads); `None` if it does not run at that count.
pub fn size_at(w: &Workload, size: u64, threads: usize) -> Option<u64> {
    let shares = w.scaling?;
    if (w.threads)(threads) != threads {
        return None;
    }
    let total = size * shares(REFERENCE_THREADS) as u64;
    Some(total.div_ceil(shares(threads) as u64).max(1))
}

/// The series: every contender, then (with `pinned`) every contender
/// pinned to one CPU.
pub fn columns(contenders: &[Contender], pinned: bool) -> Vec<Column> {
    let pins: &[bool] = if pinned { &[false, true] } else { &[false] };
    pins.iter()
        .flat_map(|&p| {
            contenders.iter().map(move |c| Column {
                name: if p {
                    format!("{} 1 CPU", c.name)
                } else {
                    c.name.clone()
                },
                allocator: c.name.clone(),
                pinned: p,
            })
        })
        .collect()
}

/// Runs scaling mode and returns its report; `pin` is the CPU of the
/// pinned series (`None`: no pinned series).
pub fn run(
    o: &Options,
    counts: &[usize],
    contenders: &[Contender],
    pin: Option<usize>,
) -> ScalingReport {
    let date = sysinfo::now_utc();
    let cols = columns(contenders, pin.is_some());
    let who = |c: &Column| {
        let who = contenders.iter().find(|x| x.name == c.allocator);
        who.expect("every column is a contender's")
    };
    let workloads: Vec<ScalingWorkload> = o
        .workloads
        .iter()
        .map(|w| {
            let size = o.suite.size_of(w);
            ScalingWorkload {
                name: w.name.into(),
                about: w.about.into(),
                size_at_2: size,
                rows: counts
                    .iter()
                    .map(|&t| Row {
                        threads: t,
                        size: size_at(w, size, t),
                    })
                    .collect(),
            }
        })
        .collect();
    // One group per (workload, thread count) that runs.
    let mut plan: Vec<(&'static str, usize)> = Vec::new();
    let mut groups: Vec<Vec<Job>> = Vec::new();
    for (w, sw) in o.workloads.iter().zip(&workloads) {
        for row in &sw.rows {
            let Some(size) = row.size else { continue };
            plan.push((w.name, row.threads));
            groups.push(
                cols.iter()
                    .map(|c| Job {
                        label: format!("{} · {} threads · {}", w.name, row.threads, c.name),
                        exe: who(c).exe.clone(),
                        workload: w.name,
                        size,
                        threads: row.threads,
                        pin: pin.filter(|_| c.pinned),
                        env: who(c).env.clone(),
                    })
                    .collect(),
            );
        }
    }
    let samples = schedule::run(&groups, o.runs, o.timeout);
    let mut points = Vec::new();
    for ((w, t), runs) in plan.into_iter().zip(samples) {
        for (c, samples) in cols.iter().zip(runs) {
            points.push(Point {
                workload: w.into(),
                threads: t,
                column: c.name.clone(),
                samples,
                ..Point::default()
            });
        }
    }
    let header = ScalingHeader {
        cpu: sysinfo::cpu_model(),
        cores: sysinfo::cores(),
        kernel: sysinfo::kernel(),
        date,
        suite: o.suite.name().into(),
        runs: o.runs,
        threads: counts.to_vec(),
        base_threads: base_threads(counts),
        pinned_cpu: pin,
    };
    let allocators = lineup::infos(contenders);
    finish(header, allocators, cols, workloads, points)
}

/// The summary's base count: 2 if it ran, else the smallest.
pub fn base_threads(counts: &[usize]) -> usize {
    if counts.contains(&REFERENCE_THREADS) {
        REFERENCE_THREADS
    } else {
        counts.first().copied().unwrap_or(1)
    }
}

/// Checks and summarises the points and fills the derived figures.
pub fn finish(
    header: ScalingHeader,
    allocators: Vec<AllocatorInfo>,
    columns: Vec<Column>,
    workloads: Vec<ScalingWorkload>,
    mut points: Vec<Point>,
) -> ScalingReport {
    // Runs of one workload at one thread count did the same work.
    for w in &workloads {
        for row in &w.rows {
            let group = points
                .iter_mut()
                .filter(|p| p.workload == w.name && p.threads == row.threads)
                .map(|p| (allocator_of(&columns, &p.column), &mut p.samples))
                .collect();
            stats::agree(group);
        }
    }
    points.iter_mut().for_each(summarise);
    for i in 0..points.len() {
        let (w, t) = (points[i].workload.clone(), points[i].threads);
        let best = points
            .iter()
            .filter(|p| p.workload == w && p.threads == t)
            .filter(|p| columns.iter().any(|c| c.name == p.column && !c.pinned))
            .filter_map(|p| p.mops)
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        points[i].vs_best = stats::ratio(points[i].mops, best);
    }
    let mut report = ScalingReport {
        header,
        allocators,
        columns,
        workloads,
        points,
        summary: Vec::new(),
    };
    report.summary = summary(&report);
    report
}

fn summarise(p: &mut Point) {
    (p.failed, p.missing) = stats::status(&p.samples);
    if p.failed || p.missing {
        return;
    }
    (p.median_time_s, p.time_spread) = stats::times(&p.samples);
    p.ops = stats::ops(&p.samples);
    p.mops = stats::ratio(p.ops.map(|n| n as f64), p.median_time_s).map(|x| x / 1e6);
}

/// Per column: throughput at the most threads over at the base count.
fn summary(r: &ScalingReport) -> Vec<Summary> {
    let (base, max) = (r.header.base_threads, r.max_threads());
    if base >= max {
        return Vec::new();
    }
    r.columns
        .iter()
        .map(|c| {
            let ratios: Vec<WorkloadRatio> = r
                .workloads
                .iter()
                .map(|w| {
                    let at = |t| r.point(&w.name, t, &c.name).and_then(|p| p.mops);
                    WorkloadRatio {
                        workload: w.name.clone(),
                        ratio: stats::ratio(at(max), at(base)),
                    }
                })
                .collect();
            let have: Vec<f64> = ratios.iter().filter_map(|x| x.ratio).collect();
            Summary {
                column: c.name.clone(),
                geomean: stats::geomean(&have),
                ratios,
            }
        })
        .collect()
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::model::Sample;
    use slabpool_compare::workload;

    #[test]
    fn total_work_is_fixed_across_thread_counts() {
        let larson = workload::find("larson").unwrap();
        assert_eq!(size_at(larson, 1000, 2), Some(1000));
        assert_eq!(size_at(larson, 1000, 1), Some(2000));
        assert_eq!(size_at(larson, 1000, 64), Some(32)); // 31.25 rounded up
        assert_eq!(size_at(larson, 10, 64), Some(1));
        // xmalloc's size is per producer (half the threads); it needs two.
        let x = workload::find("xmalloc").unwrap();
        assert_eq!(size_at(x, 1000, 1), None);
        assert_eq!(size_at(x, 1000, 2), Some(1000));
        assert_eq!(size_at(x, 1000, 3), Some(1000));
        assert_eq!(size_at(x, 1000, 64), Some(32));
        // Not a scaling workload.
        assert_eq!(size_at(workload::find("large").unwrap(), 1000, 2), None);
        assert_eq!(base_threads(&[1, 2, 64]), 2);
        assert_eq!(base_threads(&[1, 4, 64]), 1);
    }

    /// A small report: larson and xmalloc at 1, 2 and 8 threads under A, B
    /// and B pinned, where B's binary does not know xmalloc and A's run at
    /// 8 threads failed. Times: A 1 s everywhere, B 2 s at 8 threads.
    pub fn sample_report() -> ScalingReport {
        let contenders = ["A", "B"].map(|n| Contender {
            name: n.into(),
            exe: "/bin/true".into(),
            version: "v".into(),
            env: Vec::new(),
        });
        let cols = columns(&contenders, true);
        let counts = [1, 2, 8];
        let mut workloads = Vec::new();
        let mut points = Vec::new();
        for name in ["larson", "xmalloc"] {
            let w = workload::find(name).unwrap();
            let rows: Vec<Row> = counts
                .iter()
                .map(|&t| Row {
                    threads: t,
                    size: size_at(w, 100, t),
                })
                .collect();
            for row in rows.iter().filter(|r| r.size.is_some()) {
                for c in &cols {
                    let time = if c.allocator == "B" && row.threads == 8 {
                        2.0
                    } else {
                        1.0
                    };
                    let mut s = Sample::parse("checksum=aa\nops=4000000\n", time, 1);
                    if c.name == "A" && row.threads == 8 {
                        s.fail("killed by signal 11".into());
                    }
                    if c.allocator == "B" && name == "xmalloc" {
                        s = Sample::failed("this binary does not know the workload".into());
                        s.missing = true;
                    }
                    points.push(Point {
                        workload: name.into(),
                        threads: row.threads,
                        column: c.name.clone(),
                        samples: vec![s.clone(), s],
                        ..Point::default()
                    });
                }
            }
            workloads.push(ScalingWorkload {
                name: name.into(),
                about: w.about.into(),
                size_at_2: 100,
                rows,
            });
        }
        let header = ScalingHeader {
            cpu: "cpu".into(),
            cores: 2,
            kernel: "k".into(),
            date: "d".into(),
            suite: "smoke".into(),
            runs: 2,
            threads: counts.to_vec(),
            base_threads: base_threads(&counts),
            pinned_cpu: Some(0),
        };
        let allocators = lineup::infos(&contenders);
        finish(header, allocators, cols, workloads, points)
    }

    #[test]
    fn throughput_best_and_summary() {
        let r = sample_report();
        let p = |w, t, c| r.point(w, t, c).unwrap();
        assert_eq!(p("larson", 2, "A").mops, Some(4.0));
        assert_eq!(p("larson", 8, "B").mops, Some(2.0));
        assert!(p("larson", 8, "A").failed);
        // The best unpinned column at 8 threads is B (A failed).
        assert_eq!(p("larson", 8, "B").vs_best, Some(1.0));
        assert_eq!(p("larson", 2, "B 1 CPU").vs_best, Some(1.0));
        assert!(p("xmalloc", 2, "B").missing && !p("xmalloc", 2, "B").failed);
        assert!(r.point("xmalloc", 1, "A").is_none());
        assert!(r.any_failed());
        let s = |c: &str| r.summary.iter().find(|s| s.column == c).unwrap();
        assert_eq!(s("B").ratios[0].ratio, Some(0.5));
        assert_eq!(s("B").ratios[1].ratio, None);
        assert_eq!(s("B").geomean, Some(0.5));
        assert_eq!(s("A").geomean, None);
    }

    #[test]
    fn differing_ops_counts_fail_their_point() {
        let mut r = sample_report();
        let mut pts = std::mem::take(&mut r.points);
        for p in pts
            .iter_mut()
            .filter(|p| p.column == "B" && p.workload == "larson")
        {
            p.samples.iter_mut().for_each(|s| s.ops = Some(1));
        }
        let r = finish(r.header, r.allocators, r.columns, r.workloads, pts);
        assert!(r.point("larson", 2, "B").unwrap().failed);
        assert!(!r.point("larson", 2, "B 1 CPU").unwrap().failed);
    }
}

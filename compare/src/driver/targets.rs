//! slabpool's performance targets (time and peak RSS against System), checked against this
//! run: geometric-mean time ≤ 0.70× System's and ≤ 0.95× mimalloc's, no
//! workload slower than System, geometric-mean peak RSS ≤ mimalloc's, and
//! peak RSS ≤ System's on every workload but at most two; and for the
//! small programs, time and peak RSS ≤ System's on each.

use crate::allocators::{MIMALLOC, SYSTEM};
use crate::model::{Cell, Report, Target};

const SUBJECT: &str = "slabpool";

/// The targets, or nothing if slabpool did not run: the main suite's if
/// any of its workloads ran, the small programs' if any of them did.
pub fn check(r: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    if !r.workloads.is_empty() {
        main_targets(r, &mut out);
    }
    small_targets(r, &mut out);
    out
}

/// slabpool's cells among `cells`, and the workloads of those that failed.
fn subject(cells: &[Cell]) -> (Vec<&Cell>, Vec<&str>) {
    let mine: Vec<&Cell> = cells.iter().filter(|c| c.allocator == SUBJECT).collect();
    let failed = mine
        .iter()
        .filter(|c| c.failed)
        .map(|c| c.workload.as_str())
        .collect();
    (mine, failed)
}

/// The workloads of `mine` over 1.0 for a ratio, then the failed ones
/// (no ratio).
fn over(mine: &[&Cell], failed: &[&str], f: fn(&Cell) -> Option<f64>) -> Vec<String> {
    let above = mine.iter().filter_map(|c| {
        f(c).filter(|&x| x > 1.0)
            .map(|x| format!("{} {x:.2}×", c.workload))
    });
    above
        .chain(failed.iter().map(|w| format!("{w} failed")))
        .collect()
}

/// A list of workloads, or "none".
fn listed(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn has(r: &Report, a: &str) -> bool {
    r.allocators.iter().any(|x| x.name == a)
}

fn main_targets(r: &Report, out: &mut Vec<Target>) {
    let Some(g) = r.geomeans.iter().find(|g| g.allocator == SUBJECT) else {
        return;
    };
    let (mine, failed) = subject(&r.cells);
    let complete = failed.is_empty();
    let mut mean = |name: &str, value: Option<f64>, limit: f64, needs: &str| {
        if has(r, needs) {
            out.push(match value {
                Some(v) => Target::new(name, format!("{v:.2}×"), complete && v <= limit),
                None => Target::new(name, "no value".into(), false),
            });
        }
    };
    mean(
        "geometric-mean time ≤ 0.70× System",
        g.time_vs_system,
        0.70,
        SYSTEM,
    );
    mean(
        "geometric-mean time ≤ 0.95× mimalloc",
        g.time_vs_mimalloc,
        0.95,
        MIMALLOC,
    );
    mean(
        "geometric-mean peak RSS ≤ mimalloc's",
        g.rss_vs_mimalloc,
        1.0,
        MIMALLOC,
    );
    if has(r, SYSTEM) {
        let slower = over(&mine, &failed, |c| c.time_vs_system);
        out.push(Target::new(
            "no workload slower than System",
            listed(&slower),
            complete && slower.is_empty(),
        ));
        let bigger = over(&mine, &failed, |c| c.rss_vs_system);
        let ok = complete && bigger.len() <= 2;
        out.push(Target::new(
            "peak RSS ≤ System's on all workloads but at most two",
            listed(&bigger),
            ok,
        ));
    }
    if !complete {
        out.push(Target::new("no failed runs", failed.join(", "), false));
    }
}

/// The small programs' targets: time and peak RSS at most System's on
/// every one of them.
fn small_targets(r: &Report, out: &mut Vec<Target>) {
    let (mine, failed) = subject(&r.small_programs.cells);
    if mine.is_empty() || !has(r, SYSTEM) {
        return;
    }
    let slower = over(&mine, &failed, |c| c.time_vs_system);
    out.push(Target::new(
        "small programs: none slower than System",
        listed(&slower),
        slower.is_empty(),
    ));
    let bigger = over(&mine, &failed, |c| c.rss_vs_system);
    out.push(Target::new(
        "small programs: peak RSS ≤ System's on each",
        listed(&bigger),
        bigger.is_empty(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AllocatorInfo, Geomean, Header, SmallPrograms, WorkloadInfo};

    fn report(time: f64, rss: [f64; 3]) -> Report {
        let alloc = |n: &str| AllocatorInfo {
            name: n.into(),
            version: String::new(),
        };
        let cells: Vec<Cell> = rss
            .iter()
            .enumerate()
            .map(|(i, &r)| Cell {
                workload: format!("w{i}"),
                allocator: SUBJECT.into(),
                time_vs_system: Some(time),
                rss_vs_system: Some(r),
                ..Cell::default()
            })
            .collect();
        let workloads = cells
            .iter()
            .map(|c| WorkloadInfo {
                name: c.workload.clone(),
                about: String::new(),
                size: 1,
                threads: 1,
            })
            .collect();
        Report {
            header: Header {
                cpu: String::new(),
                cores: 1,
                kernel: String::new(),
                date: String::new(),
                suite: "quick".into(),
                runs: 1,
                threads: 1,
                pinned_cpu: None,
                target: None,
                left_out: Vec::new(),
            },
            allocators: vec![alloc(SYSTEM), alloc(SUBJECT)],
            workloads,
            cells,
            pinned: Vec::new(),
            geomeans: vec![Geomean {
                allocator: SUBJECT.into(),
                time_vs_system: Some(time),
                ..Geomean::default()
            }],
            small_programs: SmallPrograms::default(),
            targets: Vec::new(),
        }
    }

    /// `report`'s main workloads moved to the small programs.
    fn small(time: f64, rss: [f64; 3]) -> Report {
        let mut r = report(time, rss);
        r.small_programs = SmallPrograms {
            workloads: std::mem::take(&mut r.workloads),
            cells: std::mem::take(&mut r.cells),
            geomeans: std::mem::take(&mut r.geomeans),
        };
        r
    }

    #[test]
    fn met_and_missed() {
        let t = check(&report(0.6, [0.9, 1.1, 1.2]));
        assert!(t.iter().all(|t| t.met), "{t:?}");
        let t = check(&report(1.1, [1.1, 1.1, 1.2]));
        assert!(!t[0].met);
        assert!(!t[1].met && t[1].measured.contains("w0 1.10×"));
        assert!(!t[2].met);
    }

    #[test]
    fn small_programs_are_checked_on_their_own() {
        // Only small programs ran: only their two targets.
        let t = check(&small(0.9, [0.9, 1.0, 0.8]));
        assert_eq!(t.len(), 2, "{t:?}");
        assert!(t.iter().all(|t| t.met && t.measured == "none"), "{t:?}");
        let t = check(&small(0.9, [0.9, 1.05, 0.8]));
        assert!(t[0].met && !t[1].met && t[1].measured == "w1 1.05×");
        // Beside the main suite, they leave its targets as they were.
        let mut r = report(0.6, [0.9, 1.1, 1.2]);
        r.small_programs = small(1.2, [1.0; 3]).small_programs;
        let t = check(&r);
        assert_eq!(t.len(), 5, "{t:?}");
        assert!(t[..3].iter().all(|t| t.met), "{t:?}");
        assert!(!t[3].met && t[3].target.starts_with("small programs"));
        assert!(t[4].met);
    }
}

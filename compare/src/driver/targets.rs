//! slabpool's performance targets (time and peak RSS against System), checked against this
//! run: geometric-mean time ≤ 0.70× System's and ≤ 0.95× mimalloc's, no
//! workload slower than System, geometric-mean peak RSS ≤ mimalloc's, and
//! peak RSS ≤ System's on every workload but at most two.

use crate::allocators::{MIMALLOC, SYSTEM};
use crate::model::{Cell, Report, Target};

const SUBJECT: &str = "slabpool";

/// The targets, or nothing if slabpool did not run.
pub fn check(r: &Report) -> Vec<Target> {
    let Some(g) = r.geomeans.iter().find(|g| g.allocator == SUBJECT) else {
        return Vec::new();
    };
    let has = |a: &str| r.allocators.iter().any(|x| x.name == a);
    let mine: Vec<&Cell> = r.cells.iter().filter(|c| c.allocator == SUBJECT).collect();
    let failed: Vec<&str> = mine
        .iter()
        .filter(|c| c.failed)
        .map(|c| c.workload.as_str())
        .collect();
    let complete = failed.is_empty();
    // Workloads over 1.0 for a ratio, then the failed ones (no ratio).
    let over = |f: fn(&Cell) -> Option<f64>| -> Vec<String> {
        let above = mine.iter().filter_map(|c| {
            f(c).filter(|&x| x > 1.0)
                .map(|x| format!("{} {x:.2}×", c.workload))
        });
        above
            .chain(failed.iter().map(|w| format!("{w} failed")))
            .collect()
    };
    let mut out = Vec::new();
    let mut mean = |name: &str, value: Option<f64>, limit: f64, needs: &str| {
        if has(needs) {
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
    if has(SYSTEM) {
        let slower = over(|c| c.time_vs_system);
        let detail = if slower.is_empty() {
            "none".into()
        } else {
            slower.join(", ")
        };
        out.push(Target::new(
            "no workload slower than System",
            detail,
            complete && slower.is_empty(),
        ));
        let bigger = over(|c| c.rss_vs_system);
        let detail = if bigger.is_empty() {
            "none".into()
        } else {
            bigger.join(", ")
        };
        let ok = complete && bigger.len() <= 2;
        out.push(Target::new(
            "peak RSS ≤ System's on all workloads but at most two",
            detail,
            ok,
        ));
    }
    if !complete {
        out.push(Target::new("no failed runs", failed.join(", "), false));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AllocatorInfo, Geomean, Header};

    fn report(time: f64, rss: [f64; 3]) -> Report {
        let alloc = |n: &str| AllocatorInfo {
            name: n.into(),
            version: String::new(),
        };
        let cells = rss
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
            workloads: Vec::new(),
            cells,
            pinned: Vec::new(),
            geomeans: vec![Geomean {
                allocator: SUBJECT.into(),
                time_vs_system: Some(time),
                ..Geomean::default()
            }],
            targets: Vec::new(),
        }
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
}

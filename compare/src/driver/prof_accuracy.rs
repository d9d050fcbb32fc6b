//! `--prof-accuracy`: how close slabpool's heap profiler comes to the truth
//! on every workload. Each workload runs (`--runs` times, not timed) under
//! `wl-slabpool-prof-check`, slabpool with its `prof` feature and
//! `SLABPOOL_PROF=1` (the default 512 KiB mean interval) under a counting
//! allocator: at the highest exact count of live bytes the child saw, it
//! reports that count, the profiler's estimate (the live profile scaled),
//! the live samples behind it and `stats()`'s figure (see the binary).
//!
//! A sample of a small block stands for about an interval's bytes, so an
//! estimate from n live samples of small blocks is off by about 1/sqrt(n)
//! (one standard deviation; the child reports the estimate's own, from
//! its samples' weights, which also knows that a sample of a block much
//! larger than the interval stands for little more than itself): a live
//! heap of a few MiB holds a handful of samples, and its estimate cannot be
//! within 10% but by chance. The table says so: each workload's verdict is
//! "ok" within 10%, "few samples" where one standard deviation is above
//! 5%, else "off". `--prof-sample N` runs at another mean interval
//! (`SLABPOOL_PROF_SAMPLE`).

use crate::cli::Options;
use crate::measure;
use crate::model::{ProfCheck, Sample};
use serde::Serialize;
use std::path::Path;

/// One workload's runs.
#[derive(Serialize)]
pub struct Row {
    pub workload: String,
    pub threads: usize,
    pub runs: Vec<ProfCheck>,
    /// The run of median error (est / true - 1), if any run succeeded.
    pub median: Option<ProfCheck>,
    pub error: Option<f64>,
    /// One standard deviation of the estimate, relative to the truth.
    pub sigma: Option<f64>,
    pub verdict: String,
    pub failures: Vec<String>,
}

/// The figures, as `prof-accuracy.json` has them.
#[derive(Serialize)]
pub struct Accuracy {
    pub date: String,
    pub suite: String,
    pub interval_bytes: u64,
    pub rows: Vec<Row>,
}

/// Runs the check with `exe` (`wl-slabpool-prof-check`) at a mean
/// interval of `interval` bytes; true if every run succeeded.
pub fn run(o: &Options, exe: &Path, interval: u64) -> (Accuracy, bool) {
    let env = vec![
        ("SLABPOOL_PROF".to_string(), "1".to_string()),
        ("SLABPOOL_PROF_SAMPLE".to_string(), interval.to_string()),
    ];
    let mut all_ok = true;
    let mut rows = Vec::new();
    for w in &o.workloads {
        let size = o.suite.size_of(w);
        let threads = (w.threads)(o.threads);
        let mut runs = Vec::new();
        let mut failures = Vec::new();
        for r in 0..o.runs {
            eprintln!(
                "slabpool-compare: prof accuracy · {} · run {}/{}",
                w.name,
                r + 1,
                o.runs
            );
            let s: Sample = measure::run(exe, &env, w.name, size, o.threads, o.timeout, None);
            match (s.ok, s.prof) {
                (true, Some(p)) => runs.push(p),
                _ => failures.push(s.error.unwrap_or_else(|| "no prof_ lines".into())),
            }
        }
        all_ok &= failures.is_empty();
        rows.push(row(w.name, threads, interval, runs, failures));
    }
    let acc = Accuracy {
        date: crate::sysinfo::now_utc(),
        suite: o.suite.name().into(),
        interval_bytes: interval,
        rows,
    };
    (acc, all_ok)
}

fn error_of(p: &ProfCheck) -> f64 {
    p.est_bytes as f64 / (p.true_bytes.max(1)) as f64 - 1.0
}

fn row(
    workload: &str,
    threads: usize,
    interval: u64,
    runs: Vec<ProfCheck>,
    failures: Vec<String>,
) -> Row {
    let mut sorted = runs.clone();
    sorted.sort_by(|a, b| error_of(a).total_cmp(&error_of(b)));
    let median = sorted.get(sorted.len() / 2).copied();
    let error = median.as_ref().map(error_of);
    // Without a live sample the estimate's own deviation says nothing: the
    // expected count of samples says how likely none was.
    let sigma = median.as_ref().map(|m| {
        let truth = m.true_bytes.max(1) as f64;
        if m.live_samples == 0 {
            (interval as f64 / truth).sqrt()
        } else {
            m.sd_bytes as f64 / truth
        }
    });
    let verdict = match (error, sigma) {
        (Some(e), _) if e.abs() <= 0.10 => "ok".to_string(),
        (Some(_), Some(s)) if s > 0.05 => "few samples".to_string(),
        (Some(_), _) => "off".to_string(),
        _ => "failed".to_string(),
    };
    Row {
        workload: workload.into(),
        threads,
        runs,
        median,
        error,
        sigma,
        verdict,
        failures,
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1 << 20) as f64)
}

/// The Markdown table (`prof-accuracy.md`; `prof-accuracy.json` is the
/// [`Accuracy`] serialised).
pub fn render(a: &Accuracy) -> String {
    let mut s = format!(
        "Heap profiler accuracy ({} suite, mean interval {} KiB, {}): at the highest exact count of live bytes in each run, the profiler's estimate (live profile scaled); the run of median error.\n\n",
        a.suite,
        a.interval_bytes / 1024,
        a.date
    );
    s.push_str("| workload | live (MiB, exact) | estimate (MiB) | error | live samples | 1σ | stats() (MiB) | verdict |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---|\n");
    for r in &a.rows {
        match (&r.median, r.error, r.sigma) {
            (Some(m), Some(e), Some(sg)) => s.push_str(&format!(
                "| {} | {} | {} | {:+.1}% | {} | {:.1}% | {} | {} |\n",
                r.workload,
                mib(m.true_bytes),
                mib(m.est_bytes),
                100.0 * e,
                m.live_samples,
                100.0 * sg,
                mib(m.stats_bytes),
                r.verdict
            )),
            _ => s.push_str(&format!(
                "| {} | | | | | | | failed: {} |\n",
                r.workload,
                r.failures.first().map(String::as_str).unwrap_or("")
            )),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(t: u64, e: u64, n: u64) -> ProfCheck {
        ProfCheck {
            true_bytes: t,
            est_bytes: e,
            sd_bytes: if n == 0 {
                0
            } else {
                (t as f64 / (n as f64).sqrt()) as u64
            },
            live_samples: n,
            stats_bytes: t,
            samples: n,
        }
    }

    #[test]
    fn verdicts_say_when_samples_are_too_few() {
        let r = row("a", 1, 1, vec![check(100, 95, 1000)], vec![]);
        assert_eq!(r.verdict, "ok");
        let r = row("b", 1, 1, vec![check(100, 70, 9)], vec![]);
        assert_eq!(r.verdict, "few samples");
        let r = row("c", 1, 1, vec![check(100, 70, 10_000)], vec![]);
        assert_eq!(r.verdict, "off");
        let r = row("d", 1, 1, vec![], vec!["x".into()]);
        assert_eq!(r.verdict, "failed");
        // No live sample of 100 bytes at an interval of 64: one expected.
        let r = row("z", 1, 64, vec![check(100, 0, 0)], vec![]);
        assert_eq!(r.verdict, "few samples");
        // The median run by error.
        let r = row(
            "e",
            1,
            1,
            vec![check(100, 50, 1), check(100, 101, 1), check(100, 150, 1)],
            vec![],
        );
        assert_eq!(r.median.unwrap().est_bytes, 101);
        assert!(
            render(&Accuracy {
                date: "now".into(),
                suite: "quick".into(),
                interval_bytes: 512 * 1024,
                rows: vec![r],
            })
            .contains("| e |")
        );
    }
}

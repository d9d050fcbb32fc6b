//! From samples to numbers: the cross-allocator checksum and ops-count
//! check, medians, ratios to System and mimalloc, the pinned runs' speedup,
//! and geometric means over workloads.

use crate::allocators::{MIMALLOC, SYSTEM};
use crate::model::{Cell, Geomean, Sample};
use std::collections::HashMap;

/// The median (mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The geometric mean of positive numbers.
pub fn geomean(v: &[f64]) -> Option<f64> {
    if v.is_empty() || v.iter().any(|&x| x <= 0.0 || !x.is_finite()) {
        return None;
    }
    Some((v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp())
}

/// Checks the cells' runs workload by workload (cells of the same workload
/// did the same work): see [`agree`].
pub fn check_checksums(cells: &mut [Cell]) {
    let mut workloads: Vec<String> = cells.iter().map(|c| c.workload.clone()).collect();
    workloads.sort();
    workloads.dedup();
    for w in workloads {
        let group = cells
            .iter_mut()
            .filter(|c| c.workload == w)
            .map(|c| (c.allocator.as_str(), &mut c.samples))
            .collect();
        agree(group);
    }
}

/// Runs that did the same work — (allocator, its samples) for one workload
/// with the same parameters — must print the same checksum and, where they
/// print one, the same operation count. The reference for each is
/// System's (if its runs agree), else the most common value; a run with
/// another checksum or ops count fails. A run without an ops count (an
/// older binary) is not checked for it.
pub fn agree(mut group: Vec<(&str, &mut Vec<Sample>)>) {
    agree_on(&mut group, "checksum", true, |s| s.checksum.clone());
    agree_on(&mut group, "ops count", false, |s| {
        s.ops.map(|n| n.to_string())
    });
}

fn agree_on(
    group: &mut [(&str, &mut Vec<Sample>)],
    what: &str,
    required: bool,
    key: impl Fn(&Sample) -> Option<String>,
) {
    let good = |samples: &Vec<Sample>| -> Vec<String> {
        samples.iter().filter(|s| s.ok).filter_map(&key).collect()
    };
    let system: Vec<String> = group
        .iter()
        .filter(|(a, _)| *a == SYSTEM)
        .flat_map(|(_, s)| good(s))
        .collect();
    let reference = if !system.is_empty() && system.iter().all(|s| *s == system[0]) {
        Some(system[0].clone())
    } else {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for v in group.iter().flat_map(|(_, s)| good(s)) {
            *counts.entry(v).or_default() += 1;
        }
        counts
            .into_iter()
            .max_by_key(|(v, n)| (*n, v.clone()))
            .map(|(v, _)| v)
    };
    let Some(reference) = reference else { return };
    for (_, samples) in group.iter_mut() {
        for s in samples.iter_mut().filter(|s| s.ok) {
            match key(s) {
                Some(v) if v != reference => {
                    s.fail(format!("{what} {v} differs from the reference {reference}"))
                }
                None if required => {
                    s.fail(format!("no {what}, the reference is {reference}"));
                }
                _ => {}
            }
        }
    }
}

/// A cell is missing if its binary does not know the workload, failed if
/// any other run failed (or there were none).
pub fn status(samples: &[Sample]) -> (bool, bool) {
    let missing = samples.iter().any(|s| s.missing);
    let failed = !missing && (samples.is_empty() || samples.iter().any(|s| !s.ok));
    (failed, missing)
}

/// The runs' operation count, if every run reported the same one.
pub fn ops(samples: &[Sample]) -> Option<u64> {
    let first = samples.first()?.ops?;
    samples
        .iter()
        .all(|s| s.ops == Some(first))
        .then_some(first)
}

/// The runs' median time and their spread: the slowest run's time over
/// the fastest's (`None` if the fastest took no time).
pub fn times(samples: &[Sample]) -> (Option<f64>, Option<f64>) {
    let times: Vec<f64> = samples.iter().map(|s| s.time_s).collect();
    let fastest = times.iter().copied().fold(f64::INFINITY, f64::min);
    let slowest = times.iter().copied().fold(0.0, f64::max);
    (median(times), (fastest > 0.0).then(|| slowest / fastest))
}

/// Fills a cell's failure flags and medians from its samples.
pub fn summarise(cell: &mut Cell) {
    (cell.failed, cell.missing) = status(&cell.samples);
    if cell.failed || cell.missing {
        return;
    }
    cell.ops = ops(&cell.samples);
    let s = &cell.samples;
    (cell.median_time_s, cell.time_spread) = times(s);
    cell.median_peak_rss_kib = median(s.iter().map(|s| s.peak_rss_kib() as f64).collect());
    let idle: Vec<f64> = s
        .iter()
        .filter_map(|s| s.rss_after_idle_kib)
        .map(|k| k as f64)
        .collect();
    if idle.len() == s.len() {
        cell.median_rss_after_idle_kib = median(idle);
    }
}

/// `a / b`, where both exist and `b` is positive.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Fills every cell's ratios to System's and mimalloc's cell of the same
/// workload.
pub fn ratios(cells: &mut [Cell]) {
    let find = |cells: &[Cell], w: &str, a: &str| {
        cells
            .iter()
            .find(|c| c.workload == w && c.allocator == a)
            .map(|c| (c.median_time_s, c.median_peak_rss_kib))
    };
    for i in 0..cells.len() {
        let w = cells[i].workload.clone();
        let (st, sr) = find(cells, &w, SYSTEM).unwrap_or_default();
        let (mt, mr) = find(cells, &w, MIMALLOC).unwrap_or_default();
        let c = &mut cells[i];
        c.time_vs_system = ratio(c.median_time_s, st);
        c.rss_vs_system = ratio(c.median_peak_rss_kib, sr);
        c.time_vs_mimalloc = ratio(c.median_time_s, mt);
        c.rss_vs_mimalloc = ratio(c.median_peak_rss_kib, mr);
    }
}

/// Fills each cell's speedup from one CPU: the median time of its pinned
/// twin (same workload and allocator) over its own.
pub fn speedups(cells: &mut [Cell], pinned: &[Cell]) {
    for c in cells.iter_mut() {
        let twin = pinned
            .iter()
            .find(|p| p.workload == c.workload && p.allocator == c.allocator);
        c.speedup_from_1cpu = twin.and_then(|p| ratio(p.median_time_s, c.median_time_s));
    }
}

/// Geometric means of each allocator's ratios over the workloads where
/// the ratio exists.
pub fn geomeans(cells: &[Cell], allocators: &[&str], workloads: usize) -> Vec<Geomean> {
    allocators
        .iter()
        .map(|&a| {
            let mine: Vec<&Cell> = cells.iter().filter(|c| c.allocator == a).collect();
            let mean = |f: fn(&Cell) -> Option<f64>| {
                geomean(&mine.iter().filter_map(|c| f(c)).collect::<Vec<_>>())
            };
            Geomean {
                allocator: a.to_string(),
                time_vs_system: mean(|c| c.time_vs_system),
                time_vs_mimalloc: mean(|c| c.time_vs_mimalloc),
                rss_vs_system: mean(|c| c.rss_vs_system),
                rss_vs_mimalloc: mean(|c| c.rss_vs_mimalloc),
                speedup_from_1cpu: mean(|c| c.speedup_from_1cpu),
                over: mine.iter().filter(|c| c.time_vs_system.is_some()).count(),
                of: workloads,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Sample;

    fn cell(w: &str, a: &str, times: &[f64], sum: &str) -> Cell {
        let samples = times
            .iter()
            .map(|&t| Sample::parse(&format!("checksum={sum}"), t, (t * 1000.0) as u64))
            .collect();
        Cell {
            workload: w.into(),
            allocator: a.into(),
            samples,
            ..Cell::default()
        }
    }

    #[test]
    fn medians_and_means() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        assert!((geomean(&[1.0, 4.0]).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(geomean(&[1.0, 0.0]), None);
    }

    #[test]
    fn a_wrong_checksum_fails_the_cell_and_ratios_follow() {
        let mut cells = vec![
            cell("w", SYSTEM, &[2.0, 2.0, 2.0], "aa"),
            cell("w", "x", &[1.0, 1.0, 1.0], "aa"),
            cell("w", "bad", &[0.1, 0.1, 0.1], "bb"),
        ];
        check_checksums(&mut cells);
        cells.iter_mut().for_each(summarise);
        ratios(&mut cells);
        assert!(!cells[0].failed && !cells[1].failed && cells[2].failed);
        assert_eq!(cells[1].time_vs_system, Some(0.5));
        assert_eq!(cells[2].time_vs_system, None);
        let g = geomeans(&cells, &[SYSTEM, "x", "bad"], 1);
        assert_eq!(g[1].time_vs_system, Some(0.5));
        assert_eq!((g[2].time_vs_system, g[2].over), (None, 0));
    }

    #[test]
    fn ops_counts_must_agree_unless_absent() {
        let mut cells = vec![
            cell("w", SYSTEM, &[1.0, 1.0], "aa"),
            cell("w", "same", &[1.0], "aa"),
            cell("w", "other", &[1.0], "aa"),
            cell("w", "old", &[1.0], "aa"),
        ];
        for c in &mut cells {
            for s in &mut c.samples {
                s.ops = Some(100);
            }
        }
        cells[2].samples[0].ops = Some(99);
        cells[3].samples[0].ops = None;
        check_checksums(&mut cells);
        cells.iter_mut().for_each(summarise);
        assert!(!cells[0].failed && !cells[1].failed && !cells[3].failed);
        assert!(cells[2].failed);
        assert!(
            cells[2].samples[0]
                .error
                .as_deref()
                .unwrap()
                .contains("ops count 99")
        );
        assert_eq!((cells[0].ops, cells[3].ops), (Some(100), None));
    }

    #[test]
    fn missing_cells_are_neither_failed_nor_measured() {
        let mut c = cell("w", "old", &[1.0, 1.0], "aa");
        for s in &mut c.samples {
            s.fail("does not know it".into());
            s.missing = true;
        }
        summarise(&mut c);
        assert!(c.missing && !c.failed && c.median_time_s.is_none());
        let mut empty = cell("w", "x", &[], "aa");
        summarise(&mut empty);
        assert!(empty.failed && !empty.missing);
    }

    #[test]
    fn speedup_is_pinned_time_over_unpinned() {
        let mut cells = vec![cell("w", "a", &[1.0], "aa"), cell("w", "b", &[1.0], "aa")];
        let mut pinned = vec![cell("w", "a", &[1.8], "aa")];
        cells.iter_mut().chain(&mut pinned).for_each(summarise);
        speedups(&mut cells, &pinned);
        assert_eq!(cells[0].speedup_from_1cpu, Some(1.8));
        assert_eq!(cells[1].speedup_from_1cpu, None);
        let g = geomeans(&cells, &["a", "b"], 1);
        assert_eq!(
            (g[0].speedup_from_1cpu, g[1].speedup_from_1cpu),
            (Some(1.8), None)
        );
    }

    #[test]
    fn without_system_the_majority_is_the_reference() {
        let mut cells = vec![
            cell("w", "a", &[1.0], "aa"),
            cell("w", "b", &[1.0], "aa"),
            cell("w", "c", &[1.0], "cc"),
        ];
        check_checksums(&mut cells);
        assert!(cells[0].samples[0].ok && cells[1].samples[0].ok && !cells[2].samples[0].ok);
    }
}

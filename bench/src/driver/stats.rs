//! From samples to numbers: the cross-allocator checksum check, medians,
//! ratios to System and mimalloc, and geometric means over workloads.

use crate::allocators::{MIMALLOC, SYSTEM};
use crate::model::{Cell, Geomean};
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

/// Every allocator that ran correctly computes the same checksum for the
/// same workload and parameters. The reference is System's (if its runs
/// agree), else the most common one; any other checksum fails its sample.
pub fn check_checksums(cells: &mut [Cell]) {
    let workloads: Vec<String> = cells.iter().map(|c| c.workload.clone()).collect();
    for w in workloads {
        let of = |c: &Cell| c.workload == w;
        let system: Vec<&str> = cells
            .iter()
            .filter(|c| of(c) && c.allocator == SYSTEM)
            .flat_map(|c| {
                c.samples
                    .iter()
                    .filter(|s| s.ok)
                    .filter_map(|s| s.checksum.as_deref())
            })
            .collect();
        let reference = if !system.is_empty() && system.iter().all(|s| *s == system[0]) {
            Some(system[0].to_string())
        } else {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for s in cells.iter().filter(|c| of(c)).flat_map(|c| &c.samples) {
                if let (true, Some(sum)) = (s.ok, s.checksum.as_deref()) {
                    *counts.entry(sum).or_default() += 1;
                }
            }
            counts
                .into_iter()
                .max_by_key(|&(sum, n)| (n, sum.to_string()))
                .map(|(s, _)| s.to_string())
        };
        let Some(reference) = reference else { continue };
        for c in cells.iter_mut().filter(|c| c.workload == w) {
            for s in c.samples.iter_mut().filter(|s| s.ok) {
                if s.checksum.as_deref() != Some(reference.as_str()) {
                    let got = s.checksum.clone().unwrap_or_default();
                    s.fail(format!(
                        "checksum {got} differs from the reference {reference}"
                    ));
                }
            }
        }
    }
}

/// Fills a cell's failure flag and medians from its samples.
pub fn summarise(cell: &mut Cell) {
    cell.failed = cell.samples.is_empty() || cell.samples.iter().any(|s| !s.ok);
    if cell.failed {
        return;
    }
    let s = &cell.samples;
    cell.median_time_s = median(s.iter().map(|s| s.time_s).collect());
    let fastest = s.iter().map(|s| s.time_s).fold(f64::INFINITY, f64::min);
    let slowest = s.iter().map(|s| s.time_s).fold(0.0, f64::max);
    cell.time_spread = (fastest > 0.0).then(|| slowest / fastest);
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

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
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

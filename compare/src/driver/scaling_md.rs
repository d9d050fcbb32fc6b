//! scaling.md: the machine line, what was run, the per-column summary
//! (throughput at the most threads over at 2), then a table per workload —
//! rows are thread counts, columns allocators, cells median M ops/s with
//! the best per row in bold and the others' fraction of it — and the
//! failures.

use crate::report_md;
use crate::scaling_model::{Point, ScalingReport, allocator_of};
use std::fmt::Write;

use report_md::NOISY;

/// The whole scaling report as Markdown.
pub fn render(r: &ScalingReport) -> String {
    let mut s = String::new();
    let h = &r.header;
    let line = report_md::machine_line(&h.cpu, h.cores, &h.kernel, &h.date, &r.allocators);
    let _ = writeln!(s, "{line}");
    let counts: Vec<String> = h.threads.iter().map(usize::to_string).collect();
    let _ = writeln!(s, "\n# slabpool scaling ({} suite sizes)\n", h.suite);
    let _ = writeln!(
        s,
        "Each threaded workload ran at {} threads, {} time(s) per point, each run a separate \
         process, interleaved across allocators. Strong scaling: every run of a workload does \
         the same total work (what the suite does at 2 threads), shared out over its threads, \
         so an allocator that scales keeps its throughput as threads grow. Cells are million \
         allocator operations per second (allocations, frees and reallocations, as the \
         workload counts them, over the median wall time including process start-up); the \
         best of each row is in bold, the others show their fraction of it.{} A cell marked † \
         had its slowest run more than {:.0}% slower than its fastest. Absolute figures on a \
         shared machine are noisy.",
        counts.join(", "),
        h.runs,
        match h.pinned_cpu {
            Some(cpu) => format!(
                " Columns ending in \"1 CPU\" ran pinned to CPU {cpu} (same threads, same work)."
            ),
            None => String::new(),
        },
        (NOISY - 1.0) * 100.0
    );
    summary(&mut s, r);
    for w in &r.workloads {
        let _ = writeln!(s, "\n## {}\n", w.name);
        let _ = writeln!(
            s,
            "{}. Total work of every run: size {} at 2 threads.\n",
            w.about, w.size_at_2
        );
        let names: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
        let _ = writeln!(s, "| threads | size | {} |", names.join(" | "));
        let _ = writeln!(s, "|---:|---:|{}", "---:|".repeat(names.len()));
        for row in &w.rows {
            let Some(size) = row.size else {
                let _ = writeln!(
                    s,
                    "| {} | – | {} |",
                    row.threads,
                    vec!["not run (needs 2 threads)"; names.len()].join(" | ")
                );
                continue;
            };
            let cells: Vec<String> = r
                .columns
                .iter()
                .map(|c| cell(r.point(&w.name, row.threads, &c.name), c.pinned))
                .collect();
            let _ = writeln!(s, "| {} | {size} | {} |", row.threads, cells.join(" | "));
        }
    }
    notes(&mut s, r);
    s
}

/// One table cell (a pinned series is never the row's best: it shows its
/// fraction of the best allocator on all CPUs).
fn cell(p: Option<&Point>, pinned: bool) -> String {
    let Some(p) = p else { return "–".into() };
    if p.missing {
        return "n/a".into();
    }
    if p.failed {
        return report_md::failed_cell(&p.samples);
    }
    let Some(mops) = p.mops else {
        return "no ops count".into();
    };
    let noisy = if p.time_spread.is_some_and(|x| x > NOISY) {
        " †"
    } else {
        ""
    };
    match p.vs_best {
        Some(x) if !pinned && (x - 1.0).abs() < 1e-9 => format!("**{mops:.2}**{noisy}"),
        Some(x) => format!("{mops:.2} ({x:.2}×){noisy}"),
        None => format!("{mops:.2}{noisy}"),
    }
}

fn summary(s: &mut String, r: &ScalingReport) {
    if r.summary.is_empty() {
        return;
    }
    let (base, max) = (r.header.base_threads, r.max_threads());
    let _ = writeln!(s, "\n## Throughput at {max} threads ÷ at {base} threads\n");
    let _ = writeln!(
        s,
        "Per allocator: 1.00 keeps its throughput from {base} to {max} threads; below 1 it loses \
         throughput as threads are added (on a machine with fewer cores than threads, threads \
         take turns, so a lock held by a preempted thread stalls the others).\n"
    );
    let names: Vec<&str> = r.workloads.iter().map(|w| w.name.as_str()).collect();
    let _ = writeln!(s, "| allocator | {} | geometric mean |", names.join(" | "));
    let _ = writeln!(s, "|---|{}---:|", "---:|".repeat(names.len()));
    for line in &r.summary {
        let ratios: Vec<String> = line
            .ratios
            .iter()
            .map(|x| x.ratio.map_or("–".into(), |v| format!("{v:.2}")))
            .collect();
        let mean = line.geomean.map_or("–".into(), |v| format!("**{v:.2}**"));
        let _ = writeln!(s, "| {} | {} | {mean} |", line.column, ratios.join(" | "));
    }
}

fn notes(s: &mut String, r: &ScalingReport) {
    let failed: Vec<_> = r
        .points
        .iter()
        .filter(|p| p.failed)
        .map(|p| {
            let what = format!("{} at {} threads under {}", p.workload, p.threads, p.column);
            (what, p.samples.as_slice())
        })
        .collect();
    report_md::failures_section(s, &failed);
    report_md::missing(
        s,
        r.points
            .iter()
            .filter(|p| p.missing)
            .map(|p| (allocator_of(&r.columns, &p.column), p.workload.as_str())),
    );
    let no_ops: Vec<&str> = r
        .columns
        .iter()
        .filter(|c| {
            r.points
                .iter()
                .any(|p| p.column == c.name && !p.failed && !p.missing && p.ops.is_none())
        })
        .map(|c| c.name.as_str())
        .collect();
    if !no_ops.is_empty() {
        let _ = writeln!(
            s,
            "\n\"no ops count\": {} printed no operation count (a build older than the `ops=` \
             line), so there is no throughput to show; its times are in scaling.json.",
            no_ops.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaling::tests::sample_report;

    #[test]
    fn renders_best_failed_missing_and_not_run() {
        let md = render(&sample_report());
        assert!(
            md.contains("| threads | size | A | B | A 1 CPU | B 1 CPU |"),
            "{md}"
        );
        // larson at 2: everyone 4.00, the best in bold.
        let ties = "| 2 | 100 | **4.00** | **4.00** | 4.00 (1.00×) | 4.00 (1.00×) |";
        assert!(md.contains(ties), "{md}");
        // At 8, A failed and B is the best unpinned; A pinned is 2x B.
        let eight = "| 8 | 25 | FAILED (2/2) | **2.00** | 4.00 (2.00×) | 2.00 (1.00×) |";
        assert!(md.contains(eight), "{md}");
        assert!(md.contains("| 1 | – | not run (needs 2 threads)"), "{md}");
        assert!(
            md.contains("| 2 | 100 | **4.00** | n/a | 4.00 (1.00×) | n/a |"),
            "{md}"
        );
        assert!(md.contains("## Throughput at 8 threads ÷ at 2 threads"));
        assert!(md.contains("| B | 0.50 | – | **0.50** |"), "{md}");
        assert!(md.contains("- larson at 8 threads under A, run 1: killed by signal 11"));
        assert!(md.contains("B's binary does not know xmalloc"));
    }

    #[test]
    fn an_older_binary_without_ops_shows_no_throughput() {
        let mut r = sample_report();
        for p in r.points.iter_mut().filter(|p| p.column == "B") {
            p.ops = None;
            p.mops = None;
            p.vs_best = None;
        }
        let md = render(&r);
        assert!(md.contains("| 2 | 100 | **4.00** | no ops count |"), "{md}");
        assert!(md.contains("\"no ops count\": B printed no operation count"));
    }
}

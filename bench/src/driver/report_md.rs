//! report.md: the first line names the machine, date and every
//! allocator's version; then tables of median time and peak RSS, their
//! ratios to System and to mimalloc with geometric means, burst-idle's RSS
//! after the idle, failures, and what each workload does.

use crate::allocators::{MIMALLOC, SYSTEM};
use crate::model::{Cell, Geomean, Report};
use std::fmt::Write;

/// A time cell whose slowest run is this much slower than its fastest is
/// marked as noisy.
const NOISY: f64 = 1.2;

/// The whole report as Markdown.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let h = &r.header;
    let versions: Vec<String> = r
        .allocators
        .iter()
        .map(|a| format!("{}: {}", a.name, a.version))
        .collect();
    let _ = writeln!(
        s,
        "{} · {} cores · {} · {} · {}",
        h.cpu,
        h.cores,
        h.kernel,
        h.date,
        versions.join(" · ")
    );
    let _ = writeln!(s, "\n# slabpool comparison suite ({} suite)\n", h.suite);
    let _ = writeln!(
        s,
        "Each (workload, allocator) pair ran {} time(s), each run a separate process running the \
         same workload code with that allocator as `#[global_allocator]`; runs were interleaved \
         across allocators. Cells are medians; ratios divide by System's or mimalloc's median for \
         the same workload (lower is better). Threaded workloads used {} threads. A cell with any \
         failed run shows FAILED. Absolute times on a shared machine are noisy; the ratios are \
         what to read.",
        h.runs, h.threads
    );
    section(&mut s, "Wall time", "Median wall time (s)", r, |c| {
        let noisy = c.time_spread.is_some_and(|x| x > NOISY);
        c.median_time_s
            .map(|t| format!("{t:.3}{}", if noisy { " †" } else { "" }))
    });
    if r.cells
        .iter()
        .any(|c| c.time_spread.is_some_and(|x| x > NOISY))
    {
        let _ = writeln!(
            s,
            "\n† its slowest run took more than {:.0}% longer than its fastest: the machine \
             was busy or the allocator is erratic; see report.json for every run.",
            (NOISY - 1.0) * 100.0
        );
    }
    if has(r, SYSTEM) {
        ratio_table(
            &mut s,
            "Time × System",
            r,
            |c| c.time_vs_system,
            |g| g.time_vs_system,
        );
    }
    if has(r, MIMALLOC) {
        ratio_table(
            &mut s,
            "Time × mimalloc",
            r,
            |c| c.time_vs_mimalloc,
            |g| g.time_vs_mimalloc,
        );
    }
    section(
        &mut s,
        "Peak RSS",
        "Median peak RSS (MiB, the child's VmHWM)",
        r,
        |c| c.median_peak_rss_kib.map(|k| format!("{:.1}", k / 1024.0)),
    );
    if has(r, SYSTEM) {
        ratio_table(
            &mut s,
            "Peak RSS × System",
            r,
            |c| c.rss_vs_system,
            |g| g.rss_vs_system,
        );
    }
    if has(r, MIMALLOC) {
        ratio_table(
            &mut s,
            "Peak RSS × mimalloc",
            r,
            |c| c.rss_vs_mimalloc,
            |g| g.rss_vs_mimalloc,
        );
    }
    idle_table(&mut s, r);
    targets(&mut s, r);
    failures(&mut s, r);
    workloads(&mut s, r);
    s
}

/// The short form for the repository README: the machine line, the time
/// and peak-RSS ratios to System and to mimalloc with their geometric means,
/// and the targets check.
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    let h = &r.header;
    let _ = writeln!(
        s,
        "Quick suite ({} runs per pair, {} threads), {} · {} cores · {} · {}. \
         Versions, medians and every run: `target/slabpool-bench/report.{{md,json}}` \
         after `cargo run --release -p slabpool-bench`.",
        h.runs, h.threads, h.cpu, h.cores, h.kernel, h.date
    );
    if has(r, SYSTEM) {
        ratio_table(
            &mut s,
            "Time × System (lower is better)",
            r,
            |c| c.time_vs_system,
            |g| g.time_vs_system,
        );
        ratio_table(
            &mut s,
            "Peak RSS × System",
            r,
            |c| c.rss_vs_system,
            |g| g.rss_vs_system,
        );
    }
    if has(r, MIMALLOC) {
        ratio_table(
            &mut s,
            "Time × mimalloc",
            r,
            |c| c.time_vs_mimalloc,
            |g| g.time_vs_mimalloc,
        );
    }
    targets(&mut s, r);
    s
}

fn has(r: &Report, allocator: &str) -> bool {
    r.allocators.iter().any(|a| a.name == allocator)
}

fn header_row(s: &mut String, first: &str, r: &Report) {
    let names: Vec<&str> = r.allocators.iter().map(|a| a.name.as_str()).collect();
    let _ = writeln!(s, "| {first} | {} |", names.join(" | "));
    let _ = writeln!(s, "|---|{}", "---:|".repeat(names.len()));
}

fn value(c: Option<&Cell>, f: &impl Fn(&Cell) -> Option<String>) -> String {
    match c {
        None => "–".into(),
        Some(c) if c.failed => {
            let bad = c.samples.iter().filter(|s| !s.ok).count();
            format!("FAILED ({bad}/{})", c.samples.len())
        }
        Some(c) => f(c).unwrap_or_else(|| "–".into()),
    }
}

fn table(s: &mut String, title: &str, r: &Report, f: impl Fn(&Cell) -> Option<String>) {
    let _ = writeln!(s, "\n### {title}\n");
    header_row(s, "workload", r);
    for w in &r.workloads {
        let cells: Vec<String> = r
            .allocators
            .iter()
            .map(|a| value(r.cell(&w.name, &a.name), &f))
            .collect();
        let _ = writeln!(s, "| {} | {} |", w.name, cells.join(" | "));
    }
}

fn section(
    s: &mut String,
    heading: &str,
    title: &str,
    r: &Report,
    f: impl Fn(&Cell) -> Option<String>,
) {
    let _ = writeln!(s, "\n## {heading}");
    table(s, title, r, f);
}

fn ratio_table(
    s: &mut String,
    title: &str,
    r: &Report,
    f: impl Fn(&Cell) -> Option<f64>,
    g: impl Fn(&Geomean) -> Option<f64>,
) {
    table(s, title, r, |c| f(c).map(|x| format!("{x:.2}")));
    let means: Vec<String> = r
        .geomeans
        .iter()
        .map(|m| match g(m) {
            Some(x) if m.over < m.of => format!("**{x:.2}** ({} of {})", m.over, m.of),
            Some(x) => format!("**{x:.2}**"),
            None => "–".into(),
        })
        .collect();
    let _ = writeln!(s, "| **geometric mean** | {} |", means.join(" | "));
}

fn idle_table(s: &mut String, r: &Report) {
    let idle: Vec<_> = r
        .cells
        .iter()
        .filter(|c| c.median_rss_after_idle_kib.is_some())
        .collect();
    let Some(first) = idle.first() else { return };
    let w = first.workload.clone();
    let _ = writeln!(s, "\n## {w}: RSS after the idle\n");
    let _ = writeln!(
        s,
        "Resident set 200 ms after every object was freed (threads still alive), next to the peak.\n"
    );
    header_row(s, "MiB", r);
    let row = |f: &dyn Fn(&Cell) -> Option<String>| -> String {
        r.allocators
            .iter()
            .map(|a| value(r.cell(&w, &a.name), &f))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let mib = |k: Option<f64>| k.map(|k| format!("{:.1}", k / 1024.0));
    let _ = writeln!(
        s,
        "| after idle | {} |",
        row(&|c| mib(c.median_rss_after_idle_kib))
    );
    let _ = writeln!(s, "| peak | {} |", row(&|c| mib(c.median_peak_rss_kib)));
    let kept = |c: &Cell| {
        Some(format!(
            "{:.0}%",
            100.0 * c.median_rss_after_idle_kib? / c.median_peak_rss_kib?
        ))
    };
    let _ = writeln!(s, "| kept of peak | {} |", row(&kept));
}

fn targets(s: &mut String, r: &Report) {
    if r.targets.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n## Issue 6 targets for slabpool, on this run\n");
    let _ = writeln!(s, "| target | measured | met |\n|---|---|---|");
    for t in &r.targets {
        let met = if t.met { "yes" } else { "**no**" };
        let _ = writeln!(s, "| {} | {} | {met} |", t.target, t.measured);
    }
}

fn failures(s: &mut String, r: &Report) {
    let failed: Vec<_> = r.cells.iter().filter(|c| c.failed).collect();
    if failed.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n## Failures\n");
    for c in failed {
        for (i, smp) in c.samples.iter().enumerate().filter(|(_, smp)| !smp.ok) {
            let why = smp.error.as_deref().unwrap_or("failed");
            let _ = writeln!(
                s,
                "- {} under {}, run {}: {}",
                c.workload,
                c.allocator,
                i + 1,
                why
            );
        }
    }
}

fn workloads(s: &mut String, r: &Report) {
    let _ = writeln!(s, "\n## Workloads\n");
    let _ = writeln!(
        s,
        "| workload | size | threads | what it does |\n|---|---:|---:|---|"
    );
    for w in &r.workloads {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            w.name, w.size, w.threads, w.about
        );
    }
}

//! report.md: the first line names the machine, date and every
//! allocator's version; then tables of median time and peak RSS, their
//! ratios to System and to mimalloc with geometric means, burst-idle's RSS
//! after the idle, the threaded workloads' speedup from one CPU to all,
//! the small programs' own tables, failures, and what each workload does.

use crate::allocators::{MIMALLOC, SYSTEM};
use crate::model::{AllocatorInfo, Cell, Geomean, Header, Report, Sample};
use std::fmt::Write;

/// A time cell whose slowest run is this much slower than its fastest is
/// marked as noisy (here and in scaling.md).
pub const NOISY: f64 = 1.2;

/// The first line of a report: the machine, the date and every
/// allocator's version.
pub fn machine_line(
    cpu: &str,
    cores: usize,
    kernel: &str,
    date: &str,
    allocators: &[AllocatorInfo],
) -> String {
    let versions: Vec<String> = allocators
        .iter()
        .map(|a| format!("{}: {}", a.name, a.version))
        .collect();
    format!(
        "{cpu} · {cores} cores · {kernel} · {date} · {}",
        versions.join(" · ")
    )
}

/// The whole report as Markdown.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let h = &r.header;
    let line = machine_line(&h.cpu, h.cores, &h.kernel, &h.date, &r.allocators);
    let _ = writeln!(s, "{line}");
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
    if let Some(line) = target_line(h) {
        let _ = writeln!(s, "\n{line}");
    }
    if let Some(cpu) = h.pinned_cpu {
        let _ = writeln!(
            s,
            "\nThe threaded workloads also ran pinned to CPU {cpu} (same thread count, same \
             rounds); see \"Speedup from 1 CPU to all CPUs\"."
        );
    }
    if !r.workloads.is_empty() {
        main_tables(&mut s, r);
        idle_table(&mut s, r);
        speedup_table(&mut s, r, "##");
    }
    small_programs(&mut s, r);
    targets(&mut s, r);
    failures(&mut s, r);
    workloads(&mut s, r);
    s
}

/// The main suite's tables: time and peak RSS, their ratios to System
/// and to mimalloc with geometric means.
fn main_tables(s: &mut String, r: &Report) {
    section(s, "Wall time", "Median wall time (s)", r, time_cell);
    noisy_note(s, r);
    if has(r, SYSTEM) {
        ratio_table(
            s,
            "Time × System",
            r,
            |c| c.time_vs_system,
            |g| g.time_vs_system,
        );
    }
    if has(r, MIMALLOC) {
        ratio_table(
            s,
            "Time × mimalloc",
            r,
            |c| c.time_vs_mimalloc,
            |g| g.time_vs_mimalloc,
        );
    }
    section(
        s,
        "Peak RSS",
        "Median peak RSS (MiB, the child's VmHWM)",
        r,
        |c| c.median_peak_rss_kib.map(|k| format!("{:.1}", k / 1024.0)),
    );
    if has(r, SYSTEM) {
        ratio_table(
            s,
            "Peak RSS × System",
            r,
            |c| c.rss_vs_system,
            |g| g.rss_vs_system,
        );
    }
    if has(r, MIMALLOC) {
        ratio_table(
            s,
            "Peak RSS × mimalloc",
            r,
            |c| c.rss_vs_mimalloc,
            |g| g.rss_vs_mimalloc,
        );
    }
}

/// A median time cell, marked † if noisy.
fn time_cell(c: &Cell) -> Option<String> {
    let noisy = c.time_spread.is_some_and(|x| x > NOISY);
    c.median_time_s
        .map(|t| format!("{t:.3}{}", if noisy { " †" } else { "" }))
}

/// The note under a time table with any noisy cell.
fn noisy_note(s: &mut String, r: &Report) {
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
}

/// The small programs' section, if any ran: median time and its ratio to
/// System, median peak RSS in KiB and its ratio to System, each ratio
/// with its geometric mean over the small programs only.
fn small_programs(s: &mut String, r: &Report) {
    if r.small_programs.workloads.is_empty() {
        return;
    }
    let v = r.small_view();
    let _ = writeln!(s, "\n## Small programs\n");
    let _ = writeln!(
        s,
        "Short single-threaded programs whose live heap peaks between 1 and 10 MiB, where an \
         allocator's fixed costs and size rounding show. They are not in the main suite's \
         tables, geometric means, chart or targets; the geometric means here are over these \
         programs only."
    );
    table(s, "Median wall time (s)", &v, time_cell);
    noisy_note(s, &v);
    if has(r, SYSTEM) {
        ratio_table(
            s,
            "Time × System",
            &v,
            |c| c.time_vs_system,
            |g| g.time_vs_system,
        );
    }
    table(s, "Median peak RSS (KiB, the child's VmHWM)", &v, |c| {
        c.median_peak_rss_kib.map(|k| format!("{k:.0}"))
    });
    if has(r, SYSTEM) {
        ratio_table(
            s,
            "Peak RSS × System",
            &v,
            |c| c.rss_vs_system,
            |g| g.rss_vs_system,
        );
    }
}

/// The short form for the repository README: the machine line, the time
/// and peak-RSS ratios to System and to mimalloc with their geometric means,
/// the small programs' ratios to System, and the targets check.
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    let h = &r.header;
    let (dir, args) = match &h.target {
        Some(t) => (format!("{t}/"), format!(" -- --target {t}")),
        None => (String::new(), String::new()),
    };
    let _ = writeln!(
        s,
        "Quick suite ({} runs per pair, {} threads), {} · {} cores · {} · {}. \
         Versions, medians and every run: `target/slabpool-compare/{dir}report.{{md,json}}` \
         after `cargo run --release -p slabpool-compare{args}`.",
        h.runs, h.threads, h.cpu, h.cores, h.kernel, h.date
    );
    if let Some(line) = target_line(h) {
        let _ = writeln!(s, "\n{line}");
    }
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
    speedup_table(&mut s, r, "###");
    if has(r, SYSTEM) && !r.small_programs.workloads.is_empty() {
        let v = r.small_view();
        let (time, rss) = (
            "Small programs: time × System",
            "Small programs: peak RSS × System",
        );
        ratio_table(&mut s, time, &v, |c| c.time_vs_system, |g| g.time_vs_system);
        ratio_table(&mut s, rss, &v, |c| c.rss_vs_system, |g| g.rss_vs_system);
    }
    targets(&mut s, r);
    s
}

/// For a run built for another target: which, what System is there, and
/// the peers that did not build for it.
fn target_line(h: &Header) -> Option<String> {
    let t = h.target.as_deref()?;
    let system = if t.contains("musl") {
        "musl's malloc"
    } else {
        "that target's C library malloc"
    };
    let mut line = format!("Built for `{t}`: System is {system}.");
    if !h.left_out.is_empty() {
        line.push_str(&format!(
            " Left out, since they do not build for it: {}.",
            h.left_out.join(", ")
        ));
    }
    Some(line)
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
        Some(c) if c.missing => "n/a".into(),
        Some(c) if c.failed => failed_cell(&c.samples),
        Some(c) => f(c).unwrap_or_else(|| "–".into()),
    }
}

/// A failed cell (here and in scaling.md): how many of its runs failed.
pub fn failed_cell(samples: &[Sample]) -> String {
    let bad = samples.iter().filter(|s| !s.ok).count();
    format!("FAILED ({bad}/{})", samples.len())
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

/// The speedup table under a heading of `level` (`##` in the report, `###`
/// in the README summary).
fn speedup_table(s: &mut String, r: &Report, level: &str) {
    let Some(cpu) = r.header.pinned_cpu else {
        return;
    };
    let _ = writeln!(s, "\n{level} Speedup from 1 CPU to all CPUs\n");
    let _ = writeln!(
        s,
        "Median wall time with the child pinned to CPU {cpu} divided by the median wall time \
         on all {} CPUs, same workload, same {} threads. Above 1: the allocator gains from \
         the other CPUs; near or below 1: it does not, for example because its threads \
         share cache lines or wait for each other's locks.\n",
        r.header.cores, r.header.threads
    );
    header_row(s, "workload", r);
    for w in r
        .workloads
        .iter()
        .filter(|w| r.pinned.iter().any(|p| p.workload == w.name))
    {
        let cells: Vec<String> = r
            .allocators
            .iter()
            .map(|a| {
                let pinned = r.pinned_cell(&w.name, &a.name);
                match (r.cell(&w.name, &a.name), pinned) {
                    (Some(c), Some(p)) if !c.failed && !c.missing && (p.failed || p.missing) => {
                        format!("{} (1 CPU)", value(Some(p), &|_| None))
                    }
                    (c, _) => value(c, &|c| c.speedup_from_1cpu.map(|x| format!("{x:.2}"))),
                }
            })
            .collect();
        let _ = writeln!(s, "| {} | {} |", w.name, cells.join(" | "));
    }
    let means: Vec<String> = r
        .geomeans
        .iter()
        .map(|m| match m.speedup_from_1cpu {
            Some(x) => format!("**{x:.2}**"),
            None => "–".into(),
        })
        .collect();
    let _ = writeln!(s, "| **geometric mean** | {} |", means.join(" | "));
}

fn targets(s: &mut String, r: &Report) {
    if r.targets.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n## Targets for slabpool, on this run\n");
    let _ = writeln!(s, "| target | measured | met |\n|---|---|---|");
    for t in &r.targets {
        let met = if t.met { "yes" } else { "**no**" };
        let _ = writeln!(s, "| {} | {} | {met} |", t.target, t.measured);
    }
}

fn failures(s: &mut String, r: &Report) {
    let pinned = |c: &Cell| {
        let p = r.pinned.iter().any(|p| std::ptr::eq(p, c));
        if p { " (pinned to 1 CPU)" } else { "" }
    };
    let failed: Vec<_> = r
        .cells
        .iter()
        .chain(&r.pinned)
        .chain(&r.small_programs.cells)
        .filter(|c| c.failed)
        .map(|c| {
            let what = format!("{} under {}{}", c.workload, c.allocator, pinned(c));
            (what, c.samples.as_slice())
        })
        .collect();
    failures_section(s, &failed);
    missing(
        s,
        r.cells
            .iter()
            .chain(&r.small_programs.cells)
            .filter(|c| c.missing)
            .map(|c| (c.allocator.as_str(), c.workload.as_str())),
    );
}

/// The failures section (here and in scaling.md), if any: every failed
/// run of each failed (what, its runs), with its error.
pub fn failures_section(s: &mut String, failed: &[(String, &[Sample])]) {
    if failed.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n## Failures\n");
    for (what, samples) in failed {
        for (i, smp) in samples.iter().enumerate().filter(|(_, smp)| !smp.ok) {
            let why = smp.error.as_deref().unwrap_or("failed");
            let _ = writeln!(s, "- {what}, run {}: {why}", i + 1);
        }
    }
}

/// The n/a note: which binaries did not know which workloads.
pub fn missing<'a>(s: &mut String, cells: impl Iterator<Item = (&'a str, &'a str)>) {
    let mut by: Vec<(&str, Vec<&str>)> = Vec::new();
    for (a, w) in cells {
        match by.iter_mut().find(|(x, _)| *x == a) {
            Some((_, ws)) if !ws.contains(&w) => ws.push(w),
            Some(_) => {}
            None => by.push((a, vec![w])),
        }
    }
    if by.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n## Not run (n/a)\n");
    for (a, ws) in by {
        let _ = writeln!(
            s,
            "- {a}'s binary does not know {} (an older build): those cells show n/a.",
            ws.join(", ")
        );
    }
}

fn workloads(s: &mut String, r: &Report) {
    let _ = writeln!(s, "\n## Workloads\n");
    let _ = writeln!(
        s,
        "| workload | size | threads | what it does |\n|---|---:|---:|---|"
    );
    for w in r.workloads.iter().chain(&r.small_programs.workloads) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            w.name, w.size, w.threads, w.about
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AllocatorInfo, Header, Sample, SmallPrograms, WorkloadInfo};
    use crate::stats;

    fn cell(w: &str, a: &str, time: f64) -> Cell {
        Cell {
            workload: w.into(),
            allocator: a.into(),
            samples: vec![Sample::parse("checksum=aa\nops=10\n", time, 1000)],
            ..Cell::default()
        }
    }

    /// larson (threaded, pinned twins) and large (not threaded) under
    /// System, slabpool and an older build "base" that does not know
    /// larson; slabpool's pinned larson run crashed.
    fn report() -> Report {
        let mut cells = vec![
            cell("larson", SYSTEM, 1.0),
            cell("larson", "slabpool", 0.5),
            cell("larson", "base", 0.5),
            cell("large", SYSTEM, 1.0),
            cell("large", "slabpool", 2.0),
            cell("large", "base", 2.0),
        ];
        cells[2].samples[0] = Sample::failed("does not know the workload".into());
        cells[2].samples[0].missing = true;
        let mut pinned = vec![
            cell("larson", SYSTEM, 1.5),
            cell("larson", "slabpool", 0.5),
            cell("larson", "base", 0.5),
        ];
        pinned[1].samples[0].fail("killed by signal 11 (SIGSEGV)".into());
        pinned[2].samples[0] = cells[2].samples[0].clone();
        cells
            .iter_mut()
            .chain(&mut pinned)
            .for_each(stats::summarise);
        stats::ratios(&mut cells);
        stats::speedups(&mut cells, &pinned);
        let names = [SYSTEM, "slabpool", "base"];
        let geomeans = stats::geomeans(&cells, &names, 2);
        let info = |w: &str, threads| WorkloadInfo {
            name: w.into(),
            about: "about".into(),
            size: 1,
            threads,
        };
        Report {
            header: Header {
                cpu: "cpu".into(),
                cores: 2,
                kernel: "k".into(),
                date: "d".into(),
                suite: "quick".into(),
                runs: 1,
                threads: 2,
                pinned_cpu: Some(0),
                target: None,
                left_out: Vec::new(),
            },
            allocators: names
                .iter()
                .map(|n| AllocatorInfo {
                    name: n.to_string(),
                    version: "v".into(),
                })
                .collect(),
            workloads: vec![info("larson", 2), info("large", 1)],
            cells,
            pinned,
            geomeans,
            small_programs: SmallPrograms::default(),
            targets: Vec::new(),
        }
    }

    #[test]
    fn renders_missing_cells_pinned_failures_and_the_speedup() {
        let r = report();
        assert!(r.any_failed());
        let md = render(&r);
        // Existing tables: the older build's unknown workload is n/a.
        assert!(md.contains("| larson | 1.000 | 0.500 | n/a |"), "{md}");
        assert!(md.contains("| large | 1.000 | 2.000 | 2.000 |"), "{md}");
        // The speedup table has the threaded workloads only.
        assert!(md.contains("## Speedup from 1 CPU to all CPUs"), "{md}");
        assert!(md.contains("pinned to CPU 0"));
        assert!(
            md.contains("| larson | 1.50 | FAILED (1/1) (1 CPU) | n/a |"),
            "{md}"
        );
        assert!(!md.contains("| large | 1.50"));
        assert!(
            md.contains("| **geometric mean** | **1.50** | – | – |"),
            "{md}"
        );
        assert!(
            md.contains("- larson under slabpool (pinned to 1 CPU), run 1: killed by signal 11")
        );
        assert!(
            md.contains("- base's binary does not know larson (an older build)"),
            "{md}"
        );
        // And the JSON carries the pinned cells and the speedups.
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["pinned"].as_array().unwrap().len(), 3);
        assert_eq!(json["cells"][0]["speedup_from_1cpu"], 1.5);
    }

    /// `report()` with two small programs: sp-a (slabpool 0.5× System's
    /// time, 1.5× its RSS) and sp-b (2× and 0.5×).
    fn with_small() -> Report {
        let mut r = report();
        let small = |w: &str, a: &str, time: f64, hwm: u64| {
            let out = format!("checksum=aa\nops=10\nhwm_kib={hwm}\n");
            Cell {
                workload: w.into(),
                allocator: a.into(),
                samples: vec![Sample::parse(&out, time, 9999)],
                ..Cell::default()
            }
        };
        let mut cells = vec![
            small("sp-a", SYSTEM, 0.2, 2000),
            small("sp-a", "slabpool", 0.1, 3000),
            small("sp-b", SYSTEM, 0.1, 4000),
            small("sp-b", "slabpool", 0.2, 2000),
        ];
        cells.iter_mut().for_each(stats::summarise);
        stats::ratios(&mut cells);
        let names = [SYSTEM, "slabpool", "base"];
        r.small_programs = SmallPrograms {
            workloads: ["sp-a", "sp-b"]
                .map(|w| WorkloadInfo {
                    name: w.into(),
                    about: "small".into(),
                    size: 1,
                    threads: 1,
                })
                .into(),
            geomeans: stats::geomeans(&cells, &names, 2),
            cells,
        };
        r
    }

    #[test]
    fn small_programs_have_a_section_of_their_own() {
        let before = render(&report());
        assert!(!before.contains("Small programs"));
        let r = with_small();
        let md = render(&r);
        // The main tables are as they were.
        let main = before.split("\n## Targets").next().unwrap();
        assert!(md.contains(main.split("\n## Failures").next().unwrap()));
        let small = md.split("## Small programs").nth(1).expect("the section");
        assert!(small.contains("| sp-a | 0.200 | 0.100 | – |"), "{small}");
        assert!(small.contains("| sp-a | 2000 | 3000 | – |"), "{small}");
        assert!(small.contains("| sp-b | 1.00 | 0.50 | – |"), "{small}");
        // Geometric means over the small programs only: √(0.5·2) and
        // √(1.5·0.5).
        assert!(small.contains("| **geometric mean** | **1.00** | **1.00** | – |"));
        assert!(small.contains("| **geometric mean** | **1.00** | **0.87** | – |"));
        assert!(
            md.contains("| sp-b | 1 | 1 | small |"),
            "the workloads list"
        );
        let sum = summary(&r);
        assert!(
            sum.contains("### Small programs: peak RSS × System"),
            "{sum}"
        );
        // JSON keeps them apart from the main cells.
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["small_programs"]["cells"].as_array().unwrap().len(), 4);
        assert_eq!(json["cells"].as_array().unwrap().len(), 6);
        // A run of only the small programs has no empty main tables.
        let mut only = r.clone();
        only.workloads.clear();
        only.cells.clear();
        only.pinned.clear();
        let md = render(&only);
        assert!(md.contains("## Small programs") && !md.contains("## Wall time"));
        assert!(crate::chart::render(&only).is_ok());
    }

    #[test]
    fn without_pinned_runs_there_is_no_speedup_table() {
        let mut r = report();
        r.pinned.clear();
        r.header.pinned_cpu = None;
        let md = render(&r);
        assert!(!md.contains("Speedup from 1 CPU"));
        assert!(!md.contains("pinned to CPU"));
    }

    #[test]
    fn names_the_target_and_the_peers_left_out() {
        let mut r = report();
        assert!(!render(&r).contains("Built for"));
        r.header.target = Some("x86_64-unknown-linux-musl".into());
        r.header.left_out = vec!["snmalloc".into()];
        let line = "Built for `x86_64-unknown-linux-musl`: System is musl's malloc. \
                    Left out, since they do not build for it: snmalloc.";
        assert!(render(&r).contains(line));
        assert!(summary(&r).contains(line));
        let run = "`target/slabpool-compare/x86_64-unknown-linux-musl/report.{md,json}` after \
                   `cargo run --release -p slabpool-compare -- --target x86_64-unknown-linux-musl`";
        assert!(summary(&r).contains(run), "{}", summary(&r));
    }
}

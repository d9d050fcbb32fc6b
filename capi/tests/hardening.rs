//! The hardening table: `tests/c/hardening*.c` commits each case of
//! heap misuse (double and invalid frees, free-list links overwritten,
//! overflows into neighbours, use after free, ...) in a fresh process under
//! each allocator: glibc, `libslabpool.so`, `libslabpool-hardened.so` and,
//! when installed, Debian's jemalloc, mimalloc and tcmalloc; each case runs
//! `HARDENING_RUNS` times (3 by default: some outcomes depend on where ASLR
//! put the heap). The C driver classifies every run (caught (abort), caught
//! (fault), missed, crash, ...; see its header); a cell of the table is the
//! most frequent class. This test prints the table, writes it to
//! `target/capi-tests/hardening/table.md` (and every run's detail to
//! `details.md` beside it) and, with `HARDENING_PUBLISH=1`, into README.md
//! between the hardening markers:
//!
//! ```sh
//! HARDENING_PUBLISH=1 cargo test -p slabpool-capi --test hardening -- --nocapture
//! ```
//!
//! One test checks that the table is complete and sane; the other holds
//! the hardening targets for slabpool (as many cases caught as glibc, more than the peers).

mod common;

use common::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One allocator's whole run: 51 cases of 3 runs, a few milliseconds each
/// (a run that hangs is killed by the driver after 10 s).
const LIMIT: Duration = Duration::from_secs(600);

/// Every classification the driver gives (`error` is its own failure).
const CLASSES: [&str; 10] = [
    "caught (abort)",
    "caught (fault)",
    "caught (message)",
    "caught (delayed)",
    "caught (ENOMEM)",
    "missed",
    "no effect",
    "crash",
    "hang",
    "error",
];

const LEGEND: &str = "`caught (abort)`: the allocator aborted (SIGABRT, or another signal \
with its message on stderr); `caught (fault)`: the bad access itself faulted (SIGSEGV/SIGBUS between the \
markers the case writes right before and after it); `caught (message)`: the allocator \
reported the misuse on stderr and the program ran on; `caught (delayed)`, `caught \
(ENOMEM)`: the case's own rule; `missed`: the program ran on with the effect visible \
(duplicate or overlapping blocks, the static handed out, a neighbour's bytes changed, \
...); `no effect`: it ran on without a report and the case saw no effect; `crash`: a \
fault (or another signal, silently) outside the bad access, inside the allocator; \
`hang`: still running after 10 s.";

/// The probe program, compiled once (without builtins, so the compiler
/// keeps every malloc, free and bad access as written).
fn program() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = scratch("hardening").join("hardening");
        compile(
            "cc",
            &[
                "tests/c/hardening.c",
                "tests/c/hardening_report.c",
                "tests/c/hardening_cases.c",
            ],
            &["-O2", "-fno-builtin", "-pthread"],
            &exe,
        );
        exe
    })
}

struct Case {
    name: String,
    rule: String,
}

/// A case's runs under one allocator.
struct Outcome {
    /// The most frequent class of the runs (a tie goes to the class that
    /// is not caught).
    class: String,
    /// How many runs gave `class`.
    count: usize,
    /// Each run's class and detail.
    runs: Vec<(String, String)>,
}

fn is_caught(class: &str) -> bool {
    class.starts_with("caught")
}

impl Outcome {
    fn new(runs: Vec<(String, String)>) -> Outcome {
        let mut best: Option<(&str, usize)> = None;
        for (class, _) in &runs {
            let n = runs.iter().filter(|(c, _)| c == class).count();
            let better = match best {
                None => true,
                Some((b, bn)) => n > bn || (n == bn && is_caught(b) && !is_caught(class)),
            };
            if better {
                best = Some((class, n));
            }
        }
        let (class, count) = best.expect("at least one run");
        Outcome {
            class: class.to_string(),
            count,
            runs,
        }
    }

    fn caught(&self) -> bool {
        is_caught(&self.class)
    }

    /// Every run gave `class`.
    fn always(&self, class: &str) -> bool {
        self.runs.iter().all(|(c, _)| c == class)
    }

    /// The table's cell: the class, and how many runs gave it when they
    /// differ.
    fn cell(&self) -> String {
        if self.count == self.runs.len() {
            self.class.clone()
        } else {
            format!("{} ({} of {})", self.class, self.count, self.runs.len())
        }
    }

    /// The details of the runs, for messages.
    fn details(&self) -> String {
        let all: Vec<String> = self.runs.iter().map(|(c, d)| format!("{c}: {d}")).collect();
        all.join(" | ")
    }
}

struct Column {
    name: String,
    /// What was measured: the library and its version.
    note: String,
    outcomes: Vec<Outcome>,
}

struct Table {
    cases: Vec<Case>,
    columns: Vec<Column>,
    /// Runs of each case under each allocator.
    runs: usize,
}

impl Table {
    fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    fn case(&self, name: &str) -> usize {
        self.cases
            .iter()
            .position(|c| c.name == name)
            .unwrap_or_else(|| panic!("no case named {name:?}"))
    }
}

impl Column {
    fn caught(&self) -> usize {
        self.outcomes.iter().filter(|o| o.caught()).count()
    }
}

/// Tab-separated fields of the lines of `stdout` that start with `tag`.
fn records<'a>(stdout: &'a str, tag: &str) -> Vec<Vec<&'a str>> {
    stdout
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            (fields[0] == tag).then_some(fields)
        })
        .collect()
}

fn cases() -> Vec<Case> {
    let mut cmd = Command::new(program());
    cmd.arg("list");
    let out = run(cmd, None, LIMIT);
    assert_ok("hardening list", &out);
    let stdout = text(&out.stdout);
    records(&stdout, "case")
        .iter()
        .enumerate()
        .map(|(i, f)| {
            assert_eq!(f.len(), 4, "bad case line: {f:?}");
            assert_eq!(f[1], i.to_string(), "cases out of order: {f:?}");
            Case {
                name: f[2].to_string(),
                rule: f[3].to_string(),
            }
        })
        .collect()
}

/// How many times each case runs under each allocator: `HARDENING_RUNS`,
/// 3 by default (some outcomes depend on the address layout, which ASLR
/// changes from run to run).
fn runs() -> usize {
    std::env::var("HARDENING_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3)
}

/// Runs every case `runs` times under `lib` (None: glibc); returns glibc's
/// version and the outcomes in case order.
fn run_column(lib: Option<&Path>, cases: &[Case], runs: usize) -> (String, Vec<Outcome>) {
    let mut cmd = Command::new(program());
    cmd.arg("run");
    match lib {
        Some(lib) => cmd.arg(lib),
        None => cmd.arg("none"),
    };
    cmd.arg(runs.to_string());
    // The driver is never preloaded; it sets LD_PRELOAD for each case.
    let out = run(cmd, None, LIMIT);
    let who = lib.map_or("glibc".into(), |l| l.display().to_string());
    assert_ok(&format!("hardening run on {who}"), &out);
    let stdout = text(&out.stdout);
    let glibc = stdout
        .lines()
        .find_map(|l| l.strip_prefix("glibc "))
        .unwrap_or("?")
        .to_string();
    let results = records(&stdout, "result");
    assert_eq!(
        results.len(),
        cases.len() * runs,
        "{who}: {} results for {} cases of {runs} runs:\n{stdout}",
        results.len(),
        cases.len()
    );
    let outcomes = results
        .chunks(runs)
        .zip(cases.iter().enumerate())
        .map(|(lines, (i, case))| {
            let each = lines
                .iter()
                .enumerate()
                .map(|(r, f)| {
                    assert_eq!(f.len(), 6, "{who}: bad result line: {f:?}");
                    assert_eq!(
                        (f[1], f[2], f[3]),
                        (
                            i.to_string().as_str(),
                            r.to_string().as_str(),
                            case.name.as_str()
                        ),
                        "{who}: results out of order"
                    );
                    (f[4].to_string(), f[5].to_string())
                })
                .collect();
            Outcome::new(each)
        })
        .collect();
    (glibc, outcomes)
}

/// An allocator of the table.
struct Allocator {
    name: String,
    /// None: glibc (no preload).
    lib: Option<PathBuf>,
    /// For the table's header line.
    note: String,
}

/// The Debian package's version, when dpkg knows it.
fn package_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", package])
        .output()
        .ok()?;
    let version = text(&out.stdout).trim().to_string();
    (out.status.success() && !version.is_empty()).then_some(version)
}

/// The allocators of the table: glibc, slabpool's two builds, and the peers
/// installed (each skipped with a notice when missing).
fn allocators() -> Vec<Allocator> {
    let ours = |name: &str, lib: &Path| Allocator {
        name: name.into(),
        lib: Some(lib.to_path_buf()),
        note: format!(
            "{name}: `{}`",
            lib.file_name().map_or("?".into(), |f| f.to_string_lossy())
        ),
    };
    let mut all = vec![
        Allocator {
            name: "glibc".into(),
            lib: None,
            note: String::new(), // from the driver's report
        },
        ours("slabpool", library()),
        ours("slabpool hardened", hardened_library()),
    ];
    for (name, file, package) in PEER_LIBRARIES {
        match installed_library(file) {
            Some(path) => all.push(Allocator {
                name: name.into(),
                note: match package_version(package) {
                    Some(v) => format!("{name}: `{file}` ({package} {v})"),
                    None => format!("{name}: `{file}`"),
                },
                lib: Some(path),
            }),
            None => skip(
                &format!("hardening column {name}"),
                &format!("{file} not found (Debian package {package})"),
            ),
        }
    }
    all
}

/// Every allocator measured once per test binary; the table and details
/// written beside the program (and published when asked).
fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let allocators = allocators();
        let cases = cases();
        let runs = runs();
        let start = Instant::now();
        let columns: Vec<Column> = allocators
            .into_iter()
            .map(|a| {
                let (glibc, outcomes) = run_column(a.lib.as_deref(), &cases, runs);
                let note = match a.lib {
                    None => format!("glibc {glibc} (no preload)"),
                    Some(_) => a.note,
                };
                Column {
                    name: a.name,
                    note,
                    outcomes,
                }
            })
            .collect();
        let seconds = start.elapsed().as_secs_f64();
        let table = Table {
            cases,
            columns,
            runs,
        };
        let markdown = render(&table);
        let details = render_details(&table);
        eprintln!("{markdown}\n{details}");
        eprintln!(
            "hardening: {} cases, {runs} runs each, under {} allocators in {seconds:.2} s",
            table.cases.len(),
            table.columns.len()
        );
        let dir = program().parent().expect("the program's directory");
        std::fs::write(dir.join("table.md"), &markdown).expect("write table.md");
        std::fs::write(dir.join("details.md"), &details).expect("write details.md");
        if std::env::var_os("HARDENING_PUBLISH").is_some_and(|v| v == "1") {
            publish(&markdown);
        }
        table
    })
}

/// The table in markdown: case rows, allocator columns, totals, legend and
/// each case's rule.
fn render(t: &Table) -> String {
    let mut s = String::new();
    let libs: Vec<&str> = t.columns.iter().map(|c| c.note.as_str()).collect();
    let _ = writeln!(
        s,
        "Measured by `HARDENING_PUBLISH=1 cargo test -p slabpool-capi --test hardening` \
         ({}, {}); each case runs {} times under each allocator, each time in a fresh process; \
         a cell is the most frequent outcome, with its count when the runs differed; {}.\n",
        std::env::consts::ARCH,
        std::env::consts::OS,
        t.runs,
        libs.join(", ")
    );
    let _ = write!(s, "| case |");
    for c in &t.columns {
        let _ = write!(s, " {} |", c.name);
    }
    let _ = write!(s, "\n| --- |");
    for _ in &t.columns {
        let _ = write!(s, " --- |");
    }
    s.push('\n');
    for (i, case) in t.cases.iter().enumerate() {
        let _ = write!(s, "| {} |", case.name);
        for c in &t.columns {
            let _ = write!(s, " {} |", c.outcomes[i].cell());
        }
        s.push('\n');
    }
    let total = |s: &mut String, label: &str, f: &dyn Fn(&Outcome) -> bool| {
        let _ = write!(s, "| **{label}** |");
        for c in &t.columns {
            let n = c.outcomes.iter().filter(|o| f(o)).count();
            let _ = write!(s, " **{n} of {}** |", t.cases.len());
        }
        s.push('\n');
    };
    total(&mut s, "caught", &|o| o.caught());
    total(&mut s, "missed", &|o| o.class == "missed");
    let _ = writeln!(s, "\n{LEGEND}\n");
    let _ = writeln!(
        s,
        "<details><summary>What each case does, and when it counts as missed</summary>\n"
    );
    // Consecutive cases with the same rule share one line.
    let mut i = 0;
    while i < t.cases.len() {
        let rule = &t.cases[i].rule;
        let n = t.cases[i..].iter().take_while(|c| &c.rule == rule).count();
        let names = match n {
            1 => t.cases[i].name.clone(),
            _ => format!(
                "{} ... {} ({n} cases)",
                t.cases[i].name,
                t.cases[i + n - 1].name
            ),
        };
        let _ = writeln!(s, "- {names}: {rule}");
        i += n;
    }
    let _ = writeln!(
        s,
        "\nThe code is capi/tests/c/hardening_cases.c; each case's comment there says \
         what it does.\n\n</details>"
    );
    s
}

/// Every run's detail (the allocator's message, the effect seen, the
/// signal), per allocator.
fn render_details(t: &Table) -> String {
    let mut s = String::new();
    for c in &t.columns {
        let _ = writeln!(s, "## {}\n", c.name);
        for (case, o) in t.cases.iter().zip(&c.outcomes) {
            for (r, (class, detail)) in o.runs.iter().enumerate() {
                let _ = writeln!(s, "- {}, run {}: {class}: {detail}", case.name, r + 1);
            }
        }
        s.push('\n');
    }
    s
}

const BEGIN: &str = "<!-- hardening:begin -->";
const END: &str = "<!-- hardening:end -->";

/// Writes `markdown` into README.md between the hardening markers.
fn publish(markdown: &str) {
    let readme = crate_dir().join("..").join("README.md");
    let old = std::fs::read_to_string(&readme).expect("read README.md");
    let begin = old
        .find(BEGIN)
        .expect("README.md lacks the hardening:begin marker");
    let end = old
        .find(END)
        .expect("README.md lacks the hardening:end marker");
    assert!(
        begin < end,
        "README.md's hardening markers are out of order"
    );
    let new = format!("{}{BEGIN}\n{markdown}{}", &old[..begin], &old[end..]);
    std::fs::write(&readme, new).expect("write README.md");
    eprintln!("hardening: table written into {}", readme.display());
}

#[test]
fn every_case_is_classified_under_every_allocator() {
    let t = table();
    assert!(t.cases.len() >= 40, "only {} cases", t.cases.len());
    for c in &t.columns {
        assert_eq!(c.outcomes.len(), t.cases.len(), "{}", c.name);
        for (case, o) in t.cases.iter().zip(&c.outcomes) {
            assert_eq!(o.runs.len(), t.runs, "{} under {}", case.name, c.name);
            for (class, detail) in &o.runs {
                assert!(
                    CLASSES.contains(&class.as_str()) && class != "error",
                    "{} under {}: {class} ({detail})",
                    case.name,
                    c.name,
                );
            }
        }
    }
    // glibc's own checks, as sanity for the harness: its tcache catches an
    // immediate double free, its chunk checks a stack pointer, and a
    // return instruction in its heap is not executable.
    let glibc = t.column("glibc").expect("glibc column");
    for (case, class, message) in [
        (
            "double free: immediate",
            "caught (abort)",
            "free(): double free detected in tcache 2",
        ),
        (
            "invalid free: stack",
            "caught (abort)",
            "free(): invalid pointer",
        ),
        (
            "executable heap",
            "caught (fault)",
            "SIGSEGV at the bad access",
        ),
    ] {
        let o = &glibc.outcomes[t.case(case)];
        assert!(o.always(class), "glibc, {case}: {}", o.details());
        assert!(
            o.runs.iter().all(|(_, d)| d.contains(message)),
            "glibc, {case}: {}",
            o.details()
        );
    }
    // slabpool's checks of today, so a broken harness shows: an immediate
    // double free and a stack pointer abort with slabpool's message.
    let ours = t.column("slabpool").expect("slabpool column");
    for case in ["double free: immediate", "invalid free: stack"] {
        let o = &ours.outcomes[t.case(case)];
        assert!(
            o.always("caught (abort)")
                && o.runs.iter().all(|(_, d)| d.starts_with("slabpool: free(")),
            "slabpool, {case}: {}",
            o.details()
        );
    }
}

/// Cases no allocator can catch without delaying reuse: the second free is
/// of a block malloc handed out again, indistinguishable from a valid one.
const NEEDS_DELAYED_REUSE: &str = "double free: after the block was reused";

fn is_double_free(name: &str) -> bool {
    name.starts_with("double free:") || name.starts_with("realloc of a freed pointer")
}

fn is_link_overwrite(name: &str) -> bool {
    name.starts_with("free-list link overwritten")
}

fn is_overflow(name: &str) -> bool {
    name.starts_with("overflow ") || name.starts_with("underflow ")
}

/// The cases of `column` matching `select` that are not caught in every
/// run (by one of `how`, if given), with their runs' details.
fn not_caught(
    t: &Table,
    column: &Column,
    select: &dyn Fn(&str) -> bool,
    how: &[&str],
) -> Vec<String> {
    t.cases
        .iter()
        .zip(&column.outcomes)
        .filter(|(case, o)| {
            select(&case.name)
                && !o.runs.iter().all(|(class, _)| {
                    is_caught(class) && (how.is_empty() || how.contains(&class.as_str()))
                })
        })
        .map(|(case, o)| format!("{}: {}", case.name, o.details()))
        .collect()
}

#[test]
fn default_build_meets_the_hardening_targets() {
    let t = table();
    let glibc = t.column("glibc").expect("glibc column");
    let ours = t.column("slabpool").expect("slabpool column");

    // Default build: every double free (but the one only delayed reuse can
    // tell) and every free-list corruption caught.
    let missing = not_caught(
        t,
        ours,
        &|n| (is_double_free(n) && n != NEEDS_DELAYED_REUSE) || is_link_overwrite(n),
        &[],
    );
    assert!(
        missing.is_empty(),
        "slabpool misses:\n{}",
        missing.join("\n")
    );
    // ... at least as many caught as glibc, more than every peer installed.
    assert!(
        ours.caught() >= glibc.caught(),
        "slabpool catches {}, glibc {}",
        ours.caught(),
        glibc.caught()
    );
    for (peer, _, _) in PEER_LIBRARIES {
        if let Some(p) = t.column(peer) {
            assert!(
                ours.caught() > p.caught(),
                "slabpool catches {}, {peer} {}",
                ours.caught(),
                p.caught()
            );
        }
    }
}

/// The hardening targets for the hardened build.
#[test]
fn hardened_build_meets_the_hardening_targets() {
    let t = table();
    let glibc = t.column("glibc").expect("glibc column");
    let hardened = t.column("slabpool hardened").expect("hardened column");

    // Hardened: more than glibc; every double, invalid free and free-list
    // corruption; overflows into neighbours caught on free or by a fault.
    assert!(
        hardened.caught() > glibc.caught(),
        "hardened catches {}, glibc {}",
        hardened.caught(),
        glibc.caught()
    );
    let missing = not_caught(
        t,
        hardened,
        &|n| is_double_free(n) || n.starts_with("invalid free:") || is_link_overwrite(n),
        &[],
    );
    assert!(
        missing.is_empty(),
        "hardened misses:\n{}",
        missing.join("\n")
    );
    let missing = not_caught(
        t,
        hardened,
        &is_overflow,
        &["caught (abort)", "caught (fault)", "caught (message)"],
    );
    assert!(
        missing.is_empty(),
        "hardened misses overflows:\n{}",
        missing.join("\n")
    );
    // Delayed reuse: a freed block is not the next one handed out, and an
    // overflow of one byte is reported by the canary on free.
    for (case, class, message) in [
        ("immediate reuse of a freed block", "caught (delayed)", ""),
        (
            "overflow 1 B: 48 B blocks",
            "caught (abort)",
            "heap overflow: the canary past the block's requested bytes is overwritten at byte 48",
        ),
    ] {
        let o = &hardened.outcomes[t.case(case)];
        assert!(
            o.always(class) && o.runs.iter().all(|(_, d)| d.contains(message)),
            "hardened, {case}: {}",
            o.details()
        );
    }
}

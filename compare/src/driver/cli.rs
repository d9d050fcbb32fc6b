//! Command-line options of the driver.

use crate::allocators::{self, Allocator};
use crate::extra::{self, Extra};
use slabpool_compare::workload::{self, Workload};
use std::time::Duration;

/// The most threads `--scaling` accepts per run.
const MAX_THREADS: usize = 1024;

/// Which sizes to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    Smoke,
    Quick,
    Full,
}

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Suite::Smoke => "smoke",
            Suite::Quick => "quick",
            Suite::Full => "full",
        }
    }

    pub fn size_of(self, w: &Workload) -> u64 {
        match self {
            Suite::Smoke => w.sizes.smoke,
            Suite::Quick => w.sizes.quick,
            Suite::Full => w.sizes.full,
        }
    }
}

/// Parsed options.
pub struct Options {
    pub suite: Suite,
    pub runs: usize,
    pub threads: usize,
    pub allocators: Vec<&'static Allocator>,
    /// `--extra NAME=PATH` binaries, columns after the allocators.
    pub extras: Vec<Extra>,
    pub workloads: Vec<&'static Workload>,
    pub timeout: Duration,
    /// Also write the summary into README.md and the chart to docs/.
    pub publish: bool,
    /// Also run the threaded workloads pinned to one CPU: in the suite by
    /// default (`--no-pinned` turns it off), in scaling mode with
    /// `--pinned`.
    pub pinned: bool,
    /// `--scaling`: the thread counts (ascending, distinct) of scaling mode.
    pub scaling: Option<Vec<usize>>,
    /// `--target T`: build the workload binaries for this target triple
    /// (e.g. `x86_64-unknown-linux-musl`, where System is musl's malloc).
    pub target: Option<String>,
    /// `--prof-accuracy`: the heap profiler's accuracy check instead of the
    /// suite (see `prof_accuracy.rs`).
    pub prof_accuracy: bool,
    /// `--prof-sample N`: the accuracy check's mean sample interval.
    pub prof_sample: u64,
}

pub const HELP: &str = "\
slabpool-compare: runs the same workloads under System, slabpool, mimalloc,
jemalloc, snmalloc and rpmalloc, each in its own process, interleaved, and
writes target/slabpool-compare/report.{md,json,svg}.

usage: cargo run --release -p slabpool-compare -- [options]

  --full             4x longer sizes, 7 runs (default: the quick suite, 5 runs)
  --smoke            every workload once at a tiny size, System, slabpool
                     and slabpool-prof only (no C build; for CI)
  --runs N           rounds of every (workload, allocator) pair
  --threads N        worker threads for threaded workloads (default: CPUs)
  --alloc A,B,..     only these allocators (besides the six: slabpool-prof
                     and jemalloc-prof, each with its heap profiler on at a
                     512 KiB mean interval)
  --prof             add slabpool-prof and jemalloc-prof to the allocators
  --prof-accuracy    instead of the suite: every workload under slabpool's
                     heap profiler, its estimated live bytes against an
                     exact count at the heap's highest point; writes
                     target/slabpool-compare/prof-accuracy.{md,json}
  --prof-sample N    the accuracy check's mean sample interval, bytes
                     (default 524288)
  --only W,..        only these workloads
  --small            only the small programs (sp-*: short programs with a
                     heap of 1 to 10 MiB, in a table of their own)
  --extra NAME=PATH  also run this prebuilt workload binary (e.g. wl-slabpool
                     from an older commit) as an allocator column NAME;
                     repeatable
  --no-pinned        skip the threaded workloads' runs pinned to one CPU
                     (and the speedup-from-1-CPU table)
  --scaling T,T,..   scaling mode: the threaded workloads at each of these
                     thread counts, total work fixed per workload; writes
                     target/slabpool-compare/scaling.{md,json,svg} (default
                     allocators: System, slabpool, mimalloc, jemalloc,
                     snmalloc)
  --pinned           in scaling mode, also run every point pinned to one CPU
  --timeout SECS     kill a run after this long (default: 300)
  --target TRIPLE    build the workload binaries for this target (e.g.
                     x86_64-unknown-linux-musl: System is musl's malloc);
                     peers that do not build for it are left out, and said
                     so; reports go to target/slabpool-compare/TRIPLE/
  --publish          also put the summary tables into README.md (between
                     its bench markers) and the chart into docs/bench.svg;
                     with --scaling, the report and chart into
                     docs/scaling.{md,svg}
  --list             list workloads and allocators, then exit
  -h, --help         this text
";

/// What the command line asks for.
pub enum Command {
    Run(Options),
    List,
    Help,
}

fn value<'a>(flag: &str, it: &mut impl Iterator<Item = &'a String>) -> Result<&'a str, String> {
    it.next()
        .map(String::as_str)
        .ok_or_else(|| format!("{flag} needs a value"))
}

fn number(flag: &str, v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag}: expected a positive number, got {v:?}")),
    }
}

/// A comma-separated list of names, each looked up with `find`; `what`
/// names them in the error ("unknown allocator \"x\"").
fn names<T>(v: &str, what: &str, find: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    v.split(',')
        .map(|n| find(n).ok_or(format!("unknown {what} {n:?}")))
        .collect()
}

/// `--scaling`'s list: positive thread counts, sorted, without repeats.
fn thread_counts(v: &str) -> Result<Vec<usize>, String> {
    let mut counts = v
        .split(',')
        .map(|n| number("--scaling", n.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(&n) = counts.iter().find(|&&n| n > MAX_THREADS) {
        return Err(format!("--scaling: {n} threads is more than {MAX_THREADS}"));
    }
    counts.sort_unstable();
    counts.dedup();
    Ok(counts)
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut suite = Suite::Quick;
    let (mut runs, mut threads, mut timeout) = (None, None, 300);
    let (mut allocs, mut works) = (None::<Vec<_>>, None::<Vec<&'static Workload>>);
    let mut extras: Vec<Extra> = Vec::new();
    let (mut pinned, mut scaling) = (None::<bool>, None);
    let mut publish = false;
    let mut target = None;
    let (mut with_prof, mut prof_accuracy) = (false, false);
    let mut small = false;
    let mut prof_sample = 512 * 1024;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--full" => suite = Suite::Full,
            "--smoke" => suite = Suite::Smoke,
            "--runs" => runs = Some(number(arg, value(arg, &mut it)?)?),
            "--threads" => threads = Some(number(arg, value(arg, &mut it)?)?),
            "--timeout" => timeout = number(arg, value(arg, &mut it)?)?,
            "--alloc" => {
                allocs = Some(names(value(arg, &mut it)?, "allocator", allocators::find)?);
            }
            "--only" => works = Some(names(value(arg, &mut it)?, "workload", workload::find)?),
            "--small" => small = true,
            "--extra" => {
                let taken: Vec<String> = extras.iter().map(|e| e.name.clone()).collect();
                extras.push(extra::parse(value(arg, &mut it)?, &taken)?);
            }
            "--pinned" | "--no-pinned" => {
                let want = arg == "--pinned";
                if pinned.is_some_and(|p| p != want) {
                    return Err("--pinned and --no-pinned contradict each other".into());
                }
                pinned = Some(want);
            }
            "--scaling" => scaling = Some(thread_counts(value(arg, &mut it)?)?),
            "--publish" => publish = true,
            "--prof" => with_prof = true,
            "--prof-accuracy" => prof_accuracy = true,
            "--prof-sample" => prof_sample = number(arg, value(arg, &mut it)?)? as u64,
            "--target" => target = Some(value(arg, &mut it)?.to_string()),
            "--list" => return Ok(Command::List),
            "-h" | "--help" => return Ok(Command::Help),
            other => return Err(format!("unknown option {other:?} (try --help)")),
        }
    }
    if small {
        if works.is_some() {
            return Err("--small and --only do not go together".into());
        }
        works = Some(workload::ALL.iter().filter(|w| w.small()).collect());
    }
    if scaling.is_some() {
        if threads.is_some() {
            return Err(
                "--threads and --scaling do not go together (--scaling sets the thread counts)"
                    .into(),
            );
        }
        if let Some(w) = works.iter().flatten().find(|w| w.scaling.is_none()) {
            return Err(format!(
                "--scaling: {} is not a scaling workload (they are: {})",
                w.name,
                scaling_workloads()
                    .map(|w| w.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if prof_accuracy && scaling.is_some() {
        return Err("--prof-accuracy and --scaling do not go together".into());
    }
    let default_allocs: Vec<_> = match (suite, &scaling) {
        (Suite::Smoke, _) => allocators::ALL.iter().filter(|a| !a.peer).collect(),
        (_, Some(_)) => allocators::ALL
            .iter()
            .filter(|a| SCALING_ALLOCATORS.contains(&a.name))
            .collect(),
        _ => allocators::ALL.iter().filter(|a| a.by_default).collect(),
    };
    let mut allocs = allocs.unwrap_or(default_allocs);
    if with_prof {
        for name in [allocators::SLABPOOL_PROF, allocators::JEMALLOC_PROF] {
            if !allocs.iter().any(|a| a.name == name) {
                allocs.extend(allocators::find(name));
            }
        }
        // In the order of `ALL` (each beside its plain build).
        allocs.sort_by_key(|a| allocators::ALL.iter().position(|b| b.name == a.name));
    }
    let default_works: Vec<_> = match scaling {
        Some(_) => scaling_workloads().collect(),
        None => workload::ALL.iter().collect(),
    };
    Ok(Command::Run(Options {
        suite,
        runs: runs.unwrap_or(match suite {
            Suite::Smoke => 1,
            Suite::Quick => 5,
            Suite::Full => 7,
        }),
        threads: threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        allocators: allocs,
        extras,
        workloads: works.unwrap_or(default_works),
        timeout: Duration::from_secs(timeout as u64),
        publish,
        pinned: pinned.unwrap_or(scaling.is_none()),
        scaling,
        target,
        prof_accuracy,
        prof_sample,
    }))
}

/// Scaling mode's default allocators (rpmalloc is left out to keep it
/// short; `--alloc` can add it).
const SCALING_ALLOCATORS: [&str; 5] = ["System", "slabpool", "mimalloc", "jemalloc", "snmalloc"];

fn scaling_workloads() -> impl Iterator<Item = &'static Workload> {
    workload::ALL.iter().filter(|w| w.scaling.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn run(args: &[&str]) -> Options {
        match parse_strs(args) {
            Ok(Command::Run(o)) => o,
            _ => panic!("not a run"),
        }
    }

    /// Whether `args` are refused.
    fn bad(args: &[&str]) -> bool {
        parse_strs(args).is_err()
    }

    #[test]
    fn defaults_are_the_quick_suite_with_every_allocator_without_profiler() {
        let o = run(&[]);
        assert_eq!(o.suite, Suite::Quick);
        assert_eq!(o.runs, 5);
        let names: Vec<_> = o.allocators.iter().map(|a| a.name).collect();
        assert_eq!(
            names,
            [
                "System", "slabpool", "mimalloc", "jemalloc", "snmalloc", "rpmalloc"
            ]
        );
        assert_eq!(o.workloads.len(), workload::ALL.len());
        assert!(!o.prof_accuracy);
    }

    #[test]
    fn smoke_is_system_and_slabpool_with_and_without_profiler_once() {
        let o = run(&["--smoke"]);
        let names: Vec<_> = o.allocators.iter().map(|a| a.name).collect();
        assert_eq!(names, ["System", "slabpool", "slabpool-prof"]);
        assert_eq!(o.runs, 1);
    }

    #[test]
    fn prof_adds_the_profiling_builds_beside_the_plain_ones() {
        let o = run(&["--prof"]);
        let names: Vec<_> = o.allocators.iter().map(|a| a.name).collect();
        assert_eq!(
            names,
            [
                "System",
                "slabpool",
                "slabpool-prof",
                "mimalloc",
                "jemalloc",
                "jemalloc-prof",
                "snmalloc",
                "rpmalloc"
            ]
        );
        let o = run(&["--alloc", "jemalloc,system", "--prof"]);
        let names: Vec<_> = o.allocators.iter().map(|a| a.name).collect();
        assert_eq!(
            names,
            ["System", "slabpool-prof", "jemalloc", "jemalloc-prof"]
        );
        let o = run(&["--alloc", "slabpool-prof"]);
        assert_eq!(o.allocators[0].env, [("SLABPOOL_PROF", "1")]);
        assert!(run(&["--prof-accuracy"]).prof_accuracy);
        assert_eq!(run(&[]).prof_sample, 512 * 1024);
        assert_eq!(run(&["--prof-sample", "4096"]).prof_sample, 4096);
        assert!(bad(&["--prof-accuracy", "--scaling", "2"]));
    }

    #[test]
    fn filters_and_errors() {
        let o = run(&[
            "--alloc",
            "system,jemalloc",
            "--only",
            "larson",
            "--runs",
            "2",
        ]);
        assert_eq!(o.allocators.len(), 2);
        assert_eq!(o.workloads[0].name, "larson");
        assert_eq!(o.runs, 2);
        assert!(bad(&["--alloc", "nope"]));
        assert!(bad(&["--runs", "0"]));
        assert!(bad(&["--runs"]));
        assert!(bad(&["--frobnicate"]));
    }

    #[test]
    fn small_programs_run_by_default_and_alone_with_small() {
        let small = |o: &Options| o.workloads.iter().filter(|w| w.small()).count();
        assert_eq!(small(&run(&[])), 5);
        assert_eq!(small(&run(&["--smoke"])), 5);
        let o = run(&["--small"]);
        assert_eq!((o.workloads.len(), small(&o)), (5, 5));
        let o = run(&["--only", "sp-strings,larson"]);
        assert_eq!((o.workloads.len(), small(&o)), (2, 1));
        assert!(bad(&["--small", "--only", "larson"]));
        assert!(bad(&["--small", "--scaling", "2"]));
        // Not in scaling mode's default workloads.
        assert_eq!(small(&run(&["--scaling", "2"])), 0);
    }

    #[test]
    fn pinned_runs_are_on_in_the_suite_and_off_in_scaling_mode() {
        assert!(run(&[]).pinned);
        assert!(!run(&["--no-pinned"]).pinned);
        assert!(!run(&["--scaling", "2"]).pinned);
        assert!(run(&["--scaling", "2", "--pinned"]).pinned);
        assert!(bad(&["--pinned", "--no-pinned"]));
    }

    #[test]
    fn scaling_mode() {
        let o = run(&["--scaling", "64,1,2,4,2,8"]);
        assert_eq!(o.scaling.as_deref(), Some(&[1, 2, 4, 8, 64][..]));
        let allocs: Vec<_> = o.allocators.iter().map(|a| a.name).collect();
        assert_eq!(
            allocs,
            ["System", "slabpool", "mimalloc", "jemalloc", "snmalloc"]
        );
        let works: Vec<_> = o.workloads.iter().map(|w| w.name).collect();
        assert!(works.contains(&"work-stealing") && works.contains(&"xmalloc"));
        assert!(!works.contains(&"cache-scratch") && !works.contains(&"large"));
        assert!(run(&[]).scaling.is_none());
        // --alloc, --only, --runs and --smoke still apply.
        let o = run(&[
            "--scaling",
            "1,64",
            "--alloc",
            "slabpool",
            "--only",
            "larson",
            "--runs",
            "3",
        ]);
        assert_eq!((o.allocators.len(), o.workloads.len(), o.runs), (1, 1, 3));
        let o = run(&["--scaling", "2", "--smoke"]);
        assert_eq!(o.allocators.len(), 3);
        assert!(bad(&["--scaling"]));
        assert!(bad(&["--scaling", "1,0"]));
        assert!(bad(&["--scaling", "1,x"]));
        assert!(bad(&["--scaling", "2000"]));
        assert!(bad(&["--scaling", "2", "--threads", "2"]));
        assert!(bad(&["--scaling", "2", "--only", "large"]));
    }

    #[test]
    fn target_is_passed_through() {
        assert_eq!(run(&[]).target, None);
        let o = run(&["--target", "x86_64-unknown-linux-musl"]);
        assert_eq!(o.target.as_deref(), Some("x86_64-unknown-linux-musl"));
        assert!(bad(&["--target"]));
    }

    #[test]
    fn extras_add_columns() {
        let o = run(&[
            "--alloc",
            "slabpool",
            "--extra",
            "base=/tmp/base/wl-slabpool",
            "--extra",
            "older=/tmp/older/wl-slabpool",
        ]);
        let names: Vec<_> = o.extras.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["base", "older"]);
        assert_eq!(o.allocators.len(), 1);
        assert!(bad(&["--extra", "base=/a", "--extra", "base=/b"]));
        assert!(bad(&["--extra", "mimalloc=/a"]));
        assert!(bad(&["--extra", "nopath"]));
        assert!(bad(&["--extra"]));
    }
}

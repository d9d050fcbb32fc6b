//! Command-line options of the driver.

use crate::allocators::{self, Allocator};
use slabpool_bench::workload::{self, Workload};
use std::time::Duration;

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
    pub workloads: Vec<&'static Workload>,
    pub timeout: Duration,
    /// Also write the summary into README.md and the chart to docs/.
    pub publish: bool,
}

pub const HELP: &str = "\
slabpool-bench: runs the same workloads under System, slabpool, mimalloc,
jemalloc, snmalloc and rpmalloc, each in its own process, interleaved, and
writes target/slabpool-bench/report.{md,json,svg}.

usage: cargo run --release -p slabpool-bench -- [options]

  --full             4x longer sizes, 7 runs (default: the quick suite, 5 runs)
  --smoke            every workload once at a tiny size, System and slabpool
                     only (for CI)
  --runs N           rounds of every (workload, allocator) pair
  --threads N        worker threads for threaded workloads (default: CPUs)
  --alloc A,B,..     only these allocators
  --only W,..        only these workloads
  --timeout SECS     kill a run after this long (default: 300)
  --publish          also put the summary tables into README.md (between
                     its bench markers) and the chart into docs/bench.svg
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

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut suite = Suite::Quick;
    let (mut runs, mut threads, mut timeout) = (None, None, 300);
    let (mut allocs, mut works) = (None::<Vec<_>>, None::<Vec<_>>);
    let mut publish = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--full" => suite = Suite::Full,
            "--smoke" => suite = Suite::Smoke,
            "--runs" => runs = Some(number(arg, value(arg, &mut it)?)?),
            "--threads" => threads = Some(number(arg, value(arg, &mut it)?)?),
            "--timeout" => timeout = number(arg, value(arg, &mut it)?)?,
            "--alloc" => {
                let v = value(arg, &mut it)?;
                let list = v
                    .split(',')
                    .map(|n| allocators::find(n).ok_or(format!("unknown allocator {n:?}")));
                allocs = Some(list.collect::<Result<_, _>>()?);
            }
            "--only" => {
                let v = value(arg, &mut it)?;
                let list = v
                    .split(',')
                    .map(|n| workload::find(n).ok_or(format!("unknown workload {n:?}")));
                works = Some(list.collect::<Result<_, _>>()?);
            }
            "--publish" => publish = true,
            "--list" => return Ok(Command::List),
            "-h" | "--help" => return Ok(Command::Help),
            other => return Err(format!("unknown option {other:?} (try --help)")),
        }
    }
    let default_allocs: Vec<_> = match suite {
        Suite::Smoke => allocators::ALL.iter().filter(|a| !a.peer).collect(),
        _ => allocators::ALL.iter().collect(),
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
        allocators: allocs.unwrap_or(default_allocs),
        workloads: works.unwrap_or_else(|| workload::ALL.iter().collect()),
        timeout: Duration::from_secs(timeout as u64),
        publish,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match parse(&args) {
            Ok(Command::Run(o)) => o,
            _ => panic!("not a run"),
        }
    }

    #[test]
    fn defaults_are_the_quick_suite_with_every_allocator() {
        let o = run(&[]);
        assert_eq!(o.suite, Suite::Quick);
        assert_eq!(o.runs, 5);
        assert_eq!(o.allocators.len(), allocators::ALL.len());
        assert_eq!(o.workloads.len(), workload::ALL.len());
    }

    #[test]
    fn smoke_is_system_and_slabpool_once() {
        let o = run(&["--smoke"]);
        let names: Vec<_> = o.allocators.iter().map(|a| a.name).collect();
        assert_eq!(names, ["System", "slabpool"]);
        assert_eq!(o.runs, 1);
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
        let bad = |a: &[&str]| parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>()).is_err();
        assert!(bad(&["--alloc", "nope"]));
        assert!(bad(&["--runs", "0"]));
        assert!(bad(&["--runs"]));
        assert!(bad(&["--frobnicate"]));
    }
}

//! The suite's results as data: samples (one child run), cells (one
//! workload under one allocator, unpinned or pinned to one CPU), geometric
//! means, the small programs' group, and the whole report, which is also
//! what report.json serialises.
//! Scaling mode's report (`scaling_model.rs`) reuses the samples.

use serde::Serialize;

/// One run of one workload under one allocator.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub ok: bool,
    /// Wall time from spawn to reaping, seconds.
    pub time_s: f64,
    /// `ru_maxrss` from `wait4`, KiB. On Linux this includes the driver's
    /// own resident set at spawn time (the pre-exec high-water mark is
    /// carried across exec), a floor of a few MiB.
    pub max_rss_kib: u64,
    /// The child's VmHWM (peak resident set of its own address space since
    /// exec), read by the child just before it exits, KiB.
    pub hwm_kib: Option<u64>,
    /// The child's VmRSS after its idle period, KiB (burst-idle only).
    pub rss_after_idle_kib: Option<u64>,
    pub checksum: Option<String>,
    /// Allocator operations the workload counted (`None` from a binary
    /// older than the `ops=` line).
    pub ops: Option<u64>,
    /// The binary does not know this workload (an `--extra` binary from an
    /// older build): not a failure of the allocator; its cell shows n/a.
    pub missing: bool,
    pub error: Option<String>,
    /// The heap profiler's accuracy check (`wl-slabpool-prof-check`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prof: Option<ProfCheck>,
}

/// What `wl-slabpool-prof-check` prints: at the highest exact count of live
/// bytes, that count, the profiler's estimate, its live samples and
/// `stats()`'s figure; and the samples taken in all.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct ProfCheck {
    pub true_bytes: u64,
    pub est_bytes: u64,
    /// The estimate's standard deviation, from its samples' weights.
    pub sd_bytes: u64,
    pub live_samples: u64,
    pub stats_bytes: u64,
    pub samples: u64,
}

impl Sample {
    /// A run that could not start.
    pub fn failed(error: String) -> Self {
        Sample {
            ok: false,
            time_s: 0.0,
            max_rss_kib: 0,
            hwm_kib: None,
            rss_after_idle_kib: None,
            checksum: None,
            ops: None,
            missing: false,
            error: Some(error),
            prof: None,
        }
    }

    /// A sample from the child's stdout (`key=value` lines) and the
    /// driver's measurements; `ok` until something says otherwise.
    pub fn parse(stdout: &str, time_s: f64, max_rss_kib: u64) -> Self {
        let field = |key: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(str::trim))
        };
        let number = |key: &str| field(key).and_then(|v| v.parse::<u64>().ok());
        // All six lines, or none.
        let prof = || {
            Some(ProfCheck {
                true_bytes: number("prof_true")?,
                est_bytes: number("prof_est")?,
                sd_bytes: number("prof_sd")?,
                live_samples: number("prof_live_samples")?,
                stats_bytes: number("prof_stats")?,
                samples: number("prof_samples")?,
            })
        };
        Sample {
            ok: true,
            time_s,
            max_rss_kib,
            hwm_kib: number("hwm_kib"),
            rss_after_idle_kib: number("rss_after_idle_kib"),
            checksum: field("checksum").map(str::to_string),
            ops: number("ops"),
            missing: false,
            error: None,
            prof: prof(),
        }
    }

    /// Peak RSS in KiB: the child's VmHWM, or `ru_maxrss` without it.
    pub fn peak_rss_kib(&self) -> u64 {
        self.hwm_kib.unwrap_or(self.max_rss_kib)
    }

    /// Marks the sample failed (keeping the first reason).
    pub fn fail(&mut self, why: String) {
        self.ok = false;
        self.error.get_or_insert(why);
    }
}

/// Medians and ratios of one (workload, allocator) pair. A cell with any
/// failed sample is failed and has no numbers; one whose binary does not
/// know the workload is missing (neither failed nor measured).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Cell {
    pub workload: String,
    pub allocator: String,
    pub samples: Vec<Sample>,
    pub failed: bool,
    pub missing: bool,
    /// The runs' operation count (they all agree), if the binary reports it.
    pub ops: Option<u64>,
    pub median_time_s: Option<f64>,
    /// Slowest run's time over the fastest's: how noisy this cell was.
    pub time_spread: Option<f64>,
    /// Median of [`Sample::peak_rss_kib`].
    pub median_peak_rss_kib: Option<f64>,
    pub median_rss_after_idle_kib: Option<f64>,
    pub time_vs_system: Option<f64>,
    pub time_vs_mimalloc: Option<f64>,
    pub rss_vs_system: Option<f64>,
    pub rss_vs_mimalloc: Option<f64>,
    /// For the threaded workloads: this allocator's median time pinned to
    /// one CPU over its median time on all CPUs (above 1: it gains from the
    /// other CPUs).
    pub speedup_from_1cpu: Option<f64>,
}

/// Geometric means of one allocator's ratios over the workloads where both
/// it and the reference have numbers (`over` says how many).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Geomean {
    pub allocator: String,
    pub time_vs_system: Option<f64>,
    pub time_vs_mimalloc: Option<f64>,
    pub rss_vs_system: Option<f64>,
    pub rss_vs_mimalloc: Option<f64>,
    /// Over the threaded workloads where both runs have numbers.
    pub speedup_from_1cpu: Option<f64>,
    /// Workloads in the System means, of `of`.
    pub over: usize,
    pub of: usize,
}

/// An allocator and how it is identified.
#[derive(Clone, Debug, Serialize)]
pub struct AllocatorInfo {
    pub name: String,
    pub version: String,
}

/// A workload as run.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadInfo {
    pub name: String,
    pub about: String,
    pub size: u64,
    /// Threads it ran.
    pub threads: usize,
}

/// Where and how the suite ran.
#[derive(Clone, Debug, Serialize)]
pub struct Header {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub date: String,
    pub suite: String,
    pub runs: usize,
    pub threads: usize,
    /// The CPU the pinned runs used, if there were any.
    pub pinned_cpu: Option<usize>,
    /// The target triple the workload binaries were built for (`None`: the
    /// host's).
    pub target: Option<String>,
    /// Allocators asked for but left out: they did not build for `target`.
    pub left_out: Vec<String>,
}

/// One of slabpool's performance targets (time, RSS against System), checked on this run.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub target: String,
    pub measured: String,
    pub met: bool,
}

impl Target {
    pub fn new(target: &str, measured: String, met: bool) -> Self {
        Target {
            target: target.into(),
            measured,
            met,
        }
    }
}

/// The small programs (`sp-*` workloads): kept apart from the main
/// suite's workloads, cells and geometric means, which they leave as they
/// were; the same kinds of numbers, with geometric means of their own.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SmallPrograms {
    pub workloads: Vec<WorkloadInfo>,
    pub cells: Vec<Cell>,
    pub geomeans: Vec<Geomean>,
}

/// Everything the reports show.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub header: Header,
    pub allocators: Vec<AllocatorInfo>,
    /// The main suite's workloads and cells (not the small programs').
    pub workloads: Vec<WorkloadInfo>,
    pub cells: Vec<Cell>,
    /// The threaded workloads' runs pinned to one CPU (same thread count).
    pub pinned: Vec<Cell>,
    pub geomeans: Vec<Geomean>,
    pub small_programs: SmallPrograms,
    pub targets: Vec<Target>,
}

impl Report {
    /// The cell of `workload` under `allocator`.
    pub fn cell(&self, workload: &str, allocator: &str) -> Option<&Cell> {
        find(&self.cells, workload, allocator)
    }

    /// The pinned cell of `workload` under `allocator`.
    pub fn pinned_cell(&self, workload: &str, allocator: &str) -> Option<&Cell> {
        find(&self.pinned, workload, allocator)
    }

    /// Whether any cell failed, pinned or not, small program or not.
    pub fn any_failed(&self) -> bool {
        self.cells
            .iter()
            .chain(&self.pinned)
            .chain(&self.small_programs.cells)
            .any(|c| c.failed)
    }

    /// The small programs as a report of their own (no pinned runs, no
    /// targets), for the tables that render a report's workloads.
    pub fn small_view(&self) -> Report {
        let small = &self.small_programs;
        Report {
            header: Header {
                pinned_cpu: None,
                ..self.header.clone()
            },
            allocators: self.allocators.clone(),
            workloads: small.workloads.clone(),
            cells: small.cells.clone(),
            pinned: Vec::new(),
            geomeans: small.geomeans.clone(),
            small_programs: SmallPrograms::default(),
            targets: Vec::new(),
        }
    }
}

fn find<'a>(cells: &'a [Cell], workload: &str, allocator: &str) -> Option<&'a Cell> {
    cells
        .iter()
        .find(|c| c.workload == workload && c.allocator == allocator)
}

#[cfg(test)]
mod tests {
    use super::Sample;

    #[test]
    fn parses_child_output() {
        let s = Sample::parse(
            "checksum=00ff\nops=1234\nhwm_kib=12\nrss_after_idle_kib=7\n",
            1.5,
            20,
        );
        assert!(s.ok);
        assert_eq!(s.checksum.as_deref(), Some("00ff"));
        assert_eq!(s.ops, Some(1234));
        assert_eq!((s.hwm_kib, s.rss_after_idle_kib), (Some(12), Some(7)));
        // An older child prints no ops count: still a good sample.
        let old = Sample::parse("checksum=00ff\nhwm_kib=12\n", 1.5, 20);
        assert!(old.ok && old.ops.is_none());
        // The accuracy check's figures come all six or not at all.
        assert!(old.prof.is_none());
        let part = Sample::parse("checksum=00ff\nprof_true=100\nprof_est=90\n", 1.5, 20);
        assert!(part.ok && part.prof.is_none());
        let mut t = Sample::parse("", 1.0, 1);
        assert_eq!(t.checksum, None);
        t.fail("a".into());
        t.fail("b".into());
        assert_eq!((t.ok, t.error.as_deref()), (false, Some("a")));
    }
}

//! Scaling mode's results as data, which is also what scaling.json
//! serialises: per workload and thread count, a point per column (an
//! allocator on all CPUs, or with `--pinned` pinned to one) with its runs,
//! median time, operation count and throughput; and per column, the
//! throughput at the most threads over the throughput at the base count.

use crate::model::{AllocatorInfo, Sample};
use serde::Serialize;

/// Where and how scaling mode ran.
#[derive(Clone, Debug, Serialize)]
pub struct ScalingHeader {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub date: String,
    pub suite: String,
    pub runs: usize,
    /// The thread counts, ascending.
    pub threads: Vec<usize>,
    /// The count the summary divides by: 2 if it ran, else the smallest.
    pub base_threads: usize,
    /// The CPU of the pinned series, if any.
    pub pinned_cpu: Option<usize>,
}

/// A series: one allocator, on all CPUs or pinned to one.
#[derive(Clone, Debug, Serialize)]
pub struct Column {
    /// Name in tables and the chart ("slabpool", "slabpool 1 CPU").
    pub name: String,
    pub allocator: String,
    pub pinned: bool,
}

/// The allocator of the column called `name` (`name` itself if no column
/// is).
pub fn allocator_of<'a>(columns: &'a [Column], name: &'a str) -> &'a str {
    let c = columns.iter().find(|c| c.name == name);
    c.map_or(name, |c| c.allocator.as_str())
}

/// One thread count of a workload.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub threads: usize,
    /// The size each run was given, or `None` if the workload cannot run
    /// at this count (xmalloc needs a producer and a consumer).
    pub size: Option<u64>,
}

/// A workload as run in scaling mode.
#[derive(Clone, Debug, Serialize)]
pub struct ScalingWorkload {
    pub name: String,
    pub about: String,
    /// The suite's size, the work of a run at 2 threads, which every
    /// thread count shares out.
    pub size_at_2: u64,
    pub rows: Vec<Row>,
}

/// One workload at one thread count under one column.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Point {
    pub workload: String,
    pub threads: usize,
    pub column: String,
    pub samples: Vec<Sample>,
    pub failed: bool,
    /// The binary does not know the workload.
    pub missing: bool,
    pub median_time_s: Option<f64>,
    /// Slowest run's time over the fastest's.
    pub time_spread: Option<f64>,
    /// The operations each run counted (`None` from an older binary).
    pub ops: Option<u64>,
    /// Throughput: `ops` over the median time, millions per second.
    pub mops: Option<f64>,
    /// `mops` over the best unpinned column's at this thread count.
    pub vs_best: Option<f64>,
}

/// A workload's throughput at the most threads over at the base count.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadRatio {
    pub workload: String,
    pub ratio: Option<f64>,
}

/// A column's scaling summary.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub column: String,
    pub ratios: Vec<WorkloadRatio>,
    /// Over the workloads that have a ratio.
    pub geomean: Option<f64>,
}

/// Everything scaling.md and scaling.svg show.
#[derive(Clone, Debug, Serialize)]
pub struct ScalingReport {
    pub header: ScalingHeader,
    pub allocators: Vec<AllocatorInfo>,
    pub columns: Vec<Column>,
    pub workloads: Vec<ScalingWorkload>,
    pub points: Vec<Point>,
    pub summary: Vec<Summary>,
}

impl ScalingReport {
    /// The point of `workload` at `threads` under `column`.
    pub fn point(&self, workload: &str, threads: usize, column: &str) -> Option<&Point> {
        self.points
            .iter()
            .find(|p| p.workload == workload && p.threads == threads && p.column == column)
    }

    /// Whether any point failed.
    pub fn any_failed(&self) -> bool {
        self.points.iter().any(|p| p.failed)
    }

    /// The most threads run (the summary's numerator).
    pub fn max_threads(&self) -> usize {
        self.header.threads.last().copied().unwrap_or(1)
    }
}

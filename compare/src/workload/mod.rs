//! The workload registry: each workload's name, description, sizes for the
//! smoke, quick and full suites, its group (the main suite or the small
//! programs), how its work splits over threads in scaling mode, and the
//! function that runs it. One file per workload; all of them use only the
//! global allocator (no allocator-specific API), so every allocator runs
//! the same code.

pub mod block;
pub mod ops;
pub mod procfs;
pub mod rng;

mod alloc_test;
mod burst_idle;
mod cache_scratch;
mod large;
mod larson;
mod mstress;
mod rptest;
mod rust_idioms;
mod sh6bench;
mod sp_alloc_only;
mod sp_btree;
mod sp_compiler;
mod sp_parse_tree;
mod sp_strings;
mod text;
mod work_stealing;
mod xmalloc;

pub use ops::Tally;

/// What a workload is given.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// The workload's size (its own unit; see each workload's `about`).
    pub size: u64,
    /// Worker threads, for the workloads that use more than one.
    pub threads: usize,
}

/// What a workload reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    /// Self-check value: the same for every allocator that ran correctly.
    pub checksum: u64,
    /// Allocator operations its code performed (see [`ops`]): the same
    /// for every allocator and every run with the same parameters.
    pub ops: u64,
    /// Resident set after the idle period, for workloads that measure it.
    pub rss_after_idle_kib: Option<u64>,
}

impl From<Tally> for Outcome {
    fn from(t: Tally) -> Self {
        Outcome {
            checksum: t.checksum,
            ops: t.ops,
            rss_after_idle_kib: None,
        }
    }
}

/// The sizes a suite runs a workload at.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// `--smoke`: tiny, for CI.
    pub smoke: u64,
    /// The default quick suite.
    pub quick: u64,
    /// `--full`.
    pub full: u64,
}

/// Which tables a workload's results go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// The main suite: its tables, geometric means, chart and targets.
    Main,
    /// The small programs (`sp-*`): short single-threaded programs whose
    /// heap peaks between 1 and 10 MiB, reported in a table of their own
    /// with their own geometric means, so that adding them leaves the main
    /// suite's figures comparable with earlier runs. Their size is the
    /// same in the quick and full suites (the heap is what defines them).
    Small,
}

/// A workload.
pub struct Workload {
    /// Name used on the command line and in reports.
    pub name: &'static str,
    /// One line: what it does and what `size` counts.
    pub about: &'static str,
    /// How many threads it runs for a given `Params::threads`.
    pub threads: fn(usize) -> usize,
    /// Sizes per suite.
    pub sizes: Sizes,
    /// Its group.
    pub group: Group,
    /// `Some(shares)` if scaling mode runs it: a run at `t` threads does
    /// `size` worth of work `shares(t)` times (once per thread for per-thread
    /// sizes, once per producer for xmalloc), so scaling mode divides a fixed
    /// total by `shares(t)`. `None`: not part of scaling mode.
    pub scaling: Option<fn(usize) -> usize>,
    /// Runs it.
    pub run: fn(&Params) -> Outcome,
}

impl Workload {
    /// Whether its thread count follows `--threads` (the pinned runs are
    /// for these).
    pub fn threaded(&self) -> bool {
        (self.threads)(1) != (self.threads)(64)
    }

    /// Whether it is one of the small programs.
    pub fn small(&self) -> bool {
        self.group == Group::Small
    }
}

/// Every workload, in report order.
pub const ALL: &[Workload] = &[
    alloc_test::ONE_THREAD,
    alloc_test::N_THREADS,
    larson::WORKLOAD,
    xmalloc::WORKLOAD,
    mstress::WORKLOAD,
    cache_scratch::WORKLOAD,
    sh6bench::WORKLOAD,
    rptest::WORKLOAD,
    large::WORKLOAD,
    rust_idioms::WORKLOAD,
    burst_idle::WORKLOAD,
    work_stealing::WORKLOAD,
    sp_parse_tree::WORKLOAD,
    sp_strings::WORKLOAD,
    sp_alloc_only::WORKLOAD,
    sp_compiler::WORKLOAD,
    sp_btree::WORKLOAD,
];

/// The workload called `name`.
pub fn find(name: &str) -> Option<&'static Workload> {
    ALL.iter().find(|w| w.name == name)
}

/// For [`Workload::threads`]: single-threaded.
pub fn one(_: usize) -> usize {
    1
}

/// For [`Workload::threads`]: as many threads as asked for.
pub fn as_asked(threads: usize) -> usize {
    threads
}

/// Runs `body(thread_index)` on `threads` threads and sums their tallies.
pub fn on_threads(threads: usize, body: impl Fn(usize) -> Tally + Sync) -> Tally {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn({
                    let body = &body;
                    move || body(t)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker thread panicked"))
            .sum()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_runs_at_smoke_size_and_is_deterministic() {
        for w in ALL {
            let p = Params {
                size: w.sizes.smoke,
                threads: 2,
            };
            let a = (w.run)(&p);
            let b = (w.run)(&p);
            assert_eq!(a.checksum, b.checksum, "{}", w.name);
            assert_eq!(a.ops, b.ops, "{}", w.name);
            assert!(a.ops > 0, "{}", w.name);
        }
    }

    #[test]
    fn ops_counts_follow_the_parameters() {
        // Deterministic for given parameters, and more work counts more.
        for w in ALL {
            let at = |size, threads| (w.run)(&Params { size, threads }).ops;
            let small = at(w.sizes.smoke, 2);
            assert_eq!(small, at(w.sizes.smoke, 2), "{}", w.name);
            assert!(at(w.sizes.smoke * 2, 2) > small, "{}", w.name);
        }
    }

    #[test]
    fn threaded_workloads_and_scaling_ones() {
        let names = |f: fn(&Workload) -> bool| -> Vec<&str> {
            ALL.iter().filter(|w| f(w)).map(|w| w.name).collect()
        };
        assert_eq!(
            names(|w| w.scaling.is_some()),
            [
                "alloc-test-Nt",
                "larson",
                "xmalloc",
                "mstress",
                "sh6bench",
                "rptest",
                "rust-idioms",
                "work-stealing"
            ]
        );
        // Every scaling workload is threaded; cache-scratch is threaded but
        // measures false sharing, not allocator throughput.
        let threaded = names(Workload::threaded);
        assert!(
            names(|w| w.scaling.is_some())
                .iter()
                .all(|n| threaded.contains(n))
        );
        assert!(threaded.contains(&"cache-scratch"));
        assert!(!threaded.contains(&"burst-idle") && !threaded.contains(&"large"));
    }

    #[test]
    fn small_programs_are_single_threaded_and_apart() {
        let small: Vec<&str> = ALL.iter().filter(|w| w.small()).map(|w| w.name).collect();
        assert_eq!(
            small,
            [
                "sp-parse-tree",
                "sp-strings",
                "sp-alloc-only",
                "sp-compiler",
                "sp-btree"
            ]
        );
        for w in ALL.iter().filter(|w| w.small()) {
            assert!(!w.threaded() && w.scaling.is_none(), "{}", w.name);
            // Their heap defines them: the full suite runs them as the quick one.
            assert_eq!(w.sizes.quick, w.sizes.full, "{}", w.name);
            // Single-threaded: the thread count changes nothing.
            let at = |threads| {
                (w.run)(&Params {
                    size: w.sizes.smoke,
                    threads,
                })
            };
            let (a, b) = (at(1), at(4));
            assert_eq!((a.checksum, a.ops), (b.checksum, b.ops), "{}", w.name);
        }
    }

    #[test]
    fn names_are_unique_and_sizes_grow() {
        for (i, w) in ALL.iter().enumerate() {
            assert!(ALL[i + 1..].iter().all(|v| v.name != w.name));
            assert!(w.sizes.smoke <= w.sizes.quick && w.sizes.quick <= w.sizes.full);
            assert_eq!(find(w.name).map(|v| v.name), Some(w.name));
        }
    }
}

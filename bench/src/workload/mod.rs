//! The workload registry: each workload's name, description, sizes for the
//! smoke, quick and full suites, and the function that runs it. One file per
//! workload; all of them use only the global allocator (no
//! allocator-specific API), so every allocator runs the same code.

pub mod block;
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
mod xmalloc;

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
    /// Resident set after the idle period, for workloads that measure it.
    pub rss_after_idle_kib: Option<u64>,
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
    /// Runs it.
    pub run: fn(&Params) -> Outcome,
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

/// Runs `body(thread_index)` on `threads` threads and sums their checksums.
pub fn on_threads(threads: usize, body: impl Fn(usize) -> u64 + Sync) -> u64 {
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
            .fold(0u64, u64::wrapping_add)
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

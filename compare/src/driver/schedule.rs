//! Runs child processes in interleaved rounds, with a progress line on
//! stderr. The jobs come in groups (one workload at one thread count, under
//! every allocator, pinned or not); in each round every group runs each of
//! its jobs once, one after the other, starting one job further each round
//! (A B C, then B C A, ...), so slow phases of a busy machine spread over
//! all of them.

use crate::measure;
use crate::model::Sample;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// One child run: `exe <workload> <size> <threads>`, pinned to CPU `pin`
/// if given; `label` names it in the progress line.
#[derive(Clone, Debug)]
pub struct Job {
    pub label: String,
    pub exe: PathBuf,
    pub workload: &'static str,
    pub size: u64,
    pub threads: usize,
    pub pin: Option<usize>,
    /// The environment of the run (besides the driver's own).
    pub env: Vec<(String, String)>,
}

/// Runs every job `runs` times (see the module docs) and returns their
/// samples, indexed like `groups`.
pub fn run(groups: &[Vec<Job>], runs: usize, timeout: Duration) -> Vec<Vec<Vec<Sample>>> {
    let mut samples: Vec<Vec<Vec<Sample>>> = groups
        .iter()
        .map(|g| g.iter().map(|_| Vec::with_capacity(runs)).collect())
        .collect();
    let total = runs * groups.iter().map(Vec::len).sum::<usize>();
    let mut progress = Progress::new(total);
    for round in 0..runs {
        for (gi, group) in groups.iter().enumerate() {
            for ji in order(group.len(), round) {
                let j = &group[ji];
                progress.show(round + 1, runs, &j.label);
                let sample = measure::run(
                    &j.exe, &j.env, j.workload, j.size, j.threads, timeout, j.pin,
                );
                progress.done(&sample);
                samples[gi][ji].push(sample);
            }
        }
    }
    progress.finish();
    samples
}

/// The order of a group's `n` jobs in round `round`.
fn order(n: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |step| (round + step) % n)
}

/// The progress line: rewritten in place on a terminal, one line per run
/// otherwise (CI logs).
struct Progress {
    total: usize,
    done: usize,
    tty: bool,
    failed: usize,
}

impl Progress {
    fn new(total: usize) -> Self {
        Progress {
            total,
            done: 0,
            tty: std::io::stderr().is_terminal(),
            failed: 0,
        }
    }

    fn show(&self, round: usize, runs: usize, label: &str) {
        if self.tty {
            let mut e = std::io::stderr();
            let _ = write!(
                e,
                "\r\x1b[K[{:>3}/{}] round {round}/{runs} · {label} · {} failed",
                self.done + 1,
                self.total,
                self.failed
            );
            let _ = e.flush();
        } else {
            eprint!(
                "[{:>3}/{}] round {round}/{runs} · {label}",
                self.done + 1,
                self.total
            );
        }
    }

    fn done(&mut self, s: &Sample) {
        self.done += 1;
        if !s.ok && !s.missing {
            self.failed += 1;
        }
        if !self.tty {
            match &s.error {
                None => eprintln!(
                    " · {:.3} s · {:.1} MiB",
                    s.time_s,
                    s.peak_rss_kib() as f64 / 1024.0
                ),
                Some(e) if s.missing => eprintln!(" · n/a: {e}"),
                Some(e) => eprintln!(" · FAILED: {e}"),
            }
        } else if let (Some(e), false) = (&s.error, s.missing) {
            eprintln!("\r\x1b[K  failed: {e}");
        }
    }

    fn finish(&self) {
        if self.tty {
            eprintln!("\r\x1b[K{} runs, {} failed", self.total, self.failed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_rotate_the_starting_job() {
        let o = |n, r| order(n, r).collect::<Vec<_>>();
        assert_eq!(o(3, 0), [0, 1, 2]);
        assert_eq!(o(3, 1), [1, 2, 0]);
        assert_eq!(o(3, 4), [1, 2, 0]);
        assert_eq!(o(1, 7), [0]);
    }

    #[test]
    fn samples_come_back_in_the_groups_shape() {
        let job = |label: &str| Job {
            label: label.into(),
            exe: "/bin/true".into(),
            workload: "x",
            size: 1,
            threads: 1,
            pin: None,
            env: Vec::new(),
        };
        let groups = vec![vec![job("a"), job("b")], vec![job("c")]];
        let s = run(&groups, 2, Duration::from_secs(10));
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].len(), s[1].len()), (2, 1));
        assert!(s.iter().flatten().all(|runs| runs.len() == 2));
        // /bin/true prints no checksum: failed, but measured.
        assert!(s[0][0].iter().all(|x| !x.ok && !x.missing));
    }
}

//! Runs one workload binary as a child process and measures it: wall time
//! from spawn to reaping, peak RSS from `wait4`'s rusage (`ru_maxrss`), and
//! the `key=value` lines the child prints. A child that exits non-zero,
//! dies of a signal, times out or prints no checksum is a failed sample,
//! except one that says it does not know the workload (an `--extra` binary
//! from an older build), which is a missing sample. A run can be pinned to
//! one CPU (see `affinity.rs`).

use crate::affinity;
use crate::model::Sample;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One run of `exe <workload> <size> <threads>` with `env` added to the
/// environment, pinned to CPU `pin` if given.
pub fn run(
    exe: &Path,
    env: &[(String, String)],
    workload: &str,
    size: u64,
    threads: usize,
    timeout: Duration,
    pin: Option<usize>,
) -> Sample {
    let pinned = match pin.map(affinity::pin_this_thread).transpose() {
        Ok(p) => p,
        Err(e) => return Sample::failed(format!("cannot pin to CPU {}: {e}", pin.unwrap_or(0))),
    };
    let start = Instant::now();
    let spawned = Command::new(exe)
        .args([workload, &size.to_string(), &threads.to_string()])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    // The child has the one-CPU mask now; the driver gets its own back.
    drop(pinned);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return Sample::failed(format!("cannot start {}: {e}", exe.display())),
    };
    let pid = child.id() as libc::pid_t;
    let pidfd = pidfd_open(pid);
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let timed_out = pidfd.as_ref().is_some_and(|fd| !wait_readable(fd, timeout));
    if timed_out {
        kill(pidfd.as_ref().expect("checked above"));
    }
    let (status, usage) = wait4(pid);
    let elapsed = start.elapsed();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let mut sample = Sample::parse(&stdout, elapsed.as_secs_f64(), usage.ru_maxrss as u64);
    let failure = if timed_out {
        Some(format!("timed out after {} s", timeout.as_secs()))
    } else {
        describe_status(status)
    };
    // The child's own words for a workload it does not know (exit code 2).
    let unknown = stderr.lines().find(|l| l.starts_with("unknown workload"));
    if let (Some(line), true) = (unknown, failure.as_deref() == Some("exit code 2")) {
        sample.fail(format!("this binary does not know the workload ({line})"));
        sample.missing = true;
        return sample;
    }
    if let Some(why) = failure {
        sample.fail(why);
    } else if sample.checksum.is_none() {
        sample.fail("no checksum printed".into());
    }
    if !sample.ok
        && let Some(last) = stderr.lines().rev().find(|l| !l.trim().is_empty())
    {
        let note = format!(
            "{}: {}",
            sample.error.take().unwrap_or_default(),
            last.trim()
        );
        sample.error = Some(note);
    }
    sample
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut s);
        }
        s
    })
}

/// A pidfd for `pid` (our unreaped child), or `None` on kernels without it
/// (then there is no timeout).
fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1;
    // no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the syscall returned a new file descriptor that nothing else
    // owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until the child exits (the pidfd becomes readable) or `timeout`
/// passes; true if it exited.
fn wait_readable(fd: &OwnedFd, timeout: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `p` is one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n > 0 {
            return true;
        }
        if n == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return n != 0;
        }
    }
}

/// SIGKILL through the pidfd: safe against pid reuse, since the child is
/// not reaped until `wait4` below.
fn kill(fd: &OwnedFd) {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, no
    // siginfo and no flags.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
}

/// Reaps `pid` and returns its wait status and resource usage.
fn wait4(pid: libc::pid_t) -> (libc::c_int, libc::rusage) {
    let mut status = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid for writes; `pid` is our
        // child, which nothing else reaps (std's Child is never waited on).
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return (status, usage);
        }
    }
}

/// `None` for a clean exit, else what went wrong.
fn describe_status(status: libc::c_int) -> Option<String> {
    if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => None,
            code => Some(format!("exit code {code}")),
        }
    } else if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        Some(format!("killed by signal {sig}{}", signal_name(sig)))
    } else {
        Some(format!("wait status {status:#x}"))
    }
}

fn signal_name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGBUS => " (SIGBUS)",
        libc::SIGILL => " (SIGILL)",
        libc::SIGFPE => " (SIGFPE)",
        libc::SIGKILL => " (SIGKILL)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(describe_status(0), None);
        assert_eq!(describe_status(3 << 8).as_deref(), Some("exit code 3"));
        assert!(
            describe_status(libc::SIGSEGV)
                .unwrap()
                .starts_with("killed by signal 11")
        );
    }

    #[test]
    fn measures_a_real_child() {
        let s = run(
            Path::new("/bin/sh"),
            &[],
            "-c",
            0,
            1,
            Duration::from_secs(10),
            None,
        );
        // `sh -c 0 1` fails (no command "0"): a failed sample, not a panic.
        assert!(!s.ok);
        assert!(s.error.is_some());
    }

    #[test]
    fn passes_the_environment() {
        let env = [("SLABPOOL_COMPARE_TEST_VAR".to_string(), "42".to_string())];
        let sc = script(
            "env-wl",
            "echo checksum=$SLABPOOL_COMPARE_TEST_VAR; echo prof_true=100; echo prof_est=90; echo prof_sd=30; echo prof_live_samples=3; echo prof_stats=101; echo prof_samples=7",
        );
        let s = sh_with(&env, &sc, None);
        assert!(s.ok, "{s:?}");
        assert_eq!(s.checksum.as_deref(), Some("42"));
        let p = s.prof.expect("prof_ lines parsed");
        assert_eq!((p.true_bytes, p.est_bytes, p.live_samples), (100, 90, 3));
        assert_eq!(p.sd_bytes, 30);
        assert_eq!((p.stats_bytes, p.samples), (101, 7));
    }

    #[test]
    fn times_out() {
        let s = run(
            Path::new("/bin/sleep"),
            &[],
            "5",
            0,
            1,
            Duration::from_millis(200),
            None,
        );
        assert!(!s.ok);
        assert!(s.error.unwrap().starts_with("timed out"));
        assert!(s.time_s < 2.0);
    }

    /// A stand-in for a workload binary: a shell script, run as
    /// `/bin/sh <script> <size> <threads>` (run through sh rather than
    /// executed, so a concurrent fork in another test cannot make exec fail
    /// with "text file busy").
    fn script(name: &str, body: &str) -> String {
        let dir =
            std::env::temp_dir().join(format!("slabpool-compare-measure-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// `script` run as a workload binary with `env`, pinned to `pin`.
    fn sh_with(env: &[(String, String)], script: &str, pin: Option<usize>) -> Sample {
        run(
            Path::new("/bin/sh"),
            env,
            script,
            1,
            2,
            Duration::from_secs(10),
            pin,
        )
    }

    fn sh(script: &str, pin: Option<usize>) -> Sample {
        sh_with(&[], script, pin)
    }

    #[test]
    fn an_unknown_workload_is_missing_not_failed() {
        let old = script(
            "old-wl",
            "echo 'unknown workload \"work-stealing\"' >&2; echo 'usage: ...' >&2; exit 2",
        );
        let s = sh(&old, None);
        assert!(!s.ok && s.missing, "{s:?}");
        assert!(
            s.error
                .unwrap()
                .contains("unknown workload \"work-stealing\"")
        );
        // Exit code 2 for another reason is a failure.
        let s = sh(&script("bad-wl", "echo 'usage: ...' >&2; exit 2"), None);
        assert!(!s.ok && !s.missing);
    }

    #[test]
    fn an_older_protocol_without_ops_is_a_good_run() {
        let s = sh(
            &script("older-wl", "echo checksum=00ff; echo hwm_kib=100"),
            None,
        );
        assert!(s.ok, "{s:?}");
        assert_eq!((s.checksum.as_deref(), s.ops), (Some("00ff"), None));
    }

    #[test]
    fn a_pinned_child_sees_one_cpu() {
        let cpu = affinity::first_cpu().unwrap();
        let probe = script(
            "probe-wl",
            "echo checksum=$(grep Cpus_allowed_list /proc/self/status | tr -d ' \\t' | cut -d: -f2)",
        );
        let s = sh(&probe, Some(cpu));
        assert_eq!(s.checksum, Some(cpu.to_string()), "{s:?}");
        let s = sh(&probe, None);
        assert_eq!(
            s.checksum.as_deref().map(|c| c.contains(['-', ','])),
            Some(affinity::allowed().unwrap().len() > 1)
        );
    }
}

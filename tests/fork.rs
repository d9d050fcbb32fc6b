//! `fork` while other threads allocate: the child must be able to allocate
//! (no heap lock inherited in a taken state) and exit normally. A child that
//! deadlocks is killed after a timeout and fails the test.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static A: slabpool::SlabPool = slabpool::SlabPool;

/// Allocation churn that keeps the shared locks busy: bursts larger than a
/// thread cache holds (refills and flushes through the central pools) and
/// large blocks (arena locks).
fn churn(stop: &AtomicBool) {
    let mut burst: Vec<Vec<u8>> = Vec::with_capacity(4096);
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        for k in 0..4096 {
            let size = [16, 48, 128, 512, 2048, 40_000][(i + k) % 6];
            burst.push(vec![k as u8; size]);
        }
        for (k, v) in burst.drain(..).enumerate() {
            assert!(v.iter().all(|&b| b == k as u8));
        }
        i += 1;
    }
}

/// Waits for `pid` for at most `limit`; kills it and fails on timeout.
fn wait_child(pid: libc::pid_t, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer; WNOHANG never blocks.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid failed");
        if r == pid {
            return status;
        }
        if start.elapsed() > limit {
            // SAFETY: `pid` is our child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("child {pid} still running after {limit:?}: deadlocked after fork");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn fork_while_threads_allocate() {
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || churn(&stop))
        })
        .collect();
    for round in 0..50 {
        // SAFETY: the child only allocates, checks and calls _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let mut ok = true;
            for n in 0..2000usize {
                let v = vec![(n % 251) as u8; 1 + n * 37 % 70_000];
                ok &= v.iter().all(|&b| b == (n % 251) as u8);
            }
            let big = vec![7u8; 5 << 20];
            ok &= big[(5 << 20) - 1] == 7;
            // SAFETY: _exit ends the child without running the parent's
            // atexit handlers or destructors.
            unsafe { libc::_exit(if ok { 0 } else { 3 }) };
        }
        let status = wait_child(pid, Duration::from_secs(10));
        assert!(
            libc::WIFEXITED(status),
            "round {round}: child died: status {status:#x}"
        );
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "round {round}: child saw bad memory"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
}

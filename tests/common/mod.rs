//! Helpers shared by the integration tests.
#![allow(dead_code)]

/// A command that runs this test binary again, as a child process: through
/// the runner named by `SLABPOOL_TEST_RUNNER` when it is set (an emulator,
/// `qemu-aarch64` for the aarch64 suite: without binfmt_misc the kernel
/// cannot exec the binary itself), else directly.
pub fn self_command() -> std::process::Command {
    let exe = std::env::current_exe().expect("current_exe");
    let runner = std::env::var("SLABPOOL_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(program) => {
            let mut cmd = std::process::Command::new(program);
            cmd.args(words).arg(exe);
            cmd
        }
        None => std::process::Command::new(exe),
    }
}

/// The kernel's page size in bytes (4 KiB, or 16 or 64 KiB on some
/// aarch64 kernels).
pub fn os_page() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// xorshift64*: cheap, deterministic, no allocation.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// 1 B .. 1 MiB, skewed to small: half up to 64 B, most up to 1 KiB, one
    /// in 64 up to 64 KiB and one in 1,024 up to 1 MiB.
    pub fn size(&mut self) -> usize {
        let r = self.next();
        let top = match r & 1023 {
            0 => 1 << 20,
            1..=16 => 64 << 10,
            17..=100 => 8 << 10,
            101..=500 => 1 << 10,
            _ => 64,
        };
        1 + (r >> 10) as usize % top
    }
}

/// The pattern word at word `i` of a block at `addr`: two blocks never
/// carry the same pattern, so a misplaced or overlapping write is detected.
#[inline]
fn pattern(addr: usize, i: usize) -> u64 {
    (addr as u64).rotate_left(17) ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Fills `len` bytes at `p` with its pattern.
///
/// # Safety
/// `p` must be valid for `len` bytes of writes.
pub unsafe fn fill(p: *mut u8, len: usize) {
    // SAFETY: forwarded.
    unsafe { fill_as(p, len, p as usize) }
}

/// Fills `len` bytes at `p` with the pattern of a block at `addr`.
///
/// # Safety
/// `p` must be valid for `len` bytes of writes.
pub unsafe fn fill_as(p: *mut u8, len: usize, addr: usize) {
    for i in 0..len / 8 {
        // SAFETY: word `i` lies inside the block; unaligned writes are fine.
        unsafe { p.add(8 * i).cast::<u64>().write_unaligned(pattern(addr, i)) };
    }
    let tail = pattern(addr, len / 8).to_le_bytes();
    for (j, &byte) in tail.iter().enumerate().take(len % 8) {
        // SAFETY: the tail bytes lie inside the block.
        unsafe { *p.add(len / 8 * 8 + j) = byte };
    }
}

/// Checks the pattern written by [`fill`]; panics at the first bad word.
///
/// # Safety
/// `p` must be valid for `len` bytes of reads.
pub unsafe fn check(p: *const u8, len: usize) {
    // SAFETY: forwarded.
    unsafe { check_as(p, len, p as usize) }
}

/// Checks that `len` bytes at `p` hold the pattern of a block at `addr`
/// (after a realloc moved the block from `addr` to `p`).
///
/// # Safety
/// `p` must be valid for `len` bytes of reads.
pub unsafe fn check_as(p: *const u8, len: usize, addr: usize) {
    for i in 0..len / 8 {
        // SAFETY: word `i` lies inside the block.
        let w = unsafe { p.add(8 * i).cast::<u64>().read_unaligned() };
        assert_eq!(
            w,
            pattern(addr, i),
            "block {addr:#x} len {len}: word {i} corrupted"
        );
    }
    let tail = pattern(addr, len / 8).to_le_bytes();
    for (j, &byte) in tail.iter().enumerate().take(len % 8) {
        // SAFETY: the tail bytes lie inside the block.
        let b = unsafe { *p.add(len / 8 * 8 + j) };
        assert_eq!(
            b, byte,
            "block {addr:#x} len {len}: tail byte {j} corrupted"
        );
    }
}

/// A field of `/proc/self/status` in KiB (VmRSS, VmSize, ...).
pub fn status_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// The settings in force in a child run of this test binary (the
/// configuration tests, `tests/config*.rs`): runs its test `child_test`
/// alone with `env` set (and slabpool's other variables removed), which
/// prints `guard sample N`; returns N and whether the statistics table
/// was printed to stderr at exit (`show_stats`).
pub fn settings_in_child(child_test: &str, env: &[(&str, &str)]) -> (u32, bool) {
    let mut cmd = self_command();
    cmd.args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env(CONFIG_CHILD, "1");
    for var in [
        "SLABPOOL_PURGE_DELAY_MS",
        "SLABPOOL_SHOW_STATS",
        "SLABPOOL_VERBOSE",
        "SLABPOOL_GUARD_SAMPLE",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child: {}\n{stdout}\n{stderr}",
        out.status
    );
    // The harness prints `test child ... ` on the same line.
    let sample = stdout
        .lines()
        .find_map(|l| l.split_once("guard sample ").map(|(_, n)| n))
        .unwrap_or_else(|| panic!("child printed no guard sample:\n{stdout}"))
        .trim()
        .parse()
        .expect("a number");
    (sample, stderr.contains("slabpool statistics"))
}

/// Set in a configuration test's child run.
pub const CONFIG_CHILD: &str = "SLABPOOL_CONFIG_TEST_CHILD";

/// The child side of [`settings_in_child`]: allocates, then prints the
/// guard sampling period in force (nothing outside a child run).
pub fn print_settings_if_child() {
    if std::env::var_os(CONFIG_CHILD).is_none() {
        return;
    }
    let v = std::hint::black_box(Box::new([1u8; 100]));
    assert_eq!(v[99], 1);
    println!("guard sample {}", slabpool::guard_stats().sample);
}

//! Address space given back under `ulimit -v`, through
//! `GlobalAlloc`: this binary, whose global allocator is slabpool, runs
//! itself as a child process under an `RLIMIT_AS` limit (set before
//! `exec`), which allocates blocks of one size with `std::alloc::alloc`
//! until it returns null, frees them all, and allocates again. The second
//! round must reach 90% of the first (for 3 MiB then 48 B blocks: of 48 B
//! blocks in a fresh process), and no failure may be anything but a null
//! pointer (the `alloc` error handler, which aborts, is never reached).
//! The same child with `System` instead shows glibc's figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::os::unix::process::CommandExt;

mod common;

#[global_allocator]
static A: slabpool::SlabPool = slabpool::SlabPool;

/// Blocks of `size` bytes from `alloc` until it returns null, chained
/// through their first word; returns the chain and the bytes reached.
fn fill(size: usize, alloc: &dyn Fn(Layout) -> *mut u8) -> (*mut u8, usize) {
    let layout = Layout::from_size_align(size, 8).expect("layout");
    let mut head: *mut u8 = std::ptr::null_mut();
    let mut n = 0;
    loop {
        let p = alloc(layout);
        if p.is_null() {
            break;
        }
        // SAFETY: a fresh block of at least 8 bytes, 8-aligned.
        unsafe { p.cast::<*mut u8>().write(head) };
        head = p;
        n += 1;
    }
    (head, n * size)
}

fn release(mut head: *mut u8, size: usize, dealloc: &dyn Fn(*mut u8, Layout)) {
    let layout = Layout::from_size_align(size, 8).expect("layout");
    while !head.is_null() {
        // SAFETY: each block of the chain is live and holds the next.
        let next = unsafe { head.cast::<*mut u8>().read() };
        dealloc(head, layout);
        head = next;
    }
}

/// The child: `ULIMIT_CHILD=slabpool|system`, arguments `SIZE1 SIZE2`.
fn child(allocator: &str, first: usize, second: usize) {
    let system = allocator == "system";
    let alloc = |l: Layout| {
        // SAFETY: a valid non-zero layout; null is an answer.
        unsafe {
            if system {
                System.alloc(l)
            } else {
                std::alloc::alloc(l)
            }
        }
    };
    let dealloc = |p: *mut u8, l: Layout| {
        // SAFETY: `p` was allocated by the same allocator with `l`.
        unsafe {
            if system {
                System.dealloc(p, l)
            } else {
                std::alloc::dealloc(p, l)
            }
        }
    };
    let (head, round1) = fill(first, &alloc);
    release(head, first, &dealloc);
    let (head, round2) = fill(second, &alloc);
    release(head, second, &dealloc);
    // Printed after everything is freed: stdout's buffer needs memory.
    println!("round1 {round1}\nround2 {round2}");
}

/// Runs the child under `kib` KiB; returns its two rounds.
fn rounds(allocator: &str, kib: u64, first: usize, second: usize) -> (u64, u64) {
    let mut cmd = common::self_command();
    cmd.env("ULIMIT_CHILD", allocator)
        .args([first.to_string(), second.to_string()]);
    let bytes = kib * 1024;
    // SAFETY: runs in the forked child before `exec`; `setrlimit` is
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{allocator} child ({first} then {second} B under {kib} KiB): {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |key: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {stdout}"))
    };
    (field("round1 "), field("round2 "))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Ok(allocator) = std::env::var("ULIMIT_CHILD") {
        let size = |i: usize| args[i].parse::<usize>().expect("size");
        return child(&allocator, size(1), size(2));
    }
    // libtest-style arguments (filters, --nocapture) are ignored.
    if std::env::var_os("SLABPOOL_TEST_RUNNER").is_some() {
        // The limit would bound the emulator's own address space (its
        // translation buffer, the guest's reservations), not the program's:
        // under qemu-user the children run out of memory elsewhere.
        println!("ulimit: skipped under SLABPOOL_TEST_RUNNER (an emulator)");
        return;
    }
    const MIB: usize = 1 << 20;
    let cases: [(&str, u64, usize, usize); 5] = [
        ("48 B", 300_000, 48, 48),
        ("1000 B", 200_000, 1000, 1000),
        ("100 KiB", 300_000, 100 << 10, 100 << 10),
        ("3 MiB", 300_000, 3 * MIB, 3 * MIB),
        ("3 MiB then 48 B", 300_000, 3 * MIB, 48),
    ];
    let mut failed = Vec::new();
    let mut fresh_48 = 0;
    for (name, kib, first, second) in cases {
        let (ours1, ours2) = rounds("slabpool", kib, first, second);
        let (sys1, sys2) = rounds("system", kib, first, second);
        println!(
            "{name} under ulimit -v {kib}: slabpool {:.1} MB then {:.1} MB; glibc {:.1} MB then {:.1} MB",
            mb(ours1),
            mb(ours2),
            mb(sys1),
            mb(sys2)
        );
        // The second round is compared with the first round of its size
        // in a fresh process (the 48 B case runs first).
        let reference = if first == second { ours1 } else { fresh_48 };
        if first == 48 && second == 48 {
            fresh_48 = ours1;
        }
        if ours1 == 0 || ours2 * 10 < reference * 9 {
            failed.push(format!(
                "{name}: second round {ours2} bytes, reference {reference}"
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "freed memory not reused under ulimit -v: {failed:?}"
    );
    println!("test result: ok");
}

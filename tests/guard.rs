//! Sampled guarded allocations through the Rust library: a test binary
//! whose `#[global_allocator]` is slabpool re-runs itself as child
//! processes, one per case, with `SLABPOOL_GUARD_SAMPLE=1` (every eligible
//! allocation guarded: large ones through `GlobalAlloc`, every size through
//! the pointer API `slabpool::raw`), and checks how each ends: the signal,
//! the exit code, the one line slabpool printed.
//!
//! No test harness (`harness = false`): a child must make its first
//! guarded allocation, which installs the fault handler, at a point the
//! case chooses (after its own handler, for the chaining case), with no
//! harness thread allocating meanwhile.

// The hardened build puts a canary after every block, so the exact
// placements and faults below are the default build's: tests/hardened.rs
// covers that build.
#[cfg(feature = "hardened")]
fn main() {
    println!("guard: skipped under the hardened feature (see tests/hardened.rs)");
}

#[cfg(not(feature = "hardened"))]
fn main() {
    default_build::main();
}

#[cfg(not(feature = "hardened"))]
mod common;

#[cfg(not(feature = "hardened"))]
mod default_build {
    use super::common::{Rng, check, check_as, fill, os_page};
    use std::alloc::{Layout, alloc, dealloc, realloc};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Output;
    use std::ptr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[global_allocator]
    static A: slabpool::SlabPool = slabpool::SlabPool;

    const PAGE: usize = 4096;

    /// A large request: guarded through both doors.
    const LARGE: usize = 40_000;

    fn large() -> Layout {
        Layout::from_size_align(LARGE, 8).unwrap()
    }

    /// Prints the block a case will misuse, for the parent to find in the
    /// report.
    fn announce(p: *const u8) {
        println!("pointer {p:p}");
        use std::io::Write;
        std::io::stdout().flush().unwrap();
    }

    /// A guarded large block through `GlobalAlloc`.
    fn guarded_large() -> *mut u8 {
        // SAFETY: a valid non-zero layout.
        let p = unsafe { alloc(large()) };
        assert!(!p.is_null());
        assert_eq!(
            slabpool::raw::usable_size(p),
            LARGE,
            "a guarded block is exactly as large as asked"
        );
        assert_eq!((p as usize + LARGE) % PAGE, 0, "ends at a page boundary");
        p
    }

    // ---- the cases, run in children -------------------------------------------

    fn child(case: &str) {
        // SAFETY: each case misuses its own blocks on purpose; the accesses
        // that fault are volatile so they happen as written.
        unsafe {
            match case {
                "overflow-large" => {
                    let p = guarded_large();
                    announce(p);
                    p.add(LARGE - 1).write_volatile(1);
                    p.add(LARGE).write_volatile(1);
                }
                "overflow-raw" => {
                    let p = slabpool::raw::alloc(40, 16);
                    assert_eq!(slabpool::raw::usable_size(p), 48);
                    announce(p);
                    p.add(47).write_volatile(1);
                    p.add(48).write_volatile(1);
                }
                "underflow" => {
                    let p = guarded_large();
                    announce(p);
                    let first_page = p as usize & !(os_page() - 1);
                    ptr::with_exposed_provenance_mut::<u8>(first_page).write_volatile(1);
                    ptr::with_exposed_provenance_mut::<u8>(first_page - 1).write_volatile(1);
                }
                "uaf-read" => {
                    let p = guarded_large();
                    announce(p);
                    dealloc(p, large());
                    println!("read {}", p.add(8).read_volatile());
                }
                "uaf-write" => {
                    let p = slabpool::raw::alloc(100, 16);
                    announce(p);
                    slabpool::raw::free(p);
                    p.add(8).write_volatile(7);
                }
                "double-free-dealloc" => {
                    let p = guarded_large();
                    announce(p);
                    dealloc(p, large());
                    dealloc(p, large());
                }
                "double-free-raw" => {
                    let p = slabpool::raw::alloc(24, 8);
                    announce(p);
                    slabpool::raw::free(p);
                    slabpool::raw::free(p);
                }
                "interior-free" => {
                    let p = slabpool::raw::alloc(64, 16);
                    announce(p.add(16));
                    slabpool::raw::free(p.add(16));
                }
                "realloc-usable" => realloc_and_usable_size(),
                "handler" => own_handler_still_gets_its_faults(),
                "threads" => threads(),
                "unset" => nothing_guarded(),
                other => panic!("unknown case {other}"),
            }
        }
        std::process::exit(0);
    }

    /// `realloc` and `usable_size` of guarded blocks, through both doors.
    fn realloc_and_usable_size() {
        // SAFETY: every block is live and used within its size; each result
        // replaces the block it was made from.
        unsafe {
            let p = guarded_large();
            fill(p, LARGE);
            let q = realloc(p, large(), 100_000);
            assert!(!q.is_null() && q != p, "a guarded block moves");
            check_as(q, LARGE, p as usize);
            assert_eq!(
                slabpool::raw::find(p),
                Err(slabpool::raw::Invalid::GuardedFreed),
                "the old block is freed into the pool"
            );
            assert_eq!(slabpool::raw::usable_size(q), 100_000);
            let big = Layout::from_size_align(100_000, 8).unwrap();
            let r = realloc(q, big, 50_000);
            assert_eq!(slabpool::raw::usable_size(r), 50_000);
            dealloc(r, Layout::from_size_align(50_000, 8).unwrap());

            // The pointer API: contents kept across sizes, guarded every time.
            // (A small block is guarded when its class's cache is empty: this
            // thread's cache also serves `GlobalAlloc`, which refilled it.)
            slabpool::collect();
            let mut p = slabpool::raw::alloc(10, 8);
            assert_eq!(slabpool::raw::usable_size(p), 16);
            for i in 0..10 {
                *p.add(i) = i as u8;
            }
            let mut len = 10;
            for size in [100, 700, 5000, 40_000, 300_000, 33, 3] {
                let q = slabpool::raw::realloc(p, size, 16);
                assert!(!q.is_null() && q != p);
                assert_eq!(slabpool::raw::usable_size(q), size.next_multiple_of(16));
                assert_eq!((q as usize + slabpool::raw::usable_size(q)) % PAGE, 0);
                let keep = len.min(size);
                assert!((0..keep).all(|i| *q.add(i) == i as u8), "to {size}");
                for i in keep..size {
                    *q.add(i) = i as u8;
                }
                assert_eq!(
                    slabpool::raw::find(p),
                    Err(slabpool::raw::Invalid::GuardedFreed)
                );
                p = q;
                len = size;
            }
            slabpool::raw::free(p);
            let z = slabpool::raw::alloc_zeroed(3000, 8);
            assert!((0..3000).all(|i| *z.add(i) == 0));
            slabpool::raw::free(z);
            // Aligned requests up to a page are guarded at their alignment.
            for align in [32, 256, PAGE] {
                let a = slabpool::raw::alloc(100, align);
                assert_eq!(a as usize % align, 0);
                assert_eq!(
                    slabpool::raw::usable_size(a),
                    100usize.next_multiple_of(align)
                );
                slabpool::raw::free(a);
            }
        }
        let s = slabpool::guard_stats();
        assert_eq!(s.sample, 1);
        assert!(s.guarded >= 15 && s.live == 0, "{s:?}");
        assert!(s.chunks >= 1, "{s:?}");
    }

    /// A page of this process's own, inaccessible until the handler fixes it.
    static OWN_PAGE: AtomicUsize = AtomicUsize::new(0);
    static OWN_FAULTS: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn own_handler(_sig: i32, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid `siginfo_t`.
        let addr = unsafe { (*info).si_addr() } as usize;
        let page = OWN_PAGE.load(Ordering::Relaxed);
        if addr >= page && addr < page + PAGE {
            OWN_FAULTS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: the page is this process's own mapping.
            unsafe {
                libc::mprotect(
                    page as *mut libc::c_void,
                    PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            return;
        }
        // Anything else (the guarded block's overflow, reported by slabpool
        // first): leave with a code the parent recognises.
        // SAFETY: `_exit` is async-signal-safe.
        unsafe { libc::_exit(42) };
    }

    /// The program installs its SIGSEGV handler before slabpool's (which comes
    /// with the first guarded block): a fault outside the pool still reaches
    /// the program's handler, and one inside is reported and then handed to it.
    fn own_handler_still_gets_its_faults() {
        // SAFETY: plain system calls on this process's own memory and signal
        // actions; `own_handler` has the `SA_SIGINFO` signature.
        unsafe {
            let page = libc::mmap(
                ptr::null_mut(),
                PAGE,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(page, libc::MAP_FAILED);
            OWN_PAGE.store(page as usize, Ordering::Relaxed);
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = own_handler as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut act.sa_mask);
            assert_eq!(libc::sigaction(libc::SIGSEGV, &act, ptr::null_mut()), 0);
            assert_eq!(slabpool::guard_stats().chunks, 0, "no guarded block yet");
            let p = guarded_large();
            let mut now: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGSEGV, ptr::null(), &mut now);
            assert_ne!(
                now.sa_sigaction, act.sa_sigaction,
                "slabpool's handler is installed in front"
            );
            page.cast::<u8>().write_volatile(5);
            assert_eq!(OWN_FAULTS.load(Ordering::Relaxed), 1, "own fault seen");
            assert_eq!(page.cast::<u8>().read_volatile(), 5);
            println!("own fault handled");
            announce(p);
            p.add(LARGE).write_volatile(1);
        }
        unreachable!("the overflow faults");
    }

    /// Several threads allocate, check and free many guarded blocks of every
    /// size through both doors: contents, alignment, no overlap.
    fn threads() {
        use std::sync::Mutex;
        static LIVE: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
        let before = slabpool::guard_stats().guarded;
        std::thread::scope(|s| {
            for t in 0..4u64 {
                s.spawn(move || {
                    let mut rng = Rng::new(t + 1);
                    let mut mine: Vec<(*mut u8, usize, bool)> = Vec::new();
                    for i in 0..3000 {
                        if mine.len() > 40 || (i % 3 == 0 && !mine.is_empty()) {
                            let k = rng.below(mine.len() as u64) as usize;
                            let (p, size, raw) = mine.swap_remove(k);
                            {
                                let mut live = LIVE.lock().unwrap();
                                let at = live.iter().position(|&(a, _)| a == p as usize).unwrap();
                                live.swap_remove(at);
                            }
                            // SAFETY: `p` is live with `size` patterned bytes.
                            unsafe {
                                check(p, size);
                                if raw {
                                    slabpool::raw::free(p);
                                } else {
                                    dealloc(p, Layout::from_size_align(size, 16).unwrap());
                                }
                            }
                            continue;
                        }
                        let raw = i % 2 == 0;
                        let size = if raw {
                            rng.size().min(300_000)
                        } else {
                            33_000 + rng.below(200_000) as usize
                        };
                        // SAFETY: non-zero sizes at a valid alignment.
                        let p = unsafe {
                            if raw {
                                slabpool::raw::alloc(size, 16)
                            } else {
                                alloc(Layout::from_size_align(size, 16).unwrap())
                            }
                        };
                        assert!(!p.is_null());
                        assert_eq!(p as usize % 16, 0, "alignment");
                        {
                            let mut live = LIVE.lock().unwrap();
                            let (a, b) = (p as usize, p as usize + size);
                            for &(q, n) in live.iter() {
                                assert!(b <= q || q + n <= a, "{a:#x}+{size} overlaps {q:#x}+{n}");
                            }
                            live.push((a, size));
                        }
                        // SAFETY: a fresh block of `size` bytes.
                        unsafe { fill(p, size) };
                        mine.push((p, size, raw));
                    }
                    for (p, size, raw) in mine {
                        LIVE.lock().unwrap().retain(|&(a, _)| a != p as usize);
                        // SAFETY: as above.
                        unsafe {
                            check(p, size);
                            if raw {
                                slabpool::raw::free(p);
                            } else {
                                dealloc(p, Layout::from_size_align(size, 16).unwrap());
                            }
                        }
                    }
                });
            }
        });
        let s = slabpool::guard_stats();
        assert!(s.guarded - before > 4000, "{s:?}");
        assert_eq!(s.live, 0, "{s:?}");
        println!("guarded {}", s.guarded - before);
    }

    /// Without the variable nothing is guarded, and the pool maps nothing.
    fn nothing_guarded() {
        // SAFETY: live blocks of the stated sizes, freed once.
        unsafe {
            for size in [8, 40, 700, 5000, 40_000, 300_000] {
                let p = slabpool::raw::alloc(size, 16);
                let l = Layout::from_size_align(size, 16).unwrap();
                let q = alloc(l);
                assert!(!p.is_null() && !q.is_null());
                if size == 700 {
                    assert_eq!(slabpool::raw::usable_size(p), 768, "a class block");
                }
                assert!(!matches!(
                    slabpool::raw::find(p),
                    Ok(slabpool::raw::Found::Guarded(_))
                ));
                slabpool::raw::free(p);
                dealloc(q, l);
            }
        }
        let s = slabpool::guard_stats();
        if std::env::var_os("SLABPOOL_GUARD_SAMPLE").is_none() && s.sample != 0 {
            // A `hardened` build samples by default.
            println!("sampling by default: 1 in {}", s.sample);
            return;
        }
        assert_eq!(
            s,
            slabpool::GuardStats::default(),
            "no sampling, no chunk, no guarded block"
        );
    }

    // ---- the parent ------------------------------------------------------------

    fn run(case: &str, sample: Option<&str>) -> Output {
        let mut cmd = super::common::self_command();
        cmd.env("GUARD_CASE", case);
        match sample {
            Some(n) => cmd.env("SLABPOOL_GUARD_SAMPLE", n),
            None => cmd.env_remove("SLABPOOL_GUARD_SAMPLE"),
        };
        cmd.output().unwrap()
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    fn pointer(case: &str, out: &Output) -> String {
        text(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("pointer ").map(str::to_string))
            .unwrap_or_else(|| panic!("{case}: no pointer printed: {}", text(&out.stderr)))
    }

    /// Runs `case` guarded and checks it died of `signal` with a line of
    /// stderr containing `expect` (where `{p}` is the pointer it printed).
    fn expect_death(case: &str, signal: i32, expect: &str) {
        let out = run(case, Some("1"));
        let p = pointer(case, &out);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(signal),
            "{case}: {}\n{stderr}",
            out.status
        );
        let want = expect.replace("{p}", &p);
        assert!(
            stderr.lines().any(|l| l.contains(&want)),
            "{case}: stderr lacks {want:?}:\n{stderr}"
        );
        println!("{case}: ok");
    }

    fn expect_success(case: &str, sample: Option<&str>) -> Output {
        let out = run(case, sample);
        assert!(
            out.status.success(),
            "{case}: {}\n{}\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        println!("{case}: ok");
        out
    }

    pub fn main() {
        if let Ok(case) = std::env::var("GUARD_CASE") {
            child(&case);
            return;
        }
        use libc::{SIGABRT, SIGSEGV};
        expect_death(
            "overflow-large",
            SIGSEGV,
            "overflow past guarded block {p} of 40000 bytes (offset 40000)",
        );
        expect_death(
            "overflow-raw",
            SIGSEGV,
            "overflow past guarded block {p} of 40 bytes (offset 48)",
        );
        expect_death(
            "underflow",
            SIGSEGV,
            "underflow before guarded block {p} of 40000 bytes (offset -",
        );
        expect_death(
            "uaf-read",
            SIGSEGV,
            "use after free of guarded block {p} of 40000 bytes (offset 8, freed ",
        );
        expect_death(
            "uaf-write",
            SIGSEGV,
            "use after free of guarded block {p} of 100 bytes (offset 8, freed ",
        );
        expect_death(
            "double-free-dealloc",
            SIGABRT,
            "slabpool: dealloc({p}): double free (a guarded block, already freed); aborting",
        );
        expect_death(
            "double-free-raw",
            SIGABRT,
            "slabpool: free({p}): double free (a guarded block, already freed); aborting",
        );
        expect_death(
            "interior-free",
            SIGABRT,
            "slabpool: free({p}): pointer inside a block, not at its start; aborting",
        );
        expect_success("realloc-usable", Some("1"));

        let out = run("handler", Some("1"));
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(42),
            "handler: {}\n{stderr}",
            out.status
        );
        assert!(text(&out.stdout).contains("own fault handled"), "{stderr}");
        let p = pointer("handler", &out);
        let want = format!("overflow past guarded block {p} of 40000 bytes");
        assert!(
            stderr.contains(&want),
            "handler: stderr lacks {want:?}:\n{stderr}"
        );
        println!("handler: ok");

        expect_success("threads", Some("1"));
        expect_success("unset", None);
        // Set to 0: off as well.
        expect_success("unset", Some("0"));
    }
}

//! Unit tests of `os`.

use super::*;

#[test]
fn reserve_is_aligned_zeroed_and_releasable() {
    for align in [PAGE, 64 * 1024, 4 << 20, 32 << 20] {
        let size = 3 * page_size();
        let p = reserve(size, align).expect("reserve");
        assert_eq!(p.as_ptr() as usize % align, 0);
        // SAFETY: the reservation is ours and `size` bytes long.
        unsafe {
            assert!(
                core::slice::from_raw_parts(p.as_ptr(), size)
                    .iter()
                    .all(|&b| b == 0)
            );
            p.as_ptr().write_bytes(0xAB, size);
            assert!(decommit(p.as_ptr(), size));
            assert_eq!(*p.as_ptr(), 0, "decommitted pages read as zero");
            release(p.as_ptr(), size);
        }
    }
}

/// Mapped bytes of the mapping holding `p`, and whether it is writable
/// (from /proc/self/maps).
fn mapping_of(p: usize) -> Option<(usize, bool)> {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    maps.lines().find_map(|line| {
        let (range, rest) = line.split_once(' ')?;
        let (a, b) = range.split_once('-')?;
        let (a, b) = (
            usize::from_str_radix(a, 16).ok()?,
            usize::from_str_radix(b, 16).ok()?,
        );
        (a <= p && p < b).then(|| (b - a, rest.as_bytes()[1] == b'w'))
    })
}

#[test]
fn placed_reservations_map_only_what_is_asked() {
    // Alignments far beyond the size: the padding is address space for
    // a moment, then trimmed; only `size` bytes stay, read-write.
    for (align, offset) in [(1 << 34, 0), (1 << 34, 4 << 20), (1 << 36, page_size())] {
        let size = 8 * PAGE;
        let p = reserve_placed(size, align, offset).expect("reserve");
        let a = p.as_ptr() as usize;
        assert_eq!((a + offset) % align, 0, "placement");
        // Neighbouring mappings may merge with ours in the kernel's
        // view; at least nothing larger than the padding stays.
        let (len, writable) = mapping_of(a).expect("mapped");
        assert!(writable);
        assert!(len < align, "{len:#x} bytes mapped around the block");
        // SAFETY: the reservation is ours and `size` bytes long.
        unsafe {
            p.as_ptr().add(size - 1).write(1);
            release(p.as_ptr(), size);
        }
    }
}

#[test]
fn address_reservations_are_inaccessible_until_replaced() {
    let to = reserve_address(64 * PAGE, 64 * PAGE).expect("address");
    assert_eq!(to.as_ptr() as usize % (64 * PAGE), 0);
    assert_eq!(mapping_of(to.as_ptr() as usize).map(|m| m.1), Some(false));
    let p = reserve(PAGE, PAGE).expect("reserve");
    // SAFETY: each pointer is a live mapping of the stated size.
    unsafe {
        *p.as_ptr() = 5;
        let q = remap(p.as_ptr(), PAGE, 64 * PAGE, Some(to.as_ptr())).expect("remap");
        assert_eq!((q, *q.as_ptr()), (to, 5));
        *q.as_ptr().add(63 * PAGE) = 6;
        release(q.as_ptr(), 64 * PAGE);
    }
}

#[test]
fn remap_keeps_contents() {
    let p = reserve(PAGE, PAGE).expect("reserve");
    let to = reserve(64 * PAGE, 64 * PAGE).expect("target");
    // SAFETY: each pointer is a live mapping of the stated size.
    unsafe {
        *p.as_ptr() = 7;
        let q = remap(p.as_ptr(), PAGE, 64 * PAGE, Some(to.as_ptr())).expect("remap");
        assert_eq!(q, to);
        assert_eq!(*q.as_ptr(), 7);
        assert_eq!(*q.as_ptr().add(63 * PAGE), 0);
        release(q.as_ptr(), 64 * PAGE);
    }
}

#[test]
fn clock_moves_forward() {
    let a = now_ms();
    std::thread::sleep(std::time::Duration::from_millis(30));
    let b = now_ms();
    assert!(reached(b, a) && b.wrapping_sub(a) >= 20, "{a} -> {b}");
    assert!(!reached(a, b));
    assert!(reached(5, u32::MAX - 5), "wrap-around");
    assert!(!reached(u32::MAX - 5, 5), "5 ms ahead across the wrap");
    assert!(!reached(a, a.wrapping_add(1 << 30)), "12 days ahead");
    for now in [1, 1 << 31, 3 << 30, u32::MAX] {
        assert!(reached(now, 0), "a deadline never set, at {now}");
        assert!(reached(now, now.wrapping_add((1 << 30) + 1)), "stale");
    }
}

/// The OS pages the page arithmetic is checked with: 4, 16 and 64 KiB.
const OS_PAGES: [usize; 3] = [4 << 10, 16 << 10, 64 << 10];

#[test]
fn the_os_page_is_read_once_and_is_a_page_multiple() {
    let page = page_size();
    assert!(page.is_power_of_two() && page >= PAGE);
    // SAFETY: sysconf has no memory-safety preconditions.
    let sysconf = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    assert_eq!(page, sysconf.max(PAGE));
    assert_eq!(init_page_size(), page);
    assert_eq!(page_size(), page);
    // Under qemu-user with a page size set (the aarch64 runs of CI, which
    // pass the variable on to the guest): the guest's page is that one.
    if let Some(emulated) = std::env::var("QEMU_PAGESIZE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        assert_eq!(page, emulated, "QEMU_PAGESIZE");
    }
    println!("OS page: {page} bytes");
    assert_eq!(align_up(4097, PAGE), 2 * PAGE);
}

#[test]
fn whole_pages_round_the_start_up_and_the_end_down() {
    for page in OS_PAGES {
        let base = 1 << 30;
        // Aligned at both ends: unchanged.
        assert_eq!(
            whole_pages(base, base + 3 * page, page),
            (base, base + 3 * page)
        );
        // A 4 KiB page inside an OS page at each end: those OS pages stay.
        let (a, b) = whole_pages(base + PAGE, base + 3 * page - PAGE, page);
        if page == PAGE {
            assert_eq!((a, b), (base + PAGE, base + 3 * page - PAGE));
        } else {
            assert_eq!((a, b), (base + page, base + 2 * page));
        }
        // Less than an OS page, or one straddling a boundary: nothing.
        let (a, b) = whole_pages(base + page - PAGE, base + page + PAGE, page);
        assert_eq!(a >= b, page > PAGE, "{page}");
        for (start, end) in [
            (base + 12345, base + 7 * page + 999),
            (base, base + page - 1),
        ] {
            let (a, b) = whole_pages(start, end, page);
            assert!(a % page == 0 && b % page == 0 && a >= start && b <= end || a >= b);
            assert!(a - start < page && end - b < page);
        }
    }
}

#[test]
fn reservations_are_whole_os_pages() {
    let page = page_size();
    // A 4 KiB request maps a whole OS page, which is released whole.
    let p = reserve(PAGE, PAGE).expect("reserve");
    assert_eq!(p.as_ptr() as usize % page, 0);
    // SAFETY: the reservation is ours; its last byte is in its OS page.
    unsafe {
        p.as_ptr().add(page - 1).write(1);
        release(p.as_ptr(), PAGE);
    }
}

/// Which OS pages of `[p, p + pages * page_size())` are in RAM (the
/// vector has room for a byte per 4 KiB, what an emulator with 4 KiB host
/// pages writes; its bytes are per OS page only on a real kernel).
pub(crate) fn resident(p: *mut u8, pages: usize) -> std::vec::Vec<bool> {
    let mut v = std::vec![0u8; pages * page_size() / PAGE];
    // SAFETY: whole OS pages of a mapping of the test's; `v` has a byte per page.
    let rc = unsafe { libc::mincore(p.cast(), pages * page_size(), v.as_mut_ptr()) };
    assert_eq!(rc, 0);
    v.iter().take(pages).map(|b| b & 1 != 0).collect()
}

#[test]
fn clear_zeroes_every_byte_and_faults_in_no_untouched_page() {
    let page = page_size();
    // More pages than one `mincore` batch, so the batches' seams are crossed.
    let pages = CLEAR_BATCH + 40;
    let p = reserve(pages * page, PAGE).expect("reserve").as_ptr();
    // Touched: the first 3 pages, a run across the batch seam, every
    // seventh page after it; the rest never touched.
    let touched = |i: usize| {
        i < 3
            || (CLEAR_BATCH - 2..CLEAR_BATCH + 3).contains(&i)
            || (i > CLEAR_BATCH + 3 && i % 7 == 0)
    };
    for i in (0..pages).filter(|&i| touched(i)) {
        // SAFETY: a page of the reservation.
        unsafe { p.add(i * page).write_bytes(0xA5, page) };
    }
    // Cleared from mid-page to mid-page: the partial pages are written.
    let (from, to) = (100, pages * page - 100);
    // SAFETY: inside the reservation, which nobody else uses.
    unsafe { clear(p.add(from), to - from) };
    // SAFETY: the reservation is readable; reading faults in zero pages
    // only after `resident` looked.
    let after = resident(p, pages);
    // With OS pages above 4 KiB the test may run under an emulator, whose
    // answer is per 4 KiB page of its host: residency is checked with 4 KiB
    // pages only, the contents with every page.
    let by_os_page = page_size() == PAGE;
    for (i, &in_ram) in after.iter().enumerate().filter(|_| by_os_page) {
        // The last page is partly in the range: written.
        let written = touched(i) || i == pages - 1;
        assert_eq!(in_ram, written, "page {i} resident after clear");
    }
    // SAFETY: as above.
    let bytes = unsafe { core::slice::from_raw_parts(p, pages * page) };
    assert!(
        bytes[..from].iter().all(|&b| b == 0xA5),
        "bytes before the range kept"
    );
    assert!(
        bytes[from..to].iter().all(|&b| b == 0),
        "the range reads as zero"
    );
    assert!(
        bytes[to..].iter().all(|&b| b == 0),
        "the last page was never touched"
    );
    // SAFETY: the whole reservation, no longer used.
    unsafe { release(p, pages * page) };
}

#[test]
fn cpu_count_is_the_affinity_mask() {
    let size = core::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the call writes
    // `size` bytes into it; CPU_COUNT reads it.
    let (set, allowed) = unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        assert_eq!(libc::sched_getaffinity(0, size, &mut set), 0);
        (set, libc::CPU_COUNT(&set) as usize)
    };
    assert_eq!(cpu_count(), allowed);
    // A thread confined to one CPU counts one (the mask is the calling
    // thread's: the test's own thread only).
    std::thread::spawn(move || {
        // SAFETY: as above; CPU_ISSET reads the set, and the new mask is
        // the spawned thread's own.
        unsafe {
            let cpu = (0..libc::CPU_SETSIZE as usize)
                .find(|&c| libc::CPU_ISSET(c, &set))
                .unwrap();
            let mut one: libc::cpu_set_t = core::mem::zeroed();
            libc::CPU_SET(cpu, &mut one);
            assert_eq!(libc::sched_setaffinity(0, size, &one), 0);
        }
        assert_eq!(cpu_count(), 1);
    })
    .join()
    .unwrap();
}

#[test]
fn the_vdso_clock_is_the_c_library_clock() {
    let ns = |ts: libc::timespec| ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128;
    let read = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid out-pointer.
        assert_eq!(unsafe { libc::clock_gettime(clock, &mut ts) }, 0);
        ns(ts)
    };
    // The process has a vDSO here (not under qemu-user): the function is
    // found in it.
    // SAFETY: getauxval has no preconditions.
    if unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } != 0 {
        assert!(
            vdso::find().is_some(),
            "clock_gettime not found in the vDSO"
        );
    }
    for clock in [libc::CLOCK_MONOTONIC, libc::CLOCK_REALTIME] {
        let before = read(clock);
        let got = ns(vdso::clock_gettime(clock));
        let after = read(clock);
        assert!(
            before <= got && got <= after,
            "{before} <= {got} <= {after}"
        );
    }
    // The coarse clock may lag the fine one by a tick (a few ms).
    let coarse = ns(vdso::clock_gettime(libc::CLOCK_MONOTONIC_COARSE));
    let fine = read(libc::CLOCK_MONOTONIC);
    assert!(
        coarse <= fine && fine - coarse < 100_000_000,
        "{coarse} vs {fine}"
    );
}

#[test]
fn populate_writes_the_pages_in_and_keeps_what_they_hold() {
    let page = page_size();
    let pages = 16;
    let p = reserve(pages * page, PAGE).expect("reserve").as_ptr();
    // SAFETY: inside the reservation.
    unsafe { p.add(3 * page + 5).write(0x5a) };
    if !emulated() {
        assert_eq!(resident(p, pages).iter().filter(|&&r| r).count(), 1);
    }
    // SAFETY: the test's own read-write mapping.
    let done = unsafe { populate(p.add(PAGE / 2), pages * page - PAGE) };
    if !done {
        println!("no MADV_POPULATE_WRITE on this kernel");
    } else if emulated() {
        // qemu-user (7.2) answers an madvise it does not pass through
        // with success and does nothing.
        println!("populate: residency not checked under an emulator");
    } else {
        // Whole OS pages only: the first and last partial ones are left.
        let got = resident(p, pages);
        let expect: Vec<bool> = (0..pages)
            .map(|i| i == 3 || (1..pages - 1).contains(&i))
            .collect();
        assert_eq!(got, expect);
    }
    // SAFETY: as above.
    unsafe {
        assert_eq!(p.add(3 * page + 5).read(), 0x5a, "data kept");
        assert!((0..pages * page).all(|i| i == 3 * page + 5 || p.add(i).read() == 0));
        release(p, pages * page);
    }
}

/// Whether the tests run under an emulator (the aarch64 runs of CI under
/// qemu-user), where `madvise` advice other than `MADV_DONTNEED` is
/// accepted and ignored.
pub(crate) fn emulated() -> bool {
    std::env::var_os("SLABPOOL_TEST_RUNNER").is_some()
        || std::env::var_os("QEMU_PAGESIZE").is_some()
}

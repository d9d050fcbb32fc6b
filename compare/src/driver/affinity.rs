//! Pinned runs: which CPU they use (the first in the driver's own affinity
//! mask, so it is one the driver may use) and how a child gets pinned to it.
//!
//! A child inherits the CPU mask of the thread that spawns it, so the
//! driver pins its own (measuring) thread to that CPU for the moment of the
//! spawn and restores its mask as soon as the child exists. The child and
//! every thread it starts then run on that one CPU, and it is spawned the
//! same way as an unpinned run. (A `pre_exec` hook calling
//! `sched_setaffinity` in the child would work too, but it makes std fork
//! the driver instead of using posix_spawn, a different start-up cost in a
//! wall time that is compared with the unpinned runs'.)

use std::io;

/// The CPUs in this thread's affinity mask.
pub fn allowed() -> io::Result<Vec<usize>> {
    let set = get()?;
    // SAFETY: CPU_ISSET only reads the set's bits; every index is below
    // CPU_SETSIZE.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// The CPU pinned runs use: the first this thread may run on.
pub fn first_cpu() -> Option<usize> {
    allowed().ok()?.first().copied()
}

/// While alive, the calling thread is pinned to one CPU; dropping it
/// restores the mask the thread had before.
pub struct Pinned {
    saved: libc::cpu_set_t,
}

/// Pins the calling thread to `cpu` until the returned guard is dropped.
pub fn pin_this_thread(cpu: usize) -> io::Result<Pinned> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is out of range"),
        ));
    }
    let saved = get()?;
    // SAFETY: cpu_set_t is a plain bit array; all zero is the empty set.
    let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit of `one`; `cpu` was checked against
    // CPU_SETSIZE above.
    unsafe { libc::CPU_SET(cpu, &mut one) };
    set(&one)?;
    Ok(Pinned { saved })
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Err(e) = set(&self.saved) {
            eprintln!("slabpool-compare: cannot restore the driver's CPU mask: {e}");
        }
    }
}

fn get() -> io::Result<libc::cpu_set_t> {
    // SAFETY: as above, all zero is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; `set` is valid for writes of
    // the size passed.
    let r = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if r == 0 {
        Ok(set)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set(set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: pid 0 is the calling thread; `set` is valid for reads of the
    // size passed.
    let r = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), set) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn child_cpus() -> String {
        let out = Command::new("grep")
            .args(["Cpus_allowed_list", "/proc/self/status"])
            .output()
            .expect("grep runs");
        String::from_utf8_lossy(&out.stdout)
            .split(':')
            .nth(1)
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    #[test]
    fn a_child_spawned_while_pinned_stays_pinned_and_the_mask_comes_back() {
        let before = allowed().unwrap();
        let cpu = first_cpu().unwrap();
        assert_eq!(cpu, before[0]);
        {
            let _pinned = pin_this_thread(cpu).unwrap();
            assert_eq!(allowed().unwrap(), [cpu]);
            assert_eq!(child_cpus(), cpu.to_string());
        }
        assert_eq!(allowed().unwrap(), before);
        assert!(pin_this_thread(libc::CPU_SETSIZE as usize).is_err());
    }
}

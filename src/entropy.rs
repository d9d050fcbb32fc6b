//! Secrets from the kernel: random words for the per-process keys of the
//! hardening (the free-list link key in `block`, and the hardened build's
//! canary key beside it).
//!
//! `getrandom(2)` without blocking; if it fails (a kernel older than 3.17,
//! a seccomp filter), the 16 random bytes the kernel gives every process at
//! exec (`AT_RANDOM`) mixed with the clock and addresses chosen by ASLR.
//! Nothing here allocates.

/// A random word. Under loom a fixed one: models need no secrets.
#[cfg(not(loom))]
pub fn random_word() -> u64 {
    let mut word = 0u64;
    // SAFETY: writes at most 8 bytes into `word`.
    let got = unsafe {
        libc::getrandom(
            (&raw mut word).cast(),
            size_of::<u64>(),
            libc::GRND_NONBLOCK,
        )
    };
    if got == size_of::<u64>() as isize {
        return word;
    }
    fallback()
}

#[cfg(loom)]
pub fn random_word() -> u64 {
    0x9e37_79b9_7f4a_7c15
}

/// `AT_RANDOM`'s second half (glibc takes the first for the stack guard),
/// the clock and two ASLR'd addresses, mixed.
#[cfg(not(loom))]
fn fallback() -> u64 {
    // SAFETY: getauxval has no preconditions; AT_RANDOM, when present,
    // points to 16 readable bytes for the life of the process.
    let auxv = unsafe { libc::getauxval(libc::AT_RANDOM) } as *const u64;
    let at_random = if auxv.is_null() {
        0
    } else {
        // SAFETY: as above: 16 readable bytes, the second word among them.
        unsafe { auxv.add(1).read_unaligned() }
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let stack = &raw const ts as u64;
    let code = fallback as fn() -> u64 as usize as u64;
    mix(at_random ^ mix(ts.tv_nsec as u64 ^ (ts.tv_sec as u64) << 32) ^ mix(stack) ^ code)
}

/// splitmix64's finaliser: every input bit affects every output bit.
#[cfg(not(loom))]
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(all(test, not(loom)))]
mod tests;

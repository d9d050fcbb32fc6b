//! Settings: defaults, and the environment variables that override them,
//! read once at initialisation with `getenv` (no allocation).
//!
//! | variable | meaning |
//! | --- | --- |
//! | `SLABPOOL_PURGE_DELAY_MS` | how long free pages stay resident before they are decommitted (default 20) |
//! | `SLABPOOL_SHOW_STATS=1` | print the statistics table to stderr at exit |
//! | `SLABPOOL_VERBOSE=1` | report OS failures and warnings on stderr |
//! | `SLABPOOL_PROF=1` | start the heap profiler (`prof` feature) at start-up |
//! | `SLABPOOL_PROF_SAMPLE` | the heap profiler's mean sampling interval in bytes (default 524288) |
//! | `SLABPOOL_PROF_DUMP` | write the heap profile (pprof) there at exit, and the peak profile to that path plus `.peak` |
//! | `SLABPOOL_GUARD_SAMPLE` | guard about one allocation in N (see `guard`); 0 turns it off (default off, [`HARDENED_GUARD_SAMPLE`] with the `hardened` feature) |
//!
//! Every setting is a relaxed atomic: a stale read only shifts a purge by
//! one delay.

use crate::sync::Ordering::Relaxed;
use crate::sync::unmodeled::{AtomicBool, AtomicU32};

/// Default delay before free pages are decommitted, in milliseconds.
pub const DEFAULT_PURGE_DELAY_MS: u32 = 20;

static PURGE_DELAY_MS: AtomicU32 = AtomicU32::new(DEFAULT_PURGE_DELAY_MS);

/// Guard sampling period of the `hardened` build: one guarded allocation
/// in about this many (see README: the rate measured to cost about 1%).
pub const HARDENED_GUARD_SAMPLE: u32 = 10_000;
/// Guard sampling period by default: off, but in the `hardened` build.
pub const DEFAULT_GUARD_SAMPLE: u32 = if cfg!(feature = "hardened") {
    HARDENED_GUARD_SAMPLE
} else {
    0
};
static GUARD_SAMPLE: AtomicU32 = AtomicU32::new(DEFAULT_GUARD_SAMPLE);
#[cfg(not(loom))]
static SHOW_STATS: AtomicBool = AtomicBool::new(false);
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Reads the environment. Called once, by the first thread to initialise.
#[cfg(not(loom))]
pub fn init_from_env() {
    if let Some(ms) = env_u32(c"SLABPOOL_PURGE_DELAY_MS") {
        PURGE_DELAY_MS.store(ms, Relaxed);
    }
    SHOW_STATS.store(
        env_u32(c"SLABPOOL_SHOW_STATS").is_some_and(|v| v != 0),
        Relaxed,
    );
    VERBOSE.store(
        env_u32(c"SLABPOOL_VERBOSE").is_some_and(|v| v != 0),
        Relaxed,
    );
    if let Some(n) = env_u32(c"SLABPOOL_GUARD_SAMPLE") {
        GUARD_SAMPLE.store(n, Relaxed);
    }
    #[cfg(feature = "prof")]
    crate::prof::configure(
        env_u32(c"SLABPOOL_PROF").is_some_and(|v| v != 0),
        env_u32(c"SLABPOOL_PROF_SAMPLE"),
        env_bytes(c"SLABPOOL_PROF_DUMP"),
    );
}

/// The bytes of environment variable `name`, if set; valid while the
/// environment is not modified (read at once).
#[cfg(all(feature = "prof", not(loom)))]
fn env_bytes(name: &core::ffi::CStr) -> Option<&'static [u8]> {
    // SAFETY: as in `env_u32`.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: a non-null getenv result is a NUL-terminated string.
    Some(unsafe { core::ffi::CStr::from_ptr(value) }.to_bytes())
}

/// One guarded allocation in about this many (0: none).
#[inline]
pub fn guard_sample() -> u32 {
    GUARD_SAMPLE.load(Relaxed)
}

/// Milliseconds free pages stay resident before they are decommitted.
#[inline]
pub fn purge_delay_ms() -> u32 {
    PURGE_DELAY_MS.load(Relaxed)
}

#[cfg(not(loom))]
pub fn show_stats() -> bool {
    SHOW_STATS.load(Relaxed)
}

pub fn verbose() -> bool {
    VERBOSE.load(Relaxed)
}

/// The decimal value of environment variable `name`, if set and numeric.
#[cfg(not(loom))]
fn env_u32(name: &core::ffi::CStr) -> Option<u32> {
    // SAFETY: `name` is NUL-terminated; getenv returns null or a pointer to
    // a NUL-terminated string that stays valid while the environment is not
    // modified (we read it at once).
    let value = unsafe { libc::getenv(name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: a non-null getenv result is a NUL-terminated string.
    parse_u32(unsafe { core::ffi::CStr::from_ptr(value) }.to_bytes())
}

/// Parses a decimal `u32` (surrounding spaces allowed); `None` otherwise.
#[cfg(not(loom))]
fn parse_u32(text: &[u8]) -> Option<u32> {
    let text = text.trim_ascii();
    if text.is_empty() {
        return None;
    }
    let mut n: u32 = 0;
    for &c in text {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u32::from(c - b'0'))?;
    }
    Some(n)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_settings() {
        assert_eq!(parse_u32(b"20"), Some(20));
        assert_eq!(parse_u32(b" 0 "), Some(0));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"1x"), None);
        assert_eq!(parse_u32(b"-1"), None);
    }
}

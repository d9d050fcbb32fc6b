//! Settings: the built-in defaults, the [`Config`] a program gives in code
//! (`SlabPool::with`), and the environment variables that override both;
//! applied once, at the process's first allocation (no allocation: the
//! variables are read with `getenv`), and kept in relaxed atomics that the
//! other modules read.
//!
//! Precedence, lowest first (as jemalloc's `malloc_conf`): built-in
//! defaults < configuration in code < environment. A configuration with
//! [`Config::ignore_environment`] is not overridden by the environment.
//!
//! | setting | in code ([`Config`]) | environment | default |
//! | --- | --- | --- | --- |
//! | how long free pages stay resident before they are decommitted, in ms | [`purge_delay_ms`](Config::purge_delay_ms) | `SLABPOOL_PURGE_DELAY_MS=N` | 20 |
//! | print the statistics table to stderr at exit | [`show_stats`](Config::show_stats) | `SLABPOOL_SHOW_STATS=1` (0: off) | off |
//! | report OS failures and warnings on stderr | [`verbose`](Config::verbose) | `SLABPOOL_VERBOSE=1` (0: off) | off |
//! | guard about one allocation in N (sampled guarded allocations; 0: none) | [`guard_sample`](Config::guard_sample) | `SLABPOOL_GUARD_SAMPLE=N` | 0; 10,000 with the `hardened` feature |
//! | start the heap profiler at start-up (`prof` feature) | [`prof::activate`](crate::prof::activate) at run time | `SLABPOOL_PROF=1` | off |
//! | the heap profiler's mean sampling interval, in bytes | [`prof::set_sample_interval`](crate::prof::set_sample_interval) | `SLABPOOL_PROF_SAMPLE=N` | 524,288 |
//! | write the heap profile (pprof) there at exit, the peak profile to that path plus `.peak` | [`prof::dump`](crate::prof::dump) at run time | `SLABPOOL_PROF_DUMP=path` | none |
//! | let the environment override the settings above | [`ignore_environment`](Config::ignore_environment) | — | the environment applies |
//!
//! A variable that is set but not a decimal number is ignored. Every
//! setting is a relaxed atomic: a stale read only shifts a purge by one
//! delay.
//!
//! On targets without the native port the configuration is accepted and
//! has no effect (the system allocator has nothing to tune).

/// Default delay before free pages are decommitted, in milliseconds.
pub const DEFAULT_PURGE_DELAY_MS: u32 = 20;

/// Guard sampling period of the `hardened` build: one guarded allocation
/// in about this many (see README: the rate measured to cost about 1%).
pub const HARDENED_GUARD_SAMPLE: u32 = 10_000;
/// Guard sampling period by default: off, but in the `hardened` build.
pub const DEFAULT_GUARD_SAMPLE: u32 = if cfg!(feature = "hardened") {
    HARDENED_GUARD_SAMPLE
} else {
    0
};

/// Settings given in code, for [`SlabPool::with`](crate::SlabPool::with):
/// a `const` builder, so it can initialise the global allocator's static.
///
/// ```
/// use slabpool::{Config, SlabPool};
///
/// #[global_allocator]
/// static GLOBAL: SlabPool = SlabPool::with(
///     Config::new()
///         .purge_delay_ms(50) // keep free pages 50 ms before giving them back
///         .show_stats(false)
///         .ignore_environment(true), // SLABPOOL_* variables do not apply
/// );
///
/// fn main() {
///     let v = vec![0u8; 1 << 20];
///     assert_eq!(v.len(), 1 << 20);
/// }
/// ```
///
/// Every setting, its environment variable and its default are in the
/// table of the `config` module's documentation, also in the README
/// ("Configuration"). The environment overrides what is set here unless
/// [`ignore_environment`](Config::ignore_environment) is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Read only where the settings are applied (native port, outside loom).
#[cfg_attr(any(not(native), loom), allow(dead_code))]
pub struct Config {
    purge_delay_ms: u32,
    show_stats: bool,
    verbose: bool,
    guard_sample: u32,
    ignore_environment: bool,
}

impl Config {
    /// The built-in defaults; the environment applies.
    pub const fn new() -> Self {
        Config {
            purge_delay_ms: DEFAULT_PURGE_DELAY_MS,
            show_stats: false,
            verbose: false,
            guard_sample: DEFAULT_GUARD_SAMPLE,
            ignore_environment: false,
        }
    }

    /// How long free pages stay resident before they are decommitted, in
    /// milliseconds (`SLABPOOL_PURGE_DELAY_MS`; default 20).
    pub const fn purge_delay_ms(mut self, ms: u32) -> Self {
        self.purge_delay_ms = ms;
        self
    }

    /// Whether to print the statistics table to stderr at exit
    /// (`SLABPOOL_SHOW_STATS`; default off).
    pub const fn show_stats(mut self, on: bool) -> Self {
        self.show_stats = on;
        self
    }

    /// Whether to report OS failures and warnings on stderr
    /// (`SLABPOOL_VERBOSE`; default off).
    pub const fn verbose(mut self, on: bool) -> Self {
        self.verbose = on;
        self
    }

    /// Guard about one allocation in `n` (sampled guarded allocations, which
    /// catch overflows and uses after free; 0 turns it off)
    /// (`SLABPOOL_GUARD_SAMPLE`; default off, 10,000 with the `hardened`
    /// feature).
    pub const fn guard_sample(mut self, n: u32) -> Self {
        self.guard_sample = n;
        self
    }

    /// With `true`, the `SLABPOOL_*` environment variables are not read:
    /// the settings are this configuration's, for programs that must not be
    /// tuned from outside.
    pub const fn ignore_environment(mut self, ignore: bool) -> Self {
        self.ignore_environment = ignore;
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

#[cfg(native)]
pub use applied::*;

/// The settings in force (native port only).
#[cfg(native)]
mod applied {
    #[cfg(not(loom))]
    use super::Config;
    use super::{DEFAULT_GUARD_SAMPLE, DEFAULT_PURGE_DELAY_MS};
    use crate::sync::Ordering::Relaxed;
    use crate::sync::unmodeled::{AtomicBool, AtomicU32};

    static PURGE_DELAY_MS: AtomicU32 = AtomicU32::new(DEFAULT_PURGE_DELAY_MS);
    static GUARD_SAMPLE: AtomicU32 = AtomicU32::new(DEFAULT_GUARD_SAMPLE);
    #[cfg(not(loom))]
    static SHOW_STATS: AtomicBool = AtomicBool::new(false);
    static VERBOSE: AtomicBool = AtomicBool::new(false);

    /// Applies `config`, then the environment over it (unless `config`
    /// ignores the environment). Called once, by the first thread to
    /// initialise, from the process's first allocation.
    #[cfg(not(loom))]
    pub fn init(config: &Config) {
        PURGE_DELAY_MS.store(config.purge_delay_ms, Relaxed);
        SHOW_STATS.store(config.show_stats, Relaxed);
        VERBOSE.store(config.verbose, Relaxed);
        GUARD_SAMPLE.store(config.guard_sample, Relaxed);
        if config.ignore_environment {
            return;
        }
        if let Some(ms) = env_u32(c"SLABPOOL_PURGE_DELAY_MS") {
            PURGE_DELAY_MS.store(ms, Relaxed);
        }
        if let Some(v) = env_u32(c"SLABPOOL_SHOW_STATS") {
            SHOW_STATS.store(v != 0, Relaxed);
        }
        if let Some(v) = env_u32(c"SLABPOOL_VERBOSE") {
            VERBOSE.store(v != 0, Relaxed);
        }
        if let Some(n) = env_u32(c"SLABPOOL_GUARD_SAMPLE") {
            GUARD_SAMPLE.store(n, Relaxed);
        }
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

    /// Whether to print the statistics at exit.
    #[cfg(not(loom))]
    pub fn show_stats() -> bool {
        SHOW_STATS.load(Relaxed)
    }

    /// Whether to report OS failures and warnings.
    pub fn verbose() -> bool {
        VERBOSE.load(Relaxed)
    }

    /// Whether the environment applies over `config` (it does unless
    /// [`Config::ignore_environment`] is set): for settings read elsewhere
    /// (the heap profiler's).
    #[cfg(all(feature = "prof", not(loom)))]
    pub fn environment_applies(config: &Config) -> bool {
        !config.ignore_environment
    }

    /// The bytes of environment variable `name`, if set; valid while the
    /// environment is not modified (read at once).
    #[cfg(all(feature = "prof", not(loom)))]
    pub fn env_bytes(name: &core::ffi::CStr) -> Option<&'static [u8]> {
        // SAFETY: as in `env_u32`.
        let value = unsafe { libc::getenv(name.as_ptr()) };
        if value.is_null() {
            return None;
        }
        // SAFETY: a non-null getenv result is a NUL-terminated string.
        Some(unsafe { core::ffi::CStr::from_ptr(value) }.to_bytes())
    }

    /// The decimal value of environment variable `name`, if set and numeric.
    #[cfg(not(loom))]
    pub fn env_u32(name: &core::ffi::CStr) -> Option<u32> {
        // SAFETY: `name` is NUL-terminated; getenv returns null or a pointer
        // to a NUL-terminated string that stays valid while the environment
        // is not modified (we read it at once).
        let value = unsafe { libc::getenv(name.as_ptr()) };
        if value.is_null() {
            return None;
        }
        // SAFETY: a non-null getenv result is a NUL-terminated string.
        parse_u32(unsafe { core::ffi::CStr::from_ptr(value) }.to_bytes())
    }

    /// Parses a decimal `u32` (surrounding spaces allowed); `None`
    /// otherwise.
    #[cfg(not(loom))]
    pub(super) fn parse_u32(text: &[u8]) -> Option<u32> {
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
}

#[cfg(all(test, native, not(loom)))]
mod tests {
    use super::applied::parse_u32;
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

    #[test]
    fn the_builder_sets_each_setting_and_nothing_else() {
        let d = Config::new();
        assert_eq!(d, Config::default());
        assert_eq!(d.purge_delay_ms, DEFAULT_PURGE_DELAY_MS);
        assert_eq!(d.guard_sample, DEFAULT_GUARD_SAMPLE);
        assert!(!d.show_stats && !d.verbose && !d.ignore_environment);
        const C: Config = Config::new()
            .purge_delay_ms(50)
            .show_stats(true)
            .verbose(true)
            .guard_sample(3)
            .ignore_environment(true);
        assert_eq!(
            C,
            Config {
                purge_delay_ms: 50,
                show_stats: true,
                verbose: true,
                guard_sample: 3,
                ignore_environment: true,
            }
        );
        let verbose = Config::new().verbose(true);
        assert!(verbose.verbose);
        assert_eq!(verbose.purge_delay_ms, d.purge_delay_ms);
        assert_eq!(verbose.guard_sample, d.guard_sample);
    }
}

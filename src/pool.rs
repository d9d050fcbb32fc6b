//! The public allocator type, [`SlabPool`]: the configuration it carries
//! ([`SlabPool::with`]) and the constant of the same name that keeps
//! `slabpool::SlabPool` usable as a value. Its `GlobalAlloc` is `global`'s
//! (native port), `hardened`'s (the `hardened` feature) or `fallback`'s
//! (other targets); the configuration is applied at the process's first
//! allocation, from the `&self` that allocation is given.

use crate::config::Config;

/// slabpool as a global allocator.
///
/// ```
/// #[global_allocator]
/// static GLOBAL: slabpool::SlabPool = slabpool::SlabPool;
/// # fn main() { assert_eq!(vec![1u8; 100].len(), 100); }
/// ```
///
/// or with settings given in code (see [`Config`]):
///
/// ```
/// use slabpool::{Config, SlabPool};
///
/// #[global_allocator]
/// static GLOBAL: SlabPool = SlabPool::with(Config::new().purge_delay_ms(50));
/// # fn main() { assert_eq!(vec![1u8; 100].len(), 100); }
/// ```
///
/// Only the first allocation of the process applies a configuration, so a
/// program has one `SlabPool` static: another value used beside it (or the
/// pointer API, `raw`, which uses the defaults) does not change the
/// settings once they are applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlabPool {
    config: Config,
}

impl SlabPool {
    /// The allocator with the built-in defaults (the environment still
    /// applies): the value the constant [`SlabPool`](const@SlabPool) holds.
    pub const DEFAULT: SlabPool = SlabPool::with(Config::new());

    /// The allocator with the settings of `config`.
    pub const fn with(config: Config) -> Self {
        SlabPool { config }
    }

    /// The settings this value was built with (before the environment).
    pub const fn config(&self) -> &Config {
        &self.config
    }
}

/// `slabpool::SlabPool` as a value: the allocator with the built-in
/// defaults, so `static GLOBAL: SlabPool = SlabPool;` reads as it did when
/// `SlabPool` was a unit struct.
#[allow(non_upper_case_globals)]
pub const SlabPool: SlabPool = SlabPool::DEFAULT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constant_is_the_default() {
        assert_eq!(SlabPool, SlabPool::default());
        assert_eq!(*SlabPool.config(), Config::new());
        let custom = SlabPool::with(Config::new().purge_delay_ms(7));
        assert_eq!(*custom.config(), Config::new().purge_delay_ms(7));
        assert_ne!(custom, SlabPool);
    }
}

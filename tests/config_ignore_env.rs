//! Configuration in code that ignores the environment:
//! with `Config::ignore_environment(true)` the `SLABPOOL_*` variables do
//! not override it. Runs itself as a child as `tests/config.rs` does.

mod common;

use common::{print_settings_if_child, settings_in_child};
use slabpool::{Config, SlabPool};

#[global_allocator]
static GLOBAL: SlabPool = SlabPool::with(
    Config::new()
        .guard_sample(3_333)
        .show_stats(true)
        .ignore_environment(true),
);

#[test]
fn child() {
    print_settings_if_child();
}

#[test]
fn ignore_environment_keeps_the_configuration_in_code() {
    let env = [
        ("SLABPOOL_GUARD_SAMPLE", "5"),
        ("SLABPOOL_SHOW_STATS", "0"),
        ("SLABPOOL_PURGE_DELAY_MS", "1"),
        ("SLABPOOL_VERBOSE", "1"),
    ];
    assert_eq!(settings_in_child("child", &env), (3_333, true));
    assert_eq!(settings_in_child("child", &[]), (3_333, true));
}

//! Configuration in code, precedence as jemalloc's:
//! built-in defaults < the `Config` given to `SlabPool::with` < the
//! environment. This binary's global allocator carries a configuration;
//! each test runs the binary again as a child with the environment it
//! needs (the settings are applied at the process's first allocation, so
//! the environment must be set before the child starts) and reads the
//! settings in force from what the child prints and whether it printed the
//! statistics at exit. (`tests/config_ignore_env.rs`: a configuration that
//! ignores the environment.)

mod common;

use common::{print_settings_if_child, settings_in_child};
use slabpool::{Config, SlabPool};

/// Neither is the default: guard sampling is off by default (every
/// 10,000th allocation with the `hardened` feature), statistics are not
/// printed.
#[global_allocator]
static GLOBAL: SlabPool = SlabPool::with(Config::new().guard_sample(7_777).show_stats(true));

#[test]
fn child() {
    print_settings_if_child();
}

#[test]
fn configuration_in_code_overrides_the_defaults() {
    assert_eq!(settings_in_child("child", &[]), (7_777, true));
}

#[test]
fn environment_overrides_configuration_in_code() {
    let env = [("SLABPOOL_GUARD_SAMPLE", "5"), ("SLABPOOL_SHOW_STATS", "0")];
    assert_eq!(settings_in_child("child", &env), (5, false));
}

#[test]
fn a_variable_that_is_not_a_number_leaves_the_configuration_in_code() {
    let env = [
        ("SLABPOOL_GUARD_SAMPLE", "often"),
        ("SLABPOOL_SHOW_STATS", ""),
    ];
    assert_eq!(settings_in_child("child", &env), (7_777, true));
}

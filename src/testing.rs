//! Test support, hidden from the documentation and from the API: what the
//! fuzz targets and their replay see of the internals (`fuzzing`, with
//! `cfg(fuzzing)` or the `invariants` feature) and what the loom models see
//! (`model`, under `cfg(loom)`). Production code never uses this module;
//! the one clock seam the harnesses share is `sync::clock`.

#[cfg(all(any(fuzzing, feature = "invariants"), not(loom)))]
pub mod fuzzing;
#[cfg(loom)]
pub mod model;

//! slabpool-compare's library: the workloads every allocator runs, and the
//! entry point of the workload binaries (`wl-<allocator>`).
//!
//! Each `wl-*` binary only sets its `#[global_allocator]` and calls
//! [`child_main`], so every allocator runs exactly the same code with the
//! same parameters. The driver (`src/driver/`) starts these binaries as
//! child processes and measures them.

pub mod child;
pub mod workload;

pub use child::child_main;

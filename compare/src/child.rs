//! The workload binaries' entry point: parse `<workload> <size> <threads>`,
//! run the workload, print its results on stdout for the driver.
//!
//! Output protocol, one `key=value` per line:
//! - `checksum=<hex>`: the workload's self-check value (the driver compares
//!   it across allocators; a mismatch marks the run as failed);
//! - `ops=<n>`: the allocator operations the workload performed, counted in
//!   its code (scaling mode's throughput; older builds do not print it);
//! - `hwm_kib=<n>`: this process's VmHWM at the end (cross-check of the
//!   driver's `ru_maxrss`);
//! - `rss_after_idle_kib=<n>`: only for workloads that measure it.

use crate::workload::{self, Params};
use std::process::ExitCode;

/// Runs the workload named on the command line; see the module docs.
pub fn child_main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, size, threads) = match args.as_slice() {
        [name, size, threads] => match (size.parse::<u64>(), threads.parse::<usize>()) {
            (Ok(size), Ok(threads)) if threads > 0 => (name.as_str(), size, threads),
            _ => return usage(),
        },
        _ => return usage(),
    };
    let Some(wl) = workload::find(name) else {
        eprintln!("unknown workload {name:?}");
        return usage();
    };
    let outcome = (wl.run)(&Params { size, threads });
    println!("checksum={:016x}", outcome.checksum);
    println!("ops={}", outcome.ops);
    if let Some(kib) = workload::procfs::status_kib("VmHWM") {
        println!("hwm_kib={kib}");
    }
    if let Some(kib) = outcome.rss_after_idle_kib {
        println!("rss_after_idle_kib={kib}");
    }
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    let names: Vec<&str> = workload::ALL.iter().map(|w| w.name).collect();
    eprintln!(
        "usage: wl-<allocator> <workload> <size> <threads>\nworkloads: {}",
        names.join(", ")
    );
    ExitCode::from(2)
}

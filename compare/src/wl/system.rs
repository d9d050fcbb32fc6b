//! Workload binary for the system allocator (glibc malloc): the shared
//! workloads with `std::alloc::System` as the global allocator.

#[global_allocator]
static GLOBAL: std::alloc::System = std::alloc::System;

fn main() -> std::process::ExitCode {
    slabpool_compare::child_main()
}

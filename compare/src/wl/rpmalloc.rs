//! Workload binary for rpmalloc: the shared workloads with rpmalloc as the global
//! allocator.

#[global_allocator]
static GLOBAL: rpmalloc::RpMalloc = rpmalloc::RpMalloc;

fn main() -> std::process::ExitCode {
    slabpool_compare::child_main()
}

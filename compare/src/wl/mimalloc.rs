//! Workload binary for mimalloc: the shared workloads with mimalloc as the global
//! allocator.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    slabpool_compare::child_main()
}

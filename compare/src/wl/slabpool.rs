//! Workload binary for slabpool: the shared workloads with slabpool as the global
//! allocator.

#[global_allocator]
static GLOBAL: slabpool::SlabPool = slabpool::SlabPool;

fn main() -> std::process::ExitCode {
    slabpool_compare::child_main()
}

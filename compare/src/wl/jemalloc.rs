//! Workload binary for jemalloc (tikv-jemallocator): the shared workloads with jemalloc (tikv-jemallocator) as the global
//! allocator.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    slabpool_compare::child_main()
}

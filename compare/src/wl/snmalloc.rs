//! Workload binary for snmalloc (snmalloc-rs): the shared workloads with snmalloc (snmalloc-rs) as the global
//! allocator.

#[global_allocator]
static GLOBAL: snmalloc_rs::SnMalloc = snmalloc_rs::SnMalloc;

fn main() -> std::process::ExitCode {
    slabpool_compare::child_main()
}

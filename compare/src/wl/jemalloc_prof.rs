//! Workload binary for jemalloc (tikv-jemallocator) built with its heap
//! profiler (the `profiling` feature): the shared workloads with jemalloc
//! as the global allocator. The driver runs it with
//! `_RJEM_MALLOC_CONF=prof:true,prof_active:true,lg_prof_sample:19`
//! (profiling on from the start, a mean interval of 512 KiB).

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    slabpool_compare::child_main()
}

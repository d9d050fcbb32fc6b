//! Workload binary for slabpool with its heap profiler compiled in (the
//! `prof` feature): the shared workloads with slabpool as the global
//! allocator. The driver runs it with `SLABPOOL_PROF=1` (profiling on from
//! the start, at the default mean interval of 512 KiB).

#[global_allocator]
static GLOBAL: slabpool::SlabPool = slabpool::SlabPool;

fn main() -> std::process::ExitCode {
    slabpool_compare::child_main()
}

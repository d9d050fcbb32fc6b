//! Micro benchmarks: slabpool, the system allocator and mimalloc, each called
//! as a `GlobalAlloc` instance in the same binary and the same run (the
//! benchmarks themselves are in `shared/micro_suite.rs`; `compare/benches/micro.rs`
//! runs them with every peer).
//!
//! `cargo bench --bench micro`: after criterion's own output, a table of
//! each allocator's median time per operation and slabpool's throughput
//! relative to the system allocator and to mimalloc.

/// The allocators, slabpool first: calls `$callback!((args) [name alloc]..)`.
macro_rules! with_allocators {
    ($callback:ident!($($args:tt)*)) => {
        $callback!(
            ($($args)*)
            ["slabpool" slabpool::SlabPool]
            ["system" std::alloc::System]
            ["mimalloc" mimalloc::MiMalloc]
        )
    };
}

include!("shared/micro_suite.rs");

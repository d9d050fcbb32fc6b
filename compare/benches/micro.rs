//! Micro benchmarks with every peer: slabpool, the system allocator,
//! mimalloc, jemalloc, snmalloc and rpmalloc, each called as a `GlobalAlloc`
//! instance in one binary and one run (the benchmarks are the root crate's
//! `benches/shared/micro_suite.rs`).
//!
//! `cargo bench -p slabpool-compare --features peers --bench micro`

/// The allocators, slabpool first: calls `$callback!((args) [name alloc]..)`.
macro_rules! with_allocators {
    ($callback:ident!($($args:tt)*)) => {
        $callback!(
            ($($args)*)
            ["slabpool" slabpool::SlabPool]
            ["system" std::alloc::System]
            ["mimalloc" mimalloc::MiMalloc]
            ["jemalloc" tikv_jemallocator::Jemalloc]
            ["snmalloc" snmalloc_rs::SnMalloc]
            ["rpmalloc" rpmalloc::RpMalloc]
        )
    };
}

include!("../../benches/shared/micro_suite.rs");

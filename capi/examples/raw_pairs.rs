//! The C loop of `capi/c/pairs.c` (`fixed32`) in Rust on the `slabpool`
//! rlib's pointer-only API, for callgrind: the same work as a C
//! `malloc(32)` and `free` on `libslabpool.so`, minus the shared library
//! (PLT calls, TLS model). Instructions per pair = (total(n) - total(0)) / n.
//!
//! `cargo build --release -p slabpool-capi --example raw_pairs` then
//! `valgrind --tool=callgrind target/release/examples/raw_pairs <n>`.

use std::hint::black_box;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    for _ in 0..n {
        // 16: C's alignment for a 32-byte malloc.
        let p = slabpool::raw::alloc(black_box(32), 16);
        black_box(p);
        // SAFETY: `p` is a live block, freed once.
        unsafe { slabpool::raw::free(p) };
    }
}

//! Fuzz target: the operations of `ops` on a heap instance of its own per
//! input, with simulated threads (thread caches over the one heap) and every
//! structure checked after each operation (`Heap::check`), and the heap
//! found empty after the final collect. See FUZZ.md.
#![no_main]

#[path = "../ops/mod.rs"]
mod ops;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ops::run(&ops::decode(data), &mut ops::HeapBackend::new());
});

//! Fuzz target: the operations of `ops` on `SlabPool` installed as this
//! binary's global allocator, through `GlobalAlloc` and `slabpool::raw`, on
//! the main thread and a pool of worker threads (blocks move between them;
//! a thread exit runs the cache flush of slabpool's pthread key
//! destructor). The process heap is checked between operations. See FUZZ.md.
#![no_main]

use std::sync::{Mutex, OnceLock};

#[path = "../ops/mod.rs"]
mod ops;

#[global_allocator]
static GLOBAL: slabpool::SlabPool = slabpool::SlabPool;

/// The worker threads live across inputs (as the heap does).
static BACKEND: OnceLock<Mutex<ops::GlobalBackend>> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let ops = ops::decode(data);
    let backend = BACKEND.get_or_init(|| Mutex::new(ops::GlobalBackend::new()));
    let mut backend = backend.lock().unwrap_or_else(|e| e.into_inner());
    ops::run(&ops, &mut *backend);
});

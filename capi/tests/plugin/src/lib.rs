//! Test fixture: a plugin (a Rust `cdylib`) whose global allocator is
//! slabpool, as a plugin host would load it. `capi/tests/c/dlclose.c`
//! dlopens it, calls [`plugin_churn`] from several threads, dlcloses it
//! while those threads live, then lets them exit and forks.

#[global_allocator]
static GLOBAL: slabpool::SlabPool = slabpool::SlabPool;

/// Allocates and frees `rounds` batches of boxes, vectors and strings (small,
/// large and huge blocks), checking their contents; returns a checksum that
/// depends on every byte written (the same for every call with the same
/// `rounds`).
#[unsafe(no_mangle)]
pub extern "C" fn plugin_churn(rounds: u32) -> u64 {
    let mut sum = 0u64;
    for r in 0..rounds {
        let boxes: Vec<Box<u64>> = (0..1000).map(|i| Box::new(u64::from(r) + i)).collect();
        let text: String = (0..100)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let large = vec![r as u8; 100_000];
        let huge = vec![1u8; 3 << 20];
        sum = sum.wrapping_add(boxes.iter().map(|b| **b).sum::<u64>());
        sum = sum.wrapping_add(text.bytes().map(u64::from).sum::<u64>());
        sum = sum.wrapping_add(large.iter().map(|&b| u64::from(b)).sum::<u64>());
        sum = sum.wrapping_add(huge[(3 << 20) - 1] as u64);
    }
    sum
}

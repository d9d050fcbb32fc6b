//! Unit tests of `sync`.

use super::*;
use std::sync::Arc;

#[test]
fn lock_excludes_concurrent_writers() {
    let lock = Arc::new(Lock::new(0u64));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || {
                for _ in 0..100_000 {
                    lock.with(|n| *n += 1);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(lock.with(|n| *n), 400_000);
}

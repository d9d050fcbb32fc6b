//! Unit tests of `huge_cache`.

use super::*;

fn chunks(n: usize) -> *mut u8 {
    let p = os::reserve(n * SEGMENT_SIZE, SEGMENT_SIZE)
        .expect("reserve")
        .as_ptr();
    assert!(registry::register(p, n * SEGMENT_SIZE, ChunkKind::Huge));
    p
}

#[test]
fn runs_split_merge_and_serve_any_size() {
    let cache = HugeCache::new();
    let p = chunks(6);
    // Free it as three separate blocks: they merge into one run.
    cache.put(p, 2 * SEGMENT_SIZE);
    cache.put(p.wrapping_add(4 * SEGMENT_SIZE), 2 * SEGMENT_SIZE);
    cache.put(p.wrapping_add(2 * SEGMENT_SIZE), 2 * SEGMENT_SIZE);
    assert_eq!(cache.bytes(), (6 * SEGMENT_SIZE, 0), "cold: decommitted");
    assert_eq!(registry::kind_of(p), ChunkKind::HugeFree);
    let a = cache
        .take(5 * SEGMENT_SIZE, true)
        .expect("fits in the merged run");
    assert_eq!(a.base, p);
    assert!(!a.dirty);
    assert_eq!(registry::kind_of(p), ChunkKind::Huge);
    // The remaining chunk serves a growth in place right after it.
    let b = cache
        .take_at(p.wrapping_add(5 * SEGMENT_SIZE), SEGMENT_SIZE)
        .expect("grow");
    assert_eq!(b.base, p.wrapping_add(5 * SEGMENT_SIZE));
    assert_eq!(cache.bytes(), (0, 0));
    assert!(cache.take(SEGMENT_SIZE, false).is_none());
    cache.put(p, 6 * SEGMENT_SIZE);
    cache.release_all();
    assert_eq!(cache.bytes(), (0, 0));
    assert_eq!(registry::kind_of(p), ChunkKind::None);
}

#[test]
fn decommitted_runs_merge_with_clean_neighbours() {
    // Found by the fuzzer (fuzz/artifacts/heap/huge-cache-unmerged-runs):
    // a dirty run decommitted by maintenance stayed apart from the clean
    // run next to it, so the two could not serve one request.
    let cache = HugeCache::new();
    let p = chunks(4);
    cache.put(p, 2 * SEGMENT_SIZE); // cold: decommitted at once
    cache.force_hot();
    cache.put(p.wrapping_add(2 * SEGMENT_SIZE), 2 * SEGMENT_SIZE); // dirty
    cache.check();
    cache.purge_expired(os::now_ms().wrapping_add(crate::purge::MAX_DELAY_MS));
    cache.check();
    let all = cache.take(4 * SEGMENT_SIZE, true).expect("one clean run");
    assert_eq!(all.base, p);
    cache.put(p, 4 * SEGMENT_SIZE);
    cache.release_all();
}

#[test]
fn hot_cache_keeps_runs_resident_until_the_delay() {
    let cache = HugeCache::new();
    cache.force_hot();
    let p = chunks(2);
    // SAFETY: the chunks are ours.
    unsafe { p.write_bytes(0x11, 2 * SEGMENT_SIZE) };
    cache.put(p, 2 * SEGMENT_SIZE);
    assert_eq!(cache.bytes(), (2 * SEGMENT_SIZE, 2 * SEGMENT_SIZE));
    let t = cache.take(SEGMENT_SIZE, false).expect("dirty reuse");
    assert!(t.dirty);
    // SAFETY: the taken chunk is ours; it kept its data.
    assert_eq!(unsafe { t.base.read() }, 0x11);
    assert!(cache.take(SEGMENT_SIZE, true).is_none(), "no clean run");
    cache.purge_expired(os::now_ms().wrapping_add(crate::purge::MAX_DELAY_MS));
    assert_eq!(cache.bytes(), (SEGMENT_SIZE, 0));
    let c = cache.take(SEGMENT_SIZE, true).expect("clean now");
    // SAFETY: ours; decommitted pages read zero.
    assert_eq!(unsafe { c.base.read() }, 0);
    cache.put(t.base, SEGMENT_SIZE);
    cache.put(c.base, SEGMENT_SIZE);
    cache.release_all();
}

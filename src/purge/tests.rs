//! Unit tests of `purge`.

use super::*;

#[test]
fn a_new_pool_is_cold_whatever_the_clock_reads() {
    // With a plain wrapping comparison against the initial 0, a pool
    // started while the clock read above 2^31 ms was hot for 25 days.
    for now in [1, 1 << 31, 3 << 30, u32::MAX] {
        assert!(PurgePolicy::new().eager(now), "at {now}");
    }
}

#[test]
fn turns_hot_only_after_enough_quick_reuse() {
    let mut p = PurgePolicy::new();
    let now = os::now_ms();
    assert!(p.eager(now));
    p.note_reuse(HOT_WASTE_PAGES as usize, 0, long_ago(now), now);
    assert!(p.eager(now), "reuse of pages purged long ago is no waste");
    p.note_reuse(HOT_WASTE_PAGES as usize - 1, 0, now, now);
    assert!(p.eager(now));
    p.note_reuse(1, 0, now, now);
    assert!(!p.eager(now), "hot");
    let window = config::purge_delay_ms() * HOT_DELAYS;
    // Reuse of freed, unpurged memory keeps it hot...
    let mut t = now;
    for _ in 0..5 {
        t = t.wrapping_add(window / 2);
        p.note_reuse(0, 10, long_ago(t), t);
        assert!(!p.eager(t));
    }
    // ... and a window without it lets it cool.
    assert!(
        p.eager(t.wrapping_add(window)),
        "cold again after the window"
    );
}

#[test]
fn delay_stretches_while_deferred_purges_are_wasted() {
    let mut p = PurgePolicy::new();
    let base = config::purge_delay_ms();
    let mut now = os::now_ms();
    assert_eq!(p.delay(), base);
    // A program that keeps reusing pages just after their purge: every
    // 10 ms, 256 pages purged a moment ago are handed out again.
    for _ in 0..200 {
        now = now.wrapping_add(10);
        p.note_reuse(256, 0, now.wrapping_sub(1), now);
    }
    assert!(!p.eager(now));
    assert!(p.delay() >= 4 * base, "delay {}", p.delay());
    assert!(p.delay() <= MAX_DELAY_MS);
    // Quiet windows relax it again.
    for _ in 0..8 {
        now = now.wrapping_add(p.delay() * HOT_DELAYS + 1);
        p.note_reuse(0, 0, now, now);
    }
    assert_eq!(p.delay(), base);
    assert!(p.eager(now));
}

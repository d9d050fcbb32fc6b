//! The purge policy shared by arenas and the huge-mapping cache: when freed
//! memory goes back to the OS.
//!
//! A pool starts "cold": freed pages are decommitted at once, so a program
//! that frees memory and then idles holds none of it, with no thread of our
//! own to come back later. When the pool hands out pages it decommitted
//! less than a purge delay ago, that decommit was wasted work; once
//! [`HOT_WASTE_PAGES`] pages were wasted so within [`HOT_DELAYS`] delays (a
//! loop of alloc/free pairs, not an occasional `Vec` growth), the pool turns
//! "hot" for [`HOT_DELAYS`] delays, and frees only schedule a purge a delay
//! later, done by maintenance on a later slow path. A block freed and
//! reused within the delay then costs no system call and no page fault.

use crate::config;
use crate::os;

/// How long, in purge delays, a pool stays hot, and the window in which
/// wasted decommits are counted.
pub const HOT_DELAYS: u32 = 10;
/// Pages reused soon after their decommit, within a window, that turn a
/// pool hot (4 MiB).
pub const HOT_WASTE_PAGES: u32 = 1024;

/// The policy state of one pool (guarded by the pool's lock).
#[derive(Debug, Default)]
pub struct PurgePolicy {
    hot_until: u32,
    waste: u32,
    waste_since: u32,
}

impl PurgePolicy {
    pub const fn new() -> Self {
        Self {
            hot_until: 0,
            waste: 0,
            waste_since: 0,
        }
    }

    /// Whether frees at `now` should decommit at once.
    pub fn eager(&self, now: u32) -> bool {
        os::reached(now, self.hot_until)
    }

    /// `pages` that were decommitted at `purged_at` are handed out again at
    /// `now`: counts them as waste if that was less than a delay ago.
    pub fn note_reuse(&mut self, pages: usize, purged_at: u32, now: u32) {
        let delay = config::purge_delay_ms();
        if pages == 0 || os::reached(now, purged_at.wrapping_add(delay)) {
            return;
        }
        let window = delay.saturating_mul(HOT_DELAYS);
        if os::reached(now, self.waste_since.wrapping_add(window)) {
            self.waste_since = now;
            self.waste = 0;
        }
        self.waste = self.waste.saturating_add(pages as u32);
        if self.waste >= HOT_WASTE_PAGES {
            self.hot_until = now.wrapping_add(window);
        }
    }

    /// Makes the pool hot until `until` (tests).
    #[cfg(test)]
    pub fn force_hot(&mut self, until: u32) {
        self.hot_until = until;
    }
}

/// A time long enough ago that pages "purged" then count as purged long
/// ago (for memory never purged).
pub fn long_ago(now: u32) -> u32 {
    now.wrapping_sub(config::purge_delay_ms().saturating_add(1))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn turns_hot_only_after_enough_quick_reuse() {
        let mut p = PurgePolicy::new();
        let now = os::now_ms();
        assert!(p.eager(now));
        p.note_reuse(HOT_WASTE_PAGES as usize, long_ago(now), now);
        assert!(p.eager(now), "reuse of pages purged long ago is no waste");
        p.note_reuse(HOT_WASTE_PAGES as usize - 1, now, now);
        assert!(p.eager(now));
        p.note_reuse(1, now, now);
        assert!(!p.eager(now), "hot");
        let later = now.wrapping_add(config::purge_delay_ms() * HOT_DELAYS);
        assert!(p.eager(later), "cold again after the window");
    }
}

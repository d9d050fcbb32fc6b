//! The purge policy shared by arenas and the huge-mapping cache: when freed
//! memory goes back to the OS.
//!
//! A pool starts "cold": freed pages are decommitted at once, so a program
//! that frees memory and then idles holds none of it, with no thread of our
//! own to come back later; but a run with few dirty pages, even merged
//! with its free neighbours ([`COLD_RUN_PAGES`]), waits a delay like a hot
//! pool's, to be decommitted with its neighbours when they come free (one
//! system call, and one TLB shootdown of the other CPUs, for many slabs),
//! or by maintenance. When the pool hands out pages it decommitted
//! less than a purge delay ago, that decommit was wasted work; once
//! [`HOT_WASTE_PAGES`] pages were wasted so within [`HOT_DELAYS`] delays (a
//! loop of alloc/free pairs, not an occasional `Vec` growth), the pool turns
//! "hot", and frees only schedule a purge a delay later, done by maintenance
//! on a later slow path. A block freed and reused within the delay then
//! costs no system call and no page fault. The pool stays hot while freed
//! memory keeps being reused before its purge (every such reuse extends it
//! by [`HOT_DELAYS`] delays), and turns cold again after that long without.
//!
//! The delay adapts too: it starts at the configured purge delay and, each
//! time a hot pool still wastes a deferred purge (the program reuses memory
//! a little later than the delay), it doubles (at most once per delay), up
//! to [`MAX_DELAY_MS`]; it halves again for each window without waste. A program that frees and
//! idles is unaffected: cold pools purge at once.

use crate::config;
use crate::os;

/// How long, in purge delays, a pool stays hot, and the window in which
/// wasted decommits are counted.
pub const HOT_DELAYS: u32 = 10;
/// Pages reused soon after their decommit, within a window, that turn a
/// pool hot (4 MiB).
pub const HOT_WASTE_PAGES: u32 = 1024;
/// The longest purge delay a hot pool adapts to.
pub const MAX_DELAY_MS: u32 = 1000;
/// A decommit counts as wasted if its pages are handed out again within
/// this many delays.
pub const WASTE_DELAYS: u32 = 4;

/// A hot pool still decommits at once a freed run that is big for its
/// heap: at least [`BIG_RUN_PAGES`] pages and a [`BIG_RUN_SHARE`]th of the
/// pool's committed pages. The pages such a run holds through the delay
/// are a large part of a small heap's footprint: a program whose vectors
/// and tables grow by moving frees, at each growth, a copy as large as its
/// live data, which later requests (all larger) do not reuse. A program
/// that frees and reallocates a big buffer in a loop does reuse it: when a
/// request no larger than the last big run purged so is served from
/// decommitted pages soon after (the purge was wasted), big runs are
/// deferred like the others for [`HOT_DELAYS`] delays. (A larger request
/// would have faulted in fresh pages anyway.)
pub const BIG_RUN_PAGES: usize = 64;
/// See [`BIG_RUN_PAGES`].
pub const BIG_RUN_SHARE: usize = 16;

/// A cold pool decommits a freed run at once only if, merged with its free
/// neighbours, it holds at least this many dirty pages (256 KiB), or it
/// frees its whole segment; otherwise the run is deferred as a hot pool's
/// are. A program that frees its memory slab by slab (a teardown, the
/// free phase of a burst) made one `madvise` per slab, each of which
/// interrupts every other CPU the process runs on to flush its TLB: a
/// quarter of `burst-idle`'s time. Deferred, those runs merge as their
/// neighbours come free and go back together; what stays resident of a
/// program that frees and goes idle at once is only runs of fewer dirty
/// pages between live ones.
pub const COLD_RUN_PAGES: usize = 64;
/// Whether a cold pool defers runs short of [`COLD_RUN_PAGES`] dirty pages:
/// not under loom, whose segments are smaller than that bound (there every
/// cold free decommits at once, the purge outside the lock that its models
/// race with other threads, without reading the dirty bitmap first).
const DEFER_SHORT_COLD_RUNS: bool = !cfg!(loom);

/// The policy state of one pool (guarded by the pool's lock).
#[derive(Debug, Default)]
pub struct PurgePolicy {
    hot_until: u32,
    waste: u32,
    waste_since: u32,
    /// Extra factor on the configured delay (a power of two; 0 or 1 at
    /// rest, so that a new policy is all zero bytes and a heap in a static
    /// needs no initialised data).
    stretch: u32,
    /// When the pool last turned hot or stretched its delay.
    stretched_at: u32,
    /// Until when a hot pool defers the purge of big runs too (see
    /// [`BIG_RUN_PAGES`]).
    defer_big_until: u32,
    /// The last big run a hot pool purged at once: its pages, and when.
    big_pages: usize,
    big_at: u32,
}

impl PurgePolicy {
    pub const fn new() -> Self {
        Self {
            hot_until: 0,
            waste: 0,
            waste_since: 0,
            stretch: 0,
            stretched_at: 0,
            defer_big_until: 0,
            big_pages: 0,
            big_at: 0,
        }
    }

    /// Whether frees at `now` should decommit at once.
    pub fn eager(&self, now: u32) -> bool {
        os::reached(now, self.hot_until)
    }

    /// Whether a run of `pages` freed at `now` into this pool, of
    /// `committed` pages in all, should be decommitted at once, the run
    /// merged with its free neighbours being its whole segment or not
    /// (`whole_segment`) and holding `dirty_pages()` pages that may be
    /// resident: when the pool is cold, unless the merged run is short of
    /// dirty pages and not its whole segment (see [`COLD_RUN_PAGES`]); when
    /// hot, if the run is big for the heap (see [`BIG_RUN_PAGES`]) unless
    /// big runs were reused soon lately.
    pub fn purge_now(
        &mut self,
        pages: usize,
        whole_segment: bool,
        dirty_pages: impl FnOnce() -> usize,
        committed: usize,
        now: u32,
    ) -> bool {
        if self.eager(now) {
            return !DEFER_SHORT_COLD_RUNS || whole_segment || dirty_pages() >= COLD_RUN_PAGES;
        }
        let big = pages >= BIG_RUN_PAGES
            && pages * BIG_RUN_SHARE >= committed
            && os::reached(now, self.defer_big_until);
        if big {
            self.big_pages = pages;
            self.big_at = now;
        }
        big
    }

    /// How long freed pages wait before a deferred purge, in milliseconds.
    pub fn delay(&self) -> u32 {
        config::purge_delay_ms()
            .saturating_mul(self.stretch.max(1))
            .min(MAX_DELAY_MS.max(config::purge_delay_ms()))
    }

    /// Memory is handed out again at `now`: `dirty` pages that were freed
    /// and not yet purged (a hit: being hot paid off), and `clean` pages
    /// that were decommitted at `purged_at` (waste, if that was less than a
    /// delay ago).
    pub fn note_reuse(&mut self, clean: usize, dirty: usize, purged_at: u32, now: u32) {
        let delay = self.delay();
        let window = delay.saturating_mul(HOT_DELAYS);
        if os::reached(now, self.waste_since.wrapping_add(window)) {
            // A window without enough waste: relax the stretch.
            if self.waste < HOT_WASTE_PAGES {
                self.stretch = (self.stretch / 2).max(1);
            }
            self.waste_since = now;
            self.waste = 0;
        }
        if dirty > 0 && !self.eager(now) {
            self.hot_until = now.wrapping_add(window);
        }
        let horizon = delay.saturating_mul(WASTE_DELAYS);
        if clean == 0 || os::reached(now, purged_at.wrapping_add(horizon)) {
            return;
        }
        if !self.eager(now)
            && clean >= BIG_RUN_PAGES
            && clean + dirty <= self.big_pages
            && !os::reached(now, self.big_at.wrapping_add(horizon))
        {
            // Hot, and a request no larger than the last big run purged at
            // once came back soon for decommitted pages: defer big runs too
            // for a while (the delay is not what was too short).
            self.defer_big_until = now.wrapping_add(window);
            self.big_pages = 0;
            return;
        }
        self.waste = self.waste.saturating_add(clean as u32);
        if self.eager(now) {
            if self.waste >= HOT_WASTE_PAGES {
                self.hot_until = now.wrapping_add(window);
                self.stretched_at = now;
            }
        } else if os::reached(now, self.stretched_at.wrapping_add(delay)) {
            // Hot, and a deferred purge still came too soon: wait longer
            // (at most one doubling per delay).
            self.stretch = (self.stretch.max(1) * 2).min(MAX_DELAY_MS);
            self.stretched_at = now;
            self.hot_until = now.wrapping_add(self.delay().saturating_mul(HOT_DELAYS));
        }
    }

    /// Makes the pool hot until `until`, big runs deferred too (tests).
    #[cfg(all(test, not(loom)))]
    pub fn force_hot(&mut self, until: u32) {
        self.hot_until = until;
        self.defer_big_until = until;
    }

    /// Makes the pool hot until `until`, big runs still purged at once
    /// (tests).
    #[cfg(all(test, not(loom)))]
    pub fn force_hot_but_big(&mut self, until: u32) {
        self.hot_until = until;
    }
}

/// A time long enough ago that pages "purged" then count as purged long
/// ago (for memory never purged).
pub fn long_ago(now: u32) -> u32 {
    now.wrapping_sub(
        MAX_DELAY_MS
            .max(config::purge_delay_ms())
            .saturating_mul(WASTE_DELAYS)
            + 1,
    )
}

#[cfg(all(test, not(loom)))]
mod tests;

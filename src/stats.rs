//! Statistics: where every byte is. Plain structs (no allocation), filled by
//! the heap from counters kept on slow paths only, and a readable table.
//!
//! The byte figures nest: `allocated <= active <= committed <= mapped`.

use crate::NUM_CLASSES;
use core::fmt::{self, Write};

/// A snapshot of the allocator's memory, from [`crate::stats`]. Fields may
/// be added in later versions (`#[non_exhaustive]`); the per-class rows
/// are a slice ([`Stats::classes`]), so the size-class table is not part
/// of the type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Bytes in blocks the program holds: small blocks at their class size,
    /// large blocks at their page-rounded size, huge blocks at their mapping
    /// size. Thread caches publish their contents on slow paths, so this
    /// lags by at most a cache's worth per running thread.
    pub allocated: usize,
    /// Bytes of slabs (free blocks included, pages a purge decommitted
    /// excluded), large spans and huge mappings in use.
    pub active: usize,
    /// Bytes that may be resident: every page handed out and not
    /// decommitted since, segment headers, huge mappings.
    pub committed: usize,
    /// Address space mapped: segments and huge mappings.
    pub mapped: usize,
    /// Bytes given back to the OS since the start (decommitted, or unmapped
    /// while committed).
    pub released: usize,
    /// Segments mapped.
    pub segments: usize,
    /// Live huge blocks (one mapping each).
    pub huge_blocks: usize,
    /// `madvise(MADV_DONTNEED)` calls made since the start.
    pub purges: usize,
    /// Threads with an active cache.
    pub threads: usize,
    /// Contention, summed over the classes (see [`ClassStats`]): lock
    /// acquisitions of the central pools.
    pub lock_acquisitions: u64,
    /// Of those, the ones that found the lock taken.
    pub lock_waits: u64,
    /// Futex sleeps in those waits.
    pub lock_sleeps: u64,
    /// Batches taken from a transfer stack that another thread had flushed.
    pub cross_thread_batches: u64,
    /// One row per size class.
    pub(crate) classes: [ClassStats; NUM_CLASSES],
}

/// The figures of one size class (fields may be added in later versions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClassStats {
    /// Block size in bytes.
    pub size: usize,
    /// Slabs of the class.
    pub slabs: usize,
    /// Of which empty (kept for reuse).
    pub empty_slabs: usize,
    /// Blocks the program holds.
    pub allocated_blocks: usize,
    /// Blocks in thread caches (as last published).
    pub cached_blocks: usize,
    /// Blocks in the central transfer stack.
    pub transfer_blocks: usize,
    /// Blocks free in the slabs (free lists, parked, and never carved).
    pub free_blocks: usize,
    /// Pages of live slabs decommitted by `collect` (their free blocks
    /// parked).
    pub purged_pages: usize,
    /// Acquisitions of the class's central pool locks (one per refill,
    /// flush or free without a cache; cumulative, over all arenas).
    pub lock_acquisitions: u64,
    /// Of which found the lock held by another thread.
    pub lock_waits: u64,
    /// Futex sleeps in those waits.
    pub lock_sleeps: u64,
    /// Batches a thread took from a transfer stack that another thread had
    /// flushed (blocks that changed threads through the central pool).
    pub cross_thread_batches: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            allocated: 0,
            active: 0,
            committed: 0,
            mapped: 0,
            released: 0,
            segments: 0,
            huge_blocks: 0,
            purges: 0,
            threads: 0,
            lock_acquisitions: 0,
            lock_waits: 0,
            lock_sleeps: 0,
            cross_thread_batches: 0,
            classes: [ClassStats::default(); NUM_CLASSES],
        }
    }
}

/// What the guard pool holds, from [`crate::guard_stats`] (no
/// allocation, a few relaxed loads).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardStats {
    /// The sampling period in effect (`SLABPOOL_GUARD_SAMPLE`; 0: off).
    pub sample: u32,
    /// Chunks of the pool mapped (4 per kind of block at most, 4 MiB of
    /// address space each).
    pub chunks: usize,
    /// Guarded blocks live now.
    pub live: usize,
    /// Freed slots waiting for reuse, their pages inaccessible.
    pub freed: usize,
    /// Guarded blocks handed out since the start.
    pub guarded: u64,
}

/// `n` bytes in a short human unit, e.g. `12.3 MiB`.
struct Bytes(usize);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        // Integer arithmetic only: formatting a float would link core's
        // float printer (some 25 KB of code) into every program.
        let mut unit = 0;
        while unit + 1 < UNITS.len() && self.0 >> (10 * unit) >= 1024 {
            unit += 1;
        }
        let mut buf = [0u8; 32];
        let mut w = SliceWriter {
            buf: &mut buf,
            len: 0,
        };
        if unit == 0 {
            write!(w, "{} B", self.0)?;
        } else {
            // Tenths of the unit, rounded to nearest, without a wider type:
            // the remainder times ten fits (it is below 2^40).
            let shift = 10 * unit;
            let rem = self.0 & ((1 << shift) - 1);
            let tenths = (rem * 10 + (1 << (shift - 1))) >> shift;
            let whole = (self.0 >> shift) + tenths / 10;
            write!(w, "{whole}.{} {}", tenths % 10, UNITS[unit])?;
        }
        let len = w.len;
        // Right-aligned by hand (ASCII): `str` padding would link a
        // character counter for nothing.
        for _ in len..f.width().unwrap_or(0) {
            f.write_char(' ')?;
        }
        let text = core::str::from_utf8(&buf[..len]).map_err(|_| fmt::Error)?;
        f.write_str(text)
    }
}

/// A `fmt::Write` into a fixed byte slice (truncating).
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl Stats {
    /// One row per size class, smallest first.
    pub fn classes(&self) -> &[ClassStats] {
        &self.classes
    }

    /// Writes the summary and the per-class table (classes with any slab or
    /// cached block), for humans. Formatting never allocates.
    pub fn write_table(&self, out: &mut impl Write) -> fmt::Result {
        writeln!(out, "slabpool statistics")?;
        writeln!(
            out,
            "  allocated {:>10}   active {:>10}   committed {:>10}   mapped {:>10}",
            Bytes(self.allocated),
            Bytes(self.active),
            Bytes(self.committed),
            Bytes(self.mapped)
        )?;
        writeln!(
            out,
            "  released {:>10}   segments {}   huge blocks {}   purges {}   threads {}",
            Bytes(self.released),
            self.segments,
            self.huge_blocks,
            self.purges,
            self.threads
        )?;
        writeln!(
            out,
            "  central locks {} (waited {}, futex sleeps {})   batches taken from another thread {}",
            self.lock_acquisitions, self.lock_waits, self.lock_sleeps, self.cross_thread_batches
        )?;
        writeln!(
            out,
            "  {:>7} {:>7} {:>6} {:>10} {:>10} {:>9} {:>9} {:>10} {:>10} {:>8} {:>8} {:>8}",
            "class",
            "size",
            "slabs",
            "empty",
            "allocated",
            "cached",
            "transfer",
            "free",
            "locks",
            "waited",
            "sleeps",
            "xthread"
        )?;
        for (i, c) in self.classes.iter().enumerate() {
            if c.slabs == 0 && c.cached_blocks == 0 && c.lock_acquisitions == 0 {
                continue;
            }
            writeln!(
                out,
                "  {:>7} {:>7} {:>6} {:>10} {:>10} {:>9} {:>9} {:>10} {:>10} {:>8} {:>8} {:>8}",
                i,
                c.size,
                c.slabs,
                c.empty_slabs,
                c.allocated_blocks,
                c.cached_blocks,
                c.transfer_blocks,
                c.free_blocks,
                c.lock_acquisitions,
                c.lock_waits,
                c.lock_sleeps,
                c.cross_thread_batches
            )?;
        }
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

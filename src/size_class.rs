//! Size classes: the compile-time table of small block sizes and the O(1)
//! mapping from a request size to its class.
//!
//! Classes step by 8 bytes up to 64 (8 classes), then by four per doubling
//! up to [`SMALL_LIMIT`] (36 more): a request above 64 bytes wastes at most
//! a quarter of its size (65 bytes in 80), and exactly nothing at a power of
//! two. `class_of` uses a 129-entry table up to 1 KiB and a leading-zero count
//! above; neither loops.
//!
//! Each class also fixes the geometry of its slabs (pages per slab, so that
//! the tail left over is small) and the batch in which blocks move between a
//! thread cache and the central pool.
//!
//! Natural alignment: every class size is a multiple of the largest power of
//! two dividing it, and slabs of a class start at an address aligned to that
//! power (capped at the slab's own size), so a request rounded up to a
//! multiple of its alignment lands in a class whose blocks are all aligned.

use crate::os::PAGE;

/// Largest size served from slabs (bytes).
pub const SMALL_LIMIT: usize = 32 * 1024;
/// Number of small classes.
pub const NUM_CLASSES: usize = 44;
/// Requests up to this size use the lookup table.
const LOOKUP_LIMIT: usize = 1024;

/// Smallest slab of any class, and the minimum number of blocks per slab.
#[cfg(not(loom))]
const SLAB_MIN_BYTES: usize = 64 * 1024;
#[cfg(not(loom))]
const SLAB_MIN_BLOCKS: usize = 8;
/// Loom models want a handful of blocks per slab.
#[cfg(loom)]
const SLAB_MIN_BYTES: usize = PAGE;
#[cfg(loom)]
const SLAB_MIN_BLOCKS: usize = 2;

/// Bytes moved per batch between a thread cache and the central pool
/// (clamped to [`BATCH_MIN`, `BATCH_MAX`] blocks).
#[cfg(not(loom))]
const BATCH_BYTES: usize = 32 * 1024;
#[cfg(not(loom))]
const BATCH_MAX: usize = 64;
#[cfg(loom)]
const BATCH_BYTES: usize = 2048;
#[cfg(loom)]
const BATCH_MAX: usize = 2;
const BATCH_MIN: usize = 2;

/// A thread cache holds at most this many bytes of one class of blocks up
/// to [`CACHE_LARGE_CLASS_ABOVE`] bytes (and at least one batch)...
const CACHE_CLASS_BYTES: usize = 256 * 1024;
/// ... and this many of a class of larger blocks. A program spends more
/// time on each large block than a refill costs it, so a short cache loses
/// little; and large blocks make up most of the bytes that wait in the
/// caches of threads that free what other threads allocated
/// (`work-stealing`: peak RSS down by a tenth, no slower).
const CACHE_LARGE_CLASS_BYTES: usize = 64 * 1024;
/// ... and at most this many batches of one class.
const CACHE_MAX_BATCHES: usize = 4;
/// Classes of blocks larger than this (from 1280 bytes) are held to
/// [`CACHE_LARGE_CLASS_BYTES`] in a thread cache, the others to
/// [`CACHE_CLASS_BYTES`]. It is 1 KiB as [`LOOKUP_LIMIT`] is, but by a
/// choice of its own: where the lookup table ends does not bear on it.
const CACHE_LARGE_CLASS_ABOVE: usize = 1024;

/// Everything fixed about one size class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassInfo {
    /// Block size in bytes.
    pub size: u32,
    /// Pages per slab.
    pub slab_pages: u32,
    /// Slab start alignment, in pages.
    pub align_pages: u32,
    /// Blocks per slab.
    pub capacity: u32,
    /// Blocks moved per refill or flush.
    pub batch: u32,
    /// Most blocks a thread cache keeps of this class.
    pub max_cached: u32,
    /// `ceil(2^64 / size)`: `offset / size` and whether `size` divides
    /// `offset` with one multiplication (see `raw::block_index`).
    pub reciprocal: u64,
}

/// Block size of class `i`.
const fn class_size(i: usize) -> usize {
    if i < 8 {
        (i + 1) * 8
    } else {
        let j = i - 8;
        let base = 64usize << (j / 4);
        base + (j % 4 + 1) * (base / 4)
    }
}

/// Reference mapping (a loop, for building tables and for tests).
const fn class_of_slow(size: usize) -> usize {
    let mut i = 0;
    while class_size(i) < size {
        i += 1;
    }
    i
}

const fn class_info(i: usize) -> ClassInfo {
    let size = class_size(i);
    // Slab: at least SLAB_MIN_BYTES and SLAB_MIN_BLOCKS blocks; then the page
    // count within +25% that wastes the smallest fraction at its tail.
    let want = if size * SLAB_MIN_BLOCKS > SLAB_MIN_BYTES {
        size * SLAB_MIN_BLOCKS
    } else {
        SLAB_MIN_BYTES
    };
    let min_pages = want.div_ceil(PAGE);
    let mut best = min_pages;
    let mut pages = min_pages;
    while pages <= min_pages + min_pages / 4 {
        // waste(pages) / pages < waste(best) / best, cross-multiplied.
        if (pages * PAGE % size) * best < (best * PAGE % size) * pages {
            best = pages;
        }
        pages += 1;
    }
    let natural = size & size.wrapping_neg();
    let align_pages = if natural > PAGE { natural / PAGE } else { 1 };
    let batch = clamp(BATCH_BYTES / size, BATCH_MIN, BATCH_MAX);
    let class_bytes = if size > CACHE_LARGE_CLASS_ABOVE {
        CACHE_LARGE_CLASS_BYTES
    } else {
        CACHE_CLASS_BYTES
    };
    let max_cached = clamp(class_bytes / size, batch, CACHE_MAX_BATCHES * batch);
    ClassInfo {
        size: size as u32,
        slab_pages: best as u32,
        align_pages: align_pages as u32,
        capacity: (best * PAGE / size) as u32,
        batch: batch as u32,
        max_cached: max_cached as u32,
        reciprocal: u64::MAX / size as u64 + 1,
    }
}

const fn clamp(v: usize, lo: usize, hi: usize) -> usize {
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

/// The class table.
pub static CLASSES: [ClassInfo; NUM_CLASSES] = {
    let mut table = [class_info(0); NUM_CLASSES];
    let mut i = 1;
    while i < NUM_CLASSES {
        table[i] = class_info(i);
        i += 1;
    }
    table
};

/// Class of each size up to [`LOOKUP_LIMIT`], indexed by `(size + 7) / 8`
/// (a `const`, so a constant size folds to its class at compile time).
const LOOKUP: [u8; LOOKUP_LIMIT / 8 + 1] = {
    let mut table = [0u8; LOOKUP_LIMIT / 8 + 1];
    let mut i = 1;
    while i < table.len() {
        table[i] = class_of_slow(i * 8) as u8;
        i += 1;
    }
    table
};

const _: () = {
    assert!(class_size(NUM_CLASSES - 1) == SMALL_LIMIT);
    assert!(class_of_slow(SMALL_LIMIT) == NUM_CLASSES - 1);
    assert!(NUM_CLASSES <= u8::MAX as usize);
};

/// A size class: an index below [`NUM_CLASSES`], by construction. It is
/// made only by the size lookups ([`size_class`], [`c_class_of`], whose
/// tables are checked at compile time), by a checked [`SizeClass::new`],
/// or by `new_unchecked` under its contract, so the thread cache indexes
/// its bins with it without a bounds check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct SizeClass(usize);

impl SizeClass {
    /// Class `index`, if there is one.
    #[inline(always)]
    pub const fn new(index: usize) -> Option<SizeClass> {
        if index < NUM_CLASSES {
            Some(SizeClass(index))
        } else {
            None
        }
    }

    /// Class `index`.
    ///
    /// # Safety
    /// `index < NUM_CLASSES`.
    #[inline(always)]
    pub const unsafe fn new_unchecked(index: usize) -> SizeClass {
        debug_assert!(index < NUM_CLASSES);
        SizeClass(index)
    }

    /// The class's index, below [`NUM_CLASSES`].
    #[inline(always)]
    pub const fn index(self) -> usize {
        self.0
    }

    /// Everything fixed about the class.
    #[inline(always)]
    pub fn info(self) -> &'static ClassInfo {
        // SAFETY: the index is below NUM_CLASSES by construction.
        unsafe { CLASSES.get_unchecked(self.index()) }
    }
}

/// The class serving `size` bytes, for `size <= SMALL_LIMIT` (0 maps to the
/// smallest class).
#[inline(always)]
pub fn size_class(size: usize) -> SizeClass {
    // SAFETY: `class_of` returns an index below NUM_CLASSES (its table and
    // formula are checked at compile time, above).
    unsafe { SizeClass::new_unchecked(class_of(size)) }
}

/// The index of the class serving `size` bytes (see [`size_class`]).
#[inline(always)]
pub fn class_of(size: usize) -> usize {
    debug_assert!(size <= SMALL_LIMIT);
    if size <= LOOKUP_LIMIT {
        LOOKUP[(size + 7) >> 3] as usize
    } else {
        // size - 1 lies in [2^b, 2^(b+1)); its two bits below the top pick
        // one of the four classes of that doubling.
        let s = size - 1;
        let b = (usize::BITS - 1 - s.leading_zeros()) as usize;
        4 * b + ((s >> (b - 2)) & 3) - 16
    }
}

/// Class of each size up to [`LOOKUP_LIMIT`] for C's `malloc`, indexed by
/// `(size + 7) / 8`: a size above 8 bytes is first rounded up to 16, the
/// alignment of `max_align_t` (classes of 24, 40, 56 bytes are only
/// 8-aligned); 0 takes the smallest class, as in [`LOOKUP`].
#[cfg(not(loom))]
static C_LOOKUP: [u8; LOOKUP_LIMIT / 8 + 1] = {
    let mut table = [0u8; LOOKUP_LIMIT / 8 + 1];
    let mut i = 1;
    while i < table.len() {
        let size = i * 8;
        table[i] = class_of_slow(if size <= 8 { 8 } else { (size + 15) & !15 }) as u8;
        i += 1;
    }
    table
};

/// The class C's `malloc(size)` takes, for sizes up to 1 KiB (the common
/// case: one table load); `None` above.
#[cfg(not(loom))]
#[inline(always)]
pub fn c_table_class(size: usize) -> Option<SizeClass> {
    if size <= LOOKUP_LIMIT {
        // SAFETY: every entry of C_LOOKUP is a class index (`class_of_slow`
        // of a size within the classes, checked below).
        Some(unsafe { SizeClass::new_unchecked(C_LOOKUP[(size + 7) >> 3] as usize) })
    } else {
        None
    }
}

/// Every class above [`LOOKUP_LIMIT`] is a multiple of this: the step of
/// [`C_MID_LOOKUP`].
#[cfg(not(loom))]
const MID_STEP: usize = 256;

/// Class of each size from [`LOOKUP_LIMIT`] to [`SMALL_LIMIT`] for C's
/// `malloc`, indexed by `(size + 255) / 256` (the classes there are
/// multiples of 256 bytes, so of 16: checked below).
#[cfg(not(loom))]
static C_MID_LOOKUP: [u8; SMALL_LIMIT / MID_STEP + 1] = {
    let mut table = [0u8; SMALL_LIMIT / MID_STEP + 1];
    let mut i = LOOKUP_LIMIT / MID_STEP;
    while i < table.len() {
        table[i] = class_of_slow(i * MID_STEP) as u8;
        i += 1;
    }
    table
};

/// The class C's `malloc(size)` takes, for every small size: up to 1 KiB
/// [`c_table_class`], above it a second table load; `None` past
/// [`SMALL_LIMIT`].
#[cfg(not(loom))]
#[inline(always)]
pub fn c_class_of(size: usize) -> Option<SizeClass> {
    if size <= LOOKUP_LIMIT {
        c_table_class(size)
    } else if size <= SMALL_LIMIT {
        // SAFETY: every entry of C_MID_LOOKUP past LOOKUP_LIMIT is a class
        // index (checked below).
        Some(unsafe { SizeClass::new_unchecked(C_MID_LOOKUP[size.div_ceil(MID_STEP)] as usize) })
    } else {
        None
    }
}

// The classes past the first table are multiples of the mid table's step:
// so every size of a step's range has the class of the step's top (the
// entry), and a block of them is aligned as C's `malloc` must. Every entry
// is a class.
#[cfg(not(loom))]
const _: () = {
    let mut i = 0;
    while i < NUM_CLASSES {
        let size = CLASSES[i].size as usize;
        assert!(size <= LOOKUP_LIMIT || size % MID_STEP == 0);
        i += 1;
    }
    let mut i = 0;
    while i < C_MID_LOOKUP.len() {
        assert!((C_MID_LOOKUP[i] as usize) < NUM_CLASSES);
        i += 1;
    }
};

// Every entry of the lookup tables is a class.
#[cfg(not(loom))]
const _: () = {
    let mut i = 0;
    while i < C_LOOKUP.len() {
        assert!((C_LOOKUP[i] as usize) < NUM_CLASSES);
        assert!((LOOKUP[i] as usize) < NUM_CLASSES);
        i += 1;
    }
};

/// Block size of `class`.
#[cfg(all(test, not(loom)))]
pub fn size_of(class: usize) -> usize {
    CLASSES[class].size as usize
}

#[cfg(all(test, not(loom)))]
mod tests;

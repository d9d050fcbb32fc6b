//! The sampling heap profiler (`prof` feature): where the memory goes, in
//! pprof's format, at no cost to the fast paths.
//!
//! - `sampler`: which allocations are sampled. An allocation of `s` bytes
//!   is sampled with probability `1 - exp(-s/T)` (T the mean interval,
//!   [`sample_interval`], `SLABPOOL_PROF_SAMPLE`, default 512 KiB), every
//!   allocation alike, blocks reused from a thread cache too. Small
//!   allocations count down a per-class budget that the thread cache's fast
//!   `pop` decrements in the instruction that counts its blocks (see
//!   `tcache::bin`); large and huge ones a byte countdown on their slow
//!   path; a large block grown where it lies is charged its growth.
//! - `stack`: the caller's stack, by frame-pointer walking, into a fixed
//!   array of [`MAX_DEPTH`] frames: no allocation, no lock, no unwinder.
//! - `pool`: where sampled small blocks live: a reserved region of the
//!   address space of their own, below the thread caches' floor, so a free
//!   finds them by address in O(1) ([`owns`]), and a thread cache's fast
//!   `pop` refuses one that `GlobalAlloc`'s small free (which never looks
//!   at a block) pushed into its bin: the next `pop` of the class, or the
//!   bin's flush, hands it back here (`release`).
//! - `big`: the records of sampled large and huge blocks, by address: they
//!   stay where the heap puts them (resized in place, cached when freed,
//!   as unsampled ones), and their frees, slow paths already, look them up
//!   while any is live ([`big_live`]: one load otherwise).
//! - `table`: the stacks seen and their counters (cumulative, live, and
//!   the live counters at the last peak), in memory the profiler maps.
//! - `pprof`: the gzip-compressed pprof protobuf of a snapshot (outside the
//!   allocation path; it allocates, through slabpool itself).
//! - `shared`: what the threads share (the lock over the pool, the records
//!   and the table; what the free paths read without it), `weight`: a
//!   sample's weights. Under loom only these, `pool`, `big` and `table`
//!   are built, for the models (`testing::model::ProfShared`).
//!
//! Invariants: the pool and the table change under `SHARED`'s lock only,
//! which no path holds while it allocates or frees through the heap, or
//! while it takes a heap lock (the heap never takes it either), so there is
//! no lock order to break; the stack walk runs before the lock is taken.
//! Nothing reachable from an allocation or a free allocates or panics.

mod big;
mod pool;
#[cfg(not(loom))]
mod pprof;
#[cfg(not(loom))]
mod sampler;
mod shared;
#[cfg(not(loom))]
mod stack;
mod table;
mod weight;

#[cfg(not(loom))]
use crate::sync::Lock;
use crate::sync::Ordering::Relaxed;
#[cfg(not(loom))]
use crate::sync::unmodeled::AtomicBool;
use crate::sync::unmodeled::AtomicU64;
#[cfg(not(loom))]
use std::io;
#[cfg(not(loom))]
use std::path::Path;

#[cfg(not(loom))]
pub(crate) use sampler::{alloc_small, big_due, draw_budgets as thread_started};
// The shared state: the process's (`SHARED`), or a loom model's.
#[cfg(loom)]
pub use shared::{Misuse, Shared};
#[cfg(not(loom))]
pub(crate) use shared::{Misuse, Shared};
#[cfg(not(loom))]
pub(crate) use stack::stack_pointer as here;

/// Frames kept per sample.
pub const MAX_DEPTH: usize = 64;

/// Default mean sampling interval, in bytes.
pub const DEFAULT_SAMPLE: u64 = 512 * 1024;

/// Whether new allocations are sampled.
#[cfg(not(loom))]
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Mean bytes between samples (at least 1).
static INTERVAL: AtomicU64 = AtomicU64::new(DEFAULT_SAMPLE);
/// Where `SLABPOOL_PROF_DUMP` asked for a profile at exit (NUL-terminated).
#[cfg(not(loom))]
static DUMP_PATH: Lock<[u8; 1024]> = Lock::new([0; 1024]);

/// The sampled blocks, the stacks, and what the free paths read of them.
#[cfg(not(loom))]
static SHARED: Shared = Shared::new();

/// Figures of the profiler (no allocation).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProfStats {
    /// Whether new allocations are sampled.
    pub active: bool,
    /// Mean bytes between samples.
    pub sample_interval: u64,
    /// Sampled blocks not yet freed.
    pub live_samples: u64,
    /// Estimated bytes of the live heap (sampled blocks, scaled).
    pub live_bytes: f64,
    /// The standard deviation of that estimate (from the live samples'
    /// weights: about `live_bytes / sqrt(live_samples)` for small blocks,
    /// little for blocks much larger than the interval).
    pub live_bytes_sd: f64,
    /// Estimated live bytes at the last peak since start or `reset_peak`.
    pub peak_bytes: f64,
    /// Estimated bytes allocated since profiling started.
    pub alloc_bytes: f64,
    /// Samples taken since profiling started.
    pub samples: u64,
    /// Distinct stacks recorded.
    pub stacks: usize,
    /// Samples not taken: the stack table or the pool was full.
    pub dropped: u64,
    /// Bytes usable in the sampled small blocks live now (they live in the
    /// profiler's pool, outside [`crate::stats`]; sampled large and huge
    /// blocks are the heap's).
    pub pool_bytes: usize,
}

/// Starts sampling new allocations. False if the profiler's memory could
/// not be mapped (then nothing is sampled).
#[cfg(not(loom))]
pub fn activate() -> bool {
    let ok = SHARED.init();
    if ok {
        stack::refresh_pid();
        ACTIVE.store(true, Relaxed);
        sampler::GENERATION.fetch_add(1, Relaxed);
    }
    ok
}

/// Stops sampling new allocations; the blocks sampled so far are still
/// followed until they are freed.
#[cfg(not(loom))]
pub fn deactivate() {
    ACTIVE.store(false, Relaxed);
    sampler::GENERATION.fetch_add(1, Relaxed);
}

/// Whether new allocations are sampled.
#[cfg(not(loom))]
#[inline(always)]
pub fn is_active() -> bool {
    ACTIVE.load(Relaxed)
}

/// Mean bytes between samples.
pub fn sample_interval() -> u64 {
    INTERVAL.load(Relaxed)
}

/// Sets the mean bytes between samples (at least 1); threads pick it up at
/// their next sample.
pub fn set_sample_interval(bytes: u64) {
    INTERVAL.store(bytes.max(1), Relaxed);
}

/// Makes the current live heap the peak (the peak profile then follows the
/// highest point from now on).
#[cfg(not(loom))]
pub fn reset_peak() {
    SHARED.reset_peak();
}

/// The profiler's figures.
#[cfg(not(loom))]
pub fn stats() -> ProfStats {
    let mut st = SHARED.stats();
    st.active = is_active();
    st.sample_interval = sample_interval();
    st
}

/// Which snapshot a profile shows as in use.
#[cfg(not(loom))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The sampled blocks live now.
    Live,
    /// The live blocks at the heap's highest point since start or the last
    /// [`reset_peak`].
    Peak,
}

#[cfg(not(loom))]
/// The profile as gzip-compressed pprof protobuf: sample types
/// `alloc_objects`, `alloc_space` (since profiling started), `inuse_objects`
/// and `inuse_space` (live now, or at the peak), the process's mappings
/// with their GNU build IDs, unsymbolized addresses.
pub fn profile(which: Which) -> io::Result<Vec<u8>> {
    let entries = snapshot();
    pprof::encode(&entries, which, sample_interval())
}

#[cfg(not(loom))]
/// Writes the live profile to `path` (see [`profile`]).
pub fn dump(path: impl AsRef<Path>) -> io::Result<()> {
    std::fs::write(path, profile(Which::Live)?)
}

#[cfg(not(loom))]
/// Writes the peak profile to `path` (see [`profile`]).
pub fn dump_peak(path: impl AsRef<Path>) -> io::Result<()> {
    std::fs::write(path, profile(Which::Peak)?)
}

#[cfg(not(loom))]
/// A copy of the table's entries, taken under the lock into a vector
/// allocated outside it (an allocation may be sampled, which takes it).
fn snapshot() -> Vec<table::Entry> {
    let mut want = SHARED.stacks() + 64;
    loop {
        let mut v: Vec<table::Entry> = Vec::with_capacity(want);
        let copied = SHARED.copy_table(&mut v);
        if copied {
            return v;
        }
        want *= 2;
    }
}

/// Whether `p` is a sampled small block's address (or inside the pool): a
/// flag load while the pool was never used.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn owns(p: *const u8) -> bool {
    SHARED.owns(p)
}

#[cfg(not(loom))]
impl From<Misuse> for crate::lookup::Invalid {
    fn from(m: Misuse) -> Self {
        match m {
            Misuse::Freed => crate::lookup::Invalid::DoubleFree,
            Misuse::NotBlock => crate::lookup::Invalid::Interior,
        }
    }
}

/// Frees `p`, a live sampled block.
///
/// # Safety
/// `p` must be in the pool ([`owns`]); if it is a live block, the caller
/// gives it up.
#[cfg(not(loom))]
#[cold]
#[inline(never)]
pub(crate) unsafe fn free(p: *mut u8) -> Result<(), Misuse> {
    // SAFETY: forwarded contract.
    unsafe { SHARED.free_small(p) }
}

/// The program freed `p`, a live sampled small block, which the allocator
/// still holds a while (the hardened build's quarantine): its sample ends
/// now; [`free`] (or `release`) gives its slot back later. Aborts with a
/// message if it is not a live sampled block (`call` names the caller).
#[cfg(all(feature = "hardened", not(loom)))]
pub(crate) fn end_sample(call: &str, p: *mut u8) {
    if let Err(why) = SHARED.end(p) {
        crate::lookup::invalid(call, p, why.into());
    }
}

/// Frees `p`, a sampled block a thread cache held (`GlobalAlloc`'s free
/// pushed it there); aborts with a message if it is not a live one.
#[cfg(not(loom))]
pub(crate) fn release(p: *mut u8) {
    // SAFETY: `p` is in the pool (the caller checked `owns`), given up by
    // the program when it was freed into the cache.
    if let Err(why) = unsafe { free(p) } {
        crate::lookup::invalid("dealloc", p, why.into());
    }
}

/// The size classes whose thread-cache bins may hold a sampled small block
/// that `GlobalAlloc`'s free pushed there (a bit per class): the bins a
/// walk for such blocks must look at ([`scrub_cache`]). A
/// walk of the pool's records under the profiler's lock, or all classes
/// when the pool used more than `at_most` slots (the bins' walk is then
/// the shorter: pass the blocks the cache holds).
#[cfg(not(loom))]
fn cached_classes(at_most: usize) -> u64 {
    SHARED.cached_classes(at_most)
}

/// Sets aside the sampled blocks waiting in `tc`'s bins (its outcasts,
/// for the caller to hand back): a walk of the bins of the classes the
/// pool's records name ([`cached_classes`]), at most every bin.
#[cfg(not(loom))]
pub(crate) fn scrub_cache(tc: &mut crate::tcache::ThreadCache) {
    tc.scrub_classes(cached_classes(tc.cached_blocks()));
}

/// Resizes `p`, a sampled small block, to `size` bytes where it lies if
/// its slot has room (it keeps its sample, reweighed: see
/// `weight::reweigh`); false otherwise (the caller moves it).
#[cfg(not(loom))]
pub(crate) fn resize(p: *mut u8, size: usize) -> bool {
    SHARED.resize_small(p, size, sample_interval())
}

/// Whether a sampled large or huge block is live: [`big_freed`] and
/// [`big_resized`] look their block up only then.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn big_live() -> bool {
    SHARED.big_live()
}

/// Records `p`, a large or huge block of `size` bytes just allocated, as
/// sampled, with the stack above `above` (the stack pointer of the
/// allocator's outermost function); nothing if the table is full.
#[cfg(not(loom))]
#[inline(never)]
pub(crate) fn record_big(p: *mut u8, size: usize, above: usize) {
    let mut frames = [0usize; MAX_DEPTH];
    let depth = stack::capture(&mut frames, above);
    SHARED.record_big(p, &frames[..depth], size, sample_interval());
}

/// `p`, a large or huge block, is freed: its sample (if it is one) ends.
/// One load inline while no sampled large or huge block is live.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn big_freed(p: *mut u8) {
    if big_live() {
        sample_of_big_ends(p);
    }
}

/// [`big_freed`] past its check: the table is looked up.
#[cfg(not(loom))]
#[inline(never)]
fn sample_of_big_ends(p: *mut u8) {
    SHARED.big_freed(p);
}

/// `p`, a large or huge block of `old` bytes, was resized by the heap to
/// `new` bytes at `q` (`p` itself or not): a sampled block keeps its
/// sample, reweighed and moved to `q`; an unsampled one that grew is
/// charged its growth on the countdown (see `sampler::grown`) and sampled
/// if that crosses it (with the stack above `above`).
#[cfg(not(loom))]
#[inline(never)]
pub(crate) fn big_resized(
    tc: &mut crate::tcache::ThreadCache,
    (p, old): (*mut u8, usize),
    (q, new): (*mut u8, usize),
    above: usize,
) {
    if big_live() && SHARED.big_moved(p, q, new, sample_interval()) {
        return;
    }
    if new > old && sampler::grown(tc, new - old) {
        record_big(q, new, above);
    }
}

/// Bytes usable at `p`, a live sampled block.
#[cfg(not(loom))]
pub(crate) fn usable_size(p: *const u8) -> Result<usize, Misuse> {
    SHARED.usable_size(p)
}

/// Settings from the environment (`config`), at the one-time setup.
#[cfg(not(loom))]
pub(crate) fn configure(start: bool, sample: Option<u32>, dump_path: Option<&[u8]>) {
    if let Some(n) = sample {
        set_sample_interval(u64::from(n));
    }
    if let Some(path) = dump_path
        && !path.is_empty()
        && path.len() < 1024
    {
        DUMP_PATH.with(|buf| {
            buf[..path.len()].copy_from_slice(path);
            buf[path.len()] = 0;
        });
        // SAFETY: an `extern "C"` fn without arguments.
        unsafe { libc::atexit(dump_at_exit) };
    }
    if start {
        activate();
    }
}

/// `atexit` handler for `SLABPOOL_PROF_DUMP=path`: the live profile to
/// `path`, the peak profile to `path.peak`.
#[cfg(not(loom))]
extern "C" fn dump_at_exit() {
    let buf = DUMP_PATH.with(|b| *b);
    let len = buf.iter().position(|&c| c == 0).unwrap_or(0);
    let Ok(path) = core::str::from_utf8(&buf[..len]) else {
        return;
    };
    if dump(path).is_err() || dump_peak(format!("{path}.peak")).is_err() {
        crate::os::warn(b"could not write the heap profile (SLABPOOL_PROF_DUMP)");
    }
}

/// Takes the profiler's lock across `fork` (see `global::fork_prepare`).
///
/// # Safety
/// As `Lock::force_lock`: [`fork_unlock`] must follow once.
#[cfg(not(loom))]
pub(crate) unsafe fn fork_lock() {
    // SAFETY: forwarded contract.
    unsafe { SHARED.fork_lock() }
}

/// Releases the lock taken by [`fork_lock`]; in the child, learns its pid.
///
/// # Safety
/// The lock must be held through [`fork_lock`].
#[cfg(not(loom))]
pub(crate) unsafe fn fork_unlock(child: bool) {
    // SAFETY: forwarded contract.
    unsafe { SHARED.fork_unlock() };
    if child {
        stack::refresh_pid();
    }
}

/// Records a sampled allocation: `usable` bytes at `align` from the pool,
/// charged `bytes` on the countdown, with the stack above `above` (the
/// stack pointer of the allocator's outermost function). Null when the pool
/// or the table is full.
#[cfg(not(loom))]
#[inline(never)]
fn record(bytes: usize, usable: usize, align: usize, zero: bool, above: usize) -> *mut u8 {
    let mut frames = [0usize; MAX_DEPTH];
    let depth = stack::capture(&mut frames, above);
    let sample = (bytes, usable, align, zero);
    SHARED.record_small(&frames[..depth], sample, sample_interval())
}

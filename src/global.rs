//! The global allocator: the process's heap and the thread caches (where a
//! thread's cache lives is in `global/tls.rs`; the process's and threads'
//! lifecycle, set-up, thread exit and `fork`, in `global/lifecycle.rs`).
//!
//! This module holds the allocator's state: `HEAP`, the process's heap,
//! and `TCACHE`, each thread's cache. Other process-wide statics are each
//! one fact owned by its layer and set once or kept by it alone: the
//! settings (`config`), the free-list secret (`block`), the chunk registry
//! (`registry`), the guard pool and its fault handler (`guard`), the
//! whether decommit works (`os`), the hardened build's carve counter
//! (`carve_order`); `size_class` holds only tables computed at compile
//! time.
//!
//! `TCACHE` is a
//! `thread_local!` with a `const` initialiser and no destructor, so reaching
//! it is a single thread-pointer-relative address and is valid at any point
//! of a thread's life. Thread exit is caught by a `pthread_key_create`
//! destructor, registered on a thread's first slow path, which flushes the
//! cache to the central pools and marks it dead: an allocation or free that
//! comes later (another destructor running late) goes straight to the
//! central pools.
//!
//! The same one-time setup applies the configuration (`config`: the one in
//! the `SlabPool` value whose allocation came first, then the environment
//! over it), registers
//! `pthread_atfork` handlers that hold every heap lock across `fork`, and,
//! with `SLABPOOL_SHOW_STATS=1`, an `atexit` handler printing statistics.
//!
//! A shared object that uses slabpool (a Rust `cdylib` plugin with
//! `#[global_allocator]`) pins itself in memory at that setup (see
//! [`pin_library`]): the key destructor, the fork handlers and every thread
//! cache point into it, so a `dlclose` must not unmap it.
//!
//! Routing mirrors between `alloc` and `dealloc`: both derive the route from
//! the `Layout`, so a small free never looks at the block's metadata.
//!
//! Guard sampling (`guard`) happens on slow paths only: small allocations
//! of the pointer API (`raw`) when they refill, large allocations of both
//! doors; `dealloc` of a large block asks the registry whether it is a
//! guarded one once the guard pool is in use.

#[cfg_attr(feature = "hardened", allow(unused_imports))]
use crate::backend::{Backend, LARGE_LIMIT, Route, copy_small, route};
use crate::block;
use crate::config::Config;
use crate::guard;
#[cfg(any(feature = "prof", feature = "hardened"))]
use crate::os;
#[cfg(not(feature = "hardened"))]
use crate::pool::SlabPool;
use crate::size_class::SizeClass;
use crate::stats::Stats;
use crate::tcache::CacheState;
#[cfg_attr(feature = "hardened", allow(unused_imports))]
use core::alloc::{GlobalAlloc, Layout};
#[cfg(not(feature = "hardened"))]
use core::ptr;

// Zero bytes must read as a fresh cache (see `initial_exec`).
const _: () = assert!(CacheState::Uninit as u8 == 0);

/// The configuration of the doors that carry none: the pointer API (`raw`,
/// the C library's) and the paths that free, which never come first (a
/// process allocates before it frees, and its first allocation applied its
/// configuration).
pub(crate) const DEFAULTS: Config = Config::new();

static HEAP: Backend = Backend::new();

mod lifecycle;
mod tls;
use lifecycle::activate;
pub use lifecycle::print_stats;
pub(crate) use tls::tcache;

/// The process heap (for the pointer-only API in `raw`).
#[inline(always)]
pub(crate) fn heap() -> &'static Backend {
    &HEAP
}

/// Returns free memory to the OS now: the calling thread's cache, the
/// central pools' transfer stacks, empty slabs, the free pages of sparse
/// slabs and of segments, and empty segments. Other threads flush their
/// caches at their next slow path.
///
/// ```
/// #[global_allocator]
/// static GLOBAL: slabpool::SlabPool = slabpool::SlabPool;
///
/// fn main() {
///     let blocks: Vec<Vec<u8>> = (0..10_000).map(|_| vec![1; 1000]).collect();
///     drop(blocks);
///     slabpool::collect();
///     let s = slabpool::stats();
///     assert!(s.committed <= s.mapped);
/// }
/// ```
pub fn collect() {
    // SAFETY: the only reference to the thread's cache in this call.
    let tc = unsafe { tcache() };
    if tc.state() == CacheState::Active {
        flush_cache(tc);
    }
    HEAP.collect();
}

/// Sends every block of `tc` back to the central pools (thread exit,
/// `collect`), and the profiler's sampled blocks among them back to it:
/// only the bins of the classes the profiler's records name are walked for
/// them (a thread's cache may hold tens of thousands of blocks, mostly
/// not in the processor's caches any more).
pub(crate) fn flush_cache(tc: &mut crate::tcache::ThreadCache) {
    #[cfg(feature = "prof")]
    {
        crate::prof::scrub_cache(tc);
        tc.flush_scrubbed(&HEAP);
    }
    #[cfg(not(feature = "prof"))]
    tc.flush_all(&HEAP);
    release_outcasts(tc);
}

/// Hands the sampled blocks a flush found in `tc`'s bins back to the
/// profiler (`GlobalAlloc`'s free pushed them there; see `tcache::bin`).
#[inline]
pub(crate) fn release_outcasts(tc: &mut crate::tcache::ThreadCache) {
    #[cfg(feature = "prof")]
    if tc.has_outcasts() {
        let mut blocks = tc.take_outcasts();
        while let Some(b) = blocks.pop() {
            // SAFETY: a block of a bin that is not in a segment is one the
            // program freed there: a sampled block, or an invalid pointer
            // that `free_sampled` reports.
            unsafe { free_sampled("dealloc", b.cast()) };
        }
    }
    #[cfg(not(feature = "prof"))]
    let _ = tc;
}

/// Checks the calling thread's cache (see `testing::fuzzing::check_thread_cache`).
#[cfg(any(fuzzing, feature = "invariants"))]
pub(crate) fn check_thread_cache() -> crate::backend::CacheCounts {
    // SAFETY: the only reference to the thread's cache in this call.
    unsafe { tcache() }.check(&HEAP)
}

/// A snapshot of the allocator's counters (no allocation).
///
/// ```
/// #[global_allocator]
/// static GLOBAL: slabpool::SlabPool = slabpool::SlabPool;
///
/// fn main() {
///     let v = vec![0u64; 100_000];
///     let s = slabpool::stats();
///     assert!(s.allocated >= 800_000 && s.allocated <= s.active);
///     println!("{} bytes mapped, {} committed", s.mapped, s.committed);
///     drop(v);
/// }
/// ```
pub fn stats() -> Stats {
    HEAP.stats()
}

#[cold]
#[inline(never)]
fn alloc_small_slow(class: usize, config: &Config) -> *mut u8 {
    // SAFETY: the only reference to the thread's cache in this call.
    let tc = unsafe { tcache() };
    if tc.state() == CacheState::Active || activate(tc, config) {
        // The profiler's budget of the class (see `prof::sampler`).
        #[cfg(feature = "prof")]
        let p = {
            let size = crate::size_class::CLASSES[class].size as usize;
            // A class's blocks are aligned to its size's power-of-two factor.
            let align = 1 << size.trailing_zeros().min(os::PAGE_SHIFT);
            let above = crate::prof::here();
            crate::prof::alloc_small(tc, &HEAP, class, size, align, false, above)
        };
        #[cfg(not(feature = "prof"))]
        let p = tc.refill(&HEAP, class);
        release_outcasts(tc);
        return p;
    }
    HEAP.alloc_block(class, 0)
}

#[cold]
#[inline(never)]
fn dealloc_small_slow(p: *mut u8, class: SizeClass) {
    // SAFETY: the only reference to the thread's cache in this call.
    let tc = unsafe { tcache() };
    if tc.state() == CacheState::Active || activate(tc, &DEFAULTS) {
        // A sampled block the fast path found no room for.
        #[cfg(feature = "prof")]
        if sampled(p) {
            // SAFETY: the caller gives up `p`, in the profiler's pool.
            return unsafe { free_sampled("dealloc", p) };
        }
        // SAFETY: `p` is a live block of `class` given up by the caller.
        unsafe { tc.overflow(&HEAP, class, p) };
        release_outcasts(tc);
        return;
    }
    // SAFETY: as above.
    unsafe { HEAP.free_block(class.index(), p) };
}

/// The arena for a large request from this thread.
fn home_arena(config: &Config) -> usize {
    // SAFETY: the only reference to the thread's cache in this call.
    let tc = unsafe { tcache() };
    if tc.state() == CacheState::Active || activate(tc, config) {
        tc.arena()
    } else {
        0
    }
}

/// The pointer API's slow path of a small allocation (`size` bytes at
/// `align`, of `class`): a guarded block when the thread's sampling
/// countdown is due, else a refill, whose blocks count down.
#[cold]
#[inline(never)]
fn alloc_small_sampled_slow(class: usize, size: usize, align: usize) -> *mut u8 {
    // SAFETY: the only reference to the thread's cache in this call.
    let tc = unsafe { tcache() };
    if tc.state() == CacheState::Active || activate(tc, &DEFAULTS) {
        if tc.sample_due() {
            // Counted even if the pool has no room: a full pool is not
            // asked again at every slow path.
            tc.sampled();
            let p = guard::alloc(size, align);
            if !p.is_null() {
                return p;
            }
        }
        #[cfg(feature = "prof")]
        let p = {
            let above = crate::prof::here();
            crate::prof::alloc_small(tc, &HEAP, class, size, align, true, above)
        };
        #[cfg(not(feature = "prof"))]
        let p = tc.refill_counted(&HEAP, class);
        release_outcasts(tc);
        return p;
    }
    HEAP.alloc_block(class, 0)
}

// Every large request within the guard pool's reach may be sampled.
const _: () = assert!(guard::MAX_BLOCK == LARGE_LIMIT);

/// A large or huge block for `layout` (zeroed if `zero`); `config` is
/// applied if this is the process's first allocation.
#[inline(never)]
pub(crate) fn alloc_big(layout: Layout, zero: bool, config: &Config) -> *mut u8 {
    let home = home_arena(config);
    let (size, align) = (layout.size(), layout.align());
    // SAFETY: the only reference to the thread's cache in this call.
    let tc = unsafe { tcache() };
    if tc.state() == CacheState::Active && guard::eligible(size, align) {
        tc.count_unguarded(1);
        if tc.sample_due() {
            tc.sampled();
            // Guarded blocks read as zero.
            let p = guard::alloc(size, align);
            if !p.is_null() {
                return p;
            }
        }
    }
    // The profiler samples a large or huge block where the heap puts it.
    #[cfg(feature = "prof")]
    if tc.state() == CacheState::Active && crate::prof::big_due(tc, size) {
        let p = HEAP.alloc_big(size, align, zero, home);
        if !p.is_null() {
            crate::prof::record_big(p, size, crate::prof::here());
        }
        return p;
    }
    HEAP.alloc_big(size, align, zero, home)
}

/// Frees `p`, a live large or huge block allocated with `layout` (maybe
/// guarded).
///
/// # Safety
/// As `GlobalAlloc::dealloc`, for a layout that does not route small.
#[inline(never)]
#[cfg_attr(feature = "hardened", allow(dead_code))]
unsafe fn dealloc_big(p: *mut u8, layout: Layout) {
    // A sampled block's sample ends (one load while none is live).
    #[cfg(feature = "prof")]
    crate::prof::big_freed(p);
    if guard::owns(p) {
        // SAFETY: the caller gives up `p`.
        if let Err(why) = unsafe { guard::free(p) } {
            crate::lookup::invalid("dealloc", p, why.into());
        }
        return;
    }
    // SAFETY: `p` was allocated with this layout, so routes the same.
    unsafe { HEAP.free_big(p, layout.size(), layout.align()) }
}

/// A block of `class`: the fast path, then the slow one (which applies
/// `config` if this is the process's first allocation). Its link word is
/// cleared (`block::handed_out`), as the pointer API's are: such a block
/// may be freed through that API, whose double-free check reads it.
#[inline(always)]
pub(crate) fn alloc_small(class: SizeClass, config: &Config) -> *mut u8 {
    // SAFETY: the only reference to the thread's cache in this call.
    let p = unsafe { tcache() }.pop(class);
    if !p.is_null() {
        return block::handed_out(p);
    }
    block::handed_out(alloc_small_slow(class.index(), config))
}

/// A block of `class` for `size` bytes at `align` (which route to it), for
/// the pointer API: as [`alloc_small`] (its link word cleared), sampled for
/// the guard pool on the slow path (a block a program frees by address
/// alone, so that `free` finds it in the pool).
#[inline(always)]
pub(crate) fn alloc_small_sampled(class: SizeClass, size: usize, align: usize) -> *mut u8 {
    // SAFETY: the only reference to the thread's cache in this call.
    let p = unsafe { tcache() }.pop(class);
    if !p.is_null() {
        return block::handed_out(p);
    }
    block::handed_out(alloc_small_sampled_slow(class.index(), size, align))
}

/// Frees `p`, a live block of `class`: the fast path, then the slow one.
///
/// # Safety
/// `p` must be a live block of `class`, given up by the caller.
#[inline(always)]
pub(crate) unsafe fn dealloc_small(p: *mut u8, class: SizeClass) {
    // A sampled block of the heap profiler goes to the bin like any other:
    // its address, below the thread caches' floor, makes the next `pop` of
    // the bin or its flush hand it back (see `tcache::bin`).
    // SAFETY: forwarded contract; the only reference to the thread's cache
    // in this call.
    if unsafe { tcache().push(class, p) } {
        return;
    }
    dealloc_small_slow(p, class);
}

/// Frees `p`, a sampled block of the heap profiler; aborts with a message
/// if it is not a live one (`call` names the caller).
///
/// # Safety
/// `p` lies in the profiler's pool; if it is live, the caller gives it up.
#[cfg(feature = "prof")]
#[cold]
#[inline(never)]
pub(crate) unsafe fn free_sampled(call: &str, p: *mut u8) {
    // SAFETY: forwarded contract.
    if let Err(why) = unsafe { crate::prof::free(p) } {
        crate::lookup::invalid(call, p, why.into());
    }
}

/// Tells the profiler that the large or huge block `p` of `old` bytes now
/// has `new` bytes at `q` (see `prof::big_resized`).
#[cfg(feature = "prof")]
#[inline(never)]
pub(crate) fn big_resized(p: (*mut u8, usize), q: (*mut u8, usize)) {
    // SAFETY: the only reference to the thread's cache in this call.
    let tc = unsafe { tcache() };
    if tc.state() == CacheState::Active {
        crate::prof::big_resized(tc, p, q, crate::prof::here());
    }
}

/// Whether `p` is a sampled block of the heap profiler (never, without it).
#[inline(always)]
#[cfg_attr(feature = "hardened", allow(dead_code))]
pub(crate) fn sampled(p: *const u8) -> bool {
    #[cfg(feature = "prof")]
    return crate::prof::owns(p);
    #[cfg(not(feature = "prof"))]
    {
        let _ = p;
        false
    }
}

/// Whether `p` is among the blocks of `class` in the calling thread's
/// cache (a walk).
#[cfg(all(feature = "prof", any(fuzzing, feature = "invariants")))]
pub(crate) fn cached(p: *const u8, class: usize) -> bool {
    // SAFETY: the only reference to the thread's cache in this call.
    unsafe { tcache() }.holds(class, p)
}

/// Whether `p`, a block of `class`, is free: in the calling thread's cache
/// or in the central pool owning it (a walk, for the C door's double-free
/// confirmation).
///
/// # Safety
/// `p` must be a block of a slab of `class` in a live segment, or (the
/// `prof` build) a sampled small block of `class`.
pub(crate) unsafe fn is_free(p: *const u8, class: usize) -> bool {
    // A quarantined block: marked (whichever thread holds it), or in this
    // thread's ring.
    #[cfg(feature = "hardened")]
    // SAFETY: a block of a live segment holds at least 8 bytes; the only
    // reference to the thread's cache in this call.
    if unsafe { crate::quarantine::is_marked(p) || tcache().quarantine_holds(p) } {
        return true;
    }
    // SAFETY: the only reference to the thread's cache in this call.
    if unsafe { tcache() }.holds(class, p) {
        return true;
    }
    // A sampled block is in no central pool: its slot says.
    #[cfg(feature = "prof")]
    if sampled(p) {
        return crate::prof::usable_size(p).is_err();
    }
    // SAFETY: the pool's walk by the forwarded contract.
    unsafe { HEAP.holds_free(class, p) }
}

/// Frees `p`, a live block of `class`, after a delay: it goes to the
/// thread's quarantine, and the block that leaves it is freed for real
/// (the hardened build's delayed reuse: see `quarantine`). A thread
/// without a cache (exiting) frees it at once. `finish` runs last on every
/// path but that one, where it runs before `p` is freed (the hardened
/// build clears the bytes of `p` past those the quarantine checks there:
/// a `memset`, which as the last call is a jump, so that the common path
/// keeps no value across a call and needs no callee-saved register nor a
/// stack frame; `p` is in the ring meanwhile, which only this thread
/// reads). Every other call is a jump to a cold path too. Keeps `errno`:
/// only the cold paths may make system calls, and they restore it, so the
/// hardened C `free` of a small block need not save it.
///
/// # Safety
/// `p` must be a live block of `class`, given up by the caller; `finish`
/// may write `p`'s bytes only.
#[cfg(feature = "hardened")]
#[inline(always)]
pub(crate) unsafe fn dealloc_small_delayed(p: *mut u8, class: SizeClass, finish: impl FnOnce()) {
    // SAFETY: the only reference to the thread's cache in this call.
    let tc = unsafe { tcache() };
    if tc.state() != CacheState::Active {
        // SAFETY: forwarded contract.
        return unsafe { dealloc_delayed_slow(p, class, finish) };
    }
    // SAFETY: forwarded contract.
    let Some((old, old_class)) = (unsafe { tc.quarantine(p, class) }) else {
        return finish();
    };
    // SAFETY: `old` left the quarantine, a block of `old_class`.
    if !unsafe { crate::quarantine::untouched(old, old_class) } {
        // SAFETY: as above.
        return unsafe { dealloc_left_written(old, old_class, finish) };
    }
    // SAFETY: checked: a live block of its class that the program gave up.
    unsafe { dealloc_left(tc, old, old_class, finish) }
}

/// Frees `old`, a checked block that left the quarantine, into `tc` (or
/// the slow way when the bin is full), then runs `finish`.
///
/// # Safety
/// `old` must be a live block of `class` that the program gave up.
#[cfg(feature = "hardened")]
#[inline(always)]
unsafe fn dealloc_left(
    tc: &mut crate::tcache::ThreadCache,
    old: *mut u8,
    class: SizeClass,
    finish: impl FnOnce(),
) {
    // SAFETY: forwarded contract.
    if !unsafe { tc.push(class, old) } {
        return dealloc_left_slow(old, class, finish);
    }
    finish()
}

/// [`dealloc_small_delayed`] when the block leaving the quarantine does
/// not read as it was left: reported (the process stops) if it was written
/// indeed, else freed.
///
/// # Safety
/// `old` must have left the quarantine, a block of `class`.
#[cfg(feature = "hardened")]
#[cold]
#[inline(never)]
unsafe fn dealloc_left_written(old: *mut u8, class: SizeClass, finish: impl FnOnce()) {
    // SAFETY: forwarded contract; not written (else the process stopped):
    // a live block of `class` the program gave up. The only reference to
    // the thread's cache in this call.
    unsafe {
        crate::quarantine::report_written(old, class);
        dealloc_left(tcache(), old, class, finish)
    }
}

/// [`dealloc_small_delayed`] when the thread cache cannot take the block
/// leaving the quarantine.
#[cfg(feature = "hardened")]
#[cold]
#[inline(never)]
fn dealloc_left_slow(old: *mut u8, class: SizeClass, finish: impl FnOnce()) {
    {
        let _errno = os::SavedErrno::new();
        dealloc_small_slow(old, class);
    }
    finish()
}

/// [`dealloc_small_delayed`] when the thread's cache is not active: it
/// is activated first (or, for an exiting thread, `p` is freed at once,
/// after `finish`).
///
/// # Safety
/// As for [`dealloc_small_delayed`].
#[cfg(feature = "hardened")]
#[cold]
#[inline(never)]
unsafe fn dealloc_delayed_slow(p: *mut u8, class: SizeClass, finish: impl FnOnce()) {
    let _errno = os::SavedErrno::new();
    // SAFETY: the only reference to the thread's cache in this call.
    let tc = unsafe { tcache() };
    if activate(tc, &DEFAULTS) {
        // SAFETY: forwarded contract.
        if let Some((old, old_class)) = unsafe { tc.quarantine(p, class) } {
            // SAFETY: a block leaving the quarantine, checked, is a live
            // block of its class that the program gave up.
            unsafe {
                crate::quarantine::check_untouched(old, old_class);
                dealloc_small(old, old_class);
            }
        }
        return finish();
    }
    finish();
    // SAFETY: forwarded contract.
    unsafe { dealloc_small(p, class) }
}

// SAFETY: `alloc` returns blocks of at least `layout.size()` bytes aligned
// to `layout.align()` (size classes are naturally aligned, larger alignments
// are honoured by spans and mappings), never handed out twice while live;
// `dealloc` routes by the same layout as `alloc` did. (The hardened build
// has its own: `hardened`.)
#[cfg(not(feature = "hardened"))]
unsafe impl GlobalAlloc for SlabPool {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match route(layout.size(), layout.align()) {
            Route::Small(class) => alloc_small(class, self.config()),
            _ => alloc_big(layout, false, self.config()),
        }
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        match route(layout.size(), layout.align()) {
            // SAFETY: the caller gives up `p`, a live block of `class`.
            Route::Small(class) => unsafe { dealloc_small(p, class) },
            // SAFETY: `p` was allocated with this layout, so routes the same.
            _ => unsafe { dealloc_big(p, layout) },
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match route(layout.size(), layout.align()) {
            Route::Small(class) => {
                let p = alloc_small(class, self.config());
                if !p.is_null() {
                    // SAFETY: `p` is a fresh block of at least `size` bytes.
                    unsafe { p.write_bytes(0, layout.size()) };
                }
                p
            }
            // Large and huge memory fresh from the OS is not cleared again.
            _ => alloc_big(layout, true, self.config()),
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        let old = route(layout.size(), align);
        let new = route(new_size, align);
        match (old, new) {
            (Route::Small(a), Route::Small(b)) => {
                // The common case (a growing `Vec` or `String`): the classes
                // are known, so neither the allocation nor the free routes
                // again.
                if a == b {
                    return p;
                }
                let q = alloc_small(b, self.config());
                if !q.is_null() {
                    // SAFETY: both blocks hold at least the bytes copied (the
                    // smaller class size, or the smaller request) and are
                    // distinct; `p` is a live block of class `a` that the
                    // caller gives up.
                    unsafe {
                        copy_small(q, p, a.min(b).index(), layout.size().min(new_size));
                        dealloc_small(p, a);
                    }
                }
                return q;
            }
            // A guarded block moves (below): it has no span to resize.
            (Route::Large, Route::Large) | (Route::Huge, Route::Huge) if !guard::owns(p) => {
                // SAFETY: `p` is a live block of this kind and alignment.
                let q = unsafe { HEAP.resize_big(p, new_size, align) };
                if !q.is_null() {
                    #[cfg(feature = "prof")]
                    big_resized((p, layout.size()), (q, new_size));
                    return q;
                }
            }
            _ => {}
        }
        // SAFETY: `new_size` with `align` forms a valid layout (the caller's
        // contract for realloc).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, align) };
        // SAFETY: a valid non-zero layout.
        let q = unsafe { self.alloc(new_layout) };
        if !q.is_null() {
            let keep = layout.size().min(new_size);
            // SAFETY: both blocks hold at least `keep` bytes and are distinct.
            unsafe {
                ptr::copy_nonoverlapping(p, q, keep);
                self.dealloc(p, layout);
            }
        }
        q
    }
}

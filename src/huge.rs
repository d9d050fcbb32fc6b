//! Huge blocks: one chunk-aligned mapping each, for requests above the
//! large limit.
//!
//! Layout: the block starts at an address aligned as requested (at least a
//! page), and its header sits in the page right before it, so the header is
//! found from the block pointer alone. The mapping starts at the chunk
//! (4 MiB) holding the header and ends at a chunk boundary, so it covers
//! whole chunks and is recorded in the [`registry`]: a bare pointer can be
//! checked against it (C's `free`) and the header read safely. The tail
//! past the block is never touched until used, so costs address space only;
//! it is usable (`malloc_usable_size` reports it) and lets a `realloc` grow
//! in place.
//!
//! Freed mappings, and the chunks a shrinking block no longer needs, go to
//! the [`HugeCache`] (runs of chunks, split and merged, under the adaptive
//! purge policy), which serves later huge requests of any size and lets a
//! block grow in place into the run right after it; `collect` unmaps it.
//! A growth the cache cannot serve moves the pages with `mremap` (no copy
//! through user space): in place when the address space after the mapping
//! is free, else into a fresh chunk-aligned reservation (`MREMAP_FIXED`).
//! Fresh mappings read as zero, so `alloc_zeroed` clears only reused ones.
//!
//! Invariants: `header.check == MAGIC ^ block address` while the block
//! lives; its mapping `[map_base, map_base + map_len)` is chunk-aligned,
//! chunk-rounded and registered as [`ChunkKind::Huge`].

use crate::huge_cache::HugeCache;
use crate::layout::SEGMENT_SIZE;
use crate::os::{self, PAGE};
use crate::registry::{self, ChunkKind};
use crate::sync::{AtomicUsize, Ordering, const_fn};
use core::ptr;

const MAGIC: usize = 0x6875_6765_626c_6b21; // "hugeblk!"
/// `check` of a freed block (so a second free can say so).
const FREED: usize = 0x6672_6565_6462_6c6b; // "freedblk"

#[repr(C)]
struct HugeHeader {
    /// `MAGIC ^` the block's address.
    check: usize,
    /// The whole mapping.
    map_base: *mut u8,
    map_len: usize,
    /// Bytes requested, rounded up to pages.
    size: usize,
    align: usize,
}

/// The huge blocks of a heap: counters, and the cache of freed mappings.
pub struct Huge {
    /// Live blocks, their page-rounded sizes, and the bytes they map.
    blocks: AtomicUsize,
    bytes: AtomicUsize,
    mapped: AtomicUsize,
    pub cache: HugeCache,
}

/// Counters of the huge blocks and their cache, for statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HugeCounts {
    pub blocks: usize,
    pub bytes: usize,
    /// Live mappings plus cached ones.
    pub mapped: usize,
    /// Cached bytes that may be resident.
    pub cached_dirty: usize,
}

impl Huge {
    const_fn! {
        pub fn new() -> Self {
            Self {
                blocks: AtomicUsize::new(0),
                bytes: AtomicUsize::new(0),
                mapped: AtomicUsize::new(0),
                cache: HugeCache::new(),
            }
        }
    }

    fn add(&self, blocks: usize, bytes: usize, mapped: usize) {
        self.blocks.fetch_add(blocks, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.mapped.fetch_add(mapped, Ordering::Relaxed);
    }

    fn sub(&self, blocks: usize, bytes: usize, mapped: usize) {
        self.blocks.fetch_sub(blocks, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.mapped.fetch_sub(mapped, Ordering::Relaxed);
    }

    pub fn counts(&self) -> HugeCounts {
        let (cached, dirty) = self.cache.bytes();
        HugeCounts {
            blocks: self.blocks.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            mapped: self.mapped.load(Ordering::Relaxed) + cached,
            cached_dirty: dirty,
        }
    }
}

/// Rounds `n` up to pages, `None` on overflow.
fn pages_of(n: usize) -> Option<usize> {
    n.checked_add(PAGE - 1).map(|n| n & !(PAGE - 1))
}

/// A huge block of `size` bytes aligned to `align`, from the cache or a new
/// mapping; zeroed if `zero`. Null on failure.
pub fn alloc(size: usize, align: usize, zero: bool, huge: &Huge) -> *mut u8 {
    let Some(rounded) = pages_of(size) else {
        return ptr::null_mut();
    };
    let align = align.max(PAGE);
    if align < SEGMENT_SIZE {
        // The block sits `align` bytes into the mapping.
        let need = (align + rounded).next_multiple_of(SEGMENT_SIZE);
        if let Some(t) = huge.cache.take(need, zero) {
            debug_assert!(!(zero && t.dirty), "zeroed requests take clean runs");
            let block = t.base.wrapping_add(align);
            // SAFETY: the run is ours, `need` bytes; the block lies in it.
            unsafe { init(block, t.base, need, rounded, align) };
            huge.add(1, rounded, need);
            return block;
        }
    }
    // The mapping starts at a chunk boundary and the block `lead` bytes
    // into it, aligned: `align` bytes in for alignments below a chunk, a
    // chunk in (the header page, and the chunk holding it) for larger
    // ones, whose mapping is placed so that the block is aligned. Only the
    // mapping itself is reserved: an alignment costs address space for a
    // moment (see `os`), not commit charge.
    let (lead, place, offset) = if align < SEGMENT_SIZE {
        (align, SEGMENT_SIZE, 0)
    } else {
        (SEGMENT_SIZE, align, SEGMENT_SIZE % align)
    };
    let Some(map_len) = rounded
        .checked_add(lead)
        .and_then(|n| n.checked_add(SEGMENT_SIZE - 1))
        .map(|n| n & !(SEGMENT_SIZE - 1))
    else {
        return ptr::null_mut();
    };
    let Some(map_base) = os::reserve_placed(map_len, place, offset) else {
        return ptr::null_mut();
    };
    let map_base = map_base.as_ptr();
    let block = map_base.wrapping_add(lead);
    if !registry::register(map_base, map_len, ChunkKind::Huge) {
        // SAFETY: the mapping is ours and unused.
        unsafe { os::release(map_base, map_len) };
        return ptr::null_mut();
    }
    // SAFETY: the mapping is ours; the block lies in it.
    unsafe { init(block, map_base, map_len, rounded, align) };
    huge.add(1, rounded, map_len);
    block
}

/// Writes the header of `block` in mapping `[map_base, map_base + map_len)`.
///
/// # Safety
/// The mapping must be ours and unused, the block `align` bytes into it.
unsafe fn init(block: *mut u8, map_base: *mut u8, map_len: usize, size: usize, align: usize) {
    // SAFETY: the header page lies in the mapping, right before the block.
    unsafe {
        header(block).write(HugeHeader {
            check: MAGIC ^ block as usize,
            map_base,
            map_len,
            size,
            align,
        });
    }
}

/// The header of huge block `p` (not checked).
fn header(p: *mut u8) -> *mut HugeHeader {
    p.wrapping_sub(PAGE).cast::<HugeHeader>()
}

/// What a pointer into a chunk registered as huge is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg(not(loom))]
pub enum Lookup {
    /// The start of a live huge block.
    Live,
    /// The start of a huge block that was freed.
    Freed,
    /// Anything else.
    Other,
}

/// Looks up `p`, which lies in a chunk the registry records as huge (so
/// the page before it is readable when its own chunk is recorded too,
/// which this checks).
#[cfg(not(loom))]
pub fn lookup(p: *mut u8) -> Lookup {
    let h = header(p);
    if p as usize % PAGE != 0 {
        return Lookup::Other;
    }
    match registry::kind_of(h.cast()) {
        ChunkKind::Huge => {}
        ChunkKind::HugeFree => return Lookup::Freed,
        _ => return Lookup::Other,
    }
    // SAFETY: the header's chunk is a huge mapping, wholly readable.
    match unsafe { (*h).check } ^ p as usize {
        MAGIC => Lookup::Live,
        FREED => Lookup::Freed,
        _ => Lookup::Other,
    }
}

/// Whether `p` starts a live huge block (see [`lookup`]).
#[cfg(all(test, not(loom)))]
fn is_block(p: *mut u8) -> bool {
    lookup(p) == Lookup::Live
}

/// Bytes usable at `p`: up to the end of its mapping.
///
/// # Safety
/// `p` must be a live huge block.
#[cfg(not(loom))]
pub unsafe fn usable_size(p: *mut u8) -> usize {
    // SAFETY: by contract `p` has a header.
    let h = unsafe { &*header(p) };
    debug_assert_eq!(h.check, MAGIC ^ p as usize);
    h.map_base as usize + h.map_len - p as usize
}

/// Checks live huge block `p` of at least `size` bytes aligned to `align`:
/// its header, its mapping (whole chunks, all registered as huge).
///
/// # Safety
/// `p` must be a live huge block.
#[cfg(all(any(test, fuzzing, feature = "invariants"), not(loom)))]
pub unsafe fn check_block(p: *mut u8, size: usize, align: usize) {
    // SAFETY: by contract `p` has a header.
    let h = unsafe { &*header(p) };
    assert_eq!(h.check, MAGIC ^ p as usize, "huge {p:p}: header");
    let (base, len) = (h.map_base as usize, h.map_len);
    assert!(
        base % SEGMENT_SIZE == 0 && len % SEGMENT_SIZE == 0,
        "huge {p:p}: mapping"
    );
    assert!(
        p as usize >= base + PAGE && p as usize % align.max(PAGE) == 0,
        "huge {p:p}: placement"
    );
    assert!(
        h.size >= size && p as usize + h.size <= base + len,
        "huge {p:p}: size"
    );
    for c in (base..base + len).step_by(SEGMENT_SIZE) {
        assert_eq!(
            registry::kind_of(c as *const u8),
            ChunkKind::Huge,
            "huge {p:p}: registry"
        );
    }
}

/// Frees huge block `p`: its mapping goes to the cache.
///
/// # Safety
/// `p` must be a live huge block; it is dead afterwards.
pub unsafe fn free(p: *mut u8, huge: &Huge) {
    // SAFETY: by contract `p` has a header, read before anything else.
    let (base, len, size) = unsafe {
        let h = header(p);
        debug_assert_eq!((*h).check, MAGIC ^ p as usize);
        (*h).check = FREED ^ p as usize;
        ((*h).map_base, (*h).map_len, (*h).size)
    };
    huge.sub(1, size, len);
    huge.cache.put(base, len);
}

/// Resizes huge block `p` to `new_size` bytes: in place within its mapping
/// (chunks it no longer needs go to the cache), into the cached run right
/// after it, or by moving the mapping with `mremap`. Returns the (possibly
/// moved) block, or null if the caller must copy.
///
/// # Safety
/// `p` must be a live huge block; if the result is not null and differs
/// from `p`, the old pointer is dead.
pub unsafe fn resize(p: *mut u8, new_size: usize, huge: &Huge) -> *mut u8 {
    let h = header(p);
    // SAFETY: by contract `p` has a header.
    let (map_base, map_len, size, align) =
        unsafe { ((*h).map_base, (*h).map_len, (*h).size, (*h).align) };
    let Some(new_rounded) = pages_of(new_size) else {
        return ptr::null_mut();
    };
    let offset = p as usize - map_base as usize;
    let Some(new_len) = offset
        .checked_add(new_rounded)
        .and_then(|n| n.checked_add(SEGMENT_SIZE - 1))
        .map(|n| n & !(SEGMENT_SIZE - 1))
    else {
        return ptr::null_mut();
    };
    let end = map_base.wrapping_add(map_len);
    let moved = if new_len <= map_len {
        if new_len < map_len {
            huge.cache
                .put(map_base.wrapping_add(new_len), map_len - new_len);
        }
        map_base
    } else if huge.cache.take_at(end, new_len - map_len).is_some() {
        map_base
    } else if huge.cache.has_dirty(new_len) {
        // Copying into resident memory the cache holds costs less than
        // faulting in fresh pages (and keeps the footprint down): let the
        // caller allocate (from that run), copy and free.
        return ptr::null_mut();
    } else {
        // SAFETY: [map_base, map_base + map_len) is exactly this mapping.
        match unsafe { grow_mapping(map_base, map_len, new_len, align) } {
            Some(q) => q,
            None => return ptr::null_mut(),
        }
    };
    let q = moved.wrapping_add(offset);
    // SAFETY: the header moved with the mapping and is ours.
    unsafe {
        let h = header(q);
        (*h).check = MAGIC ^ q as usize;
        (*h).map_base = moved;
        (*h).map_len = new_len;
        (*h).size = new_rounded;
    }
    huge.sub(1, size, map_len);
    huge.add(1, new_rounded, new_len);
    q
}

/// Grows the mapping `[base, base + len)` to `new_len` bytes, moving it to
/// a fresh chunk-aligned place if it cannot grow in place. Returns its new
/// base; `None` if the caller must copy.
///
/// # Safety
/// `[base, base + len)` must be a whole huge mapping made here.
unsafe fn grow_mapping(base: *mut u8, len: usize, new_len: usize, align: usize) -> Option<*mut u8> {
    // In place, when the address space after the mapping is free.
    // SAFETY: forwarded contract; without MREMAP_MAYMOVE nothing moves.
    if let Some(q) = unsafe { os::remap(base, len, new_len, None) } {
        if registry::register(base, new_len, ChunkKind::Huge) {
            return Some(q.as_ptr());
        }
        // SAFETY: shrinking back the part we just grew.
        unsafe { os::release(base.wrapping_add(len), new_len - len) };
        return None;
    }
    if align > SEGMENT_SIZE {
        // A move must keep the block's alignment: copy instead.
        return None;
    }
    // Address space only: the pages that move keep their commit charge,
    // and the growth is charged by `mremap`.
    let target = os::reserve_address(new_len, SEGMENT_SIZE)?.as_ptr();
    if !registry::register(target, new_len, ChunkKind::Huge) {
        // SAFETY: the reservation is ours and unused.
        unsafe { os::release(target, new_len) };
        return None;
    }
    // SAFETY: forwarded contract; `target` is our reservation of `new_len`
    // bytes, which MREMAP_FIXED replaces.
    match unsafe { os::remap(base, len, new_len, Some(target)) } {
        Some(q) => {
            registry::unregister(base, len);
            Some(q.as_ptr())
        }
        None => {
            registry::unregister(target, new_len);
            // SAFETY: the reservation is ours and unused.
            unsafe { os::release(target, new_len) };
            None
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

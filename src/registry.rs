//! The chunk registry: which 4 MiB chunks of the address space slabpool
//! owns, so a bare pointer (from C's `free`) can be checked and routed
//! without a header on small blocks.
//!
//! One byte per chunk of the 47-bit user address space (32 MiB of address
//! space, reserved once with `MAP_NORESERVE`: only the pages of the map that
//! describe chunks in use are ever touched, 4 KiB of map per 16 GiB of
//! address space). Every chunk is one of:
//! - [`NONE`]: not slabpool's;
//! - [`SEGMENT`]: a segment, whose header sits at the chunk's base;
//! - [`HUGE`]: part of a huge block's mapping, which covers the whole chunk
//!   (huge mappings are chunk-aligned and chunk-rounded), so any address in
//!   it can be read;
//! - [`HUGE_FREE`]: part of a freed huge mapping kept in the cache;
//! - [`GUARD`]: a chunk of the guard pool (sampled guarded blocks), whose
//!   header sits at the chunk's base (see `guard`).
//!
//! Entries are written when slabpool maps or unmaps a chunk, before the
//! memory is handed out and after it is taken back, so a pointer the program
//! legitimately holds always finds its entry. Reads are relaxed: a stale read
//! only concerns a pointer the program does not own (an invalid free).

#[cfg(not(loom))]
use crate::os;
#[cfg(not(loom))]
use crate::segment::{SEGMENT_SHIFT, SEGMENT_SIZE};
#[cfg(not(loom))]
use crate::sync::Ordering::{Acquire, Relaxed, Release};
#[cfg(not(loom))]
use crate::sync::unmodeled::{AtomicPtr, AtomicU8};
#[cfg(not(loom))]
use core::ptr;

pub const NONE: u8 = 0;
pub const SEGMENT: u8 = 1;
pub const HUGE: u8 = 2;
pub const HUGE_FREE: u8 = 3;
#[cfg(not(loom))]
pub const GUARD: u8 = 4;

/// Bits of user address space covered.
#[cfg(not(loom))]
const ADDRESS_BITS: u32 = 47;
#[cfg(not(loom))]
const CHUNKS: usize = 1 << (ADDRESS_BITS - SEGMENT_SHIFT);

/// Loom models never free bare pointers: their segments go unrecorded (the
/// models' small segments would need a far larger map).
#[cfg(loom)]
pub fn register(_base: *mut u8, _len: usize, _kind: u8) -> bool {
    true
}

#[cfg(loom)]
pub fn unregister(_base: *mut u8, _len: usize) {}

#[cfg(loom)]
pub fn set(_base: *mut u8, _len: usize, _kind: u8) {}

/// The map, reserved at the first registration (null before).
#[cfg(not(loom))]
static MAP: AtomicPtr<AtomicU8> = AtomicPtr::new(ptr::null_mut());

#[cfg(not(loom))]
/// The map, reserving it on first use. Null if the reservation failed.
fn map() -> *mut AtomicU8 {
    let m = MAP.load(Acquire);
    if !m.is_null() {
        return m;
    }
    let Some(fresh) = os::reserve(CHUNKS, os::PAGE) else {
        return ptr::null_mut();
    };
    let fresh = fresh.as_ptr().cast::<AtomicU8>();
    match MAP.compare_exchange(ptr::null_mut(), fresh, Release, Acquire) {
        Ok(_) => fresh,
        Err(winner) => {
            // SAFETY: our reservation was never published.
            unsafe { os::release(fresh.cast(), CHUNKS) };
            winner
        }
    }
}

#[cfg(not(loom))]
/// Index of the chunk holding `addr`, if it is in the covered space.
#[inline]
fn chunk(addr: usize) -> Option<usize> {
    let i = addr >> SEGMENT_SHIFT;
    (i < CHUNKS).then_some(i)
}

#[cfg(not(loom))]
/// Records `[base, base + len)` (chunk-aligned) as `kind`. Returns false if
/// the range cannot be recorded (the caller then must not hand it out).
#[must_use]
pub fn register(base: *mut u8, len: usize, kind: u8) -> bool {
    debug_assert!(base as usize % SEGMENT_SIZE == 0 && len % SEGMENT_SIZE == 0);
    let (Some(first), Some(last)) = (chunk(base as usize), chunk(base as usize + len - 1)) else {
        return false;
    };
    let m = map();
    if m.is_null() {
        return false;
    }
    for i in first..=last {
        // SAFETY: `i < CHUNKS`, inside the reserved map.
        unsafe { (*m.add(i)).store(kind, Release) };
    }
    true
}

#[cfg(not(loom))]
/// Forgets `[base, base + len)`, which is about to be unmapped.
pub fn unregister(base: *mut u8, len: usize) {
    set(base, len, NONE);
}

#[cfg(not(loom))]
/// Re-records `[base, base + len)`, already registered, as `kind`.
pub fn set(base: *mut u8, len: usize, kind: u8) {
    let m = MAP.load(Acquire);
    let (Some(first), Some(last)) = (chunk(base as usize), chunk(base as usize + len - 1)) else {
        return;
    };
    if m.is_null() {
        return;
    }
    for i in first..=last {
        // SAFETY: `i < CHUNKS`, inside the reserved map.
        unsafe { (*m.add(i)).store(kind, Release) };
    }
}

#[cfg(not(loom))]
/// What slabpool knows of the chunk holding `p`.
#[inline]
pub fn kind_of(p: *const u8) -> u8 {
    let m = MAP.load(Acquire);
    match chunk(p as usize) {
        // SAFETY: `i < CHUNKS`, inside the reserved map.
        Some(i) if !m.is_null() => unsafe { (*m.add(i)).load(Relaxed) },
        _ => NONE,
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn registers_and_forgets_chunks() {
        let base = os::reserve(3 * SEGMENT_SIZE, SEGMENT_SIZE).expect("reserve");
        let p = base.as_ptr();
        assert_eq!(kind_of(p), NONE);
        assert!(register(p, SEGMENT_SIZE, SEGMENT));
        assert!(register(
            p.wrapping_add(SEGMENT_SIZE),
            2 * SEGMENT_SIZE,
            HUGE
        ));
        assert_eq!(kind_of(p.wrapping_add(12345)), SEGMENT);
        assert_eq!(kind_of(p.wrapping_add(SEGMENT_SIZE)), HUGE);
        assert_eq!(kind_of(p.wrapping_add(3 * SEGMENT_SIZE - 1)), HUGE);
        unregister(p, 3 * SEGMENT_SIZE);
        assert_eq!(kind_of(p.wrapping_add(SEGMENT_SIZE)), NONE);
        let stack = 0u64;
        assert_eq!(kind_of((&stack as *const u64).cast()), NONE);
        assert_eq!(kind_of(usize::MAX as *const u8), NONE);
        // SAFETY: the reservation is ours and unused.
        unsafe { os::release(p, 3 * SEGMENT_SIZE) };
    }
}

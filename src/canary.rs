//! Canaries checked on free (the `hardened` build): each block gets
//! [`TAG`] bytes more than the program asked for, and the bytes past the
//! request are the allocator's.
//!
//! Layout of a block of `usable` bytes holding a request of `requested`:
//! `[0, requested)` the program's; `[requested, requested + pattern)`
//! pattern bytes (the key's, each made odd), with `pattern = min(usable - requested - TAG,
//! PATTERN_MAX)` (one word at most: written and checked as one unaligned
//! word, masked, with no loop); the last [`TAG`] bytes a tag, `key(block) ^ slack << 24`
//! with `slack = usable - requested`. The key mixes a per-process secret
//! (`block::tag_secret`, drawn apart from the free lists' secret: a tag
//! read past a block's end tells nothing of how links are encoded) with
//! the block's address, so a tag cannot be forged or
//! moved to another block. Its low 24 bits (its first 3 bytes, where an
//! overflow lands first) must decode to 0, and its top bits (its last
//! bytes, where an underflow of the next block lands) to a slack within
//! the block: a tag overwritten by anything fails that check except with
//! probability about 2^-24. The requested size is recovered from the tag (so
//! `malloc_usable_size` can return it), and the pattern is checked over its
//! [`PATTERN_MAX`] bytes: an overflow is contiguous, so it reaches those
//! first (a longer pattern caught no overflow more and cost a loop on
//! allocation and on free).
//!
//! Invariants: `requested + TAG <= usable`; [`arm`] writes the canary of a
//! fresh block before the program sees it; [`check`] reads it before the
//! block is freed, resized or measured, and stops the process with one line
//! (no allocation) if it is damaged.

use crate::block;
use crate::os;
use core::fmt::Write;

/// Bytes every request grows by: the tag.
pub const TAG: usize = 8;
/// Bytes of pattern written and checked after the request, at most: one
/// word.
const PATTERN_MAX: usize = 8;
/// Low bits of the tag that are key only (the slack sits above them, up
/// to 1 TiB).
const CHECK_BITS: u32 = 24;

/// The block's key: the canary secret and the address, mixed by a
/// multiplication (every address bit reaches the key's top bits, which
/// the check uses).
#[inline(always)]
fn key(p: *const u8) -> u64 {
    key_with(block::tag_secret(), p)
}

/// [`key`] under `secret`.
#[inline(always)]
fn key_with(secret: usize, p: *const u8) -> u64 {
    let x = (secret as u64 ^ p as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

/// The byte of a huge block's front canary, before `arm_front` flips it.
#[inline(always)]
fn pattern(key: u64) -> u8 {
    (key >> 8) as u8 | 1
}

/// A block's pattern word: the key's bytes, each made odd (never 0, so a
/// stray terminating NUL shows). One `or`: a byte repeated eight times
/// cost a shift, a multiplication and an add on every `malloc` and `free`.
#[inline(always)]
fn pattern_word(key: u64) -> u64 {
    key | 0x0101_0101_0101_0101
}

/// Pattern bytes of a block with `slack` bytes past the request.
#[inline(always)]
fn pattern_len(slack: usize) -> usize {
    (slack - TAG).min(PATTERN_MAX)
}

/// The bits of the first `len` (at most 8) bytes of a word read with
/// [`read_pattern`]: one load (a shift by 64 - 8 * len needs a branch or a
/// select for `len` 0).
#[inline(always)]
fn first_bytes(len: usize) -> u64 {
    const MASKS: [u64; PATTERN_MAX + 1] = {
        let mut masks = [0u64; PATTERN_MAX + 1];
        let mut len = 1;
        while len <= PATTERN_MAX {
            masks[len] = u64::MAX >> (64 - 8 * len);
            len += 1;
        }
        masks
    };
    MASKS[len.min(PATTERN_MAX)]
}

/// The word at `p` (the pattern's place), its first byte lowest.
///
/// # Safety
/// `[p, p + 8)` must be readable.
#[inline(always)]
unsafe fn read_pattern(p: *const u8) -> u64 {
    // SAFETY: by contract.
    u64::from_le(unsafe { p.cast::<u64>().read_unaligned() })
}

/// Writes the canary of `p`, a fresh block of `usable` bytes holding a
/// request of `requested` bytes (null is passed through). Returns `p`.
///
/// # Safety
/// `p` is null or a live block of `usable` bytes, 8-aligned, with
/// `requested + TAG <= usable` and `usable` a multiple of 8; the secret is
/// set (by the carve of a small block, else `block::ensure_secret`).
#[inline(always)]
pub unsafe fn arm(p: *mut u8, requested: usize, usable: usize) -> *mut u8 {
    if p.is_null() {
        return p;
    }
    debug_assert!(requested + TAG <= usable && usable % 8 == 0);
    let slack = usable - requested;
    let key = key(p);
    // SAFETY: the pattern word lies within `[requested, usable)` (`requested
    // + TAG <= usable`); the part of it in the tag's place (with less than
    // a word of pattern) is then overwritten by the tag, the block's last 8
    // bytes, 8-aligned: all the block's.
    unsafe {
        p.add(requested)
            .cast::<u64>()
            .write_unaligned(pattern_word(key));
        p.add(usable - TAG)
            .cast::<u64>()
            .write(key ^ (slack as u64) << CHECK_BITS);
    }
    p
}

/// What was found damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The tag (the last 8 bytes) holds this word, which is not the
    /// block's tag.
    Tag(u64),
    /// The pattern byte at this offset of the block was overwritten.
    Pattern { offset: usize, byte: u8 },
    /// Found damaged, then intact when read again to be reported: another
    /// thread writes the block while it is freed.
    Changing,
}

/// The requested size of `p`, a live block of `usable` bytes armed by
/// [`arm`], if its canary is intact.
///
/// # Safety
/// `p` must be a live block of `usable` bytes, 8-aligned.
#[inline(always)]
pub unsafe fn inspect(p: *const u8, usable: usize) -> Result<usize, Damage> {
    let key = key(p);
    // SAFETY: forwarded contract.
    let requested = unsafe { requested_of(p, usable, key) }?;
    let len = pattern_len(usable - requested);
    // SAFETY: `requested + TAG <= usable` (the tag decoded): the word lies
    // within the block.
    let found = unsafe { read_pattern(p.add(requested)) };
    let diff = (found ^ pattern_word(key)) & first_bytes(len);
    if diff == 0 {
        return Ok(requested);
    }
    let offset = requested + diff.trailing_zeros() as usize / 8;
    Err(Damage::Pattern {
        offset,
        // SAFETY: as above, a byte of that word.
        byte: unsafe { p.add(offset).read() },
    })
}

/// The requested size of `p`, a live block of `usable` bytes armed by
/// [`arm`], from its tag alone (the pattern is not checked), with the
/// block's key.
///
/// # Safety
/// As for [`inspect`]; `key` is `key(p)`.
#[inline(always)]
unsafe fn requested_of(p: *const u8, usable: usize, key: u64) -> Result<usize, Damage> {
    // SAFETY: the last 8 bytes of the block, 8-aligned.
    let word = unsafe { p.add(usable - TAG).cast::<u64>().read() };
    let decoded = word ^ key;
    let slack = decoded >> CHECK_BITS;
    if decoded & ((1 << CHECK_BITS) - 1) != 0 || slack < TAG as u64 || slack > usable as u64 {
        return Err(Damage::Tag(word));
    }
    Ok(usable - slack as usize)
}

/// The offset of the first of the `len` bytes at `p` that is not `byte`,
/// read a word at a time.
///
/// # Safety
/// `[p, p + len)` must be readable.
#[inline]
pub unsafe fn first_other(p: *const u8, len: usize, byte: u8) -> Option<usize> {
    let word = u64::from_ne_bytes([byte; 8]);
    let in_word = |w: u64, base: usize| -> Option<usize> {
        let diff = (w ^ word).to_le_bytes();
        diff.iter().position(|&d| d != 0).map(|i| base + i)
    };
    // SAFETY: every read lies within `[p, p + len)`: whole words, then the
    // last word (overlapping the one before), or bytes below 8.
    unsafe {
        if len < 8 {
            return (0..len).find(|&i| p.add(i).read() != byte);
        }
        let mut at = 0;
        while at + 8 < len {
            let w = p.add(at).cast::<u64>().read_unaligned();
            if w != word {
                return in_word(w, at);
            }
            at += 8;
        }
        let w = p.add(len - 8).cast::<u64>().read_unaligned();
        if w != word {
            return in_word(w, len - 8);
        }
    }
    None
}

/// Bytes of the front canary of a huge block.
pub const FRONT: usize = 64;

/// Writes the front canary of `p`, a fresh huge block: a pattern in the
/// [`FRONT`] bytes before it, the unused end of the page that holds its
/// header (`huge` keeps a header of a few words at the start of the page
/// before the block), where an underflow of the block lands.
///
/// # Safety
/// `p` must be a fresh huge block.
pub unsafe fn arm_front(p: *mut u8) {
    let byte = pattern(key(p)) ^ 0xff;
    // SAFETY: the bytes lie in the header page before the block, past the
    // header (see above).
    unsafe { p.sub(FRONT).write_bytes(byte, FRONT) }
}

/// Checks the front canary of `p`, a live huge block armed by
/// [`arm_front`]; aborts with a message naming `call` if it is damaged.
///
/// # Safety
/// `p` must be a live huge block.
pub unsafe fn check_front(call: &str, p: *const u8) {
    let byte = pattern(key(p)) ^ 0xff;
    for back in 1..=FRONT {
        // SAFETY: as in `arm_front`.
        let found = unsafe { p.sub(back).read() };
        if found != byte {
            underflow(call, p, back, found);
        }
    }
}

/// Reports a damaged front canary and aborts.
#[cold]
#[inline(never)]
fn underflow(call: &str, p: *const u8, back: usize, byte: u8) -> ! {
    let mut out = os::StderrWriter::new();
    let _ = writeln!(
        out,
        "slabpool: {call}({p:p}): heap underflow: the canary before the block is \
         overwritten {back} bytes before it (now {byte:#04x}); aborting"
    );
    out.flush();
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// As [`inspect`], stopping the process with a message naming `call` if
/// the canary is damaged.
///
/// # Safety
/// As for [`inspect`].
#[inline]
pub unsafe fn check(call: &str, p: *const u8, usable: usize) -> usize {
    // SAFETY: forwarded contract.
    let Ok(requested) = (unsafe { inspect(p, usable) }) else {
        // SAFETY: forwarded contract.
        unsafe { damaged_at(call, p, usable) }
    };
    requested
}

/// Reports the damaged canary of `p`, a block of `usable` bytes, found
/// again here: a damage built on the caller's path (passed by reference)
/// would keep a stack frame on its common path. Aborts.
///
/// # Safety
/// As for [`inspect`].
#[cold]
#[inline(never)]
pub unsafe fn damaged_at(call: &str, p: *const u8, usable: usize) -> ! {
    // SAFETY: forwarded contract.
    let damage = unsafe { inspect(p, usable) }
        .err()
        .unwrap_or(Damage::Changing);
    damaged(call, p, usable, damage)
}

/// Reports a damaged canary and aborts.
#[cold]
#[inline(never)]
pub fn damaged(call: &str, p: *const u8, usable: usize, damage: Damage) -> ! {
    let mut out = os::StderrWriter::new();
    let _ = match damage {
        Damage::Pattern { offset, byte } => writeln!(
            out,
            "slabpool: {call}({p:p}): heap overflow: the canary past the block's requested \
             bytes is overwritten at byte {offset} (now {byte:#04x}); aborting"
        ),
        Damage::Tag(word) => writeln!(
            out,
            "slabpool: {call}({p:p}): heap overflow or underflow: the canary tag in the \
             block's last 8 of {usable} bytes is overwritten (now {word:#x}); aborting"
        ),
        Damage::Changing => writeln!(
            out,
            "slabpool: {call}({p:p}): the block's canary changed while it was checked \
             (another thread writes the block as it is freed); aborting"
        ),
    };
    out.flush();
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// Reports a block freed with a size other than the one it was allocated
/// with (`GlobalAlloc::dealloc` with another layout), and aborts.
#[cold]
#[inline(never)]
pub fn wrong_size(call: &str, p: *const u8, allocated: usize, freed: usize) -> ! {
    let mut out = os::StderrWriter::new();
    let _ = writeln!(
        out,
        "slabpool: {call}({p:p}): the block was allocated with {allocated} bytes and is \
         freed with a layout of {freed}; aborting"
    );
    out.flush();
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

#[cfg(test)]
mod tests;

//! The address-space geometry every layer agrees on: the segment size.
//!
//! slabpool maps memory in chunks of [`SEGMENT_SIZE`] bytes aligned to
//! their size: a segment is one chunk, a huge mapping a run of them. The
//! registry describes the address space chunk by chunk, and a pointer's
//! segment header is found by masking, so both depend on this one figure,
//! which depends on nothing.

/// log2 of [`SEGMENT_SIZE`].
#[cfg(not(loom))]
pub const SEGMENT_SHIFT: u32 = 22;
/// Loom models use 64 KiB segments so a header has few atomics.
#[cfg(loom)]
pub const SEGMENT_SHIFT: u32 = 16;
/// Bytes of a segment, and the unit (and alignment) of every mapping.
pub const SEGMENT_SIZE: usize = 1 << SEGMENT_SHIFT;

//! The fuzz targets' operations, decoded from raw bytes with `arbitrary`,
//! and the model that runs them against slabpool and checks every result.
//! Shared by the targets (`fuzz/fuzz_targets/*.rs`) and the stable replay
//! (`replay/tests/fuzz_replay.rs`), which include this file with `#[path]`.
//!
//! The model: every live block sits in a slot (`SLOTS` singles, `GROUPS`
//! burst groups), is filled with a pattern derived from its slot and a
//! generation, and is checked before it is freed or reallocated (the kept
//! prefix after a reallocation too); `alloc_zeroed` memory is checked for
//! zeroes; a shadow map of live ranges rejects a block that overlaps a live
//! one or is misaligned. A [`Backend`] makes the allocator calls:
//! [`HeapBackend`] on a heap instance with simulated threads and every
//! structure checked after each operation, [`GlobalBackend`] on the process
//! allocator (`SlabPool` must be the binary's global allocator) with real
//! threads.
//!
//! With the `prof` feature (slabpool's heap profiler) the global backend
//! runs with profiling on from the start at a mean interval of 2 KiB, so a
//! fair share of the blocks every operation touches are sampled ones
//! (small ones in the profiler's pool, freed into thread caches by
//! `GlobalAlloc`, large and huge ones recorded by address), and one more
//! operation, `Profile`, turns profiling off and on at another interval,
//! restarts the peak or reads the profile. The heap backend gives its
//! thread caches tiny profiler budgets, so their fast `pop` goes slow
//! every few allocations (the bins' packed count and budget, and the slow
//! path that takes what `pop` refused).
#![allow(dead_code)]

use arbitrary::{Arbitrary, Result, Unstructured};
use slabpool::testing::fuzzing::{
    self as sp, CLASSES, LARGE_LIMIT, NUM_CLASSES, PAGE, Route, SEGMENT_SIZE, SMALL_LIMIT,
    ThreadCache, route,
};
use std::alloc::Layout;
use std::collections::BTreeMap;
use std::sync::{Arc, Barrier, Condvar, Mutex};

/// Single-block slots.
pub const SLOTS: usize = 64;
/// Burst groups (many blocks of one size each).
pub const GROUPS: usize = 8;
/// Simulated threads (thread 0 is the driving thread).
pub const THREADS: usize = 4;
/// Operations decoded from one input at most.
pub const MAX_OPS: usize = 2048;
/// Bytes the model keeps live at most (requests beyond it are skipped), and
/// per burst.
const MAX_LIVE: usize = 64 << 20;
const MAX_BURST: usize = 2 << 20;

// ---------------------------------------------------------------------------
// Operations

/// A request size: around every class boundary, any small size, large page
/// counts, the route limits, huge sizes.
#[derive(Clone, Copy, Debug)]
pub struct Size(pub usize);

/// Sizes of interest beyond the classes: route limits, segment geometry.
const EDGES: [usize; 10] = [
    SMALL_LIMIT,
    LARGE_LIMIT,
    64 << 10,
    1 << 20,
    SEGMENT_SIZE - 17 * PAGE,
    SEGMENT_SIZE - PAGE,
    SEGMENT_SIZE,
    SEGMENT_SIZE + PAGE,
    2 * SEGMENT_SIZE - PAGE,
    2 * SEGMENT_SIZE,
];

impl<'a> Arbitrary<'a> for Size {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let sel = u8::arbitrary(u)?;
        let bytes = match sel {
            // A class size, within 4 bytes either way.
            0..=99 => {
                let class = usize::from(u8::arbitrary(u)?) % NUM_CLASSES;
                CLASSES[class].size as i64 + i64::from(i8::arbitrary(u)? % 5)
            }
            100..=159 => i64::from(u16::arbitrary(u)?) % SMALL_LIMIT as i64 + 1,
            160..=199 => i64::from(u8::arbitrary(u)?) + 1,
            // Large: a page count up to the large limit, +- up to a page.
            200..=229 => {
                let pages = i64::from(u16::arbitrary(u)? % 513);
                pages * PAGE as i64 + i64::from(i16::arbitrary(u)? % (PAGE as i16 + 1))
            }
            230..=244 => {
                let edge = EDGES[usize::from(u8::arbitrary(u)?) % EDGES.len()];
                edge as i64 + i64::from(i16::arbitrary(u)? % (PAGE as i16 + 1))
            }
            // Huge: 2 to 24 MiB, +- up to 1 MiB.
            _ => {
                let mib = i64::from(2 + u8::arbitrary(u)? % 23);
                (mib << 20) + i64::from(i32::arbitrary(u)? % (1 << 20))
            }
        };
        Ok(Size(bytes.max(1) as usize))
    }
}

/// An alignment: 1 B to 4 MiB, mostly small.
#[derive(Clone, Copy, Debug)]
pub struct Align(pub usize);

impl<'a> Arbitrary<'a> for Align {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let sel = u8::arbitrary(u)?;
        let shift = match sel {
            0..=159 => sel % 4,
            160..=223 => 4 + sel % 8,
            224..=251 => 12 + sel % 9,
            252..=253 => 21,
            _ => 22,
        };
        Ok(Align(1 << shift))
    }
}

/// One operation. Slots and groups are taken modulo their counts; `raw`
/// picks `slabpool::raw` over `GlobalAlloc` (global target only).
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Op {
    /// Allocates into `slot` (freeing its block first), zeroed or not.
    Alloc {
        slot: u8,
        size: Size,
        align: Align,
        zeroed: bool,
        raw: bool,
    },
    Dealloc {
        slot: u8,
        raw: bool,
    },
    /// Reallocates the block of `slot` (same alignment).
    Realloc {
        slot: u8,
        size: Size,
        raw: bool,
    },
    /// Allocates `2 * count + 1` blocks of one size into a group (freeing
    /// its blocks first).
    Burst {
        group: u8,
        count: u8,
        size: Size,
        align: Align,
    },
    /// Frees a group: in order, reversed, odd blocks first, or each block on
    /// the next thread in turn.
    FreeBurst {
        group: u8,
        order: u8,
    },
    /// Checks what slabpool says of a live block.
    Query {
        slot: u8,
    },
    /// Later operations run on simulated thread `thread`.
    Switch {
        thread: u8,
    },
    /// The current thread exits (its cache flushed); `respawn` (heap target)
    /// gives it a fresh cache, else it goes on without one.
    ThreadExit {
        respawn: bool,
    },
    Collect,
    /// Moves slabpool's (fake) clock forward up to 2 s (rarely 2^31 ms):
    /// maintenance, purge deadlines, cache decay, the clock's wrap.
    Advance {
        ms: u16,
    },
    /// Global target: every worker allocates blocks at once, then frees
    /// another worker's blocks.
    Parallel {
        count: u8,
        size: Size,
    },
    /// (`prof` builds.) The heap profiler: `action % 4` is 0 off, 1 on at
    /// a mean interval of `64 << (action / 4 % 10)` bytes, 2 a reset of
    /// the peak, 3 the live profile encoded and its figures checked;
    /// heap target: the current thread's budgets set to `action % 8`.
    #[cfg(feature = "prof")]
    Profile {
        action: u8,
    },
}

/// Decodes operations until the input is used up (or `MAX_OPS`).
pub fn decode(data: &[u8]) -> Vec<Op> {
    let mut u = Unstructured::new(data);
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_OPS {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    ops
}

// ---------------------------------------------------------------------------
// Patterns

/// Blocks up to this size are filled whole; larger ones at their first and
/// last `EDGE` bytes and one word every 512 bytes in between, every 64 KiB
/// in blocks above 64 KiB (so a huge block costs few page faults).
const FULL: usize = 4 << 10;
const EDGE: usize = 2 << 10;

fn pattern(seed: u64, i: usize) -> u64 {
    (seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xD6E8_FEB8_6659_FD93)
}

/// Calls `f` on the index of every pattern word of a block of `len` bytes.
fn words(len: usize, mut f: impl FnMut(usize)) {
    let n = len / 8;
    if len <= FULL {
        (0..n).for_each(f);
        return;
    }
    let e = EDGE / 8;
    (0..e).for_each(&mut f);
    let stride = if len <= 64 << 10 { 512 } else { 64 << 10 };
    (e..n - e).step_by(stride / 8).for_each(&mut f);
    (n - e..n).for_each(f);
}

/// The block at `p` as words and tail bytes (every block slabpool hands out
/// is 8-aligned: the model checks it).
///
/// # Safety
/// `p` must be 8-aligned and valid for `len` bytes.
unsafe fn view<'a>(p: *const u8, len: usize) -> (&'a mut [u64], &'a mut [u8]) {
    // SAFETY: by contract; the two slices are disjoint.
    unsafe {
        (
            std::slice::from_raw_parts_mut(p as *mut u64, len / 8),
            std::slice::from_raw_parts_mut(p.add(len / 8 * 8) as *mut u8, len % 8),
        )
    }
}

/// Writes the pattern of `seed` into `len` bytes at `p`.
///
/// # Safety
/// `p` must be 8-aligned and valid for `len` bytes of writes.
pub unsafe fn fill(p: *mut u8, len: usize, seed: u64) {
    // SAFETY: by contract.
    let (w, tail) = unsafe { view(p, len) };
    words(len, |i| w[i] = pattern(seed, i));
    let last = pattern(seed, len / 8).to_le_bytes();
    tail.copy_from_slice(&last[..tail.len()]);
}

/// Checks the pattern `fill(p, written, seed)` left in the first `prefix`
/// bytes at `p`.
///
/// # Safety
/// `p` must be 8-aligned and valid for `min(written, prefix)` bytes.
pub unsafe fn check(p: *const u8, written: usize, prefix: usize, seed: u64, what: &str) {
    let len = written.min(prefix);
    // SAFETY: by contract.
    let (w, tail) = unsafe { view(p, len) };
    let bad = |off: usize, got: u64, want: u64| {
        panic!(
            "{what}: block {p:p} ({written} bytes) corrupt at offset {off}: {got:#x}, want {want:#x}"
        )
    };
    words(written, |i| {
        if i < w.len() && w[i] != pattern(seed, i) {
            bad(8 * i, w[i], pattern(seed, i));
        }
    });
    if len == written {
        let last = pattern(seed, len / 8).to_le_bytes();
        if tail[..] != last[..tail.len()] {
            bad(len / 8 * 8, u64::from(tail[0]), u64::from(last[0]));
        }
    }
}

/// Checks that the sampled words (see `words`) and the tail of `len` bytes
/// at `p` are zero.
///
/// # Safety
/// `p` must be 8-aligned and valid for `len` bytes of reads.
pub unsafe fn check_zero(p: *const u8, len: usize) {
    // SAFETY: by contract.
    let (w, tail) = unsafe { view(p, len) };
    words(len, |i| {
        assert!(
            w[i] == 0,
            "alloc_zeroed: {p:p} ({len} bytes) has {:#x} at offset {}",
            w[i],
            8 * i
        );
    });
    assert!(
        tail.iter().all(|&b| b == 0),
        "alloc_zeroed: {p:p} ({len} bytes): tail not zero"
    );
}

// ---------------------------------------------------------------------------
// The model

/// A live block.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    pub p: *mut u8,
    pub size: usize,
    pub align: usize,
    pub seed: u64,
}

impl Block {
    pub fn route(&self) -> Route {
        route(self.size, self.align)
    }

    /// Bytes the block owns: its class size, pages, or request.
    pub fn extent(&self) -> usize {
        match self.route() {
            Route::Small(class) => CLASSES[class.index()].size as usize,
            Route::Large => self.size.next_multiple_of(PAGE),
            Route::Huge => self.size,
        }
    }

    fn check(&self, what: &str) {
        // SAFETY: the block is live with `size` bytes.
        unsafe { check(self.p, self.size, self.size, self.seed, what) }
    }
}

/// The allocator under test.
pub trait Backend {
    /// A block of `size` bytes at `align` (never null: the model stays far
    /// from out of memory).
    fn alloc(&mut self, t: usize, size: usize, align: usize, zeroed: bool, raw: bool) -> *mut u8;
    fn alloc_many(&mut self, t: usize, n: usize, size: usize, align: usize) -> Vec<*mut u8> {
        (0..n)
            .map(|_| self.alloc(t, size, align, false, false))
            .collect()
    }
    fn dealloc(&mut self, t: usize, b: &Block, raw: bool);
    fn dealloc_many(&mut self, t: usize, blocks: &[Block]) {
        blocks.iter().for_each(|b| self.dealloc(t, b, false));
    }
    /// Resizes `b` to `size` bytes (same alignment); the new address.
    fn realloc(&mut self, t: usize, b: &Block, size: usize, raw: bool) -> *mut u8;
    fn query(&mut self, t: usize, b: &Block);
    fn thread_exit(&mut self, t: usize, respawn: bool);
    fn collect(&mut self, t: usize);
    fn parallel(&mut self, _count: usize, _size: usize) {}
    /// The `Profile` operation (`prof` builds).
    #[cfg(feature = "prof")]
    fn profile(&mut self, t: usize, action: u8);
    /// After every operation: the allocator's own consistency checks.
    fn check(&mut self, model: &Model);
    /// After the model freed every block.
    fn finish(&mut self, model: &Model);
}

/// Live blocks, the shadow map of their ranges, the current thread.
pub struct Model {
    pub slots: Vec<Option<Block>>,
    pub groups: Vec<Vec<Block>>,
    /// Start -> end of every live block's extent.
    shadow: BTreeMap<usize, usize>,
    pub thread: usize,
    generation: u64,
    live_bytes: usize,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Model {
    pub fn new() -> Self {
        Self {
            slots: vec![None; SLOTS],
            groups: vec![Vec::new(); GROUPS],
            shadow: BTreeMap::new(),
            thread: 0,
            generation: 0,
            live_bytes: 0,
        }
    }

    /// Every live block.
    pub fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.slots
            .iter()
            .flatten()
            .chain(self.groups.iter().flatten())
    }

    /// Small blocks per class, bytes of large spans, huge blocks.
    pub fn counts(&self) -> ([usize; NUM_CLASSES], usize, usize) {
        let (mut small, mut large, mut huge) = ([0; NUM_CLASSES], 0, 0);
        for b in self.blocks() {
            match b.route() {
                Route::Small(class) => small[class.index()] += 1,
                Route::Large => large += b.extent(),
                Route::Huge => huge += 1,
            }
        }
        (small, large, huge)
    }

    fn seed(&mut self, slot: usize) -> u64 {
        self.generation += 1;
        ((slot as u64) << 48) ^ self.generation.wrapping_mul(0xA24B_AED4_963E_E407)
    }

    /// Records a new block: not null, aligned, overlapping no live block.
    fn add(&mut self, b: &Block, what: &str) {
        let (p, end) = (b.p as usize, b.p as usize + b.extent());
        assert!(
            !b.p.is_null(),
            "{what}: null for {} bytes at {}",
            b.size,
            b.align
        );
        assert!(
            p % b.align.max(8) == 0,
            "{what}: {:p} misaligned for {}",
            b.p,
            b.align
        );
        if let Some((&s, &e)) = self.shadow.range(..end).next_back() {
            assert!(
                e <= p,
                "{what}: {:p}+{:#x} overlaps live {s:#x}..{e:#x}",
                b.p,
                b.extent()
            );
        }
        self.shadow.insert(p, end);
        self.live_bytes += b.size;
    }

    fn remove(&mut self, b: &Block) {
        assert!(
            self.shadow.remove(&(b.p as usize)).is_some(),
            "model: {:p} not live",
            b.p
        );
        self.live_bytes -= b.size;
    }

    fn fits(&self, size: usize) -> bool {
        self.live_bytes + size <= MAX_LIVE
    }

    fn free_slot(&mut self, slot: usize, raw: bool, be: &mut impl Backend) {
        if let Some(b) = self.slots[slot].take() {
            b.check("dealloc");
            self.remove(&b);
            be.dealloc(self.thread, &b, raw);
        }
    }

    fn free_group(&mut self, group: usize, order: u8, be: &mut impl Backend) {
        let mut blocks = std::mem::take(&mut self.groups[group]);
        for b in &blocks {
            b.check("burst free");
            self.remove(b);
        }
        match order % 4 {
            0 => be.dealloc_many(self.thread, &blocks),
            1 => {
                blocks.reverse();
                be.dealloc_many(self.thread, &blocks);
            }
            2 => {
                let (odd, even): (Vec<_>, Vec<_>) =
                    blocks.iter().enumerate().partition(|(i, _)| i % 2 == 1);
                let odd: Vec<Block> = odd.into_iter().map(|(_, b)| *b).collect();
                let even: Vec<Block> = even.into_iter().map(|(_, b)| *b).collect();
                be.dealloc_many(self.thread, &odd);
                be.dealloc_many(self.thread, &even);
            }
            _ => {
                for (i, b) in blocks.iter().enumerate() {
                    be.dealloc((self.thread + i) % THREADS, b, false);
                }
            }
        }
    }

    /// Applies one operation.
    pub fn apply(&mut self, op: Op, be: &mut impl Backend) {
        match op {
            Op::Alloc {
                slot,
                size: Size(size),
                align: Align(align),
                zeroed,
                raw,
            } => {
                let slot = usize::from(slot) % SLOTS;
                self.free_slot(slot, raw, be);
                if !self.fits(size) {
                    return;
                }
                let p = be.alloc(self.thread, size, align, zeroed, raw);
                let b = Block {
                    p,
                    size,
                    align,
                    seed: self.seed(slot),
                };
                self.add(&b, if zeroed { "alloc_zeroed" } else { "alloc" });
                if zeroed {
                    // SAFETY: a fresh block of `size` bytes.
                    unsafe { check_zero(p, size) };
                }
                // SAFETY: as above.
                unsafe { fill(p, size, b.seed) };
                self.slots[slot] = Some(b);
            }
            Op::Dealloc { slot, raw } => self.free_slot(usize::from(slot) % SLOTS, raw, be),
            Op::Realloc {
                slot,
                size: Size(size),
                raw,
            } => {
                let slot = usize::from(slot) % SLOTS;
                let Some(old) = self.slots[slot] else { return };
                if !self.fits(size) {
                    return;
                }
                old.check("realloc");
                self.slots[slot] = None;
                self.remove(&old);
                let q = be.realloc(self.thread, &old, size, raw);
                let new = Block {
                    p: q,
                    size,
                    seed: self.seed(slot),
                    ..old
                };
                self.add(&new, "realloc");
                // SAFETY: the new block holds `size` bytes, the old prefix.
                unsafe {
                    check(q, old.size, size, old.seed, "realloc (kept prefix)");
                    fill(q, size, new.seed);
                }
                self.slots[slot] = Some(new);
            }
            Op::Burst {
                group,
                count,
                size: Size(size),
                align: Align(align),
            } => {
                let group = usize::from(group) % GROUPS;
                self.free_group(group, 0, be);
                let extent = Block {
                    p: std::ptr::null_mut(),
                    size,
                    align,
                    seed: 0,
                }
                .extent();
                let n = (2 * usize::from(count) + 1).min(MAX_BURST / extent).max(1);
                if !self.fits(n * size) {
                    return;
                }
                let ptrs = be.alloc_many(self.thread, n, size, align);
                let mut blocks = Vec::with_capacity(n);
                for p in ptrs {
                    let b = Block {
                        p,
                        size,
                        align,
                        seed: self.seed(SLOTS + group),
                    };
                    self.add(&b, "burst alloc");
                    // SAFETY: a fresh block of `size` bytes.
                    unsafe { fill(p, size, b.seed) };
                    blocks.push(b);
                }
                self.groups[group] = blocks;
            }
            Op::FreeBurst { group, order } => {
                self.free_group(usize::from(group) % GROUPS, order, be)
            }
            Op::Query { slot } => {
                if let Some(b) = self.slots[usize::from(slot) % SLOTS] {
                    be.query(self.thread, &b);
                }
            }
            Op::Switch { thread } => self.thread = usize::from(thread) % THREADS,
            Op::ThreadExit { respawn } => be.thread_exit(self.thread, respawn),
            Op::Collect => be.collect(self.thread),
            Op::Advance { ms } => sp::advance_clock(match ms {
                // A process idle for 25 days: stale deadlines, clock wrap.
                65_000.. => 1 << 31,
                _ => u32::from(ms % 2001),
            }),
            Op::Parallel {
                count,
                size: Size(size),
            } => {
                let extent = Block {
                    p: std::ptr::null_mut(),
                    size,
                    align: 8,
                    seed: 0,
                }
                .extent();
                let n = (usize::from(count) + 1).min(MAX_BURST / 4 / extent).max(1);
                be.parallel(n, size);
            }
            #[cfg(feature = "prof")]
            Op::Profile { action } => be.profile(self.thread, action),
        }
    }

    /// Frees every live block (on the current thread).
    pub fn clear(&mut self, be: &mut impl Backend) {
        for slot in 0..SLOTS {
            self.free_slot(slot, false, be);
        }
        for group in 0..GROUPS {
            self.free_group(group, 0, be);
        }
        assert!(
            self.shadow.is_empty() && self.live_bytes == 0,
            "model: blocks left"
        );
    }
}

/// Runs `ops` on `be` from a fresh model, checking after each, then frees
/// everything and lets the backend check the end state.
pub fn run(ops: &[Op], be: &mut impl Backend) {
    sp::advance_clock(0);
    let mut model = Model::new();
    for &op in ops {
        model.apply(op, be);
        be.check(&model);
    }
    model.clear(be);
    be.finish(&model);
}

// ---------------------------------------------------------------------------
// A heap instance with simulated threads

/// A fresh heap with `THREADS` thread caches, driven as the global front end
/// (`global.rs`) drives the process heap.
pub struct HeapBackend {
    heap: Box<sp::Backend>,
    caches: Vec<ThreadCache>,
    /// (`prof` builds) The profiler budget a bin gets when its `pop` found
    /// it spent: small, so that it happens often.
    #[cfg(feature = "prof")]
    budget: u64,
}

impl Default for HeapBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl HeapBackend {
    pub fn new() -> Self {
        Self {
            heap: Box::new(sp::Backend::new()),
            caches: (0..THREADS).map(|_| ThreadCache::new()).collect(),
            #[cfg(feature = "prof")]
            budget: 3,
        }
    }

    /// Whether thread `t` has an active cache (activated on first use).
    fn active(&mut self, t: usize) -> bool {
        let tc = &mut self.caches[t];
        if tc.state() == sp::CacheState::Uninit {
            tc.activate(&self.heap, self.heap.assign_arena());
        }
        tc.state() == sp::CacheState::Active
    }

    fn home(&mut self, t: usize) -> usize {
        if self.active(t) {
            self.caches[t].arena()
        } else {
            0
        }
    }

    fn alloc_small(&mut self, t: usize, class: usize) -> *mut u8 {
        let p = self.caches[t].pop(sp::SizeClass::new(class).unwrap());
        if !p.is_null() {
            p
        } else if self.active(t) {
            // A bin that holds blocks but refused them: its budget was
            // spent (the profiler's sample would be taken here).
            #[cfg(feature = "prof")]
            {
                let tc = &mut self.caches[t];
                if tc.budget(class) == 0 {
                    tc.set_budget(class, self.budget);
                }
                if !tc.first(class).is_null() {
                    return tc.take_first(class, true);
                }
            }
            self.caches[t].refill(&self.heap, class)
        } else {
            self.heap.alloc_block(class, 0)
        }
    }
}

impl Backend for HeapBackend {
    fn alloc(&mut self, t: usize, size: usize, align: usize, zeroed: bool, _raw: bool) -> *mut u8 {
        match route(size, align) {
            Route::Small(class) => {
                let p = self.alloc_small(t, class.index());
                if zeroed && !p.is_null() {
                    // SAFETY: a fresh block of at least `size` bytes (as
                    // `GlobalAlloc::alloc_zeroed` does it).
                    unsafe { p.write_bytes(0, size) };
                }
                p
            }
            _ => {
                let home = self.home(t);
                self.heap.alloc_big(size, align, zeroed, home)
            }
        }
    }

    fn dealloc(&mut self, t: usize, b: &Block, _raw: bool) {
        match b.route() {
            Route::Small(class) => {
                // SAFETY: `b` is a live block of `class`, given up.
                unsafe {
                    if !self.caches[t].push(class, b.p) {
                        if self.active(t) {
                            self.caches[t].overflow(&self.heap, class, b.p);
                        } else {
                            self.heap.free_block(class.index(), b.p);
                        }
                    }
                }
            }
            // SAFETY: `b` is a live large or huge block of this layout.
            _ => unsafe { self.heap.free_big(b.p, b.size, b.align) },
        }
    }

    fn realloc(&mut self, t: usize, b: &Block, size: usize, raw: bool) -> *mut u8 {
        match (b.route(), route(size, b.align)) {
            (Route::Small(x), Route::Small(y)) if x == y => return b.p,
            (Route::Large, Route::Large) | (Route::Huge, Route::Huge) => {
                // SAFETY: `b` is a live block of this kind and alignment.
                let q = unsafe { self.heap.resize_big(b.p, size, b.align) };
                if !q.is_null() {
                    return q;
                }
            }
            _ => {}
        }
        let q = self.alloc(t, size, b.align, false, raw);
        assert!(!q.is_null(), "realloc: out of memory");
        // SAFETY: both blocks hold the bytes copied and are distinct.
        unsafe { std::ptr::copy_nonoverlapping(b.p, q, b.size.min(size)) };
        self.dealloc(t, b, raw);
        q
    }

    fn query(&mut self, _t: usize, b: &Block) {
        match b.route() {
            Route::Small(class) => self.heap.check_block(class.index(), b.p, "live block"),
            Route::Large => {}
            // SAFETY: `b` is a live huge block.
            Route::Huge => unsafe { sp::check_huge_block(b.p, b.size, b.align) },
        }
    }

    fn thread_exit(&mut self, t: usize, respawn: bool) {
        let tc = &mut self.caches[t];
        if tc.state() == sp::CacheState::Active {
            tc.flush_all(&self.heap);
            tc.set_state(sp::CacheState::Dead);
            self.heap.thread_exited(tc.arena());
        }
        if respawn {
            self.caches[t] = ThreadCache::new();
        }
    }

    fn collect(&mut self, t: usize) {
        if self.caches[t].state() == sp::CacheState::Active {
            self.caches[t].flush_all(&self.heap);
        }
        self.heap.collect();
    }

    #[cfg(feature = "prof")]
    fn profile(&mut self, t: usize, action: u8) {
        // The budget that bins get from now on, and this thread's bins now.
        self.budget = u64::from(action % 8);
        if self.active(t) {
            for class in 0..NUM_CLASSES {
                self.caches[t].set_budget(class, self.budget);
            }
        }
    }

    fn check(&mut self, model: &Model) {
        let caches: Vec<_> = self.caches.iter().map(|tc| tc.check(&self.heap)).collect();
        let found = self.heap.check(Some(&caches));
        let (small, large, huge) = model.counts();
        for (class, (&held, &want)) in found.held.iter().zip(&small).enumerate() {
            assert_eq!(held, want, "class {class}: blocks held by the program");
        }
        assert_eq!(found.large_bytes, large, "large bytes held by the program");
        assert_eq!(found.huge_blocks, huge, "huge blocks held by the program");
    }

    fn finish(&mut self, model: &Model) {
        for t in 0..THREADS {
            self.thread_exit(t, false);
        }
        self.heap.collect();
        self.check(model);
        let st = self.heap.stats();
        assert_eq!(
            (st.segments, st.mapped, st.committed, st.huge_blocks),
            (0, 0, 0, 0),
            "memory left after freeing everything and collect"
        );
    }
}

// ---------------------------------------------------------------------------
// The process allocator with real threads

/// Work handed to a thread of the global backend.
enum Job {
    Nop,
    Exit,
    Alloc {
        size: usize,
        align: usize,
        zeroed: bool,
        raw: bool,
    },
    AllocMany {
        n: usize,
        size: usize,
        align: usize,
    },
    Dealloc {
        p: usize,
        size: usize,
        align: usize,
        raw: bool,
    },
    DeallocMany {
        blocks: Vec<(usize, usize, usize)>,
    },
    Realloc {
        p: usize,
        size: usize,
        align: usize,
        new: usize,
        raw: bool,
    },
    Query {
        p: usize,
        size: usize,
        align: usize,
    },
    Collect,
    CheckCache,
    #[cfg(feature = "prof")]
    Profile {
        action: u8,
    },
    Parallel {
        w: usize,
        n: usize,
        size: usize,
        share: Arc<Share>,
    },
}

enum Reply {
    Done,
    Ptr(usize),
    Ptrs(Vec<usize>),
}

/// What the workers of a `Parallel` operation exchange.
struct Share {
    barrier: Barrier,
    blocks: Vec<Mutex<Vec<usize>>>,
}

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).expect("layout")
}

fn parallel_seed(w: usize, i: usize) -> u64 {
    (w as u64) << 56 ^ i as u64
}

/// Runs `job` on the calling thread.
fn exec(job: Job) -> Reply {
    // SAFETY: every block below is live, handed over with the layout it was
    // allocated with; every layout is valid and non-zero.
    unsafe {
        match job {
            Job::Nop | Job::Exit => Reply::Done,
            Job::Alloc {
                size,
                align,
                zeroed,
                raw,
            } => Reply::Ptr(match (raw, zeroed) {
                (false, false) => std::alloc::alloc(layout(size, align)),
                (false, true) => std::alloc::alloc_zeroed(layout(size, align)),
                (true, false) => slabpool::raw::alloc(size, align),
                (true, true) => slabpool::raw::alloc_zeroed(size, align),
            } as usize),
            Job::AllocMany { n, size, align } => Reply::Ptrs(
                (0..n)
                    .map(|_| std::alloc::alloc(layout(size, align)) as usize)
                    .collect(),
            ),
            Job::Dealloc {
                p,
                size,
                align,
                raw,
            } => {
                if raw {
                    slabpool::raw::free(p as *mut u8);
                } else {
                    std::alloc::dealloc(p as *mut u8, layout(size, align));
                }
                // Freeing it again now would be a double free: the C door
                // must say so (the block is in this thread's cache or its
                // central pool, or its pages are free).
                let why = sp::free_error(p as *mut u8);
                assert!(
                    why.is_some(),
                    "block {p:#x} freed, yet free() would accept it again"
                );
                Reply::Done
            }
            Job::DeallocMany { blocks } => {
                for (p, size, align) in blocks {
                    std::alloc::dealloc(p as *mut u8, layout(size, align));
                }
                Reply::Done
            }
            Job::Realloc {
                p,
                size,
                align,
                new,
                raw,
            } => Reply::Ptr(if raw {
                slabpool::raw::realloc(p as *mut u8, new, align)
            } else {
                std::alloc::realloc(p as *mut u8, layout(size, align), new)
            } as usize),
            Job::Query { p, size, align } => {
                query_global(p as *mut u8, size, align);
                Reply::Done
            }
            Job::Collect => {
                slabpool::collect();
                Reply::Done
            }
            Job::CheckCache => {
                sp::check_thread_cache();
                Reply::Done
            }
            #[cfg(feature = "prof")]
            Job::Profile { action } => {
                profile_global(action);
                Reply::Done
            }
            Job::Parallel { w, n, size, share } => {
                let k = share.blocks.len();
                let mine: Vec<usize> = (0..n)
                    .map(|i| {
                        let p = std::alloc::alloc(layout(size, 8));
                        assert!(!p.is_null(), "parallel: out of memory");
                        fill(p, size, parallel_seed(w, i));
                        p as usize
                    })
                    .collect();
                *share.blocks[w].lock().unwrap() = mine;
                share.barrier.wait();
                let other = (w + 1) % k;
                let theirs = std::mem::take(&mut *share.blocks[other].lock().unwrap());
                share.barrier.wait();
                for (i, p) in theirs.into_iter().enumerate() {
                    check(
                        p as *const u8,
                        size,
                        size,
                        parallel_seed(other, i),
                        "parallel",
                    );
                    std::alloc::dealloc(p as *mut u8, layout(size, 8));
                }
                Reply::Done
            }
        }
    }
}

/// The `Profile` operation on the process's profiler (see `Op::Profile`).
#[cfg(feature = "prof")]
fn profile_global(action: u8) {
    use slabpool::prof;
    match action % 4 {
        0 => prof::deactivate(),
        1 => {
            prof::set_sample_interval(64 << (action / 4 % 10));
            assert!(prof::activate(), "the profiler starts");
        }
        2 => prof::reset_peak(),
        _ => {
            let st = prof::stats();
            assert!(st.live_samples <= st.samples, "{st:?}");
            assert!(st.live_bytes >= 0.0 && st.peak_bytes >= 0.0, "{st:?}");
            let gz = prof::profile(prof::Which::Live).expect("a profile");
            assert!(gz.len() > 20 && gz[..2] == [0x1f, 0x8b], "gzip");
        }
    }
}

/// Checks what `slabpool::raw` says of live block `p`.
fn query_global(p: *mut u8, size: usize, align: usize) {
    use slabpool::raw::{self, Found, Invalid};
    // A sampled small block (the profiler's pool): only its size to ask.
    #[cfg(feature = "prof")]
    if sp::is_sampled(p) {
        assert!(raw::usable_size(p) >= size, "usable_size of sampled {p:p}");
        assert_eq!(raw::find(p), Err(Invalid::Foreign), "find: sampled {p:p}");
        return;
    }
    let found = raw::find(p);
    match (route(size, align), found) {
        (Route::Small(class), Ok(Found::Small(c))) => assert_eq!(class, c, "find: class of {p:p}"),
        (Route::Large, Ok(Found::Large(bytes))) => {
            assert!(bytes >= size, "find: {p:p} has {bytes} bytes")
        }
        // SAFETY: `p` is a live huge block.
        (Route::Huge, Ok(Found::Huge)) => unsafe { sp::check_huge_block(p, size, align) },
        (r, f) => panic!("find({p:p}) = {f:?} for a live {r:?} block"),
    }
    let usable = raw::usable_size(p);
    assert!(usable >= size, "usable_size({p:p}) = {usable} < {size}");
    if usable > 8 {
        assert_eq!(
            raw::find(p.wrapping_add(8)),
            Err(Invalid::Interior),
            "find: interior of {p:p}"
        );
    }
}

/// A worker thread: runs one job at a time, handed over under a lock, so
/// that once the driver has its reply the worker is inside no allocator
/// call (the heap is quiescent for `check_global`).
struct Worker {
    slot: Arc<(Mutex<Slot>, Condvar)>,
    handle: std::thread::JoinHandle<()>,
}

enum Slot {
    Idle,
    Job(Job),
    Done(Reply),
}

impl Worker {
    fn spawn() -> Self {
        let slot = Arc::new((Mutex::new(Slot::Idle), Condvar::new()));
        let theirs = Arc::clone(&slot);
        let handle = std::thread::spawn(move || {
            let (lock, cv) = &*theirs;
            loop {
                let mut s = lock.lock().unwrap();
                let job = loop {
                    match std::mem::replace(&mut *s, Slot::Idle) {
                        Slot::Job(job) => break job,
                        other => *s = other,
                    }
                    s = cv.wait(s).unwrap();
                };
                drop(s);
                let exit = matches!(job, Job::Exit);
                let reply = exec(job);
                *lock.lock().unwrap() = Slot::Done(reply);
                cv.notify_all();
                if exit {
                    return;
                }
            }
        });
        let w = Worker { slot, handle };
        w.call(Job::Nop);
        w
    }

    fn call(&self, job: Job) -> Reply {
        self.start(job);
        self.wait()
    }

    fn start(&self, job: Job) {
        let (lock, cv) = &*self.slot;
        *lock.lock().unwrap() = Slot::Job(job);
        cv.notify_all();
    }

    fn wait(&self) -> Reply {
        let (lock, cv) = &*self.slot;
        let mut s = lock.lock().unwrap();
        loop {
            match std::mem::replace(&mut *s, Slot::Idle) {
                Slot::Done(reply) => return reply,
                other => *s = other,
            }
            s = cv.wait(s).unwrap();
        }
    }
}

/// The process allocator: thread 0 is the calling thread, threads 1.. are
/// workers (a thread exit joins one and starts a new one).
pub struct GlobalBackend {
    workers: Vec<Worker>,
}

impl Default for GlobalBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl GlobalBackend {
    /// Panics unless `SlabPool` is the global allocator. With `prof`,
    /// profiling starts at a mean interval of 2 KiB.
    pub fn new() -> Self {
        let probe = Box::new(0u64);
        #[cfg(feature = "prof")]
        {
            slabpool::prof::set_sample_interval(2048);
            assert!(slabpool::prof::activate(), "the profiler starts");
        }
        let probe = &*probe as *const u64 as *const u8;
        #[cfg(feature = "prof")]
        let sampled = sp::is_sampled(probe);
        #[cfg(not(feature = "prof"))]
        let sampled = false;
        assert!(
            sampled || slabpool::raw::find(probe).is_ok(),
            "the global backend needs SlabPool as the #[global_allocator]"
        );
        Self {
            workers: (1..THREADS).map(|_| Worker::spawn()).collect(),
        }
    }

    fn call(&mut self, t: usize, job: Job) -> Reply {
        if t == 0 {
            exec(job)
        } else {
            self.workers[t - 1].call(job)
        }
    }

    fn ptr(&mut self, t: usize, job: Job) -> *mut u8 {
        match self.call(t, job) {
            Reply::Ptr(p) => p as *mut u8,
            _ => unreachable!(),
        }
    }
}

impl Backend for GlobalBackend {
    fn alloc(&mut self, t: usize, size: usize, align: usize, zeroed: bool, raw: bool) -> *mut u8 {
        self.ptr(
            t,
            Job::Alloc {
                size,
                align,
                zeroed,
                raw,
            },
        )
    }

    fn alloc_many(&mut self, t: usize, n: usize, size: usize, align: usize) -> Vec<*mut u8> {
        match self.call(t, Job::AllocMany { n, size, align }) {
            Reply::Ptrs(v) => v.into_iter().map(|p| p as *mut u8).collect(),
            _ => unreachable!(),
        }
    }

    fn dealloc(&mut self, t: usize, b: &Block, raw: bool) {
        self.call(
            t,
            Job::Dealloc {
                p: b.p as usize,
                size: b.size,
                align: b.align,
                raw,
            },
        );
    }

    fn dealloc_many(&mut self, t: usize, blocks: &[Block]) {
        let blocks = blocks
            .iter()
            .map(|b| (b.p as usize, b.size, b.align))
            .collect();
        self.call(t, Job::DeallocMany { blocks });
    }

    fn realloc(&mut self, t: usize, b: &Block, size: usize, raw: bool) -> *mut u8 {
        self.ptr(
            t,
            Job::Realloc {
                p: b.p as usize,
                size: b.size,
                align: b.align,
                new: size,
                raw,
            },
        )
    }

    fn query(&mut self, t: usize, b: &Block) {
        self.call(
            t,
            Job::Query {
                p: b.p as usize,
                size: b.size,
                align: b.align,
            },
        );
    }

    fn thread_exit(&mut self, t: usize, _respawn: bool) {
        if t == 0 {
            return; // the driving thread cannot exit
        }
        let old = std::mem::replace(&mut self.workers[t - 1], Worker::spawn());
        old.call(Job::Exit);
        old.handle.join().expect("worker panicked");
    }

    fn collect(&mut self, t: usize) {
        self.call(t, Job::Collect);
    }

    #[cfg(feature = "prof")]
    fn profile(&mut self, t: usize, action: u8) {
        self.call(t, Job::Profile { action });
    }

    fn parallel(&mut self, n: usize, size: usize) {
        let k = self.workers.len();
        let share = Arc::new(Share {
            barrier: Barrier::new(k),
            blocks: (0..k).map(|_| Mutex::new(Vec::new())).collect(),
        });
        for (w, worker) in self.workers.iter().enumerate() {
            worker.start(Job::Parallel {
                w,
                n,
                size,
                share: Arc::clone(&share),
            });
        }
        for worker in &self.workers {
            worker.wait();
        }
    }

    fn check(&mut self, model: &Model) {
        // SAFETY: every worker is idle, waiting for a job.
        unsafe { sp::check_global() };
        self.call(model.thread, Job::CheckCache);
    }

    fn finish(&mut self, _model: &Model) {
        for t in 0..THREADS {
            self.call(t, Job::CheckCache);
        }
        slabpool::collect();
        // SAFETY: as in `check`.
        unsafe { sp::check_global() };
    }
}

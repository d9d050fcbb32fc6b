//! The guard pool's fault handler: a SIGSEGV or SIGBUS at an address in a
//! guard chunk is reported as what it is (overflow past a block, underflow,
//! use after free), with the block's address and size, written without
//! allocating; then the signal goes on to the action in place before ours
//! (the program's handler, or the default, which ends the process).
//!
//! Invariant: the previous actions are written once, under the pool lock,
//! before the handler is installed, and only read after.

use super::{Chunk, FREED, FRESH, Place};
use crate::os;
use crate::registry::{self, ChunkKind};
use crate::sync::Ordering::{Acquire, Relaxed};
use crate::sync::UnsafeCell;
use core::ffi::{c_int, c_void};
use core::fmt::Write;
use core::mem::MaybeUninit;
use core::ptr;

/// The signals handled, and where their previous actions are kept.
const SIGNALS: [c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// The actions in place before ours, written once (under the pool lock)
/// before the handler is installed, then only read.
struct Previous(UnsafeCell<[MaybeUninit<libc::sigaction>; 2]>);

// SAFETY: written once before any reader can exist (the handler is
// installed after), then read-only.
unsafe impl Sync for Previous {}

static PREVIOUS: Previous = Previous(UnsafeCell::new([const { MaybeUninit::uninit() }; 2]));

impl Previous {
    fn get(&self, index: usize) -> *mut libc::sigaction {
        self.0.with_mut(|a| {
            // SAFETY: `index` is below 2; the element is plain data.
            unsafe { (*a).as_mut_ptr().add(index).cast() }
        })
    }
}

/// Installs [`on_fault`] for SIGSEGV and SIGBUS, keeping the previous
/// actions. Called once, under the pool lock, before the first chunk.
pub(super) fn install_handler() {
    // SAFETY: a zeroed `sigaction` is a valid value (no handler, no flags,
    // an empty mask); the pointers passed are valid for the calls, and
    // `on_fault` has the signature `SA_SIGINFO` handlers have.
    unsafe {
        let mut ours: libc::sigaction = core::mem::zeroed();
        ours.sa_sigaction = on_fault as *const () as usize;
        ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut ours.sa_mask);
        for (index, &sig) in SIGNALS.iter().enumerate() {
            let previous = PREVIOUS.get(index);
            previous.write(core::mem::zeroed());
            if libc::sigaction(sig, ptr::null(), previous) == 0 {
                libc::sigaction(sig, &ours, ptr::null_mut());
            }
        }
    }
}

/// The SIGSEGV and SIGBUS handler: a fault in the pool is reported, then
/// every fault goes to the previous action.
extern "C" fn on_fault(sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: the kernel passes a valid `siginfo_t` to `SA_SIGINFO` handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if registry::kind_of(addr as *const u8) == ChunkKind::Guard {
        report(sig, addr);
    }
    pass_on(sig, info, context);
}

/// Hands a fault to the action in place before ours: calls it if it was a
/// handler; otherwise restores it and returns, so the faulting access runs
/// again and gets it (a signal sent by a process, which will not recur, is
/// raised again).
fn pass_on(sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    let index = usize::from(sig != SIGNALS[0]);
    let previous = PREVIOUS.get(index);
    // SAFETY: `previous` was written before our handler was installed;
    // a handler it names has the signature its flags say.
    unsafe {
        let handler = (*previous).sa_sigaction;
        if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
            libc::sigaction(sig, previous, ptr::null_mut());
            if (*info).si_code <= 0 {
                libc::raise(sig);
            }
        } else if (*previous).sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                core::mem::transmute(handler);
            f(sig, info, context);
        } else {
            let f: extern "C" fn(c_int) = core::mem::transmute(handler);
            f(sig);
        }
    }
}

/// What a fault in the pool hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Past the end of the block.
    Overflow,
    /// Before its start.
    Underflow,
    /// Inside a freed block.
    UseAfterFree,
    /// Inside a live block (its pages are accessible: not expected).
    Inside,
}

/// The block nearest to a fault, as the report names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    pub fault: Fault,
    pub block: usize,
    pub size: usize,
    /// Milliseconds since the block was freed, if it was.
    pub freed_ms_ago: Option<u32>,
}

/// Which guarded block a fault at `addr` (in the pool) concerns: the
/// nearest used slot's block among the slot the address falls in and its
/// two neighbours. `None` if none of them was ever used.
pub fn diagnose(addr: usize) -> Option<Diagnosis> {
    let chunk = Chunk::of(addr);
    let center = match chunk.place(addr) {
        Place::Header => return None,
        Place::Data(i) | Place::Guard(i) => i,
    };
    let mut best: Option<(usize, Diagnosis)> = None;
    for i in center.saturating_sub(1)..(center + 2).min(chunk.slots()) {
        let slot = chunk.slot(i);
        let state = slot.state.load(Acquire);
        if state == FRESH {
            continue;
        }
        let block = slot.block.load(Relaxed);
        let end = chunk.data_end(i);
        let (fault, distance) = if addr < block {
            (Fault::Underflow, block - addr)
        } else if addr >= end {
            (Fault::Overflow, addr - end + 1)
        } else if state == FREED {
            (Fault::UseAfterFree, 0)
        } else {
            (Fault::Inside, 0)
        };
        let freed_ms_ago =
            (state == FREED).then(|| os::now_ms().wrapping_sub(slot.freed_at.load(Relaxed)));
        let d = Diagnosis {
            fault,
            block,
            size: slot.size.load(Relaxed),
            freed_ms_ago,
        };
        if best.is_none_or(|(b, _)| distance < b) {
            best = Some((distance, d));
        }
    }
    best.map(|(_, d)| d)
}

/// Writes the one-line report of a fault at `addr`, in the pool.
fn report(sig: c_int, addr: usize) {
    let mut out = os::StderrWriter::new();
    let name = if sig == libc::SIGBUS {
        "SIGBUS"
    } else {
        "SIGSEGV"
    };
    let _ = write!(out, "slabpool: {name} at {addr:#x}: ");
    let _ = match diagnose(addr) {
        None => writeln!(out, "access to the guard pool outside any guarded block"),
        Some(d) => {
            let what = match d.fault {
                Fault::Overflow => "overflow past",
                Fault::Underflow => "underflow before",
                Fault::UseAfterFree => "use after free of",
                Fault::Inside => "access inside",
            };
            let freed = if d.freed_ms_ago.is_some() && d.fault != Fault::UseAfterFree {
                "freed "
            } else {
                ""
            };
            let _ = write!(
                out,
                "{what} {freed}guarded block {:#x} of {} bytes (offset ",
                d.block, d.size
            );
            let _ = if addr < d.block {
                write!(out, "-{}", d.block - addr)
            } else {
                write!(out, "{}", addr - d.block)
            };
            match d.freed_ms_ago {
                Some(ms) => writeln!(out, ", freed {ms} ms ago)"),
                None => writeln!(out, ")"),
            }
        }
    };
    out.flush();
}

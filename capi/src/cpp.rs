//! C++'s `operator new` and `operator delete`, so that a C++ program's
//! `new` reaches slabpool without the C++ runtime's own operators in
//! between (each a call and a jump through the PLT to `malloc` or `free`,
//! a fifth of a `new`+`delete` pair's instructions).
//!
//! Semantics are the C++ runtime's, by construction:
//! - the deletes are `free` (every variant: sized, aligned, `nothrow`);
//! - the throwing news try slabpool once, and on failure jump to the next
//!   definition of the same operator (libstdc++'s or libc++'s, found with
//!   `dlsym(RTLD_NEXT)`), which calls `malloc` again and then the
//!   `new_handler` loop, and throws `std::bad_alloc`. They are naked
//!   functions: the jump leaves no frame of ours between the runtime's
//!   operator and its caller, so the exception never unwinds through Rust
//!   (the library aborts on unwinding);
//! - the `nothrow` news on failure call the next `nothrow` definition,
//!   which returns null without letting an exception out.
//!
//! A program that defines its own operators keeps them (the executable's
//! definitions come first); a runtime linked statically into the program
//! uses its own. Only on x86_64 Linux (the stubs are assembly); elsewhere
//! the C++ runtime's operators call `malloc` and `free` as before.

use core::ffi::{CStr, c_void};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use slabpool::raw;

/// The operators whose failure goes to the next definition, in the order
/// of [`NEXT`].
const NAMES: [&CStr; 8] = [
    c"_Znwm",
    c"_Znam",
    c"_ZnwmSt11align_val_t",
    c"_ZnamSt11align_val_t",
    c"_ZnwmRKSt9nothrow_t",
    c"_ZnamRKSt9nothrow_t",
    c"_ZnwmSt11align_val_tRKSt9nothrow_t",
    c"_ZnamSt11align_val_tRKSt9nothrow_t",
];

/// The next definition of each of [`NAMES`], 0 until looked up.
static NEXT: [AtomicUsize; 8] = [const { AtomicUsize::new(0) }; 8];

/// The next definition of operator `which` (an index into [`NAMES`]):
/// looked up once, on the first failure. Aborts with a message if there
/// is none (no C++ runtime, so nothing to throw `std::bad_alloc`).
extern "C" fn next(which: usize) -> usize {
    let cached = NEXT[which].load(Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: a NUL-terminated name; `dlsym` may allocate, through this
    // library, which is not inside an allocation here.
    let found = unsafe { libc::dlsym(libc::RTLD_NEXT, NAMES[which].as_ptr()) } as usize;
    if found == 0 {
        let message = b"slabpool: operator new: out of memory, and no C++ runtime defines \
                        the operator to report it; aborting\n";
        // SAFETY: writes the bytes of a static to stderr; abort has no
        // preconditions.
        unsafe {
            libc::write(2, message.as_ptr().cast(), message.len());
            libc::abort();
        }
    }
    NEXT[which].store(found, Relaxed);
    found
}

/// `operator new(size)` and `new[]`: a block, or null (the stub goes on).
extern "C" fn new(size: usize) -> *mut c_void {
    raw::malloc(size).cast()
}

/// `operator new(size, align_val_t)` and `new[]`.
extern "C" fn new_aligned(size: usize, align: usize) -> *mut c_void {
    raw::alloc(size, align).cast()
}

/// A throwing operator of one argument: [`new`], else the next definition
/// (a tail jump, with the size in place).
macro_rules! throwing_new {
    ($name:ident, $which:expr) => {
        /// # Safety
        /// Called from C++ as the operator it names.
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(size: usize) -> *mut c_void {
            core::arch::naked_asm!(
                // The size survives the call; the push aligns the stack.
                // (Call frame information, so that debuggers and
                // profilers unwind through the stub.)
                ".cfi_startproc",
                "push rdi",
                ".cfi_adjust_cfa_offset 8",
                "call {new}",
                "pop rdi",
                ".cfi_adjust_cfa_offset -8",
                "test rax, rax",
                "jz 2f",
                "ret",
                "2:",
                "push rdi",
                ".cfi_adjust_cfa_offset 8",
                "mov edi, {which}",
                "call {next}",
                "pop rdi",
                ".cfi_adjust_cfa_offset -8",
                "jmp rax",
                ".cfi_endproc",
                new = sym new,
                next = sym next,
                which = const $which,
            )
        }
    };
}

/// A throwing operator of two arguments (size and alignment): as
/// [`throwing_new`], with [`new_aligned`].
macro_rules! throwing_new_aligned {
    ($name:ident, $which:expr) => {
        /// # Safety
        /// Called from C++ as the operator it names.
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(size: usize, align: usize) -> *mut c_void {
            core::arch::naked_asm!(
                // Both arguments survive the call; three words keep the
                // stack aligned.
                ".cfi_startproc",
                "push rdi",
                "push rsi",
                "sub rsp, 8",
                ".cfi_adjust_cfa_offset 24",
                "call {new}",
                "add rsp, 8",
                "pop rsi",
                "pop rdi",
                ".cfi_adjust_cfa_offset -24",
                "test rax, rax",
                "jz 2f",
                "ret",
                "2:",
                "push rdi",
                "push rsi",
                "sub rsp, 8",
                ".cfi_adjust_cfa_offset 24",
                "mov edi, {which}",
                "call {next}",
                "add rsp, 8",
                "pop rsi",
                "pop rdi",
                ".cfi_adjust_cfa_offset -24",
                "jmp rax",
                ".cfi_endproc",
                new = sym new_aligned,
                next = sym next,
                which = const $which,
            )
        }
    };
}

throwing_new!(_Znwm, 0);
throwing_new!(_Znam, 1);
throwing_new_aligned!(_ZnwmSt11align_val_t, 2);
throwing_new_aligned!(_ZnamSt11align_val_t, 3);

/// A `nothrow` new of the C++ runtime.
type NothrowNew = unsafe extern "C" fn(usize, *const c_void) -> *mut c_void;
/// An aligned `nothrow` new of the C++ runtime.
type NothrowNewAligned = unsafe extern "C" fn(usize, usize, *const c_void) -> *mut c_void;

/// A `nothrow` new: slabpool's block, else what the runtime's operator
/// `which` (an index into [`NAMES`]) returns: a block, or null rather than
/// an exception.
fn nothrow_new(size: usize, tag: *const c_void, which: usize) -> *mut c_void {
    let p = new(size);
    if !p.is_null() {
        return p;
    }
    // SAFETY: `next(which)` is the runtime's operator of this type.
    unsafe { core::mem::transmute::<usize, NothrowNew>(next(which))(size, tag) }
}

/// As [`nothrow_new`], aligned.
fn nothrow_new_aligned(size: usize, align: usize, tag: *const c_void, which: usize) -> *mut c_void {
    let p = new_aligned(size, align);
    if !p.is_null() {
        return p;
    }
    // SAFETY: `next(which)` is the runtime's operator of this type.
    unsafe { core::mem::transmute::<usize, NothrowNewAligned>(next(which))(size, align, tag) }
}

/// `operator new(size, nothrow_t)`.
///
/// # Safety
/// Called from C++ as that operator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _ZnwmRKSt9nothrow_t(size: usize, tag: *const c_void) -> *mut c_void {
    nothrow_new(size, tag, 4)
}

/// `operator new[](size, nothrow_t)`.
///
/// # Safety
/// Called from C++ as that operator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _ZnamRKSt9nothrow_t(size: usize, tag: *const c_void) -> *mut c_void {
    nothrow_new(size, tag, 5)
}

/// `operator new(size, align_val_t, nothrow_t)`.
///
/// # Safety
/// Called from C++ as that operator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _ZnwmSt11align_val_tRKSt9nothrow_t(
    size: usize,
    align: usize,
    tag: *const c_void,
) -> *mut c_void {
    nothrow_new_aligned(size, align, tag, 6)
}

/// `operator new[](size, align_val_t, nothrow_t)`.
///
/// # Safety
/// Called from C++ as that operator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _ZnamSt11align_val_tRKSt9nothrow_t(
    size: usize,
    align: usize,
    tag: *const c_void,
) -> *mut c_void {
    nothrow_new_aligned(size, align, tag, 7)
}

/// Every `operator delete`: `free` of the pointer (the size, alignment and
/// `nothrow` tag a variant passes are not needed to find the block).
macro_rules! delete {
    ($($name:ident ( $($arg:ident : $ty:ty),* );)*) => {$(
        /// # Safety
        /// Called from C++ as the operator it names: `p` is null or a live
        /// block of this allocator, given up.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(p: *mut c_void $(, $arg: $ty)*) {
            $(let _ = $arg;)*
            // SAFETY: forwarded contract; invalid pointers abort.
            unsafe { raw::free(p.cast()) }
        }
    )*};
}

delete! {
    _ZdlPv();
    _ZdaPv();
    _ZdlPvm(size: usize);
    _ZdaPvm(size: usize);
    _ZdlPvRKSt9nothrow_t(tag: *const c_void);
    _ZdaPvRKSt9nothrow_t(tag: *const c_void);
    _ZdlPvSt11align_val_t(align: usize);
    _ZdaPvSt11align_val_t(align: usize);
    _ZdlPvmSt11align_val_t(size: usize, align: usize);
    _ZdaPvmSt11align_val_t(size: usize, align: usize);
    _ZdlPvSt11align_val_tRKSt9nothrow_t(align: usize, tag: *const c_void);
    _ZdaPvSt11align_val_tRKSt9nothrow_t(align: usize, tag: *const c_void);
}

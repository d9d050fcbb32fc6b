//! What std provides to a library that this one, built without it (see
//! the crate attributes), provides itself:
//!
//! - the link to the C library (`-lc`, whose linker script also brings
//!   `libc_nonshared.a`'s `atexit`);
//! - the panic handler: a panic (none is expected: every path returns null
//!   or reports misuse and aborts) aborts at once, as the release profile
//!   would after printing;
//! - `rust_eh_personality`, which the precompiled `core` names in its
//!   unwind tables: never called (nothing unwinds), and hidden, so it is
//!   not exported to the program (where it could stand in for a Rust
//!   library's own).

#[link(name = "c")]
unsafe extern "C" {}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

core::arch::global_asm!(
    ".pushsection .text.rust_eh_personality,\"ax\",@progbits",
    ".globl rust_eh_personality",
    ".hidden rust_eh_personality",
    ".type rust_eh_personality,@function",
    "rust_eh_personality:",
    "ud2",
    ".size rust_eh_personality, . - rust_eh_personality",
    ".popsection",
);

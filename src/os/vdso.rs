//! The coarse monotonic clock read straight from the vDSO, the small shared
//! object the kernel maps into every process (`AT_SYSINFO_EHDR`): its
//! `clock_gettime` is found once, by name, in the vDSO's dynamic symbol
//! table, and called through a pointer kept in a static.
//!
//! The C library's `clock_gettime` calls the same function, but calling it
//! makes every program under the preload fault in the C library's code
//! around it (the kernel maps the pages of a 64 KiB window per fault),
//! which glibc's own malloc never touches. The C library's function stays
//! the fallback: no vDSO (qemu-user), no `DT_HASH` table, or no symbol of
//! that name.
//!
//! Invariant: [`CLOCK`] is 0 (not looked up yet), [`NONE`] (looked up, not
//! found) or the address of the vDSO's function; it is written only with
//! the result of [`find`], which is the same in every thread.

use core::ffi::CStr;

use crate::sync::Ordering::Relaxed;
// Not modeled by loom: under loom the clock is the model's (`sync::clock`).
use crate::sync::unmodeled::AtomicUsize;

/// The vDSO's `clock_gettime`, as the kernel names it.
#[cfg(target_arch = "x86_64")]
const NAME: &CStr = c"__vdso_clock_gettime";
#[cfg(target_arch = "aarch64")]
const NAME: &CStr = c"__kernel_clock_gettime";

type ClockGettime = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int;

/// Looked up and not found.
const NONE: usize = 1;

// The ELF facts read here (the `libc` crate has no `Elf64_Dyn` on Linux).
const AT_SYSINFO_EHDR: libc::c_ulong = 33;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const DT_NULL: i64 = 0;
const DT_HASH: i64 = 4;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const SHN_UNDEF: u16 = 0;
const STT_FUNC: u8 = 2;

/// An entry of the dynamic section.
#[derive(Clone, Copy)]
#[repr(C)]
struct Elf64Dyn {
    tag: i64,
    value: u64,
}

/// The vDSO's function (see the invariant above).
static CLOCK: AtomicUsize = AtomicUsize::new(0);

/// `clock_gettime(clock)`, through the vDSO when it has the function.
pub fn clock_gettime(clock: libc::clockid_t) -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut f = CLOCK.load(Relaxed);
    if f == 0 {
        f = find().unwrap_or(NONE);
        CLOCK.store(f, Relaxed);
    }
    if f == NONE {
        // SAFETY: `ts` is a valid out-pointer.
        unsafe { libc::clock_gettime(clock, &mut ts) };
    } else {
        // SAFETY: `f` is the vDSO's clock_gettime (see `find`), which has
        // the C library's signature; `ts` is a valid out-pointer.
        unsafe { core::mem::transmute::<usize, ClockGettime>(f)(clock, &mut ts) };
    }
    ts
}

/// The address of the vDSO's `clock_gettime`, if the process has a vDSO
/// with a `DT_HASH` table (every x86_64 and arm64 kernel's has one) that
/// defines it.
pub fn find() -> Option<usize> {
    // SAFETY: getauxval has no preconditions.
    let base = unsafe { libc::getauxval(AT_SYSINFO_EHDR) } as usize;
    if base == 0 {
        return None;
    }
    // SAFETY: the kernel maps the vDSO, a whole ELF image with its headers,
    // readable at `base` for the life of the process; its headers are the
    // kernel's own.
    unsafe { lookup(base, NAME) }
}

/// Reads a `T` at `addr`.
///
/// # Safety
/// `addr` lies inside the ELF image [`lookup`] reads, `T`-aligned, with a
/// whole `T` there.
unsafe fn at<T: Copy>(addr: usize) -> T {
    // SAFETY: the caller's contract.
    unsafe { (addr as *const T).read() }
}

/// The address of the defined function `name` in the ELF image mapped at
/// `base` (read through its dynamic section and `DT_HASH` table).
///
/// # Safety
/// `base` must be a readable, well-formed 64-bit ELF image as the kernel
/// maps it: every offset and address its headers give lies inside it.
unsafe fn lookup(base: usize, name: &CStr) -> Option<usize> {
    // SAFETY: the ELF header starts the image.
    let eh: libc::Elf64_Ehdr = unsafe { at(base) };
    if eh.e_ident[..4] != *b"\x7fELF" || eh.e_ident[4] != 2 {
        return None;
    }
    let phdr = |i: usize| -> libc::Elf64_Phdr {
        // SAFETY: one of the `e_phnum` program headers at `e_phoff`.
        unsafe { at(base + eh.e_phoff as usize + i * size_of::<libc::Elf64_Phdr>()) }
    };
    let phdrs = 0..usize::from(eh.e_phnum);
    // Addresses in the image are its virtual addresses plus `bias`.
    let load = phdrs.clone().map(phdr).find(|p| p.p_type == PT_LOAD)?;
    let bias = (base + load.p_offset as usize).wrapping_sub(load.p_vaddr as usize);
    let dynamic = phdrs.map(phdr).find(|p| p.p_type == PT_DYNAMIC)?;
    let (mut symtab, mut strtab, mut hash) = (0usize, 0usize, 0usize);
    let mut entry = base + dynamic.p_offset as usize;
    loop {
        // SAFETY: an entry of the dynamic section, which ends at DT_NULL.
        let d: Elf64Dyn = unsafe { at(entry) };
        let at_value = bias.wrapping_add(d.value as usize);
        match d.tag {
            DT_NULL => break,
            DT_SYMTAB => symtab = at_value,
            DT_STRTAB => strtab = at_value,
            DT_HASH => hash = at_value,
            _ => {}
        }
        entry += size_of::<Elf64Dyn>();
    }
    if symtab == 0 || strtab == 0 || hash == 0 {
        return None;
    }
    // SAFETY: DT_HASH starts with nbucket and nchain, the number of symbols.
    let symbols = unsafe { at::<u32>(hash + 4) } as usize;
    (0..symbols).find_map(|i| {
        // SAFETY: symbol `i` of the table's `symbols`.
        let sym: libc::Elf64_Sym = unsafe { at(symtab + i * size_of::<libc::Elf64_Sym>()) };
        if sym.st_shndx == SHN_UNDEF || sym.st_info & 0xf != STT_FUNC {
            return None;
        }
        // SAFETY: a NUL-terminated name in the string table.
        let sym_name =
            unsafe { CStr::from_ptr((strtab + sym.st_name as usize) as *const libc::c_char) };
        (sym_name == name).then(|| bias.wrapping_add(sym.st_value as usize))
    })
}

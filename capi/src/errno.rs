//! `errno`: set on failure, as glibc does.

/// Sets the calling thread's `errno`.
#[cold]
pub fn set(code: i32) {
    // SAFETY: `__errno_location` returns the calling thread's errno slot,
    // valid for the thread's life.
    unsafe { *libc::__errno_location() = code };
}

/// Sets `errno` to ENOMEM and returns null: every allocation failure.
#[cold]
pub fn enomem<T>() -> *mut T {
    set(libc::ENOMEM);
    core::ptr::null_mut()
}

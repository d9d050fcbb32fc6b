//! slabpool: temporary stub while the core is written. Delegates to System.
use core::alloc::{GlobalAlloc, Layout};
pub struct SlabPool;
unsafe impl GlobalAlloc for SlabPool {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 { unsafe { std::alloc::System.alloc(l) } }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) { unsafe { std::alloc::System.dealloc(p, l) } }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 { unsafe { std::alloc::System.alloc_zeroed(l) } }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 { unsafe { std::alloc::System.realloc(p, l, n) } }
}

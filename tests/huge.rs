//! Huge blocks (direct mappings) through the global allocator: a 1 GiB
//! block is usable, zeroed without a memset, resized with `mremap`, and its
//! address space goes back to the OS when freed.

mod common;

use common::status_kib;
use std::alloc::{Layout, alloc, alloc_zeroed, dealloc, realloc};
use std::hint::black_box;

#[global_allocator]
static A: slabpool::SlabPool = slabpool::SlabPool;

const GIB: usize = 1 << 30;

/// One test function: it measures the address space of the whole process,
/// which a second harness thread starting meanwhile would grow (glibc
/// reserves 64 MiB for a thread's first `malloc` of its own).
#[test]
fn huge_blocks() {
    one_gib_blocks_return_their_address_space();
    absurd_requests_return_null();
}

fn one_gib_blocks_return_their_address_space() {
    let layout = Layout::from_size_align(GIB, 64).unwrap();
    let vm_before = status_kib("VmSize");
    for round in 0..4 {
        let zeroed = round % 2 == 0;
        // SAFETY: a valid non-zero layout.
        let p = unsafe {
            if zeroed {
                alloc_zeroed(layout)
            } else {
                alloc(layout)
            }
        };
        assert!(!p.is_null());
        let vm_live = status_kib("VmSize");
        assert!(
            vm_live + 1024 >= vm_before + GIB / 1024,
            "1 GiB is mapped: VmSize {vm_live} KiB, {vm_before} KiB before"
        );
        // Touch one byte per MiB; zeroed memory reads zero.
        for off in (0..GIB).step_by(1 << 20) {
            // SAFETY: `off < GIB`, inside the block.
            unsafe {
                if zeroed {
                    assert_eq!(*p.add(off), 0);
                }
                *p.add(off) = (off >> 20) as u8;
            }
        }
        // Grow by mremap (no copy through user space) and check contents.
        // SAFETY: `p` is live with `layout`; the new size is valid.
        let q = unsafe { realloc(p, layout, GIB + (64 << 20)) };
        assert!(!q.is_null());
        for off in (0..GIB).step_by(1 << 20) {
            // SAFETY: inside the grown block.
            assert_eq!(unsafe { *q.add(off) }, (off >> 20) as u8);
        }
        // SAFETY: `q` is live with the grown size.
        unsafe { dealloc(q, Layout::from_size_align(GIB + (64 << 20), 64).unwrap()) };
        let vm_after = status_kib("VmSize");
        assert!(
            vm_after < vm_before + 64 * 1024,
            "round {round}: VmSize {vm_after} KiB after free, {vm_before} KiB before"
        );
    }
}

fn absurd_requests_return_null() {
    // SAFETY: valid layouts; a null result is the expected answer.
    unsafe {
        let l = Layout::from_size_align(isize::MAX as usize - 4096, 8).unwrap();
        // black_box: LLVM may assume an unused allocation succeeded.
        assert!(black_box(alloc(l)).is_null());
        assert!(black_box(alloc_zeroed(l)).is_null());
        let l = Layout::from_size_align(1 << 47, 1 << 20).unwrap();
        assert!(black_box(alloc(l)).is_null());
        let small = Layout::from_size_align(16, 8).unwrap();
        let p = alloc(small);
        assert!(!p.is_null());
        assert!(black_box(realloc(p, small, isize::MAX as usize - 8192)).is_null());
        // The block is still ours after a failed realloc.
        *p = 1;
        dealloc(p, small);
    }
}

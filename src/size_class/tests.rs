//! Unit tests of `size_class`.

use super::*;

#[test]
fn every_size_maps_to_the_smallest_fitting_class() {
    let mut class = 0;
    for size in 1..=SMALL_LIMIT {
        if size > size_of(class) {
            class += 1;
        }
        assert_eq!(class_of(size), class, "size {size}");
        assert!(size_of(class) >= size);
        assert!(class == 0 || size_of(class - 1) < size);
    }
    assert_eq!(class_of(0), 0);
}

#[test]
fn classes_grow_and_bound_waste() {
    for i in 1..NUM_CLASSES {
        let (prev, cur) = (size_of(i - 1), size_of(i));
        assert!(cur > prev && cur % 8 == 0);
        if prev < 64 {
            assert_eq!(cur - prev, 8, "exact 8-byte steps up to 64");
        } else {
            // Worst request: one byte above the previous class; it
            // wastes at most a quarter of itself.
            let waste = (cur - prev - 1) as f64 / (prev + 1) as f64;
            assert!(waste <= 0.25, "class {i}: waste {waste}");
        }
    }
    // At most four classes per doubling above 64 bytes.
    let mut low = 64;
    while low < SMALL_LIMIT {
        let n = (0..NUM_CLASSES)
            .filter(|&i| size_of(i) > low && size_of(i) <= 2 * low)
            .count();
        assert_eq!(n, 4, "classes in ({low}, {}]", 2 * low);
        low *= 2;
    }
}

#[test]
fn slab_geometry() {
    for (i, c) in CLASSES.iter().enumerate() {
        let slab = c.slab_pages as usize * PAGE;
        assert!(slab >= SLAB_MIN_BYTES, "class {i}");
        assert_eq!(c.capacity as usize, slab / c.size as usize);
        assert!(c.capacity as usize >= SLAB_MIN_BLOCKS);
        // Tail waste under 1/8 of the slab.
        assert!(slab % c.size as usize * 8 <= slab, "class {i} tail");
        // A slab start aligned to align_pages pages aligns every block
        // to the largest power of two dividing the class size.
        let natural = c.size as usize & (c.size as usize).wrapping_neg();
        assert_eq!((c.align_pages as usize * PAGE) % natural.min(slab), 0);
        assert!(c.batch >= 2 && c.batch <= c.max_cached);
        // A thread cache's share of one class: at most four batches, and
        // at most 64 KiB (or one batch) of a class of blocks larger than
        // CACHE_LARGE_CLASS_ABOVE (1 KiB).
        let (size, batch, cached) = (c.size as usize, c.batch as usize, c.max_cached as usize);
        assert!(cached <= CACHE_MAX_BATCHES * batch, "class {i}");
        if size > CACHE_LARGE_CLASS_ABOVE {
            assert!(
                cached * size <= CACHE_LARGE_CLASS_BYTES.max(batch * size),
                "class {i}"
            );
        }
    }
}

#[test]
fn rounded_requests_land_on_aligned_classes() {
    // For every alignment up to the small limit and every size, the class
    // of the size rounded up to the alignment is a multiple of it.
    let mut align = 1;
    while align <= SMALL_LIMIT {
        for size in (1..=SMALL_LIMIT).step_by(7) {
            let rounded = crate::os::align_up(size, align);
            if rounded <= SMALL_LIMIT {
                assert_eq!(size_of(class_of(rounded)) % align, 0, "{size} @ {align}");
            }
        }
        align *= 2;
    }
}

#[test]
fn c_malloc_classes_fit_and_align_every_size() {
    // C's `malloc`: the smallest class holding the size rounded up to its
    // alignment (8 bytes up to 8, then 16), for every small size; none past.
    for size in 0..=SMALL_LIMIT {
        let align = if size <= 8 { 8 } else { 16 };
        let want = class_of(crate::os::align_up(size.max(1), align));
        let class = c_class_of(size).expect("a small size has a class").index();
        assert_eq!(class, want, "size {size}");
        assert_eq!(size_of(class) % align, 0, "size {size}");
        if size > LOOKUP_LIMIT {
            assert!(c_table_class(size).is_none());
        }
    }
    assert!(c_class_of(SMALL_LIMIT + 1).is_none());
}

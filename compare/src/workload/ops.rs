//! Counting allocator operations in the workloads' own code, for the
//! throughput figures of scaling mode (M ops/s).
//!
//! The convention: every call the workload's code makes to the allocator
//! counts one — an allocation, a free, or a reallocation (growing a `Vec`
//! is one realloc, not an allocation and a free). What is counted is what
//! the code visibly allocates: its blocks, boxes, strings and the
//! containers that hold them, including their growth (seen as a change of
//! `capacity()`). The standard library's own bookkeeping (thread start-up,
//! channel buffers) is not counted. Counts depend only on the workload's
//! parameters, never on scheduling, so every allocator and every run
//! reports the same number; `tests/ops_count.rs` checks each workload's
//! count against a counting `#[global_allocator]`.

/// A checksum and an operation count, summed over threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Self-check value (summed with wrapping adds: order-independent).
    pub checksum: u64,
    /// Allocator operations.
    pub ops: u64,
}

impl std::ops::Add for Tally {
    type Output = Tally;

    fn add(self, other: Tally) -> Tally {
        Tally {
            checksum: self.checksum.wrapping_add(other.checksum),
            ops: self.ops + other.ops,
        }
    }
}

impl std::iter::Sum for Tally {
    fn sum<I: Iterator<Item = Tally>>(tallies: I) -> Tally {
        tallies.fold(Tally::default(), |a, b| a + b)
    }
}

/// One operation if a container's capacity changed (its buffer was
/// allocated or reallocated), else none.
pub fn grew(capacity_before: usize, capacity_after: usize) -> u64 {
    u64::from(capacity_before != capacity_after)
}

/// The operations of a hash table's growth, seen as a change of
/// `capacity()`: its first table is one allocation, every later growth an
/// allocation and a free (the table moves, it is not reallocated). Only
/// for tables nothing is removed from: a removal can leave a tombstone,
/// which lowers `capacity()` without any allocation.
pub fn rehashed(capacity_before: usize, capacity_after: usize) -> u64 {
    match (capacity_before, capacity_after) {
        (a, b) if a == b => 0,
        (0, _) => 1,
        _ => 2,
    }
}

/// One operation if a container about to be dropped owns a buffer (a
/// free), else none.
pub fn owns(capacity: usize) -> u64 {
    u64::from(capacity > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_add_and_growth_counts() {
        let a = Tally {
            checksum: u64::MAX,
            ops: 3,
        };
        let b = Tally {
            checksum: 2,
            ops: 4,
        };
        assert_eq!(
            a + b,
            Tally {
                checksum: 1,
                ops: 7
            }
        );
        assert_eq!([a, b, b].into_iter().sum::<Tally>().ops, 11);
        let mut v: Vec<u8> = Vec::new();
        let mut ops = 0;
        for i in 0..100 {
            let cap = v.capacity();
            v.push(i);
            ops += grew(cap, v.capacity());
        }
        // A few (re)allocations for 100 pushes, never one per push.
        assert!((2..10).contains(&ops), "{ops}");
        assert_eq!(
            (owns(v.capacity()), owns(Vec::<u8>::new().capacity())),
            (1, 0)
        );
        assert_eq!((rehashed(0, 3), rehashed(3, 7), rehashed(7, 7)), (1, 2, 0));
    }
}

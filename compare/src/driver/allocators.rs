//! The allocators under comparison: their workload binaries and the crates
//! whose versions the report names.

/// One allocator in the suite.
pub struct Allocator {
    /// Name in reports and on the command line.
    pub name: &'static str,
    /// Its workload binary (`[[bin]]` in compare/Cargo.toml).
    pub bin: &'static str,
    /// Whether it is a peer (built only with its `peer-*` feature).
    pub peer: bool,
    /// The bench crate's feature that builds its workload binary (peers).
    pub feature: Option<&'static str>,
    /// Crates whose versions identify it (first: the one a user depends on).
    pub crates: &'static [&'static str],
}

pub const SYSTEM: &str = "System";
pub const MIMALLOC: &str = "mimalloc";

/// Every allocator, in report order.
pub const ALL: &[Allocator] = &[
    Allocator {
        name: SYSTEM,
        bin: "wl-system",
        peer: false,
        feature: None,
        crates: &[],
    },
    Allocator {
        name: "slabpool",
        bin: "wl-slabpool",
        peer: false,
        feature: None,
        crates: &["slabpool"],
    },
    Allocator {
        name: MIMALLOC,
        bin: "wl-mimalloc",
        peer: true,
        feature: Some("peer-mimalloc"),
        crates: &["mimalloc", "libmimalloc-sys"],
    },
    Allocator {
        name: "jemalloc",
        bin: "wl-jemalloc",
        peer: true,
        feature: Some("peer-jemalloc"),
        crates: &["tikv-jemallocator", "tikv-jemalloc-sys"],
    },
    Allocator {
        name: "snmalloc",
        bin: "wl-snmalloc",
        peer: true,
        feature: Some("peer-snmalloc"),
        crates: &["snmalloc-rs", "snmalloc-sys"],
    },
    Allocator {
        name: "rpmalloc",
        bin: "wl-rpmalloc",
        peer: true,
        feature: Some("peer-rpmalloc"),
        crates: &["rpmalloc", "rpmalloc-sys"],
    },
];

/// The allocator called `name` (case-insensitive).
pub fn find(name: &str) -> Option<&'static Allocator> {
    ALL.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

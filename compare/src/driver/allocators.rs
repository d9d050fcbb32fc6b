//! The allocators under comparison: their workload binaries, how they are
//! built and run, and the crates whose versions the report names.

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
    /// Built in a cargo invocation of its own: its feature changes how a
    /// dependency of the other binaries is built (cargo unifies features
    /// within one invocation).
    pub alone: bool,
    /// In the default lineup (else only by `--alloc` or `--prof`).
    pub by_default: bool,
    /// The environment of its runs.
    pub env: &'static [(&'static str, &'static str)],
    /// Appended to its version line in the reports.
    pub note: &'static str,
}

pub const SYSTEM: &str = "System";
pub const MIMALLOC: &str = "mimalloc";
/// slabpool with its heap profiler on.
pub const SLABPOOL_PROF: &str = "slabpool-prof";
/// jemalloc with its heap profiler on.
pub const JEMALLOC_PROF: &str = "jemalloc-prof";

/// An allocator of the default lineup, built with the others.
const fn plain(
    name: &'static str,
    bin: &'static str,
    feature: Option<&'static str>,
    crates: &'static [&'static str],
) -> Allocator {
    Allocator {
        name,
        bin,
        peer: feature.is_some(),
        feature,
        crates,
        alone: false,
        by_default: true,
        env: &[],
        note: "",
    }
}

/// Every allocator, in report order.
pub const ALL: &[Allocator] = &[
    plain(SYSTEM, "wl-system", None, &[]),
    plain("slabpool", "wl-slabpool", None, &["slabpool"]),
    Allocator {
        name: SLABPOOL_PROF,
        bin: "wl-slabpool-prof",
        peer: false,
        feature: Some("prof-slabpool"),
        crates: &["slabpool"],
        alone: true,
        by_default: false,
        env: &[("SLABPOOL_PROF", "1")],
        note: "prof feature, SLABPOOL_PROF=1 (512 KiB)",
    },
    plain(
        MIMALLOC,
        "wl-mimalloc",
        Some("peer-mimalloc"),
        &["mimalloc", "libmimalloc-sys"],
    ),
    plain(
        "jemalloc",
        "wl-jemalloc",
        Some("peer-jemalloc"),
        &["tikv-jemallocator", "tikv-jemalloc-sys"],
    ),
    Allocator {
        name: JEMALLOC_PROF,
        bin: "wl-jemalloc-prof",
        peer: true,
        feature: Some("peer-jemalloc-prof"),
        crates: &["tikv-jemallocator", "tikv-jemalloc-sys"],
        alone: true,
        by_default: false,
        env: &[(
            "_RJEM_MALLOC_CONF",
            "prof:true,prof_active:true,lg_prof_sample:19",
        )],
        note: "profiling feature, prof:true,lg_prof_sample:19 (512 KiB)",
    },
    plain(
        "snmalloc",
        "wl-snmalloc",
        Some("peer-snmalloc"),
        &["snmalloc-rs", "snmalloc-sys"],
    ),
    plain(
        "rpmalloc",
        "wl-rpmalloc",
        Some("peer-rpmalloc"),
        &["rpmalloc", "rpmalloc-sys"],
    ),
];

/// The allocator called `name` (case-insensitive).
pub fn find(name: &str) -> Option<&'static Allocator> {
    ALL.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

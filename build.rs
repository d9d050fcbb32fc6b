//! Build script: sets one cfg, `native`, on the targets slabpool has a port
//! to (Linux on x86_64 and aarch64). Elsewhere `SlabPool` forwards to the
//! system allocator (`src/fallback.rs`), so an application that names it as
//! its `#[global_allocator]` builds everywhere without a `cfg` of its own.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(native)");
    println!("cargo::rerun-if-changed=build.rs");
    let var = |name| std::env::var(name).unwrap_or_default();
    let (os, arch) = (var("CARGO_CFG_TARGET_OS"), var("CARGO_CFG_TARGET_ARCH"));
    if os == "linux" && matches!(arch.as_str(), "x86_64" | "aarch64") {
        println!("cargo::rustc-cfg=native");
    }
}

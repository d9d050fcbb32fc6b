#!/bin/sh
# Builds libslabpool.so for programs linked with musl (Alpine, static-binary
# toolchains): <target dir>/musl-so/x86_64-unknown-linux-musl/release/
# libslabpool.so, whose path is the last line printed. Extra arguments go to
# cargo (`--features hardened` builds the hardened library).
#
# Needs the Rust target (`rustup target add x86_64-unknown-linux-musl`) and
# musl-gcc (Debian's musl-tools), which links against musl's libc.so.
#
# The default and hardened libraries are no_std and link only libc.so. With
# std (the prof feature), rustc links a dynamic musl library against
# libgcc_s, for unwinding; a system without a musl build of libgcc_s
# (Debian) cannot link it. The library never unwinds (its release profile
# aborts on panic), so -lgcc_s is pointed at the static LLVM libunwind that
# Rust's musl target ships, and the library needs nothing but musl's libc.so.
set -eu
target=x86_64-unknown-linux-musl
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${CARGO_TARGET_DIR:-$root/target}/musl-so
unwind=$(rustc --print sysroot)/lib/rustlib/$target/lib/self-contained/libunwind.a
if [ ! -f "$unwind" ]; then
    echo "build-musl.sh: no $unwind: install the target (rustup target add $target)" >&2
    exit 1
fi
if ! command -v musl-gcc >/dev/null 2>&1; then
    echo "build-musl.sh: no musl-gcc (Debian: apt-get install musl-tools)" >&2
    exit 1
fi
mkdir -p "$dir/shim"
echo "INPUT($unwind)" >"$dir/shim/libgcc_s.so"
# Its own target directory (other flags than the musl tests' builds), and
# RUSTFLAGS set whole: flags from the caller's environment would change the
# link.
unset CARGO_ENCODED_RUSTFLAGS
CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=musl-gcc \
    RUSTFLAGS="-C target-feature=-crt-static -L native=$dir/shim" \
    cargo build --release -p slabpool-capi --target "$target" --target-dir "$dir" \
    --manifest-path "$root/Cargo.toml" "$@" >&2
echo "$dir/$target/release/libslabpool.so"

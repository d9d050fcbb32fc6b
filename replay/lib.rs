//! Nothing: this crate exists for its test, `tests/fuzz_replay.rs` (see
//! `Cargo.toml`).

//! A small service that leaks through one call path, profiled with
//! slabpool's heap profiler (README, "Heap profiling"):
//!
//! ```text
//! RUSTFLAGS="-C force-frame-pointers=yes" cargo run --release --features prof --example leak -- leak.pb.gz
//! go tool pprof -top target/release/examples/leak leak.pb.gz
//! ```
//!
//! Each request parses a header, renders a response (both freed at once)
//! and, on one path in ten, stores a session that is never removed: the
//! leak. The live heap profile names `remember_session`.
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Mutex;

#[global_allocator]
static A: slabpool::SlabPool = slabpool::SlabPool;

/// Sessions stored and never removed.
static SESSIONS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

#[inline(never)]
fn parse_headers(id: u64) -> HashMap<String, String> {
    (0..8)
        .map(|i| (format!("x-header-{i}"), format!("value {id} {i}")))
        .collect()
}

#[inline(never)]
fn render_response(headers: &HashMap<String, String>) -> Vec<u8> {
    let mut body = Vec::with_capacity(16 * 1024);
    for (k, v) in headers {
        body.extend_from_slice(k.as_bytes());
        body.extend_from_slice(v.as_bytes());
    }
    body.resize(16 * 1024, b' ');
    body
}

/// The leak: a 4 KiB session per login, kept forever.
#[inline(never)]
fn remember_session(id: u64) {
    let mut session = vec![0u8; 4096];
    session[..8].copy_from_slice(&id.to_le_bytes());
    SESSIONS.lock().unwrap().push(session);
}

#[inline(never)]
fn handle(id: u64) -> usize {
    let headers = parse_headers(id);
    let response = render_response(&headers);
    if id % 10 == 0 {
        remember_session(id);
    }
    black_box(response).len()
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "leak.pb.gz".into());
    if !slabpool::prof::is_active() && !slabpool::prof::activate() {
        eprintln!("the profiler could not map its memory");
        std::process::exit(1);
    }
    let mut served = 0;
    for id in 0..200_000 {
        served += handle(id);
    }
    slabpool::prof::dump(&path).expect("write the profile");
    let st = slabpool::prof::stats();
    let leaked = SESSIONS.lock().unwrap().len();
    println!(
        "served {served} bytes; leaked {leaked} sessions ({} KiB); profile: {} samples, {:.0} KiB estimated live; written to {path}",
        leaked * 4,
        st.samples,
        st.live_bytes / 1024.0
    );
}

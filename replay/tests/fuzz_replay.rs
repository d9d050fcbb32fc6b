//! The fuzz targets' operations on stable Rust, in every `cargo test`:
//! replays every file of `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/`
//! on its target's backend, then runs operation lists decoded (with the
//! targets' own `arbitrary` code, `fuzz/ops`) from a seeded generator on
//! both backends. A heap instance with simulated threads is checked after
//! every operation; the process heap (slabpool is this binary's global
//! allocator) between operations. No harness threads (`harness = false`):
//! the process heap must be quiescent when it is checked.

#[path = "../../fuzz/ops/mod.rs"]
mod ops;

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

#[global_allocator]
static GLOBAL: slabpool::SlabPool = slabpool::SlabPool;

/// What is running, for the panic message.
static CURRENT: Mutex<String> = Mutex::new(String::new());

/// Generated operations to run, in total: half as many in the `hardened`
/// and `prof` builds, which replay the first half of the same lists (each
/// run takes about 45 s of one core here, not 95).
const GENERATED_OPS: usize = if cfg!(any(feature = "hardened", feature = "prof")) {
    100_000
} else {
    200_000
};
/// One generated list in this many also runs on the global backend.
const GLOBAL_EVERY: usize = 10;

/// xorshift64*: deterministic bytes for the decoder.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Replays the files of `dir` on `target`'s backend; returns (files, ops).
fn replay_dir(dir: &Path, target: &str, global: &mut ops::GlobalBackend) -> (usize, usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    let mut n_ops = 0;
    for file in &files {
        let data = std::fs::read(file).expect("read corpus file");
        let list = ops::decode(&data);
        n_ops += list.len();
        *CURRENT.lock().unwrap() = format!("{} ({} ops)", file.display(), list.len());
        match target {
            "heap" => ops::run(&list, &mut ops::HeapBackend::new()),
            _ => ops::run(&list, global),
        }
    }
    (files.len(), n_ops)
}

fn main() {
    // A failed check on a worker thread must end the process, not leave the
    // driver waiting for its reply.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        eprintln!("fuzz_replay: failed on {}", CURRENT.lock().unwrap());
        std::process::abort();
    }));
    let mut global = ops::GlobalBackend::new();
    // FUZZ_REPLAY_FILE=fuzz/artifacts/<target>/<file> replays that file only,
    // on the target its directory names.
    if let Some(file) = std::env::var_os("FUZZ_REPLAY_FILE") {
        let file = Path::new(&file);
        let target = file
            .parent()
            .and_then(Path::file_name)
            .expect("<target>/<file>");
        let data = std::fs::read(file).expect("read FUZZ_REPLAY_FILE");
        let list = ops::decode(&data);
        match target.to_str() {
            Some("heap") => ops::run(&list, &mut ops::HeapBackend::new()),
            Some("global") => ops::run(&list, &mut global),
            _ => panic!("{}: not under a heap/ or global/ directory", file.display()),
        }
        println!(
            "fuzz_replay: {} ({} ops): 1 passed, 0 failed",
            file.display(),
            list.len()
        );
        return;
    }
    let start = Instant::now();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let (mut files, mut file_ops) = (0, 0);
    // The `global` target's model knows the default build's classes and
    // realloc; the hardened build's blocks hold a canary besides.
    let targets: &[&str] = if cfg!(feature = "hardened") {
        &["heap"]
    } else {
        &["heap", "global"]
    };
    for &target in targets {
        for kind in ["corpus", "artifacts"] {
            let (f, o) = replay_dir(&root.join(kind).join(target), target, &mut global);
            files += f;
            file_ops += o;
        }
    }
    assert!(files > 0, "no corpus file found under {}", root.display());
    let replayed = start.elapsed();
    // With FUZZ_REPLAY_DUMP=<file>, each generated input is written there
    // before it runs: after a failure, the file holds it (replay it alone
    // with FUZZ_REPLAY_FILE=fuzz/artifacts/heap/<name> once copied there).
    let dump = std::env::var_os("FUZZ_REPLAY_DUMP");
    let mut rng = Rng(0x5EED_F022_51AB_9001);
    let (mut lists, mut heap_ops, mut global_ops) = (0, 0, 0);
    while heap_ops < GENERATED_OPS {
        let len = 16 + (rng.next() % 4096) as usize;
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        *CURRENT.lock().unwrap() = format!("generated list {lists} ({len} bytes)");
        if let Some(path) = &dump {
            std::fs::write(path, &data).expect("write FUZZ_REPLAY_DUMP");
        }
        let list = ops::decode(&data);
        ops::run(&list, &mut ops::HeapBackend::new());
        heap_ops += list.len();
        if lists % GLOBAL_EVERY == 0 && targets.contains(&"global") {
            ops::run(&list, &mut global);
            global_ops += list.len();
        }
        lists += 1;
    }
    println!(
        "fuzz_replay: {files} corpus/artifact files ({file_ops} ops) in {replayed:.1?}; \
         {lists} generated lists: {heap_ops} ops on a heap instance, {global_ops} on the \
         global allocator; {:.1?} in all",
        start.elapsed()
    );
    // The global allocator's blocks were sampled ones too.
    #[cfg(feature = "prof")]
    {
        let st = slabpool::prof::stats();
        println!(
            "fuzz_replay: heap profiler: {} samples taken, {} live, {} dropped",
            st.samples, st.live_samples, st.dropped
        );
        assert!(st.samples > 1000, "sampled blocks exercised: {st:?}");
    }
    println!("fuzz_replay: 1 passed, 0 failed");
}

//! The comparison suite driver (work in progress).
fn main() {
    eprintln!("slabpool-bench: the comparison suite is not written yet");
}

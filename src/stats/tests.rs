//! Unit tests of `stats`.

use super::*;

#[test]
fn bytes_are_human() {
    let mut s = String::new();
    write!(
        s,
        "[{}] [{:>9}] [{}]",
        Bytes(512),
        Bytes(3 << 20),
        Bytes(1536)
    )
    .unwrap();
    assert_eq!(s, "[512 B] [  3.0 MiB] [1.5 KiB]");
}

#[test]
fn bytes_round_to_the_nearest_tenth() {
    let show = |n: usize| {
        let mut s = String::new();
        write!(s, "{}", Bytes(n)).unwrap();
        s
    };
    assert_eq!(show(1023), "1023 B");
    assert_eq!(show(1024), "1.0 KiB");
    assert_eq!(show(1100), "1.1 KiB");
    assert_eq!(show(1075), "1.0 KiB");
    assert_eq!(show(1076), "1.1 KiB");
    assert_eq!(show((1 << 20) - 1), "1024.0 KiB");
    assert_eq!(show(5 << 30 | 400 << 20), "5.4 GiB");
    assert_eq!(show(usize::MAX), "16777216.0 TiB");
}

#[test]
fn table_lists_used_classes() {
    let mut st = Stats::default();
    st.classes[3] = ClassStats {
        size: 32,
        slabs: 2,
        allocated_blocks: 100,
        ..ClassStats::default()
    };
    st.allocated = 3200;
    let mut s = String::new();
    st.write_table(&mut s).unwrap();
    assert!(s.contains("allocated    3.1 KiB"), "{s}");
    let rows: Vec<_> = s.lines().skip(5).collect();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].split_whitespace().eq([
        "3", "32", "2", "0", "100", "0", "0", "0", "0", "0", "0", "0"
    ]));
}

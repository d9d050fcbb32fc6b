//! The workload binaries' protocol, end to end: wl-system and wl-slabpool
//! run every workload at its smoke size, exit 0, print a checksum, an
//! operation count and a VmHWM, and agree on the checksum and the count;
//! an unknown workload or bad arguments exit 2.

use slabpool_compare::workload::ALL;
use std::process::Command;

fn run(exe: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(exe)
        .args(args)
        .output()
        .expect("workload binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn field<'a>(stdout: &'a str, key: &str) -> Option<&'a str> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn system_and_slabpool_agree_on_every_workload() {
    for w in ALL {
        let size = w.sizes.smoke.to_string();
        let args = [w.name, size.as_str(), "2"];
        let (code_s, out_s) = run(env!("CARGO_BIN_EXE_wl-system"), &args);
        let (code_p, out_p) = run(env!("CARGO_BIN_EXE_wl-slabpool"), &args);
        assert_eq!((code_s, code_p), (0, 0), "{}", w.name);
        let sum = field(&out_s, "checksum").expect("System prints a checksum");
        assert_eq!(field(&out_p, "checksum"), Some(sum), "{}", w.name);
        let ops = field(&out_s, "ops").expect("System prints an ops count");
        assert!(ops.parse::<u64>().is_ok_and(|n| n > 0), "{}", w.name);
        assert_eq!(field(&out_p, "ops"), Some(ops), "{}", w.name);
        assert!(field(&out_p, "hwm_kib").is_some_and(|k| k.parse::<u64>().is_ok()));
        let idle = field(&out_p, "rss_after_idle_kib").is_some();
        assert_eq!(idle, w.name == "burst-idle", "{}", w.name);
    }
}

#[test]
fn bad_arguments_exit_2() {
    let exe = env!("CARGO_BIN_EXE_wl-system");
    assert_eq!(run(exe, &[]).0, 2);
    assert_eq!(run(exe, &["no-such-workload", "1", "1"]).0, 2);
    // The driver recognises this line as "the binary does not know it".
    let out = Command::new(exe)
        .args(["no-such-workload", "1", "1"])
        .output()
        .expect("workload binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().any(|l| l.starts_with("unknown workload")),
        "{stderr}"
    );
    assert_eq!(run(exe, &["larson", "x", "1"]).0, 2);
    assert_eq!(run(exe, &["larson", "1", "0"]).0, 2);
}

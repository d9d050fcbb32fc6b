//! Reads this process's memory figures from `/proc/self/status`.

/// The value in KiB of a `/proc/self/status` field such as `VmRSS` or
/// `VmHWM`, or `None` if it cannot be read.
pub fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_field(&status, field)
}

fn parse_field(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::parse_field;

    #[test]
    fn parses_kib_fields() {
        let s = "Name:\tx\nVmHWM:\t  1234 kB\nVmRSS:\t   567 kB\n";
        assert_eq!(parse_field(s, "VmRSS"), Some(567));
        assert_eq!(parse_field(s, "VmHWM"), Some(1234));
        assert_eq!(parse_field(s, "VmSwap"), None);
    }

    #[test]
    fn reads_own_status() {
        assert!(super::status_kib("VmRSS").unwrap() > 0);
    }
}

//! The process's own resource usage, read from `/proc` (Linux, where the
//! daemon runs under systemd): CPU time and resident memory, logged at the
//! end of a `--once` pass and used by the benchmarks. Elsewhere it reads
//! nothing and reports `None`.

/// CPU time and memory of this process so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// User plus system CPU time, milliseconds.
    pub cpu_ms: u64,
    /// Resident set size now, KiB.
    pub rss_kib: u64,
    /// Peak resident set size, KiB.
    pub peak_rss_kib: u64,
}

/// Clock ticks per second of `/proc/<pid>/stat`. `sysconf(_SC_CLK_TCK)` is
/// 100 on every Linux architecture smo targets (USER_HZ is fixed at 100 in
/// the kernel ABI for x86-64 and arm64); reading it would need libc.
const TICKS_PER_SECOND: u64 = 100;

/// Usage of process `pid` (`"self"` for this one).
pub fn of(pid: &str) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // fields are counted after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, so 11 and 12
    // after the state field (field 3 is index 0 here).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some(Usage {
        cpu_ms: (utime + stime) * 1000 / TICKS_PER_SECOND,
        rss_kib: kib("VmRSS:")?,
        peak_rss_kib: kib("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_process() {
        let u = of("self").expect("/proc is readable on Linux");
        assert!(u.rss_kib > 0 && u.peak_rss_kib >= u.rss_kib, "{u:?}");
        // Burn some CPU: the counter moves.
        let before = u.cpu_ms;
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(60) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(of("self").unwrap().cpu_ms > before);
    }
}

//! This process's resident memory and CPU time, read from `/proc/self` (Linux; `None` elsewhere).

use serde::{Deserialize, Serialize};

/// Resident set size and CPU time at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcSample {
    /// Resident set size in bytes (`VmRSS`).
    pub rss_bytes: u64,
    /// User CPU seconds, all threads.
    pub user_s: f64,
    /// System CPU seconds, all threads.
    pub system_s: f64,
}

/// The kernel's fixed tick for `/proc/<pid>/stat` times (`USER_HZ`, 100 on every Linux ABI).
const USER_HZ: f64 = 100.0;

/// Reads `/proc/self/status` and `/proc/self/stat`; `None` if either is unreadable or malformed.
#[cfg(target_os = "linux")]
pub fn sample() -> Option<ProcSample> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (`state`);
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(ProcSample {
        rss_bytes: rss_kib * 1024,
        user_s: utime / USER_HZ,
        system_s: stime / USER_HZ,
    })
}

/// Not available off Linux.
#[cfg(not(target_os = "linux"))]
pub fn sample() -> Option<ProcSample> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn reads_this_process() {
        let s = super::sample().expect("/proc/self is readable on Linux");
        assert!(s.rss_bytes > 0);
        assert!(s.user_s >= 0.0 && s.system_s >= 0.0);
    }
}

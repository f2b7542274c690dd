//! `/proc/sys/kernel/perf_event_paranoid` and the process's privileges: what the kernel lets
//! this process count, and what to change when it refuses.
//!
//! The kernel's levels (Documentation/admin-guide/sysctl/kernel.rst), for processes without
//! `CAP_PERFMON` (or `CAP_SYS_ADMIN`):
//!
//! | value | allows |
//! |---|---|
//! | ≤ -1 | everything, including raw tracepoints |
//! | 0 | per-thread and per-CPU counting, user and kernel |
//! | 1 | per-thread counting, user and kernel |
//! | 2 (upstream default) | per-thread counting, user space only |
//! | ≥ 3 | nothing: Debian, Ubuntu and Android patch the kernel so 3 (Ubuntu: 4) forbids all `perf_event_open` |
//!
//! The kernel compares with `>`, so values below -1 act as -1 and values above 3 as 3.

use serde::Serialize;

const PARANOID_PATH: &str = "/proc/sys/kernel/perf_event_paranoid";

/// The `perf_event_paranoid` setting as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Paranoid {
    /// The file does not exist: the kernel was built without perf events.
    Missing,
    /// The file held something that is not an integer.
    Garbled(String),
    /// The level.
    Level(i32),
}

/// What a counter asks of the kernel, from least to most privileged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Count one thread, user space only.
    ThreadUser,
    /// Count one thread, kernel included.
    ThreadKernel,
    /// Count a whole CPU.
    Cpu,
}

impl Paranoid {
    /// Reads the live setting.
    pub fn read() -> Self {
        Self::parse(std::fs::read_to_string(PARANOID_PATH).ok().as_deref())
    }

    /// Parses the file's content (`None`: the file could not be read).
    pub fn parse(content: Option<&str>) -> Self {
        match content {
            None => Paranoid::Missing,
            Some(text) => match text.trim().parse::<i32>() {
                Ok(level) => Paranoid::Level(level),
                Err(_) => Paranoid::Garbled(text.trim().chars().take(40).collect()),
            },
        }
    }

    /// Whether a process without `CAP_PERFMON` may do `access` under this setting.
    /// `Missing` allows nothing (no perf events); `Garbled` is treated as the strictest level.
    pub fn allows_unprivileged(&self, access: Access) -> bool {
        let level = match self {
            Paranoid::Missing | Paranoid::Garbled(_) => return false,
            Paranoid::Level(l) => *l,
        };
        let needed = match access {
            Access::ThreadUser => 2,
            Access::ThreadKernel => 1,
            Access::Cpu => 0,
        };
        level <= needed
    }

    /// The highest value that allows `access` without privileges.
    pub fn level_needed(access: Access) -> i32 {
        match access {
            Access::ThreadUser => 2,
            Access::ThreadKernel => 1,
            Access::Cpu => 0,
        }
    }

    /// One sentence saying how to get `access`.
    pub fn advice(&self, access: Access) -> String {
        let needed = Self::level_needed(access);
        let current = match self {
            Paranoid::Missing => {
                return "the kernel has no perf events (no /proc/sys/kernel/perf_event_paranoid): \
                        rebuild it with CONFIG_PERF_EVENTS"
                    .to_string();
            }
            Paranoid::Garbled(s) => format!("perf_event_paranoid reads {s:?}"),
            Paranoid::Level(l) => format!("perf_event_paranoid is {l}"),
        };
        format!(
            "{current}; run `sysctl kernel.perf_event_paranoid={needed}` as root, or give the \
             process CAP_PERFMON (e.g. `setcap cap_perfmon+ep <binary>`)"
        )
    }
}

impl std::fmt::Display for Paranoid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Paranoid::Missing => f.write_str("missing"),
            Paranoid::Garbled(s) => write!(f, "garbled ({s:?})"),
            Paranoid::Level(l) => write!(f, "{l}"),
        }
    }
}

/// Whether this process holds `CAP_PERFMON` or `CAP_SYS_ADMIN` in its effective set (so
/// `perf_event_paranoid` does not restrict it), read from `/proc/self/status`.
pub fn privileged() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| status_grants_perfmon(&s))
        .unwrap_or(false)
}

/// `CAP_SYS_ADMIN` (21) or `CAP_PERFMON` (38) in a `/proc/<pid>/status` text's `CapEff`.
pub fn status_grants_perfmon(status: &str) -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0 || caps & (1 << CAP_PERFMON) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_value() {
        assert_eq!(Paranoid::parse(None), Paranoid::Missing);
        assert_eq!(Paranoid::parse(Some("2\n")), Paranoid::Level(2));
        assert_eq!(Paranoid::parse(Some("-1")), Paranoid::Level(-1));
        assert_eq!(Paranoid::parse(Some(" 4 \n")), Paranoid::Level(4));
        assert_eq!(Paranoid::parse(Some("")), Paranoid::Garbled(String::new()));
        assert_eq!(Paranoid::parse(Some("two")), Paranoid::Garbled("two".into()));
        assert_eq!(
            Paranoid::parse(Some("99999999999")),
            Paranoid::Garbled("99999999999".into())
        );
    }

    #[test]
    fn levels_allow_what_the_kernel_allows() {
        use Access::*;
        let expect = [
            (-5, [true, true, true]),
            (-1, [true, true, true]),
            (0, [true, true, true]),
            (1, [true, true, false]),
            (2, [true, false, false]),
            (3, [false, false, false]),
            (4, [false, false, false]),
        ];
        for (level, allowed) in expect {
            let p = Paranoid::Level(level);
            for (access, want) in [ThreadUser, ThreadKernel, Cpu].into_iter().zip(allowed) {
                assert_eq!(p.allows_unprivileged(access), want, "level {level} {access:?}");
            }
        }
        assert!(!Paranoid::Missing.allows_unprivileged(ThreadUser));
        assert!(!Paranoid::Garbled("x".into()).allows_unprivileged(ThreadUser));
    }

    #[test]
    fn advice_names_the_sysctl_and_capability() {
        let a = Paranoid::Level(3).advice(Access::ThreadUser);
        assert!(a.contains("perf_event_paranoid is 3"), "{a}");
        assert!(a.contains("sysctl kernel.perf_event_paranoid=2"), "{a}");
        assert!(a.contains("CAP_PERFMON"), "{a}");
        assert!(Paranoid::Level(2).advice(Access::Cpu).contains("=0"));
        assert!(
            Paranoid::Missing
                .advice(Access::Cpu)
                .contains("CONFIG_PERF_EVENTS")
        );
    }

    #[test]
    fn capability_bits() {
        assert!(status_grants_perfmon("Name: x\nCapEff:\t000001ffffffffff\n"));
        assert!(
            status_grants_perfmon("CapEff:\t0000004000000000\n"),
            "CAP_PERFMON alone"
        );
        assert!(!status_grants_perfmon("CapEff:\t0000000000000000\n"));
        assert!(!status_grants_perfmon("CapEff:\tzz\n"));
        assert!(!status_grants_perfmon(""));
    }
}

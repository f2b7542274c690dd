//! Errors of the topology module.

use std::path::PathBuf;

use super::cpuset::CpuSetParseError;
use crate::sys::SysError;

/// What went wrong discovering the machine, planning placement, or pinning a thread.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// A file discovery needs could not be read, and no fallback exists for it.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file was read but its content makes no sense; the snapshot or kernel is broken.
    #[error("garbled content in {path}: {detail}")]
    Garbled {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// A CPU or node list/mask did not parse.
    #[error("bad CPU/node set in {path}: {source}")]
    BadSet {
        /// The file it came from.
        path: PathBuf,
        /// The parse error.
        source: CpuSetParseError,
    },
    /// The root given does not look like a sysfs snapshot (no `sys/devices/system/cpu`).
    #[error("{root} holds no sys/devices/system/cpu: not a sysfs root")]
    NotASysfsRoot {
        /// The root given.
        root: PathBuf,
    },
    /// Discovery found no CPU this process may run on.
    #[error("no allowed, online CPU found")]
    NoAllowedCpu,
    /// A CPU set asked for is empty or names CPUs this process may not use (EINVAL from
    /// `sched_setaffinity`). Choose CPUs from the placement plan.
    #[error("CPU set {cpus} is empty or outside this process's allowed CPUs")]
    InvalidCpuSet {
        /// The set asked for.
        cpus: String,
    },
    /// The OS refused to change affinity (EPERM): the thread belongs to another user, or a
    /// security policy forbids it.
    #[error("permission denied by the OS for {call}")]
    PermissionDenied {
        /// The system call.
        call: &'static str,
    },
    /// A system call failed with an errno that has no more specific variant: the call and the
    /// errno, as every module reports them ([`SysError`]).
    #[error(transparent)]
    Os(#[from] SysError),
    /// The operation needs Linux (or the `hwloc` feature) and is not available on this platform.
    #[error("{what} is not supported on this platform")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },
    /// A thread could not be spawned.
    #[error("cannot spawn thread: {0}")]
    Spawn(std::io::Error),
    /// hwloc reported an error (feature `hwloc`).
    #[error("hwloc: {0}")]
    Hwloc(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_call_keeps_its_name_and_errno() {
        let e = TopologyError::from(SysError::new("getcpu", libc::EFAULT));
        assert!(e.to_string().starts_with("getcpu failed: EFAULT"), "{e}");
        assert!(matches!(e, TopologyError::Os(SysError { call: "getcpu", errno }) if errno == libc::EFAULT));
    }
}

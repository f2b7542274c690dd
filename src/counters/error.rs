//! Errors and unavailability of the counters module.
//!
//! Two kinds of failure, kept apart:
//! - [`Unavailable`] is *data*: one event cannot be counted here (no PMU, the PMU lacks it, the
//!   paranoid setting forbids it, the PMU has no room for it). It is reported per event in a
//!   [`CounterReport`](super::CounterReport) while the other events still count.
//! - [`CounterError`] is an error of the whole operation: bad input, or the kernel failing a
//!   call on descriptors that did open.

use serde::Serialize;

use super::paranoid::Paranoid;
use crate::sys::SysError;

/// Why one event cannot be counted on this machine, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unavailable {
    /// No core PMU is exposed to this kernel (`perf_event_open` fails with ENOENT and
    /// `/sys/bus/event_source/devices` has no CPU PMU): typical of virtual machines whose
    /// hypervisor does not pass the PMU through. Use software events, or a machine (or VM
    /// setting, e.g. KVM `-cpu host,pmu=on`) with a PMU.
    #[error("PMU not available (virtualized?): no CPU PMU under /sys/bus/event_source/devices")]
    NoPmu,
    /// The PMU exists but does not support this event (ENOENT, EOPNOTSUPP, or EINVAL for the
    /// event alone).
    #[error("not supported by this CPU's PMU ({errno_name})")]
    NotSupported {
        /// The errno's name.
        errno_name: &'static str,
    },
    /// The event needs a raw code and the table has none for this CPU model.
    #[error("no raw event code known for {cpu}")]
    NoRawCode {
        /// The CPU model, as text.
        cpu: String,
    },
    /// The kernel refused (EACCES/EPERM) because of `perf_event_paranoid` or missing
    /// `CAP_PERFMON`.
    #[error("forbidden: {advice}")]
    Forbidden {
        /// The setting read when the call failed.
        paranoid: Paranoid,
        /// How to allow it.
        advice: String,
    },
    /// The PMU cannot schedule this many events at once (EINVAL for a group member, or
    /// ENOSPC/EBUSY: counters taken by another user such as the NMI watchdog).
    #[error("too many events for the PMU ({errno_name}); count fewer at once")]
    TooManyEvents {
        /// The errno's name.
        errno_name: &'static str,
    },
    /// Counters need Linux.
    #[error("hardware counters need Linux")]
    UnsupportedPlatform,
    /// The target cannot be counted (a thread id that is not one, a CPU index out of range).
    /// Fix the target.
    #[error("bad target: {detail}")]
    BadTarget {
        /// What was wrong.
        detail: String,
    },
    /// Another errno of `perf_event_open`, reported as is.
    #[error(transparent)]
    Os(SysError),
}

/// What went wrong with a counter operation as a whole.
#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    /// The request makes no sense (no events, a negative CPU index…).
    #[error("invalid input: {detail}")]
    InvalidInput {
        /// What was wrong.
        detail: String,
    },
    /// Counters need Linux; this platform has none.
    #[error("hardware counters are not supported on this platform")]
    Unsupported,
    /// A call on an open counter failed (enable, disable, reset, read). Built from the
    /// crate's one failed-call shape ([`SysError`], `From`), so `call` and `errno` are what the
    /// kernel said; [`CounterError::sys_error`] gives that back.
    #[error("{call} failed: errno {errno} ({message})")]
    Os {
        /// The call.
        call: &'static str,
        /// The errno.
        errno: i32,
        /// Its text.
        message: String,
    },
    /// The kernel's answer to a group read did not have the documented layout.
    #[error("malformed group read: {detail}")]
    MalformedRead {
        /// What did not match.
        detail: String,
    },
}

impl From<SysError> for CounterError {
    fn from(e: SysError) -> Self {
        Self::Os {
            call: e.call,
            errno: e.errno,
            message: e.message(),
        }
    }
}

impl CounterError {
    /// The failed system call, for [`CounterError::Os`] with a real errno.
    pub fn sys_error(&self) -> Option<SysError> {
        match *self {
            Self::Os { call, errno, .. } if errno != 0 => Some(SysError::new(call, errno)),
            _ => None,
        }
    }
}

/// The symbolic name of an errno (see [`crate::sys::errno_name`]).
pub(crate) fn errno_name(errno: i32) -> &'static str {
    crate::sys::errno_name(errno).unwrap_or("other errno")
}

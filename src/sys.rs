//! The one shape of a failed system call, shared by every module that makes them.
//!
//! Each module wraps its raw calls once, in its own `sys_linux.rs`; a wrapper that fails
//! captures errno at once with [`SysError::last`] and returns a [`SysError`] naming the call.
//! The module then maps the errnos a caller can act on to its own typed variants
//! (`PermissionDenied`, `InvalidCpuSet`, `Unsupported`…) and passes every other one on inside
//! its `Os` variant, unchanged: the kernel's errno set keeps growing, so an unknown errno is
//! data, never a panic.

use std::fmt;
use std::io;

use serde::Serialize;
use serde::ser::SerializeStruct;

/// The symbolic name of the errnos the crate's calls are documented to return.
pub fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENOSPC => "ENOSPC",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => return None,
    })
}

/// A system call that failed: which call, and the errno it left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SysError {
    /// The call, as written in its man page (`sched_setaffinity`, `perf_event_open`,
    /// `ioctl(PERF_EVENT_IOC_ENABLE)`…).
    pub call: &'static str,
    /// The errno it left (0 when the OS gave none).
    pub errno: i32,
}

impl SysError {
    /// A failure of `call` with `errno`.
    pub fn new(call: &'static str, errno: i32) -> Self {
        Self { call, errno }
    }

    /// A failure of `call` with the calling thread's current errno. Call it right after the
    /// failed call, before anything else can change errno.
    pub fn last(call: &'static str) -> Self {
        Self::new(call, io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }

    /// The errno's symbolic name (`EPERM`), or `errno N` for one [`errno_name`] does not list.
    pub fn errno_name(&self) -> String {
        errno_name(self.errno).map_or_else(|| format!("errno {}", self.errno), str::to_string)
    }

    /// The OS's text for the errno.
    pub fn message(&self) -> String {
        io::Error::from_raw_os_error(self.errno).to_string()
    }

    /// The same failure as an [`io::Error`] (for [`io::ErrorKind`] matching).
    pub fn to_io_error(&self) -> io::Error {
        io::Error::from_raw_os_error(self.errno)
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed: {} ({})",
            self.call,
            self.errno_name(),
            self.message()
        )
    }
}

impl std::error::Error for SysError {}

/// Serialized as `{ call, errno, errno_name, message }`, so reports read without a man page.
impl Serialize for SysError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("SysError", 4)?;
        s.serialize_field("call", self.call)?;
        s.serialize_field("errno", &self.errno)?;
        s.serialize_field("errno_name", &self.errno_name())?;
        s.serialize_field("message", &self.message())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_call_and_the_errno() {
        let e = SysError::new("sched_setaffinity", libc::EPERM);
        let text = e.to_string();
        assert!(text.starts_with("sched_setaffinity failed: EPERM ("), "{text}");
        assert_eq!(e.to_io_error().kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(SysError::new("x", 4095).errno_name(), "errno 4095");
        let json = serde_json::to_value(e).unwrap();
        assert_eq!(json["call"], "sched_setaffinity");
        assert_eq!(json["errno"], libc::EPERM);
        assert_eq!(json["errno_name"], "EPERM");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn last_reads_errno_right_after_the_call() {
        // SAFETY: closing a descriptor that is not open only sets errno (EBADF).
        let rc = unsafe { libc::close(-1) };
        assert_eq!(rc, -1);
        assert_eq!(SysError::last("close"), SysError::new("close", libc::EBADF));
    }
}

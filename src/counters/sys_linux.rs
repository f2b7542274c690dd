//! The raw Linux calls of the counters module: `perf_event_open`, its ioctls, and `read` on a
//! counter descriptor. Each is wrapped once here so that errno becomes a [`SysError`]; nothing
//! else in the module makes these calls.
//!
//! The kernel ABI followed (include/uapi/linux/perf_event.h, perf_event_open(2)):
//! - `perf_event_attr.size` is the size of the struct we pass (`size_of::<perf_event_attr>()`,
//!   144 bytes for the bindings of `perf-event-open-sys` 7). Older kernels accept a larger size as
//!   long as the bytes they do not know are zero, which they are: the struct starts zeroed.
//! - `read_format = PERF_FORMAT_GROUP | PERF_FORMAT_TOTAL_TIME_ENABLED |
//!   PERF_FORMAT_TOTAL_TIME_RUNNING | PERF_FORMAT_ID`, so one `read` of the group leader returns
//!   `{ nr, time_enabled, time_running, { value, id } × nr }`, all native-endian `u64`.
//! - The group leader is opened with `disabled = 1`; members with `disabled = 0` so they count
//!   whenever the leader does. Enable, disable and reset go to the leader with
//!   `PERF_IOC_FLAG_GROUP`, which applies them to every member at once.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use perf_event_open_sys as sys;
use perf_event_open_sys::bindings;

use super::event::EventCode;

pub(crate) use crate::sys::SysError;

/// An open counter descriptor; closing it (drop) releases the counter.
pub(crate) type CounterFd = OwnedFd;

/// What a counter counts: one thread or one CPU.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawTarget {
    /// `pid` argument: 0 = calling thread, a tid, or -1 (any thread, with `cpu >= 0`).
    pub pid: i32,
    /// `cpu` argument: -1 = any CPU (with `pid >= 0`), or a CPU index.
    pub cpu: i32,
}

/// The read format every counter uses (see the module docs).
pub(crate) const READ_FORMAT: u64 = (bindings::PERF_FORMAT_GROUP
    | bindings::PERF_FORMAT_TOTAL_TIME_ENABLED
    | bindings::PERF_FORMAT_TOTAL_TIME_RUNNING
    | bindings::PERF_FORMAT_ID) as u64;

/// Opens one counting (non-sampling) event. With `group` `None` it is a new group leader,
/// opened disabled; otherwise it joins that leader's group.
pub(crate) fn open_counter(
    code: EventCode,
    target: RawTarget,
    group: Option<&CounterFd>,
    exclude_kernel: bool,
) -> Result<OwnedFd, SysError> {
    let mut attr = bindings::perf_event_attr {
        type_: code.type_,
        size: std::mem::size_of::<bindings::perf_event_attr>() as u32,
        config: code.config,
        read_format: READ_FORMAT,
        ..Default::default()
    };
    attr.set_disabled(u64::from(group.is_none()));
    attr.set_inherit(0);
    attr.set_exclude_kernel(u64::from(exclude_kernel));
    attr.set_exclude_hv(u64::from(exclude_kernel));
    let group_fd = group.map_or(-1, AsRawFd::as_raw_fd);
    // SAFETY:
    // - `attr` is a fully initialized `perf_event_attr` (zeroed by `Default`, then the fields
    //   above set) whose `size` is its real size; the kernel reads at most `size` bytes and may
    //   write `size` back on E2BIG, which `&mut attr` allows;
    // - it asks for a counting event only (no sampling, no mmap buffer, no signals), which
    //   cannot affect memory safety of this process;
    // - `group_fd` is -1 or a perf event descriptor this module owns and keeps open for the
    //   duration of the call;
    // - PERF_FLAG_FD_CLOEXEC only sets close-on-exec on the new descriptor.
    let fd = unsafe {
        sys::perf_event_open(
            &mut attr,
            target.pid,
            target.cpu,
            group_fd,
            libc::c_ulong::from(bindings::PERF_FLAG_FD_CLOEXEC),
        )
    };
    if fd < 0 {
        return Err(SysError::last("perf_event_open"));
    }
    // SAFETY: `fd` was just returned by the kernel, is open, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A group-wide control operation on a leader.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GroupOp {
    Enable,
    Disable,
    Reset,
}

/// Applies `op` to the whole group led by `leader` (`PERF_IOC_FLAG_GROUP`).
pub(crate) fn group_ioctl(leader: &OwnedFd, op: GroupOp) -> Result<(), SysError> {
    let flag = bindings::PERF_IOC_FLAG_GROUP;
    // SAFETY:
    // - `leader` is an open perf event descriptor owned by the caller;
    // - ENABLE, DISABLE and RESET take an integer flag argument (no pointer), and
    //   PERF_IOC_FLAG_GROUP is the documented flag to apply them to the whole group.
    let (rc, call) = unsafe {
        match op {
            GroupOp::Enable => (
                sys::ioctls::ENABLE(leader.as_raw_fd(), flag),
                "ioctl(PERF_EVENT_IOC_ENABLE)",
            ),
            GroupOp::Disable => (
                sys::ioctls::DISABLE(leader.as_raw_fd(), flag),
                "ioctl(PERF_EVENT_IOC_DISABLE)",
            ),
            GroupOp::Reset => (
                sys::ioctls::RESET(leader.as_raw_fd(), flag),
                "ioctl(PERF_EVENT_IOC_RESET)",
            ),
        }
    };
    if rc < 0 {
        return Err(SysError::last(call));
    }
    Ok(())
}

/// The kernel's unique id of an event (`PERF_EVENT_IOC_ID`), which group reads carry.
pub(crate) fn event_id(fd: &OwnedFd) -> Result<u64, SysError> {
    let mut id = 0u64;
    // SAFETY:
    // - `fd` is an open perf event descriptor;
    // - PERF_EVENT_IOC_ID writes exactly one u64 through the pointer, which points at `id`,
    //   live and writable for the whole call.
    let rc = unsafe { sys::ioctls::ID(fd.as_raw_fd(), &mut id) };
    if rc < 0 {
        return Err(SysError::last("ioctl(PERF_EVENT_IOC_ID)"));
    }
    Ok(id)
}

/// Reads the group led by `leader` into `buf` (native-endian u64 words) and returns how many
/// words the kernel wrote. `buf` must hold `3 + 2 × members` words; the kernel fails with
/// ENOSPC when it is too small.
pub(crate) fn read_group(leader: &OwnedFd, buf: &mut [u64]) -> Result<usize, SysError> {
    // SAFETY:
    // - `leader` is an open perf event descriptor;
    // - `buf` is a live, writable buffer of `size_of_val(buf)` bytes and the kernel writes at
    //   most that many; any bit pattern is a valid u64.
    let n = unsafe {
        libc::read(
            leader.as_raw_fd(),
            buf.as_mut_ptr().cast::<libc::c_void>(),
            std::mem::size_of_val(buf),
        )
    };
    if n < 0 {
        return Err(SysError::last("read"));
    }
    Ok(n as usize / std::mem::size_of::<u64>())
}

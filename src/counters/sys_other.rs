//! The counters' system layer on platforms without `perf_event_open`: every open fails with
//! ENOSYS, which the module reports as [`Unavailable::UnsupportedPlatform`](super::Unavailable).

use super::event::EventCode;

pub(crate) use crate::sys::SysError;

/// Never constructed: no counter opens here.
pub(crate) enum CounterFd {}

#[derive(Debug, Clone, Copy)]
pub(crate) struct RawTarget {
    pub pid: i32,
    pub cpu: i32,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum GroupOp {
    Enable,
    Disable,
    Reset,
}

const ENOSYS: i32 = 38;

pub(crate) fn open_counter(
    _code: EventCode,
    _target: RawTarget,
    _group: Option<&CounterFd>,
    _exclude_kernel: bool,
) -> Result<CounterFd, SysError> {
    Err(SysError::new("perf_event_open", ENOSYS))
}

pub(crate) fn group_ioctl(fd: &CounterFd, _op: GroupOp) -> Result<(), SysError> {
    match *fd {}
}

pub(crate) fn event_id(fd: &CounterFd) -> Result<u64, SysError> {
    match *fd {}
}

pub(crate) fn read_group(fd: &CounterFd, _buf: &mut [u64]) -> Result<usize, SysError> {
    match *fd {}
}

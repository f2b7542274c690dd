//! Fallbacks for platforms without Linux's affinity and getcpu calls.

use super::cpuset::CpuSet;
use super::error::TopologyError;

pub(crate) fn set_thread_affinity(_cpus: &CpuSet) -> Result<(), TopologyError> {
    Err(TopologyError::Unsupported {
        what: "thread pinning",
    })
}

pub(crate) fn thread_affinity() -> Result<CpuSet, TopologyError> {
    let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    Ok((0..n as u32).collect())
}

pub(crate) fn getcpu() -> Result<(u32, u32), TopologyError> {
    Err(TopologyError::Unsupported { what: "getcpu" })
}

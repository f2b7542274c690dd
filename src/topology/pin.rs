//! Pinning threads to CPUs, and checking where a thread really runs.
//!
//! Pinning is `sched_setaffinity` on the calling thread. Verification is `getcpu`: the kernel's
//! answer to "which CPU and node am I on now", so a test or a worker can prove it runs where the
//! placement plan put it.

use super::cpuset::CpuSet;
use super::error::TopologyError;

#[cfg(target_os = "linux")]
use super::sys_linux as sys;
#[cfg(not(target_os = "linux"))]
use super::sys_other as sys;

/// Where a thread was observed running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CpuLocation {
    /// The CPU (PU OS index).
    pub cpu: u32,
    /// The NUMA node of that CPU, as the kernel reports it.
    pub node: u32,
}

/// Pins the calling thread to `cpus`.
///
/// # Errors
/// - [`TopologyError::InvalidCpuSet`]: `cpus` is empty or holds no CPU this process may use.
/// - [`TopologyError::PermissionDenied`]: the OS refused (EPERM).
/// - [`TopologyError::Unsupported`]: not Linux.
pub fn pin_current_thread(cpus: &CpuSet) -> Result<(), TopologyError> {
    if cpus.is_empty() {
        return Err(TopologyError::InvalidCpuSet { cpus: String::new() });
    }
    sys::set_thread_affinity(cpus)
}

/// The calling thread's current affinity mask.
///
/// # Errors
/// [`TopologyError::Os`] if the kernel refuses, which it does not for the calling thread.
pub fn current_thread_affinity() -> Result<CpuSet, TopologyError> {
    sys::thread_affinity()
}

/// Where the calling thread runs now.
///
/// # Errors
/// [`TopologyError::Unsupported`] off Linux; [`TopologyError::Os`] if `getcpu` fails.
pub fn current_location() -> Result<CpuLocation, TopologyError> {
    sys::getcpu().map(|(cpu, node)| CpuLocation { cpu, node })
}

/// Pins the calling thread to `cpus`, then checks with `getcpu` that it runs on one of them.
/// Returns where it was found.
///
/// # Errors
/// Those of [`pin_current_thread`]; [`TopologyError::Garbled`] if the thread is found on a CPU
/// outside `cpus` after pinning (which would mean the kernel ignored the mask).
pub fn pin_and_verify(cpus: &CpuSet) -> Result<CpuLocation, TopologyError> {
    pin_current_thread(cpus)?;
    // The kernel migrates the thread before sched_setaffinity returns, so the first getcpu
    // already sees the new CPU; yield once anyway in case the scheduler deferred it.
    std::thread::yield_now();
    let loc = current_location()?;
    if !cpus.contains(loc.cpu) {
        return Err(TopologyError::Garbled {
            path: "getcpu".into(),
            detail: format!("thread pinned to {cpus} runs on CPU {}", loc.cpu),
        });
    }
    Ok(loc)
}

/// Spawns a thread named `name`, pinned to `cpus` (and verified) before `f` runs.
///
/// The pinning result is passed to `f`, so a worker can record where it runs or refuse to work.
///
/// # Errors
/// [`TopologyError::Spawn`] if the thread cannot be created.
pub fn spawn_pinned<F, T>(
    name: String,
    cpus: CpuSet,
    f: F,
) -> Result<std::thread::JoinHandle<T>, TopologyError>
where
    F: FnOnce(Result<CpuLocation, TopologyError>) -> T + Send + 'static,
    T: Send + 'static,
{
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let pinned = pin_and_verify(&cpus);
            f(pinned)
        })
        .map_err(TopologyError::Spawn)
}

//! The raw Linux calls of the topology module, each wrapped once so that errno becomes a
//! [`SysError`] at once, then a [`TopologyError`]. Nothing else in the module calls libc for
//! these.

use super::cpuset::CpuSet;
use super::error::TopologyError;
use crate::sys::SysError;

/// The largest CPU index the kernel supports is `NR_CPUS - 1` (8192 max in Debian configs);
/// masks are sized for that so 1024-CPU machines work without retries.
const MASK_BITS: usize = 8192;
const MASK_WORDS: usize = MASK_BITS / 64;

/// Sets the calling thread's CPU affinity (`sched_setaffinity(0, …)`).
pub(crate) fn set_thread_affinity(cpus: &CpuSet) -> Result<(), TopologyError> {
    let mut mask = [0u64; MASK_WORDS];
    for cpu in cpus.iter() {
        let cpu = cpu as usize;
        if cpu >= MASK_BITS {
            return Err(TopologyError::InvalidCpuSet {
                cpus: cpus.to_list_string(),
            });
        }
        mask[cpu / 64] |= 1u64 << (cpu % 64);
    }
    // SAFETY:
    // - pid 0 names the calling thread;
    // - `mask` is a live, initialized buffer of exactly `size_of_val(&mask)` bytes, and the kernel
    //   reads at most that many; the kernel's cpumask layout is an array of native-endian
    //   unsigned longs, which on 64-bit Linux is this array of u64.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            0 as libc::pid_t,
            std::mem::size_of_val(&mask),
            mask.as_ptr(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = SysError::last("sched_setaffinity");
    Err(match err.errno {
        libc::EINVAL => TopologyError::InvalidCpuSet {
            cpus: cpus.to_list_string(),
        },
        libc::EPERM => TopologyError::PermissionDenied { call: err.call },
        _ => TopologyError::Os(err),
    })
}

/// The calling thread's CPU affinity (`sched_getaffinity(0, …)`).
pub(crate) fn thread_affinity() -> Result<CpuSet, TopologyError> {
    let mut mask = [0u64; MASK_WORDS];
    // SAFETY:
    // - pid 0 names the calling thread;
    // - the kernel writes at most `size_of_val(&mask)` bytes into `mask`, a live buffer of that
    //   size; on success it returns the number of bytes written (a multiple of word size).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_getaffinity,
            0 as libc::pid_t,
            std::mem::size_of_val(&mask),
            mask.as_mut_ptr(),
        )
    };
    if rc < 0 {
        return Err(SysError::last("sched_getaffinity").into());
    }
    let mut set = CpuSet::new();
    for (w, word) in mask.iter().enumerate() {
        let mut v = *word;
        while v != 0 {
            let bit = v.trailing_zeros();
            set.insert(w as u32 * 64 + bit);
            v &= v - 1;
        }
    }
    Ok(set)
}

/// The CPU and NUMA node the calling thread is running on right now (`getcpu`).
pub(crate) fn getcpu() -> Result<(u32, u32), TopologyError> {
    let mut cpu: libc::c_uint = 0;
    let mut node: libc::c_uint = 0;
    // SAFETY: both pointers refer to live, writable `c_uint`s; the third argument (tcache) is
    // unused by the kernel since 2.6.24 and may be null.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_getcpu,
            &mut cpu as *mut libc::c_uint,
            &mut node as *mut libc::c_uint,
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    if rc != 0 {
        return Err(SysError::last("getcpu").into());
    }
    Ok((cpu, node))
}

//! The two ways in: the live machine and a snapshot under a root. The work is in
//! [`super::sysfs`].

use std::path::Path;

use super::error::TopologyError;
use super::model::Topology;
use super::sysfs::{LiveProcess, read_root};

impl Topology {
    /// Discovers the running machine from `/sys` and `/proc`, restricted to what this process may
    /// use: online CPUs, the calling thread's affinity mask, and the cgroup cpuset (CPUs and
    /// memory nodes), as hwloc does by default.
    ///
    /// # Errors
    /// See [`Topology::from_sysfs_root`].
    pub fn discover() -> Result<Self, TopologyError> {
        let affinity = super::pin::current_thread_affinity().ok();
        read_root(Path::new("/"), Some(LiveProcess { affinity }))
    }

    /// Reads a snapshot whose `sys/` and `proc/` (and, where present, a legacy `dev/cpuset/`) lie
    /// under `root`, restricted by the snapshot's own cgroup cpuset files. What was missing or
    /// odd, and what was done instead, is in [`Topology::fallbacks`].
    ///
    /// # Errors
    /// - [`TopologyError::NotASysfsRoot`]: `root` has no `sys/devices/system/cpu`.
    /// - [`TopologyError::Garbled`]: no online CPU can be found at all.
    /// - [`TopologyError::NoAllowedCpu`]: the cpuset leaves no online CPU.
    pub fn from_sysfs_root(root: impl AsRef<Path>) -> Result<Self, TopologyError> {
        read_root(root.as_ref(), None)
    }
}

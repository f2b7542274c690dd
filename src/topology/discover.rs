//! The two ways in: the live machine and a snapshot under a root. The work is in
//! [`super::sysfs`]; off Linux, the live machine is one node holding every CPU the standard
//! library reports.

use std::path::Path;

use super::cpuset::CpuSet;
use super::error::TopologyError;
use super::model::{Core, Fallback, NumaNode, Package, Pu, Source, Topology};
use super::sysfs::read_root;

impl Topology {
    /// Discovers the running machine from `/sys` and `/proc`, restricted to what this process may
    /// use: online CPUs, the calling thread's affinity mask, and the cgroup cpuset (CPUs and
    /// memory nodes), as hwloc does by default.
    ///
    /// Off Linux it returns a single node holding every CPU the standard library reports
    /// ([`Source::SingleNodeFallback`], recorded in [`Topology::fallbacks`]).
    ///
    /// # Errors
    /// See [`Topology::from_sysfs_root`].
    pub fn discover() -> Result<Self, TopologyError> {
        #[cfg(target_os = "linux")]
        {
            let affinity = super::pin::current_thread_affinity().ok();
            read_root(Path::new("/"), Some(super::sysfs::LiveProcess { affinity }))
        }
        #[cfg(not(target_os = "linux"))]
        {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            Ok(single_node((0..n as u32).collect()))
        }
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

/// One package, one node 0, each of `cpus` its own core: the machine as far as a platform
/// without Linux's interfaces lets us see it. Used off Linux; built and tested everywhere.
#[cfg_attr(target_os = "linux", allow(dead_code))]
pub(crate) fn single_node(cpus: CpuSet) -> Topology {
    Topology {
        pus: cpus
            .iter()
            .map(|cpu| Pu {
                os_index: cpu,
                online: true,
                allowed: true,
                package: Some(0),
                core_id: None,
                node: Some(0),
                core_kind: None,
            })
            .collect(),
        packages: vec![Package {
            os_index: 0,
            cpus: cpus.clone(),
        }],
        dies: Vec::new(),
        clusters: Vec::new(),
        cores: cpus
            .iter()
            .map(|cpu| Core {
                core_id: None,
                package: Some(0),
                cpus: CpuSet::single(cpu),
                kind: None,
            })
            .collect(),
        numa_nodes: vec![NumaNode {
            os_index: 0,
            cpus: cpus.clone(),
            all_pus: cpus.clone(),
            memory_bytes: 0,
            distances: vec![10],
            memory_allowed: true,
            initiator_pus: CpuSet::new(),
        }],
        caches: Vec::new(),
        allowed_cpus: cpus,
        allowed_mems: CpuSet::single(0),
        fallbacks: vec![Fallback {
            what: "platform".into(),
            action: "no Linux sysfs: one node 0 holding every CPU, each its own core; no caches".into(),
        }],
        source: Source::SingleNodeFallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{PlacementPlan, PlanOptions};

    #[test]
    fn single_node_fallback_plans() {
        let t = single_node((0..3).collect());
        assert_eq!(t.cores.len(), 3);
        let plan = PlacementPlan::new(&t, &PlanOptions::default()).unwrap();
        assert_eq!(plan.worker_count(), 3);
    }
}

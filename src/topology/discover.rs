//! PROVISIONAL minimal sysfs reader (nodes, their CPUs, memory, distances; online CPUs and the
//! affinity mask). It exists so that other modules can be built against `Topology` while the
//! full discovery (packages, cores, caches, cpusets, fallbacks) is written; it will be replaced.

use std::fs;
use std::path::{Path, PathBuf};

use super::cpuset::CpuSet;
use super::error::TopologyError;
use super::model::{Core, NumaNode, Package, Pu, Source, Topology};

fn read(path: &Path) -> Result<String, TopologyError> {
    fs::read_to_string(path).map_err(|source| TopologyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_list(path: &Path) -> Result<CpuSet, TopologyError> {
    CpuSet::parse_list(&read(path)?).map_err(|source| TopologyError::BadSet {
        path: path.to_path_buf(),
        source,
    })
}

impl Topology {
    /// Discovers the running machine from `/sys` and `/proc`, restricted to what this process may
    /// use.
    ///
    /// # Errors
    /// See [`Topology::from_sysfs_root`].
    pub fn discover() -> Result<Self, TopologyError> {
        let affinity = super::pin::current_thread_affinity().ok();
        let mut t = Self::read_root(Path::new("/"), affinity)?;
        t.source = Source::Live;
        Ok(t)
    }

    /// Reads a snapshot whose `sys/` and `proc/` lie under `root`.
    ///
    /// # Errors
    /// [`TopologyError::NotASysfsRoot`] if `root` has no `sys/devices/system/cpu`;
    /// [`TopologyError::Io`] / [`TopologyError::BadSet`] for unreadable or garbled files.
    pub fn from_sysfs_root(root: impl AsRef<Path>) -> Result<Self, TopologyError> {
        Self::read_root(root.as_ref(), None)
    }

    fn read_root(root: &Path, affinity: Option<CpuSet>) -> Result<Self, TopologyError> {
        let cpu_dir = root.join("sys/devices/system/cpu");
        if !cpu_dir.is_dir() {
            return Err(TopologyError::NotASysfsRoot {
                root: root.to_path_buf(),
            });
        }
        let online = read_list(&cpu_dir.join("online"))?;
        let allowed = match affinity {
            Some(a) => online.intersection(&a),
            None => online.clone(),
        };
        let node_dir = root.join("sys/devices/system/node");
        let mut ids: Vec<u32> = Vec::new();
        if let Ok(entries) = fs::read_dir(&node_dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                if let Some(n) = name
                    .to_str()
                    .and_then(|s| s.strip_prefix("node"))
                    .and_then(|s| s.parse().ok())
                {
                    ids.push(n);
                }
            }
        }
        ids.sort_unstable();
        let mut numa_nodes = Vec::new();
        for &id in &ids {
            let d: PathBuf = node_dir.join(format!("node{id}"));
            let all = read_list(&d.join("cpulist"))?;
            let memory_bytes = read(&d.join("meminfo"))
                .ok()
                .and_then(|m| {
                    m.lines().find(|l| l.contains("MemTotal:")).and_then(|l| {
                        l.split_whitespace()
                            .rev()
                            .nth(1)
                            .and_then(|v| v.parse::<u64>().ok())
                    })
                })
                .unwrap_or(0)
                * 1024;
            let distances = read(&d.join("distance"))
                .map(|s| s.split_whitespace().filter_map(|v| v.parse().ok()).collect())
                .unwrap_or_default();
            numa_nodes.push(NumaNode {
                os_index: id,
                cpus: all.intersection(&allowed),
                all_pus: all,
                memory_bytes,
                distances,
                memory_allowed: true,
            });
        }
        if numa_nodes.is_empty() {
            numa_nodes.push(NumaNode {
                os_index: 0,
                cpus: allowed.clone(),
                all_pus: online.clone(),
                memory_bytes: 0,
                distances: vec![10],
                memory_allowed: true,
            });
        }
        let pus = online
            .iter()
            .map(|c| Pu {
                os_index: c,
                online: true,
                allowed: allowed.contains(c),
                package: None,
                core_id: None,
                node: numa_nodes
                    .iter()
                    .find(|n| n.all_pus.contains(c))
                    .map(|n| n.os_index),
                core_kind: None,
            })
            .collect();
        let cores = allowed
            .iter()
            .map(|c| Core {
                core_id: None,
                package: None,
                cpus: CpuSet::single(c),
                kind: None,
            })
            .collect();
        let allowed_mems = numa_nodes.iter().map(|n| n.os_index).collect();
        Ok(Topology {
            pus,
            packages: vec![Package {
                os_index: 0,
                cpus: allowed.clone(),
            }],
            dies: Vec::new(),
            clusters: Vec::new(),
            cores,
            numa_nodes,
            caches: Vec::new(),
            allowed_cpus: allowed,
            allowed_mems,
            fallbacks: Vec::new(),
            source: Source::Snapshot {
                root: root.display().to_string(),
            },
        })
    }
}

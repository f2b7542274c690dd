//! Pure-Rust discovery from a sysfs/procfs root (`/` for the live machine, or a snapshot).
//!
//! Each reader owns one family of files and turns whatever it finds into plain data, recording
//! every oddity as a [`Fallback`](crate::topology::Fallback) through the shared [`Reader`]:
//! - `cpus`: which CPUs exist and are online, and what each one's `topology/` says;
//! - `cpuinfo`: `/proc/cpuinfo`, when no CPU has a `topology/` (old kernels);
//! - `caches`: `cpuN/cache/indexM/`;
//! - `nodes`: `node/nodeN/` (CPUs, memory, distances);
//! - `hybrid`: core kinds of hybrid CPUs;
//! - `restriction`: the cgroup cpuset and `/proc/self/status`.
//!
//! `assemble` then builds packages, dies, clusters and cores from the sibling sets and
//! restricts everything to the allowed PUs and memory nodes, as hwloc does by default.

mod assemble;
mod caches;
mod cpuinfo;
mod cpus;
mod hybrid;
mod nodes;
mod reader;
mod restriction;

use std::path::Path;

use crate::topology::cpuset::CpuSet;
use crate::topology::error::TopologyError;
use crate::topology::model::{Source, Topology};

use reader::Reader;
use restriction::Restriction;

/// What the live process adds to the cgroup cpuset: its affinity mask and `proc/self/status`.
pub(crate) struct LiveProcess {
    /// `sched_getaffinity` of the calling thread, if it could be read.
    pub affinity: Option<CpuSet>,
}

/// Reads the machine under `root`; `live` is `Some` for the running system.
pub(crate) fn read_root(root: &Path, live: Option<LiveProcess>) -> Result<Topology, TopologyError> {
    if !root.join("sys/devices/system/cpu").is_dir() {
        return Err(TopologyError::NotASysfsRoot {
            root: root.to_path_buf(),
        });
    }
    let mut r = Reader::new(root);
    let mut cpus = cpus::read_cpus(&mut r);
    let online: CpuSet = cpus.iter().filter(|c| c.online).map(|c| c.os_index).collect();
    if online.is_empty() {
        return Err(TopologyError::Garbled {
            path: root.join("sys/devices/system/cpu"),
            detail: "no online CPU listed (no cpuN directory, no readable online/present list)".into(),
        });
    }
    assemble::fill_missing_topology(&mut r, &mut cpus);
    let kinds = hybrid::read_core_kinds(&mut r, &online);
    let caches = caches::read_caches(&mut r, &online);
    let nodes = nodes::read_nodes(&mut r, &online);
    let mut restriction = restriction::cgroup_cpuset(&mut r);
    let source = match live {
        Some(live) => {
            let status = r.text("proc/self/status").map(|t| restriction::parse_status(&t));
            let affinity = match live.affinity {
                Some(a) => Some(a),
                None => {
                    r.fallback(
                        "sched_getaffinity",
                        "failed: using /proc/self/status Cpus_allowed",
                    );
                    status.as_ref().and_then(|s| s.cpus.clone())
                }
            };
            restriction.narrow(Restriction {
                cpus: affinity,
                mems: status.and_then(|s| s.mems),
            });
            Source::Live
        }
        None => Source::Snapshot {
            root: root.display().to_string(),
        },
    };
    assemble::assemble(
        &mut r,
        assemble::Parts {
            cpus,
            caches,
            nodes,
            kinds,
            restriction,
            source,
        },
    )
}

/// Test helper: writes `text` to `root/rel`, creating the folders on the way.
#[cfg(test)]
pub(super) fn write_test_file(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("a relative path with a parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    use crate::topology::sysfs::write_test_file as write;

    #[test]
    fn not_a_root_and_no_cpu_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_root(dir.path(), None),
            Err(TopologyError::NotASysfsRoot { .. })
        ));
        fs::create_dir_all(dir.path().join("sys/devices/system/cpu")).unwrap();
        assert!(matches!(
            read_root(dir.path(), None),
            Err(TopologyError::Garbled { .. })
        ));
    }

    #[test]
    fn a_cpuset_without_online_cpus_is_no_allowed_cpu() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "sys/devices/system/cpu/online", "0-1\n");
        write(dir.path(), "proc/self/cpuset", "/x\n");
        write(dir.path(), "proc/mounts", "none /dev/cpuset cpuset rw 0 0\n");
        write(dir.path(), "dev/cpuset/x/cpus", "7\n");
        assert!(matches!(
            read_root(dir.path(), None),
            Err(TopologyError::NoAllowedCpu)
        ));
    }

    #[test]
    fn garbage_everywhere_gives_a_topology_with_fallbacks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "sys/devices/system/cpu/online", "0-1,zz\n");
        for cpu in 0..2 {
            let t = format!("sys/devices/system/cpu/cpu{cpu}/topology");
            for f in [
                "physical_package_id",
                "core_id",
                "core_siblings",
                "thread_siblings_list",
            ] {
                write(root, &format!("{t}/{f}"), "\u{0}garbage\u{fffd}\n");
            }
            let c = format!("sys/devices/system/cpu/cpu{cpu}/cache/index0");
            for f in ["level", "type", "size", "shared_cpu_map"] {
                write(root, &format!("{c}/{f}"), "??\n");
            }
        }
        write(root, "sys/devices/system/node/node0/cpulist", "1-0\n");
        write(root, "sys/devices/system/node/node0/meminfo", "nonsense\n");
        write(root, "sys/devices/system/node/node0/distance", "ten\n");
        write(root, "proc/self/cgroup", ":::\n0::\n");
        write(root, "proc/self/mountinfo", "- - -\n");
        let t = read_root(root, None).expect("a topology despite the garbage");
        assert_eq!(t.allowed_cpus.to_list_string(), "0-1");
        assert_eq!(t.packages.len(), 1);
        assert_eq!(t.cores.len(), 2);
        assert!(t.caches.is_empty());
        assert!(t.fallbacks.len() >= 8, "{:#?}", t.fallbacks);
    }

    #[test]
    fn cpus_without_topology_are_their_own_cores_in_an_extra_package() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "sys/devices/system/cpu/online", "0-3\n");
        for cpu in 0..2 {
            let t = format!("sys/devices/system/cpu/cpu{cpu}/topology");
            write(root, &format!("{t}/physical_package_id"), "0\n");
            write(root, &format!("{t}/core_id"), "0\n");
            write(root, &format!("{t}/thread_siblings_list"), "0-1\n");
        }
        for cpu in 2..4 {
            fs::create_dir_all(root.join(format!("sys/devices/system/cpu/cpu{cpu}"))).unwrap();
        }
        let t = read_root(root, None).unwrap();
        let cores: Vec<String> = t.cores.iter().map(|c| c.cpus.to_list_string()).collect();
        assert_eq!(cores, ["0-1", "2", "3"]);
        let packages: Vec<(u32, String)> = t
            .packages
            .iter()
            .map(|p| (p.os_index, p.cpus.to_list_string()))
            .collect();
        assert_eq!(packages, [(0, "0-1".to_string()), (1, "2-3".to_string())]);
        let whats: Vec<&str> = t.fallbacks.iter().map(|f| f.what.as_str()).collect();
        assert!(whats.iter().any(|w| w.contains("cpu{2-3}/topology")), "{whats:?}");
        assert!(whats.contains(&"physical_package_id"), "{whats:?}");
        // No node directory: one node 0 with every CPU, recorded.
        assert_eq!(t.numa_nodes.len(), 1);
        assert_eq!(t.numa_nodes[0].cpus.to_list_string(), "0-3");
    }
}

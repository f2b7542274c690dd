//! NUMA nodes from `sys/devices/system/node/nodeN/`: CPUs (`cpulist`, or `cpumap` on old
//! kernels), memory (`meminfo`'s `MemTotal`), and the distance row (`distance`).
//!
//! Each node's `distance` row lists its distance to every node in increasing OS index order, so
//! a row must have one entry per node directory; a row that does not is dropped (recorded) and
//! the matrix is treated as unknown. A kernel built without NUMA has no `node/` directory: the
//! machine is then one node 0 holding every CPU, with `/proc/meminfo`'s total (recorded).
//!
//! Three of hwloc's rules then apply, in its order:
//! - a node whose CPUs overlap those of a node before it (in OS index order) is dropped
//!   (recorded): a CPU belongs to one node, and a kernel or firmware that lists it in several
//!   would otherwise have every such node's workers pinned on the same CPUs;
//! - a node that an NVIDIA driver reports as a GPU's memory
//!   (`/proc/driver/nvidia/gpus/*/numa_status`, line `Node: N`) is dropped (recorded): it is
//!   the GPU's, not memory for host arenas (hwloc hides it unless told to keep it);
//! - a CPU-less node is attached to its initiators, the nodes its `access1/initiators`
//!   directory names: their CPUs are its [`RawNode::initiator_cpus`], where hwloc puts it.

use crate::topology::cpuset::CpuSet;
use crate::topology::size::parse_size;

use super::reader::{Reader, cut};

const NODE_DIR: &str = "sys/devices/system/node";

/// What sysfs says about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawNode {
    pub os_index: u32,
    /// Every CPU the kernel lists for it.
    pub cpus: CpuSet,
    pub memory_bytes: u64,
    /// Distances to every node of the returned list, in its order; empty when unknown.
    pub distances: Vec<u32>,
    /// For a CPU-less node, the CPUs of its initiators (`access1/initiators`); else empty.
    pub initiator_cpus: CpuSet,
}

/// The nodes, by OS index. Never empty: without `node/` the single-node fallback is returned.
pub(crate) fn read_nodes(r: &mut Reader, online_cpus: &CpuSet) -> Vec<RawNode> {
    let ids = r.numbered_entries(NODE_DIR, "node");
    if ids.is_empty() {
        let memory_bytes = r
            .text("proc/meminfo")
            .and_then(|text| meminfo_total(&text))
            .unwrap_or(0);
        r.fallback(
            NODE_DIR,
            "no NUMA node directories: one node 0 with every CPU and /proc/meminfo's MemTotal",
        );
        return vec![RawNode {
            os_index: 0,
            cpus: online_cpus.clone(),
            memory_bytes,
            distances: vec![10],
            initiator_cpus: CpuSet::new(),
        }];
    }
    let mut nodes: Vec<RawNode> = ids
        .iter()
        .map(|&id| {
            let dir = format!("{NODE_DIR}/node{id}");
            let cpus = r.mask_or_list(&dir, "cpumap", "cpulist").unwrap_or_else(|| {
                r.fallback(format!("{dir}/cpulist"), "missing: node taken to have no CPU");
                CpuSet::new()
            });
            let memory_bytes = match r.text(&format!("{dir}/meminfo")) {
                Some(text) => meminfo_total(&text).unwrap_or_else(|| {
                    r.fallback(
                        format!("{dir}/meminfo"),
                        "no readable MemTotal: memory taken as 0",
                    );
                    0
                }),
                None => 0,
            };
            RawNode {
                os_index: id,
                cpus,
                memory_bytes,
                distances: Vec::new(),
                initiator_cpus: CpuSet::new(),
            }
        })
        .collect();
    let rows: Vec<Option<Vec<u32>>> = ids
        .iter()
        .map(|&id| {
            let rel = format!("{NODE_DIR}/node{id}/distance");
            let text = r.text(&rel)?;
            let row: Result<Vec<u32>, _> = text.split_whitespace().map(str::parse).collect();
            match row {
                Ok(row) if row.len() == ids.len() => Some(row),
                Ok(row) => {
                    r.fallback(
                        rel,
                        format!("{} entries for {} nodes: distances unknown", row.len(), ids.len()),
                    );
                    None
                }
                Err(_) => {
                    r.fallback(rel, format!("garbled ({:?}): distances unknown", cut(&text)));
                    None
                }
            }
        })
        .collect();
    if rows.iter().all(Option::is_some) {
        for (node, row) in nodes.iter_mut().zip(rows) {
            node.distances = row.unwrap_or_default();
        }
    } else if ids.len() > 1 && rows.iter().any(Option::is_some) {
        r.fallback(
            NODE_DIR,
            "some distance rows missing or bad: the whole matrix is dropped",
        );
    }
    let dropped = dropped_nodes(r, &nodes);
    if !dropped.is_empty() {
        let keep: Vec<bool> = nodes.iter().map(|n| !dropped.contains(n.os_index)).collect();
        let mut flags = keep.iter();
        nodes.retain(|_| *flags.next().unwrap_or(&true));
        for node in &mut nodes {
            if !node.distances.is_empty() {
                let mut flags = keep.iter();
                node.distances.retain(|_| *flags.next().unwrap_or(&true));
            }
        }
    }
    attach_initiators(r, &mut nodes);
    nodes
}

/// The nodes hwloc drops: those whose CPUs overlap an earlier node's, then NVIDIA GPU memory.
/// Each is recorded.
fn dropped_nodes(r: &mut Reader, nodes: &[RawNode]) -> CpuSet {
    let mut dropped = CpuSet::new();
    let mut seen = CpuSet::new();
    for n in nodes {
        if n.cpus.intersects(&seen) {
            r.fallback(
                format!("{NODE_DIR}/node{}/cpulist", n.os_index),
                format!(
                    "CPUs {} overlap an earlier node's: node dropped, as hwloc does",
                    n.cpus.intersection(&seen)
                ),
            );
            dropped.insert(n.os_index);
        } else {
            seen = seen.union(&n.cpus);
        }
    }
    const NVIDIA_GPUS: &str = "proc/driver/nvidia/gpus";
    for gpu in r.entry_names(NVIDIA_GPUS) {
        let rel = format!("{NVIDIA_GPUS}/{gpu}/numa_status");
        let Some(text) = r.text(&rel) else { continue };
        let Some(node) = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Node:"))
            .and_then(|v| v.trim().parse::<u32>().ok())
        else {
            continue;
        };
        if nodes.iter().any(|n| n.os_index == node) && !dropped.contains(node) {
            r.fallback(
                rel,
                format!("node {node} is GPU {gpu}'s memory: dropped, as hwloc does"),
            );
            dropped.insert(node);
        }
    }
    dropped
}

/// Gives each CPU-less node the CPUs of the nodes its `access1/initiators` names.
fn attach_initiators(r: &mut Reader, nodes: &mut [RawNode]) {
    for i in 0..nodes.len() {
        if !nodes[i].cpus.is_empty() {
            continue;
        }
        let me = nodes[i].os_index;
        let initiators = r.numbered_entries(&format!("{NODE_DIR}/node{me}/access1/initiators"), "node");
        let cpus: CpuSet = nodes
            .iter()
            .filter(|n| n.os_index != me && initiators.contains(&n.os_index))
            .flat_map(|n| n.cpus.iter())
            .collect();
        nodes[i].initiator_cpus = cpus;
    }
}

/// `MemTotal` in bytes from a `meminfo` (`Node 0 MemTotal:  123 kB` or `MemTotal: 123 kB`).
pub(crate) fn meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.contains("MemTotal:"))?;
    let (_, value) = line.split_once("MemTotal:")?;
    parse_size(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::topology::sysfs::write_test_file as write;

    #[test]
    fn meminfo_forms() {
        assert_eq!(
            meminfo_total("Node 3 MemTotal:       8386704 kB\n"),
            Some(8386704 * 1024)
        );
        assert_eq!(meminfo_total("MemFree: 1 kB\nMemTotal: 2 kB\n"), Some(2048));
        assert_eq!(meminfo_total("MemTotal: lots\n"), None);
        assert_eq!(meminfo_total(""), None);
    }

    #[test]
    fn nodes_with_cpumap_memory_only_and_distances() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "sys/devices/system/node/node0/cpumap",
            "00000000,0000000f\n",
        );
        write(
            dir.path(),
            "sys/devices/system/node/node0/meminfo",
            "Node 0 MemTotal: 1024 kB\n",
        );
        write(dir.path(), "sys/devices/system/node/node0/distance", "10 20\n");
        write(dir.path(), "sys/devices/system/node/node2/cpulist", "\n");
        write(
            dir.path(),
            "sys/devices/system/node/node2/meminfo",
            "Node 2 MemTotal: 2048 kB\n",
        );
        write(dir.path(), "sys/devices/system/node/node2/distance", "20 10\n");
        let mut r = Reader::new(dir.path());
        let nodes = read_nodes(&mut r, &CpuSet::parse_list("0-3").unwrap());
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].cpus.to_list_string(), "0-3");
        assert_eq!(nodes[1].os_index, 2);
        assert!(nodes[1].cpus.is_empty());
        assert_eq!(nodes[1].memory_bytes, 2 << 20);
        assert_eq!(nodes[1].distances, vec![20, 10]);
        assert!(r.take_fallbacks().is_empty());
    }

    #[test]
    fn bad_distances_drop_the_matrix() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "sys/devices/system/node/node0/cpulist", "0\n");
        write(dir.path(), "sys/devices/system/node/node0/distance", "10 20 30\n");
        write(dir.path(), "sys/devices/system/node/node1/cpulist", "1\n");
        write(dir.path(), "sys/devices/system/node/node1/distance", "20 ten\n");
        let mut r = Reader::new(dir.path());
        let nodes = read_nodes(&mut r, &CpuSet::parse_list("0-1").unwrap());
        assert!(nodes.iter().all(|n| n.distances.is_empty()));
        assert_eq!(r.take_fallbacks().len(), 2);
    }

    /// Four nodes that list the same CPUs, as a broken firmware table may: only the first
    /// is kept, and the distance matrix loses the others' rows and columns.
    #[test]
    fn nodes_overlapping_an_earlier_one_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        for id in 0..4 {
            write(
                dir.path(),
                &format!("sys/devices/system/node/node{id}/cpulist"),
                "0-3\n",
            );
            let row: Vec<String> = (0..4)
                .map(|j| if j == id { "10".into() } else { format!("2{j}") })
                .collect();
            write(
                dir.path(),
                &format!("sys/devices/system/node/node{id}/distance"),
                &row.join(" "),
            );
        }
        // A fifth node overlapping only partly is dropped too; a sixth, disjoint, is kept.
        write(dir.path(), "sys/devices/system/node/node4/cpulist", "3-4\n");
        write(dir.path(), "sys/devices/system/node/node5/cpulist", "5\n");
        let mut r = Reader::new(dir.path());
        let nodes = read_nodes(&mut r, &CpuSet::parse_list("0-5").unwrap());
        let ids: Vec<u32> = nodes.iter().map(|n| n.os_index).collect();
        assert_eq!(ids, vec![0, 5]);
        assert_eq!(
            r.take_fallbacks()
                .iter()
                .filter(|f| f.action.contains("overlap"))
                .count(),
            4
        );
    }

    #[test]
    fn nvidia_gpu_memory_nodes_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "sys/devices/system/node/node0/cpulist", "0-3\n");
        write(dir.path(), "sys/devices/system/node/node0/distance", "10 80 80\n");
        write(dir.path(), "sys/devices/system/node/node1/cpulist", "\n");
        write(dir.path(), "sys/devices/system/node/node1/distance", "80 10 80\n");
        write(dir.path(), "sys/devices/system/node/node2/cpulist", "\n");
        write(dir.path(), "sys/devices/system/node/node2/distance", "80 80 10\n");
        // The driver's file names node 2 as the memory of one GPU; another GPU has no node.
        write(
            dir.path(),
            "proc/driver/nvidia/gpus/0004:04:00.0/numa_status",
            "Node:                             2\nOffline memory: 0\n",
        );
        write(
            dir.path(),
            "proc/driver/nvidia/gpus/0035:03:00.0/information",
            "Model: x\n",
        );
        let mut r = Reader::new(dir.path());
        let nodes = read_nodes(&mut r, &CpuSet::parse_list("0-3").unwrap());
        let ids: Vec<u32> = nodes.iter().map(|n| n.os_index).collect();
        assert_eq!(ids, vec![0, 1]);
        assert_eq!(nodes[0].distances, vec![10, 80]);
        assert_eq!(nodes[1].distances, vec![80, 10]);
    }

    /// A CPU-less memory tier (CXL, HBM) names its initiators in `access1/initiators/nodeN`.
    #[test]
    fn cpu_less_nodes_are_attached_to_their_initiators() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "sys/devices/system/node/node0/cpulist", "0-1\n");
        write(dir.path(), "sys/devices/system/node/node1/cpulist", "2-3\n");
        write(dir.path(), "sys/devices/system/node/node2/cpulist", "\n");
        write(dir.path(), "sys/devices/system/node/node3/cpulist", "\n");
        for initiator in ["node1", "node2"] {
            std::fs::create_dir_all(
                dir.path()
                    .join("sys/devices/system/node/node2/access1/initiators")
                    .join(initiator),
            )
            .unwrap();
        }
        let mut r = Reader::new(dir.path());
        let nodes = read_nodes(&mut r, &CpuSet::parse_list("0-3").unwrap());
        // Node 2's initiators are node 1 and itself (ignored); node 3 names none.
        assert_eq!(nodes[2].initiator_cpus.to_list_string(), "2-3");
        assert!(nodes[2].cpus.is_empty());
        assert!(nodes[3].initiator_cpus.is_empty());
        assert!(nodes[0].initiator_cpus.is_empty());
    }

    #[test]
    fn no_node_dir_gives_one_node() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "proc/meminfo", "MemTotal: 4 kB\n");
        let mut r = Reader::new(dir.path());
        let nodes = read_nodes(&mut r, &CpuSet::parse_list("0-7").unwrap());
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].cpus.len(), 8);
        assert_eq!(nodes[0].memory_bytes, 4096);
        assert_eq!(r.take_fallbacks().len(), 1);
    }
}

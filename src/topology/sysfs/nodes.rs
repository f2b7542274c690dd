//! NUMA nodes from `sys/devices/system/node/nodeN/`: CPUs (`cpulist`, or `cpumap` on old
//! kernels), memory (`meminfo`'s `MemTotal`), and the distance row (`distance`).
//!
//! Each node's `distance` row lists its distance to every node in increasing OS index order, so
//! a row must have one entry per node directory; a row that does not is dropped (recorded) and
//! the matrix is treated as unknown. A kernel built without NUMA has no `node/` directory: the
//! machine is then one node 0 holding every CPU, with `/proc/meminfo`'s total (recorded).

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
    nodes
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

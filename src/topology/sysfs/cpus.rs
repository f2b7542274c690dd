//! Logical CPUs from `sys/devices/system/cpu`: which exist, which are online, and what each
//! online CPU's `topology/` directory says about its package, die, cluster and core.
//!
//! The kernel describes the hierarchy twice: as ids (`physical_package_id`, `core_id`, …) and as
//! sibling sets (`package_cpus`, `core_cpus`, or the older `core_siblings` and
//! `thread_siblings`). The sets are what define the groups (ids can repeat across packages or be
//! `-1`), so both are kept and [`super::assemble`] prefers the sets. Offline CPUs have no
//! `topology/` (or a stale one) and are not read.

use crate::topology::cpuset::CpuSet;

use super::reader::Reader;

const CPU_DIR: &str = "sys/devices/system/cpu";

/// What sysfs says about one CPU.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawCpu {
    pub os_index: u32,
    pub online: bool,
    /// Whether an online CPU had a `topology/` directory.
    pub has_topology: bool,
    pub package_id: Option<u32>,
    pub die_id: Option<u32>,
    pub cluster_id: Option<u32>,
    pub core_id: Option<u32>,
    pub package_cpus: Option<CpuSet>,
    pub die_cpus: Option<CpuSet>,
    pub cluster_cpus: Option<CpuSet>,
    pub core_cpus: Option<CpuSet>,
}

/// The CPUs the kernel knows (`present`, and every `cpuN` directory), each with what its
/// `topology/` says when it is online.
pub(crate) fn read_cpus(r: &mut Reader) -> Vec<RawCpu> {
    let dirs = r.numbered_entries(CPU_DIR, "cpu");
    let present = r.list(&format!("{CPU_DIR}/present"));
    let mut known: CpuSet = dirs.iter().copied().collect();
    if let Some(present) = &present {
        known = known.union(present);
    }
    let online = read_online(r, &known);
    known = known.union(&online);
    known
        .iter()
        .map(|cpu| {
            let mut raw = RawCpu {
                os_index: cpu,
                online: online.contains(cpu),
                ..RawCpu::default()
            };
            if raw.online {
                read_topology(r, &mut raw);
            }
            raw
        })
        .collect()
}

/// The online CPUs: `cpu/online`, or else each `cpuN/online` flag (a CPU without one, like
/// cpu0 on most machines, cannot be taken offline and is online).
fn read_online(r: &mut Reader, known: &CpuSet) -> CpuSet {
    if let Some(online) = r.list(&format!("{CPU_DIR}/online")) {
        return online;
    }
    r.fallback(
        format!("{CPU_DIR}/online"),
        "missing or garbled: read each cpuN/online flag (no flag: online)",
    );
    known
        .iter()
        .filter(|cpu| match r.int(&format!("{CPU_DIR}/cpu{cpu}/online")) {
            Some(flag) => flag != 0,
            None => true,
        })
        .collect()
}

fn read_topology(r: &mut Reader, raw: &mut RawCpu) {
    let dir = format!("{CPU_DIR}/cpu{}/topology", raw.os_index);
    if !r.is_dir(&dir) {
        return;
    }
    raw.has_topology = true;
    raw.package_id = r.id(&format!("{dir}/physical_package_id"));
    raw.die_id = r.id(&format!("{dir}/die_id"));
    raw.cluster_id = r.id(&format!("{dir}/cluster_id"));
    raw.core_id = r.id(&format!("{dir}/core_id"));
    raw.package_cpus = r
        .mask_or_list(&dir, "package_cpus", "package_cpus_list")
        .or_else(|| r.mask_or_list(&dir, "core_siblings", "core_siblings_list"));
    raw.die_cpus = r.mask_or_list(&dir, "die_cpus", "die_cpus_list");
    raw.cluster_cpus = r.mask_or_list(&dir, "cluster_cpus", "cluster_cpus_list");
    raw.core_cpus = r
        .mask_or_list(&dir, "core_cpus", "core_cpus_list")
        .or_else(|| r.mask_or_list(&dir, "thread_siblings", "thread_siblings_list"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    use crate::topology::sysfs::write_test_file as write;

    #[test]
    fn online_from_flags_when_list_missing() {
        let dir = tempfile::tempdir().unwrap();
        for cpu in 0..4 {
            fs::create_dir_all(dir.path().join(format!("{CPU_DIR}/cpu{cpu}"))).unwrap();
        }
        write(dir.path(), &format!("{CPU_DIR}/cpu1/online"), "0\n");
        write(dir.path(), &format!("{CPU_DIR}/cpu2/online"), "1\n");
        write(dir.path(), &format!("{CPU_DIR}/cpu3/online"), "garbage\n");
        let mut r = Reader::new(dir.path());
        let cpus = read_cpus(&mut r);
        let online: Vec<u32> = cpus.iter().filter(|c| c.online).map(|c| c.os_index).collect();
        assert_eq!(online, vec![0, 2, 3]);
        let fallbacks = r.take_fallbacks();
        assert!(fallbacks.iter().any(|f| f.what.ends_with("cpu/online")));
        assert!(fallbacks.iter().any(|f| f.what.ends_with("cpu3/online")));
    }

    #[test]
    fn topology_prefers_new_files_and_survives_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let t = format!("{CPU_DIR}/cpu0/topology");
        write(dir.path(), &format!("{CPU_DIR}/online"), "0\n");
        write(dir.path(), &format!("{t}/physical_package_id"), "-1\n");
        write(dir.path(), &format!("{t}/core_id"), "x7\n");
        write(dir.path(), &format!("{t}/package_cpus_list"), "0-3\n");
        write(dir.path(), &format!("{t}/core_siblings_list"), "0-7\n");
        write(dir.path(), &format!("{t}/core_cpus_list"), "3-1\n");
        write(dir.path(), &format!("{t}/thread_siblings"), "00000003\n");
        let mut r = Reader::new(dir.path());
        let cpus = read_cpus(&mut r);
        assert_eq!(cpus.len(), 1);
        let c = &cpus[0];
        assert!(c.has_topology);
        assert_eq!(c.package_id, None);
        assert_eq!(c.core_id, None);
        assert_eq!(
            c.package_cpus.as_ref().map(|s| s.to_list_string()),
            Some("0-3".into())
        );
        assert_eq!(
            c.core_cpus.as_ref().map(|s| s.to_list_string()),
            Some("0-1".into())
        );
        assert_eq!(r.take_fallbacks().len(), 2);
    }

    #[test]
    fn offline_cpus_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &format!("{CPU_DIR}/online"), "0\n");
        write(dir.path(), &format!("{CPU_DIR}/present"), "0-1\n");
        write(dir.path(), &format!("{CPU_DIR}/cpu1/topology/core_id"), "5\n");
        let mut r = Reader::new(dir.path());
        let cpus = read_cpus(&mut r);
        assert_eq!(cpus.len(), 2);
        assert!(!cpus[1].online);
        assert_eq!(cpus[1].core_id, None);
    }
}

//! From what the readers found to a [`Topology`]: groups built from sibling sets, then
//! everything restricted to what the process may use.
//!
//! Grouping follows one rule for packages, dies, clusters and cores. CPUs are visited in
//! increasing order; an online CPU not yet grouped starts a group made of its sibling set (from
//! sysfs), or, without one, of the CPUs that share its id, or, without that either, of itself
//! alone (cores) or of every CPU that lacks the information (packages). CPUs already grouped are
//! never moved, so inconsistent sibling sets still give a partition, and the inconsistency is
//! recorded. Cores never cross packages. The result is built over the online CPUs and only then
//! restricted to the allowed ones, as hwloc does, so restriction never changes a group's identity.

use crate::topology::cpuset::CpuSet;
use crate::topology::error::TopologyError;
use crate::topology::model::{Cache, Core, Group, NumaNode, Package, Pu, Source, Topology};

use super::cpuinfo::parse_cpuinfo;
use super::cpus::RawCpu;
use super::hybrid::CoreKinds;
use super::nodes::RawNode;
use super::reader::Reader;
use super::restriction::Restriction;

/// Everything the readers found.
pub(crate) struct Parts {
    pub cpus: Vec<RawCpu>,
    pub caches: Vec<Cache>,
    pub nodes: Vec<RawNode>,
    pub kinds: CoreKinds,
    pub restriction: Restriction,
    pub source: Source,
}

/// When no online CPU has a `topology/` directory, takes package and core ids from
/// `/proc/cpuinfo` (recorded). When only some lack it, records that those are their own cores.
pub(crate) fn fill_missing_topology(r: &mut Reader, cpus: &mut [RawCpu]) {
    let online = cpus.iter().filter(|c| c.online);
    let without: CpuSet = online
        .clone()
        .filter(|c| !c.has_topology)
        .map(|c| c.os_index)
        .collect();
    if without.is_empty() {
        return;
    }
    if online.clone().any(|c| c.has_topology) {
        r.fallback(
            format!("sys/devices/system/cpu/cpu{{{without}}}/topology"),
            "missing for these online CPUs: each is its own core, in a package of its own kind",
        );
        return;
    }
    let Some(text) = r.text("proc/cpuinfo") else {
        r.fallback(
            "sys/devices/system/cpu/cpu*/topology and proc/cpuinfo",
            "both missing: one package, each PU its own core",
        );
        return;
    };
    let (records, skipped) = parse_cpuinfo(&text);
    if skipped > 0 {
        r.fallback(
            "proc/cpuinfo",
            format!("{skipped} record(s) without a processor number skipped"),
        );
    }
    let mut used = 0;
    for rec in records {
        if let Some(cpu) = cpus.iter_mut().find(|c| c.online && c.os_index == rec.processor) {
            cpu.package_id = rec.physical_id;
            cpu.core_id = rec.core_id;
            used += usize::from(rec.physical_id.is_some() || rec.core_id.is_some());
        }
    }
    r.fallback(
        "sys/devices/system/cpu/cpu*/topology",
        if used > 0 {
            "missing: packages and cores from /proc/cpuinfo `physical id` and `core id`"
        } else {
            "missing, and /proc/cpuinfo has no `physical id`/`core id`: one package, each PU its own core"
        },
    );
}

/// Partitions `universe` as the module docs say. `group_of(cpu)` proposes a CPU's group.
/// Returns the groups in order of their first CPU, and whether any proposal disagreed with the
/// groups already made.
fn partition(universe: &CpuSet, mut group_of: impl FnMut(u32) -> CpuSet) -> (Vec<CpuSet>, bool) {
    let mut assigned = CpuSet::new();
    let mut groups = Vec::new();
    let mut inconsistent = false;
    let mut proposal = |cpu: u32| {
        let mut set = group_of(cpu).intersection(universe);
        set.insert(cpu);
        set
    };
    for cpu in universe.iter() {
        if assigned.contains(cpu) {
            continue;
        }
        let proposed = proposal(cpu);
        let group = proposed.difference(&assigned);
        inconsistent |= group != proposed;
        // Every member should propose the same group.
        inconsistent |= group.iter().any(|m| proposal(m) != proposed);
        assigned = assigned.union(&group);
        groups.push(group);
    }
    (groups, inconsistent)
}

/// Builds the topology from `parts` and restricts it.
pub(crate) fn assemble(r: &mut Reader, parts: Parts) -> Result<Topology, TopologyError> {
    let Parts {
        cpus,
        caches,
        nodes,
        kinds,
        restriction,
        source,
    } = parts;
    let online: CpuSet = cpus.iter().filter(|c| c.online).map(|c| c.os_index).collect();
    let raw = |cpu: u32| cpus.iter().find(|c| c.os_index == cpu);

    // Packages.
    let (package_sets, bad) = partition(&online, |cpu| {
        let c = raw(cpu);
        if let Some(set) = c.and_then(|c| c.package_cpus.clone()) {
            return set;
        }
        let id = c.and_then(|c| c.package_id);
        cpus.iter()
            .filter(|o| o.online && o.package_cpus.is_none() && o.package_id == id)
            .map(|o| o.os_index)
            .collect()
    });
    if bad {
        r.fallback(
            "package sibling sets",
            "inconsistent between CPUs: first CPU's set kept",
        );
    }
    let max_known = cpus.iter().filter_map(|c| c.package_id).max();
    let mut next_unknown = max_known.map_or(0, |m| m.saturating_add(1));
    let mut unknown_packages = false;
    let package_ids: Vec<u32> = package_sets
        .iter()
        .map(|set| {
            let first = set.first().and_then(raw).and_then(|c| c.package_id);
            first.unwrap_or_else(|| {
                unknown_packages = true;
                let id = next_unknown;
                next_unknown = next_unknown.saturating_add(1);
                id
            })
        })
        .collect();
    if unknown_packages && (package_sets.len() > 1 || max_known.is_some()) {
        r.fallback(
            "physical_package_id",
            "unknown for some CPUs: their package numbered after the known ones",
        );
    }
    let package_of = |cpu: u32| package_sets.iter().position(|s| s.contains(cpu));

    // Cores (never crossing packages). Sibling CPUs that report different `core_id`s are
    // separate cores sharing a front end (AMD compute units), as hwloc treats them.
    let mut split_by_core_id = false;
    let (core_sets, bad) = partition(&online, |cpu| {
        let pkg = package_of(cpu)
            .map(|i| package_sets[i].clone())
            .unwrap_or_default();
        let c = raw(cpu);
        let set = match (c.and_then(|c| c.core_cpus.clone()), c.and_then(|c| c.core_id)) {
            (Some(set), Some(id)) => {
                let same: CpuSet = set
                    .iter()
                    .filter(|&o| raw(o).is_none_or(|o| o.core_id.is_none_or(|oid| oid == id)))
                    .collect();
                split_by_core_id |= same != set;
                same
            }
            (Some(set), None) => set,
            (None, Some(id)) => pkg
                .iter()
                .filter(|&o| raw(o).is_some_and(|o| o.core_cpus.is_none() && o.core_id == Some(id)))
                .collect(),
            (None, None) => CpuSet::single(cpu),
        };
        set.intersection(&pkg)
    });
    if split_by_core_id {
        r.fallback(
            "core_cpus/thread_siblings",
            "siblings report different core_id values (compute units): one core per core_id",
        );
    }
    if bad {
        r.fallback(
            "core sibling sets",
            "inconsistent between CPUs (or crossing packages): first CPU's set kept",
        );
    }

    // Dies and clusters: kept only where the kernel gives a real level, i.e. every set holds
    // whole cores and has a known id (arm64 writes `die_id` -1 with single-CPU `die_cpus`), and
    // only the groups that differ from their package and from a core (hwloc merges those).
    let core_of = |cpu: u32| core_sets.iter().find(|s| s.contains(cpu));
    let inner_level =
        |get: &dyn Fn(&RawCpu) -> Option<CpuSet>, id: &dyn Fn(&RawCpu) -> Option<u32>| -> Vec<CpuSet> {
            let real = cpus
                .iter()
                .filter(|c| c.online)
                .all(|c| get(c).is_some() && id(c).is_some());
            if !real {
                return Vec::new();
            }
            let (sets, _) = partition(&online, |cpu| {
                let pkg = package_of(cpu)
                    .map(|i| package_sets[i].clone())
                    .unwrap_or_default();
                raw(cpu)
                    .and_then(get)
                    .unwrap_or_else(|| CpuSet::single(cpu))
                    .intersection(&pkg)
            });
            let whole_cores = sets.iter().all(|s| {
                s.iter()
                    .all(|cpu| core_of(cpu).is_none_or(|core| core.is_subset(s)))
            });
            if !whole_cores {
                return Vec::new();
            }
            sets.into_iter()
                .filter(|s| !package_sets.contains(s) && !core_sets.contains(s))
                .collect()
        };
    let die_sets = inner_level(&|c: &RawCpu| c.die_cpus.clone(), &|c: &RawCpu| c.die_id);
    let cluster_sets = inner_level(&|c: &RawCpu| c.cluster_cpus.clone(), &|c: &RawCpu| c.cluster_id);

    // Restriction.
    let mut allowed = match &restriction.cpus {
        Some(cpus) => online.intersection(cpus),
        None => online.clone(),
    };
    if allowed.is_empty() {
        return Err(TopologyError::NoAllowedCpu);
    }
    let node_ids: CpuSet = nodes.iter().map(|n| n.os_index).collect();
    let mut allowed_mems = match &restriction.mems {
        Some(mems) => node_ids.intersection(mems),
        None => node_ids.clone(),
    };
    if allowed_mems.is_empty() {
        r.fallback(
            "cpuset memory nodes",
            "name no existing node: memory not restricted",
        );
        allowed_mems = node_ids.clone();
    }
    allowed = allowed.intersection(&online);

    let kind_of = |cpu: u32| {
        kinds
            .iter()
            .find(|(_, set)| set.contains(cpu))
            .map(|(k, _)| k.clone())
    };
    let node_of = |cpu: u32| nodes.iter().find(|n| n.cpus.contains(cpu)).map(|n| n.os_index);

    let pus: Vec<Pu> = cpus
        .iter()
        .map(|c| Pu {
            os_index: c.os_index,
            online: c.online,
            allowed: allowed.contains(c.os_index),
            package: package_of(c.os_index).map(|i| package_ids[i]),
            core_id: c.core_id,
            node: node_of(c.os_index),
            core_kind: kind_of(c.os_index),
        })
        .collect();
    let in_nodes: CpuSet = nodes.iter().flat_map(|n| n.cpus.iter()).collect();
    let orphans = online.difference(&in_nodes);
    if !orphans.is_empty() {
        r.fallback(
            format!("CPUs {orphans}"),
            "listed by no NUMA node: they belong to none",
        );
    }

    let mut packages: Vec<Package> = package_sets
        .iter()
        .zip(&package_ids)
        .map(|(set, &os_index)| Package {
            os_index,
            cpus: set.intersection(&allowed),
        })
        .filter(|p| !p.cpus.is_empty())
        .collect();
    packages.sort_by_key(|p| p.os_index);

    let group = |sets: &[CpuSet], id: &dyn Fn(&RawCpu) -> Option<u32>| -> Vec<Group> {
        sets.iter()
            .enumerate()
            .map(|(i, set)| {
                let first = set.first().unwrap_or(0);
                Group {
                    os_index: raw(first).and_then(id).unwrap_or(i as u32),
                    package: package_of(first).map(|p| package_ids[p]),
                    cpus: set.intersection(&allowed),
                }
            })
            .filter(|g| !g.cpus.is_empty())
            .collect()
    };
    let dies = group(&die_sets, &|c: &RawCpu| c.die_id);
    let clusters = group(&cluster_sets, &|c: &RawCpu| c.cluster_id);

    let cores: Vec<Core> = core_sets
        .iter()
        .filter_map(|set| {
            let first = set.first()?;
            let cpus = set.intersection(&allowed);
            if cpus.is_empty() {
                return None;
            }
            Some(Core {
                core_id: raw(first).and_then(|c| c.core_id),
                package: package_of(first).map(|p| package_ids[p]),
                cpus,
                kind: kind_of(first),
            })
        })
        .collect();

    let mut caches: Vec<Cache> = caches
        .into_iter()
        .map(|c| Cache {
            cpus: c.cpus.intersection(&allowed),
            ..c
        })
        .filter(|c| !c.cpus.is_empty())
        .collect();
    caches.sort_by_key(|a| (a.level, a.cpus.first(), a.kind));

    let kept: Vec<usize> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| allowed_mems.contains(n.os_index) || n.cpus.intersects(&allowed))
        .map(|(i, _)| i)
        .collect();
    let numa_nodes: Vec<NumaNode> = kept
        .iter()
        .map(|&i| {
            let n = &nodes[i];
            NumaNode {
                os_index: n.os_index,
                cpus: n.cpus.intersection(&allowed),
                all_pus: n.cpus.clone(),
                memory_bytes: n.memory_bytes,
                distances: if n.distances.is_empty() {
                    Vec::new()
                } else {
                    kept.iter().filter_map(|&j| n.distances.get(j).copied()).collect()
                },
                memory_allowed: allowed_mems.contains(n.os_index),
            }
        })
        .collect();

    Ok(Topology {
        pus,
        packages,
        dies,
        clusters,
        cores,
        numa_nodes,
        caches,
        allowed_cpus: allowed,
        allowed_mems,
        fallbacks: r.take_fallbacks(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> CpuSet {
        CpuSet::parse_list(s).unwrap()
    }

    #[test]
    fn partition_of_consistent_sets() {
        let (groups, bad) = partition(&set("0-7"), |cpu| {
            if cpu % 2 == 0 {
                set("0,2,4,6")
            } else {
                set("1,3,5,7")
            }
        });
        assert_eq!(groups, vec![set("0,2,4,6"), set("1,3,5,7")]);
        assert!(!bad);
    }

    #[test]
    fn partition_of_inconsistent_sets_is_still_a_partition() {
        // cpu1 claims 1-2, cpu2 claims 0-2: garbage, but every CPU ends in exactly one group.
        let (groups, bad) = partition(&set("0-3"), |cpu| match cpu {
            0 => set("0-1"),
            1 => set("1-2"),
            2 => set("0-2"),
            _ => set("9"),
        });
        assert!(bad);
        let total: usize = groups.iter().map(CpuSet::len).sum();
        assert_eq!(total, 4);
        assert_eq!(groups.iter().fold(CpuSet::new(), |a, g| a.union(g)), set("0-3"));
        assert_eq!(groups.last().unwrap(), &set("3"));
    }
}

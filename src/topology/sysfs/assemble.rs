//! From what the readers found to a [`Topology`]: groups built from sibling sets, then
//! everything restricted to what the process may use.
//!
//! Packages follow hwloc's rule (see [`packages`]): a package is the sibling set its first CPU
//! reads; a set contradicting a package already made is dropped, a CPU no package holds is in
//! none, and each contradiction is recorded. Dies, clusters and cores follow one rule: CPUs are
//! visited in increasing order; an online CPU not yet grouped starts a group made of its sibling
//! set (from sysfs), or, without one, of the CPUs that share its id, or, without that either, of
//! itself alone. CPUs already grouped are never moved, so inconsistent sibling sets still give a
//! partition, and the inconsistency is recorded. Cores never cross packages. The result is
//! built over the online CPUs and only then
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

/// Packages by hwloc's rule (`look_sysfscpu` in hwloc's Linux backend), over the online CPUs
/// that have a package sibling set: visiting CPUs in increasing order, a CPU that is the first
/// of its own set makes a package of that set, named by its `physical_package_id`; a set that
/// overlaps a package already made contradicts it and is dropped; a CPU that no kept set holds
/// is in no package (hwloc does not make one up). Online CPUs without a sibling set are grouped
/// by `physical_package_id` among themselves. Every contradiction is recorded as a fallback.
///
/// Returns the sets in order of their first CPU and each one's id. Ids are unique: a package
/// whose first CPU repeats another package's id is numbered after the largest known id
/// (recorded; hwloc would show the id twice, but a [`Pu`] names its package by id).
fn packages(r: &mut Reader, cpus: &[RawCpu], online: &CpuSet) -> (Vec<CpuSet>, Vec<u32>) {
    let raw = |cpu: u32| cpus.iter().find(|c| c.os_index == cpu);
    let with_set: CpuSet = cpus
        .iter()
        .filter(|c| c.online && c.package_cpus.is_some())
        .map(|c| c.os_index)
        .collect();
    let own_set = |cpu: u32| {
        raw(cpu)
            .and_then(|c| c.package_cpus.as_ref())
            .map(|s| s.intersection(&with_set))
            .unwrap_or_default()
    };
    let mut sets: Vec<CpuSet> = Vec::new();
    for cpu in with_set.iter() {
        let set = own_set(cpu);
        if set.first() == Some(cpu) && !sets.iter().any(|s| s.intersects(&set)) {
            sets.push(set);
        }
    }
    let covered = sets.iter().fold(CpuSet::new(), |all, s| all.union(s));
    let disagreeing: CpuSet = with_set
        .iter()
        .filter(|&cpu| sets.iter().find(|s| s.contains(cpu)) != Some(&own_set(cpu)))
        .collect();
    if !disagreeing.is_empty() {
        let left_out = with_set.difference(&covered);
        r.fallback(
            format!("package sibling sets (package_cpus/core_siblings) of CPUs {disagreeing}"),
            if left_out.is_empty() {
                "contradict their package's: a package is the set its first CPU reads, a set \
                 overlapping it is dropped (hwloc's rule)"
                    .to_string()
            } else {
                format!(
                    "contradict their package's: a package is the set its first CPU reads, a set \
                     overlapping it is dropped (hwloc's rule); CPUs {left_out} are in no package"
                )
            },
        );
    }
    // CPUs without a sibling set: grouped by id.
    let without_set = online.difference(&with_set);
    let (by_id, _) = partition(&without_set, |cpu| {
        let id = raw(cpu).and_then(|c| c.package_id);
        without_set
            .iter()
            .filter(|&o| raw(o).and_then(|c| c.package_id) == id)
            .collect()
    });
    sets.extend(by_id);
    sets.sort_by_key(CpuSet::first);

    let id_of = |cpu: u32| raw(cpu).and_then(|c| c.package_id);
    let id_disagrees: CpuSet = sets
        .iter()
        .flat_map(|s| {
            let first = s.first().and_then(id_of);
            s.iter().filter(move |&cpu| id_of(cpu) != first)
        })
        .collect();
    if !id_disagrees.is_empty() {
        r.fallback(
            format!("physical_package_id of CPUs {id_disagrees}"),
            "differs from their package's first CPU: the sibling sets decide, the first CPU's id names it",
        );
    }
    let max_known = cpus.iter().filter_map(|c| c.package_id).max();
    let mut next_free = max_known.map_or(0, |m| m.saturating_add(1));
    let mut unknown = false;
    let mut repeated = Vec::new();
    let mut ids: Vec<u32> = Vec::with_capacity(sets.len());
    for set in &sets {
        let id = match set.first().and_then(id_of) {
            Some(id) if !ids.contains(&id) => id,
            known => {
                if let Some(id) = known {
                    repeated.push(format!("{id} (CPUs {set}: now {next_free})"));
                } else {
                    unknown = true;
                }
                let id = next_free;
                next_free = next_free.saturating_add(1);
                id
            }
        };
        ids.push(id);
    }
    if unknown && (sets.len() > 1 || max_known.is_some()) {
        r.fallback(
            "physical_package_id",
            "unknown for some CPUs: their package numbered after the known ones",
        );
    }
    if !repeated.is_empty() {
        r.fallback(
            "physical_package_id",
            format!(
                "repeated by packages with different sibling sets: {}; renumbered after the known ids",
                repeated.join(", ")
            ),
        );
    }
    (sets, ids)
}

/// Builds the topology from `parts` and restricts it.
// tidy: long-fn — the one rule that builds packages, dies, clusters and cores, step after step
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
    let (package_sets, package_ids) = packages(r, &cpus, &online);
    let package_of = |cpu: u32| package_sets.iter().position(|s| s.contains(cpu));
    // CPUs that no package holds (hwloc's rule leaves them out when sibling sets contradict).
    let no_package = package_sets
        .iter()
        .fold(online.clone(), |rest, set| rest.difference(set));
    let package_or_rest = |cpu: u32| {
        package_of(cpu)
            .map(|i| package_sets[i].clone())
            .unwrap_or_else(|| no_package.clone())
    };

    // Cores (never crossing packages). Sibling CPUs that report different `core_id`s are
    // separate cores sharing a front end (AMD compute units), as hwloc treats them.
    let mut split_by_core_id = false;
    let (core_sets, bad) = partition(&online, |cpu| {
        let pkg = package_or_rest(cpu);
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
                let pkg = package_or_rest(cpu);
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
                initiator_pus: n.initiator_cpus.intersection(&allowed),
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

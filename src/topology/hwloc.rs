//! Discovery through hwloc (feature `hwloc`, via the `hwlocality` crate), into the same model as
//! the pure-Rust reader, so the two can be checked against each other.
//!
//! hwloc restricts its topology to the allowed CPUs and memory nodes by default, just as
//! [`Topology::discover`] does; it drops offline PUs and nodes whose memory is not allowed, so
//! every PU listed here is online and allowed, and every node's memory is allowed. Dies come from hwloc's `Die`
//! objects and core kinds from its CPU kinds (named by their `CoreType` info, else by their
//! efficiency rank); clusters are not mapped (hwloc shows them as `Group`s, merged away when they
//! match a cache). The crate is built for hwloc ≥ 2.8 (Debian 12 ships 2.9). Setting `HWLOC_FSROOT` before the call makes hwloc read a
//! sysfs snapshot instead of the live machine.

use hwlocality::object::TopologyObject;
use hwlocality::object::attributes::ObjectAttributes;
use hwlocality::object::types::{CacheType, ObjectType};

use super::cpuset::CpuSet;
use super::error::TopologyError;
use super::model::{Cache, CacheKind, Core, Group, NumaNode, Package, Pu, Source, Topology};

fn to_set<'a>(bits: impl Iterator<Item = hwlocality::bitmap::BitmapIndex> + 'a) -> CpuSet {
    bits.filter_map(|i| u32::try_from(usize::from(i)).ok()).collect()
}

fn cpus_of(obj: &TopologyObject) -> CpuSet {
    obj.cpuset().map(|s| to_set(s.iter_set())).unwrap_or_default()
}

fn os_index(obj: &TopologyObject) -> Option<u32> {
    obj.os_index().and_then(|i| u32::try_from(i).ok())
}

fn cache_level(ty: ObjectType) -> Option<u8> {
    Some(match ty {
        ObjectType::L1Cache | ObjectType::L1ICache => 1,
        ObjectType::L2Cache | ObjectType::L2ICache => 2,
        ObjectType::L3Cache | ObjectType::L3ICache => 3,
        ObjectType::L4Cache => 4,
        ObjectType::L5Cache => 5,
        _ => return None,
    })
}

impl Topology {
    /// Discovers the running machine with hwloc (or the snapshot named by `HWLOC_FSROOT`).
    ///
    /// # Errors
    /// [`TopologyError::Hwloc`] if hwloc fails to build its topology.
    #[doc(alias = "hwloc_topology_load")]
    // tidy: long-fn — one hwloc object kind after another, a table in code
    pub fn from_hwloc() -> Result<Self, TopologyError> {
        let topo = hwlocality::Topology::new().map_err(|e| TopologyError::Hwloc(e.to_string()))?;
        let package_of = |obj: &TopologyObject| {
            obj.first_ancestor_with_type(ObjectType::Package)
                .and_then(os_index)
        };

        let allowed_cpus = to_set(topo.allowed_cpuset().iter_set());
        let allowed_mems = to_set(topo.allowed_nodeset().iter_set());
        let nodes: Vec<&TopologyObject> = topo.objects_with_type(ObjectType::NUMANode).collect();
        let node_of = |cpu: u32| {
            nodes
                .iter()
                .find(|n| cpus_of(n).contains(cpu))
                .and_then(|n| os_index(n))
        };
        // CPU kinds: hwloc lists them from most to least power-efficient.
        let kinds: Vec<(String, CpuSet)> = match topo.cpu_kinds() {
            Ok(kinds) if kinds.len() > 1 => kinds
                .enumerate()
                .map(|(rank, kind)| {
                    let name = kind
                        .infos
                        .iter()
                        .find(|i| i.name().to_bytes() == b"CoreType")
                        .map(|i| i.value().to_string_lossy().into_owned())
                        .unwrap_or_else(|| format!("efficiency_rank={rank}"));
                    (name, to_set(kind.cpuset.iter_set()))
                })
                .collect(),
            _ => Vec::new(),
        };
        let kind_of = |cpu: u32| {
            kinds
                .iter()
                .find(|(_, s)| s.contains(cpu))
                .map(|(k, _)| k.clone())
        };
        let mut pus: Vec<Pu> = topo
            .objects_with_type(ObjectType::PU)
            .filter_map(|pu| {
                let cpu = os_index(pu)?;
                let core = pu.first_ancestor_with_type(ObjectType::Core);
                Some(Pu {
                    os_index: cpu,
                    online: true,
                    allowed: allowed_cpus.contains(cpu),
                    package: package_of(pu),
                    core_id: core.and_then(os_index),
                    node: node_of(cpu),
                    core_kind: kind_of(cpu),
                })
            })
            .collect();
        pus.sort_by_key(|p| p.os_index);

        let mut packages: Vec<Package> = topo
            .objects_with_type(ObjectType::Package)
            .map(|p| Package {
                os_index: os_index(p).unwrap_or(0),
                cpus: cpus_of(p),
            })
            .filter(|p| !p.cpus.is_empty())
            .collect();
        packages.sort_by_key(|p| p.os_index);
        let dies = topo
            .objects_with_type(ObjectType::Die)
            .map(|d| Group {
                os_index: os_index(d).unwrap_or(0),
                package: package_of(d),
                cpus: cpus_of(d),
            })
            .filter(|d| !d.cpus.is_empty())
            .collect();
        let mut cores: Vec<Core> = topo
            .objects_with_type(ObjectType::Core)
            .map(|c| Core {
                core_id: os_index(c),
                package: package_of(c),
                cpus: cpus_of(c),
                kind: cpus_of(c).first().and_then(kind_of),
            })
            .filter(|c| !c.cpus.is_empty())
            .collect();
        cores.sort_by_key(|c| c.cpus.first());

        let mut caches = Vec::new();
        for obj in topo.objects() {
            let Some(level) = cache_level(obj.object_type()) else {
                continue;
            };
            let Some(ObjectAttributes::Cache(attr)) = obj.attributes() else {
                continue;
            };
            let kind = match attr.cache_type() {
                CacheType::Data => CacheKind::Data,
                CacheType::Instruction => CacheKind::Instruction,
                _ => CacheKind::Unified,
            };
            let cpus = cpus_of(obj);
            if cpus.is_empty() {
                continue;
            }
            caches.push(Cache {
                level,
                kind,
                size_bytes: attr.size().map_or(0, |s| s.get()),
                line_size: attr
                    .line_size()
                    .and_then(|l| u32::try_from(l.get()).ok())
                    .unwrap_or(0),
                ways: 0,
                cpus,
            });
        }
        caches.sort_by_key(|a| (a.level, a.cpus.first(), a.kind));

        // Distances: the first NUMA-node matrix hwloc has, mapped to our node order.
        let mut node_ids: Vec<u32> = nodes.iter().filter_map(|n| os_index(n)).collect();
        node_ids.sort_unstable();
        let mut matrix: Option<Vec<Vec<u32>>> = None;
        if let Ok(all) = topo.distances(None) {
            for d in all {
                let ids: Vec<Option<u32>> = d
                    .objects()
                    .map(|o| {
                        o.filter(|o| o.object_type() == ObjectType::NUMANode)
                            .and_then(os_index)
                    })
                    .collect();
                if ids.len() != node_ids.len() || ids.iter().any(Option::is_none) {
                    continue;
                }
                let values = d.distances();
                let pos = |id: u32| ids.iter().position(|&i| i == Some(id));
                let rows = node_ids
                    .iter()
                    .map(|&a| {
                        node_ids
                            .iter()
                            .map(|&b| {
                                let (i, j) = (pos(a).unwrap_or(0), pos(b).unwrap_or(0));
                                values
                                    .get(i * ids.len() + j)
                                    .map_or(0, |&v| u32::try_from(v).unwrap_or(u32::MAX))
                            })
                            .collect()
                    })
                    .collect();
                matrix = Some(rows);
                break;
            }
        }
        let mut numa_nodes: Vec<NumaNode> = nodes
            .iter()
            .filter_map(|n| {
                let id = os_index(n)?;
                let memory_bytes = match n.attributes() {
                    Some(ObjectAttributes::NUMANode(a)) => a.local_memory().map_or(0, |m| m.get()),
                    _ => 0,
                };
                let cpus = cpus_of(n);
                Some(NumaNode {
                    os_index: id,
                    cpus: cpus.clone(),
                    all_pus: cpus,
                    memory_bytes,
                    distances: matrix
                        .as_ref()
                        .and_then(|m| m.get(node_ids.iter().position(|&x| x == id)?).cloned())
                        .unwrap_or_default(),
                    memory_allowed: allowed_mems.contains(id),
                    initiator_pus: CpuSet::new(),
                })
            })
            .collect();
        numa_nodes.sort_by_key(|n| n.os_index);

        Ok(Topology {
            pus,
            packages,
            dies,
            clusters: Vec::new(),
            cores,
            numa_nodes,
            caches,
            allowed_cpus,
            allowed_mems,
            fallbacks: Vec::new(),
            source: Source::Hwloc,
        })
    }
}

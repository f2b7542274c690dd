//! The placement plan: which worker runs on which CPU, and which node's memory it uses.
//!
//! Computed once from a [`Topology`] (which already holds only the CPUs and memory nodes this
//! process may use), the plan gives every NUMA node that has allowed CPUs its own group of
//! workers, each pinned to one PU, with a *home node* for its memory. Memory-only nodes (CXL,
//! HBM) are ranked by distance as overflow targets. Everything that makes the plan weaker than
//! the machine — one node only, a node whose CPUs are all hidden by a cpuset, a node whose memory
//! may not be used — is listed in [`PlacementPlan::degradations`] as data.

use serde::Serialize;

use super::cpuset::CpuSet;
use super::error::TopologyError;
use super::model::Topology;

/// How many workers a node gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerGranularity {
    /// One worker per physical core, pinned to the core's first allowed PU (the default: SMT
    /// siblings share a core's caches and ports, so a second worker there mostly adds contention).
    #[default]
    PerCore,
    /// One worker per allowed PU (hardware thread).
    PerPu,
}

/// Options for [`PlacementPlan::new`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanOptions {
    /// Workers per core or per PU.
    pub granularity: WorkerGranularity,
    /// At most this many workers per node (`None`: no limit).
    pub max_workers_per_node: Option<usize>,
}

/// One worker's place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerSlot {
    /// Index of the worker in the whole plan (0-based, node-major).
    pub index: usize,
    /// Index of the worker within its node.
    pub local_index: usize,
    /// The NUMA node whose CPU it runs on.
    pub node: u32,
    /// The CPU set it is pinned to (one PU).
    pub cpus: CpuSet,
    /// The PU it is pinned to (the only member of `cpus`).
    pub cpu: u32,
    /// The node its memory comes from (its node, unless that node's memory is not allowed).
    pub memory_node: u32,
}

/// The workers and memory of one NUMA node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodePlan {
    /// The node's OS index.
    pub node: u32,
    /// The node's allowed CPUs.
    pub cpus: CpuSet,
    /// Where this node's workers allocate: the node itself, or the nearest allowed node when its
    /// own memory is not allowed.
    pub memory_node: u32,
    /// The node's workers.
    pub workers: Vec<WorkerSlot>,
    /// Memory-only nodes this node may overflow to, nearest first.
    pub overflow_nodes: Vec<u32>,
}

/// A way in which the plan is weaker than the machine. Reported, never hidden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Degradation {
    /// Only one node has allowed CPUs: there is nothing to shard.
    SingleNode {
        /// That node.
        node: u32,
    },
    /// A node has memory this process may use but none of its CPUs are allowed: it gets no
    /// workers (and serves as overflow memory).
    NodeWithoutAllowedCpus {
        /// The node.
        node: u32,
    },
    /// Online CPUs that the affinity mask or cpuset hides from this process.
    CpusHidden {
        /// The hidden CPUs.
        cpus: CpuSet,
    },
    /// A node with allowed CPUs whose memory may not be used (cpuset.mems): its workers allocate
    /// on `using` instead.
    MemoryNotAllowed {
        /// The node.
        node: u32,
        /// The node used instead.
        using: u32,
    },
    /// The kernel reported no node distances: overflow nodes and remote choices are ordered by
    /// OS index instead.
    NoDistances,
}

impl std::fmt::Display for Degradation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SingleNode { node } => {
                write!(
                    f,
                    "one NUMA node only (node {node}): nothing to shard across nodes"
                )
            }
            Self::NodeWithoutAllowedCpus { node } => write!(
                f,
                "node {node} has no CPU this process may use: it gets no workers and serves as \
                 overflow memory"
            ),
            Self::CpusHidden { cpus } => write!(
                f,
                "online CPUs {cpus} are hidden from this process by its affinity mask or cpuset"
            ),
            Self::MemoryNotAllowed { node, using } => write!(
                f,
                "node {node}'s memory may not be used (cpuset.mems): its workers allocate on node \
                 {using}"
            ),
            Self::NoDistances => write!(
                f,
                "the kernel reported no node distances: nodes are ordered by number instead"
            ),
        }
    }
}

/// Which CPU every worker uses and where its memory lives. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlacementPlan {
    /// One entry per NUMA node with allowed CPUs, by node OS index.
    pub nodes: Vec<NodePlan>,
    /// Memory-only nodes this process may allocate on.
    pub memory_only_nodes: Vec<u32>,
    /// Everything that makes the plan weaker than the machine.
    pub degradations: Vec<Degradation>,
}

impl PlacementPlan {
    /// Computes the plan for `topology`.
    ///
    /// # Errors
    /// [`TopologyError::NoAllowedCpu`] if no node has an allowed CPU.
    pub fn new(topology: &Topology, options: &PlanOptions) -> Result<Self, TopologyError> {
        let mut degradations = Vec::new();
        let hidden: CpuSet = topology
            .pus
            .iter()
            .filter(|p| p.online && !p.allowed)
            .map(|p| p.os_index)
            .collect();
        if !hidden.is_empty() {
            degradations.push(Degradation::CpusHidden { cpus: hidden });
        }
        let has_distances = topology
            .numa_nodes
            .iter()
            .all(|n| n.distances.len() == topology.numa_nodes.len());
        if !has_distances && topology.numa_nodes.len() > 1 {
            degradations.push(Degradation::NoDistances);
        }
        let distance = |a: u32, b: u32| -> u32 {
            topology
                .distance(a, b)
                .unwrap_or(if a == b { 10 } else { 20 + b })
        };
        let memory_nodes: Vec<u32> = topology
            .numa_nodes
            .iter()
            .filter(|n| n.memory_allowed && topology.allowed_mems.contains(n.os_index))
            .map(|n| n.os_index)
            .collect();
        let memory_only_nodes: Vec<u32> = topology
            .numa_nodes
            .iter()
            .filter(|n| n.is_memory_only() && memory_nodes.contains(&n.os_index))
            .map(|n| n.os_index)
            .collect();

        let mut nodes = Vec::new();
        let mut index = 0;
        for node in &topology.numa_nodes {
            if node.cpus.is_empty() {
                if !node.is_memory_only() && memory_nodes.contains(&node.os_index) {
                    degradations.push(Degradation::NodeWithoutAllowedCpus { node: node.os_index });
                }
                continue;
            }
            let memory_node = if memory_nodes.contains(&node.os_index) {
                node.os_index
            } else {
                let Some(&nearest) = memory_nodes
                    .iter()
                    .min_by_key(|&&m| (distance(node.os_index, m), m))
                else {
                    continue;
                };
                degradations.push(Degradation::MemoryNotAllowed {
                    node: node.os_index,
                    using: nearest,
                });
                nearest
            };
            let worker_cpus: Vec<u32> = match options.granularity {
                WorkerGranularity::PerPu => node.cpus.iter().collect(),
                WorkerGranularity::PerCore => {
                    let mut firsts: Vec<u32> = topology
                        .cores
                        .iter()
                        .filter_map(|c| c.cpus.intersection(&node.cpus).first())
                        .collect();
                    // PUs that no core lists (a partial snapshot) still get a worker each.
                    let covered: CpuSet = topology.cores.iter().flat_map(|c| c.cpus.iter()).collect();
                    firsts.extend(node.cpus.difference(&covered).iter());
                    firsts.sort_unstable();
                    firsts
                }
            };
            let limit = options.max_workers_per_node.unwrap_or(usize::MAX).max(1);
            let workers = worker_cpus
                .into_iter()
                .take(limit)
                .enumerate()
                .map(|(local_index, cpu)| {
                    let slot = WorkerSlot {
                        index,
                        local_index,
                        node: node.os_index,
                        cpus: CpuSet::single(cpu),
                        cpu,
                        memory_node,
                    };
                    index += 1;
                    slot
                })
                .collect();
            let mut overflow_nodes = memory_only_nodes.clone();
            overflow_nodes.sort_by_key(|&m| (distance(node.os_index, m), m));
            nodes.push(NodePlan {
                node: node.os_index,
                cpus: node.cpus.clone(),
                memory_node,
                workers,
                overflow_nodes,
            });
        }
        if nodes.is_empty() {
            return Err(TopologyError::NoAllowedCpu);
        }
        if nodes.len() == 1 {
            degradations.insert(0, Degradation::SingleNode { node: nodes[0].node });
        }
        Ok(Self {
            nodes,
            memory_only_nodes,
            degradations,
        })
    }

    /// Every worker slot, node-major.
    pub fn workers(&self) -> impl Iterator<Item = &WorkerSlot> {
        self.nodes.iter().flat_map(|n| n.workers.iter())
    }

    /// Total number of workers.
    pub fn worker_count(&self) -> usize {
        self.nodes.iter().map(|n| n.workers.len()).sum()
    }

    /// The plan of one node.
    pub fn node(&self, node: u32) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.node == node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::model::{Core, NumaNode, Pu, Source};

    /// Two nodes of two 2-thread cores each (CPUs 0-3 on node 0, 4-7 on node 1), plus a
    /// memory-only node 2; distances 10/21 between CPU nodes, 40 to node 2.
    fn machine(allowed: &str, mems: &str) -> Topology {
        let allowed = CpuSet::parse_list(allowed).unwrap();
        let mems = CpuSet::parse_list(mems).unwrap();
        let pus = (0..8)
            .map(|c| Pu {
                os_index: c,
                online: true,
                allowed: allowed.contains(c),
                package: Some(c / 4),
                core_id: Some((c % 4) / 2),
                node: Some(c / 4),
                core_kind: None,
            })
            .collect();
        let cores = (0..4)
            .map(|k| Core {
                core_id: Some(k % 2),
                package: Some(k / 2),
                cpus: CpuSet::parse_list(&format!("{}-{}", 2 * k, 2 * k + 1))
                    .unwrap()
                    .intersection(&allowed),
                kind: None,
            })
            .filter(|c| !c.cpus.is_empty())
            .collect();
        let dist = [[10, 21, 40], [21, 10, 40], [40, 40, 10]];
        let numa_nodes = (0..3u32)
            .map(|n| {
                let all = if n < 2 {
                    CpuSet::parse_list(&format!("{}-{}", 4 * n, 4 * n + 3)).unwrap()
                } else {
                    CpuSet::new()
                };
                NumaNode {
                    os_index: n,
                    cpus: all.intersection(&allowed),
                    all_pus: all,
                    memory_bytes: 1 << 30,
                    distances: dist[n as usize].to_vec(),
                    memory_allowed: mems.contains(n),
                    initiator_pus: CpuSet::new(),
                }
            })
            .collect();
        Topology {
            pus,
            packages: Vec::new(),
            dies: Vec::new(),
            clusters: Vec::new(),
            cores,
            numa_nodes,
            caches: Vec::new(),
            allowed_cpus: allowed,
            allowed_mems: mems,
            fallbacks: Vec::new(),
            source: Source::Snapshot {
                root: "synthetic".into(),
            },
        }
    }

    #[test]
    fn one_worker_per_core_on_its_first_pu() {
        let plan = PlacementPlan::new(&machine("0-7", "0-2"), &PlanOptions::default()).unwrap();
        let cpus: Vec<u32> = plan.workers().map(|w| w.cpu).collect();
        assert_eq!(cpus, vec![0, 2, 4, 6]);
        assert_eq!(plan.worker_count(), 4);
        assert!(
            plan.workers()
                .enumerate()
                .all(|(i, w)| w.index == i && w.memory_node == w.node)
        );
        assert_eq!(plan.memory_only_nodes, vec![2]);
        assert_eq!(plan.node(0).unwrap().overflow_nodes, vec![2]);
        assert!(plan.degradations.is_empty(), "{:?}", plan.degradations);
    }

    #[test]
    fn per_pu_and_worker_limit() {
        let topo = machine("0-7", "0-2");
        let per_pu = PlanOptions {
            granularity: WorkerGranularity::PerPu,
            max_workers_per_node: None,
        };
        assert_eq!(PlacementPlan::new(&topo, &per_pu).unwrap().worker_count(), 8);
        let limited = PlanOptions {
            granularity: WorkerGranularity::PerPu,
            max_workers_per_node: Some(3),
        };
        let plan = PlacementPlan::new(&topo, &limited).unwrap();
        assert_eq!(
            plan.node(1)
                .unwrap()
                .workers
                .iter()
                .map(|w| w.cpu)
                .collect::<Vec<_>>(),
            vec![4, 5, 6]
        );
        assert_eq!(plan.node(1).unwrap().workers[2].local_index, 2);
    }

    #[test]
    fn hidden_cpus_and_a_node_without_allowed_cpus_are_reported() {
        let plan = PlacementPlan::new(&machine("1-3", "0-2"), &PlanOptions::default()).unwrap();
        // Core 0-1 keeps PU 1; core 2-3 keeps PU 2.
        assert_eq!(plan.workers().map(|w| w.cpu).collect::<Vec<_>>(), vec![1, 2]);
        assert!(plan.degradations.contains(&Degradation::SingleNode { node: 0 }));
        assert!(
            plan.degradations
                .contains(&Degradation::NodeWithoutAllowedCpus { node: 1 })
        );
        assert!(plan.degradations.contains(&Degradation::CpusHidden {
            cpus: CpuSet::parse_list("0,4-7").unwrap()
        }));
    }

    #[test]
    fn a_node_whose_memory_is_not_allowed_uses_the_nearest_allowed_one() {
        let plan = PlacementPlan::new(&machine("0-7", "0,2"), &PlanOptions::default()).unwrap();
        assert_eq!(plan.node(1).unwrap().memory_node, 0);
        assert!(plan.workers().filter(|w| w.node == 1).all(|w| w.memory_node == 0));
        assert!(
            plan.degradations
                .contains(&Degradation::MemoryNotAllowed { node: 1, using: 0 })
        );
    }

    #[test]
    fn no_allowed_cpu_is_an_error() {
        let mut topo = machine("0-7", "0-2");
        for n in &mut topo.numa_nodes {
            n.cpus = CpuSet::new();
        }
        assert!(matches!(
            PlacementPlan::new(&topo, &PlanOptions::default()),
            Err(TopologyError::NoAllowedCpu)
        ));
    }
}

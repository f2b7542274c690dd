//! The discovered machine: plain data, independent of how it was discovered.
//!
//! Every `cpus` set of a [`Package`], [`Core`], [`NumaNode`] or [`Cache`] holds only PUs that are
//! online **and** allowed to this process (the way hwloc restricts its topology by default);
//! [`Topology::pus`] lists every PU the kernel knows, with its `online`/`allowed` flags, so
//! callers can still see what was hidden and why.

use serde::Serialize;

use super::cpuset::{CpuSet, NodeSet};

/// One logical processor (hwloc's "PU"; a hardware thread).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pu {
    /// The kernel's CPU number (`cpuN`).
    pub os_index: u32,
    /// Whether the CPU is online (`/sys/devices/system/cpu/online`).
    pub online: bool,
    /// Whether this process may run on it (affinity mask and cpuset both allow it).
    pub allowed: bool,
    /// OS index of the package (`physical_package_id`), if known.
    pub package: Option<u32>,
    /// The kernel's core id within its package (`core_id`), if known; not unique machine-wide.
    pub core_id: Option<u32>,
    /// NUMA node OS index, if known.
    pub node: Option<u32>,
    /// Hybrid core kind (e.g. `intel_core` / `intel_atom`), where sysfs shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core_kind: Option<String>,
}

/// A physical package (socket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    /// The package id the kernel reports.
    pub os_index: u32,
    /// Allowed, online PUs of the package.
    #[serde(rename = "pus")]
    pub cpus: CpuSet,
}

/// A grouping between package and core that the kernel reports: a die, or a cluster (CPUs that
/// share an L2 or a cluster-level resource).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The id the kernel reports (`die_id`, `cluster_id`).
    pub os_index: u32,
    /// OS index of the package it belongs to, if known.
    pub package: Option<u32>,
    /// Allowed, online PUs in it.
    #[serde(rename = "pus")]
    pub cpus: CpuSet,
}

/// A physical core: the PUs (hardware threads) that share its execution resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Core {
    /// The kernel's `core_id` (unique only within a package), if known.
    pub core_id: Option<u32>,
    /// OS index of its package, if known.
    pub package: Option<u32>,
    /// Allowed, online PUs of the core.
    #[serde(rename = "pus")]
    pub cpus: CpuSet,
    /// Hybrid core kind where sysfs shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A NUMA node: memory with the PUs closest to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NumaNode {
    /// The kernel's node number (`nodeN`).
    pub os_index: u32,
    /// Allowed, online PUs local to the node (empty for a memory-only node, or one whose CPUs are
    /// all disallowed).
    #[serde(rename = "pus")]
    pub cpus: CpuSet,
    /// All PUs the kernel lists for the node, allowed or not.
    pub all_pus: CpuSet,
    /// Total memory of the node in bytes (`MemTotal` of its `meminfo`), 0 when unknown.
    pub memory_bytes: u64,
    /// Distances to every node in [`Topology::numa_nodes`] order (`10` = local), from
    /// the node's `distance` file; empty when unknown.
    pub distances: Vec<u32>,
    /// Whether this process may allocate memory on it (`cpuset.mems`).
    pub memory_allowed: bool,
    /// For a memory-only node, the allowed PUs of its initiators (the nodes its
    /// `access1/initiators` names: the CPUs that reach it best), where hwloc attaches it;
    /// empty for a node with CPUs, or when the kernel names no initiator.
    pub initiator_pus: CpuSet,
}

impl NumaNode {
    /// A node that has memory but no CPU at all (e.g. CXL or HBM expansion memory).
    pub fn is_memory_only(&self) -> bool {
        self.all_pus.is_empty()
    }
}

/// What a cache holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheKind {
    /// Data only.
    Data,
    /// Instructions only.
    Instruction,
    /// Data and instructions.
    Unified,
}

/// A CPU cache and the PUs that share it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cache {
    /// Level (1 for L1…).
    pub level: u8,
    /// What it holds.
    pub kind: CacheKind,
    /// Capacity in bytes.
    pub size_bytes: u64,
    /// Line size in bytes, 0 when unknown.
    pub line_size: u32,
    /// Associativity, 0 when unknown (or fully associative, which the kernel also writes as 0).
    pub ways: u32,
    /// Allowed, online PUs sharing it.
    #[serde(rename = "pus")]
    pub cpus: CpuSet,
}

/// A place where discovery could not read what it prefers and did what hwloc would do instead,
/// or found something odd. Recorded, never hidden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fallback {
    /// What was missing or odd (a path or a short description).
    pub what: String,
    /// What was done instead.
    pub action: String,
}

/// Where a topology came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// The running system's sysfs/procfs.
    Live,
    /// A snapshot under a root directory.
    Snapshot {
        /// The root that holds `sys/` and `proc/`.
        root: String,
    },
    /// hwloc, through the `hwlocality` crate.
    Hwloc,
    /// A platform without Linux's interfaces: one node holding every CPU the standard library
    /// reports.
    SingleNodeFallback,
}

/// The machine as this process may use it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Topology {
    /// Every PU the kernel knows (present CPUs), online or not, allowed or not, by OS index.
    pub pus: Vec<Pu>,
    /// Packages with at least one allowed PU, by OS index.
    pub packages: Vec<Package>,
    /// Dies, where the kernel reports more than one per package.
    pub dies: Vec<Group>,
    /// Clusters, where the kernel reports them and they differ from cores and packages.
    pub clusters: Vec<Group>,
    /// Cores with at least one allowed PU, ordered by their first PU.
    pub cores: Vec<Core>,
    /// NUMA nodes, by OS index: every node with memory this process may use, or allowed CPUs.
    pub numa_nodes: Vec<NumaNode>,
    /// Caches with at least one allowed PU, ordered by level, then first PU.
    pub caches: Vec<Cache>,
    /// PUs this process may run on (online ∩ affinity ∩ cpuset).
    pub allowed_cpus: CpuSet,
    /// NUMA nodes this process may allocate on (cpuset.mems).
    pub allowed_mems: NodeSet,
    /// Every fallback taken during discovery.
    pub fallbacks: Vec<Fallback>,
    /// Where it came from.
    pub source: Source,
}

impl Topology {
    /// The node with this OS index.
    pub fn node(&self, os_index: u32) -> Option<&NumaNode> {
        self.numa_nodes.iter().find(|n| n.os_index == os_index)
    }

    /// The distance from node `from` to node `to`, if the kernel reported it.
    pub fn distance(&self, from: u32, to: u32) -> Option<u32> {
        let to_pos = self.numa_nodes.iter().position(|n| n.os_index == to)?;
        self.node(from)?.distances.get(to_pos).copied()
    }

    /// The node a PU belongs to.
    pub fn node_of_cpu(&self, cpu: u32) -> Option<u32> {
        self.pus.iter().find(|p| p.os_index == cpu).and_then(|p| p.node)
    }

    /// The largest cache line size reported, or 64 when none is.
    pub fn cache_line_size(&self) -> u32 {
        self.caches
            .iter()
            .map(|c| c.line_size)
            .max()
            .filter(|&l| l > 0)
            .unwrap_or(64)
    }

    /// The size of the largest last-level data/unified cache, or `None` when no cache was
    /// reported.
    pub fn llc_size_bytes(&self) -> Option<u64> {
        let max_level = self
            .caches
            .iter()
            .filter(|c| c.kind != CacheKind::Instruction)
            .map(|c| c.level)
            .max()?;
        self.caches
            .iter()
            .filter(|c| c.level == max_level && c.kind != CacheKind::Instruction)
            .map(|c| c.size_bytes)
            .max()
    }
}

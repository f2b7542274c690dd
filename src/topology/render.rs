//! Human-readable renderings of a topology and a placement plan, for `locus topology`.

use std::fmt::Write;

use super::model::{CacheKind, Topology};
use super::plan::{Degradation, PlacementPlan};

fn human_bytes(b: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)];
    for (unit, size) in UNITS {
        if b >= size && b.is_multiple_of((size / 1024).max(1)) || b >= size * 10 {
            return format!("{}{unit}", b / size);
        }
    }
    format!("{b}B")
}

/// The machine as an indented tree: packages, NUMA nodes, caches, cores, PUs.
pub fn tree(t: &Topology) -> String {
    let mut out = String::new();
    let total_mem: u64 = t.numa_nodes.iter().map(|n| n.memory_bytes).sum();
    let _ = writeln!(
        out,
        "Machine ({} total, {} PUs allowed of {}, {} NUMA node(s), source: {:?})",
        human_bytes(total_mem),
        t.allowed_cpus.len(),
        t.pus.len(),
        t.numa_nodes.len(),
        t.source
    );
    for pkg in &t.packages {
        let _ = writeln!(out, "  Package L#{} (P#{}) PUs {}", 0, pkg.os_index, pkg.cpus);
        for node in t.numa_nodes.iter().filter(|n| n.cpus.intersects(&pkg.cpus)) {
            let _ = writeln!(
                out,
                "    NUMANode P#{} ({}) PUs {}",
                node.os_index,
                human_bytes(node.memory_bytes),
                node.cpus
            );
        }
        for cache in t
            .caches
            .iter()
            .filter(|c| c.cpus.is_subset(&pkg.cpus) && c.kind != CacheKind::Instruction)
        {
            let _ = writeln!(
                out,
                "    L{}{} ({}) PUs {}",
                cache.level,
                if cache.kind == CacheKind::Data { "d" } else { "" },
                human_bytes(cache.size_bytes),
                cache.cpus
            );
        }
        for core in t.cores.iter().filter(|c| c.cpus.is_subset(&pkg.cpus)) {
            let _ = writeln!(out, "    Core PUs {}", core.cpus);
        }
    }
    for node in t.numa_nodes.iter().filter(|n| n.cpus.is_empty()) {
        let _ = writeln!(
            out,
            "  NUMANode P#{} ({}) no allowed CPU",
            node.os_index,
            human_bytes(node.memory_bytes)
        );
    }
    if t.numa_nodes.len() > 1 {
        let _ = writeln!(out, "Distances:");
        for n in &t.numa_nodes {
            let _ = writeln!(out, "  node {:>3}: {:?}", n.os_index, n.distances);
        }
    }
    for f in &t.fallbacks {
        let _ = writeln!(out, "Fallback: {} -> {}", f.what, f.action);
    }
    out
}

/// The placement plan: each node's workers and memory node, then every degradation.
pub fn plan(p: &PlacementPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Placement plan: {} worker(s) on {} node(s)",
        p.worker_count(),
        p.nodes.len()
    );
    for n in &p.nodes {
        let cpus: Vec<String> = n.workers.iter().map(|w| w.cpu.to_string()).collect();
        let _ = writeln!(
            out,
            "  node {}: {} worker(s) on CPUs [{}], memory on node {}, overflow {:?}",
            n.node,
            n.workers.len(),
            cpus.join(","),
            n.memory_node,
            n.overflow_nodes
        );
    }
    for d in &p.degradations {
        let text = match d {
            Degradation::SingleNode { node } => format!("single node ({node}): nothing to shard"),
            Degradation::NodeWithoutAllowedCpus { node } => {
                format!("node {node} has memory but no allowed CPU: no workers there")
            }
            Degradation::CpusHidden { cpus } => {
                format!("CPUs {cpus} are online but not allowed to this process")
            }
            Degradation::MemoryNotAllowed { node, using } => {
                format!("node {node}'s memory is not allowed: its workers allocate on node {using}")
            }
            Degradation::NoDistances => "no node distances reported: ordering by OS index".to_string(),
        };
        let _ = writeln!(out, "  degraded: {text}");
    }
    out
}

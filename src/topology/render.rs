//! Human-readable renderings of a topology and a placement plan, for `locus topology`.

use std::fmt::Write;

use super::cpuset::CpuSet;
use super::model::{CacheKind, Source, Topology};
use super::plan::PlacementPlan;

/// A size the way `lstopo` prints it: truncated to KB below 10 MB, to MB below 10 GB, else GB.
fn human_bytes(b: u64) -> String {
    const KB: u64 = 1 << 10;
    const MB: u64 = 1 << 20;
    const GB: u64 = 1 << 30;
    if b >= 10 * GB {
        format!("{}GB", b / GB)
    } else if b >= 10 * MB {
        format!("{}MB", b / MB)
    } else if b >= KB {
        format!("{}KB", b / KB)
    } else {
        format!("{b}B")
    }
}

/// One object of the rendered tree.
struct Node {
    /// Type name (`Package`, `L2`, `Core`…), which also numbers the `L#` logical indexes.
    kind: String,
    /// Text after the logical index.
    attrs: String,
    cpus: CpuSet,
    /// Nesting order among objects with the same CPUs: lower is outer.
    rank: u32,
    children: Vec<usize>,
    /// NUMA nodes attached here (memory children, printed first).
    memory: Vec<usize>,
}

/// Descends from `at` to the deepest object holding all of `cpus`. With `for_memory` it finds
/// where hwloc attaches a NUMA node instead: the first object whose CPUs equal `cpus`, or a
/// non-cache child with the same CPUs (a package that is the whole machine).
fn deepest_container(nodes: &[Node], mut at: usize, cpus: &CpuSet, for_memory: bool) -> usize {
    let is_cache =
        |n: &Node| n.kind.starts_with('L') && n.kind[1..].starts_with(|c: char| c.is_ascii_digit());
    loop {
        let next = nodes[at]
            .children
            .iter()
            .copied()
            .find(|&c| cpus.is_subset(&nodes[c].cpus));
        match next {
            Some(c) if !(for_memory && nodes[at].cpus == *cpus && is_cache(&nodes[c])) => at = c,
            _ => return at,
        }
    }
}

fn build(t: &Topology) -> Vec<Node> {
    let node = |kind: &str, attrs: String, cpus: &CpuSet, rank: u32| Node {
        kind: kind.to_string(),
        attrs,
        cpus: cpus.clone(),
        rank,
        children: Vec::new(),
        memory: Vec::new(),
    };
    let mut objects = Vec::new();
    for p in &t.packages {
        objects.push(node("Package", format!("P#{}", p.os_index), &p.cpus, 0));
    }
    for d in &t.dies {
        objects.push(node("Die", format!("P#{}", d.os_index), &d.cpus, 1));
    }
    for g in &t.clusters {
        objects.push(node("Group(Cluster)", format!("P#{}", g.os_index), &g.cpus, 21));
    }
    for c in t.caches.iter().filter(|c| c.kind != CacheKind::Instruction) {
        let name = format!("L{}{}", c.level, if c.kind == CacheKind::Data { "d" } else { "" });
        // Outer levels first: L3 (rank 20) holds L2 (22) holds L1 (24) when their CPUs match.
        let rank = 10 + 2 * u32::from(8u8.saturating_sub(c.level).min(7));
        objects.push(node(&name, human_bytes(c.size_bytes), &c.cpus, rank));
    }
    for c in &t.cores {
        let mut attrs = c.core_id.map(|id| format!("P#{id}")).unwrap_or_default();
        if let Some(kind) = &c.kind {
            attrs = format!("{attrs} {kind}").trim().to_string();
        }
        objects.push(node("Core", attrs, &c.cpus, 30));
    }
    for cpu in t.allowed_cpus.iter() {
        objects.push(node("PU", format!("P#{cpu}"), &CpuSet::single(cpu), 40));
    }
    objects.sort_by(|a, b| {
        (std::cmp::Reverse(a.cpus.len()), a.rank, a.cpus.first()).cmp(&(
            std::cmp::Reverse(b.cpus.len()),
            b.rank,
            b.cpus.first(),
        ))
    });
    let total_mem: u64 = t.numa_nodes.iter().map(|n| n.memory_bytes).sum();
    let mut nodes = vec![node(
        "Machine",
        format!(
            "{} total, {} of {} PUs allowed",
            human_bytes(total_mem),
            t.allowed_cpus.len(),
            t.pus.len()
        ),
        &t.allowed_cpus,
        0,
    )];
    for obj in objects {
        let parent = deepest_container(&nodes, 0, &obj.cpus, false);
        nodes.push(obj);
        let id = nodes.len() - 1;
        nodes[parent].children.push(id);
    }
    for n in &t.numa_nodes {
        let mut attrs = format!("P#{} {}", n.os_index, human_bytes(n.memory_bytes));
        if !n.memory_allowed {
            attrs.push_str(", memory not allowed");
        }
        if n.is_memory_only() {
            attrs.push_str(", no CPU");
        } else if n.cpus.is_empty() {
            attrs.push_str(", no allowed CPU");
        }
        let parent = if n.cpus.is_empty() {
            0
        } else {
            deepest_container(&nodes, 0, &n.cpus, true)
        };
        // hwloc would add a Group here; say which PUs are the node's instead.
        if !n.cpus.is_empty() && nodes[parent].cpus != n.cpus {
            attrs.push_str(&format!(", PUs {}", n.cpus));
        }
        nodes.push(node("NUMANode", attrs, &n.cpus, 0));
        let id = nodes.len() - 1;
        nodes[parent].memory.push(id);
    }
    // Siblings in PU order, as lstopo prints them.
    let firsts: Vec<Option<u32>> = nodes.iter().map(|n| n.cpus.first()).collect();
    for n in &mut nodes {
        n.children.sort_by_key(|&c| firsts[c]);
    }
    nodes
}

fn write_node(
    out: &mut String,
    nodes: &[Node],
    at: usize,
    depth: usize,
    counters: &mut Vec<(String, usize)>,
) {
    let n = &nodes[at];
    let logical = match counters.iter_mut().find(|(k, _)| *k == n.kind) {
        Some((_, c)) => {
            *c += 1;
            *c - 1
        }
        None => {
            counters.push((n.kind.clone(), 1));
            0
        }
    };
    let indent = "  ".repeat(depth);
    if at == 0 {
        let _ = writeln!(out, "{indent}{} ({})", n.kind, n.attrs);
    } else if n.attrs.is_empty() {
        let _ = writeln!(out, "{indent}{} L#{logical}", n.kind);
    } else {
        let _ = writeln!(out, "{indent}{} L#{logical} ({})", n.kind, n.attrs);
    }
    for &m in &n.memory {
        write_node(out, nodes, m, depth + 1, counters);
    }
    for &c in &n.children {
        write_node(out, nodes, c, depth + 1, counters);
    }
}

/// The machine as an indented tree in the manner of `lstopo-no-graphics`: Machine > Package >
/// (Die, cluster Group) > NUMANode and caches (L3 > L2 > L1d; instruction caches left out) > Core >
/// PU, each nested where its allowed PUs fall, with the NUMA distance matrix and every fallback
/// taken during discovery after it.
pub fn tree(t: &Topology) -> String {
    let nodes = build(t);
    let mut out = String::new();
    write_node(&mut out, &nodes, 0, 0, &mut Vec::new());
    if t.numa_nodes.len() > 1
        && t.numa_nodes
            .iter()
            .all(|n| n.distances.len() == t.numa_nodes.len())
    {
        let _ = write!(out, "NUMA distances (by OS index):\n  node");
        for n in &t.numa_nodes {
            let _ = write!(out, " {:>4}", n.os_index);
        }
        let _ = writeln!(out);
        for n in &t.numa_nodes {
            let _ = write!(out, "  {:>4}", n.os_index);
            for d in &n.distances {
                let _ = write!(out, " {d:>4}");
            }
            let _ = writeln!(out);
        }
    }
    let _ = writeln!(
        out,
        "Source: {}",
        match &t.source {
            Source::Live => "this machine".to_string(),
            Source::Snapshot { root } => format!("snapshot at {root}"),
            Source::Hwloc => "hwloc".to_string(),
            Source::SingleNodeFallback => "single-node fallback (no Linux sysfs)".to_string(),
        }
    );
    for f in &t.fallbacks {
        let _ = writeln!(out, "Fallback: {}: {}", f.what, f.action);
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
        let cpus: CpuSet = n.workers.iter().map(|w| w.cpu).collect();
        let _ = writeln!(
            out,
            "  node {}: {} worker(s) on CPUs [{}], memory on node {}, overflow {:?}",
            n.node,
            n.workers.len(),
            cpus,
            n.memory_node,
            n.overflow_nodes
        );
    }
    for d in &p.degradations {
        let _ = writeln!(out, "  degraded: {d}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::model::{Cache, Core, NumaNode, Package, Pu};

    fn set(s: &str) -> CpuSet {
        CpuSet::parse_list(s).unwrap()
    }

    #[test]
    fn tree_nests_like_lstopo() {
        let pus = (0..4)
            .map(|i| Pu {
                os_index: i,
                online: true,
                allowed: true,
                package: Some(0),
                core_id: Some(i / 2),
                node: Some(0),
                core_kind: None,
            })
            .collect();
        let cache = |level, kind, size_bytes, cpus: &str| Cache {
            level,
            kind,
            size_bytes,
            line_size: 64,
            ways: 8,
            cpus: set(cpus),
        };
        let t = Topology {
            pus,
            packages: vec![Package {
                os_index: 0,
                cpus: set("0-3"),
            }],
            dies: vec![],
            clusters: vec![],
            cores: vec![
                Core {
                    core_id: Some(0),
                    package: Some(0),
                    cpus: set("0-1"),
                    kind: None,
                },
                Core {
                    core_id: Some(1),
                    package: Some(0),
                    cpus: set("2-3"),
                    kind: None,
                },
            ],
            numa_nodes: vec![NumaNode {
                os_index: 0,
                cpus: set("0-3"),
                all_pus: set("0-3"),
                memory_bytes: 16 << 30,
                distances: vec![10],
                memory_allowed: true,
                initiator_pus: CpuSet::new(),
            }],
            caches: vec![
                cache(1, CacheKind::Data, 32 << 10, "0-1"),
                cache(1, CacheKind::Instruction, 32 << 10, "0-1"),
                cache(1, CacheKind::Data, 32 << 10, "2-3"),
                cache(3, CacheKind::Unified, 8 << 20, "0-3"),
            ],
            allowed_cpus: set("0-3"),
            allowed_mems: set("0"),
            fallbacks: vec![],
            source: Source::Live,
        };
        let text = tree(&t);
        let expected = "\
Machine (16GB total, 4 of 4 PUs allowed)
  Package L#0 (P#0)
    NUMANode L#0 (P#0 16GB)
    L3 L#0 (8192KB)
      L1d L#0 (32KB)
        Core L#0 (P#0)
          PU L#0 (P#0)
          PU L#1 (P#1)
      L1d L#1 (32KB)
        Core L#1 (P#1)
          PU L#2 (P#2)
          PU L#3 (P#3)
Source: this machine
";
        assert_eq!(text, expected);
    }

    #[test]
    fn sizes_print_like_lstopo() {
        assert_eq!(human_bytes(6144 << 10), "6144KB");
        assert_eq!(human_bytes(24 << 20), "24MB");
        assert_eq!(human_bytes(8386704 << 10), "8190MB");
        assert_eq!(human_bytes(512), "512B");
    }
}

//! Live discovery on whatever machine runs the tests: it must succeed, stay within the affinity
//! mask, and give partitions (every allowed PU in exactly one package and one core).

use locus::topology::{CpuSet, Source, Topology, pin};

#[test]
fn live_discovery_is_consistent() {
    let t = Topology::discover().expect("live discovery");
    assert_eq!(t.source, Source::Live);
    let affinity = pin::current_thread_affinity().expect("affinity");
    assert!(!t.allowed_cpus.is_empty());
    assert!(
        t.allowed_cpus.is_subset(&affinity),
        "{} not within {affinity}",
        t.allowed_cpus
    );
    for (what, sets) in [
        (
            "packages",
            t.packages.iter().map(|p| p.cpus.clone()).collect::<Vec<_>>(),
        ),
        ("cores", t.cores.iter().map(|c| c.cpus.clone()).collect()),
    ] {
        let mut seen = CpuSet::new();
        for s in &sets {
            assert!(!s.intersects(&seen), "{what} overlap at {s}");
            seen = seen.union(s);
        }
        assert_eq!(seen, t.allowed_cpus, "{what} do not cover the allowed PUs");
    }
    let in_nodes: CpuSet = t.numa_nodes.iter().flat_map(|n| n.cpus.iter()).collect();
    assert_eq!(in_nodes, t.allowed_cpus);
    for n in &t.numa_nodes {
        assert!(n.distances.is_empty() || n.distances.len() == t.numa_nodes.len());
    }
    println!(
        "live: {} PUs, {} cores, {} nodes, {} caches, fallbacks {:?}",
        t.allowed_cpus.len(),
        t.cores.len(),
        t.numa_nodes.len(),
        t.caches.len(),
        t.fallbacks
    );
}

//! Local vs remote memory: pointer-chase latency and streaming-read bandwidth from a worker on
//! each node to an arena on each node.
//!
//! First prints the node×node matrix ([`locus::diag::access::measure_matrix`], the same as
//! `locus memory`), then times each (CPU node, memory node) pair under criterion with the bench
//! thread pinned to the CPU node. On a one-node machine this is a 1×1 matrix; under QEMU TCG
//! the numbers mean nothing (remote memory is not slower there). Sizes: `LOCUS_CHASE_MIB`
//! (default 64) and `LOCUS_STREAM_MIB` (default 64) — use several times the LLC on real hardware.
//!
//! Run: `cargo bench --bench memory_access -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use locus::alloc::{NodeArena, allowed_memory_nodes};
use locus::diag::access::{AccessOptions, ChaseRing, measure_matrix, stream_sum};
use locus::topology::pin::current_thread_affinity;
use locus::topology::{PlacementPlan, PlanOptions, Topology, pin_current_thread};

fn mib(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        << 20
}

const CHASE_STEPS: usize = 100_000;

fn bench(c: &mut Criterion) {
    let topo = Topology::discover().expect("topology");
    let plan = PlacementPlan::new(&topo, &PlanOptions::default()).expect("plan");
    let mems: Vec<u32> = allowed_memory_nodes()
        .map(|s| s.to_vec())
        .unwrap_or_else(|_| topo.allowed_mems.to_vec());
    let options = AccessOptions {
        chase_bytes: mib("LOCUS_CHASE_MIB", 64),
        chase_steps: 2_000_000,
        stream_bytes: mib("LOCUS_STREAM_MIB", 64),
        stream_passes: 4,
    };
    match measure_matrix(&plan, &mems, options) {
        Ok(m) => println!("{m}"),
        Err(e) => println!("matrix unavailable: {e}"),
    }

    let original = current_thread_affinity().expect("affinity");
    let arenas: Vec<(u32, NodeArena)> = mems
        .iter()
        .map(|&n| {
            let bytes = options.chase_bytes + options.stream_bytes + (1 << 20);
            (n, NodeArena::on_node(n, bytes).expect("arena"))
        })
        .collect();
    let buffers: Vec<_> = arenas
        .iter()
        .map(|(n, a)| {
            let ring = ChaseRing::new_in(a, options.chase_bytes, 42).expect("ring");
            let stream = &*a
                .alloc_slice_copy(options.stream_bytes / 8, 1u64)
                .expect("stream");
            (*n, ring, stream)
        })
        .collect();
    for node_plan in &plan.nodes {
        let Some(worker) = node_plan.workers.first() else {
            continue;
        };
        if let Err(e) = pin_current_thread(&worker.cpus) {
            println!("cannot pin to node {}: {e}; skipping its row", node_plan.node);
            continue;
        }
        let mut chase = c.benchmark_group(format!("chase_from_node{}", node_plan.node));
        chase.throughput(Throughput::Elements(CHASE_STEPS as u64));
        for (mem, ring, _) in &buffers {
            chase.bench_function(format!("mem{mem}"), |b| {
                b.iter(|| black_box(ring.chase(CHASE_STEPS)))
            });
        }
        chase.finish();
        let mut stream = c.benchmark_group(format!("stream_from_node{}", node_plan.node));
        stream.throughput(Throughput::Bytes(options.stream_bytes as u64));
        for (mem, _, data) in &buffers {
            stream.bench_function(format!("mem{mem}"), |b| {
                b.iter(|| black_box(stream_sum(black_box(data))))
            });
        }
        stream.finish();
    }
    let _ = pin_current_thread(&original);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);

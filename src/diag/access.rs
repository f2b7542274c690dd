//! What placement is worth: memory latency and bandwidth from a worker on each node to an arena
//! on each node, as a node×node matrix.
//!
//! - **Latency** is a pointer chase: a random cyclic permutation of cache lines, each holding the
//!   index of the next, walked one dependent load at a time, so every step pays a full miss once
//!   the ring is larger than the caches. Reported as nanoseconds per load.
//! - **Bandwidth** is a streaming read: summing a `u64` array, so the prefetchers run at full
//!   speed. Reported as GiB/s.
//!
//! Every arena is bound with `MPOL_BIND` before it is filled, so its node is the column's node
//! whichever thread fills it; the placement report of each arena comes with the matrix. Under an
//! emulator (QEMU TCG) memory latency is not modelled and the numbers say nothing about the
//! hardware; on a real multi-socket machine the off-diagonal cells show the remote penalty.

use std::fmt;
use std::time::Instant;

use serde::Serialize;

use crate::alloc::{AllocError, Binding, NodeArena, PageSample, PlacementReport};
use crate::topology::PlacementPlan;

/// One cache line of a pointer-chase ring: the index of the next line, padded to 64 bytes.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub struct ChaseLine {
    next: usize,
    _pad: [u8; 56],
}

const _: () = assert!(size_of::<ChaseLine>() == 64);

/// A random cyclic ring of cache lines in an arena, for latency measurement.
#[derive(Debug)]
pub struct ChaseRing<'a> {
    lines: &'a [ChaseLine],
}

impl<'a> ChaseRing<'a> {
    /// A ring of `bytes / 64` lines (at least 2) in `arena`, linked in a random single cycle
    /// (Sattolo's algorithm) drawn from `seed`.
    ///
    /// # Errors
    /// [`AllocError::ArenaFull`] if the arena has no room.
    pub fn new_in(arena: &'a NodeArena, bytes: usize, seed: u64) -> Result<Self, AllocError> {
        let n = (bytes / size_of::<ChaseLine>()).max(2);
        let lines = arena.alloc_slice_copy(
            n,
            ChaseLine {
                next: 0,
                _pad: [0; 56],
            },
        )?;
        // order[i] is the i-th line visited; Sattolo's shuffle gives one cycle through all.
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = XorShift(seed | 1);
        for i in (1..n).rev() {
            let j = (rng.next() % i as u64) as usize;
            order.swap(i, j);
        }
        for w in 0..n {
            lines[order[w]].next = order[(w + 1) % n];
        }
        Ok(Self { lines })
    }

    /// Lines in the ring.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Always false (a ring has at least 2 lines).
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Walks `steps` links from line 0; returns where it stopped (use it, so the walk is not
    /// optimized away).
    pub fn chase(&self, steps: usize) -> usize {
        let mut at = 0;
        for _ in 0..steps {
            at = std::hint::black_box(self.lines[at].next);
        }
        at
    }
}

/// Sums `data` (a streaming read).
pub fn stream_sum(data: &[u64]) -> u64 {
    // Four accumulators so the adds do not serialize on one register.
    let mut acc = [0u64; 4];
    let chunks = data.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..4 {
            acc[k] = acc[k].wrapping_add(c[k]);
        }
    }
    rest.iter()
        .fold(acc.iter().fold(0, |a, &b| a.wrapping_add(b)), |a, &b| {
            a.wrapping_add(b)
        })
}

/// A small xorshift64 generator: enough to shuffle a ring, no dependency needed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Sizes for [`measure_matrix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AccessOptions {
    /// Bytes of the pointer-chase ring per node (make it several times the LLC on real hardware).
    pub chase_bytes: usize,
    /// Dependent loads per latency measurement.
    pub chase_steps: usize,
    /// Bytes of the streaming buffer per node.
    pub stream_bytes: usize,
    /// Passes over the streaming buffer per measurement.
    pub stream_passes: usize,
}

impl Default for AccessOptions {
    /// Small sizes that finish in seconds even under an emulator: 8 MiB ring, 200 000 loads,
    /// 16 MiB streamed twice. Too small to leave a server's LLC: use larger sizes on real
    /// hardware.
    fn default() -> Self {
        Self {
            chase_bytes: 8 << 20,
            chase_steps: 200_000,
            stream_bytes: 16 << 20,
            stream_passes: 2,
        }
    }
}

/// One cell of the matrix: a worker on `cpu_node` reading memory on `memory_node`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessCell {
    /// The worker's node.
    pub cpu_node: u32,
    /// The CPU the worker ran on (from `getcpu` after pinning), if pinning worked.
    pub cpu: Option<u32>,
    /// The arena's node.
    pub memory_node: u32,
    /// Nanoseconds per dependent load.
    pub latency_ns: f64,
    /// Streaming read bandwidth, GiB/s.
    pub bandwidth_gib_s: f64,
}

/// The arena of one memory node, as measured.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryNodeReport {
    /// The node.
    pub node: u32,
    /// Whether its arena was bound, and how.
    pub binding: Binding,
    /// Where its pages are, or why that could not be found out.
    pub placement: Result<PlacementReport, String>,
}

/// Latency and bandwidth from every CPU node to every memory node.
#[derive(Debug, Clone, Serialize)]
pub struct AccessMatrix {
    /// The sizes used.
    pub options: AccessOptions,
    /// Rows: nodes with workers.
    pub cpu_nodes: Vec<u32>,
    /// Columns: nodes with memory.
    pub memory_nodes: Vec<u32>,
    /// One cell per (row, column), row-major.
    pub cells: Vec<AccessCell>,
    /// The arenas measured.
    pub arenas: Vec<MemoryNodeReport>,
    /// Anything that makes the numbers weaker (unpinned workers, unbound arenas).
    pub notes: Vec<String>,
}

impl AccessMatrix {
    /// The cell for a worker on `cpu_node` reading `memory_node`.
    pub fn cell(&self, cpu_node: u32, memory_node: u32) -> Option<&AccessCell> {
        self.cells
            .iter()
            .find(|c| c.cpu_node == cpu_node && c.memory_node == memory_node)
    }
}

struct NodeBuffers<'a> {
    node: u32,
    ring: ChaseRing<'a>,
    stream: &'a [u64],
}

/// Measures the matrix: one arena per memory node (bound, filled, placement-checked), then for
/// each CPU node one worker pinned to that node's first planned CPU, timing each arena in turn.
///
/// # Errors
/// [`AllocError`] if an arena cannot be created or filled; [`AllocError::InvalidInput`] if
/// `memory_nodes` is empty or a worker thread cannot be spawned.
pub fn measure_matrix(
    plan: &PlacementPlan,
    memory_nodes: &[u32],
    options: AccessOptions,
) -> Result<AccessMatrix, AllocError> {
    if memory_nodes.is_empty() {
        return Err(AllocError::InvalidInput {
            what: "no memory node to measure".into(),
        });
    }
    let mut notes = Vec::new();
    let ring_bytes = options.chase_bytes.max(2 * size_of::<ChaseLine>());
    let stream_words = (options.stream_bytes / 8).max(1);
    let capacity = ring_bytes + stream_words * 8 + 2 * 4096;
    let arenas: Vec<NodeArena> = memory_nodes
        .iter()
        .map(|&n| NodeArena::on_node(n, capacity))
        .collect::<Result<_, _>>()?;
    let mut buffers = Vec::new();
    let mut reports = Vec::new();
    for (i, (arena, &node)) in arenas.iter().zip(memory_nodes).enumerate() {
        if !arena.binding().is_bound() {
            notes.push(format!("arena on node {node}: {}", arena.binding()));
        }
        let ring = ChaseRing::new_in(arena, ring_bytes, 0x9E37_79B9_7F4A_7C15 ^ i as u64)?;
        let stream = &*arena.alloc_slice_copy(stream_words, 1u64)?;
        reports.push(MemoryNodeReport {
            node,
            binding: arena.binding().clone(),
            placement: arena.placement_report(PageSample::All).map_err(|e| e.to_string()),
        });
        buffers.push(NodeBuffers { node, ring, stream });
    }
    let mut cells = Vec::new();
    let mut cpu_nodes = Vec::new();
    for node_plan in &plan.nodes {
        let Some(worker) = node_plan.workers.first() else {
            continue;
        };
        cpu_nodes.push(node_plan.node);
        let row = std::thread::scope(|s| -> Result<Vec<AccessCell>, AllocError> {
            let handle = std::thread::Builder::new()
                .name(format!("locus-memory-{}", node_plan.node))
                .spawn_scoped(s, || {
                    let pinned = crate::topology::pin_and_verify(&worker.cpus);
                    let cpu = pinned.as_ref().ok().map(|l| l.cpu);
                    let row: Vec<AccessCell> = buffers
                        .iter()
                        .map(|b| measure_cell(node_plan.node, cpu, b, &options))
                        .collect();
                    (row, pinned.err().map(|e| e.to_string()))
                })
                .map_err(|e| AllocError::InvalidInput {
                    what: format!("cannot spawn a measuring thread: {e}"),
                })?;
            let (row, pin_error) = handle.join().map_err(|_| AllocError::InvalidInput {
                what: "a measuring thread panicked".into(),
            })?;
            if let Some(e) = pin_error {
                notes.push(format!("worker for node {} not pinned: {e}", node_plan.node));
            }
            Ok(row)
        })?;
        cells.extend(row);
    }
    drop(buffers);
    Ok(AccessMatrix {
        options,
        cpu_nodes,
        memory_nodes: memory_nodes.to_vec(),
        cells,
        arenas: reports,
        notes,
    })
}

fn measure_cell(cpu_node: u32, cpu: Option<u32>, b: &NodeBuffers<'_>, o: &AccessOptions) -> AccessCell {
    // Warm the TLB and caches the same way for every cell: an untimed lap of each walk.
    std::hint::black_box(b.ring.chase(b.ring.len().min(o.chase_steps)));
    let steps = o.chase_steps.max(1);
    let t = Instant::now();
    std::hint::black_box(b.ring.chase(steps));
    let latency_ns = t.elapsed().as_nanos() as f64 / steps as f64;
    let passes = o.stream_passes.max(1);
    std::hint::black_box(stream_sum(std::hint::black_box(b.stream)));
    let t = Instant::now();
    for _ in 0..passes {
        std::hint::black_box(stream_sum(std::hint::black_box(b.stream)));
    }
    let secs = t.elapsed().as_secs_f64().max(1e-9);
    let bytes = (b.stream.len() * 8 * passes) as f64;
    AccessCell {
        cpu_node,
        cpu,
        memory_node: b.node,
        latency_ns,
        bandwidth_gib_s: bytes / secs / (1u64 << 30) as f64,
    }
}

impl fmt::Display for AccessMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = |f: &mut fmt::Formatter<'_>, title: &str| -> fmt::Result {
            write!(f, "{title:<22}")?;
            for m in &self.memory_nodes {
                write!(f, "{:>10}", format!("mem {m}"))?;
            }
            writeln!(f)
        };
        writeln!(
            f,
            "Memory access matrix (ring {} KiB, {} loads; stream {} KiB x {})",
            self.options.chase_bytes / 1024,
            self.options.chase_steps,
            self.options.stream_bytes / 1024,
            self.options.stream_passes
        )?;
        for (title, pick) in [
            (
                "latency, ns/load",
                (|c: &AccessCell| c.latency_ns) as fn(&AccessCell) -> f64,
            ),
            ("bandwidth, GiB/s", |c: &AccessCell| c.bandwidth_gib_s),
        ] {
            header(f, title)?;
            for &row in &self.cpu_nodes {
                let cpu = self
                    .cell(row, self.memory_nodes[0])
                    .and_then(|c| c.cpu)
                    .map_or("unpinned".to_string(), |c| format!("cpu {c}"));
                write!(f, "{:<22}", format!("  node {row} ({cpu})"))?;
                for &col in &self.memory_nodes {
                    match self.cell(row, col) {
                        Some(c) => write!(f, "{:>10.2}", pick(c))?,
                        None => write!(f, "{:>10}", "-")?,
                    }
                }
                writeln!(f)?;
            }
        }
        writeln!(f, "Placement of each arena:")?;
        for a in &self.arenas {
            match &a.placement {
                Ok(r) => writeln!(f, "  node {}: {}", a.node, r)?,
                Err(e) => writeln!(f, "  node {}: {}; placement unknown: {e}", a.node, a.binding)?,
            }
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chase_ring_is_one_cycle_through_every_line() {
        let arena = NodeArena::on_node(crate::alloc::first_allowed_node().unwrap(), 1 << 20).unwrap();
        let ring = ChaseRing::new_in(&arena, 64 * 1000, 7).unwrap();
        assert_eq!(ring.len(), 1000);
        // Following `next` from line 0 comes back to 0 after exactly n steps: one cycle.
        let mut at = 0;
        let mut steps = 0;
        loop {
            at = ring.lines[at].next;
            steps += 1;
            if at == 0 {
                break;
            }
            assert!(steps <= 1000);
        }
        assert_eq!(steps, 1000);
        assert_eq!(ring.chase(1000), 0);
    }

    #[test]
    fn stream_sum_adds_everything() {
        let v: Vec<u64> = (1..=1003).collect();
        assert_eq!(stream_sum(&v), 1003 * 1004 / 2);
    }
}

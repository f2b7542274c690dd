//! Shared workload and load generator of the `exec_*` benches.
//!
//! **The workload is a stand-in** until the engine exists: each item is one 768-float dot
//! product (a query against one of 256 stored vectors, 768 KiB of vectors in all), a fixed amount
//! of real work of the size of one embedding distance. The load is a closed loop: one submitting
//! thread keeps at most `window` items in flight, retries (and counts) refused submits, and
//! waits until every item ran. Queue-to-done latency comes from the executor's own HDR histogram
//! (accept → end of the item's batch).
#![allow(dead_code)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use locus::exec::{Executor, PinPolicy, Priority, WorkerContext, WorkerPoolConfig};
use locus::topology::{CpuSet, NodePlan, PlacementPlan, PlanOptions, Topology, WorkerSlot};

/// Embedding width of the stand-in workload.
pub const DIM: usize = 768;
/// Stored vectors the items cycle through.
pub const VECTORS: usize = 256;

/// One node 0 with `workers` workers, pinned round-robin to the CPUs this process may use (more
/// workers than CPUs share CPUs: oversubscription, on purpose).
pub fn plan_with(workers: usize) -> PlacementPlan {
    let real = Topology::discover()
        .ok()
        .and_then(|t| PlacementPlan::new(&t, &PlanOptions::default()).ok());
    let cpus: Vec<u32> = real
        .as_ref()
        .map(|p| p.workers().map(|w| w.cpu).collect())
        .filter(|c: &Vec<u32>| !c.is_empty())
        .unwrap_or_else(|| vec![0]);
    let node = real.as_ref().map_or(0, |p| p.nodes[0].node);
    let slots: Vec<WorkerSlot> = (0..workers)
        .map(|i| WorkerSlot {
            index: i,
            local_index: i,
            node,
            cpus: CpuSet::single(cpus[i % cpus.len()]),
            cpu: cpus[i % cpus.len()],
            memory_node: node,
        })
        .collect();
    PlacementPlan {
        nodes: vec![NodePlan {
            node,
            cpus: cpus.iter().copied().collect(),
            memory_node: node,
            workers: slots,
            overflow_nodes: vec![],
        }],
        memory_only_nodes: vec![],
        degradations: vec![],
    }
}

/// The executor config of a bench point: fixed batch cap `batch` (min = max, so the controller
/// does not move it), `capacity` per worker for the normal class.
pub fn config(plan: &PlacementPlan, batch: usize, capacity: usize) -> WorkerPoolConfig {
    WorkerPoolConfig {
        capacity: [capacity, capacity, capacity],
        min_batch: batch,
        max_batch: batch,
        pin: PinPolicy::BestEffort,
        ..WorkerPoolConfig::for_plan(plan)
    }
}

fn vectors() -> Arc<Vec<f32>> {
    Arc::new(
        (0..VECTORS * DIM)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect(),
    )
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A running bench executor and its completion counter.
pub struct Rig {
    pub exec: Executor<u32>,
    pub done: Arc<AtomicU64>,
    pub submitted: u64,
    pub rejected: u64,
}

impl Rig {
    pub fn start(plan: &PlacementPlan, cfg: WorkerPoolConfig) -> Self {
        let vecs = vectors();
        let query: Vec<f32> = (0..DIM).map(|i| (i % 13) as f32 * 0.1).collect();
        let done = Arc::new(AtomicU64::new(0));
        let d = done.clone();
        let exec = Executor::start(
            plan,
            cfg,
            move |_: &WorkerContext, _: Priority, b: &mut Vec<u32>| {
                let mut acc = 0.0f32;
                for &id in b.iter() {
                    let i = id as usize % VECTORS;
                    acc += dot(&query, &vecs[i * DIM..(i + 1) * DIM]);
                }
                black_box(acc);
                d.fetch_add(b.len() as u64, Ordering::Release);
            },
        )
        .expect("executor");
        Self {
            exec,
            done,
            submitted: 0,
            rejected: 0,
        }
    }

    /// Runs `items` through the executor with at most `window` in flight; returns the wall time.
    pub fn run(&mut self, items: u64, window: u64) -> Duration {
        let node = self.exec.nodes()[0];
        let start = Instant::now();
        let target = self.submitted + items;
        while self.submitted < target {
            if self.submitted - self.done.load(Ordering::Acquire) >= window {
                std::hint::spin_loop();
                continue;
            }
            match self.exec.submit(node, Priority::Normal, self.submitted as u32) {
                Ok(()) => self.submitted += 1,
                Err(_) => {
                    self.rejected += 1;
                    std::thread::yield_now();
                }
            }
        }
        while self.done.load(Ordering::Acquire) < target {
            std::thread::yield_now();
        }
        start.elapsed()
    }

    /// Submits `items` as fast as possible without retrying; returns how many were refused, and
    /// waits for the accepted ones.
    pub fn burst(&mut self, items: u64) -> u64 {
        let node = self.exec.nodes()[0];
        let mut refused = 0;
        for i in 0..items {
            match self.exec.submit(node, Priority::Normal, i as u32) {
                Ok(()) => self.submitted += 1,
                Err(_) => refused += 1,
            }
        }
        while self.done.load(Ordering::Acquire) < self.submitted {
            std::thread::yield_now();
        }
        refused
    }

    /// P99 queue-to-done (ns) over everything run so far.
    pub fn p99_ns(&self) -> u64 {
        self.exec.metrics().sojourn.quantile(0.99)
    }
}

/// Resident set size of this process (KiB), from /proc/self/status; `None` off Linux.
pub fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether this is a real bench run (`cargo bench` passes `--bench`), not `cargo test --benches`.
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// `n` in a bench run, a tenth of it in test mode (which only checks that the bench runs).
pub fn scaled(n: u64) -> u64 {
    if bench_mode() { n } else { (n / 10).max(1) }
}

/// Prints `line`, and in a bench run also writes it to `target/<file>` (the file is rewritten,
/// with `header`, by the first line of each run), for the figures the benches report beyond
/// criterion's means.
pub fn record(file: &str, header: &str, line: &str) {
    use std::io::Write;
    static STARTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    eprintln!("{file}: {line}");
    if !bench_mode() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let path = dir.join(file);
    let fresh = {
        let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = !started.iter().any(|f| f == file);
        if fresh {
            started.push(file.into());
        }
        fresh
    };
    let opened = if fresh {
        std::fs::File::create(&path)
    } else {
        std::fs::OpenOptions::new().append(true).open(&path)
    };
    if let Ok(mut f) = opened {
        if fresh {
            let _ = writeln!(f, "{header}");
        }
        let _ = writeln!(f, "{line}");
    }
}

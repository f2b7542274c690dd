//! Parameter grid: workers {1, 2, 4} × batch {10, 100, 1000} × capacity {1K, 10K}. For each
//! point: a 5 000-item warm-up, then three closed-loop runs of 20 000 items (at most 2 048 in
//! flight); throughput is the median of the three, P99 queue-to-done comes from the executor's
//! HDR histogram over those runs. Writes every point to `target/exec-grid.csv` and the Pareto
//! frontier of throughput (higher is better) against P99 (lower is better) to
//! `target/exec-pareto.csv`.
//!
//! This bench times itself (a criterion run per point would take minutes on a 2-core machine);
//! `cargo test --benches` runs it in test mode on one point. Workload: a stand-in (see
//! `exec_support`).

use std::io::Write;

mod exec_support;
use exec_support::{Rig, config, plan_with};

struct Point {
    workers: usize,
    batch: usize,
    capacity: usize,
    items_per_s: f64,
    p99_us: f64,
}

fn measure(workers: usize, batch: usize, capacity: usize, items: u64) -> Point {
    let plan = plan_with(workers);
    let mut rig = Rig::start(&plan, config(&plan, batch, capacity));
    rig.run(items / 4, 2048);
    rig.exec.reset_histograms();
    let mut rates: Vec<f64> = (0..3)
        .map(|_| items as f64 / rig.run(items, 2048).as_secs_f64())
        .collect();
    rates.sort_by(f64::total_cmp);
    Point {
        workers,
        batch,
        capacity,
        items_per_s: rates[1],
        p99_us: rig.p99_ns() as f64 / 1e3,
    }
}

/// Points not dominated by another (one at least as fast and at least as low-latency, and
/// strictly better in one).
fn pareto(points: &[Point]) -> Vec<&Point> {
    let mut front: Vec<&Point> = points
        .iter()
        .filter(|p| {
            !points.iter().any(|q| {
                q.items_per_s >= p.items_per_s
                    && q.p99_us <= p.p99_us
                    && (q.items_per_s > p.items_per_s || q.p99_us < p.p99_us)
            })
        })
        .collect();
    front.sort_by(|a, b| a.p99_us.total_cmp(&b.p99_us));
    front
}

fn write(file: &str, points: &[&Point]) -> std::io::Result<std::path::PathBuf> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(file);
    let mut f = std::fs::File::create(&path)?;
    writeln!(f, "workers,batch,capacity,items_per_s,p99_queue_to_done_us")?;
    for p in points {
        writeln!(
            f,
            "{},{},{},{:.0},{:.1}",
            p.workers, p.batch, p.capacity, p.items_per_s, p.p99_us
        )?;
    }
    Ok(path)
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let (workers, batches, capacities, items): (&[usize], &[usize], &[usize], u64) = if bench_mode {
        (&[1, 2, 4], &[10, 100, 1000], &[1_000, 10_000], 20_000)
    } else {
        (&[2], &[100], &[1_000], 2_000)
    };
    let mut points = Vec::new();
    for &w in workers {
        for &b in batches {
            for &c in capacities {
                let p = measure(w, b, c, items);
                eprintln!(
                    "exec_grid: workers={w} batch={b} capacity={c}: {:.0} items/s, P99 {:.1} us",
                    p.items_per_s, p.p99_us
                );
                points.push(p);
            }
        }
    }
    let all: Vec<&Point> = points.iter().collect();
    let front = pareto(&points);
    // Test mode only checks that the bench runs: it leaves the last real results in place.
    if bench_mode {
        match (write("exec-grid.csv", &all), write("exec-pareto.csv", &front)) {
            (Ok(a), Ok(f)) => eprintln!("exec_grid: wrote {} and {}", a.display(), f.display()),
            (Err(e), _) | (_, Err(e)) => eprintln!("exec_grid: cannot write results: {e}"),
        }
    }
    for p in front {
        eprintln!(
            "exec_grid: pareto workers={} batch={} capacity={}: {:.0} items/s, P99 {:.1} us",
            p.workers, p.batch, p.capacity, p.items_per_s, p.p99_us
        );
    }
}

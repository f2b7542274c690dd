//! False sharing: threads that each increment only their own counter, with the counters packed
//! into one cache line or padded apart.
//!
//! Packed, every increment needs the line in the Modified state in the incrementing core's L1,
//! so the line bounces between cores (a coherence miss per increment, in the worst case);
//! padded ([`CachePadded`], 128 bytes), each core keeps its own line. The time per increment
//! of the two layouts, measured side by side, is the cost of false sharing on this machine.
//! (A cache simulator such as cachegrind runs threads one at a time and models no coherence,
//! so it cannot show this effect: only real hardware can.)

use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::alloc::layout::CachePadded;
use crate::counters::{CounterError, CounterOptions, CounterReport, CounterSet, Event, Target};
use crate::topology::{CpuSet, PlacementPlan, PlanOptions, Topology, WorkerGranularity, pin_current_thread};

/// The most threads the packed layout holds: eight `u64`s fill one 64-byte line.
pub const MAX_THREADS: usize = 8;

/// Where the per-thread counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CounterLayout {
    /// All counters in one 64-byte cache line.
    Packed,
    /// Each counter in its own [`CachePadded`] slot (128 bytes).
    Padded,
}

/// All counters in one line, aligned so the line is not split.
#[repr(C, align(128))]
struct PackedCounters([AtomicU64; MAX_THREADS]);

const _: () = assert!(std::mem::size_of::<[AtomicU64; MAX_THREADS]>() == 64);

/// How the threads were placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Placement {
    /// Each thread pinned to the CPU at its index.
    Pinned {
        /// The CPUs.
        cpus: Vec<u32>,
    },
    /// Threads run where the scheduler puts them.
    Unpinned {
        /// Why they were not pinned.
        reason: String,
    },
}

/// The result of one run.
#[derive(Debug, Clone, Serialize)]
pub struct FalseSharingRun {
    /// The layout.
    pub layout: CounterLayout,
    /// Threads.
    pub threads: usize,
    /// Increments each thread made.
    pub increments_per_thread: u64,
    /// The slowest thread's time for its increments.
    pub slowest: Duration,
    /// `slowest / increments_per_thread`, in nanoseconds.
    pub ns_per_increment: f64,
    /// How the threads were placed.
    pub placement: Placement,
    /// Per-thread counter reports (empty when no events were asked for).
    pub reports: Vec<CounterReport>,
}

/// The measured loop: `n` relaxed increments of one counter. Not inlined, so profilers and
/// cache simulators can attribute its accesses.
#[inline(never)]
pub fn increment_loop(slot: &AtomicU64, n: u64) {
    for _ in 0..n {
        slot.fetch_add(1, Ordering::Relaxed);
    }
}

/// The CPUs the placement plan gives its first `threads` workers (one per PU), or why there are
/// none. With fewer PUs than threads, CPUs are reused in order.
pub fn plan_cpus(threads: usize) -> Result<Vec<CpuSet>, String> {
    let topo = Topology::discover().map_err(|e| format!("topology discovery failed: {e}"))?;
    let options = PlanOptions {
        granularity: WorkerGranularity::PerPu,
        ..PlanOptions::default()
    };
    let plan = PlacementPlan::new(&topo, &options).map_err(|e| format!("no placement plan: {e}"))?;
    let cpus: Vec<CpuSet> = plan.workers().map(|w| w.cpus.clone()).collect();
    if cpus.is_empty() {
        return Err("the placement plan has no workers".into());
    }
    Ok((0..threads).map(|i| cpus[i % cpus.len()].clone()).collect())
}

/// Runs `threads` threads, each incrementing its own counter `increments` times
/// (`fetch_add`, relaxed), in `layout`. With `cpus`, thread `i` is pinned to `cpus[i]`; if
/// pinning fails the run goes on unpinned and says why. With `events`, each thread counts them
/// around its loop.
///
/// # Errors
/// [`CounterError::InvalidInput`] if `threads` is 0 or above [`MAX_THREADS`], or `cpus` has
/// fewer entries than `threads`; [`CounterError::Os`] if a worker's counters fail.
pub fn run(
    layout: CounterLayout,
    threads: usize,
    increments: u64,
    cpus: Option<&[CpuSet]>,
    events: &[Event],
) -> Result<FalseSharingRun, CounterError> {
    if threads == 0 || threads > MAX_THREADS {
        return Err(CounterError::InvalidInput {
            detail: format!("threads must be 1..={MAX_THREADS}, got {threads}"),
        });
    }
    if cpus.is_some_and(|c| c.len() < threads) {
        return Err(CounterError::InvalidInput {
            detail: format!("{threads} threads but fewer CPUs given"),
        });
    }
    let packed = PackedCounters(Default::default());
    let padded: Vec<CachePadded<AtomicU64>> = (0..threads)
        .map(|_| CachePadded::new(AtomicU64::new(0)))
        .collect();
    let barrier = Barrier::new(threads);

    type ThreadOutcome = (
        Duration,
        Result<(), String>,
        Option<Result<CounterReport, CounterError>>,
    );
    let outcomes: Vec<ThreadOutcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let slot: &AtomicU64 = match layout {
                    CounterLayout::Packed => &packed.0[i],
                    CounterLayout::Padded => &padded[i],
                };
                let cpu = cpus.map(|c| c[i].clone());
                let barrier = &barrier;
                s.spawn(move || {
                    let pinned = match &cpu {
                        Some(set) => pin_current_thread(set).map_err(|e| e.to_string()),
                        None => Err("no CPUs given".to_string()),
                    };
                    // Open before the barrier so a failure cannot leave the others waiting.
                    let set = (!events.is_empty())
                        .then(|| CounterSet::open(events, Target::CurrentThread, &CounterOptions::default()));
                    barrier.wait();
                    let counting = match &set {
                        Some(Ok(set)) => Some(set.reset().and_then(|()| set.enable())),
                        _ => None,
                    };
                    let start = Instant::now();
                    increment_loop(slot, increments);
                    let elapsed = start.elapsed();
                    let report = match (set, counting) {
                        (None, _) => None,
                        (Some(Err(e)), _) | (Some(Ok(_)), Some(Err(e))) => Some(Err(e)),
                        (Some(Ok(set)), _) => Some(set.disable().and_then(|()| set.read())),
                    };
                    (elapsed, pinned, report)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or((Duration::ZERO, Err("thread panicked".into()), None))
            })
            .collect()
    });

    let mut reports = Vec::new();
    for (_, _, r) in &outcomes {
        if let Some(r) = r {
            match r {
                Ok(rep) => reports.push(rep.clone()),
                Err(e) => {
                    return Err(CounterError::Os {
                        call: "worker counters",
                        errno: 0,
                        message: e.to_string(),
                    });
                }
            }
        }
    }
    let placement = match outcomes.iter().find_map(|(_, p, _)| p.as_ref().err()) {
        Some(reason) => Placement::Unpinned {
            reason: reason.clone(),
        },
        None => Placement::Pinned {
            cpus: cpus
                .map(|c| c[..threads].iter().filter_map(CpuSet::first).collect())
                .unwrap_or_default(),
        },
    };
    let slowest = outcomes.iter().map(|(d, _, _)| *d).max().unwrap_or_default();
    let total: u64 = match layout {
        CounterLayout::Packed => packed.0[..threads]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum(),
        CounterLayout::Padded => padded.iter().map(|c| c.load(Ordering::Relaxed)).sum(),
    };
    debug_assert_eq!(total, threads as u64 * increments);
    Ok(FalseSharingRun {
        layout,
        threads,
        increments_per_thread: increments,
        slowest,
        ns_per_increment: slowest.as_nanos() as f64 / increments.max(1) as f64,
        placement,
        reports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_count_every_increment() {
        for layout in [CounterLayout::Packed, CounterLayout::Padded] {
            let r = run(layout, 2, 10_000, None, &[]).expect("run");
            assert_eq!(r.threads, 2);
            assert!(matches!(r.placement, Placement::Unpinned { .. }));
            assert!(r.ns_per_increment > 0.0);
        }
    }

    #[test]
    fn bad_thread_counts_are_rejected() {
        assert!(run(CounterLayout::Packed, 0, 1, None, &[]).is_err());
        assert!(run(CounterLayout::Packed, MAX_THREADS + 1, 1, None, &[]).is_err());
        let one = vec![CpuSet::single(0)];
        assert!(run(CounterLayout::Padded, 2, 1, Some(&one), &[]).is_err());
    }

    #[test]
    fn counts_software_events_per_thread() {
        let r = run(CounterLayout::Padded, 2, 100_000, None, &[Event::TaskClock]).expect("run");
        assert_eq!(r.reports.len(), 2);
    }
}

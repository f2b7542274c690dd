//! Metric snapshots of an executor, and their Prometheus rendering.

use serde::Serialize;

use super::degradation::ExecDegradation;
use super::pool::{PinStatus, Shared};
use super::queue::Priority;
use crate::metrics::{LatencyHistogram, MetricsError, PrometheusWriter, Quantiles};

/// Queue depth of one class of one worker, sampled at each of its scheduling decisions.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct DepthStats {
    /// Smallest depth seen (0 when never sampled).
    pub min: u64,
    /// Mean depth.
    pub avg: f64,
    /// Largest depth seen.
    pub max: u64,
    /// Depth now.
    pub now: usize,
}

/// One worker's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerMetrics {
    /// Plan index.
    pub worker: usize,
    /// Plan node.
    pub node: u32,
    /// Plan CPU.
    pub cpu: u32,
    /// Where it was found running.
    pub pin: PinStatus,
    /// Items run, per class (high, normal, low).
    pub items: [u64; 3],
    /// Batches run, per class.
    pub batches: [u64; 3],
    /// Mean items per batch (all classes).
    pub items_per_batch: f64,
    /// Share of wall time since start spent in the handler, 0..=1.
    pub busy_share: f64,
    /// Steal operations from a sibling on the same node.
    pub steals_local: u64,
    /// Steal operations from a worker on another node.
    pub steals_remote: u64,
    /// Items taken by local steals.
    pub stolen_items_local: u64,
    /// Items taken by remote steals.
    pub stolen_items_remote: u64,
    /// Times it parked.
    pub parks: u64,
    /// Handler panics caught.
    pub handler_panics: u64,
    /// Queue depth per class.
    pub depth: [DepthStats; 3],
    /// Current adaptive batch size per class.
    pub batch_size: [usize; 3],
}

/// One node's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeMetrics {
    /// Node OS index.
    pub node: u32,
    /// Submits refused as overloaded, per class.
    pub rejections: [u64; 3],
    /// Items waiting now, per class.
    pub depth: [usize; 3],
}

/// A snapshot of an executor's metrics.
#[derive(Debug, Clone)]
pub struct ExecMetrics {
    /// Seconds since the executor started.
    pub uptime_s: f64,
    /// Per worker.
    pub workers: Vec<WorkerMetrics>,
    /// Per node.
    pub nodes: Vec<NodeMetrics>,
    /// Accepted → batch start, per item, all workers merged (ns).
    pub queue_wait: LatencyHistogram,
    /// Batch service time, per batch (ns).
    pub service: LatencyHistogram,
    /// Accepted → done ("queue-to-done"), per item (ns).
    pub sojourn: LatencyHistogram,
    /// Items per batch.
    pub batch_items: LatencyHistogram,
    /// Degradations of the running executor.
    pub degradations: Vec<ExecDegradation>,
}

pub(crate) fn snapshot<T>(sh: &Shared<T>, degradations: Vec<ExecDegradation>) -> ExecMetrics {
    let uptime = sh.started.elapsed();
    let mut workers = Vec::new();
    let mut merged = super::stats::WorkerHistograms::default();
    for pool in &sh.pools {
        for w in &pool.workers {
            let st = &w.stats;
            {
                let h = w.hist.lock().unwrap_or_else(|p| p.into_inner());
                // Same bounds on both sides: merging cannot fail.
                let _ = merged.queue_wait.merge(&h.queue_wait);
                let _ = merged.service.merge(&h.service);
                let _ = merged.sojourn.merge(&h.sojourn);
                let _ = merged.batch_items.merge(&h.batch_items);
            }
            let items = std::array::from_fn(|i| st.items[i].get());
            let batches: [u64; 3] = std::array::from_fn(|i| st.batches[i].get());
            let (ti, tb) = (items.iter().sum::<u64>(), batches.iter().sum::<u64>());
            let depth = std::array::from_fn(|i| {
                let d = &st.depth[i];
                let n = d.samples.get();
                DepthStats {
                    min: if n == 0 { 0 } else { d.min.get() },
                    avg: if n == 0 {
                        0.0
                    } else {
                        d.sum.get() as f64 / n as f64
                    },
                    max: d.max.get(),
                    now: w.queues.len(Priority::ALL[i]),
                }
            });
            workers.push(WorkerMetrics {
                worker: w.slot.index,
                node: w.slot.node,
                cpu: w.slot.cpu,
                pin: w.pin.get().cloned().unwrap_or(PinStatus::Skipped),
                items,
                batches,
                items_per_batch: if tb == 0 { 0.0 } else { ti as f64 / tb as f64 },
                busy_share: (st.busy_ns.get() as f64 / uptime.as_nanos().max(1) as f64).min(1.0),
                steals_local: st.steals_local.get(),
                steals_remote: st.steals_remote.get(),
                stolen_items_local: st.stolen_items_local.get(),
                stolen_items_remote: st.stolen_items_remote.get(),
                parks: st.parks.get(),
                handler_panics: st.handler_panics.get(),
                depth,
                batch_size: std::array::from_fn(|i| {
                    st.batch_size[i].load(std::sync::atomic::Ordering::Relaxed)
                }),
            });
        }
    }
    let nodes = sh
        .pools
        .iter()
        .map(|p| NodeMetrics {
            node: p.node,
            rejections: std::array::from_fn(|i| p.rejections[i].get()),
            depth: Priority::ALL.map(|c| p.depth(c)),
        })
        .collect();
    ExecMetrics {
        uptime_s: uptime.as_secs_f64(),
        workers,
        nodes,
        queue_wait: merged.queue_wait,
        service: merged.service,
        sojourn: merged.sojourn,
        batch_items: merged.batch_items,
        degradations,
    }
}

impl ExecMetrics {
    /// Items run, all workers and classes.
    pub fn items_run(&self) -> u64 {
        self.workers.iter().flat_map(|w| w.items).sum()
    }

    /// Steal operations (local, remote), all workers.
    pub fn steals(&self) -> (u64, u64) {
        self.workers
            .iter()
            .fold((0, 0), |(l, r), w| (l + w.steals_local, r + w.steals_remote))
    }

    /// Rejected submits, all nodes and classes.
    pub fn rejections(&self) -> u64 {
        self.nodes.iter().flat_map(|n| n.rejections).sum()
    }

    /// Queue-to-done quantiles (ns).
    pub fn sojourn_quantiles(&self) -> Quantiles {
        self.sojourn.quantiles()
    }

    /// Writes the snapshot as Prometheus text (metric names start with `locus_exec_`).
    ///
    /// # Errors
    /// [`MetricsError::InvalidName`] only if a name below were malformed (a bug).
    // tidy: long-fn — one Prometheus family after another, a table in code
    pub fn write_prometheus(&self, w: &mut PrometheusWriter) -> Result<(), MetricsError> {
        type Field = fn(&WorkerMetrics) -> f64;
        let per_worker: [(&str, &str, bool, Field); 9] = [
            (
                "locus_exec_busy_share",
                "Share of time in the handler.",
                false,
                |m| m.busy_share,
            ),
            (
                "locus_exec_items_per_batch",
                "Mean items per batch.",
                false,
                |m| m.items_per_batch,
            ),
            (
                "locus_exec_steals_local_total",
                "Steals from the same node.",
                true,
                |m| m.steals_local as f64,
            ),
            (
                "locus_exec_steals_remote_total",
                "Steals from another node.",
                true,
                |m| m.steals_remote as f64,
            ),
            (
                "locus_exec_stolen_items_local_total",
                "Items stolen locally.",
                true,
                |m| m.stolen_items_local as f64,
            ),
            (
                "locus_exec_stolen_items_remote_total",
                "Items stolen remotely.",
                true,
                |m| m.stolen_items_remote as f64,
            ),
            ("locus_exec_parks_total", "Times a worker parked.", true, |m| {
                m.parks as f64
            }),
            (
                "locus_exec_handler_panics_total",
                "Handler panics caught.",
                true,
                |m| m.handler_panics as f64,
            ),
            (
                "locus_exec_pinned",
                "1 if getcpu verified the worker on its plan CPU and node.",
                false,
                |m| f64::from(u8::from(matches!(m.pin, PinStatus::Verified { .. }))),
            ),
        ];
        for (name, help, counter, f) in per_worker {
            for m in &self.workers {
                let (wi, node, cpu) = (m.worker.to_string(), m.node.to_string(), m.cpu.to_string());
                let labels = [
                    ("worker", wi.as_str()),
                    ("node", node.as_str()),
                    ("cpu", cpu.as_str()),
                ];
                if counter {
                    w.counter(name, help, &labels, f(m) as u64)?;
                } else {
                    w.gauge(name, help, &labels, f(m))?;
                }
            }
        }
        for m in &self.workers {
            for class in Priority::ALL {
                let wi = m.worker.to_string();
                let labels = [("worker", wi.as_str()), ("class", class.as_str())];
                w.counter(
                    "locus_exec_items_total",
                    "Items run.",
                    &labels,
                    m.items[class.index()],
                )?;
            }
        }
        for (stat, help) in [
            ("min", "Smallest sampled queue depth."),
            ("avg", "Mean sampled queue depth."),
            ("max", "Largest sampled queue depth."),
        ] {
            let name = format!("locus_exec_queue_depth_{stat}");
            for m in &self.workers {
                for class in Priority::ALL {
                    let d = &m.depth[class.index()];
                    let v = match stat {
                        "min" => d.min as f64,
                        "avg" => d.avg,
                        _ => d.max as f64,
                    };
                    let wi = m.worker.to_string();
                    w.gauge(
                        &name,
                        help,
                        &[("worker", wi.as_str()), ("class", class.as_str())],
                        v,
                    )?;
                }
            }
        }
        for n in &self.nodes {
            for class in Priority::ALL {
                let node = n.node.to_string();
                w.counter(
                    "locus_exec_rejections_total",
                    "Submits refused as overloaded.",
                    &[("node", node.as_str()), ("class", class.as_str())],
                    n.rejections[class.index()],
                )?;
            }
        }
        w.summary(
            "locus_exec_queue_wait_seconds",
            "Time from accept to batch start.",
            &[],
            &self.queue_wait.quantiles(),
            1e-9,
        )?;
        w.summary(
            "locus_exec_service_seconds",
            "Batch service time.",
            &[],
            &self.service.quantiles(),
            1e-9,
        )?;
        w.summary(
            "locus_exec_queue_to_done_seconds",
            "Time from accept to batch end.",
            &[],
            &self.sojourn.quantiles(),
            1e-9,
        )?;
        w.summary(
            "locus_exec_batch_items",
            "Items per batch.",
            &[],
            &self.batch_items.quantiles(),
            1.0,
        )
    }

    /// The snapshot as a Prometheus text exposition.
    pub fn to_prometheus(&self) -> String {
        let mut w = PrometheusWriter::new();
        // Every name above is a valid constant.
        let _ = self.write_prometheus(&mut w);
        w.finish()
    }
}

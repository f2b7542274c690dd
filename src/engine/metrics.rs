//! The engine's metrics registry: per-op latency histograms, counters and gauges, with constant
//! labels (`shard`, `node`, `space`), exposed as Prometheus text and as a JSON snapshot.
//!
//! # Recording never waits for a scrape
//!
//! A latency is recorded into an [`OpRecorder`]: a few *stripes*, each a mutex around an HDR
//! histogram plus fixed Prometheus buckets. A recording thread *tries* the stripe its thread id
//! hashes to, then the next ones; a scrape locks one stripe at a time to copy it. So at most one
//! stripe is ever held by a reader and a recorder always finds a free one: a scrape never stalls
//! a caller or a worker (in the worst case, when every stripe is busy with other recorders, the
//! sample is counted in `dropped` rather than waited for; that counter is exported).
//!
//! # Prometheus conventions
//!
//! Names start with `locus_`, are in base units (seconds, bytes), counters end in `_total`, and
//! latency histograms use the fixed buckets [`BUCKETS_S`], identical in every scrape.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::TryLockError;
use std::time::Duration;

use serde::Serialize;

use crate::metrics::{Counter, LatencyHistogram, MetricKind, MetricsError, PrometheusWriter, Quantiles};

/// Upper bounds (seconds) of the latency histogram buckets, fixed for the life of the process.
pub const BUCKETS_S: [f64; 16] = [
    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0, 5.0,
];

/// Stripes per recorder: more than the threads that record at once on the machines Locus
/// targets would be wasted memory; 8 keeps a free stripe for recorders while one is scraped.
const STRIPES: usize = 8;

#[derive(Clone)]
struct Cell {
    hdr: LatencyHistogram,
    /// Counts per bucket of [`BUCKETS_S`] plus the `+Inf` bucket (not cumulative).
    buckets: [u64; BUCKETS_S.len() + 1],
    sum_s: f64,
}

impl Default for Cell {
    fn default() -> Self {
        Self {
            hdr: LatencyHistogram::new(),
            buckets: [0; BUCKETS_S.len() + 1],
            sum_s: 0.0,
        }
    }
}

impl Cell {
    fn record(&mut self, d: Duration) {
        self.hdr.record_duration(d);
        let s = d.as_secs_f64();
        let b = BUCKETS_S
            .iter()
            .position(|&le| s <= le)
            .unwrap_or(BUCKETS_S.len());
        self.buckets[b] += 1;
        self.sum_s += s;
    }

    fn merge(&mut self, o: &Cell) {
        let _ = self.hdr.merge(&o.hdr);
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a += b;
        }
        self.sum_s += o.sum_s;
    }
}

/// Latencies of one operation; see the module docs.
pub struct OpRecorder {
    stripes: Vec<Mutex<Cell>>,
    dropped: Counter,
}

impl std::fmt::Debug for OpRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpRecorder").finish_non_exhaustive()
    }
}

impl Default for OpRecorder {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(Cell::default())).collect(),
            dropped: Counter::new(),
        }
    }
}

thread_local! {
    static STRIPE: usize = {
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&std::thread::current().id(), &mut h);
        std::hash::Hasher::finish(&h) as usize
    };
}

impl OpRecorder {
    /// Records one latency without waiting for any lock.
    pub fn record(&self, d: Duration) {
        let start = STRIPE.with(|s| *s);
        for k in 0..STRIPES {
            match self.stripes[(start + k) % STRIPES].try_lock() {
                Ok(mut c) => return c.record(d),
                Err(TryLockError::Poisoned(p)) => return p.into_inner().record(d),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.dropped.inc();
    }

    /// Every stripe merged (locks one stripe at a time, briefly).
    fn merged(&self) -> Cell {
        let mut out = Cell::default();
        for s in &self.stripes {
            let copy = s.lock().unwrap_or_else(|p| p.into_inner()).clone();
            out.merge(&copy);
        }
        out
    }

    /// Quantiles (ns) of everything recorded.
    pub fn quantiles(&self) -> Quantiles {
        self.merged().hdr.quantiles()
    }

    /// Test hook: holds stripe `i` as a slow scrape would.
    #[cfg(test)]
    fn hold(&self, i: usize) -> std::sync::MutexGuard<'_, Cell> {
        self.stripes[i].lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why an observation or recall was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The shard's queue was full.
    Queue,
    /// The append buffer held `max_unindexed` episodes.
    IndexLag,
    /// The space's quota was reached.
    Quota,
    /// Invalid input (dimension, NaN, zero vector, unknown link, bad argument).
    Invalid,
    /// The id was taken.
    Duplicate,
    /// The shard did not answer in time.
    Timeout,
}

impl RejectReason {
    /// All reasons.
    pub const ALL: [RejectReason; 6] = [
        RejectReason::Queue,
        RejectReason::IndexLag,
        RejectReason::Quota,
        RejectReason::Invalid,
        RejectReason::Duplicate,
        RejectReason::Timeout,
    ];

    fn as_str(self) -> &'static str {
        match self {
            RejectReason::Queue => "queue",
            RejectReason::IndexLag => "index_lag",
            RejectReason::Quota => "quota",
            RejectReason::Invalid => "invalid",
            RejectReason::Duplicate => "duplicate",
            RejectReason::Timeout => "timeout",
        }
    }
}

/// A message a shard's workers receive: a task sent to the shard by the caller's thread or by
/// another shard (the engine's only traffic between shards and nodes; see the module docs of
/// [`crate::engine`] for which operation sends which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// An episode to store.
    Observe,
    /// A search of the shard's index and append buffer.
    Search,
    /// A whole spread on a one-shard engine.
    Spread,
    /// One round of a spread across shards.
    Hop,
    /// Association edges whose sources live on the shard.
    Edges,
    /// Masked similarities of some of the shard's episodes to a query.
    Score,
    /// Stored embeddings of some of the shard's episodes.
    Rows,
    /// Which of some ids are live on the shard, and in which space.
    Locate,
    /// An episode to forget.
    Forget,
}

impl MessageKind {
    /// All kinds.
    pub const ALL: [MessageKind; 9] = [
        MessageKind::Observe,
        MessageKind::Search,
        MessageKind::Spread,
        MessageKind::Hop,
        MessageKind::Edges,
        MessageKind::Score,
        MessageKind::Rows,
        MessageKind::Locate,
        MessageKind::Forget,
    ];

    /// The `kind` label.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Observe => "observe",
            MessageKind::Search => "search",
            MessageKind::Spread => "spread",
            MessageKind::Hop => "hop",
            MessageKind::Edges => "edges",
            MessageKind::Score => "score",
            MessageKind::Rows => "rows",
            MessageKind::Locate => "locate",
            MessageKind::Forget => "forget",
        }
    }
}

/// Counters and recorders of one shard.
#[derive(Debug)]
pub(crate) struct ShardMetrics {
    pub(crate) observe: OpRecorder,
    pub(crate) search: OpRecorder,
    /// Time a search task waited in a queue before a worker took it.
    pub(crate) search_queued: OpRecorder,
    pub(crate) accepted: Vec<Counter>,
    pub(crate) rejected: Vec<[Counter; 6]>,
    pub(crate) absorbed: Counter,
    /// Absorption tasks that stopped early because a recall waited.
    pub(crate) absorb_yields: Counter,
    /// Messages received, by [`MessageKind`].
    pub(crate) messages: [Counter; MessageKind::ALL.len()],
    /// Association edges for this shard lost because it refused their message.
    pub(crate) edges_lost: Counter,
    /// Tasks of this shard run by a worker of another node (stolen across nodes): each read
    /// this shard's memory from afar, traffic that is not a message.
    pub(crate) off_node: Counter,
}

impl ShardMetrics {
    pub(crate) fn new(spaces: usize) -> Self {
        Self {
            observe: OpRecorder::default(),
            search: OpRecorder::default(),
            search_queued: OpRecorder::default(),
            accepted: (0..spaces).map(|_| Counter::new()).collect(),
            rejected: (0..spaces)
                .map(|_| std::array::from_fn(|_| Counter::new()))
                .collect(),
            absorbed: Counter::new(),
            absorb_yields: Counter::new(),
            messages: std::array::from_fn(|_| Counter::new()),
            edges_lost: Counter::new(),
            off_node: Counter::new(),
        }
    }

    /// Counts one message received.
    pub(crate) fn message(&self, kind: MessageKind) {
        self.messages[kind as usize].inc();
    }

    /// Messages received so far, by kind.
    pub(crate) fn messages(&self) -> BTreeMap<MessageKind, u64> {
        MessageKind::ALL
            .iter()
            .map(|&k| (k, self.messages[k as usize].get()))
            .collect()
    }

    pub(crate) fn reject(&self, space: u16, why: RejectReason) {
        if let Some(r) = self.rejected.get(space as usize) {
            r[why as usize].inc();
        }
    }
}

/// Latency summary of one operation (nanoseconds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpSnapshot {
    /// Quantiles (ns).
    pub quantiles: Quantiles,
    /// Cumulative counts per bucket of [`BUCKETS_S`], then `+Inf`.
    pub buckets: Vec<u64>,
    /// Sum of all samples, seconds.
    pub sum_s: f64,
    /// Samples not recorded because every stripe was busy.
    pub dropped: u64,
}

impl OpRecorder {
    /// A snapshot of this recorder.
    pub fn snapshot(&self) -> OpSnapshot {
        let c = self.merged();
        let mut acc = 0;
        OpSnapshot {
            quantiles: c.hdr.quantiles(),
            buckets: c
                .buckets
                .iter()
                .map(|b| {
                    acc += b;
                    acc
                })
                .collect(),
            sum_s: c.sum_s,
            dropped: self.dropped.get(),
        }
    }
}

/// One space on one shard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpaceShardMetrics {
    /// The space.
    pub space: String,
    /// Live episodes.
    pub episodes: usize,
    /// Episodes in the append buffer (accepted, not yet indexed), plus those in flight.
    pub index_lag_episodes: usize,
    /// Age of the oldest episode not yet indexed, seconds.
    pub index_lag_seconds: f64,
    /// Index segments.
    pub segments: usize,
    /// Accepted observations.
    pub accepted: u64,
    /// Refused observations, by reason.
    pub rejected: BTreeMap<RejectReason, u64>,
}

/// One shard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardSnapshot {
    /// The shard.
    pub shard: usize,
    /// Its node.
    pub node: u32,
    /// The node its memory is bound to.
    pub memory_node: u32,
    /// Workers of its node.
    pub workers: usize,
    /// Tasks queued on its node, per class (high, normal, low).
    pub queue_depth: [usize; 3],
    /// Episodes absorbed by the index so far.
    pub absorbed_total: u64,
    /// Absorption tasks that stopped early, after an insert, because a recall waited
    /// ([`IndexParams::absorb_yields`](super::IndexParams::absorb_yields)).
    pub absorb_yields_total: u64,
    /// Association edges.
    pub edges: usize,
    /// Messages this shard's workers received, by kind (every kind present).
    pub messages: BTreeMap<MessageKind, u64>,
    /// Association edges lost because this shard refused their message (queue full, closing).
    pub edges_lost: u64,
    /// Tasks of this shard run by a worker of another node (the executor's cross-node stealing):
    /// remote memory traffic that is not a message; 0 when every task ran at home.
    pub tasks_off_node: u64,
    /// Observe latency, caller side (submit → accepted).
    pub observe: OpSnapshot,
    /// Search latency of this shard (on its worker).
    pub search: OpSnapshot,
    /// Time this shard's search tasks waited in a queue before a worker took them.
    pub search_queued: OpSnapshot,
    /// Per space.
    pub spaces: Vec<SpaceShardMetrics>,
    /// Fraction of the shard's present pages on its memory node (`None` where `move_pages` is
    /// unavailable or nothing was touched yet); see [`Engine::placement`](super::Engine::placement).
    pub placement_home_fraction: Option<f64>,
}

/// A snapshot of every engine metric, as JSON-serialisable data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineMetrics {
    /// Seconds since the engine opened.
    pub uptime_s: f64,
    /// The distance kernels in use.
    pub kernels: String,
    /// Per shard.
    pub shards: Vec<ShardSnapshot>,
    /// Recall latency, caller side.
    pub recall: OpSnapshot,
    /// Completion latency, caller side.
    pub complete: OpSnapshot,
    /// Recalls returned partial.
    pub recalls_partial: u64,
    /// Degradations: the plan's and the executor's, as text.
    pub degradations: Vec<String>,
}

/// Prometheus text for the snapshot. Families are written whole, in a fixed order, each typed
/// even while it has no sample.
pub(crate) fn render(m: &EngineMetrics) -> String {
    let mut w = PrometheusWriter::new();
    let written = write_families(m, &mut w);
    // Every name below is a constant of Prometheus's grammar (the unit tests write them all);
    // label values are escaped by the writer, so nothing a caller controls can be refused.
    debug_assert!(written.is_ok(), "engine metric refused: {written:?}");
    w.finish()
}

/// Every family of the snapshot, in the exposition's order.
fn write_families(m: &EngineMetrics, w: &mut PrometheusWriter) -> Result<(), MetricsError> {
    let shards: Vec<ShardLabels> = m.shards.iter().map(ShardLabels::of).collect();
    write_engine(m, w)?;
    write_spaces(m, &shards, w)?;
    write_shards(m, &shards, w)?;
    write_histograms(m, &shards, w)?;
    w.family(
        "locus_engine_recalls_partial_total",
        "Recalls missing a shard's answer.",
        MetricKind::Counter,
    )?;
    w.counter(
        "locus_engine_recalls_partial_total",
        "Recalls missing a shard's answer.",
        &[],
        m.recalls_partial,
    )
}

/// A shard's constant labels, formatted once per scrape.
struct ShardLabels {
    shard: String,
    node: String,
}

impl ShardLabels {
    fn of(s: &ShardSnapshot) -> Self {
        Self {
            shard: s.shard.to_string(),
            node: s.node.to_string(),
        }
    }

    /// `shard`, `node`, then `more`.
    fn with<'a>(&'a self, more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut l = vec![("shard", self.shard.as_str()), ("node", self.node.as_str())];
        l.extend_from_slice(more);
        l
    }
}

/// Uptime and kernels.
fn write_engine(m: &EngineMetrics, w: &mut PrometheusWriter) -> Result<(), MetricsError> {
    w.gauge(
        "locus_engine_uptime_seconds",
        "Seconds since the engine opened.",
        &[],
        m.uptime_s,
    )?;
    w.gauge(
        "locus_engine_kernels_info",
        "Distance kernels in use (value 1).",
        &[("kernels", &m.kernels)],
        1.0,
    )
}

/// Families with one sample per space per shard.
fn write_spaces(
    m: &EngineMetrics,
    shards: &[ShardLabels],
    w: &mut PrometheusWriter,
) -> Result<(), MetricsError> {
    type SpaceGauge = fn(&SpaceShardMetrics) -> f64;
    let space_gauges: [(&str, &str, SpaceGauge); 4] = [
        ("locus_engine_episodes", "Live episodes.", |s| s.episodes as f64),
        (
            "locus_engine_index_lag_episodes",
            "Episodes accepted but not yet indexed (the append buffer).",
            |s| s.index_lag_episodes as f64,
        ),
        (
            "locus_engine_index_lag_seconds",
            "Age of the oldest episode not yet indexed.",
            |s| s.index_lag_seconds,
        ),
        ("locus_engine_segments", "Index segments.", |s| s.segments as f64),
    ];
    let spaces = || {
        m.shards
            .iter()
            .zip(shards)
            .flat_map(|(s, l)| s.spaces.iter().map(move |sp| (l, sp)))
    };
    for (name, help, f) in space_gauges {
        w.family(name, help, MetricKind::Gauge)?;
        for (l, sp) in spaces() {
            w.gauge(name, help, &l.with(&[("space", &sp.space)]), f(sp))?;
        }
    }
    let (name, help) = (
        "locus_engine_observations_accepted_total",
        "Observations accepted.",
    );
    w.family(name, help, MetricKind::Counter)?;
    for (l, sp) in spaces() {
        w.counter(name, help, &l.with(&[("space", &sp.space)]), sp.accepted)?;
    }
    let (name, help) = (
        "locus_engine_observations_rejected_total",
        "Observations refused, by reason.",
    );
    w.family(name, help, MetricKind::Counter)?;
    for (l, sp) in spaces() {
        for r in RejectReason::ALL {
            let n = sp.rejected.get(&r).copied().unwrap_or(0);
            w.counter(
                name,
                help,
                &l.with(&[("space", &sp.space), ("reason", r.as_str())]),
                n,
            )?;
        }
    }
    Ok(())
}

/// Families with samples per shard: queues, counters, placement, then the degradations.
fn write_shards(
    m: &EngineMetrics,
    shards: &[ShardLabels],
    w: &mut PrometheusWriter,
) -> Result<(), MetricsError> {
    let each = || m.shards.iter().zip(shards);
    let (name, help) = (
        "locus_engine_queue_depth",
        "Tasks queued on the shard's node, by class.",
    );
    w.family(name, help, MetricKind::Gauge)?;
    for (s, l) in each() {
        for (class, d) in ["high", "normal", "low"].iter().zip(s.queue_depth) {
            w.gauge(name, help, &l.with(&[("class", class)]), d as f64)?;
        }
    }
    let shard_counter =
        |w: &mut PrometheusWriter, name: &str, help: &str, value: fn(&ShardSnapshot) -> u64| {
            w.family(name, help, MetricKind::Counter)?;
            each().try_for_each(|(s, l)| w.counter(name, help, &l.with(&[]), value(s)))
        };
    shard_counter(
        w,
        "locus_engine_absorbed_total",
        "Episodes the index absorbed.",
        |s| s.absorbed_total,
    )?;
    shard_counter(
        w,
        "locus_engine_absorb_yields_total",
        "Absorption tasks that stopped early because a recall waited.",
        |s| s.absorb_yields_total,
    )?;
    let (name, help) = (
        "locus_engine_messages_total",
        "Messages the shard's workers received (from the caller or another shard), by kind.",
    );
    w.family(name, help, MetricKind::Counter)?;
    for (s, l) in each() {
        for (kind, n) in &s.messages {
            w.counter(name, help, &l.with(&[("kind", kind.as_str())]), *n)?;
        }
    }
    shard_counter(
        w,
        "locus_engine_edges_lost_total",
        "Association edges lost because the shard refused their message.",
        |s| s.edges_lost,
    )?;
    shard_counter(
        w,
        "locus_engine_tasks_off_node_total",
        "Tasks of the shard run by a worker of another node (stolen across nodes).",
        |s| s.tasks_off_node,
    )?;
    let (name, help) = (
        "locus_engine_placement_home_ratio",
        "Share of the shard's present pages on its memory node (NaN if unknown).",
    );
    w.family(name, help, MetricKind::Gauge)?;
    for (s, l) in each() {
        let v = s.placement_home_fraction.unwrap_or(f64::NAN);
        w.gauge(name, help, &l.with(&[]), v)?;
    }
    let (name, help) = (
        "locus_engine_degradations",
        "Degradations of the running engine (value 1 each).",
    );
    w.family(name, help, MetricKind::Gauge)?;
    for d in &m.degradations {
        w.gauge(name, help, &[("what", d)], 1.0)?;
    }
    Ok(())
}

/// One latency histogram sample set, with [`BUCKETS_S`].
fn write_histogram(
    w: &mut PrometheusWriter,
    name: &str,
    help: &str,
    labels: &[(&str, &str)],
    h: &OpSnapshot,
) -> Result<(), MetricsError> {
    let buckets = BUCKETS_S.iter().copied().zip(h.buckets.iter().copied());
    let count = h.buckets.last().copied().unwrap_or(0);
    w.histogram(name, help, labels, buckets, h.sum_s, count)
}

/// The latency histograms: per shard, then the engine's.
fn write_histograms(
    m: &EngineMetrics,
    shards: &[ShardLabels],
    w: &mut PrometheusWriter,
) -> Result<(), MetricsError> {
    type Op = fn(&ShardSnapshot) -> &OpSnapshot;
    let per_shard: [(&str, &str, Op); 3] = [
        (
            "locus_engine_observe_duration_seconds",
            "Observe latency, caller side.",
            |s| &s.observe,
        ),
        (
            "locus_engine_shard_search_duration_seconds",
            "One shard's search, on its worker.",
            |s| &s.search,
        ),
        (
            "locus_engine_shard_search_queued_seconds",
            "Time one shard's search task waited in a queue before a worker took it.",
            |s| &s.search_queued,
        ),
    ];
    for (name, help, op) in per_shard {
        w.family(name, help, MetricKind::Histogram)?;
        for (s, l) in m.shards.iter().zip(shards) {
            write_histogram(w, name, help, &l.with(&[]), op(s))?;
        }
    }
    write_histogram(
        w,
        "locus_engine_recall_duration_seconds",
        "Recall latency, caller side.",
        &[],
        &m.recall,
    )?;
    write_histogram(
        w,
        "locus_engine_complete_duration_seconds",
        "Completion latency, caller side.",
        &[],
        &m.complete,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_stripe_never_blocks_a_recorder() {
        let r = OpRecorder::default();
        let _scrape = r.hold(0);
        for _ in 0..1000 {
            r.record(Duration::from_micros(3));
        }
        assert_eq!(r.dropped.get(), 0);
        drop(_scrape);
        let s = r.snapshot();
        assert_eq!(s.quantiles.count, 1000);
        assert_eq!(*s.buckets.last().unwrap(), 1000);
        assert_eq!(s.buckets[0], 1000); // 3 µs is in the first bucket (≤ 10 µs)
    }

    /// A snapshot of two shards, one with an odd space name and a degradation.
    fn sample_snapshot() -> EngineMetrics {
        let op = |us: &[u64]| {
            let r = OpRecorder::default();
            for &u in us {
                r.record(Duration::from_micros(u));
            }
            r.snapshot()
        };
        let shard = |i: usize, home: Option<f64>| ShardSnapshot {
            shard: i,
            node: i as u32,
            memory_node: i as u32,
            workers: 2,
            queue_depth: [i, 2, 3],
            absorbed_total: 10 + i as u64,
            absorb_yields_total: 1,
            edges: 4,
            messages: MessageKind::ALL.iter().map(|&k| (k, k as u64)).collect(),
            edges_lost: 0,
            tasks_off_node: 7,
            observe: op(&[3, 40, 9000]),
            search: op(&[]),
            search_queued: op(&[120]),
            spaces: vec![SpaceShardMetrics {
                space: if i == 0 {
                    "default".into()
                } else {
                    "a\"b\\c\nd".into()
                },
                episodes: 5,
                index_lag_episodes: 1,
                index_lag_seconds: 0.25,
                segments: 2,
                accepted: 6,
                rejected: [(RejectReason::Quota, 2)].into_iter().collect(),
            }],
            placement_home_fraction: home,
        };
        EngineMetrics {
            uptime_s: 1.5,
            kernels: "avx2".into(),
            shards: vec![shard(0, Some(0.75)), shard(1, None)],
            recall: op(&[50, 60]),
            complete: op(&[]),
            recalls_partial: 3,
            degradations: vec!["one node".into()],
        }
    }

    #[test]
    fn every_family_is_written_with_escaped_labels() {
        let m = sample_snapshot();
        let mut w = PrometheusWriter::new();
        write_families(&m, &mut w).unwrap();
        let text = w.finish();
        assert_eq!(text, render(&m));
        for line in [
            "# TYPE locus_engine_uptime_seconds gauge",
            "locus_engine_kernels_info{kernels=\"avx2\"} 1",
            "locus_engine_episodes{shard=\"1\",node=\"1\",space=\"a\\\"b\\\\c\\nd\"} 5",
            "locus_engine_observations_rejected_total{shard=\"0\",node=\"0\",space=\"default\",reason=\"quota\"} 2",
            "locus_engine_queue_depth{shard=\"0\",node=\"0\",class=\"high\"} 0",
            "locus_engine_messages_total{shard=\"1\",node=\"1\",kind=\"hop\"} 3",
            "locus_engine_placement_home_ratio{shard=\"0\",node=\"0\"} 0.75",
            "locus_engine_placement_home_ratio{shard=\"1\",node=\"1\"} NaN",
            "locus_engine_degradations{what=\"one node\"} 1",
            "locus_engine_observe_duration_seconds_bucket{shard=\"0\",node=\"0\",le=\"0.00001\"} 1",
            "locus_engine_observe_duration_seconds_bucket{shard=\"0\",node=\"0\",le=\"+Inf\"} 3",
            "locus_engine_recall_duration_seconds_count 2",
            "locus_engine_complete_duration_seconds_bucket{le=\"+Inf\"} 0",
            "locus_engine_recalls_partial_total 3",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // Every family is typed once, even one without samples.
        let m = EngineMetrics {
            degradations: vec![],
            ..m
        };
        let text = render(&m);
        assert_eq!(
            text.matches("# TYPE locus_engine_degradations gauge\n").count(),
            1
        );
        assert!(!text.contains("locus_engine_degradations{"));
    }
}

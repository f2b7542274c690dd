//! The open-loop driver.
//!
//! Client threads share one [`Schedule`]: thread `t` of `T` issues ops `t, t + T, t + 2T, …` at
//! their intended start times. Latency is measured **from the intended start**, so when the
//! target (or the driver) stalls, every op the stall delayed carries the delay — there is no
//! coordinated omission. Service time (from the actual start) is recorded beside it. The
//! driver's own lateness — how long after both the intended start and the previous op's end an
//! op really began — is recorded too and reported as a late driver when it grows.
//!
//! A closed loop (`arrival.kind = "closed"`) runs `clients` threads issuing back to back;
//! there latency equals service time.
//!
//! Ops whose intended start falls in the warmup are executed but not recorded. When the target
//! falls so far behind that the schedule cannot be served by `end + drain`, the remaining ops are
//! not issued: each is counted as the error `not_issued` and as `driver.not_issued`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[cfg(feature = "progress")]
use indicatif::{ProgressBar, ProgressStyle};

use super::analysis::analyse;
use super::error::LoadtestError;
use super::live::LiveStats;
use super::procstat;
use super::recorder::{Hist, ThreadRecord, Window};
use super::result::{
    self, DriverReport, OpSecond, OpSummary, Percentiles, ProcessReport, RunResult, SCHEMA, SecondPoint,
};
use super::scenario::{Arrival, OpKind, Scenario};
use super::schedule::Schedule;
use super::target::{LoadTarget, Outcome};
use super::workload::{Op, Workload};

/// How progress is shown while a run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A bar on a terminal, plain lines otherwise.
    Auto,
    /// Plain periodic lines on stderr.
    Plain,
    /// Nothing.
    Quiet,
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Progress display.
    pub progress: Progress,
    /// Live figures (shared with a metrics endpoint).
    pub live: Arc<LiveStats>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            progress: Progress::Quiet,
            live: Arc::new(LiveStats::new()),
        }
    }
}

/// The driver's lag past which it is reported late (1 ms at P99).
const LATE_P99_NS: u64 = 1_000_000;
/// Share of the measured time (per thread) the driver may itself be late before it is reported.
const LATE_SHARE: f64 = 0.01;
/// How often (at most) a busy client thread publishes its count to [`LiveStats`] and sends its
/// current window to the collector (100 ms); an idle one publishes before it sleeps.
pub const PUBLISH_NS: u64 = 100_000_000;

#[inline]
fn execute(target: &dyn LoadTarget, op: &Op, embedding: &[f32]) -> Outcome {
    match op.kind {
        OpKind::Observe => target.observe(op, embedding),
        OpKind::Recall => target.recall(op, embedding),
        OpKind::RecallSpread => target.recall_spread(op, embedding),
        OpKind::Complete => target.complete(op, embedding),
        OpKind::Associate => target.associate(op),
    }
}

/// The deadline past which scheduled ops are no longer issued: end + max(5 s, duration / 4).
fn drain_ns(s: &Scenario) -> u64 {
    (s.duration / 4).max(Duration::from_secs(5)).as_nanos() as u64
}

/// Everything a client thread needs.
struct Client<'a> {
    id: usize,
    clients: usize,
    base: Instant,
    warmup_ns: u64,
    end_ns: u64,
    drain_ns: u64,
    scenario: &'a Scenario,
    workload: &'a Workload,
    target: &'a dyn LoadTarget,
    live: &'a LiveStats,
    windows: mpsc::Sender<Window>,
}

/// What a client has not published yet: its op count and its current window.
#[derive(Default)]
struct Unpublished {
    ops: u64,
    window: Window,
    /// When it last published (ns since the run's base).
    at: u64,
}

impl Client<'_> {
    #[inline]
    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Records a measured op (its intended start, actual start and end) and rolls its window.
    #[inline]
    fn record(
        &self,
        rec: &mut ThreadRecord,
        un: &mut Unpublished,
        kind: OpKind,
        outcome: Outcome,
        [intended, actual, end]: [u64; 3],
    ) {
        let latency = end.saturating_sub(intended);
        rec.record(kind, outcome, latency, end.saturating_sub(actual));
        let second = end.saturating_sub(self.warmup_ns) / 1_000_000_000;
        if second != un.window.second {
            self.send_window(un, second);
        }
        un.window.record(kind, outcome == Outcome::Ok, latency);
    }

    /// Sends the current window (if it holds ops) and starts an empty one of `second`.
    fn send_window(&self, un: &mut Unpublished, second: u64) {
        let done = std::mem::replace(&mut un.window, Window::of_second(second));
        if done.ops > 0 {
            let _ = self.windows.send(done);
        }
    }

    /// Publishes the count and the window when [`PUBLISH_NS`] has passed since the last time
    /// (or at once with `force`, before a sleep).
    #[inline]
    fn publish(&self, un: &mut Unpublished, now: u64, force: bool) {
        if un.ops == 0 && un.window.ops == 0 {
            un.at = now;
            return;
        }
        if force || now.saturating_sub(un.at) >= PUBLISH_NS {
            self.live.add_ops(std::mem::take(&mut un.ops));
            let second = un.window.second;
            self.send_window(un, second);
            un.at = now;
        }
    }

    fn run_open(&self) -> ThreadRecord {
        let mut rec = ThreadRecord::default();
        let mut un = Unpublished::default();
        let mut embedding = Vec::new();
        let needs_embeddings = self.target.needs_embeddings();
        let deadline = self.end_ns + self.drain_ns;
        let mut prev_end = 0u64;
        let schedule = Schedule::new(&self.scenario.arrival, self.scenario.seed, self.end_ns);
        for (j, intended) in schedule.enumerate().skip(self.id).step_by(self.clients) {
            let op = self.workload.op(j as u64);
            if needs_embeddings {
                self.workload.op_embedding(j as u64, &mut embedding);
            }
            let mut now = self.now();
            if now > deadline {
                rec.not_issued += 1;
                if intended >= self.warmup_ns {
                    *rec.ops[op.kind.index()]
                        .errors
                        .entry("not_issued".to_string())
                        .or_default() += 1;
                }
                continue;
            }
            if intended > now + 500_000 {
                // About to sleep: what is done is published first, so counts stay true at low rates.
                self.publish(&mut un, now, true);
            }
            while now < intended {
                let left = intended - now;
                if left > 500_000 {
                    // Sleep short of the target and spin the rest: sleeps overshoot by tens of µs.
                    std::thread::sleep(Duration::from_nanos(left - 400_000));
                } else {
                    std::hint::spin_loop();
                }
                now = self.now();
            }
            let actual = now;
            let outcome = execute(self.target, &op, &embedding);
            let end = self.now();
            if intended >= self.warmup_ns {
                let own = actual.saturating_sub(intended.max(prev_end));
                rec.own_lag.record(own);
                rec.own_lag_sum_ns += own;
                rec.start_lag.record(actual.saturating_sub(intended));
                self.record(&mut rec, &mut un, op.kind, outcome, [intended, actual, end]);
            }
            prev_end = end;
            un.ops += 1;
            self.publish(&mut un, end, false);
        }
        self.publish(&mut un, self.now(), true);
        rec
    }

    fn run_closed(&self) -> ThreadRecord {
        let mut rec = ThreadRecord::default();
        let mut un = Unpublished::default();
        let mut embedding = Vec::new();
        let needs_embeddings = self.target.needs_embeddings();
        let mut j = self.id as u64;
        loop {
            let op = self.workload.op(j);
            if needs_embeddings {
                self.workload.op_embedding(j, &mut embedding);
            }
            let actual = self.now();
            if actual >= self.end_ns {
                break;
            }
            let outcome = execute(self.target, &op, &embedding);
            let end = self.now();
            if actual >= self.warmup_ns {
                rec.own_lag.record(0);
                rec.start_lag.record(0);
                self.record(&mut rec, &mut un, op.kind, outcome, [actual, actual, end]);
            }
            j += self.clients as u64;
            un.ops += 1;
            self.publish(&mut un, end, false);
        }
        self.publish(&mut un, self.now(), true);
        rec
    }
}

/// One progress message: the phase, the ops completed per second over the last tick, and the
/// P99 of the ops measured in it (`p99 –` when none was: in the warmup, or before the first).
pub fn progress_message(phase: &str, ops_s: u64, p99_ns: Option<u64>) -> String {
    match p99_ns {
        Some(p) => format!("{phase} {ops_s} ops/s, p99 {:.1} µs", p as f64 / 1000.0),
        None => format!("{phase} {ops_s} ops/s, p99 –"),
    }
}

/// Shows progress: a bar on a terminal (feature `progress`), plain lines elsewhere.
struct Display {
    #[cfg(feature = "progress")]
    bar: Option<ProgressBar>,
    plain: bool,
    every: Duration,
    last_line: Instant,
}

impl Display {
    fn new(mode: Progress, total: Duration) -> Self {
        let tty = std::io::stderr().is_terminal() && cfg!(feature = "progress");
        #[cfg(feature = "progress")]
        let bar = if mode == Progress::Auto && tty {
            let bar = ProgressBar::new(total.as_millis() as u64);
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {percent:>3}% {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            Some(bar)
        } else {
            None
        };
        Display {
            #[cfg(feature = "progress")]
            bar,
            plain: mode == Progress::Plain || (mode == Progress::Auto && !tty),
            every: if total > Duration::from_secs(60) {
                Duration::from_secs(10)
            } else {
                Duration::from_secs(2)
            },
            last_line: Instant::now(),
        }
    }

    fn update(&mut self, elapsed: Duration, phase: &str, ops_s: u64, p99_ns: Option<u64>) {
        let msg = progress_message(phase, ops_s, p99_ns);
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.set_position(elapsed.as_millis() as u64);
            bar.set_message(msg);
            return;
        }
        if self.plain && self.last_line.elapsed() >= self.every {
            self.last_line = Instant::now();
            eprintln!("[{:>7.1}s] {msg}", elapsed.as_secs_f64());
        }
    }

    fn finish(&self) {
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs a scenario against a target and returns its result (validation included).
///
/// # Errors
/// [`LoadtestError::Target`] if preload fails, [`LoadtestError::Driver`] if a client thread
/// cannot start or panics.
// tidy: long-fn — the open-loop driver: its timing loop reads best in one piece
pub fn run(
    scenario: &Scenario,
    target: &dyn LoadTarget,
    opts: &RunOptions,
) -> Result<RunResult, LoadtestError> {
    let workload = Workload::new(scenario);
    let rss_start = procstat::sample();
    let t_preload = Instant::now();
    if opts.progress != Progress::Quiet && scenario.data.preload > 0 {
        eprintln!(
            "preloading {} episodes ({} dims) into {} …",
            scenario.data.preload,
            scenario.data.dimension,
            target.name()
        );
    }
    target
        .preload(&workload, &|_| {})
        .map_err(|message| LoadtestError::Target {
            target: target.name(),
            message,
        })?;
    let preload_s = t_preload.elapsed().as_secs_f64();
    let after_preload = procstat::sample();

    let (clients, closed) = match scenario.arrival {
        Arrival::Closed { clients } => (clients, true),
        _ => (scenario.threads, false),
    };
    let warmup_ns = scenario.warmup.as_nanos() as u64;
    let end_ns = warmup_ns + scenario.duration.as_nanos() as u64;
    let (tx, rx) = mpsc::channel::<Window>();
    let finished = AtomicUsize::new(0);
    let live = &*opts.live;
    live.set_running(true);
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + scenario.warmup.as_secs();
    let base = Instant::now();
    let mut windows: BTreeMap<u64, Window> = BTreeMap::new();
    let mut rss_by_second: BTreeMap<u64, u64> = BTreeMap::new();
    let mut peak_rss = after_preload.map(|s| s.rss_bytes).unwrap_or(0);
    let mut display = Display::new(opts.progress, Duration::from_nanos(end_ns));

    let records: Vec<ThreadRecord> = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(clients);
        for id in 0..clients {
            let client = Client {
                id,
                clients,
                base,
                warmup_ns,
                end_ns,
                drain_ns: drain_ns(scenario),
                scenario,
                workload: &workload,
                target,
                live,
                windows: tx.clone(),
            };
            let finished = &finished;
            let h = std::thread::Builder::new()
                .name(format!("loadtest-{id}"))
                .spawn_scoped(scope, move || {
                    let r = if closed {
                        client.run_closed()
                    } else {
                        client.run_open()
                    };
                    finished.fetch_add(1, Ordering::Release);
                    r
                })
                .map_err(|e| LoadtestError::Driver(format!("spawn client {id}: {e}")));
            handles.push(h);
        }
        drop(tx);
        // The collector: gathers windows, samples RSS, shows progress.
        let mut last_ops = live.ops();
        let mut last_tick = Instant::now();
        // The latencies measured since the last tick (what the progress line's P99 is of).
        let mut tick = Hist::new();
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(w) => {
                    tick.merge(&w.latency);
                    merge_window(&mut windows, w);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if last_tick.elapsed() >= Duration::from_secs(1) {
                let elapsed = base.elapsed();
                let ops = live.ops();
                let rate = ((ops - last_ops) as f64 / last_tick.elapsed().as_secs_f64()) as u64;
                last_ops = ops;
                last_tick = Instant::now();
                let p99 = (!tick.is_empty()).then(|| tick.quantile(0.99));
                tick = Hist::new();
                live.set_last_second(rate, p99.unwrap_or(0));
                if let Some(s) = procstat::sample() {
                    peak_rss = peak_rss.max(s.rss_bytes);
                    let t = elapsed.as_nanos() as u64;
                    if t >= warmup_ns {
                        rss_by_second.insert((t - warmup_ns) / 1_000_000_000, s.rss_bytes);
                    }
                }
                let phase = if (elapsed.as_nanos() as u64) < warmup_ns {
                    "warmup"
                } else {
                    "run"
                };
                display.update(elapsed, phase, rate, p99);
            }
            if finished.load(Ordering::Acquire) == clients {
                while let Ok(w) = rx.try_recv() {
                    merge_window(&mut windows, w);
                }
            }
        }
        handles
            .into_iter()
            .map(|h| {
                h?.join()
                    .map_err(|_| LoadtestError::Driver("a client thread panicked".to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    display.finish();
    live.set_running(false);
    let wall_s = base.elapsed().as_secs_f64();
    let end_sample = procstat::sample();
    if let Some(s) = end_sample {
        let second = (base.elapsed().as_nanos() as u64).saturating_sub(warmup_ns) / 1_000_000_000;
        rss_by_second.entry(second).or_insert(s.rss_bytes);
    }

    let mut all = ThreadRecord::default();
    for r in &records {
        all.merge(r);
    }
    let measured_s = scenario.duration.as_secs_f64();
    let overall_rec = all.overall();
    let overall = OpSummary::of(&overall_rec, measured_s);
    let ops: BTreeMap<String, OpSummary> = OpKind::ALL
        .iter()
        .filter(|k| all.ops[k.index()].count() > 0)
        .map(|k| {
            (
                k.name().to_string(),
                OpSummary::of(&all.ops[k.index()], measured_s),
            )
        })
        .collect();
    let dropped = all
        .ops
        .iter()
        .map(|r| r.latency.dropped + r.service.dropped)
        .sum::<u64>()
        + all.own_lag.dropped;
    let offered = if closed {
        None
    } else {
        let n = Schedule::new(&scenario.arrival, scenario.seed, end_ns)
            .filter(|&t| t >= warmup_ns)
            .count();
        Some(n as f64 / measured_s)
    };
    let own_lag_share = all.own_lag_sum_ns as f64 / (measured_s * 1e9 * clients as f64);
    let driver = DriverReport {
        threads: clients,
        offered_ops_s: offered,
        own_lag_us: Percentiles::of(&all.own_lag),
        own_lag_total_ms: all.own_lag_sum_ns as f64 / 1e6,
        start_lag_us: Percentiles::of(&all.start_lag),
        late: all.own_lag.quantile(0.99) > LATE_P99_NS || own_lag_share > LATE_SHARE || all.not_issued > 0,
        not_issued: all.not_issued,
        dropped_samples: dropped,
    };
    let whole_seconds = scenario.duration.as_secs();
    let timeseries = timeseries(&windows, &rss_by_second, whole_seconds);
    let op_timeseries = OpKind::ALL
        .iter()
        .filter(|k| ops.contains_key(k.name()))
        .map(|k| (k.name().to_string(), op_timeseries(&windows, *k, whole_seconds)))
        .collect();
    let op_spectrum = OpKind::ALL
        .iter()
        .filter(|k| ops.contains_key(k.name()))
        .map(|k| {
            (
                k.name().to_string(),
                result::spectrum(&all.ops[k.index()].latency),
            )
        })
        .collect();
    let analysis = analyse(scenario, &timeseries);
    let validation = result::validate(&scenario.validation, &overall, &ops);
    Ok(RunResult {
        schema: SCHEMA.to_string(),
        scenario: serde_json::to_value(scenario).unwrap_or(serde_json::Value::Null),
        name: scenario.name.clone(),
        target: target.name(),
        started_unix_s,
        preload_s,
        measured_s,
        spectrum: result::spectrum(&overall_rec.latency),
        overall,
        ops,
        driver,
        process: ProcessReport::from_samples(rss_start, after_preload, end_sample, peak_rss, wall_s),
        timeseries,
        target_metrics: target.metrics_snapshot(),
        validation,
        analysis,
        op_timeseries,
        op_spectrum,
        repeats: Vec::new(),
    })
}

fn merge_window(windows: &mut BTreeMap<u64, Window>, w: Window) {
    windows
        .entry(w.second)
        .or_insert_with(|| Window::of_second(w.second))
        .merge(&w);
}

/// The per-second series; seconds from `whole_seconds` on are marked partial.
fn timeseries(
    windows: &BTreeMap<u64, Window>,
    rss: &BTreeMap<u64, u64>,
    whole_seconds: u64,
) -> Vec<SecondPoint> {
    let last = windows
        .keys()
        .next_back()
        .copied()
        .max(rss.keys().next_back().copied())
        .unwrap_or(0);
    let empty = Window::default();
    let mut last_rss = 0;
    (0..=last)
        .map(|t| {
            let w = windows.get(&t).unwrap_or(&empty);
            if let Some(&r) = rss.get(&t) {
                last_rss = r;
            }
            SecondPoint {
                t_s: t,
                ops: w.ops,
                failed: w.failed,
                p50_us: w.latency.quantile(0.5) as f64 / 1000.0,
                p99_us: w.latency.quantile(0.99) as f64 / 1000.0,
                rss_bytes: last_rss,
                partial: t >= whole_seconds,
            }
        })
        .collect()
}

/// One op kind's per-second series, over the seconds of the overall one.
fn op_timeseries(windows: &BTreeMap<u64, Window>, kind: OpKind, whole_seconds: u64) -> Vec<OpSecond> {
    let last = windows.keys().next_back().copied().unwrap_or(0);
    (0..=last)
        .map(|t| {
            let w = windows.get(&t).map(|w| &w.by_op[kind.index()]);
            let q = |p: f64| w.map_or(0.0, |w| w.latency.quantile(p) as f64 / 1000.0);
            OpSecond {
                t_s: t,
                ops: w.map_or(0, |w| w.ops),
                p50_us: q(0.5),
                p99_us: q(0.99),
                partial: t >= whole_seconds,
            }
        })
        .collect()
}

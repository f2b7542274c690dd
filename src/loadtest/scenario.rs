//! Scenarios: what load to offer, read from TOML.
//!
//! A scenario names its run, its seed, how long to warm up and to measure, how operations
//! arrive ([`Arrival`]), in what mix ([`OpWeights`]), over what data ([`DataSpec`]), with what
//! engine settings ([`EngineOverrides`]) and what it must achieve ([`Validation`]). The commented
//! reference is `scenarios/example.toml`; the embedded default is [`DEFAULT_SCENARIO`].
//!
//! Reading is strict: an unknown key, a wrong type or an impossible value is a
//! [`LoadtestError::Scenario`] naming the file, the line and the field.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::LoadtestError;

/// The scenario `locus loadtest` runs when given none (`scenarios/default.toml`, compiled in).
pub const DEFAULT_SCENARIO: &str = include_str!("../../scenarios/default.toml");

/// Largest accepted `data.preload` (episodes).
pub const MAX_PRELOAD: u64 = 100_000_000;
/// Largest accepted `data.dimension`.
pub const MAX_DIMENSION: usize = 4096;
/// Largest accepted `data.clusters × data.dimension` (floats held for the cluster centres).
pub const MAX_CENTRE_FLOATS: usize = 1 << 26;
/// Largest accepted `data.spaces`.
pub const MAX_SPACES: u32 = 4096;
/// Largest accepted number of client threads or closed-loop clients.
pub const MAX_CLIENTS: usize = 1024;
/// Largest accepted rate (operations per second).
pub const MAX_RATE: f64 = 1e9;
/// Longest accepted `warmup + duration` (30 days).
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Largest accepted scenario file (bytes); a scenario is a few hundred bytes of TOML, so
/// anything bigger is not one (a device, a log) and is refused before it is read.
pub const MAX_SCENARIO_BYTES: u64 = 1 << 20;
/// Largest accepted `engine.shards` (the engine's own bound).
pub const MAX_SHARDS: usize = 4096;
/// Largest accepted `engine.ef_search` and `engine.ef_construction`: a walk keeps `ef`
/// candidates per query, and past this breadth it is an exhaustive scan at great cost.
pub const MAX_EF: usize = 100_000;
/// Accepted `engine.m` (HNSW links per node): the index's own range.
pub const M_RANGE: std::ops::RangeInclusive<usize> = 2..=255;
/// Largest accepted `engine.max_queue_depth` (operations queued per shard and class).
pub const MAX_QUEUE_DEPTH: usize = 1 << 24;

/// A validated scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// Run name (shown in reports, compared by `locus compare`).
    pub name: String,
    /// Where it was read from (a path, or `<embedded default>`).
    pub source: String,
    /// Seed of the op sequence and the data (the sequence is a pure function of it).
    pub seed: u64,
    /// Time run before measuring (its ops are executed but not counted).
    #[serde(serialize_with = "ser_secs")]
    pub warmup: Duration,
    /// Measured time.
    #[serde(serialize_with = "ser_secs")]
    pub duration: Duration,
    /// Client threads issuing an open-loop schedule (closed loop uses `arrival.clients`).
    pub threads: usize,
    /// How operations arrive.
    pub arrival: Arrival,
    /// Operation mix.
    pub operations: OpWeights,
    /// Data preloaded and generated.
    pub data: DataSpec,
    /// Engine settings for this run.
    pub engine: EngineOverrides,
    /// Targets the run must meet (exit 1 otherwise).
    pub validation: Validation,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn ser_opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// How operations arrive. Rates are operations per second over all client threads.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Arrival {
    /// Evenly spaced at `rate`.
    Constant {
        /// Operations per second.
        rate: f64,
    },
    /// Exponential gaps with mean `1 / rate` (a Poisson process).
    Poisson {
        /// Mean operations per second.
        rate: f64,
    },
    /// `base` rate, with `peak` for the first `duty` fraction of every `period`.
    Burst {
        /// Rate outside the bursts.
        base: f64,
        /// Rate inside the bursts.
        peak: f64,
        /// Burst period.
        #[serde(serialize_with = "ser_secs")]
        period: Duration,
        /// Fraction of each period at the peak rate (0 < duty < 1).
        duty: f64,
    },
    /// Starts at `from`, adds `step` every `step_duration`, never past `to`.
    Ramp {
        /// First rate.
        from: f64,
        /// Last rate.
        to: f64,
        /// Increase per step.
        step: f64,
        /// Time spent at each rate.
        #[serde(serialize_with = "ser_secs")]
        step_duration: Duration,
    },
    /// `clients` clients, each issuing its next op as soon as the previous returns.
    Closed {
        /// Number of clients (threads).
        clients: usize,
    },
}

impl Arrival {
    /// The rate at `t` since the schedule started (`None` for a closed loop).
    pub fn rate_at(&self, t: Duration) -> Option<f64> {
        match *self {
            Arrival::Constant { rate } | Arrival::Poisson { rate } => Some(rate),
            Arrival::Burst {
                base,
                peak,
                period,
                duty,
            } => {
                let phase = t.as_secs_f64() % period.as_secs_f64();
                Some(if phase < duty * period.as_secs_f64() {
                    peak
                } else {
                    base
                })
            }
            Arrival::Ramp {
                from,
                to,
                step,
                step_duration,
            } => {
                let steps = (t.as_secs_f64() / step_duration.as_secs_f64()).floor();
                Some((from + step * steps).min(to))
            }
            Arrival::Closed { .. } => None,
        }
    }

    /// A one-line description (`poisson 1000/s`).
    pub fn describe(&self) -> String {
        match self {
            Arrival::Constant { rate } => format!("constant {rate}/s"),
            Arrival::Poisson { rate } => format!("poisson {rate}/s"),
            Arrival::Burst {
                base,
                peak,
                period,
                duty,
            } => format!(
                "burst {base}/s, {peak}/s for {:.0}% of every {:?}",
                duty * 100.0,
                period
            ),
            Arrival::Ramp {
                from,
                to,
                step,
                step_duration,
            } => format!("ramp {from}/s to {to}/s by {step}/s every {step_duration:?}"),
            Arrival::Closed { clients } => format!("closed loop, {clients} clients"),
        }
    }
}

/// The five operations a load target serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// Store an episode.
    Observe,
    /// Nearest episodes to a cue.
    Recall,
    /// Recall whose hits seed a spreading activation.
    RecallSpread,
    /// Pattern completion from half of the dimensions.
    Complete,
    /// Link two existing episodes.
    Associate,
}

impl OpKind {
    /// Every kind, in report order.
    pub const ALL: [OpKind; 5] = [
        OpKind::Observe,
        OpKind::Recall,
        OpKind::RecallSpread,
        OpKind::Complete,
        OpKind::Associate,
    ];

    /// The name used in files and tables.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Observe => "observe",
            OpKind::Recall => "recall",
            OpKind::RecallSpread => "recall_spread",
            OpKind::Complete => "complete",
            OpKind::Associate => "associate",
        }
    }

    /// Position in [`OpKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Relative weights of the operations (any non-negative numbers, not all zero).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpWeights {
    /// Weight of `observe`.
    pub observe: f64,
    /// Weight of `recall`.
    pub recall: f64,
    /// Weight of `recall` with spreading.
    pub recall_spread: f64,
    /// Weight of `complete`.
    pub complete: f64,
    /// Weight of `associate`.
    pub associate: f64,
    /// Hits asked for by recall and complete.
    pub k: usize,
}

impl OpWeights {
    /// The weight of one kind.
    pub fn weight(&self, kind: OpKind) -> f64 {
        match kind {
            OpKind::Observe => self.observe,
            OpKind::Recall => self.recall,
            OpKind::RecallSpread => self.recall_spread,
            OpKind::Complete => self.complete,
            OpKind::Associate => self.associate,
        }
    }
}

/// How generated embeddings are spread over the cluster centres.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Each vector is a random centre plus noise.
    Clustered,
    /// Each vector is uniform on the unit sphere.
    Uniform,
    /// 90 % of vectors come from the first 1 % of the clusters (at least one), the rest as clustered.
    HotSpot,
}

/// The data: what is preloaded and what the ops carry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataSpec {
    /// Episodes stored before timing starts.
    pub preload: u64,
    /// Embedding dimension.
    pub dimension: usize,
    /// Cluster centres.
    pub clusters: usize,
    /// How vectors are drawn.
    pub distribution: Distribution,
    /// Spaces (tenants); ops are spread uniformly over them.
    pub spaces: u32,
}

/// Engine settings a scenario may override (absent = the engine's default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineOverrides {
    /// Number of shards.
    pub shards: Option<usize>,
    /// HNSW search breadth.
    pub ef_search: Option<usize>,
    /// HNSW build breadth.
    pub ef_construction: Option<usize>,
    /// HNSW links per node.
    pub m: Option<usize>,
    /// Spreading hops.
    pub spread_hops: Option<usize>,
    /// Admission limit on queued operations per shard.
    pub max_queue_depth: Option<usize>,
}

/// What a run must achieve; each target that is set and missed fails the run (exit 1).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Validation {
    /// Overall P99 latency ceiling.
    #[serde(serialize_with = "ser_opt_secs")]
    pub p99: Option<Duration>,
    /// Per-operation P99 ceilings, in seconds.
    pub p99_per_op: BTreeMap<OpKind, f64>,
    /// Lowest acceptable throughput (ops/s over the measured time).
    pub min_throughput: Option<f64>,
    /// Highest acceptable share of errors and rejections (0..=1).
    pub max_error_rate: Option<f64>,
}

// ---------------------------------------------------------------------------------------------
// The raw file shape (serde), then validation into `Scenario`.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    seed: Option<u64>,
    warmup: Option<RawDuration>,
    duration: RawDuration,
    threads: Option<usize>,
    arrival: RawArrival,
    operations: Option<RawOps>,
    data: Option<RawData>,
    engine: Option<EngineOverrides>,
    validation: Option<RawValidation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArrival {
    kind: String,
    rate: Option<f64>,
    base: Option<f64>,
    peak: Option<f64>,
    period: Option<RawDuration>,
    duty: Option<f64>,
    from: Option<f64>,
    to: Option<f64>,
    step: Option<f64>,
    step_duration: Option<RawDuration>,
    clients: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOps {
    observe: Option<f64>,
    recall: Option<f64>,
    recall_spread: Option<f64>,
    complete: Option<f64>,
    associate: Option<f64>,
    k: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    preload: Option<u64>,
    dimension: Option<usize>,
    clusters: Option<usize>,
    distribution: Option<Distribution>,
    spaces: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValidation {
    p99: Option<RawDuration>,
    p99_per_op: Option<BTreeMap<OpKind, RawDuration>>,
    min_throughput: Option<f64>,
    max_error_rate: Option<f64>,
}

/// A duration written as seconds (`1.5`) or with a unit (`"250ms"`, `"10s"`, `"5m"`, `"2h"`, `"800us"`).
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum RawDuration {
    Int(i64),
    Float(f64),
    Text(String),
}

/// Parses `"250ms"`-style text into a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (write e.g. 1.5, \"250ms\", \"10s\", \"2h\")"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (ns, us, ms, s, m, h)"
            ));
        }
    };
    secs(value * scale).ok_or_else(|| format!("`{text}` is not a finite non-negative duration"))
}

fn secs(v: f64) -> Option<Duration> {
    if v.is_finite() && v >= 0.0 && v <= MAX_DURATION.as_secs_f64() {
        Some(Duration::from_secs_f64(v))
    } else {
        None
    }
}

impl RawDuration {
    fn get(&self) -> Result<Duration, String> {
        match self {
            RawDuration::Int(i) => {
                secs(*i as f64).ok_or_else(|| format!("{i} s is not a duration between 0 and 30 days"))
            }
            RawDuration::Float(f) => {
                secs(*f).ok_or_else(|| format!("{f} s is not a duration between 0 and 30 days"))
            }
            RawDuration::Text(t) => parse_duration(t),
        }
    }
}

/// 1-based line of byte `offset` in `src`.
fn line_at(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The table header (`arrival`, `validation.p99_per_op`) in force at byte `offset`.
fn table_at(src: &str, offset: usize) -> String {
    let mut table = String::new();
    for line in src[..offset.min(src.len())].lines() {
        let l = line.trim();
        if l.starts_with('[') && !l.starts_with("[[") {
            if let Some(end) = l.find(']') {
                table = l[1..end].trim().to_string();
            }
        }
    }
    table
}

/// The key a TOML error's `span` concerns: the span itself when it covers a bare key, else the
/// key of the `key = value` line the span's value sits on (so an out-of-range value names its
/// field, not itself). `None` when neither is a key.
fn key_at(src: &str, span: std::ops::Range<usize>) -> Option<String> {
    let is_key = |k: &str| {
        !k.is_empty()
            && k.len() < 64
            && k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let start = span.start.min(src.len());
    let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
    let before = src.get(line_start..start).unwrap_or("");
    if let Some((k, _)) = before.split_once('=') {
        let k = k.trim().trim_matches('"');
        return is_key(k).then(|| k.to_string());
    }
    src.get(span).filter(|k| is_key(k)).map(str::to_string)
}

/// 1-based line where the dotted `field` is set (`arrival.rate`), or where its table starts.
pub fn line_of(src: &str, field: &str) -> Option<usize> {
    let (table, key) = match field.rfind('.') {
        Some(i) => (&field[..i], &field[i + 1..]),
        None => ("", field),
    };
    let mut current = String::new();
    let mut table_line = None;
    for (n, line) in src.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') {
            if let Some(end) = l.find(']') {
                current = l[1..end].trim().to_string();
                if current == table || current == field {
                    table_line.get_or_insert(n + 1);
                }
            }
            continue;
        }
        if current == table {
            if let Some((k, _)) = l.split_once('=') {
                if k.trim().trim_matches('"') == key {
                    return Some(n + 1);
                }
            }
        }
    }
    table_line
}

/// Reads one scenario file (a regular file of at most [`MAX_SCENARIO_BYTES`]).
///
/// # Errors
/// [`LoadtestError::Io`] if it cannot be read, [`LoadtestError::InputFile`] if it is not a
/// regular file or is too large, [`LoadtestError::Scenario`] if it is invalid.
pub fn load_file(path: &Path) -> Result<Scenario, LoadtestError> {
    let text = crate::bounded_read::read_regular_text(path, MAX_SCENARIO_BYTES).map_err(|e| match e {
        crate::bounded_read::BoundedReadError::Io(source) => LoadtestError::Io {
            path: path.to_path_buf(),
            source,
        },
        source => LoadtestError::InputFile {
            path: path.to_path_buf(),
            source,
        },
    })?;
    parse(&text, &path.display().to_string())
}

/// The embedded default scenario.
///
/// # Errors
/// Never in a correct build (a test parses it); the error type is shared with [`parse`].
pub fn default_scenario() -> Result<Scenario, LoadtestError> {
    parse(DEFAULT_SCENARIO, "<embedded default>")
}

/// Parses and validates scenario text; `file` names it in errors.
///
/// # Errors
/// [`LoadtestError::Scenario`] naming the file, line and field.
pub fn parse(src: &str, file: &str) -> Result<Scenario, LoadtestError> {
    let raw: RawScenario = toml::from_str(src).map_err(|e| {
        let (line, field) = match e.span() {
            Some(span) => {
                let table = table_at(src, span.start);
                let key = key_at(src, span.clone());
                let field = match (table.is_empty(), key) {
                    (true, Some(k)) => k,
                    (false, Some(k)) => format!("{table}.{k}"),
                    (false, None) => table,
                    (true, None) => "-".to_string(),
                };
                (Some(line_at(src, span.start)), field)
            }
            None => (None, "-".to_string()),
        };
        let message = e.message().trim();
        // serde names a missing field only in its message, with the whole table as the span:
        // name the field itself and say plainly what to do.
        if let Some(name) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            let table = e.span().map(|span| table_at(src, span.start)).unwrap_or_default();
            return LoadtestError::Scenario {
                file: file.to_string(),
                line: None,
                field: if table.is_empty() {
                    name.to_string()
                } else {
                    format!("{table}.{name}")
                },
                message: "this required field is missing: add it (see docs/loadtest.md)".into(),
            };
        }
        LoadtestError::Scenario {
            file: file.to_string(),
            line,
            field,
            message: message.to_string(),
        }
    })?;
    Validator { src, file }.scenario(raw)
}

struct Validator<'a> {
    src: &'a str,
    file: &'a str,
}

impl Validator<'_> {
    fn err(&self, field: &str, message: impl Into<String>) -> LoadtestError {
        LoadtestError::Scenario {
            file: self.file.to_string(),
            line: line_of(self.src, field),
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn duration(&self, field: &str, d: &RawDuration) -> Result<Duration, LoadtestError> {
        d.get().map_err(|m| self.err(field, m))
    }

    fn rate(&self, field: &str, v: Option<f64>) -> Result<f64, LoadtestError> {
        let v = v.ok_or_else(|| self.err(field, "missing (operations per second)"))?;
        if v.is_finite() && v > 0.0 && v <= MAX_RATE {
            Ok(v)
        } else {
            Err(self.err(field, format!("{v} is not a rate in (0, {MAX_RATE}] ops/s")))
        }
    }

    fn clients(&self, field: &str, v: usize) -> Result<usize, LoadtestError> {
        if (1..=MAX_CLIENTS).contains(&v) {
            Ok(v)
        } else {
            Err(self.err(field, format!("{v} is not in 1..={MAX_CLIENTS}")))
        }
    }

    fn scenario(&self, raw: RawScenario) -> Result<Scenario, LoadtestError> {
        if raw.name.trim().is_empty() {
            return Err(self.err("name", "must not be empty"));
        }
        let warmup = match &raw.warmup {
            Some(d) => self.duration("warmup", d)?,
            None => Duration::ZERO,
        };
        let duration = self.duration("duration", &raw.duration)?;
        if duration.is_zero() {
            return Err(self.err("duration", "must be longer than zero"));
        }
        if warmup + duration > MAX_DURATION {
            return Err(self.err("duration", "warmup + duration must be at most 30 days"));
        }
        let threads = self.clients("threads", raw.threads.unwrap_or(2))?;
        let arrival = self.arrival(&raw.arrival)?;
        let operations = self.ops(raw.operations)?;
        let data = self.data(raw.data)?;
        let validation = self.validation(raw.validation)?;
        let engine = self.engine(raw.engine.unwrap_or_default())?;
        Ok(Scenario {
            name: raw.name,
            source: self.file.to_string(),
            seed: raw.seed.unwrap_or(0xDEAD_BEEF),
            warmup,
            duration,
            threads,
            arrival,
            operations,
            data,
            engine,
            validation,
        })
    }

    fn arrival(&self, a: &RawArrival) -> Result<Arrival, LoadtestError> {
        let fields: [(&str, bool); 10] = [
            ("rate", a.rate.is_some()),
            ("base", a.base.is_some()),
            ("peak", a.peak.is_some()),
            ("period", a.period.is_some()),
            ("duty", a.duty.is_some()),
            ("from", a.from.is_some()),
            ("to", a.to.is_some()),
            ("step", a.step.is_some()),
            ("step_duration", a.step_duration.is_some()),
            ("clients", a.clients.is_some()),
        ];
        let allowed: &[&str] = match a.kind.as_str() {
            "constant" | "poisson" => &["rate"],
            "burst" => &["base", "peak", "period", "duty"],
            "ramp" => &["from", "to", "step", "step_duration"],
            "closed" => &["clients"],
            other => {
                return Err(self.err(
                    "arrival.kind",
                    format!("unknown kind `{other}` (constant, poisson, burst, ramp, closed)"),
                ));
            }
        };
        if let Some((name, _)) = fields.iter().find(|(name, set)| *set && !allowed.contains(name)) {
            return Err(self.err(
                &format!("arrival.{name}"),
                format!(
                    "does not apply to kind `{}` (it takes: {})",
                    a.kind,
                    allowed.join(", ")
                ),
            ));
        }
        let need_dur = |field: &str, d: &Option<RawDuration>| -> Result<Duration, LoadtestError> {
            let d = d
                .as_ref()
                .ok_or_else(|| self.err(field, "missing (a duration)"))?;
            let d = self.duration(field, d)?;
            if d.is_zero() {
                Err(self.err(field, "must be longer than zero"))
            } else {
                Ok(d)
            }
        };
        Ok(match a.kind.as_str() {
            "constant" => Arrival::Constant {
                rate: self.rate("arrival.rate", a.rate)?,
            },
            "poisson" => Arrival::Poisson {
                rate: self.rate("arrival.rate", a.rate)?,
            },
            "burst" => {
                let base = self.rate("arrival.base", a.base)?;
                let peak = self.rate("arrival.peak", a.peak)?;
                let period = need_dur("arrival.period", &a.period)?;
                let duty = a
                    .duty
                    .ok_or_else(|| self.err("arrival.duty", "missing (fraction of the period at peak)"))?;
                if !(duty > 0.0 && duty < 1.0) {
                    return Err(self.err("arrival.duty", format!("{duty} is not in (0, 1)")));
                }
                Arrival::Burst {
                    base,
                    peak,
                    period,
                    duty,
                }
            }
            "ramp" => {
                let from = self.rate("arrival.from", a.from)?;
                let to = self.rate("arrival.to", a.to)?;
                let step = self.rate("arrival.step", a.step)?;
                if to < from {
                    return Err(self.err("arrival.to", format!("{to} is below `from` ({from})")));
                }
                Arrival::Ramp {
                    from,
                    to,
                    step,
                    step_duration: need_dur("arrival.step_duration", &a.step_duration)?,
                }
            }
            _ => Arrival::Closed {
                clients: self.clients(
                    "arrival.clients",
                    a.clients
                        .ok_or_else(|| self.err("arrival.clients", "missing (number of clients)"))?,
                )?,
            },
        })
    }

    fn ops(&self, raw: Option<RawOps>) -> Result<OpWeights, LoadtestError> {
        // The default mix, unless the table sets at least one weight: a table that only sets
        // `k` keeps the default mix (rather than zeroing every weight it does not name).
        let default_mix = RawOps {
            observe: Some(0.4),
            recall: Some(0.4),
            recall_spread: Some(0.1),
            complete: Some(0.1),
            associate: Some(0.0),
            k: None,
        };
        let r = match raw {
            None => default_mix,
            Some(r)
                if r.observe.is_none()
                    && r.recall.is_none()
                    && r.recall_spread.is_none()
                    && r.complete.is_none()
                    && r.associate.is_none() =>
            {
                RawOps {
                    k: r.k,
                    ..default_mix
                }
            }
            Some(r) => r,
        };
        let mut w = OpWeights {
            observe: r.observe.unwrap_or(0.0),
            recall: r.recall.unwrap_or(0.0),
            recall_spread: r.recall_spread.unwrap_or(0.0),
            complete: r.complete.unwrap_or(0.0),
            associate: r.associate.unwrap_or(0.0),
            k: r.k.unwrap_or(10),
        };
        let mut total = 0.0;
        for kind in OpKind::ALL {
            let v = w.weight(kind);
            if !(v.is_finite() && v >= 0.0) {
                return Err(self.err(
                    &format!("operations.{}", kind.name()),
                    format!("{v} is not a non-negative weight"),
                ));
            }
            total += v;
        }
        if total <= 0.0 {
            return Err(self.err("operations", "every weight is zero: nothing to run"));
        }
        if !(1..=1000).contains(&w.k) {
            return Err(self.err("operations.k", format!("{} is not in 1..=1000", w.k)));
        }
        // Normalise so the weights read as shares.
        w.observe /= total;
        w.recall /= total;
        w.recall_spread /= total;
        w.complete /= total;
        w.associate /= total;
        Ok(w)
    }

    fn data(&self, raw: Option<RawData>) -> Result<DataSpec, LoadtestError> {
        let r = raw.unwrap_or(RawData {
            preload: None,
            dimension: None,
            clusters: None,
            distribution: None,
            spaces: None,
        });
        let d = DataSpec {
            preload: r.preload.unwrap_or(10_000),
            dimension: r.dimension.unwrap_or(128),
            clusters: r.clusters.unwrap_or(64),
            distribution: r.distribution.unwrap_or(Distribution::Clustered),
            spaces: r.spaces.unwrap_or(1),
        };
        if d.preload > MAX_PRELOAD {
            return Err(self.err("data.preload", format!("{} is over {MAX_PRELOAD}", d.preload)));
        }
        if !(1..=MAX_DIMENSION).contains(&d.dimension) {
            return Err(self.err(
                "data.dimension",
                format!("{} is not in 1..={MAX_DIMENSION}", d.dimension),
            ));
        }
        if d.clusters == 0 || d.clusters.saturating_mul(d.dimension) > MAX_CENTRE_FLOATS {
            return Err(self.err(
                "data.clusters",
                format!(
                    "{} is not in 1..={} for dimension {}",
                    d.clusters,
                    MAX_CENTRE_FLOATS / d.dimension,
                    d.dimension
                ),
            ));
        }
        if !(1..=MAX_SPACES).contains(&d.spaces) {
            return Err(self.err("data.spaces", format!("{} is not in 1..={MAX_SPACES}", d.spaces)));
        }
        Ok(d)
    }

    /// Checks the `[engine]` overrides against the engine's and the index's own ranges, so a
    /// bad one is refused with its line before any engine is opened.
    fn engine(&self, o: EngineOverrides) -> Result<EngineOverrides, LoadtestError> {
        let check = |field: &str, v: Option<usize>, range: std::ops::RangeInclusive<usize>| match v {
            Some(v) if !range.contains(&v) => Err(self.err(
                &format!("engine.{field}"),
                format!("{v} is not in {}..={}", range.start(), range.end()),
            )),
            _ => Ok(()),
        };
        check("shards", o.shards, 1..=MAX_SHARDS)?;
        check("ef_search", o.ef_search, 1..=MAX_EF)?;
        check("ef_construction", o.ef_construction, 1..=MAX_EF)?;
        check("m", o.m, M_RANGE)?;
        check("spread_hops", o.spread_hops, 1..=crate::spread::MAX_HOPS as usize)?;
        check("max_queue_depth", o.max_queue_depth, 1..=MAX_QUEUE_DEPTH)?;
        Ok(o)
    }

    fn validation(&self, raw: Option<RawValidation>) -> Result<Validation, LoadtestError> {
        let Some(r) = raw else {
            return Ok(Validation::default());
        };
        let mut v = Validation {
            p99: match &r.p99 {
                Some(d) => Some(self.duration("validation.p99", d)?),
                None => None,
            },
            ..Validation::default()
        };
        for (kind, d) in r.p99_per_op.unwrap_or_default() {
            let field = format!("validation.p99_per_op.{}", kind.name());
            v.p99_per_op
                .insert(kind, self.duration(&field, &d)?.as_secs_f64());
        }
        if let Some(t) = r.min_throughput {
            if !(t.is_finite() && t >= 0.0) {
                return Err(self.err("validation.min_throughput", format!("{t} is not a rate")));
            }
            v.min_throughput = Some(t);
        }
        if let Some(e) = r.max_error_rate {
            if !(0.0..=1.0).contains(&e) {
                return Err(self.err("validation.max_error_rate", format!("{e} is not in 0..=1")));
            }
            v.max_error_rate = Some(e);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_required_field_is_named_plainly() {
        let src = "name = \"x\"\n[arrival]\nkind = \"poisson\"\nrate = 10\n";
        let err = parse(src, "s.toml").unwrap_err().to_string();
        assert!(err.contains("field `duration`"), "{err}");
        assert!(err.contains("required field is missing"), "{err}");
        assert!(!err.contains("field `-`"), "{err}");
    }

    const OK: &str = "name = \"x\"\nduration = \"5s\"\n\n[arrival]\nkind = \"constant\"\nrate = 100\n";

    fn scenario_err(src: &str) -> (Option<usize>, String, String) {
        match parse(src, "s.toml") {
            Err(LoadtestError::Scenario {
                file,
                line,
                field,
                message,
            }) => {
                assert_eq!(file, "s.toml");
                (line, field, message)
            }
            other => panic!("expected a scenario error, got {other:?}"),
        }
    }

    #[test]
    fn embedded_default_parses() {
        let s = default_scenario().unwrap();
        assert_eq!(s.name, "default");
        assert_eq!(s.seed, 0xDEAD_BEEF);
    }

    #[test]
    fn defaults_fill_the_rest() {
        let s = parse(OK, "s.toml").unwrap();
        assert_eq!(s.seed, 0xDEAD_BEEF);
        assert_eq!(s.duration, Duration::from_secs(5));
        assert_eq!(s.warmup, Duration::ZERO);
        assert_eq!(s.arrival, Arrival::Constant { rate: 100.0 });
        assert!((s.operations.observe - 0.4).abs() < 1e-12);
    }

    #[test]
    fn unknown_key_names_line_and_field() {
        let (line, field, msg) = scenario_err(&format!("{OK}ratee = 5\n"));
        assert_eq!(line, Some(7));
        assert_eq!(field, "arrival.ratee");
        assert!(msg.contains("unknown field"), "{msg}");
        let (line, field, _) = scenario_err(&format!("{OK}[data]\ndimension = 8\nshape = 1\n"));
        assert_eq!((line, field.as_str()), (Some(9), "data.shape"));
    }

    #[test]
    fn wrong_type_names_line_and_field() {
        let (line, field, msg) = scenario_err(&format!("{OK}[data]\ndimension = \"big\"\n"));
        assert_eq!(line, Some(8));
        assert!(field.starts_with("data"), "{field}");
        assert!(msg.contains("invalid type"), "{msg}");
    }

    #[test]
    fn impossible_values_name_line_and_field() {
        let (line, field, _) = scenario_err(&OK.replace("rate = 100", "rate = -3"));
        assert_eq!((line, field.as_str()), (Some(6), "arrival.rate"));
        let (line, field, _) = scenario_err(&format!("{OK}[data]\ndimension = 0\n"));
        assert_eq!((line, field.as_str()), (Some(8), "data.dimension"));
        let (_, field, _) = scenario_err(&OK.replace("\"5s\"", "\"5 parsecs\""));
        assert_eq!(field, "duration");
        let (line, field, msg) = scenario_err(&OK.replace("rate = 100", "clients = 3"));
        assert_eq!((line, field.as_str()), (Some(6), "arrival.clients"));
        assert!(msg.contains("does not apply"), "{msg}");
        let (_, field, _) = scenario_err(&format!("{OK}[operations]\nobserve = 0\nrecall = 0\n"));
        assert_eq!(field, "operations");
        let (_, field, _) = scenario_err(&format!("{OK}[data]\npreload = 1000000000000\n"));
        assert_eq!(field, "data.preload");
        let (_, field, _) = scenario_err(&format!("{OK}[validation]\nmax_error_rate = 2\n"));
        assert_eq!(field, "validation.max_error_rate");
    }

    #[test]
    fn engine_overrides_are_checked_before_any_engine_opens() {
        for (key, value) in [
            ("m", "0"),
            ("m", "256"),
            ("ef_search", "4000000000"),
            ("ef_search", "0"),
            ("ef_construction", "0"),
            ("spread_hops", "0"),
            ("spread_hops", "65"),
            ("shards", "0"),
            ("max_queue_depth", "0"),
        ] {
            let (line, field, msg) = scenario_err(&format!("{OK}[engine]\n{key} = {value}\n"));
            assert_eq!(
                (line, field.as_str()),
                (Some(8), format!("engine.{key}").as_str()),
                "{key} = {value}"
            );
            assert!(msg.contains("is not in"), "{msg}");
        }
        let s = parse(
            &format!("{OK}[engine]\nm = 8\nspread_hops = 2\nef_search = 200\n"),
            "s.toml",
        )
        .unwrap();
        assert_eq!(
            (s.engine.m, s.engine.spread_hops, s.engine.ef_search),
            (Some(8), Some(2), Some(200))
        );
    }

    #[test]
    fn an_operations_table_with_only_k_keeps_the_default_mix() {
        let s = parse(&format!("{OK}[operations]\nk = 5\n"), "s.toml").unwrap();
        assert_eq!(s.operations.k, 5);
        assert!((s.operations.observe - 0.4).abs() < 1e-12);
        assert!((s.operations.recall_spread - 0.1).abs() < 1e-12);
        // A table that sets weights, all zero, is still refused.
        let (_, field, _) = scenario_err(&format!("{OK}[operations]\nobserve = 0\nk = 5\n"));
        assert_eq!(field, "operations");
    }

    #[test]
    fn an_out_of_range_value_names_its_key_not_itself() {
        let (line, field, _) = scenario_err(&format!("{OK}[data]\nspaces = 100000000000\n"));
        assert_eq!((line, field.as_str()), (Some(8), "data.spaces"));
        let (_, field, _) = scenario_err(&format!("{OK}[data]\n\"preload\" = -1\n"));
        assert_eq!(field, "data.preload");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_scenario_path_to_a_device_or_a_huge_file_is_refused_unread() {
        match load_file(Path::new("/dev/zero")) {
            Err(LoadtestError::InputFile { source, .. }) => {
                assert!(source.to_string().contains("character device"), "{source}")
            }
            other => panic!("{other:?}"),
        }
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_SCENARIO_BYTES + 1).unwrap();
        assert!(matches!(load_file(&big), Err(LoadtestError::InputFile { .. })));
    }

    #[test]
    fn syntax_error_has_a_line() {
        let (line, _, _) = scenario_err("name = \"x\"\nduration = \n");
        assert_eq!(line, Some(2));
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}

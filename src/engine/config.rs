//! [`EngineBuilder`]: every setting of an engine, checked at `open`.

use std::time::Duration;

use serde::Serialize;

use super::error::EngineError;
use crate::durability::SyncPolicy;
use crate::index::Quantization;
use crate::topology::PlacementPlan;

/// Longest space name (bytes of UTF-8): the write-ahead log stores names in at most 255.
pub const MAX_SPACE_NAME_BYTES: usize = 255;
/// How many shards the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardCount {
    /// This many shards on every NUMA node of the placement plan (the default: 1).
    PerNode(usize),
    /// Exactly this many shards, spread over the plan's nodes round-robin (for tests: 4 shards
    /// on a one-node machine behave like a 4-node engine, minus the placement).
    Exactly(usize),
}

/// The HNSW segments of each shard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexParams {
    /// Episodes per segment. A shard opens a new segment when its newest is full, so capacity
    /// grows without stopping recall; recall searches every segment. Each segment reserves (but
    /// does not touch) memory for this many rows.
    pub segment_capacity: usize,
    /// HNSW `M` (links per node on upper levels).
    pub m: usize,
    /// HNSW `ef` of construction.
    pub ef_construction: usize,
    /// HNSW `ef` of search (at least `k` is used).
    pub ef_search: usize,
    /// Whether the segments keep an int8 copy for construction and the search walk.
    pub quantization: Quantization,
    /// Episodes one absorption task moves from the append buffer into the index before it
    /// yields the worker (a guess balancing recall latency against absorption overhead).
    pub absorb_batch: usize,
    /// Whether an absorption task stops early, after the insert in hand, when a high-priority
    /// task (a recall) waits on the shard's node, and queues itself again (at least one insert
    /// per task, so absorption always advances). A recall then waits for at most one HNSW
    /// insert instead of a whole `absorb_batch`.
    pub absorb_yields: bool,
    /// Absorption tasks that may link one space's append buffer into its segment at once
    /// (each on its own worker, at low priority); 0: as many as the shard has workers.
    pub absorbers: usize,
}

impl Default for IndexParams {
    fn default() -> Self {
        Self {
            segment_capacity: 1 << 16,
            m: 16,
            ef_construction: 100,
            ef_search: 64,
            quantization: Quantization::Int8,
            absorb_batch: 8,
            absorb_yields: true,
            absorbers: 0,
        }
    }
}

/// The associations the engine makes by itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssociationParams {
    /// Associate each episode with the previous episode of its stream, at this weight (0: off).
    pub stream_weight: f32,
    /// Associate each episode with this many of the most similar episodes of its shard and
    /// space, found when the index absorbs it (weight = similarity). 0: off.
    pub similar: usize,
    /// Only similar episodes at least this similar are associated.
    pub min_similarity: f32,
    /// The most episodes one shard's association graph holds (its node table, id map and
    /// spread scratches are sized by it; the memory is reserved, touched as it fills).
    pub max_episodes_per_shard: usize,
    /// Expected out-edges per episode, to size the graph's edge memory (a stream link is 1,
    /// each similar or explicit association 1 per direction).
    pub edges_per_episode: usize,
}

impl Default for AssociationParams {
    fn default() -> Self {
        Self {
            stream_weight: 1.0,
            similar: 4,
            min_similarity: 0.5,
            max_episodes_per_shard: 1 << 20,
            edges_per_episode: 12,
        }
    }
}

/// When the engine refuses work instead of queueing it ([`EngineError::Overloaded`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdmissionLimits {
    /// Tasks each worker's queue holds, per priority class (high = recall, normal = observe,
    /// low = index absorption).
    pub queue_capacity: [usize; 3],
    /// Episodes a shard's append buffer may hold before the index absorbs them (per space);
    /// past it, observations of that space on that shard are refused. Bounds the exact scan
    /// every recall does, so recall stays fast.
    pub max_unindexed: usize,
    /// How long `observe` waits for its shard to accept before giving up
    /// ([`EngineError::TimedOut`]).
    pub observe_deadline: Duration,
    /// The recall budget when a [`Cue`](super::Cue) gives none.
    pub recall_deadline: Duration,
    /// Largest payload accepted, in bytes.
    pub max_payload: usize,
    /// Most links one episode may carry.
    pub max_links: usize,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        Self {
            queue_capacity: [1024, 4096, 1024],
            max_unindexed: 8192,
            observe_deadline: Duration::from_secs(5),
            recall_deadline: Duration::from_secs(1),
            max_payload: 1 << 20,
            max_links: 1024,
        }
    }
}

/// How an engine opened with [`EngineBuilder::open_in`] keeps its episodes on disk.
#[derive(Debug, Clone)]
pub struct DurabilityOptions {
    /// When the write-ahead log is fsynced, and so when `observe` returns: `None` (written to
    /// the OS; survives a process kill, not a power loss), `EveryBatch` (returns after the group
    /// holding it is fsynced) or `EveryMs(n)` (returns at once; at most the last `n` ms plus one
    /// group's write are lost in a crash).
    pub policy: SyncPolicy,
    /// Take a snapshot in the background after this many logged records (episodes,
    /// associations, forgets) since the last one (`None`: only [`Engine::snapshot`](super::Engine::snapshot)).
    pub snapshot_every: Option<u64>,
    /// Also take one in the background when a change is logged this long after the last
    /// snapshot began (`None`: no time policy).
    pub snapshot_interval: Option<Duration>,
    /// Size at which a log segment is sealed and a new one started, in bytes (at least 4096).
    pub segment_bytes: u64,
    /// Disk failures injected into every shard's log writes and fsyncs (ENOSPC, EIO), for
    /// tests of the failure paths; `None` in production.
    pub faults: Option<std::sync::Arc<dyn crate::durability::FaultInjector>>,
}

impl Default for DurabilityOptions {
    fn default() -> Self {
        Self {
            policy: SyncPolicy::EveryBatch,
            snapshot_every: Some(1 << 20),
            snapshot_interval: None,
            segment_bytes: 64 << 20,
            faults: None,
        }
    }
}

/// A space (tenant) and its quota.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpaceSpec {
    /// Its name.
    pub name: String,
    /// Most live episodes it may hold, all shards together.
    pub quota: usize,
}

/// The name of the space used when an episode or cue names none.
pub const DEFAULT_SPACE: &str = "default";

/// Builds an [`Engine`](super::Engine). Start from [`Engine::builder`](super::Engine::builder).
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    pub(crate) dimension: usize,
    pub(crate) shards: ShardCount,
    pub(crate) workers_per_node: Option<usize>,
    pub(crate) spaces: Vec<SpaceSpec>,
    pub(crate) default_quota: usize,
    pub(crate) index: IndexParams,
    pub(crate) associations: AssociationParams,
    pub(crate) admission: AdmissionLimits,
    pub(crate) plan: Option<PlacementPlan>,
    pub(crate) pin: bool,
    pub(crate) durability: DurabilityOptions,
    pub(crate) recovery_mode: crate::durability::RecoveryMode,
    pub(crate) dir: Option<std::path::PathBuf>,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self {
            dimension: 0,
            shards: ShardCount::PerNode(1),
            workers_per_node: None,
            spaces: Vec::new(),
            default_quota: usize::MAX,
            index: IndexParams::default(),
            associations: AssociationParams::default(),
            admission: AdmissionLimits::default(),
            plan: None,
            pin: true,
            durability: DurabilityOptions::default(),
            recovery_mode: crate::durability::RecoveryMode::Strict,
            dir: None,
        }
    }
}

impl EngineBuilder {
    /// The embedding dimension (required).
    pub fn dimension(mut self, dim: usize) -> Self {
        self.dimension = dim;
        self
    }

    /// How many shards (default: one per NUMA node).
    pub fn shards(mut self, shards: ShardCount) -> Self {
        self.shards = shards;
        self
    }

    /// At most this many workers per node (default: one per core of the node).
    pub fn workers_per_node(mut self, n: usize) -> Self {
        self.workers_per_node = Some(n);
        self
    }

    /// Declares a space (tenant) holding at most `quota` episodes.
    pub fn space(mut self, name: impl Into<String>, quota: usize) -> Self {
        self.spaces.push(SpaceSpec {
            name: name.into(),
            quota,
        });
        self
    }

    /// The quota of the default space (default: unlimited).
    pub fn default_space_quota(mut self, quota: usize) -> Self {
        self.default_quota = quota;
        self
    }

    /// Index parameters.
    pub fn index(mut self, params: IndexParams) -> Self {
        self.index = params;
        self
    }

    /// Automatic associations.
    pub fn associations(mut self, params: AssociationParams) -> Self {
        self.associations = params;
        self
    }

    /// Admission limits.
    pub fn admission(mut self, limits: AdmissionLimits) -> Self {
        self.admission = limits;
        self
    }

    /// Uses this placement plan instead of the one computed from this machine's topology.
    pub fn plan(mut self, plan: PlacementPlan) -> Self {
        self.plan = Some(plan);
        self
    }

    /// Whether workers pin themselves to their plan CPUs (default: yes; failures are reported
    /// as degradations, never errors).
    pub fn pin_workers(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }

    /// How [`open_in`](Self::open_in) keeps episodes on disk (default: `EveryBatch`, a
    /// snapshot every 2^20 records, 64 MiB segments). Ignored by [`open`](Self::open).
    pub fn durability(mut self, options: DurabilityOptions) -> Self {
        self.durability = options;
        self
    }

    /// How `open_in` treats a damaged log (see `docs/durability.md`, "Modes"): `Strict` (the
    /// default: an unsynced tail is dropped and reported, damage to fsynced records refused with
    /// a typed error), `Absolute` (any damage refused), or `PointInTime` (each shard's log is
    /// opened to its intact prefix; [`RecoveryReport`](super::RecoveryReport) says what was left
    /// out).
    pub fn recovery_mode(mut self, mode: crate::durability::RecoveryMode) -> Self {
        self.recovery_mode = mode;
        self
    }

    /// Checks the settings before the engine opens (`open`, `open_in`, beside the public `Engine`).
    pub(crate) fn validate(&self) -> Result<(), EngineError> {
        let bad = |field: &'static str, reason: &str| {
            Err(EngineError::InvalidConfig {
                field,
                reason: reason.into(),
            })
        };
        if self.dimension == 0 {
            return bad("dimension", "must be at least 1");
        }
        if matches!(self.shards, ShardCount::PerNode(0) | ShardCount::Exactly(0)) {
            return bad("shards", "must be at least 1");
        }
        if matches!(self.shards, ShardCount::PerNode(n) | ShardCount::Exactly(n) if n > 4096) {
            return bad("shards", "at most 4096");
        }
        if self.workers_per_node == Some(0) {
            return bad("workers_per_node", "must be at least 1");
        }
        let mut names = std::collections::BTreeSet::new();
        names.insert(DEFAULT_SPACE);
        for s in &self.spaces {
            if s.name.is_empty() {
                return bad("space", "a space name is empty");
            }
            if s.name.len() > MAX_SPACE_NAME_BYTES {
                // The log stores a space by name, in at most this many bytes: a longer name
                // would be accepted here and then refuse every durable observe into it.
                return bad("space", "a space name is over 255 bytes (the log's limit)");
            }
            if !names.insert(s.name.as_str()) {
                return bad("space", "a space is declared twice (or named \"default\")");
            }
        }
        if names.len() > u16::MAX as usize {
            return bad("space", "too many spaces");
        }
        let ix = &self.index;
        if ix.segment_capacity == 0 || ix.segment_capacity >= u32::MAX as usize {
            return bad("index.segment_capacity", "must be in 1..2^32-1");
        }
        if ix.ef_search == 0 || ix.absorb_batch == 0 {
            return bad("index", "ef_search and absorb_batch must be at least 1");
        }
        let a = &self.associations;
        if !a.stream_weight.is_finite() || a.stream_weight < 0.0 || !a.min_similarity.is_finite() {
            return bad("associations", "weights must be finite and the stream weight ≥ 0");
        }
        if a.max_episodes_per_shard == 0 || a.max_episodes_per_shard >= u32::MAX as usize - 1 {
            return bad("associations.max_episodes_per_shard", "must be in 1..2^32-2");
        }
        let du = &self.durability;
        if du.segment_bytes < 4096 || du.snapshot_every == Some(0) || du.policy == SyncPolicy::EveryMs(0) {
            return bad(
                "durability",
                "segments of at least 4096 bytes, snapshot_every and EveryMs at least 1",
            );
        }
        let ad = &self.admission;
        if ad.max_unindexed == 0 || ad.queue_capacity.contains(&0) {
            return bad(
                "admission",
                "queue capacities and max_unindexed must be at least 1",
            );
        }
        Ok(())
    }
}

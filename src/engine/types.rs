//! The values the engine takes and returns: episodes, cues, hits, completions.

use std::time::Duration;

use serde::Serialize;

use crate::spread::SpreadParams;

/// A stable episode id. Ids are global to the engine (not to a space) and never reused while
/// the process lives, even after [`Engine::forget`](super::Engine::forget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct EpisodeId(pub u64);

impl std::fmt::Display for EpisodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which way a [`Link`] between a new episode and an existing one points. Spreading activation
/// flows along an association in its direction only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum LinkDirection {
    /// Both ways: new → existing and existing → new, each at the weight (what
    /// [`Engine::associate`](super::Engine::associate) and the automatic associations store).
    #[default]
    Both,
    /// New → existing only ([`Episode::with_link_to`]).
    Out,
    /// Existing → new only ([`Episode::with_link_from`]).
    In,
}

/// A weighted association between a new episode and an existing one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// The existing episode (same space).
    pub target: u64,
    /// The association's weight (finite, > 0).
    pub weight: f32,
    /// Which way it points.
    pub direction: LinkDirection,
}

/// One observation. Build it with [`Episode::new`] and the `with_*` methods.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// The id to store it under, or `None` for a fresh one.
    pub id: Option<u64>,
    /// The embedding (the engine's dimension; finite; not all zeros). Stored unit-normalised.
    pub embedding: Vec<f32>,
    /// Opaque bytes kept with the episode and returned by [`Engine::get`](super::Engine::get).
    pub payload: Vec<u8>,
    /// The caller's timestamp (any unit; milliseconds since the Unix epoch is conventional).
    pub timestamp: u64,
    /// Explicit associations to existing episodes of the same space.
    pub links: Vec<Link>,
    /// The space (tenant), `None` for the default space.
    pub space: Option<String>,
    /// A stream name: each episode is associated with the previous episode of its stream.
    pub stream: Option<String>,
}

impl Episode {
    /// An episode with this embedding, a fresh id, no payload, timestamp 0, the default space.
    pub fn new(embedding: Vec<f32>) -> Self {
        Self {
            id: None,
            embedding,
            payload: Vec::new(),
            timestamp: 0,
            links: Vec::new(),
            space: None,
            stream: None,
        }
    }

    /// Stores it under `id`.
    pub fn with_id(mut self, id: u64) -> Self {
        self.id = Some(id);
        self
    }

    /// Keeps `payload` with it.
    pub fn with_payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.payload = payload.into();
        self
    }

    /// Sets its timestamp.
    pub fn with_timestamp(mut self, timestamp: u64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Associates it with the existing episode `target` at `weight`, both ways.
    pub fn with_link(mut self, target: u64, weight: f32) -> Self {
        self.links.push(Link {
            target,
            weight,
            direction: LinkDirection::Both,
        });
        self
    }

    /// Associates it with the existing episode `target` at `weight`, one way: this episode →
    /// `target` (activation spreads from this episode to `target`, not back).
    pub fn with_link_to(mut self, target: u64, weight: f32) -> Self {
        self.links.push(Link {
            target,
            weight,
            direction: LinkDirection::Out,
        });
        self
    }

    /// Associates the existing episode `source` with it at `weight`, one way: `source` → this
    /// episode (activation spreads from `source` to this episode, not back).
    pub fn with_link_from(mut self, source: u64, weight: f32) -> Self {
        self.links.push(Link {
            target: source,
            weight,
            direction: LinkDirection::In,
        });
        self
    }

    /// Puts it in `space`.
    pub fn in_space(mut self, space: impl Into<String>) -> Self {
        self.space = Some(space.into());
        self
    }

    /// Puts it in `stream`.
    pub fn in_stream(mut self, stream: impl Into<String>) -> Self {
        self.stream = Some(stream.into());
        self
    }
}

/// A recall request. Build it with [`Cue::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    /// The query embedding.
    pub embedding: Vec<f32>,
    /// How many hits to return (≥ 1).
    pub k: usize,
    /// Spread activation from the nearest episodes over the association graph (`None`: plain
    /// nearest-neighbour recall).
    pub spread: Option<SpreadParams>,
    /// How long to wait for the shards; a shard that has not answered by then is left out and
    /// the result is marked `partial`. `None`: the engine's default
    /// ([`AdmissionLimits::recall_deadline`](super::AdmissionLimits::recall_deadline)).
    pub budget: Option<Duration>,
    /// The space to search, `None` for the default space.
    pub space: Option<String>,
    /// With spreading, how much activation counts in a hit's score:
    /// `score = similarity + activation_weight × activation` (default 0.5).
    pub activation_weight: f32,
}

impl Cue {
    /// The `k` episodes nearest to `embedding`, in the default space, without spreading.
    pub fn new(embedding: Vec<f32>, k: usize) -> Self {
        Self {
            embedding,
            k,
            spread: None,
            budget: None,
            space: None,
            activation_weight: 0.5,
        }
    }

    /// Spreads activation with `params`.
    pub fn with_spread(mut self, params: SpreadParams) -> Self {
        self.spread = Some(params);
        self
    }

    /// Waits at most `budget` for the shards.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Searches `space`.
    pub fn in_space(mut self, space: impl Into<String>) -> Self {
        self.space = Some(space.into());
        self
    }
}

/// One recalled episode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Hit {
    /// The episode.
    pub id: EpisodeId,
    /// What hits are ranked by: `similarity` without spreading; with spreading
    /// `similarity + activation_weight × activation` (see [`Cue::activation_weight`]).
    pub score: f32,
    /// Cosine similarity to the cue (−1..=1).
    pub similarity: f32,
    /// Activation the spread delivered to it (0 without spreading).
    pub activation: f32,
}

/// How one shard served a recall.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardTiming {
    /// The shard.
    pub shard: usize,
    /// Its NUMA node.
    pub node: u32,
    /// Time from submit to its answer (`None` if it did not answer in time).
    pub elapsed: Option<Duration>,
    /// Of `elapsed`, the time its task waited in a queue before a worker took it (the rest is
    /// the search itself); `None` if it did not answer in time.
    pub queued: Option<Duration>,
    /// Episodes it scanned exactly in its append buffer.
    pub scanned: usize,
    /// Index segments it searched.
    pub segments: usize,
}

/// What [`Engine::recall`](super::Engine::recall) found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecallResult {
    /// Best first, at most `k`.
    pub hits: Vec<Hit>,
    /// Whether some shard did not answer within the budget (its episodes are missing).
    pub partial: bool,
    /// Per shard.
    pub shards: Vec<ShardTiming>,
    /// Wall time of the whole call.
    pub elapsed: Duration,
}

/// What [`Engine::complete`](super::Engine::complete) produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    /// The completed embedding (unit length): the known dimensions come from the supporting
    /// episodes too, so it is the score-weighted mean of their stored (unit) embeddings.
    pub embedding: Vec<f32>,
    /// The episodes it was built from, with their weights (summing to 1), best first.
    pub supporting: Vec<(EpisodeId, f32)>,
    /// How well the best candidate matches on the known dimensions (its masked cosine
    /// similarity, 0..=1 when positive), times the share of the weight it carries.
    pub confidence: f32,
}

/// A stored episode, as [`Engine::get`](super::Engine::get) returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpisodeRecord {
    /// Its id.
    pub id: EpisodeId,
    /// Its embedding, unit-normalised.
    pub embedding: Vec<f32>,
    /// Its payload.
    pub payload: Vec<u8>,
    /// Its timestamp.
    pub timestamp: u64,
    /// Its space.
    pub space: String,
    /// Its stream, if any.
    pub stream: Option<String>,
    /// Its associations (target, weight).
    pub links: Vec<(EpisodeId, f32)>,
    /// Whether the index has absorbed it (otherwise recall finds it in the append buffer).
    pub indexed: bool,
}

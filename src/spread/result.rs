//! What a spread returns.

use serde::Serialize;

/// One node of a spread's result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpreadHit {
    /// The node's id.
    pub id: u64,
    /// Its total activation (sum over hops 1..=max_hops; plus its initial activation for a
    /// seed when seeds are included).
    pub activation: f64,
    /// The hop at which it was first reached (0 for a seed).
    pub hops: u32,
}

/// Counts of what one spread did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SpreadStats {
    /// Hops run (fewer than `max_hops` when the frontier died out or the budget cut it).
    pub hops_run: u32,
    /// Nodes reached (seeds included).
    pub nodes_touched: u64,
    /// Edges followed.
    pub edges_scanned: u64,
    /// Cross-shard messages (one batch per hop per source and destination shard; 0 in a
    /// single-shard spread).
    pub messages: u64,
    /// Contributions carried by those messages.
    pub message_entries: u64,
    /// Largest frontier of a hop.
    pub frontier_peak: u64,
    /// Wall time of the spread, nanoseconds.
    pub elapsed_ns: u64,
}

/// The answer of a spread.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpreadResult {
    /// Top-k nodes by total activation, descending, ties by id ascending.
    pub hits: Vec<SpreadHit>,
    /// Whether the latency budget stopped the spread before `max_hops`.
    pub partial: bool,
    /// What the spread did.
    pub stats: SpreadStats,
}

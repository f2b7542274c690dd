//! What the load is driven against: the [`LoadTarget`] trait and the [`NoopTarget`].

use super::workload::{Op, Workload};

/// How one operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Served.
    Ok,
    /// Refused by admission control (overload): counted apart from errors.
    Rejected,
    /// Failed; the label names the kind of error (`invalid_input`, `timeout`, …).
    Err(&'static str),
}

/// A system under load. Each call is one operation; the driver times it and records its
/// [`Outcome`]. Implementations must be callable from several client threads at once.
pub trait LoadTarget: Send + Sync {
    /// Short name for reports (`noop`, `engine`).
    fn name(&self) -> String;

    /// Whether the ops need their embeddings (the driver skips generating them otherwise).
    fn needs_embeddings(&self) -> bool {
        true
    }

    /// Stores the scenario's preload (`workload.data().preload` episodes) before timing starts;
    /// `progress` is called with the number stored so far.
    ///
    /// # Errors
    /// A message when the data cannot be stored: the run does not start.
    fn preload(&self, workload: &Workload, progress: &dyn Fn(u64)) -> Result<(), String>;

    /// Stores an episode with `embedding` in `op.space`.
    fn observe(&self, op: &Op, embedding: &[f32]) -> Outcome;

    /// Recalls the `op.k` nearest episodes to `embedding`.
    fn recall(&self, op: &Op, embedding: &[f32]) -> Outcome;

    /// Recalls, then spreads activation from the hits.
    fn recall_spread(&self, op: &Op, embedding: &[f32]) -> Outcome;

    /// Completes `embedding` from its first half of dimensions (the rest unknown).
    fn complete(&self, op: &Op, embedding: &[f32]) -> Outcome;

    /// Links preloaded episodes `op.pair` with `op.weight`.
    fn associate(&self, op: &Op) -> Outcome;

    /// The target's metrics in Prometheus text format, if it has any.
    fn metrics_text(&self) -> Option<String> {
        None
    }

    /// The target's metrics as JSON, if it has any (stored in the result).
    fn metrics_snapshot(&self) -> Option<serde_json::Value> {
        None
    }
}

/// A target that does nothing: measures the harness itself (its ceiling and its overhead).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopTarget;

impl LoadTarget for NoopTarget {
    fn name(&self) -> String {
        "noop".to_string()
    }

    fn needs_embeddings(&self) -> bool {
        false
    }

    fn preload(&self, _workload: &Workload, progress: &dyn Fn(u64)) -> Result<(), String> {
        progress(0);
        Ok(())
    }

    fn observe(&self, op: &Op, _embedding: &[f32]) -> Outcome {
        std::hint::black_box(op);
        Outcome::Ok
    }

    fn recall(&self, op: &Op, _embedding: &[f32]) -> Outcome {
        std::hint::black_box(op);
        Outcome::Ok
    }

    fn recall_spread(&self, op: &Op, _embedding: &[f32]) -> Outcome {
        std::hint::black_box(op);
        Outcome::Ok
    }

    fn complete(&self, op: &Op, _embedding: &[f32]) -> Outcome {
        std::hint::black_box(op);
        Outcome::Ok
    }

    fn associate(&self, op: &Op) -> Outcome {
        std::hint::black_box(op);
        Outcome::Ok
    }
}

//! Errors of the exec module.

use super::queue::Priority;
use crate::topology::TopologyError;

/// What went wrong starting an executor or submitting work to it.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Every queue of this class in the target pool (or the one target worker) is full. Nothing
    /// was enqueued and the item is handed back in [`Rejected`]: shed load, retry later, or send
    /// it to another node.
    #[error("{class:?} queue full ({depth} items waiting)")]
    Overloaded {
        /// The priority class that is full.
        class: Priority,
        /// How many items of that class were waiting when the submit was refused.
        depth: usize,
    },
    /// The node or worker named has no pool in the placement plan. Submit to a node the plan lists
    /// ([`crate::exec::Executor::nodes`]).
    #[error("no worker pool for {what} {index}")]
    NoSuchTarget {
        /// `"node"` or `"worker"`.
        what: &'static str,
        /// The index asked for.
        index: u32,
    },
    /// A configuration value is out of range; the message says which and why.
    #[error("invalid worker pool configuration: {field}: {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The placement plan has no worker.
    #[error("the placement plan has no worker slot")]
    EmptyPlan,
    /// The executor is shutting down or shut down: nothing was enqueued (the item is handed
    /// back). Start a new executor, or stop submitting.
    #[error("the executor is closed")]
    Closed,
    /// The placement plan is malformed (built by hand or edited): a node id past
    /// [`MAX_PLAN_NODE`](crate::exec::MAX_PLAN_NODE), a duplicate node, or worker indexes that are
    /// not `0..workers` exactly once. Build plans with
    /// [`PlacementPlan::new`](crate::topology::PlacementPlan::new).
    #[error("invalid placement plan: {reason}")]
    InvalidPlan {
        /// What is wrong.
        reason: String,
    },
    /// A reply did not come before its deadline ([`crate::exec::reply`]). The work may still
    /// run; retry with a longer deadline or treat the answer as partial.
    #[error("no reply within the deadline (waited {waited:?})")]
    DeadlineExceeded {
        /// How long the caller waited.
        waited: std::time::Duration,
    },
    /// The reply slot was dropped unanswered (the handler panicked or the item was handed back
    /// at shutdown).
    #[error("the reply slot was dropped without an answer")]
    NoReply,
    /// A worker thread could not be created (the OS refused: thread limit, memory).
    #[error("cannot start worker {worker}: {source}")]
    Spawn {
        /// The worker's index in the plan.
        worker: usize,
        /// The topology module's error.
        source: TopologyError,
    },
}

/// A submit that was refused, with the item handed back so nothing is dropped silently.
#[derive(Debug)]
pub struct Rejected<T> {
    /// Why it was refused ([`ExecError::Overloaded`], [`ExecError::NoSuchTarget`] or
    /// [`ExecError::Closed`]).
    pub error: ExecError,
    /// The item, untouched.
    pub item: T,
}

impl<T> Rejected<T> {
    /// The reason, dropping the item.
    pub fn into_error(self) -> ExecError {
        self.error
    }
}

impl<T> std::fmt::Display for Rejected<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "submit rejected: {}", self.error)
    }
}

impl<T: std::fmt::Debug> std::error::Error for Rejected<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

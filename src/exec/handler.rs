//! The batch handler: the code workers run, and what it learns about where it runs.

use serde::Serialize;

use super::queue::Priority;
use crate::topology::CpuLocation;

/// Where the batch a handler runs came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BatchSource {
    /// The worker's own queue.
    Own,
    /// Stolen from another worker of the same node.
    StolenLocal {
        /// The victim's plan index.
        from_worker: usize,
    },
    /// Stolen from a worker of another node (its backlog exceeded the steal threshold).
    StolenRemote {
        /// The victim's plan index.
        from_worker: usize,
        /// The victim's node.
        from_node: u32,
    },
}

/// What a handler knows about the worker running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WorkerContext {
    /// The worker's plan index.
    pub worker: usize,
    /// The worker's plan node.
    pub node: u32,
    /// The worker's plan CPU.
    pub cpu: u32,
    /// Where `getcpu` saw the worker after pinning (`None` if not pinned or not verified).
    pub pinned_at: Option<CpuLocation>,
    /// Where the current batch came from.
    pub source: BatchSource,
}

/// Runs batches of items. Implemented for every `Fn(&WorkerContext, Priority, &mut Vec<T>)`.
///
/// The handler takes the items out of `batch` (or reads them); whatever it leaves is dropped
/// after it returns. The items of one call are all of class `class`. A panicking handler is
/// caught: its batch counts as run, the panic is counted in the metrics, and the worker goes on.
pub trait BatchHandler<T>: Send + Sync + 'static {
    /// Runs one batch.
    fn run(&self, ctx: &WorkerContext, class: Priority, batch: &mut Vec<T>);
}

impl<T, F> BatchHandler<T> for F
where
    F: Fn(&WorkerContext, Priority, &mut Vec<T>) + Send + Sync + 'static,
{
    fn run(&self, ctx: &WorkerContext, class: Priority, batch: &mut Vec<T>) {
        self(ctx, class, batch)
    }
}

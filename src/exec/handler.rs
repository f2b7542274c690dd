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

/// A handler with per-worker state, created **on the worker's own pinned thread**.
///
/// [`WorkerHandler::init`] runs once per worker, after the worker has pinned itself and before
/// [`crate::exec::Executor::start_with`] returns, so whatever it allocates and writes (search
/// scratch, pool handles, a counter set) is first touched on the worker's node and stays owned by
/// that one thread: `Local` need not be `Send` or `Sync`. [`WorkerHandler::handle`] then runs each
/// batch with `&mut` access to it.
///
/// Every [`BatchHandler`] is usable through [`Stateless`] (what [`crate::exec::Executor::start`]
/// does).
pub trait WorkerHandler<T>: Send + Sync + 'static {
    /// The per-worker state.
    type Local: 'static;

    /// Creates the state of the worker described by `ctx` (its `source` is [`BatchSource::Own`]).
    /// A panic here ends that worker's thread (counted in
    /// [`ShutdownReport::dead_workers`](crate::exec::ShutdownReport::dead_workers)); its queued
    /// items are still run by stealing siblings or handed back at shutdown.
    fn init(&self, ctx: &WorkerContext) -> Self::Local;

    /// Runs one batch of class `class` with the worker's state. As for [`BatchHandler::run`]: the
    /// items left in `batch` are dropped afterwards, and a panic is caught and counted (the state
    /// is kept as the panic left it).
    fn handle(&self, local: &mut Self::Local, ctx: &WorkerContext, class: Priority, batch: &mut Vec<T>);

    /// As [`WorkerHandler::handle`], with a way to ask whether latency-critical work waits
    /// ([`Urgency::high_waiting`]), so a long low-priority task can stop at a safe point and
    /// queue its rest again. The worker calls this one; by default it ignores `urgency` and
    /// calls [`WorkerHandler::handle`].
    fn handle_with(
        &self,
        local: &mut Self::Local,
        ctx: &WorkerContext,
        class: Priority,
        batch: &mut Vec<T>,
        urgency: &Urgency<'_>,
    ) {
        let _ = urgency;
        self.handle(local, ctx, class, batch)
    }
}

/// What a running handler may ask about the work waiting behind it (see
/// [`WorkerHandler::handle_with`]).
pub struct Urgency<'a> {
    probe: &'a dyn Fn() -> bool,
}

impl<'a> Urgency<'a> {
    /// Urgency as `probe` reports it: whether a high-priority item waits.
    pub fn new(probe: &'a dyn Fn() -> bool) -> Self {
        Self { probe }
    }

    /// Whether a high-priority item waits in a queue of the running worker's node pool (its own
    /// or a sibling's: the worker takes it next, from a sibling by stealing). Two atomic loads
    /// per worker of the pool; cheap enough to ask between any two steps that take
    /// microseconds.
    #[inline]
    pub fn high_waiting(&self) -> bool {
        (self.probe)()
    }
}

impl Urgency<'static> {
    /// An urgency that never reports waiting work (for calling a handler outside a worker).
    pub fn never() -> Self {
        Self { probe: &|| false }
    }
}

impl std::fmt::Debug for Urgency<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Urgency").finish_non_exhaustive()
    }
}

/// Adapts a stateless [`BatchHandler`] to [`WorkerHandler`] (with `Local = ()`).
#[derive(Debug, Clone)]
pub struct Stateless<H>(pub H);

impl<T, H: BatchHandler<T>> WorkerHandler<T> for Stateless<H> {
    type Local = ();

    fn init(&self, _: &WorkerContext) {}

    fn handle(&self, _: &mut (), ctx: &WorkerContext, class: Priority, batch: &mut Vec<T>) {
        self.0.run(ctx, class, batch)
    }
}

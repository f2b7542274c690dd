//! Per-NUMA-node executor: pinned worker pools, priority queues, adaptive batch drain,
//! node-first work stealing, admission control.
//!
//! # Model
//!
//! ```text
//!  submit(node, class, item) ──► NodePool(node)            NodePool(other node)
//!     │ full everywhere?           ├─ worker 0 (pinned to CPU a)   ├─ worker …
//!     └─► Err(Overloaded)          │    queues: high | normal | low (bounded)
//!                                  ├─ worker 1 (pinned to CPU b)
//!                                  │    … idle? steal from the fullest sibling queue,
//!                                  │      then from another node past `steal_threshold`
//! ```
//!
//! - **Workers.** An [`Executor`] starts one [`NodePool`] per node of a
//!   [`PlacementPlan`](crate::topology::PlacementPlan) and one worker per
//!   [`WorkerSlot`](crate::topology::WorkerSlot), pinned to the slot's CPU and checked with
//!   `getcpu`. A worker that cannot be pinned still runs, and the failure is reported as an
//!   [`ExecDegradation`] ([`Executor::degradations`]), never a panic.
//! - **Queues.** Every worker owns a bounded queue per [`Priority`] (capacities per class).
//!   `submit` places an item on a worker of the node with room, or returns
//!   [`ExecError::Overloaded`] at once, handing the item back ([`Rejected`]): nothing blocks,
//!   nothing is dropped.
//! - **Service order.** High first; low gets at least one batch in every `low_share`
//!   ([`worker`] describes the loop). A worker with no high item of its own takes a sibling's
//!   before its own normal or low work, and a running handler can ask whether high work waits
//!   ([`Urgency`]) to cut a long low-priority task short.
//! - **Batches.** A worker drains up to a batch of one class at once; the size follows the
//!   backlog through a damped controller ([`batch`]). A lone item is never held back.
//! - **Stealing.** An idle worker steals from its own node first, from another node only past
//!   the threshold ([`steal`]). Items are moved, never shared.
//! - **Idle.** Workers park (optionally after a short spin); submitters wake them without lost
//!   wake-ups (`park`).
//! - **Per-worker state.** A [`WorkerHandler`] creates each worker's state on the worker's own
//!   pinned thread ([`Executor::start_with`]); a plain [`BatchHandler`] runs through
//!   [`Stateless`].
//! - **Submitters and replies.** [`Submitter`] is a cloneable handle; after shutdown it returns
//!   [`ExecError::Closed`]. [`reply`] gives a fan-out a way to wait for every worker's answer
//!   until a deadline, and merge what arrived.
//! - **Shutdown.** Drains every accepted item or hands it back ([`ShutdownMode`],
//!   [`ShutdownReport`]).
//! - **Metrics.** Depths, busy share, batch sizes, steals, rejections, and HDR histograms of
//!   queue wait, service and queue-to-done time ([`ExecMetrics`], Prometheus text through
//!   [`crate::metrics`]).
//!
//! # Example: the find-work order, end to end
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use locus::exec::{Executor, Priority, WorkerContext, WorkerPoolConfig};
//! use locus::topology::{PlacementPlan, PlanOptions, Topology};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plan = PlacementPlan::new(&Topology::discover()?, &PlanOptions::default())?;
//! let sum = Arc::new(AtomicU64::new(0));
//! let s = sum.clone();
//! let exec = Executor::start(&plan, WorkerPoolConfig::for_plan(&plan), move |_: &WorkerContext, _: Priority, batch: &mut Vec<u64>| {
//!     s.fetch_add(batch.drain(..).sum::<u64>(), Ordering::Relaxed);
//! })?;
//! let node = exec.nodes()[0];
//! for i in 1..=100 {
//!     // On a full queue the item comes back in the error: retry, shed, or reroute it.
//!     if let Err(rejected) = exec.submit(node, Priority::Normal, i) {
//!         eprintln!("{}: keeping item {}", rejected.error, rejected.item);
//!     }
//! }
//! let report = exec.shutdown(); // drains every accepted item
//! assert_eq!(report.ran + report.handed_back.len() as u64, 100);
//! assert_eq!(sum.load(Ordering::Relaxed), 5050);
//! # Ok(())
//! # }
//! ```
//!
//! Queue memory comes from the heap, first touched on each worker's node by a thread pinned
//! there; it is not bound to the node with `mbind` (see [`queue`]).

pub mod batch;
mod close;
pub mod config;
mod degradation;
pub mod error;
mod executor;
pub mod handler;
pub mod metrics;
mod park;
mod pool;
pub mod queue;
pub mod reply;
mod stats;
pub mod steal;
mod submitter;
pub mod worker;

pub use batch::{BatchController, BatchControllerConfig};
pub use config::{PinPolicy, ShutdownMode, StealPolicy, WorkerPoolConfig};
pub use degradation::ExecDegradation;
pub use error::{ExecError, Rejected};
pub use executor::{Executor, MAX_PLAN_NODE, ShutdownReport};
pub use handler::{BatchHandler, BatchSource, Stateless, Urgency, WorkerContext, WorkerHandler};
pub use metrics::{DepthStats, ExecMetrics, NodeMetrics, WorkerMetrics};
pub use pool::{NodePool, PinStatus};
pub use queue::Priority;
pub use reply::{Gather, Gathered, Missing, ReplySlot, gather, oneshot};
pub use submitter::Submitter;

#[cfg(all(test, not(loom)))]
mod tests;

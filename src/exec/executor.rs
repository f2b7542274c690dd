//! [`Executor`]: starts the node pools of a placement plan, accepts work, shuts down.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::sync::WaitGroup;

use super::config::{PinPolicy, WorkerPoolConfig};
use super::degradation::ExecDegradation;
use super::error::{ExecError, Rejected};
use super::handler::{BatchHandler, Stateless, WorkerHandler};
use super::park::Idle;
use super::pool::{NodePool, PinStatus, Shared, WorkerShared};
use super::queue::{ClassQueues, Priority};
use super::stats::{WorkerHistograms, WorkerStats};
use super::submitter::Submitter;
use super::worker;
use crate::alloc::layout::CachePadded;
use crate::metrics::Counter;
use crate::topology::{NodePlan, PlacementPlan, spawn_pinned};

/// What [`Executor::shutdown`] did with the accepted work.
#[derive(Debug)]
pub struct ShutdownReport<T> {
    /// Items the workers ran over the executor's life.
    pub ran: u64,
    /// Items still queued after the workers stopped, with their class: all queued items under
    /// [`super::ShutdownMode::HandBack`]; under `Drain`, only those of a worker that died.
    pub handed_back: Vec<(Priority, T)>,
    /// Worker threads that ended by panicking outside the handler (a bug).
    pub dead_workers: usize,
}

/// The per-node worker pools of one placement plan. See the module docs of [`crate::exec`].
pub struct Executor<T: Send + 'static> {
    submitter: Submitter<T>,
    threads: Vec<JoinHandle<()>>,
    finished: bool,
}

impl<T: Send + 'static> std::fmt::Debug for Executor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("nodes", &self.nodes())
            .field("workers", &self.threads.len())
            .finish()
    }
}

impl<T: Send + 'static> Executor<T> {
    /// Starts one pool per plan node and one worker per plan slot, each pinned to its CPU and
    /// checked with `getcpu`; returns once every worker has reported where it runs
    /// ([`Executor::degradations`]).
    ///
    /// # Errors
    /// [`ExecError::InvalidConfig`], [`ExecError::EmptyPlan`], or [`ExecError::Spawn`] (the
    /// workers already started are stopped first).
    pub fn start(
        plan: &PlacementPlan,
        config: WorkerPoolConfig,
        handler: impl BatchHandler<T>,
    ) -> Result<Self, ExecError> {
        Self::start_inner(plan, config, Stateless(handler), false)
    }

    /// Like [`Executor::start`], with a [`WorkerHandler`]: each worker creates its own state by
    /// calling [`WorkerHandler::init`] on its pinned thread (so that state is first touched on the
    /// worker's node); this returns once every worker has done so.
    ///
    /// # Errors
    /// Those of [`Executor::start`].
    pub fn start_with(
        plan: &PlacementPlan,
        config: WorkerPoolConfig,
        handler: impl WorkerHandler<T>,
    ) -> Result<Self, ExecError> {
        Self::start_inner(plan, config, handler, false)
    }

    /// [`Executor::start_with`], paused as [`Executor::start_paused`] is.
    ///
    /// # Errors
    /// Those of [`Executor::start`].
    pub fn start_with_paused(
        plan: &PlacementPlan,
        config: WorkerPoolConfig,
        handler: impl WorkerHandler<T>,
    ) -> Result<Self, ExecError> {
        Self::start_inner(plan, config, handler, true)
    }

    /// Like [`Executor::start`], but workers take no work until [`Executor::resume`]. Submits
    /// are accepted meanwhile (useful to fill queues deterministically).
    ///
    /// # Errors
    /// Those of [`Executor::start`].
    pub fn start_paused(
        plan: &PlacementPlan,
        config: WorkerPoolConfig,
        handler: impl BatchHandler<T>,
    ) -> Result<Self, ExecError> {
        Self::start_inner(plan, config, Stateless(handler), true)
    }

    fn start_inner<H: WorkerHandler<T>>(
        plan: &PlacementPlan,
        config: WorkerPoolConfig,
        handler: H,
        paused: bool,
    ) -> Result<Self, ExecError> {
        config.validate()?;
        if plan.worker_count() == 0 {
            return Err(ExecError::EmptyPlan);
        }
        validate_plan(plan)?;
        let handler = Arc::new(handler);
        let mut pools = Vec::new();
        let mut node_pos = Vec::new();
        let mut worker_pos = Vec::new();
        for np in plan.nodes.iter().filter(|n| !n.workers.is_empty()) {
            let p = pools.len();
            let idx = np.node as usize;
            if node_pos.len() <= idx {
                node_pos.resize(idx + 1, None);
            }
            node_pos[idx] = Some(p);
            let queues = node_local_queues(np, config.capacity, config.pin);
            let workers: Vec<WorkerShared<T>> = np
                .workers
                .iter()
                .zip(queues)
                .map(|(slot, queues)| WorkerShared {
                    slot: slot.clone(),
                    queues,
                    idle: CachePadded::new(Idle::new()),
                    stats: CachePadded::new(WorkerStats::default()),
                    hist: Mutex::new(WorkerHistograms::default()),
                    pin: OnceLock::new(),
                })
                .collect();
            for (l, w) in workers.iter().enumerate() {
                if worker_pos.len() <= w.slot.index {
                    worker_pos.resize(w.slot.index + 1, (usize::MAX, usize::MAX));
                }
                worker_pos[w.slot.index] = (p, l);
            }
            pools.push(NodePool {
                node: np.node,
                memory_node: np.memory_node,
                workers,
                rejections: [Counter::new(), Counter::new(), Counter::new()],
            });
        }
        let pin = config.pin;
        let shared = Arc::new(Shared {
            pools,
            node_pos,
            worker_pos,
            config,
            closing: CachePadded::new(false.into()),
            inflight: CachePadded::new(0.into()),
            paused: CachePadded::new(paused.into()),
            started: Instant::now(),
        });
        let ready = WaitGroup::new();
        let mut threads = Vec::new();
        let mut failure = None;
        'spawn: for (p, pool) in shared.pools.iter().enumerate() {
            for (l, w) in pool.workers.iter().enumerate() {
                let name = format!("locus-n{}-w{}", pool.node, w.slot.local_index);
                let (sh, wg, plan_node, h) = (shared.clone(), ready.clone(), w.slot.node, handler.clone());
                let body = move |pinned| {
                    let _ = sh.worker(p, l).pin.set(worker::pin_status(pinned, plan_node));
                    // The per-worker state is created here, on the pinned thread, before the
                    // executor reports itself started.
                    let (ctx, local) = worker::init(&sh, &*h, p, l);
                    drop(wg);
                    worker::run(sh, &*h, local, ctx, p, l);
                };
                let spawned = match pin {
                    PinPolicy::BestEffort => spawn_pinned(name, w.slot.cpus.clone(), move |r| body(Some(r))),
                    PinPolicy::Skip => std::thread::Builder::new()
                        .name(name)
                        .spawn(move || body(None))
                        .map_err(crate::topology::TopologyError::Spawn),
                };
                match spawned {
                    Ok(t) => threads.push(t),
                    Err(source) => {
                        failure = Some(ExecError::Spawn {
                            worker: w.slot.index,
                            source,
                        });
                        break 'spawn;
                    }
                }
            }
        }
        ready.wait();
        let mut exec = Self {
            submitter: Submitter { shared },
            threads,
            finished: false,
        };
        if let Some(e) = failure {
            exec.stop();
            return Err(e);
        }
        Ok(exec)
    }

    /// Lets paused workers take work.
    pub fn resume(&self) {
        self.submitter.shared.paused.store(false, Ordering::Release);
        self.submitter.shared.wake_all();
    }

    /// The nodes that have a pool, in plan order.
    pub fn nodes(&self) -> Vec<u32> {
        self.submitter.shared.pools.iter().map(|p| p.node).collect()
    }

    /// The pool of `node`.
    pub fn pool(&self, node: u32) -> Option<&NodePool<T>> {
        let p = (*self.submitter.shared.node_pos.get(node as usize)?)?;
        Some(&self.submitter.shared.pools[p])
    }

    /// The pools, in plan order.
    pub fn pools(&self) -> &[NodePool<T>] {
        &self.submitter.shared.pools
    }

    /// The configuration in use.
    pub fn config(&self) -> &WorkerPoolConfig {
        &self.submitter.shared.config
    }

    /// How each worker ended up placed.
    pub fn pin_statuses(&self) -> Vec<(usize, PinStatus)> {
        self.submitter
            .shared
            .pools
            .iter()
            .flat_map(|p| p.workers.iter())
            .map(|w| (w.slot.index, w.pin.get().cloned().unwrap_or(PinStatus::Skipped)))
            .collect()
    }

    /// Everything that makes the running executor weaker than its plan.
    pub fn degradations(&self) -> Vec<ExecDegradation> {
        let mut out = Vec::new();
        let mut skipped = 0;
        for p in &self.submitter.shared.pools {
            for w in &p.workers {
                match w.pin.get() {
                    Some(PinStatus::Verified { .. }) => {}
                    Some(PinStatus::OffNode { location }) => out.push(ExecDegradation::OffNode {
                        worker: w.slot.index,
                        plan_node: w.slot.node,
                        location: *location,
                    }),
                    Some(PinStatus::Failed { reason }) => out.push(ExecDegradation::NotPinned {
                        worker: w.slot.index,
                        cpu: w.slot.cpu,
                        reason: reason.clone(),
                    }),
                    Some(PinStatus::Skipped) | None => skipped += 1,
                }
            }
        }
        if skipped > 0 {
            out.push(ExecDegradation::PinningSkipped { workers: skipped });
        }
        out
    }

    /// A cloneable handle that submits to this executor from any thread, and keeps working
    /// (returning [`ExecError::Closed`]) after shutdown.
    pub fn submitter(&self) -> Submitter<T> {
        self.submitter.clone()
    }

    /// Submits `item` of `class` to a worker of `node`'s pool: the next one (per submitting
    /// thread) that has room. Returns at once. See [`Submitter::submit`].
    ///
    /// # Errors
    /// In [`Rejected::error`], with the item handed back: [`ExecError::Overloaded`] when that
    /// class's queue of every worker of the node is full; [`ExecError::NoSuchTarget`] when the
    /// plan has no pool for `node`.
    pub fn submit(&self, node: u32, class: Priority, item: T) -> Result<(), Rejected<T>> {
        self.submitter.submit(node, class, item)
    }

    /// Submits `item` to one worker's own queue (by plan index), e.g. to keep work next to data
    /// that worker owns.
    ///
    /// # Errors
    /// As [`Executor::submit`]; `Overloaded` when that worker's queue of `class` is full.
    pub fn submit_to_worker(&self, worker: usize, class: Priority, item: T) -> Result<(), Rejected<T>> {
        self.submitter.submit_to_worker(worker, class, item)
    }

    /// A snapshot of the executor's metrics.
    pub fn metrics(&self) -> super::metrics::ExecMetrics {
        super::metrics::snapshot(&self.submitter.shared, self.degradations())
    }

    /// Memory held by the queue slots of every worker, in bytes: the sum of all capacities times
    /// the size of one slot (a stamp word plus the item and its timestamp). The ring buffers are
    /// allocated and initialised when the executor starts, so this is resident from the start.
    pub fn queue_memory_bytes(&self) -> usize {
        let per_worker: usize = self.submitter.shared.config.capacity.iter().sum();
        per_worker * super::queue::slot_bytes::<T>() * self.submitter.shared.worker_pos.len()
    }

    /// Forgets every latency and batch-size sample recorded so far (counters keep counting), to
    /// start a fresh measurement interval.
    pub fn reset_histograms(&self) {
        for w in self.submitter.shared.pools.iter().flat_map(|p| p.workers.iter()) {
            let mut h = w.hist.lock().unwrap_or_else(|p| p.into_inner());
            h.queue_wait.reset();
            h.service.reset();
            h.sojourn.reset();
            h.batch_items.reset();
        }
    }

    /// Test hook: holds worker (`pool` 0, `local`)'s histogram lock, as a slow scrape would.
    #[cfg(test)]
    pub(crate) fn hold_histograms(&self, local: usize) -> std::sync::MutexGuard<'_, WorkerHistograms> {
        self.submitter.shared.pools[0].workers[local]
            .hist
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the workers and accounts for every accepted item (see [`super::ShutdownMode`]).
    pub fn shutdown(mut self) -> ShutdownReport<T> {
        self.stop()
    }

    fn stop(&mut self) -> ShutdownReport<T> {
        self.finished = true;
        let sh = &*self.submitter.shared;
        sh.closing.store(true, Ordering::SeqCst);
        // Submits that passed their `closing` check finish their push (a few instructions) before
        // the sweep below (see `submitter`'s module docs).
        while sh.inflight.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        sh.wake_all();
        let mut dead_workers = 0;
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                dead_workers += 1;
            }
        }
        let mut handed_back = Vec::new();
        let mut ran = 0;
        for pool in &sh.pools {
            for w in &pool.workers {
                for class in Priority::ALL {
                    while let Some(e) = w.queues.get(class).pop() {
                        handed_back.push((class, e.item));
                    }
                    ran += w.stats.items[class.index()].get();
                }
            }
        }
        ShutdownReport {
            ran,
            handed_back,
            dead_workers,
        }
    }
}

impl<T: Send + 'static> Drop for Executor<T> {
    /// Shuts down as [`Executor::shutdown`] does; items that would be handed back are dropped.
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.stop();
        }
    }
}

/// Builds the queues of one node's workers on a short-lived thread pinned to that node's CPUs.
///
/// `ArrayQueue::new` writes every slot's stamp, so the thread that builds a ring is the one that
/// first touches its pages, and under the kernel's default (local) policy they land on that
/// thread's node. Built here, a worker's rings sit on its own node instead of the node of
/// whichever thread called [`Executor::start`]. Falls back to the calling thread when pinning
/// is skipped or the builder thread cannot be spawned (the rings then land wherever that thread
/// runs; a pinning failure is reported by the workers themselves).
fn node_local_queues<T: Send + 'static>(
    np: &NodePlan,
    capacity: [usize; 3],
    pin: PinPolicy,
) -> Vec<ClassQueues<T>> {
    let n = np.workers.len();
    let build = move || (0..n).map(|_| ClassQueues::new(capacity)).collect::<Vec<_>>();
    if matches!(pin, PinPolicy::BestEffort)
        && let Ok(handle) = spawn_pinned(format!("locus-n{}-queues", np.node), np.cpus.clone(), move |_| {
            build()
        })
        && let Ok(queues) = handle.join()
    {
        return queues;
    }
    build()
}

/// The largest node id a plan may name (the kernel's `MAX_NUMNODES` is at most 1024).
pub const MAX_PLAN_NODE: u32 = 1023;

/// Checks what [`Executor::start`] indexes by: node ids bounded and unique, every worker's
/// plan index in `0..workers` exactly once, each worker on its node. A plan's fields are public,
/// so a hand-made or edited plan must not make the executor allocate by an absurd id.
fn validate_plan(plan: &PlacementPlan) -> Result<(), ExecError> {
    let bad = |reason: String| Err(ExecError::InvalidPlan { reason });
    let workers = plan.worker_count();
    let mut seen_worker = vec![false; workers];
    let mut seen_node = std::collections::BTreeSet::new();
    for np in plan.nodes.iter().filter(|n| !n.workers.is_empty()) {
        if np.node > MAX_PLAN_NODE {
            return bad(format!("node {} is past {MAX_PLAN_NODE}", np.node));
        }
        if !seen_node.insert(np.node) {
            return bad(format!("node {} is listed twice", np.node));
        }
        for w in &np.workers {
            if w.node != np.node {
                return bad(format!(
                    "worker {} says node {} inside node {}",
                    w.index, w.node, np.node
                ));
            }
            match seen_worker.get_mut(w.index) {
                Some(seen) if !*seen => *seen = true,
                Some(_) => return bad(format!("worker index {} is used twice", w.index)),
                None => return bad(format!("worker index {} is not below {workers}", w.index)),
            }
        }
    }
    Ok(())
}

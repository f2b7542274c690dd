//! [`Executor`]: starts the node pools of a placement plan, accepts work, shuts down.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::sync::WaitGroup;
use serde::Serialize;

use super::config::{PinPolicy, WorkerPoolConfig};
use super::error::{ExecError, Rejected};
use super::handler::BatchHandler;
use super::park::Idle;
use super::pool::{NodePool, PinStatus, Shared, WorkerShared};
use super::queue::{ClassQueues, Envelope, Priority};
use super::stats::{WorkerHistograms, WorkerStats};
use super::worker;
use crate::alloc::layout::CachePadded;
use crate::metrics::Counter;
use crate::topology::{CpuLocation, PlacementPlan, spawn_pinned};

/// A way in which the running executor is weaker than its plan. Reported, never hidden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExecDegradation {
    /// A worker could not be pinned (or verified) and runs unpinned.
    NotPinned {
        /// The worker's plan index.
        worker: usize,
        /// Its plan CPU.
        cpu: u32,
        /// Why.
        reason: String,
    },
    /// A worker is pinned to its plan CPU, but the kernel places that CPU on another node.
    OffNode {
        /// The worker's plan index.
        worker: usize,
        /// The node the plan expected.
        plan_node: u32,
        /// Where `getcpu` saw it.
        location: CpuLocation,
    },
    /// Pinning was switched off in the configuration.
    PinningSkipped {
        /// Number of workers affected.
        workers: usize,
    },
}

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

thread_local! {
    /// Per-submitting-thread rotation over a node's workers, so submitters share no counter.
    static NEXT: Cell<usize> = Cell::new({
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&std::thread::current().id(), &mut h);
        std::hash::Hasher::finish(&h) as usize
    });
}

/// The per-node worker pools of one placement plan. See the module docs of [`crate::exec`].
pub struct Executor<T: Send + 'static> {
    shared: Arc<Shared<T>>,
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
        Self::start_inner(plan, config, Box::new(handler), false)
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
        Self::start_inner(plan, config, Box::new(handler), true)
    }

    fn start_inner(
        plan: &PlacementPlan,
        config: WorkerPoolConfig,
        handler: Box<dyn BatchHandler<T>>,
        paused: bool,
    ) -> Result<Self, ExecError> {
        config.validate()?;
        if plan.worker_count() == 0 {
            return Err(ExecError::EmptyPlan);
        }
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
            let workers: Vec<WorkerShared<T>> = np
                .workers
                .iter()
                .map(|slot| WorkerShared {
                    slot: slot.clone(),
                    queues: ClassQueues::new(config.capacity),
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
            handler,
            closing: CachePadded::new(false.into()),
            paused: CachePadded::new(paused.into()),
            started: Instant::now(),
        });
        let ready = WaitGroup::new();
        let mut threads = Vec::new();
        let mut failure = None;
        'spawn: for (p, pool) in shared.pools.iter().enumerate() {
            for (l, w) in pool.workers.iter().enumerate() {
                let name = format!("locus-n{}-w{}", pool.node, w.slot.local_index);
                let (sh, wg, plan_node) = (shared.clone(), ready.clone(), w.slot.node);
                let body = move |pinned| {
                    let _ = sh.worker(p, l).pin.set(worker::pin_status(pinned, plan_node));
                    drop(wg);
                    worker::run(sh, p, l);
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
            shared,
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
        self.shared.paused.store(false, Ordering::Release);
        self.shared.wake_all();
    }

    /// The nodes that have a pool, in plan order.
    pub fn nodes(&self) -> Vec<u32> {
        self.shared.pools.iter().map(|p| p.node).collect()
    }

    /// The pool of `node`.
    pub fn pool(&self, node: u32) -> Option<&NodePool<T>> {
        let p = (*self.shared.node_pos.get(node as usize)?)?;
        Some(&self.shared.pools[p])
    }

    /// The pools, in plan order.
    pub fn pools(&self) -> &[NodePool<T>] {
        &self.shared.pools
    }

    /// The configuration in use.
    pub fn config(&self) -> &WorkerPoolConfig {
        &self.shared.config
    }

    /// How each worker ended up placed.
    pub fn pin_statuses(&self) -> Vec<(usize, PinStatus)> {
        self.shared
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
        for p in &self.shared.pools {
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

    /// Submits `item` of `class` to a worker of `node`'s pool: the next one (per submitting
    /// thread) that has room. Returns at once.
    ///
    /// # Errors
    /// In [`Rejected::error`], with the item handed back:
    /// - [`ExecError::Overloaded`] when that class's queue of every worker of the node is full
    ///   (`depth` is the node's backlog of the class);
    /// - [`ExecError::NoSuchTarget`] when the plan has no pool for `node`.
    pub fn submit(&self, node: u32, class: Priority, item: T) -> Result<(), Rejected<T>> {
        let Some(p) = self.shared.node_pos.get(node as usize).copied().flatten() else {
            return Err(Rejected {
                error: ExecError::NoSuchTarget {
                    what: "node",
                    index: node,
                },
                item,
            });
        };
        let pool = &self.shared.pools[p];
        let n = pool.workers.len();
        let start = NEXT.with(|c| {
            let v = c.get();
            c.set(v.wrapping_add(1));
            v
        });
        self.submit_among(p, (0..n).map(|k| (start.wrapping_add(k)) % n), class, item)
    }

    /// Submits `item` to one worker's own queue (by plan index), e.g. to keep work next to data
    /// that worker owns.
    ///
    /// # Errors
    /// As [`Executor::submit`]; `Overloaded` when that worker's queue of `class` is full.
    pub fn submit_to_worker(&self, worker: usize, class: Priority, item: T) -> Result<(), Rejected<T>> {
        match self.shared.worker_pos.get(worker) {
            Some(&(p, l)) if p != usize::MAX => self.submit_among(p, std::iter::once(l), class, item),
            _ => Err(Rejected {
                error: ExecError::NoSuchTarget {
                    what: "worker",
                    index: u32::try_from(worker).unwrap_or(u32::MAX),
                },
                item,
            }),
        }
    }

    fn submit_among(
        &self,
        p: usize,
        candidates: impl Iterator<Item = usize> + Clone,
        class: Priority,
        item: T,
    ) -> Result<(), Rejected<T>> {
        let pool = &self.shared.pools[p];
        let mut env = Envelope {
            item,
            enqueued: Instant::now(),
        };
        for l in candidates.clone() {
            let w = &pool.workers[l];
            match w.queues.push(class, env) {
                Ok(()) => {
                    self.after_push(p, l, class);
                    return Ok(());
                }
                Err(back) => env = back,
            }
        }
        pool.rejections[class.index()].inc();
        let depth = candidates.map(|l| pool.workers[l].queues.len(class)).sum();
        Err(Rejected {
            error: ExecError::Overloaded { class, depth },
            item: env.item,
        })
    }

    /// Wakes whoever should run the item just pushed to worker (`p`, `l`): the owner if it
    /// sleeps, and a helper if the owner now has a backlog ([`Shared::wake_helper`]).
    #[inline]
    fn after_push(&self, p: usize, l: usize, class: Priority) {
        let sh = &*self.shared;
        let w = &sh.pools[p].workers[l];
        w.idle.wake_if_sleeping();
        sh.wake_helper(p, l, w.queues.len(class));
    }

    /// A snapshot of the executor's metrics.
    pub fn metrics(&self) -> super::metrics::ExecMetrics {
        super::metrics::snapshot(&self.shared, self.degradations())
    }

    /// Memory held by the queue slots of every worker, in bytes: the sum of all capacities times
    /// the size of one slot (a stamp word plus the item and its timestamp). The ring buffers are
    /// allocated and initialised when the executor starts, so this is resident from the start.
    pub fn queue_memory_bytes(&self) -> usize {
        let per_worker: usize = self.shared.config.capacity.iter().sum();
        per_worker * super::queue::slot_bytes::<T>() * self.shared.worker_pos.len()
    }

    /// Forgets every latency and batch-size sample recorded so far (counters keep counting), to
    /// start a fresh measurement interval.
    pub fn reset_histograms(&self) {
        for w in self.shared.pools.iter().flat_map(|p| p.workers.iter()) {
            let mut h = w.hist.lock().unwrap_or_else(|p| p.into_inner());
            h.queue_wait.reset();
            h.service.reset();
            h.sojourn.reset();
            h.batch_items.reset();
        }
    }

    /// Stops the workers and accounts for every accepted item (see [`super::ShutdownMode`]).
    pub fn shutdown(mut self) -> ShutdownReport<T> {
        self.stop()
    }

    fn stop(&mut self) -> ShutdownReport<T> {
        self.finished = true;
        let sh = &*self.shared;
        sh.closing.store(true, Ordering::SeqCst);
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

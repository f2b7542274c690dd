//! [`Submitter`]: a cloneable handle that submits work to a running executor from any thread.
//!
//! # Submit and shutdown
//!
//! A submit raises `inflight`, then checks `closing`; shutdown sets `closing`, then waits for
//! `inflight` to fall to 0 before it joins the workers and sweeps the queues. Both sides use
//! `SeqCst`, so either the submit sees `closing` (and returns [`ExecError::Closed`], handing the
//! item back) or shutdown sees the submit in flight and waits for its push to land, which the
//! sweep then finds. No accepted item is lost, whichever thread wins.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::error::{ExecError, Rejected};
use super::pool::Shared;
use super::queue::{Envelope, Priority};

thread_local! {
    /// Per-submitting-thread rotation over a node's workers, so submitters share no counter.
    static NEXT: Cell<usize> = Cell::new({
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&std::thread::current().id(), &mut h);
        std::hash::Hasher::finish(&h) as usize
    });
}

/// Submits work to an executor; clone it freely (each clone holds the executor's shared state,
/// not its threads). After [`Executor::shutdown`](super::Executor::shutdown) every submit returns
/// [`ExecError::Closed`] with the item handed back.
pub struct Submitter<T> {
    pub(crate) shared: Arc<Shared<T>>,
}

impl<T> Clone for Submitter<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Submitter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitter")
            .field("closed", &self.shared.closing())
            .finish()
    }
}

impl<T: Send + 'static> Submitter<T> {
    /// The nodes that have a pool, in plan order.
    pub fn nodes(&self) -> Vec<u32> {
        self.shared.pools.iter().map(|p| p.node).collect()
    }

    /// Whether the executor is shutting down or shut down.
    pub fn is_closed(&self) -> bool {
        self.shared.closing()
    }

    /// Items of `class` waiting in `node`'s pool (0 for a node without a pool).
    pub fn depth(&self, node: u32, class: Priority) -> usize {
        match self.shared.node_pos.get(node as usize).copied().flatten() {
            Some(p) => self.shared.pools[p].depth(class),
            None => 0,
        }
    }

    /// Submits `item` of `class` to a worker of `node`'s pool: the next one (per submitting
    /// thread) that has room. Returns at once.
    ///
    /// # Errors
    /// In [`Rejected::error`], with the item handed back:
    /// - [`ExecError::Overloaded`] when that class's queue of every worker of the node is full
    ///   (`depth` is the node's backlog of the class);
    /// - [`ExecError::NoSuchTarget`] when the plan has no pool for `node`;
    /// - [`ExecError::Closed`] once shutdown has begun.
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
        let n = self.shared.pools[p].workers.len();
        let start = NEXT.with(|c| {
            let v = c.get();
            c.set(v.wrapping_add(1));
            v
        });
        self.guarded(p, (0..n).map(|k| (start.wrapping_add(k)) % n), class, item)
    }

    /// Submits `item` to one worker's own queue (by plan index), e.g. to keep work next to data
    /// that worker owns.
    ///
    /// # Errors
    /// As [`Submitter::submit`]; `Overloaded` when that worker's queue of `class` is full.
    pub fn submit_to_worker(&self, worker: usize, class: Priority, item: T) -> Result<(), Rejected<T>> {
        match self.shared.worker_pos.get(worker) {
            Some(&(p, l)) if p != usize::MAX => self.guarded(p, std::iter::once(l), class, item),
            _ => Err(Rejected {
                error: ExecError::NoSuchTarget {
                    what: "worker",
                    index: u32::try_from(worker).unwrap_or(u32::MAX),
                },
                item,
            }),
        }
    }

    /// The `inflight` / `closing` handshake of the module docs around [`Self::submit_among`].
    fn guarded(
        &self,
        p: usize,
        candidates: impl Iterator<Item = usize> + Clone,
        class: Priority,
        item: T,
    ) -> Result<(), Rejected<T>> {
        let sh = &*self.shared;
        sh.inflight.fetch_add(1, Ordering::SeqCst);
        let out = if sh.closing.load(Ordering::SeqCst) {
            Err(Rejected {
                error: ExecError::Closed,
                item,
            })
        } else {
            self.submit_among(p, candidates, class, item)
        };
        sh.inflight.fetch_sub(1, Ordering::SeqCst);
        out
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
    /// sleeps, and a helper if the owner now has a backlog.
    #[inline]
    fn after_push(&self, p: usize, l: usize, class: Priority) {
        let sh = &*self.shared;
        let w = &sh.pools[p].workers[l];
        w.idle.wake_if_sleeping();
        sh.wake_helper(p, l, w.queues.len(class));
    }
}

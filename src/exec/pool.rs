//! The shared state of an executor: one [`NodePool`] per plan node, each holding its workers'
//! queues, idle flags and statistics.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::Serialize;

use super::config::{StealPolicy, WorkerPoolConfig};
use super::park::Idle;
use super::queue::{ClassQueues, Priority};
use super::stats::{WorkerHistograms, WorkerStats};
use crate::alloc::layout::CachePadded;
use crate::metrics::Counter;
use crate::topology::{CpuLocation, WorkerSlot};

/// Where a worker was found running after it tried to pin itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PinStatus {
    /// Pinned, and `getcpu` saw it on its plan CPU and node.
    Verified {
        /// Where `getcpu` saw it.
        location: CpuLocation,
    },
    /// Pinned to its plan CPU, but the kernel puts that CPU on another node than the plan says
    /// (a plan made from another machine's topology).
    OffNode {
        /// Where `getcpu` saw it.
        location: CpuLocation,
    },
    /// Pinning or verification failed; the worker runs unpinned.
    Failed {
        /// The topology module's error, as text.
        reason: String,
    },
    /// Pinning was not attempted ([`super::PinPolicy::Skip`]).
    Skipped,
}

/// One worker's shared part.
#[derive(Debug)]
pub(crate) struct WorkerShared<T> {
    pub(crate) slot: WorkerSlot,
    pub(crate) queues: ClassQueues<T>,
    pub(crate) idle: CachePadded<Idle>,
    pub(crate) stats: CachePadded<WorkerStats>,
    pub(crate) hist: Mutex<WorkerHistograms>,
    pub(crate) pin: OnceLock<PinStatus>,
}

/// The worker pool of one NUMA node: its workers (one per plan [`WorkerSlot`]), their per-class
/// queues, and the node's rejection counters. Submit through [`super::Executor::submit`].
#[derive(Debug)]
pub struct NodePool<T> {
    pub(crate) node: u32,
    pub(crate) memory_node: u32,
    pub(crate) workers: Vec<WorkerShared<T>>,
    pub(crate) rejections: [Counter; 3],
}

impl<T> NodePool<T> {
    /// The node's OS index.
    pub fn node(&self) -> u32 {
        self.node
    }

    /// The node whose memory the pool's workers use (the plan's `memory_node`).
    pub fn memory_node(&self) -> u32 {
        self.memory_node
    }

    /// The plan slots of the pool's workers.
    pub fn slots(&self) -> impl Iterator<Item = &WorkerSlot> {
        self.workers.iter().map(|w| &w.slot)
    }

    /// Number of workers.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Items of `class` waiting in the pool now.
    pub fn depth(&self, class: Priority) -> usize {
        self.workers.iter().map(|w| w.queues.len(class)).sum()
    }

    /// Submits refused with [`super::ExecError::Overloaded`] so far, for `class`.
    pub fn rejections(&self, class: Priority) -> u64 {
        self.rejections[class.index()].get()
    }
}

/// Everything the workers and submitters share.
pub(crate) struct Shared<T> {
    pub(crate) pools: Vec<NodePool<T>>,
    /// Node OS index → position in `pools`.
    pub(crate) node_pos: Vec<Option<usize>>,
    /// Worker plan index → (pool position, local index).
    pub(crate) worker_pos: Vec<(usize, usize)>,
    pub(crate) config: WorkerPoolConfig,
    pub(crate) closing: CachePadded<AtomicBool>,
    /// Submits between their `closing` check and the end of their push. Shutdown waits for it
    /// to reach 0 after setting `closing`, so no push can land after the final sweep.
    pub(crate) inflight: CachePadded<AtomicUsize>,
    pub(crate) paused: CachePadded<AtomicBool>,
    pub(crate) started: std::time::Instant,
}

impl<T> Shared<T> {
    #[inline]
    pub(crate) fn closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    #[inline]
    pub(crate) fn paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    pub(crate) fn worker(&self, pool: usize, local: usize) -> &WorkerShared<T> {
        &self.pools[pool].workers[local]
    }

    /// Worker (`p`, `l`) has `backlog` items of one class waiting: if that is more than it is
    /// about to take (2 or more), wake one sleeping sibling to steal; if its whole backlog
    /// exceeds the cross-node threshold, wake one sleeping worker of another node. Called after
    /// a submit and after the owner pops a batch, so a burst that arrives while the owner is
    /// still waking up (its sleeping flag still set) is noticed at the owner's next pop.
    #[inline]
    pub(crate) fn wake_helper(&self, p: usize, l: usize, backlog: usize) {
        let policy = self.config.steal;
        if policy == StealPolicy::Off || backlog < 2 {
            return;
        }
        let pool = &self.pools[p];
        if let Some(s) = pool
            .workers
            .iter()
            .enumerate()
            .find(|&(i, s)| i != l && s.idle.is_sleeping())
        {
            s.1.idle.wake_if_sleeping();
            return;
        }
        if let StealPolicy::CrossNode { threshold } = policy
            && pool.workers[l].queues.total_len() > threshold
            && let Some(s) = self
                .pools
                .iter()
                .enumerate()
                .filter(|&(q, _)| q != p)
                .flat_map(|(_, np)| np.workers.iter())
                .find(|s| s.idle.is_sleeping())
        {
            s.idle.wake_if_sleeping();
        }
    }

    pub(crate) fn wake_all(&self) {
        for p in &self.pools {
            for w in &p.workers {
                w.idle.wake();
            }
        }
    }
}

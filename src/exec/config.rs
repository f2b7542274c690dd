//! [`WorkerPoolConfig`]: every tuning knob of the executor, with defaults derived from the plan.

use serde::Serialize;

use super::batch::BatchControllerConfig;
use super::error::ExecError;
use super::queue::Priority;
use crate::topology::PlacementPlan;

/// Where an idle worker may steal from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StealPolicy {
    /// No stealing: every item runs on the worker it was queued to.
    Off,
    /// Only from workers of the same node: no item ever crosses nodes.
    WithinNode,
    /// From the same node first; from another node only when the victim's backlog (all classes)
    /// exceeds `threshold` items.
    CrossNode {
        /// The backlog a remote victim must exceed.
        threshold: usize,
    },
}

/// What [`crate::exec::Executor::shutdown`] does with accepted work that has not run yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShutdownMode {
    /// Workers run every accepted item, then stop.
    #[default]
    Drain,
    /// Workers finish the batch in hand and stop; the items still queued are handed back in the
    /// [`crate::exec::ShutdownReport`].
    HandBack,
}

/// What to do when a worker cannot be pinned to its plan CPU (or runs on another node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PinPolicy {
    /// Run unpinned and report [`crate::exec::ExecDegradation::NotPinned`] (the default: a
    /// container that forbids affinity changes still serves).
    #[default]
    BestEffort,
    /// Do not pin at all (tests, oversubscribed benches); reported as a degradation too.
    Skip,
}

/// Configuration of every [`crate::exec::NodePool`] of an executor.
///
/// Capacities are per worker and class: a node with `w` workers accepts up to `w * capacity`
/// items of a class before [`ExecError::Overloaded`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerPoolConfig {
    /// Queue capacity per worker for [`Priority::High`], [`Priority::Normal`], [`Priority::Low`].
    pub capacity: [usize; 3],
    /// Floor of the adaptive batch size (never waited for: a lone item runs at once).
    pub min_batch: usize,
    /// Ceiling of the adaptive batch size.
    pub max_batch: usize,
    /// The batch controller's damping.
    pub batch_controller: BatchControllerConfig,
    /// Low-priority share: when low work waits, at least one batch in every `low_share` batches
    /// a worker runs is a low one. 1 would treat low like the others.
    pub low_share: u32,
    /// Where idle workers steal from.
    pub steal: StealPolicy,
    /// How many times an idle worker re-checks for work (with a spin hint) before parking. 0 =
    /// park at once.
    pub spin_before_park: u32,
    /// Pinning.
    pub pin: PinPolicy,
    /// Shutdown behaviour.
    pub shutdown: ShutdownMode,
}

/// Default capacity per worker: 1024 high, 4096 normal, 1024 low. A guess: if an item takes
/// about 1 µs, 4096 queued items are about 4 ms of work per worker, the order of a
/// latency-critical service's budget; the `exec_capacity` bench measures the trade-off.
pub const DEFAULT_CAPACITY: [usize; 3] = [1024, 4096, 1024];
/// Default batch floor: 1 (a lone item is never held back).
pub const DEFAULT_MIN_BATCH: usize = 1;
/// Default batch ceiling: 64. A guess refined by the `exec_batch` bench: past a few dozen items
/// the per-batch overhead is amortised and larger batches only add latency.
pub const DEFAULT_MAX_BATCH: usize = 64;
/// Default low share: one batch in 8.
pub const DEFAULT_LOW_SHARE: u32 = 8;

impl WorkerPoolConfig {
    /// Defaults for `plan`: the constants above; [`StealPolicy::CrossNode`] with a threshold of
    /// `4 * max_batch` when the plan has several nodes (a remote steal must leave the victim
    /// several batches, so only real surplus crosses the interconnect; a guess to be measured on
    /// a real multi-socket machine), otherwise [`StealPolicy::WithinNode`]; `spin_before_park`
    /// 0 (parking is the default: on a machine with as many workers as CPUs a spinning worker
    /// takes a CPU from a busy one, so spinning is opt-in); best-effort pinning; drain on
    /// shutdown.
    pub fn for_plan(plan: &PlacementPlan) -> Self {
        let steal = if plan.nodes.len() > 1 {
            StealPolicy::CrossNode {
                threshold: 4 * DEFAULT_MAX_BATCH,
            }
        } else {
            StealPolicy::WithinNode
        };
        Self {
            capacity: DEFAULT_CAPACITY,
            min_batch: DEFAULT_MIN_BATCH,
            max_batch: DEFAULT_MAX_BATCH,
            batch_controller: BatchControllerConfig::default(),
            low_share: DEFAULT_LOW_SHARE,
            steal,
            spin_before_park: 0,
            pin: PinPolicy::BestEffort,
            shutdown: ShutdownMode::Drain,
        }
    }

    /// The capacity of one class.
    pub fn capacity_of(&self, class: Priority) -> usize {
        self.capacity[class.index()]
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`ExecError::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ExecError> {
        let bad = |field, reason: &str| {
            Err(ExecError::InvalidConfig {
                field,
                reason: reason.into(),
            })
        };
        if self.capacity.contains(&0) {
            return bad("capacity", "every class needs a capacity of at least 1");
        }
        if self.min_batch == 0 {
            return bad("min_batch", "must be at least 1");
        }
        if self.max_batch < self.min_batch {
            return bad("max_batch", "must be at least min_batch");
        }
        let a = self.batch_controller.alpha;
        if !(a > 0.0 && a <= 1.0) {
            return bad("batch_controller.alpha", "must be in (0, 1]");
        }
        let h = self.batch_controller.hysteresis;
        if !(0.0..1.0).contains(&h) {
            return bad("batch_controller.hysteresis", "must be in [0, 1)");
        }
        if self.low_share == 0 {
            return bad("low_share", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{CpuSet, NodePlan, WorkerSlot};

    pub(crate) fn plan(nodes: usize) -> PlacementPlan {
        PlacementPlan {
            nodes: (0..nodes as u32)
                .map(|n| NodePlan {
                    node: n,
                    cpus: CpuSet::single(0),
                    memory_node: n,
                    workers: vec![WorkerSlot {
                        index: n as usize,
                        local_index: 0,
                        node: n,
                        cpus: CpuSet::single(0),
                        cpu: 0,
                        memory_node: n,
                    }],
                    overflow_nodes: vec![],
                })
                .collect(),
            memory_only_nodes: vec![],
            degradations: vec![],
        }
    }

    #[test]
    fn defaults_follow_the_plan_and_validate() {
        let one = WorkerPoolConfig::for_plan(&plan(1));
        assert_eq!(one.steal, StealPolicy::WithinNode);
        one.validate().unwrap();
        let four = WorkerPoolConfig::for_plan(&plan(4));
        assert_eq!(four.steal, StealPolicy::CrossNode { threshold: 256 });
        four.validate().unwrap();
    }

    #[test]
    fn bad_fields_are_named() {
        let base = WorkerPoolConfig::for_plan(&plan(1));
        let cases: [(&str, WorkerPoolConfig); 5] = [
            (
                "capacity",
                WorkerPoolConfig {
                    capacity: [1, 0, 1],
                    ..base.clone()
                },
            ),
            (
                "min_batch",
                WorkerPoolConfig {
                    min_batch: 0,
                    ..base.clone()
                },
            ),
            (
                "max_batch",
                WorkerPoolConfig {
                    min_batch: 8,
                    max_batch: 4,
                    ..base.clone()
                },
            ),
            (
                "low_share",
                WorkerPoolConfig {
                    low_share: 0,
                    ..base.clone()
                },
            ),
            (
                "batch_controller.alpha",
                WorkerPoolConfig {
                    batch_controller: BatchControllerConfig {
                        alpha: 0.0,
                        ..Default::default()
                    },
                    ..base.clone()
                },
            ),
        ];
        for (want, cfg) in cases {
            match cfg.validate() {
                Err(ExecError::InvalidConfig { field, .. }) => assert_eq!(field, want),
                other => panic!("{want}: {other:?}"),
            }
        }
    }
}

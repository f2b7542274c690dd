//! [`ExecDegradation`]: the ways a running executor is weaker than its plan, as data.
//!
//! Its own file so that the executor (which produces them) and the metrics (which report them)
//! both depend on it and not on each other.

use serde::Serialize;

use crate::topology::CpuLocation;

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

impl std::fmt::Display for ExecDegradation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotPinned { worker, cpu, reason } => {
                write!(f, "worker {worker} runs unpinned (planned CPU {cpu}): {reason}")
            }
            Self::OffNode {
                worker,
                plan_node,
                location,
            } => write!(
                f,
                "worker {worker} was planned on node {plan_node} but runs on CPU {} of node {}",
                location.cpu, location.node
            ),
            Self::PinningSkipped { workers } => write!(
                f,
                "pinning is switched off in the configuration ({workers} workers unpinned)"
            ),
        }
    }
}

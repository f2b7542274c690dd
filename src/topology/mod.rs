//! The machine: packages, NUMA nodes, cores, PUs and caches; CPU sets; pinning; the placement
//! plan.
//!
//! Discovery reads Linux's sysfs and procfs ([`Topology::discover`]) or a snapshot of them under
//! a root directory ([`Topology::from_sysfs_root`]), in pure Rust, and restricts the result to
//! what this process may use, as hwloc does by default: online CPUs, the affinity mask (live
//! only) and the cgroup cpuset (v1, v2 or legacy `/dev/cpuset`). Packages and cores come from the
//! kernel's sibling sets (or, on kernels without `cpu*/topology/`, from `/proc/cpuinfo`), caches
//! from `cpu*/cache/index*`, nodes from `node*/`; every fallback taken is listed in
//! [`Topology::fallbacks`]. On the hwloc test corpus this agrees with hwloc's own answer
//! (`tests/fixtures_hwloc.rs`). With the `hwloc` feature, `Topology::from_hwloc` gives the same
//! model through hwloc itself. [`PlacementPlan`] turns a topology into one worker
//! per core of every node, each with a CPU and a home node for its memory; [`pin`] pins threads
//! and checks with `getcpu` that they run where the plan says.

pub mod cpuset;
mod discover;
pub mod error;
#[cfg(feature = "hwloc")]
mod hwloc;
pub mod model;
pub mod pin;
pub mod plan;
pub mod render;
pub mod size;
#[cfg(target_os = "linux")]
mod sys_linux;
#[cfg(not(target_os = "linux"))]
mod sys_other;
mod sysfs;

pub use cpuset::{CpuSet, CpuSetParseError, NodeSet};
pub use error::TopologyError;
pub use model::{Cache, CacheKind, Core, Fallback, Group, NumaNode, Package, Pu, Source, Topology};
pub use pin::{CpuLocation, current_location, pin_and_verify, pin_current_thread, spawn_pinned};
pub use plan::{Degradation, NodePlan, PlacementPlan, PlanOptions, WorkerGranularity, WorkerSlot};

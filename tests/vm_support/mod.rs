//! Support for the multi-node test binaries (`tests/numa_*.rs`).
//!
//! `scripts/vm-tests.sh` runs each such binary inside the emulated multi-node machine
//! (`../shared/numavm/numavm.sh`) and tells it what QEMU was asked to build through
//! `LOCUS_VM_SPEC` (`key=value` pairs, comma-separated). [`VmSpec`] turns that into the machine
//! the tests should discover. On a machine with too few nodes, [`require_nodes`] prints
//! `skipped: <reason>` straight to stderr (past the test harness's capture, so it is always seen)
//! and the test returns without asserting.
#![allow(dead_code)]

use std::io::Write;

use locus::topology::Topology;

/// The emulated machine as `numavm.sh` was told to build it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    /// Sockets (packages).
    pub sockets: u32,
    /// CPU-bearing NUMA nodes per socket.
    pub nodes_per_socket: u32,
    /// Cores per CPU-bearing node.
    pub cores_per_node: u32,
    /// Hardware threads per core.
    pub threads_per_core: u32,
    /// Memory per node, MiB.
    pub mem_per_node_mib: u64,
    /// Extra memory-only nodes, numbered after the CPU-bearing ones.
    pub cpuless_nodes: u32,
    /// Distance between nodes of one socket.
    pub dist_near: u32,
    /// Distance between nodes of different sockets.
    pub dist_far: u32,
    /// Distance to or from a memory-only node.
    pub dist_cpuless: u32,
}

impl VmSpec {
    /// The spec from `LOCUS_VM_SPEC`, or `None` outside the VM. Panics on a malformed value:
    /// that is a bug in the harness, and the test must fail loudly.
    pub fn from_env() -> Option<Self> {
        let text = std::env::var("LOCUS_VM_SPEC").ok()?;
        let mut spec = VmSpec {
            sockets: 2,
            nodes_per_socket: 2,
            cores_per_node: 2,
            threads_per_core: 1,
            mem_per_node_mib: 1024,
            cpuless_nodes: 0,
            dist_near: 16,
            dist_far: 32,
            dist_cpuless: 40,
        };
        for pair in text.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("LOCUS_VM_SPEC: bad pair {pair:?}"));
            let n: u64 = v
                .parse()
                .unwrap_or_else(|_| panic!("LOCUS_VM_SPEC: bad number in {pair:?}"));
            match k {
                "sockets" => spec.sockets = n as u32,
                "nodes_per_socket" => spec.nodes_per_socket = n as u32,
                "cores_per_node" => spec.cores_per_node = n as u32,
                "threads_per_core" => spec.threads_per_core = n as u32,
                "mem_per_node_mib" => spec.mem_per_node_mib = n,
                "cpuless_nodes" => spec.cpuless_nodes = n as u32,
                "dist_near" => spec.dist_near = n as u32,
                "dist_far" => spec.dist_far = n as u32,
                "dist_cpuless" => spec.dist_cpuless = n as u32,
                other => panic!("LOCUS_VM_SPEC: unknown key {other:?}"),
            }
        }
        Some(spec)
    }

    /// Number of nodes that have CPUs.
    pub fn cpu_nodes(&self) -> u32 {
        self.sockets * self.nodes_per_socket
    }

    /// Number of nodes in all.
    pub fn total_nodes(&self) -> u32 {
        self.cpu_nodes() + self.cpuless_nodes
    }

    /// CPUs per CPU-bearing node.
    pub fn cpus_per_node(&self) -> u32 {
        self.cores_per_node * self.threads_per_core
    }

    /// Number of CPUs in all.
    pub fn total_cpus(&self) -> u32 {
        self.cpu_nodes() * self.cpus_per_node()
    }

    /// The CPUs of `node`: QEMU numbers CPUs socket, core, thread major, and numavm gives node n
    /// a contiguous block of cores of its socket, so node n owns a contiguous block of CPUs.
    pub fn cpus_of_node(&self, node: u32) -> Vec<u32> {
        if node >= self.cpu_nodes() {
            return Vec::new();
        }
        let per = self.cpus_per_node();
        (node * per..(node + 1) * per).collect()
    }

    /// The socket of a CPU-bearing node.
    pub fn socket_of_node(&self, node: u32) -> u32 {
        node / self.nodes_per_socket
    }

    /// The SLIT distance QEMU was given between two nodes.
    pub fn distance(&self, a: u32, b: u32) -> u32 {
        if a == b {
            10
        } else if a >= self.cpu_nodes() || b >= self.cpu_nodes() {
            self.dist_cpuless
        } else if self.socket_of_node(a) == self.socket_of_node(b) {
            self.dist_near
        } else {
            self.dist_far
        }
    }
}

/// Prints a skip reason where it is always seen (stderr, bypassing the harness's capture).
pub fn skip(test: &str, reason: &str) {
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {reason}");
}

/// Whether this machine has at least `n` NUMA nodes with CPUs; if not, prints why the calling
/// test is skipped. Inside the VM (`LOCUS_VM_SPEC` set) too few nodes is a failure, not a skip.
pub fn require_nodes(test: &str, n: usize) -> bool {
    let topo = match Topology::discover() {
        Ok(t) => t,
        Err(e) => panic!("topology discovery failed: {e}"),
    };
    let have = topo
        .numa_nodes
        .iter()
        .filter(|node| !node.cpus.is_empty())
        .count();
    if have >= n {
        return true;
    }
    if VmSpec::from_env().is_some() {
        panic!("inside the emulated machine only {have} node(s) with CPUs were found, {n} needed");
    }
    skip(
        test,
        &format!(
            "needs {n} NUMA nodes with CPUs, this machine has {have}; run scripts/vm-tests.sh for the emulated multi-node machine"
        ),
    );
    false
}

/// Whether the VM spec is present and has a memory-only node; prints why not otherwise.
pub fn require_cpuless_node(test: &str) -> Option<VmSpec> {
    match VmSpec::from_env() {
        Some(spec) if spec.cpuless_nodes > 0 => Some(spec),
        Some(_) => {
            skip(
                test,
                "this VM configuration has no memory-only node (run with --cpuless-nodes 1)",
            );
            None
        }
        None => {
            skip(
                test,
                "needs the emulated machine with a memory-only node (scripts/vm-tests.sh)",
            );
            None
        }
    }
}

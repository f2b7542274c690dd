//! `locus memory`: the node×node memory latency/bandwidth matrix and where each node's arena
//! really put its pages; or JSON.

use std::io::Write;

use locus::alloc::allowed_memory_nodes;
use locus::diag::access::{AccessOptions, measure_matrix};
use locus::topology::{PlacementPlan, PlanOptions, Topology};

/// Arguments of `locus memory`.
#[derive(clap::Args)]
pub struct Args {
    /// Pointer-chase ring per node, MiB (use several times the LLC on real hardware).
    #[arg(long, value_name = "MIB", default_value_t = 8, value_parser = crate::flags::usize_in(1, crate::flags::MAX_MIB))]
    chase_mib: usize,
    /// Dependent loads timed per cell.
    #[arg(long, value_name = "N", default_value_t = 200_000, value_parser = crate::flags::usize_in(1, crate::flags::MAX_ITEMS))]
    chase_steps: usize,
    /// Streaming-read buffer per node, MiB.
    #[arg(long, value_name = "MIB", default_value_t = 16, value_parser = crate::flags::usize_in(1, crate::flags::MAX_MIB))]
    stream_mib: usize,
    /// Passes over the streaming buffer per cell.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = crate::flags::usize_in(1, 1 << 20))]
    stream_passes: usize,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.chase_mib == 0 || args.stream_mib == 0 || args.chase_steps == 0 || args.stream_passes == 0 {
        return Err("sizes and counts must be > 0".into());
    }
    let mib = |m: usize| {
        m.checked_mul(1 << 20)
            .ok_or_else(|| format!("{m} MiB does not fit in memory"))
    };
    let options = AccessOptions {
        chase_bytes: mib(args.chase_mib)?,
        chase_steps: args.chase_steps,
        stream_bytes: mib(args.stream_mib)?,
        stream_passes: args.stream_passes,
    };
    let topo = Topology::discover()?;
    let plan = PlacementPlan::new(&topo, &PlanOptions::default())?;
    // The kernel's word on which nodes may hold our memory; discovery's if the kernel has none.
    let memory_nodes = match allowed_memory_nodes() {
        Ok(set) => set.to_vec(),
        Err(_) => topo.allowed_mems.to_vec(),
    };
    let matrix = measure_matrix(&plan, &memory_nodes, options)?;
    // Written, not printed: a closed pipe (`| head`) is an error to report, not a panic.
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&matrix)?)?;
    } else {
        write!(out, "{matrix}")?;
    }
    Ok(())
}

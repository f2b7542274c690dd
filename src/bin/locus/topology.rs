//! `locus topology`: the machine as a tree, then the placement plan; or JSON.

use std::path::PathBuf;

use locus::topology::{PlacementPlan, PlanOptions, Topology, WorkerGranularity};

/// Arguments of `locus topology`.
#[derive(clap::Args)]
pub struct Args {
    /// Read a sysfs snapshot whose sys/ and proc/ lie under DIR instead of the live machine.
    #[arg(long, value_name = "DIR")]
    sysfs_root: Option<PathBuf>,
    /// Print JSON (topology and plan) instead of the tree. Its `pus` lists only allowed PUs;
    /// `all_pus` lists every PU the kernel knows, with `online` and `allowed` flags;
    /// `numa_nodes` lists the nodes whose memory may be used, as hwloc does.
    #[arg(long)]
    json: bool,
    /// One worker per PU instead of one per core.
    #[arg(long)]
    per_pu: bool,
    /// Discover through hwloc instead of the pure-Rust reader (set HWLOC_FSROOT to read a
    /// snapshot).
    #[cfg(feature = "hwloc")]
    #[arg(long, conflicts_with = "sysfs_root")]
    hwloc: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(feature = "hwloc")]
    if args.hwloc {
        let topo = Topology::from_hwloc()?;
        return show(&args, &topo);
    }
    let topo = match &args.sysfs_root {
        Some(root) => Topology::from_sysfs_root(root)?,
        None => Topology::discover()?,
    };
    show(&args, &topo)
}

/// Prints `topo` and its plan as the arguments ask.
fn show(args: &Args, topo: &Topology) -> Result<(), Box<dyn std::error::Error>> {
    let options = PlanOptions {
        granularity: if args.per_pu {
            WorkerGranularity::PerPu
        } else {
            WorkerGranularity::PerCore
        },
        ..PlanOptions::default()
    };
    let plan = PlacementPlan::new(topo, &options);
    if args.json {
        let mut value = serde_json::to_value(topo)?;
        if let serde_json::Value::Object(map) = &mut value {
            // Every `pus` list of the JSON holds allowed PUs only, the top-level one included;
            // the PUs hidden (offline, or outside the affinity mask or cpuset) stay visible, with
            // their flags, in `all_pus`.
            let all = serde_json::to_value(&topo.pus)?;
            let allowed = serde_json::to_value(
                topo.pus
                    .iter()
                    .filter(|p| p.online && p.allowed)
                    .collect::<Vec<_>>(),
            )?;
            map.insert("pus".into(), allowed);
            map.insert("all_pus".into(), all);
            // Like hwloc, `numa_nodes` lists the nodes whose memory may be used (their
            // distance rows cut to match); nodes with allowed CPUs but forbidden memory are in
            // `numa_nodes_memory_not_allowed`.
            let keep: Vec<bool> = topo.numa_nodes.iter().map(|n| n.memory_allowed).collect();
            let mut allowed_nodes = Vec::new();
            let mut other_nodes = Vec::new();
            for (node, &kept) in topo.numa_nodes.iter().zip(&keep) {
                let mut node = node.clone();
                if node.distances.len() == keep.len() {
                    node.distances = node
                        .distances
                        .iter()
                        .zip(&keep)
                        .filter(|(_, k)| **k)
                        .map(|(d, _)| *d)
                        .collect();
                }
                if kept {
                    allowed_nodes.push(node)
                } else {
                    other_nodes.push(node)
                }
            }
            map.insert("numa_nodes".into(), serde_json::to_value(allowed_nodes)?);
            map.insert(
                "numa_nodes_memory_not_allowed".into(),
                serde_json::to_value(other_nodes)?,
            );
            map.insert(
                "placement_plan".into(),
                match &plan {
                    Ok(p) => serde_json::to_value(p)?,
                    Err(e) => serde_json::json!({ "error": e.to_string() }),
                },
            );
        }
        let mut text = serde_json::to_string_pretty(&value)?;
        text.push('\n');
        return write_stdout(&text);
    }
    let mut text = locus::topology::render::tree(topo);
    match &plan {
        Ok(p) => text.push_str(&locus::topology::render::plan(p)),
        Err(e) => text.push_str(&format!("Placement plan: unavailable: {e}\n")),
    }
    write_stdout(&text)
}

/// Writes to stdout; a closed pipe (`locus topology | head`) is not an error.
fn write_stdout(text: &str) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

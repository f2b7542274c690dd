//! `locus engine-status`: opens an engine on this machine, fills it with synthetic episodes, and
//! prints per shard its node, workers, where its pages are, the messages its workers received
//! (after a few recalls with spread), the distance kernels and every degradation; or the metrics
//! as JSON or Prometheus text.

use std::io::Write;
use std::time::{Duration, Instant};

use locus::engine::{Cue, Engine, Episode, MessageKind, ShardCount, SpreadParams};

/// Arguments of `locus engine-status`.
#[derive(clap::Args)]
pub struct Args {
    /// Embedding dimension.
    #[arg(long, alias = "dim", value_name = "N", default_value_t = 768, value_parser = crate::flags::usize_in(1, crate::flags::MAX_DIMENSION))]
    dimension: usize,
    /// Synthetic episodes to observe first (so the shards have pages to report).
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = crate::flags::usize_in(0, crate::flags::MAX_ITEMS))]
    episodes: usize,
    /// Shards (default: one per NUMA node).
    #[arg(long, value_name = "N", value_parser = crate::flags::usize_in(1, crate::flags::MAX_SHARDS))]
    shards: Option<usize>,
    /// Recalls (with spread) to run after the episodes are indexed, so the message counters show
    /// search and spread traffic too.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = crate::flags::usize_in(0, crate::flags::MAX_ITEMS))]
    recalls: usize,
    /// Print the metrics snapshot as JSON instead of the table.
    #[arg(long, conflicts_with = "prometheus")]
    json: bool,
    /// Print the metrics as Prometheus text instead of the table.
    #[arg(long)]
    prometheus: bool,
}

/// A deterministic pseudo-random vector (xorshift), so runs repeat.
fn vector(state: &mut u64, dim: usize) -> Vec<f32> {
    (0..dim)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            (*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut b = Engine::builder().dimension(args.dimension);
    if let Some(n) = args.shards {
        b = b.shards(ShardCount::Exactly(n));
    }
    let engine = b.open()?;
    let started = Instant::now();
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let mut accepted = 0usize;
    while accepted < args.episodes {
        match engine.observe(Episode::new(vector(&mut state, args.dimension))) {
            Ok(_) => accepted += 1,
            Err(locus::engine::EngineError::Overloaded { retry_after, .. }) => {
                std::thread::sleep(retry_after.min(Duration::from_millis(50)));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let observed_in = started.elapsed();
    let indexed = engine.wait_indexed(Duration::from_secs(600));
    for _ in 0..args.recalls {
        let cue = Cue::new(vector(&mut state, args.dimension), 10).with_spread(SpreadParams::default());
        engine.recall(&cue)?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&engine.metrics_snapshot())?
        )?;
        return Ok(());
    }
    if args.prometheus {
        write!(out, "{}", engine.metrics_text())?;
        return Ok(());
    }
    let placement = engine.placement(0);
    let m = engine.metrics_snapshot();
    writeln!(
        out,
        "engine: {} shards, dimension {}, kernels {}, {} episodes observed in {:.2?}{}",
        engine.shard_count(),
        engine.dimension(),
        engine.kernels(),
        accepted,
        observed_in,
        if indexed {
            ", all indexed"
        } else {
            ", index still behind"
        }
    )?;
    writeln!(
        out,
        "{:>5} {:>4} {:>6} {:>7} {:>9} {:>8} {:>12} {:>10}  per node",
        "shard", "node", "memory", "workers", "episodes", "segments", "pages(home)", "home"
    )?;
    for (s, p) in m.shards.iter().zip(&placement) {
        let episodes: usize = s.spaces.iter().map(|x| x.episodes).sum();
        let segments: usize = s.spaces.iter().map(|x| x.segments).sum();
        let home = p
            .home_fraction()
            .map_or("unknown".to_string(), |f| format!("{:.2}%", f * 100.0));
        writeln!(
            out,
            "{:>5} {:>4} {:>6} {:>7} {:>9} {:>8} {:>12} {:>10}  {:?}{}",
            s.shard,
            s.node,
            s.memory_node,
            s.workers,
            episodes,
            segments,
            format!("{}({})", p.pages_present, p.pages_on_home),
            home,
            p.per_node,
            p.error.as_ref().map_or(String::new(), |e| format!("  ({e})"))
        )?;
    }
    writeln!(
        out,
        "messages received per shard (after {} recalls with spread):",
        args.recalls
    )?;
    for s in &m.shards {
        let kinds: Vec<String> = MessageKind::ALL
            .iter()
            .map(|k| format!("{} {}", k.as_str(), s.messages.get(k).copied().unwrap_or(0)))
            .collect();
        writeln!(
            out,
            "  shard {}: {}; tasks run off node {}; edges lost {}",
            s.shard,
            kinds.join(", "),
            s.tasks_off_node,
            s.edges_lost
        )?;
    }
    if m.degradations.is_empty() {
        writeln!(out, "degradations: none")?;
    } else {
        writeln!(out, "degradations:")?;
        for d in &m.degradations {
            writeln!(out, "  {d}")?;
        }
    }
    Ok(())
}

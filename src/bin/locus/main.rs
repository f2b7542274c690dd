//! `locus`: the command-line face of the library. Each subcommand lives in its own file.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench_durable;
mod bench_engine;
mod bench_index;
mod bench_spread;
mod bench_wal;
mod compare;
mod counters;
mod engine_status;
mod flags;
mod loadtest;
mod memory;
mod replay;
mod topology;

/// Locus: NUMA-aware placement and associative memory for multi-socket Linux.
#[derive(Parser)]
#[command(name = "locus", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print this machine's topology (or a sysfs snapshot's) and the placement plan.
    Topology(topology::Args),
    /// List the hardware/software counters this machine offers (and why others are missing),
    /// then count a calibrated sequential vs random memory walk.
    Counters(counters::Args),
    /// Print the node×node memory latency/bandwidth matrix and each node's page placement.
    Memory(memory::Args),
    /// Open an engine, fill it with synthetic episodes, and print each shard's node, workers,
    /// page placement, kernels and degradations.
    EngineStatus(engine_status::Args),
    /// Streaming ramp against the engine: offered observation rates with concurrent recalls;
    /// accepted rate, refusals, index lag, latency percentiles, memory.
    BenchEngine(bench_engine::Args),
    /// Build and measure a Locus HNSW index on texmex files (the peer benchmark's `--extra` protocol).
    BenchIndex(bench_index::Args),
    /// Measure the write-ahead log: append throughput and latency per sync policy, fsync
    /// latency, bytes per episode, recovery time.
    BenchWal(bench_wal::Args),
    /// Measure what durability costs the engine: observe throughput and latency per sync
    /// policy, fsync latency, snapshot time and pause, recovery vs index rebuild.
    BenchDurable(bench_durable::Args),
    /// Measure spreading activation on scale-free graphs, or replay a graphpeers trace's spreads.
    BenchSpread(bench_spread::Args),
    /// Run a load-test scenario (the embedded default without one) and report its latencies.
    Loadtest(loadtest::Args),
    /// Compare two load-test results (exit 0 ok, 1 regression, 2 competitive regression, 3 bad input).
    Compare(compare::Args),
    /// Replay a ../shared/graphpeers trace through the engine (result JSON + answers for score.py).
    Replay(replay::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Topology(args) => topology::run(args),
        Command::Counters(args) => counters::run(args),
        Command::Memory(args) => memory::run(args),
        Command::BenchIndex(args) => bench_index::run(args),
        Command::BenchWal(args) => bench_wal::run(args),
        Command::BenchDurable(args) => bench_durable::run(args),
        Command::EngineStatus(args) => engine_status::run(args),
        Command::BenchEngine(args) => bench_engine::run(args),
        Command::BenchSpread(args) => bench_spread::run(args),
        Command::Loadtest(args) => loadtest::run(args),
        Command::Compare(args) => return compare::run(args),
        Command::Replay(args) => replay::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("locus: {e}");
            ExitCode::FAILURE
        }
    }
}

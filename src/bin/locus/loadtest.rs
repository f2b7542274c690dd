//! `locus loadtest [SCENARIO]`: runs a load-test scenario (the embedded default without one)
//! against a target, prints the summary, and with `--out DIR` writes `result.json`, the plots
//! and `report.html`. Exits 1 when a `[validation]` target is missed. `--repeat N` runs it N
//! times, each on a fresh target, and keeps every run's per-second P99s in the result, so that
//! `locus compare` judges by significance over all of them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use locus::loadtest::driver::{self, Progress, RunOptions};
use locus::loadtest::engine_target::EngineTarget;
use locus::loadtest::live::LiveStats;
use locus::loadtest::result::RunResult;
use locus::loadtest::scenario::{self, Arrival, Scenario};
use locus::loadtest::target::{LoadTarget, NoopTarget};
use locus::loadtest::{builtin, http, output};

/// What the load is driven against.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum TargetKind {
    /// The in-process Locus engine, opened with the scenario's dimension, spaces and `[engine]`.
    Engine,
    /// Does nothing: measures the harness itself.
    Noop,
}

/// Progress display.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ProgressArg {
    /// A bar on a terminal, plain lines otherwise.
    Auto,
    /// Plain periodic lines.
    Plain,
    /// None.
    Quiet,
}

/// Arguments of `locus loadtest`.
#[derive(clap::Args)]
pub struct Args {
    /// A scenario file, or the name of a shipped one (`burst`: `scenarios/burst.toml` if the
    /// current directory has it, else the copy compiled in). Without one, `default` runs.
    scenario: Option<String>,
    /// Run the scenario this many times, each on a fresh target; the result is the last run's,
    /// with every run's per-second P99s for `locus compare`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: u32,
    /// The system under load.
    #[arg(long, value_enum, default_value = "engine")]
    target: TargetKind,
    /// Write result.json, the plots and report.html into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Serve the target's and the harness's metrics (Prometheus text) on this address during the
    /// run (checked and bound before the target opens; a warning if beyond loopback).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<String>,
    /// With --metrics-addr: how long the endpoint goes on serving the final values after the
    /// run (so a scraper sees them and `running 0`); `0s` stops it with the run.
    #[arg(long, value_parser = parse_duration, default_value = "15s")]
    metrics_grace: Duration,
    /// Override the measured duration (`90s`, `2h`).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Override the warmup.
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,
    /// Override the rate of a constant or Poisson arrival (ops/s).
    #[arg(long, allow_negative_numbers = true)]
    rate: Option<f64>,
    /// Override the number of open-loop client threads (or closed-loop clients).
    #[arg(long)]
    threads: Option<usize>,
    /// Override the number of preloaded episodes.
    #[arg(long)]
    preload: Option<u64>,
    /// Override the seed (decimal, or hex as `0xDEADBEEF`).
    #[arg(long, value_parser = crate::flags::parse_seed)]
    seed: Option<u64>,
    /// Progress display.
    #[arg(long, value_enum, default_value = "auto")]
    progress: ProgressArg,
}

/// Binds the metrics address, saying where it serves and warning when that is beyond loopback.
fn bind_metrics(addr: &str) -> Result<http::MetricsListener, Box<dyn std::error::Error>> {
    let listener = http::MetricsListener::bind(addr)?;
    eprintln!("metrics: http://{}/metrics", listener.addr());
    if listener.beyond_loopback() {
        eprintln!(
            "warning: the metrics endpoint {} is reachable from other machines, unauthenticated \
             (bind 127.0.0.1:PORT to keep it local)",
            listener.addr()
        );
    }
    Ok(listener)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    scenario::parse_duration(s)
}

/// Finds and reads the scenario: a path, `scenarios/NAME.toml` here, a shipped one compiled
/// in, or the embedded default.
fn load(name: Option<&str>) -> Result<Scenario, Box<dyn std::error::Error>> {
    let Some(name) = name else {
        return Ok(scenario::default_scenario()?);
    };
    let path = Path::new(name);
    if path.exists() {
        return Ok(scenario::load_file(path)?);
    }
    let in_dir = Path::new("scenarios").join(format!("{name}.toml"));
    if in_dir.exists() {
        return Ok(scenario::load_file(&in_dir)?);
    }
    if let Some(s) = builtin::get(name) {
        return Ok(s?);
    }
    Err(format!(
        "no scenario file `{name}`, and no shipped scenario of that name (shipped: {})",
        builtin::names().join(", ")
    )
    .into())
}

fn apply_overrides(s: &mut Scenario, a: &Args) -> Result<(), String> {
    if let Some(d) = a.duration {
        if d.is_zero() {
            return Err("--duration must be longer than zero".into());
        }
        s.duration = d;
    }
    if let Some(w) = a.warmup {
        s.warmup = w;
    }
    if let Some(r) = a.rate {
        if !(r.is_finite() && r > 0.0 && r <= scenario::MAX_RATE) {
            return Err(format!("--rate {r} is not in (0, {}]", scenario::MAX_RATE));
        }
        match &mut s.arrival {
            Arrival::Constant { rate } | Arrival::Poisson { rate } => *rate = r,
            other => {
                return Err(format!(
                    "--rate applies to constant or poisson arrivals, not {}",
                    other.describe()
                ));
            }
        }
    }
    if let Some(t) = a.threads {
        if !(1..=scenario::MAX_CLIENTS).contains(&t) {
            return Err(format!("--threads {t} is not in 1..={}", scenario::MAX_CLIENTS));
        }
        match &mut s.arrival {
            Arrival::Closed { clients } => *clients = t,
            _ => s.threads = t,
        }
    }
    if let Some(p) = a.preload {
        if p > scenario::MAX_PRELOAD {
            return Err(format!("--preload {p} is over {}", scenario::MAX_PRELOAD));
        }
        s.data.preload = p;
    }
    if let Some(seed) = a.seed {
        s.seed = seed;
    }
    Ok(())
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // Everything a user gave is checked before any work: the scenario and the overrides, the
    // output directory, the metrics address (bound now, served once the target is open).
    let mut s = load(args.scenario.as_deref())?;
    apply_overrides(&mut s, &args)?;
    if let Some(dir) = &args.out {
        crate::flags::check_out_dir("--out", dir)?;
    }
    let mut listener = match &args.metrics_addr {
        Some(addr) => Some(bind_metrics(addr)?),
        None => None,
    };
    let mut server: Option<http::MetricsServer> = None;
    let progress = match args.progress {
        ProgressArg::Auto => Progress::Auto,
        ProgressArg::Plain => Progress::Plain,
        ProgressArg::Quiet => Progress::Quiet,
    };
    let runs = args.repeat;
    let mut earlier = Vec::new();
    let mut result: Option<RunResult> = None;
    for i in 1..=runs {
        if let Some(r) = result.take() {
            eprintln!(
                "run {}/{runs}: P99 (all ops) {:.1} µs",
                i - 1,
                r.overall.latency_us.p99
            );
            earlier.push(r.as_repeat());
        }
        let target: Arc<dyn LoadTarget> = match args.target {
            TargetKind::Noop => Arc::new(NoopTarget),
            TargetKind::Engine => Arc::new(EngineTarget::open(&s)?),
        };
        let live = Arc::new(LiveStats::new());
        // The address bound before the first run serves it; a later run's target is served on
        // the same address, bound again once the previous run's server is closed.
        if let Some(previous) = server.take() {
            let addr = previous.addr().to_string();
            drop(previous);
            listener = Some(http::MetricsListener::bind(&addr)?);
        }
        if let Some(l) = listener.take() {
            server = Some(l.serve(Arc::clone(&target), Arc::clone(&live))?);
        }
        eprintln!(
            "locus loadtest: scenario {} ({}), target {}, {} for {:?} after {:?} warmup{}",
            s.name,
            s.source,
            target.name(),
            s.arrival.describe(),
            s.duration,
            s.warmup,
            if runs > 1 {
                format!(" (run {i} of {runs})")
            } else {
                String::new()
            }
        );
        result = Some(driver::run(&s, target.as_ref(), &RunOptions { progress, live })?);
    }
    let Some(mut result) = result else {
        return Err("--repeat must be at least 1".into());
    };
    if runs > 1 {
        eprintln!(
            "run {runs}/{runs}: P99 (all ops) {:.1} µs",
            result.overall.latency_us.p99
        );
    }
    result.repeats = earlier;
    print!("{}", result.summary_text());
    if let Some(dir) = &args.out {
        let written = output::write_all(&result, dir)?;
        eprintln!(
            "wrote {}",
            written
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(server) = server {
        if !args.metrics_grace.is_zero() {
            eprintln!(
                "metrics: serving the final values on http://{}/metrics for {:?} more",
                server.addr(),
                args.metrics_grace
            );
        }
        server.serve_final_for(args.metrics_grace);
    }
    if result.validation.passed {
        Ok(())
    } else {
        Err(format!(
            "scenario {} missed its targets: {}",
            result.name,
            result.validation.failures.join("; ")
        )
        .into())
    }
}

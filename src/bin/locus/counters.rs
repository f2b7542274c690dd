//! `locus counters`: which counters this machine offers and why the others are missing, then a
//! calibrated workload (sequential vs random reads over a buffer larger than the LLC) counted
//! with every event that is available.

use locus::counters::paranoid::{self, Paranoid};
use locus::counters::pmu::{EVENT_SOURCE_DIR, core_pmu_present};
use locus::counters::raw_events;
use locus::counters::report::describe;
use locus::counters::{
    CounterOptions, CounterReport, CpuModel, Event, Reading, Target, availability, measure,
};
use locus::diag::memory_walk::{MemoryWalk, SizeSource, buffer_bytes_for};
use locus::topology::Topology;
use serde::Serialize;

/// Arguments of `locus counters`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Buffer size for the workload in MiB (default: 4 × the LLC, or 64 MiB if unknown).
    #[arg(long, value_name = "MIB", value_parser = crate::flags::u64_in(1, crate::flags::MAX_MIB))]
    buffer_mib: Option<u64>,
    /// Only list the events; skip the workload.
    #[arg(long)]
    no_workload: bool,
}

#[derive(Serialize)]
struct EventStatus {
    event: Event,
    available: bool,
    reason: Option<String>,
}

#[derive(Serialize)]
struct Phase {
    name: &'static str,
    wall_ns: u64,
    ns_per_line: f64,
    llc_misses_per_line: Option<f64>,
    l1d_miss_rate: Option<f64>,
    llc_miss_rate: Option<f64>,
    instructions_per_cycle: Option<f64>,
    report: CounterReport,
}

#[derive(Serialize)]
struct Workload {
    buffer_bytes: u64,
    size_source: SizeSource,
    lines: usize,
    phases: Vec<Phase>,
    random_over_sequential_time: f64,
}

#[derive(Serialize)]
struct Output {
    cpu: CpuModel,
    core_pmu_present: bool,
    perf_event_paranoid: Paranoid,
    privileged: bool,
    raw_l2_events: Option<raw_events::ModelEvents>,
    events: Vec<EventStatus>,
    workload: Option<Workload>,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.buffer_mib == Some(0) {
        return Err("--buffer-mib must be at least 1".into());
    }
    let cpu = CpuModel::detect();
    let events: Vec<EventStatus> =
        availability(&Event::ALL, Target::CurrentThread, &CounterOptions::default())
            .into_iter()
            .map(|(event, r)| EventStatus {
                event,
                available: r.is_ok(),
                reason: r.err().map(|u| u.to_string()),
            })
            .collect();
    let workload = if args.no_workload {
        None
    } else {
        Some(run_workload(args.buffer_mib)?)
    };
    let out = Output {
        raw_l2_events: raw_events::lookup(&cpu),
        cpu,
        core_pmu_present: core_pmu_present(),
        perf_event_paranoid: Paranoid::read(),
        privileged: paranoid::privileged(),
        events,
        workload,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_text(&out);
    }
    Ok(())
}

fn run_workload(buffer_mib: Option<u64>) -> Result<Workload, Box<dyn std::error::Error>> {
    let (bytes, size_source) = match buffer_mib {
        Some(mib) => (mib.saturating_mul(1 << 20), SizeSource::Explicit),
        None => {
            let llc = Topology::discover().ok().and_then(|t| t.llc_size_bytes());
            buffer_bytes_for(llc)
        }
    };
    let walk = MemoryWalk::new(bytes, 0x5EED);
    // Warm up: fault in every page and settle the clock before counting.
    std::hint::black_box(walk.sequential());
    std::hint::black_box(walk.random());
    let lines = walk.line_count();
    let mut phases = Vec::new();
    for (name, random) in [("sequential", false), ("random", true)] {
        let (_, report) = measure(&Event::ALL, || {
            std::hint::black_box(if random { walk.random() } else { walk.sequential() })
        })?;
        let wall_ns = report.wall_ns.unwrap_or(0);
        phases.push(Phase {
            name,
            wall_ns,
            ns_per_line: wall_ns as f64 / lines as f64,
            llc_misses_per_line: report.value(Event::LlcMisses).map(|m| m as f64 / lines as f64),
            l1d_miss_rate: report.l1d_miss_rate(),
            llc_miss_rate: report.llc_miss_rate(),
            instructions_per_cycle: report.ratio(Event::Instructions, Event::Cycles),
            report,
        });
    }
    let ratio = phases[1].wall_ns as f64 / phases[0].wall_ns.max(1) as f64;
    Ok(Workload {
        buffer_bytes: walk.bytes(),
        size_source,
        lines,
        phases,
        random_over_sequential_time: ratio,
    })
}

fn rate(r: Option<f64>, percent: bool) -> String {
    match r {
        Some(v) if percent => format!("{:.2}%", v * 100.0),
        Some(v) => format!("{v:.3}"),
        None => "n/a".into(),
    }
}

fn print_text(out: &Output) {
    println!("CPU: {}", out.cpu);
    if out.core_pmu_present {
        println!("Core PMU: present");
    } else {
        println!("Core PMU: none under {EVENT_SOURCE_DIR} — PMU not available (virtualized?)");
    }
    println!(
        "perf_event_paranoid: {} (CAP_PERFMON/CAP_SYS_ADMIN: {})",
        out.perf_event_paranoid,
        if out.privileged { "yes" } else { "no" }
    );
    match &out.raw_l2_events {
        Some(m) => println!(
            "Raw L2 events: {} ({}, {})",
            m.microarchitecture, m.l2_accesses.name, m.l2_misses.name
        ),
        None => println!("Raw L2 events: none known for this CPU model"),
    }
    println!("\nEvents (each opened alone for this thread, user mode):");
    for e in &out.events {
        match &e.reason {
            None => println!("  {:<22} available", e.event.name()),
            Some(r) => println!("  {:<22} unavailable: {r}", e.event.name()),
        }
    }
    let Some(w) = &out.workload else {
        return;
    };
    let source = match w.size_source {
        SizeSource::FourTimesLlc => "4 x the LLC the topology reports",
        SizeSource::Fallback => "fallback: the topology reported no LLC size",
        SizeSource::Explicit => "--buffer-mib",
    };
    println!(
        "\nWorkload: read {} cache lines of a {} MiB buffer ({source}), in order and in a random cycle",
        w.lines,
        w.buffer_bytes >> 20
    );
    for p in &w.phases {
        println!(
            "\n  {}: {:.2} ms, {:.2} ns per line",
            p.name,
            p.wall_ns as f64 / 1e6,
            p.ns_per_line
        );
        for r in &p.report.readings {
            let text = match &r.reading {
                Reading::Unavailable(_) => "unavailable (reason listed above)".to_string(),
                other => describe(other),
            };
            println!("    {:<22} {text}", r.event.name());
        }
        println!(
            "    derived: L1D miss rate {}, LLC miss rate {}, LLC misses per line {}, IPC {}",
            rate(p.l1d_miss_rate, true),
            rate(p.llc_miss_rate, true),
            rate(p.llc_misses_per_line, false),
            rate(p.instructions_per_cycle, false)
        );
        for n in &p.report.notes {
            println!("    note: {n}");
        }
    }
    println!(
        "\n  random / sequential time: {:.2}x",
        w.random_over_sequential_time
    );
}

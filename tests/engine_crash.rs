//! The engine's crash loop: a child process (this test binary, re-executed in child mode) opens
//! a durable engine (`open_in`, 2 shards) and observes at full rate from 4 threads, printing each
//! id the moment `observe_durable` acknowledged it; the parent SIGKILLs it at random moments,
//! reopens the directory, and checks the acknowledged episodes.
//!
//! - `every batch`: every acknowledged episode is present exactly once (recovery refuses a
//!   duplicate id, and the live count equals the episodes replayed), with its embedding,
//!   payload, timestamp and link intact, and recall finds it.
//! - `every N ms`: what is missing was acknowledged at most N ms plus a scheduling allowance
//!   before the kill, and is, per thread and shard (each shard's log flushes on its own), a
//!   suffix of what the thread was told.
//!
//! Log segments are small (32 KiB) and the child snapshots every 100 records in the
//! background, so kills also land during rotation and snapshots (the summary line counts the
//! kills that left a temporary file or a torn tail behind). `LOCUS_CRASH_SEED` reproduces the
//! kill moments.
#![cfg(target_os = "linux")]

mod crash_support;
mod engine_support;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crash_support::{Run, next_rand, now_micros, policy_from, seed};
use engine_support::small;
use locus::durability::{Durable, SyncPolicy};
use locus::engine::{
    Cue, DurabilityOptions, Engine, EngineBuilder, Episode, EpisodeId, Guarantee, ShardCount,
};

const CHILD_ENV: &str = "LOCUS_ENGINE_CRASH_CHILD";
const DIM: usize = 32;
const THREADS: u64 = 4;
/// Allowance on top of N ms for the flusher's write + fsync and scheduling on a shared machine.
const EVERY_MS_ALLOWANCE_MS: u64 = 1000;

fn builder(policy: SyncPolicy) -> EngineBuilder {
    small(DIM)
        .shards(ShardCount::Exactly(2))
        .durability(DurabilityOptions {
            policy,
            snapshot_every: Some(100),
            snapshot_interval: None,
            segment_bytes: 32 * 1024,
            faults: None,
        })
}

/// The id of a thread's `n`-th episode in run `run`.
fn id_for(run: u64, thread: u64, n: u64) -> u64 {
    (run << 40) | (thread << 32) | n
}

/// The raw embedding of `id` (deterministic, never zero).
fn vector(id: u64) -> Vec<f32> {
    let mut s = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..DIM)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            ((s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    v.iter().map(|x| (f64::from(*x) / n) as f32).collect()
}

fn episode(run: u64, thread: u64, n: u64) -> Episode {
    let id = id_for(run, thread, n);
    let mut ep = Episode::new(vector(id))
        .with_id(id)
        .with_payload(id.to_le_bytes().to_vec())
        .with_timestamp(id ^ 0xABCD);
    if n > 0 {
        ep = ep.with_link_to(id_for(run, thread, n - 1), 0.5);
    }
    ep
}

/// Child mode: open (recovering), then observe from `THREADS` threads forever, printing
/// `ACK id micros` after each acknowledgement.
fn child(spec: &str) -> ! {
    let mut parts = spec.split('|');
    let dir = parts.next().expect("dir").to_string();
    let policy = policy_from(parts.next().expect("policy"));
    let run: u64 = parts.next().expect("run").parse().expect("run");
    let engine = builder(policy).open_in(Path::new(&dir)).expect("child open");
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let engine = &engine;
            s.spawn(move || {
                let out = std::io::stdout();
                for n in 0.. {
                    let (id, g) = engine.observe_durable(episode(run, t, n)).expect("child observe");
                    let ok = match policy {
                        SyncPolicy::EveryBatch => matches!(g, Guarantee::Logged(Durable::Synced { .. })),
                        _ => matches!(g, Guarantee::Logged(Durable::Pending { .. })),
                    };
                    assert!(ok, "unexpected guarantee {g:?}");
                    let mut o = out.lock();
                    writeln!(o, "ACK {} {}", id.0, now_micros()).expect("stdout");
                    o.flush().expect("stdout");
                }
            });
        }
    });
    unreachable!("observer threads never finish")
}

/// Checks a recovered episode against what its id says it must be.
fn check_intact(e: &Engine, id: u64, what: &str) {
    let r = e
        .get(EpisodeId(id))
        .unwrap_or_else(|| panic!("{what}: acknowledged {id:#x} missing"));
    let want = unit(&vector(id));
    assert!(
        r.embedding.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6),
        "{what}: {id:#x} embedding damaged"
    );
    assert_eq!(r.payload, id.to_le_bytes(), "{what}: {id:#x} payload");
    assert_eq!(r.timestamp, id ^ 0xABCD, "{what}: {id:#x} timestamp");
    // The link to the thread's previous episode (present whenever that episode is: with `every
    // N ms` it may live on the other shard, whose log lost more).
    if id & 0xFFFF_FFFF > 0 && e.get(EpisodeId(id - 1)).is_some() {
        assert!(
            r.links.contains(&(EpisodeId(id - 1), 0.5)),
            "{what}: {id:#x} lost its link: {:?}",
            r.links
        );
    }
}

/// Runs this file's child `test` for `policy`, SIGKILLed `ms` after its first acknowledgement.
fn run_child(test: &str, dir: &Path, policy: &str, run: u64, ms: u64) -> Run {
    let spec = format!("{}|{policy}|{run}", dir.display());
    crash_support::run_child(test, CHILD_ENV, spec, run, ms, Duration::from_secs(60))
}

#[test]
fn engine_kill_loop_every_batch_loses_no_acknowledged_episode() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
    }
    let dir = tempfile::tempdir().unwrap();
    let seed = seed();
    let mut rng = seed;
    eprintln!("engine crash loop seed {seed} (LOCUS_CRASH_SEED reproduces the kill moments)");
    let mut acked: Vec<u64> = Vec::new();
    let (mut temp_left, mut torn, mut snapshots, mut loaded) = (0, 0, 0, 0);
    let start = Instant::now();
    let kills = 20;
    for run in 0..kills {
        let ms = next_rand(&mut rng) % 400;
        let r = run_child(
            "engine_kill_loop_every_batch_loses_no_acknowledged_episode",
            dir.path(),
            "batch",
            run,
            ms,
        );
        acked.extend(r.acked.iter().map(|&(id, _)| id));
        let e = builder(SyncPolicy::EveryBatch)
            .open_in(dir.path())
            .unwrap_or_else(|err| panic!("run {run}: recovery after a kill failed: {err}"));
        let report = e.recovery_report().expect("report").clone();
        temp_left += usize::from(!report.removed_temp_files.is_empty());
        torn += usize::from(!report.dropped.is_empty());
        snapshots += usize::from(report.snapshot.is_some());
        loaded += usize::from(report.episodes_loaded_indexed > 0);
        // A kill during a snapshot leaves the previous one, with its index files, in force.
        assert!(report.index_fallbacks.is_empty(), "run {run}: {report:?}");
        // Exactly once: recovery refuses a duplicate id, and nothing was forgotten, so the
        // live count is the number of episode records replayed.
        assert_eq!(e.len() as u64, report.episodes, "run {run}: {report:?}");
        assert!(e.len() >= acked.len(), "run {run}");
        for &id in &acked {
            check_intact(&e, id, &format!("run {run} (kill after {ms} ms)"));
        }
        // Recall finds acknowledged episodes (the last ones of this run and a sample of all).
        let sample: Vec<u64> = r
            .acked
            .iter()
            .rev()
            .take(8)
            .map(|a| a.0)
            .chain((0..8).map(|_| acked[(next_rand(&mut rng) % acked.len() as u64) as usize]))
            .collect();
        for id in sample {
            let hits = e.recall(&Cue::new(vector(id), 1)).expect("recall");
            assert_eq!(hits.hits[0].id, EpisodeId(id), "run {run}: recall of {id:#x}");
        }
        e.shutdown();
    }
    eprintln!(
        "engine crash loop: {kills} kills, {} acknowledged episodes all present once and intact; \
         {temp_left} recoveries removed a temporary file (kill during rotation or a snapshot), \
         {torn} dropped a torn tail, {snapshots} started from a snapshot, {loaded} loaded its \
         index files; {:.1} s",
        acked.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(snapshots > 0, "background snapshots were taken during the loop");
    assert!(loaded > 0, "recoveries loaded the snapshots' index files");
}

#[test]
fn engine_kill_loop_every_ms_loses_at_most_the_last_ms() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
    }
    const N_MS: u64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = seed();
    let mut kept: HashSet<u64> = HashSet::new();
    let mut worst_ms = 0.0f64;
    for run in 0..4 {
        let ms = 20 + next_rand(&mut rng) % 200;
        let r = run_child(
            "engine_kill_loop_every_ms_loses_at_most_the_last_ms",
            dir.path(),
            &N_MS.to_string(),
            run,
            ms,
        );
        let e = builder(SyncPolicy::EveryMs(N_MS))
            .open_in(dir.path())
            .expect("recovery");
        assert!(
            kept.iter().all(|&id| e.get(EpisodeId(id)).is_some()),
            "a recovered episode never disappears later"
        );
        let mut missing_by_thread: HashMap<(u64, usize), Vec<usize>> = HashMap::new();
        for (i, &(id, t)) in r.acked.iter().enumerate() {
            if e.get(EpisodeId(id)).is_some() {
                check_intact(&e, id, &format!("every-ms run {run}"));
                kept.insert(id);
                continue;
            }
            let age_ms = r.kill_micros.saturating_sub(t) as f64 / 1000.0;
            worst_ms = worst_ms.max(age_ms);
            assert!(
                age_ms <= (N_MS + EVERY_MS_ALLOWANCE_MS) as f64,
                "run {run}: {id:#x} acknowledged {age_ms:.1} ms before the kill is missing"
            );
            missing_by_thread
                .entry(((id >> 32) & 0xFF, e.shard_of(EpisodeId(id))))
                .or_default()
                .push(i);
        }
        // Per thread and shard (each shard's log flushes on its own), what is missing is a
        // suffix of what the thread was told.
        for ((thread, shard), missing) in missing_by_thread {
            let told: Vec<usize> = r
                .acked
                .iter()
                .enumerate()
                .filter(|(_, a)| (a.0 >> 32) & 0xFF == thread && e.shard_of(EpisodeId(a.0)) == shard)
                .map(|(i, _)| i)
                .collect();
            assert_eq!(
                &told[told.len() - missing.len()..],
                &missing[..],
                "run {run} thread {thread} shard {shard}"
            );
        }
        e.shutdown();
    }
    eprintln!("every {N_MS} ms: worst age of a lost acknowledgement {worst_ms:.1} ms");
}

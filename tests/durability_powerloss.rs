//! Power-loss crash states, as SQLite's crash tests and ALICE do: a live run of concurrent
//! appenders on two shards, with rotation (16 KiB segments), snapshots and log truncation in
//! flight, writes through a recording seam; then hundreds of crash states per sync policy are
//! materialised from its trace (each file: its content at its last fsync plus any subset of the
//! 4 KiB pages written since, torn inside a page too, and any length between; directory
//! operations since the last directory fsync: a prefix kept). Every state must open in the
//! default mode, hold every record that was acknowledged durable exactly once and intact, and
//! report exactly the bytes it dropped.
//!
//! "Acknowledged durable": with `EveryBatch`, an append that returned; with every policy, an
//! append that returned before a `flush()` that returned (the barrier snapshots use).
//!
//! `cargo test --test durability_powerloss -- --nocapture` prints the figures per policy.

mod durability_support;
mod powerloss_support;

use durability_support::scratch_dir;
use locus::durability::{
    Durable, EpisodeRecord, Record, RecordLimits, Recovery, RecoveryMode, RecoveryOptions, ShardReplay,
    ShardWal, SnapshotWriter, SyncPolicy, WalOptions,
};
use powerloss_support::{RecordingStorage, Rng, Trace};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const DIM: u32 = 4;
const SHARDS: u32 = 2;
/// Appenders and appends per appender: 480 records per policy. `EveryBatch` runs 24 appenders
/// so that groups span pages (a group being written when the power fails may lose a page and
/// keep a later one).
fn writers(policy: SyncPolicy) -> (u64, u64) {
    match policy {
        SyncPolicy::EveryBatch => (24, 20),
        _ => (6, 80),
    }
}
const SNAPSHOTS: usize = 3;
const STATES: usize = 300;

/// A record whose content follows from its id; payloads of 40–400 bytes, so frames straddle
/// pages.
fn record(id: u64) -> Record {
    let seed = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Record::Episode(EpisodeRecord {
        seq: id,
        id,
        space: "default".into(),
        stream: None,
        timestamp: id,
        embedding: (0..DIM).map(|i| ((seed >> (i * 8)) & 0xFF) as f32).collect(),
        payload: (0..40 + seed % 361).map(|i| (seed >> (i % 56)) as u8).collect(),
        links: Vec::new(),
    })
}

fn id_of(r: &Record) -> u64 {
    match r {
        Record::Episode(e) => e.id,
        other => panic!("unexpected record {other:?}"),
    }
}

#[derive(Debug, Clone, Copy)]
struct Ack {
    id: u64,
    /// Logical time the append returned.
    tick: u64,
    /// Trace position when it returned: a crash at or after it must keep it if it was synced.
    pos: usize,
    synced: bool,
}

#[derive(Debug, Clone, Copy)]
struct Flush {
    /// Logical time before `flush()` was called: every append that returned before is durable
    /// once it returned.
    start_tick: u64,
    /// Trace position when every shard's flush had returned.
    end_pos: usize,
}

struct Run {
    trace: Trace,
    acks: Vec<Ack>,
    flushes: Vec<Flush>,
}

fn encode_ids(ids: &[u64]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.to_le_bytes()).collect()
}

fn decode_ids(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The live run: concurrent appenders on every shard, snapshots that fold the logs and truncate
/// them, all through the recording seam.
fn live_run(dir: &Path, policy: SyncPolicy) -> Run {
    let (storage, trace) = RecordingStorage::with_sync_delay(dir, Duration::from_millis(2));
    let mut options = WalOptions::new(DIM, policy);
    options.segment_bytes = 16 << 10;
    options.storage = storage.clone();
    let wals: Vec<Arc<ShardWal>> = (0..SHARDS)
        .map(|s| Arc::new(ShardWal::open(dir, s, options.clone()).unwrap()))
        .collect();
    let clock = Arc::new(AtomicU64::new(0));
    let (writer_count, per_writer) = writers(policy);
    let mut writers = Vec::new();
    for t in 0..writer_count {
        let wals = wals.clone();
        let clock = Arc::clone(&clock);
        let trace = trace.clone();
        writers.push(std::thread::spawn(move || {
            let mut acks = Vec::new();
            for i in 0..per_writer {
                let id = t * 1_000_000 + i;
                let wal = &wals[(id % u64::from(SHARDS)) as usize];
                let got = wal.append(&record(id)).unwrap();
                let tick = clock.fetch_add(1, Ordering::SeqCst);
                acks.push(Ack {
                    id,
                    tick,
                    pos: trace.position(),
                    synced: matches!(got, Durable::Synced { .. }),
                });
                if i % 16 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            acks
        }));
    }
    // Snapshots in flight: flush every shard, fold the newly covered records into the
    // snapshot's id lists, commit, truncate the logs.
    let mut flushes = Vec::new();
    let mut folded: Vec<Vec<u64>> = vec![Vec::new(); SHARDS as usize];
    let mut covered_before = vec![0u64; SHARDS as usize];
    for _ in 0..SNAPSHOTS {
        std::thread::sleep(Duration::from_millis(15));
        let start_tick = clock.fetch_add(1, Ordering::SeqCst);
        let covered: Vec<u64> = wals.iter().map(|w| w.flush().unwrap()).collect();
        flushes.push(Flush {
            start_tick,
            end_pos: trace.position(),
        });
        for s in 0..SHARDS as usize {
            let replay = ShardReplay::range(
                dir,
                s as u32,
                RecordLimits::new(DIM),
                covered_before[s],
                covered[s],
            )
            .unwrap();
            for item in replay.records() {
                folded[s].push(id_of(&item.unwrap().1));
            }
        }
        let mut w = SnapshotWriter::create_in(storage.clone(), dir, DIM, covered.clone()).unwrap();
        for (s, ids) in folded.iter().enumerate() {
            w.section(&format!("ids-{s}"), &encode_ids(ids)).unwrap();
        }
        let info = w.commit().unwrap();
        for wal in &wals {
            wal.truncate_before(&info).unwrap();
        }
        covered_before = covered;
    }
    let mut acks = Vec::new();
    for h in writers {
        acks.extend(h.join().unwrap());
    }
    // A last barrier, then the logs close (their final flush is part of the trace too).
    let start_tick = clock.fetch_add(1, Ordering::SeqCst);
    for w in &wals {
        w.flush().unwrap();
    }
    flushes.push(Flush {
        start_tick,
        end_pos: trace.position(),
    });
    drop(wals);
    Run { trace, acks, flushes }
}

fn segment_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("wal-") && n.ends_with(".log")
        })
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Figures of one policy's crash states.
#[derive(Debug, Default)]
struct Figures {
    tried: usize,
    opened: usize,
    with_dropped_tail: usize,
    files_damaged: usize,
    dir_ops_lost: usize,
    acked_lost: usize,
    unacked_lost: usize,
    dropped_bytes: u64,
    intact_dropped: u64,
}

/// The ids a recovered state holds, checked: intact, each once.
fn recovered_ids(dir: &Path, options: RecoveryOptions, state: usize) -> (HashSet<u64>, u64, u64) {
    let (rec, report) =
        Recovery::open_opts(dir, RecordLimits::new(DIM), SHARDS, options).unwrap_or_else(|e| {
            if let Ok(to) = std::env::var("POWERLOSS_KEEP") {
                let _ = std::fs::create_dir_all(&to);
                for entry in std::fs::read_dir(dir).unwrap() {
                    let entry = entry.unwrap();
                    let _ = std::fs::copy(entry.path(), Path::new(&to).join(entry.file_name()));
                }
            }
            panic!("state {state}: {options:?} refused a power-loss state: {e}")
        });
    let mut ids = HashSet::new();
    if let Some(snap) = &rec.snapshot {
        for s in 0..SHARDS {
            for id in decode_ids(snap.section(&format!("ids-{s}")).expect("id section")) {
                assert!(ids.insert(id), "state {state}: id {id} twice in the snapshot");
            }
        }
    }
    for shard in &rec.shards {
        for item in shard.records() {
            let (_, r) = item.unwrap_or_else(|e| panic!("state {state}: replay failed: {e}"));
            let id = id_of(&r);
            assert_eq!(r, record(id), "state {state}: record {id} is not intact");
            assert!(ids.insert(id), "state {state}: record {id} recovered twice");
        }
    }
    let intact: u64 = report
        .shards
        .iter()
        .filter_map(|s| s.torn_tail.as_ref())
        .map(|t| t.intact_records_dropped)
        .sum();
    (ids, report.dropped_bytes(), intact)
}

fn crash_states(policy: SyncPolicy, seed: u64) -> Figures {
    let live = scratch_dir();
    let run = live_run(live.path(), policy);
    let ops = run.trace.position();
    let all: HashSet<u64> = run.acks.iter().map(|a| a.id).collect();
    let (writer_count, per_writer) = writers(policy);
    assert_eq!(all.len() as u64, writer_count * per_writer);
    let mut f = Figures::default();
    let mut rng = Rng::new(seed);
    for state in 0..STATES {
        // Every crash point is as likely; the last one (after the clean close) too.
        let point = rng.below(ops as u64 + 1) as usize;
        let dir = scratch_dir();
        let shape = run.trace.materialise(point, &mut rng, dir.path()).unwrap();
        f.tried += 1;
        f.files_damaged += shape.files_damaged;
        f.dir_ops_lost += shape.dir_ops_lost;

        if state % 10 == 0 {
            // A read-only open changes nothing and sees what the writable one will keep.
            let before = segment_bytes(dir.path());
            let ro = RecoveryOptions {
                read_only: true,
                ..RecoveryOptions::default()
            };
            let (ids, _, _) = recovered_ids(dir.path(), ro, state);
            assert_eq!(
                segment_bytes(dir.path()),
                before,
                "state {state}: a read-only open changed files"
            );
            let (again, _, _) =
                recovered_ids(scratch_copy(dir.path()).path(), RecoveryOptions::default(), state);
            assert_eq!(ids, again, "state {state}: read-only and writable opens disagree");
        }

        let before = segment_bytes(dir.path());
        let (ids, dropped, intact) = recovered_ids(dir.path(), RecoveryOptions::default(), state);
        let after = segment_bytes(dir.path());
        assert_eq!(
            dropped,
            before - after,
            "state {state} (point {point} of {ops}): the report must say exactly what was dropped"
        );
        f.opened += 1;
        f.dropped_bytes += dropped;
        f.intact_dropped += intact;
        f.with_dropped_tail += usize::from(dropped > 0);

        // What had to survive this crash point.
        let barrier = run
            .flushes
            .iter()
            .filter(|fl| fl.end_pos <= point)
            .map(|fl| fl.start_tick)
            .max();
        let mut lost_acked = Vec::new();
        for a in &run.acks {
            let required = (a.synced && a.pos <= point) || barrier.is_some_and(|b| a.tick < b);
            if !ids.contains(&a.id) {
                if required {
                    lost_acked.push(a.id);
                } else {
                    f.unacked_lost += 1;
                }
            }
        }
        f.acked_lost += lost_acked.len();
        assert!(
            lost_acked.is_empty(),
            "state {state} (point {point} of {ops}, seed {seed}): acknowledged records lost: {lost_acked:?}"
        );
        assert!(ids.is_subset(&all), "state {state}: a record nobody appended");

        // A second open finds a clean log: the drop was made durable and nothing else changes.
        let (again, dropped_again, _) = recovered_ids(dir.path(), RecoveryOptions::default(), state);
        assert_eq!(again, ids, "state {state}: a second recovery disagrees");
        assert_eq!(dropped_again, 0, "state {state}: the tail was not cut on disk");
    }
    println!(
        "power loss, policy {policy:?}: {} trace operations, {} crash states tried, {} opened (default mode); \
         {} with a dropped tail ({} bytes, {} intact unsynced records among them); files damaged {}, \
         directory operations lost {}; acknowledged records lost {}; unacknowledged records not recovered {}",
        ops,
        f.tried,
        f.opened,
        f.with_dropped_tail,
        f.dropped_bytes,
        f.intact_dropped,
        f.files_damaged,
        f.dir_ops_lost,
        f.acked_lost,
        f.unacked_lost
    );
    f
}

fn scratch_copy(from: &Path) -> tempfile::TempDir {
    let to = scratch_dir();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
    }
    to
}

#[test]
fn every_power_loss_state_opens_without_losing_an_acknowledged_record_policy_none() {
    let f = crash_states(SyncPolicy::None, 1);
    assert_eq!(f.opened, STATES);
    assert!(f.with_dropped_tail > 0, "the simulator never tore a tail: {f:?}");
}

#[test]
fn every_power_loss_state_opens_without_losing_an_acknowledged_record_every_batch() {
    let f = crash_states(SyncPolicy::EveryBatch, 2);
    assert_eq!(f.opened, STATES);
    assert!(f.with_dropped_tail > 0, "the simulator never tore a tail: {f:?}");
}

#[test]
fn every_power_loss_state_opens_without_losing_an_acknowledged_record_every_2ms() {
    let f = crash_states(SyncPolicy::EveryMs(2), 3);
    assert_eq!(f.opened, STATES);
    assert!(f.with_dropped_tail > 0, "the simulator never tore a tail: {f:?}");
}

#[test]
fn point_in_time_mode_agrees_with_the_default_on_power_loss_states() {
    // No power-loss state damages what was fsynced, so salvage has nothing more to leave out.
    let live = scratch_dir();
    let run = live_run(live.path(), SyncPolicy::None);
    let ops = run.trace.position();
    let mut rng = Rng::new(4);
    for state in 0..40 {
        let point = rng.below(ops as u64 + 1) as usize;
        let dir = scratch_dir();
        run.trace.materialise(point, &mut rng, dir.path()).unwrap();
        let copy = scratch_copy(dir.path());
        let (strict, _, _) = recovered_ids(dir.path(), RecoveryOptions::default(), state);
        let pit = RecoveryOptions {
            mode: RecoveryMode::PointInTime,
            read_only: false,
        };
        let (salvaged, _, _) = recovered_ids(copy.path(), pit, state);
        assert_eq!(strict, salvaged, "state {state}");
    }
}

#[test]
fn flushes_racing_appenders_never_reuse_a_sequence_number() {
    // The simulator found a flush whose sync overlapped a leader's write, letting two groups
    // take the same lsn; this loop hits that window directly (a slow sync widens it).
    for round in 0..10 {
        let dir = scratch_dir();
        let (storage, _) = RecordingStorage::with_sync_delay(dir.path(), Duration::from_millis(1));
        let mut options = WalOptions::new(DIM, SyncPolicy::None);
        options.storage = storage;
        let wal = Arc::new(ShardWal::open(dir.path(), 0, options).unwrap());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flusher = {
            let (wal, stop) = (Arc::clone(&wal), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    wal.flush().unwrap();
                }
            })
        };
        let appenders: Vec<_> = (0..16u64)
            .map(|t| {
                let wal = Arc::clone(&wal);
                std::thread::spawn(move || {
                    for i in 0..100 {
                        let _ = wal.append(&record(t * 1000 + i)).unwrap();
                    }
                })
            })
            .collect();
        for a in appenders {
            a.join().unwrap();
        }
        stop.store(true, Ordering::SeqCst);
        flusher.join().unwrap();
        drop(wal);
        let (state, _) = Recovery::open(dir.path(), DIM, 1).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let ids: HashSet<u64> = state.shards[0].records().map(|r| id_of(&r.unwrap().1)).collect();
        assert_eq!(ids.len(), 1600, "round {round}");
    }
}

//! The crash loop: a child process (this test binary, re-executed in child mode) appends at full
//! rate and prints each id the moment its append is acknowledged; the parent SIGKILLs it at
//! random moments, recovers the directory, and checks the acknowledged records.
//!
//! - `EveryBatch`: every acknowledged record is present exactly once and intact, after every kill.
//! - `EveryMs(n)`: what is missing is, per appending thread, a suffix of what it was told, and
//!   was acknowledged at most `n` ms plus a scheduling allowance before the kill.
//!
//! Segments are small (32 KiB), so kills also land during segment rotation, and the `EveryBatch`
//! child takes a snapshot every 20 ms (then truncates the covered segments), so kills also land
//! during snapshots (reported: kills that left a temporary file behind). The parent counts each id
//! over the snapshot's section and the replayed log together.
#![cfg(target_os = "linux")]

mod crash_support;
mod durability_support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crash_support::{Run, next_rand, now_micros, policy_from, seed};
use durability_support::{episode, id_of};
use locus::durability::{Durable, Recovery, ShardWal, SnapshotWriter, SyncPolicy, WalOptions};

const CHILD_ENV: &str = "LOCUS_DURABILITY_CRASH_CHILD";
const DIM: u32 = 32;
const SEGMENT_BYTES: u64 = 32 * 1024;
/// Allowance on top of `n` ms for the flusher's write + fsync and scheduling on a shared machine.
const EVERY_MS_ALLOWANCE_MS: u64 = 1000;
/// How often the `EveryBatch` child takes a snapshot.
const SNAPSHOT_EVERY_MS: u64 = 20;

/// Child mode: recover, then append from `threads` threads forever, printing `ACK id micros`.
fn child(spec: &str) -> ! {
    let mut parts = spec.split('|');
    let (dir, policy, run, threads) = (
        parts.next().expect("dir").to_string(),
        policy_from(parts.next().expect("policy")),
        parts.next().expect("run").parse::<u64>().expect("run"),
        parts.next().expect("threads").parse::<u64>().expect("threads"),
    );
    let dir = Path::new(&dir);
    let (state, _) = Recovery::open(dir, DIM, 1).expect("child recovery");
    let mut options = WalOptions::new(DIM, policy);
    options.segment_bytes = SEGMENT_BYTES;
    let wal = Arc::new(ShardWal::open(dir, 0, options).expect("child open"));
    // With EveryBatch, a snapshot thread takes snapshots while the appenders run (kills land
    // during snapshots too): its one section lists the ids of the records it covers.
    // Records already in the log (from earlier children) count for the next snapshot too.
    let recovered: BTreeMap<u64, u64> = state.shards[0]
        .records()
        .map(|r| r.map(|(lsn, rec)| (lsn, id_of(&rec))))
        .collect::<Result<_, _>>()
        .expect("replay");
    let by_lsn = Arc::new(Mutex::new(recovered));
    if policy == SyncPolicy::EveryBatch {
        let (wal, by_lsn, dir) = (Arc::clone(&wal), Arc::clone(&by_lsn), dir.to_path_buf());
        let (mut snapshot_ids, mut next_lsn) = previous_snapshot_ids(&dir);
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(SNAPSHOT_EVERY_MS));
                let covered = wal.flush().expect("flush");
                // Wait until the appenders have noted the lsn of every record below `covered`.
                let ids = loop {
                    let map = by_lsn.lock().expect("map");
                    let ids: Vec<u64> = map.range(next_lsn..covered).map(|(_, &id)| id).collect();
                    if ids.len() as u64 == covered - next_lsn {
                        break ids;
                    }
                    drop(map);
                    std::thread::sleep(Duration::from_millis(1));
                };
                snapshot_ids.extend(ids);
                next_lsn = covered;
                let bytes: Vec<u8> = snapshot_ids.iter().flat_map(|id| id.to_le_bytes()).collect();
                let mut w = SnapshotWriter::create(&dir, DIM, vec![covered]).expect("snapshot");
                w.section("ids", &bytes).expect("section");
                let info = w.commit().expect("commit");
                wal.truncate_before(&info).expect("truncate");
            }
        });
    }
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let wal = Arc::clone(&wal);
            let by_lsn = Arc::clone(&by_lsn);
            std::thread::spawn(move || {
                for i in 0.. {
                    let id = (run << 40) | (t << 32) | i;
                    match wal.append(&episode(id, DIM as usize)) {
                        Ok(Durable::Synced { lsn }) => {
                            by_lsn.lock().expect("map").insert(lsn, id);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            eprintln!("child append failed: {e}");
                            std::process::exit(3);
                        }
                    }
                    // One write per line: atomic on a pipe (below PIPE_BUF), never half a line.
                    let line = format!("ACK {id} {}\n", now_micros());
                    let mut out = std::io::stdout().lock();
                    if out.write_all(line.as_bytes()).and_then(|()| out.flush()).is_err() {
                        std::process::exit(4);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    std::process::exit(0)
}

/// The ids listed by the current snapshot and the lsn it covers (empty and 0 without one).
fn previous_snapshot_ids(dir: &Path) -> (Vec<u64>, u64) {
    match locus::durability::load_current_snapshot(dir, DIM, 1).expect("snapshot") {
        None => (Vec::new(), 0),
        Some(s) => (
            ids_of_section(s.section("ids").expect("ids section")),
            s.info.covered[0],
        ),
    }
}

fn ids_of_section(bytes: &[u8]) -> Vec<u64> {
    assert_eq!(bytes.len() % 8, 0, "ids section holds whole u64s");
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// Recovers `dir` and returns id → count, checking every record intact; also whether recovery
/// removed a temporary file and dropped a torn tail.
fn recover(dir: &Path) -> (HashMap<u64, u32>, bool, bool) {
    let (state, report) = Recovery::open(dir, DIM, 1).expect("recovery after a kill");
    let mut counts = HashMap::new();
    if let Some(snapshot) = &state.snapshot {
        for id in ids_of_section(snapshot.section("ids").expect("ids section")) {
            *counts.entry(id).or_insert(0) += 1;
        }
    }
    for item in state.shards[0].records() {
        let (_, rec) = item.expect("replay");
        let id = id_of(&rec);
        assert_eq!(rec, episode(id, DIM as usize), "record {id} damaged");
        *counts.entry(id).or_insert(0) += 1;
    }
    (
        counts,
        !report.removed_temp_files.is_empty(),
        report.shards[0].torn_tail.is_some(),
    )
}

/// Runs this file's child `test` for `policy`, SIGKILLed `ms` after its first acknowledgement.
fn run_child(test: &str, dir: &Path, policy: &str, run: u64, threads: u64, ms: u64) -> Run {
    let spec = format!("{}|{policy}|{run}|{threads}", dir.display());
    crash_support::run_child(test, CHILD_ENV, spec, run, ms, Duration::from_secs(30))
}

#[test]
fn kill_loop_every_batch_loses_no_acknowledged_record() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
    }
    let dir = tempfile::tempdir().unwrap();
    let seed = seed();
    let mut rng = seed;
    eprintln!("crash loop seed {seed} (LOCUS_CRASH_SEED reproduces the kill moments)");
    let mut all_acked: Vec<u64> = Vec::new();
    let (mut during_rotation, mut torn) = (0, 0);
    let start = Instant::now();
    for run in 0..20 {
        let ms = next_rand(&mut rng) % 400;
        let r = run_child(
            "kill_loop_every_batch_loses_no_acknowledged_record",
            dir.path(),
            "batch",
            run,
            4,
            ms,
        );
        all_acked.extend(r.acked.iter().map(|&(id, _)| id));
        let (counts, tmp_left, torn_tail) = recover(dir.path());
        during_rotation += usize::from(tmp_left);
        torn += usize::from(torn_tail);
        for &id in &all_acked {
            assert_eq!(
                counts.get(&id),
                Some(&1),
                "run {run} (kill after {ms} ms): acknowledged id {id:#x} present once"
            );
        }
        assert!(counts.values().all(|&c| c == 1), "no record is present twice");
    }
    let last_seq = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_prefix("wal-0-")?
                .strip_suffix(".log")?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap();
    let snapshot = locus::durability::load_current_snapshot(dir.path(), DIM, 1).unwrap();
    eprintln!(
        "crash loop: 20 kills, {} acknowledged records all present once; {during_rotation} kills during \
         a segment creation or snapshot write, {torn} torn tails dropped, last segment {last_seq}, \
         snapshot {:?}, {:.1} s",
        all_acked.len(),
        snapshot.as_ref().map(|s| s.info.id),
        start.elapsed().as_secs_f64()
    );
    assert!(last_seq > 2, "segments rotated during the loop");
    assert!(snapshot.is_some(), "snapshots were taken during the loop");
}

#[test]
fn kill_loop_every_ms_loses_at_most_the_last_ms() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
    }
    const N_MS: u64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = seed();
    let mut kept: HashSet<u64> = HashSet::new();
    let mut worst_ms = 0.0f64;
    for run in 0..5 {
        let ms = 20 + next_rand(&mut rng) % 100;
        let r = run_child(
            "kill_loop_every_ms_loses_at_most_the_last_ms",
            dir.path(),
            &N_MS.to_string(),
            run,
            2,
            ms,
        );
        let (counts, _, _) = recover(dir.path());
        assert!(counts.values().all(|&c| c == 1), "no record is present twice");
        assert!(
            kept.iter().all(|id| counts.contains_key(id)),
            "a recovered record never disappears later"
        );
        // Per thread, the missing acknowledgements are a suffix, and recent.
        let mut by_thread: HashMap<u64, Vec<(u64, u64)>> = HashMap::new();
        for &(id, t) in &r.acked {
            by_thread.entry(id >> 32).or_default().push((id, t));
        }
        for acks in by_thread.values() {
            let first_missing = acks.iter().position(|(id, _)| !counts.contains_key(id));
            if let Some(p) = first_missing {
                assert!(
                    acks[p..].iter().all(|(id, _)| !counts.contains_key(id)),
                    "run {run}: a hole, not a suffix, is missing"
                );
                let window_ms = r.kill_micros.saturating_sub(acks[p].1) as f64 / 1000.0;
                worst_ms = worst_ms.max(window_ms);
                assert!(
                    window_ms <= (N_MS + EVERY_MS_ALLOWANCE_MS) as f64,
                    "run {run}: lost records acknowledged {window_ms:.1} ms before the kill"
                );
            }
        }
        kept.extend(counts.keys());
    }
    eprintln!("EveryMs({N_MS}) crash loop: worst loss window {worst_ms:.1} ms before the kill");
}

//! A durable engine (`open_in`) comes back after a restart with every episode, link,
//! association and forget; snapshots fold the logs; another directory shape is refused with a
//! typed error; corruption at engine level recovers a prefix or refuses (a loop).

mod engine_support;

use std::path::Path;

use engine_support::{Rng, small};
use locus::durability::{DurabilityError, Durable, SyncPolicy};
use locus::engine::{
    Cue, DurabilityOptions, Engine, EngineBuilder, EngineError, Episode, EpisodeId, EpisodeRecord, Guarantee,
    ShardCount,
};

fn durable(dim: usize, shards: usize, policy: SyncPolicy) -> EngineBuilder {
    small(dim)
        .shards(ShardCount::Exactly(shards))
        .space("t", usize::MAX)
        .durability(DurabilityOptions {
            policy,
            snapshot_every: None,
            snapshot_interval: None,
            segment_bytes: 4096,
            faults: None,
        })
}

/// An episode's stored state, comparable across a restart (links sorted, `indexed` ignored).
fn state(e: &Engine, id: EpisodeId) -> Option<EpisodeRecord> {
    let mut r = e.get(id)?;
    r.indexed = false;
    r.links.sort_by_key(|l| l.0);
    Some(r)
}

/// Observes `n` episodes with payloads, streams, spaces and links of every direction; returns
/// their ids.
fn fill(e: &Engine, rng: &mut Rng, n: usize, dim: usize) -> Vec<EpisodeId> {
    let mut ids: Vec<EpisodeId> = Vec::new();
    for i in 0..n {
        let mut ep = Episode::new(rng.vector(dim))
            .with_payload(format!("payload {i}"))
            .with_timestamp(i as u64 * 7);
        if i % 3 == 0 {
            ep = ep.in_stream(format!("stream {}", i % 2));
        }
        if i >= 5 {
            ep = ep.with_link(ids[i - 5].0, 0.5);
        }
        if i >= 3 && i % 4 == 0 {
            ep = ep.with_link_to(ids[i - 3].0, 0.25);
        }
        if i >= 2 && i % 7 == 0 {
            ep = ep.with_link_from(ids[i - 2].0, 0.75);
        }
        let (id, g) = e.observe_durable(ep).expect("observe");
        assert!(
            matches!(g, Guarantee::Logged(_)),
            "a durable engine's episode must be logged, got {g:?}"
        );
        ids.push(id);
    }
    ids
}

fn snapshot_of(e: &Engine, ids: &[EpisodeId]) -> Vec<Option<EpisodeRecord>> {
    ids.iter().map(|&id| state(e, id)).collect()
}

/// Compares two states episode by episode, naming the first difference.
fn same(after: &[Option<EpisodeRecord>], before: &[Option<EpisodeRecord>]) {
    assert_eq!(after.len(), before.len());
    for (a, b) in after.iter().zip(before) {
        assert_eq!(a, b, "episode differs after recovery");
    }
}

#[test]
fn everything_comes_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 16;
    let mut rng = Rng::new(1);
    let e = durable(dim, 3, SyncPolicy::EveryBatch)
        .open_in(dir.path())
        .unwrap();
    assert_eq!(e.recovery_report().map(|r| r.episodes), Some(0));
    let mut ids = fill(&e, &mut rng, 120, dim);
    let (t, g) = e
        .observe_durable(Episode::new(rng.vector(dim)).in_space("t").with_payload("tenant"))
        .unwrap();
    assert!(matches!(g, Guarantee::Logged(Durable::Synced { .. })), "{g:?}");
    ids.push(t);
    e.associate(ids[1], ids[2], 2.0).unwrap();
    e.associate_directed(ids[3], ids[40], 1.5).unwrap();
    e.forget(ids[10]).unwrap();
    let before = snapshot_of(&e, &ids);
    let len = e.len();
    let edges = e.stats().edges;
    assert!(before[10].is_none());
    e.shutdown();

    let e = durable(dim, 3, SyncPolicy::EveryBatch)
        .open_in(dir.path())
        .unwrap();
    let report = e.recovery_report().unwrap().clone();
    assert_eq!(report.episodes, 121, "{report:?}");
    assert_eq!((report.associations, report.forgets), (2, 1), "{report:?}");
    assert!(report.dropped.is_empty(), "{report:?}");
    assert_eq!(report.links_not_restored, 0, "{report:?}");
    assert_eq!(e.len(), len);
    assert_eq!(e.stats().edges, edges);
    same(&snapshot_of(&e, &ids), &before);
    // A forgotten id stays taken; fresh ids do not collide with recovered ones.
    assert!(matches!(
        e.observe(Episode::new(rng.vector(dim)).with_id(ids[10].0)),
        Err(EngineError::DuplicateId { .. })
    ));
    let fresh = e.observe(Episode::new(rng.vector(dim))).unwrap();
    assert!(!ids.contains(&fresh));
    // Recall finds a recovered episode by its own embedding.
    let probe = e.get(ids[77]).unwrap();
    let r = e.recall(&Cue::new(probe.embedding.clone(), 1)).unwrap();
    assert_eq!(r.hits[0].id, ids[77]);
    e.shutdown();
}

#[test]
fn a_snapshot_folds_the_logs_and_recovery_replays_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 16;
    let mut rng = Rng::new(2);
    let e = durable(dim, 2, SyncPolicy::EveryBatch)
        .open_in(dir.path())
        .unwrap();
    let mut ids = fill(&e, &mut rng, 100, dim);
    let snap = e.snapshot().unwrap();
    assert_eq!(snap.records, 100);
    assert!(snap.segments_deleted > 0, "4 KiB segments: {snap:?}");
    ids.extend(fill(&e, &mut rng, 30, dim));
    e.forget(ids[5]).unwrap();
    e.associate(ids[101], ids[3], 1.0).unwrap();
    let snap2 = e.snapshot().unwrap();
    assert_eq!(snap2.records, 132);
    ids.extend(fill(&e, &mut rng, 20, dim));
    let before = snapshot_of(&e, &ids);
    let edges = e.stats().edges;
    e.shutdown();

    let e = durable(dim, 2, SyncPolicy::EveryBatch)
        .open_in(dir.path())
        .unwrap();
    let report = e.recovery_report().unwrap();
    assert_eq!(report.snapshot.as_deref(), Some(snap2.file.as_str()));
    assert_eq!(report.snapshot_records, 132);
    assert_eq!(report.log_records, 20);
    same(&snapshot_of(&e, &ids), &before);
    assert_eq!(e.stats().edges, edges);
    e.shutdown();
}

#[test]
fn the_snapshot_policy_runs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 8;
    let mut rng = Rng::new(3);
    let b = || {
        small(dim)
            .shards(ShardCount::Exactly(2))
            .durability(DurabilityOptions {
                policy: SyncPolicy::EveryBatch,
                snapshot_every: Some(40),
                snapshot_interval: None,
                segment_bytes: 4096,
                faults: None,
            })
    };
    let e = b().open_in(dir.path()).unwrap();
    let ids = fill(&e, &mut rng, 150, dim);
    let mut last = None;
    for _ in 0..2000 {
        last = e.last_background_snapshot();
        if last.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let last = last.expect("a background snapshot ran").expect("and succeeded");
    assert!(last.records >= 40, "{last:?}");
    let before = snapshot_of(&e, &ids);
    e.shutdown();
    let e = b().open_in(dir.path()).unwrap();
    assert!(e.recovery_report().unwrap().snapshot.is_some());
    same(&snapshot_of(&e, &ids), &before);
    e.shutdown();
}

#[test]
fn the_time_policy_snapshots_after_its_interval() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 8;
    let mut rng = Rng::new(9);
    let e = small(dim)
        .durability(DurabilityOptions {
            policy: SyncPolicy::None,
            snapshot_every: None,
            snapshot_interval: Some(std::time::Duration::from_millis(50)),
            segment_bytes: 4096,
            faults: None,
        })
        .open_in(dir.path())
        .unwrap();
    e.observe(Episode::new(rng.vector(dim))).unwrap();
    assert!(e.last_background_snapshot().is_none(), "not before the interval");
    std::thread::sleep(std::time::Duration::from_millis(80));
    e.observe(Episode::new(rng.vector(dim))).unwrap();
    e.shutdown();
    let e = small(dim).open_in(dir.path()).unwrap();
    let report = e.recovery_report().unwrap();
    assert!(report.snapshot.is_some(), "{report:?}");
    assert_eq!(report.episodes, 2);
    e.shutdown();
}

#[test]
fn each_policy_reports_its_guarantee_and_keeps_what_it_acknowledged() {
    let dim = 8;
    for (policy, want) in [
        (SyncPolicy::None, "written"),
        (SyncPolicy::EveryBatch, "synced"),
        (SyncPolicy::EveryMs(2), "pending"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng::new(4);
        let e = durable(dim, 2, policy).open_in(dir.path()).unwrap();
        let (id, g) = e.observe_durable(Episode::new(rng.vector(dim))).unwrap();
        let got = match g {
            Guarantee::Logged(Durable::Written { .. }) => "written",
            Guarantee::Logged(Durable::Synced { .. }) => "synced",
            Guarantee::Logged(Durable::Pending { .. }) => "pending",
            Guarantee::Memory => "memory",
        };
        assert_eq!(got, want, "{policy:?}");
        e.shutdown();
        let e = durable(dim, 2, policy).open_in(dir.path()).unwrap();
        assert!(e.get(id).is_some(), "{policy:?}");
        e.shutdown();
    }
    let e = small(dim).open().unwrap();
    let mut rng = Rng::new(5);
    let (_, g) = e.observe_durable(Episode::new(rng.vector(dim))).unwrap();
    assert_eq!(g, Guarantee::Memory);
    assert!(matches!(e.snapshot(), Err(EngineError::InvalidInput { .. })));
    assert!(e.recovery_report().is_none());
}

fn durability_source(r: Result<Engine, EngineError>) -> DurabilityError {
    match r {
        Err(EngineError::Durability { source, .. }) => source,
        other => panic!("expected a durability error, got {other:?}"),
    }
}

#[test]
fn another_shape_or_version_is_refused_with_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(6);
    let e = durable(8, 2, SyncPolicy::EveryBatch).open_in(dir.path()).unwrap();
    e.observe(Episode::new(rng.vector(8)).in_space("t")).unwrap();
    e.shutdown();
    let err = durability_source(durable(16, 2, SyncPolicy::EveryBatch).open_in(dir.path()));
    assert!(
        matches!(
            err,
            DurabilityError::DimensionMismatch {
                expected: 16,
                found: 8,
                ..
            }
        ),
        "{err}"
    );
    let err = durability_source(durable(8, 3, SyncPolicy::EveryBatch).open_in(dir.path()));
    assert!(
        matches!(
            err,
            DurabilityError::ShardCountMismatch {
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{err}"
    );
    // A space the directory holds episodes of must be declared.
    let r = small(8).shards(ShardCount::Exactly(2)).open_in(dir.path());
    assert!(matches!(r, Err(EngineError::UnknownSpace { .. })), "{r:?}");
    // Another format version (the identity file rewritten with a valid checksum).
    let path = dir.path().join("ENGINE");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..bytes.len() - 4]);
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = durability_source(durable(8, 2, SyncPolicy::EveryBatch).open_in(dir.path()));
    assert!(
        matches!(err, DurabilityError::UnsupportedVersion { found: 1, .. }),
        "{err}"
    );
    // Nothing was changed by the refusals: the right shape still opens (after the fix).
    std::fs::remove_file(&path).unwrap();
    let err = durability_source(durable(8, 2, SyncPolicy::EveryBatch).open_in(dir.path()));
    assert!(
        matches!(err, DurabilityError::Corrupt { .. }),
        "logs without an identity: {err}"
    );
}

/// Frame boundaries of a segment (header 48 bytes; frames
/// `len u32 | crc u32 | lsn u64 | durable u64 | body`).
fn boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut out = vec![48];
    let mut pos = 48;
    while pos + 24 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 24 + len;
        out.push(pos);
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The recovered episodes of `ids` (in acknowledgement order) must be a prefix of them.
fn recovered_prefix(e: &Engine, ids: &[EpisodeId]) -> usize {
    let present: Vec<bool> = ids.iter().map(|&id| e.get(id).is_some()).collect();
    let n = present.iter().take_while(|p| **p).count();
    assert!(
        present[n..].iter().all(|p| !p),
        "recovered episodes are not a prefix of the acknowledged ones: {present:?}"
    );
    n
}

#[test]
fn truncation_and_bit_flips_recover_a_prefix_or_refuse() {
    let src = tempfile::tempdir().unwrap();
    let dim = 4;
    let b = || {
        small(dim)
            .shards(ShardCount::Exactly(1))
            .durability(DurabilityOptions {
                policy: SyncPolicy::EveryBatch,
                snapshot_every: None,
                snapshot_interval: None,
                segment_bytes: 1 << 20,
                faults: None,
            })
    };
    let mut rng = Rng::new(7);
    let e = b().open_in(src.path()).unwrap();
    let ids: Vec<EpisodeId> = (0..24)
        .map(|i| {
            e.observe(Episode::new(rng.vector(dim)).with_payload(vec![i as u8; i % 5]))
                .unwrap()
        })
        .collect();
    e.shutdown();
    let seg = "wal-0-0.log";
    let original = std::fs::read(src.path().join(seg)).unwrap();
    let bounds = boundaries(&original);
    assert_eq!(bounds.len(), ids.len() + 1);
    assert_eq!(*bounds.last().unwrap(), original.len());

    // Truncation at every record boundary and inside every record: the whole records before
    // the cut come back, nothing else.
    let mut cuts: Vec<usize> = bounds.clone();
    cuts.extend(
        bounds
            .windows(2)
            .flat_map(|w| [w[0] + 1, w[0] + 9, (w[0] + w[1]) / 2, w[1] - 1]),
    );
    for cut in cuts {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        std::fs::write(dir.path().join(seg), &original[..cut]).unwrap();
        let e = b()
            .open_in(dir.path())
            .unwrap_or_else(|err| panic!("cut at {cut}: {err}"));
        let whole = bounds.iter().filter(|&&x| x <= cut).count() - 1;
        assert_eq!(recovered_prefix(&e, &ids), whole, "cut at {cut}");
        let torn = !bounds.contains(&cut);
        assert_eq!(
            e.recovery_report().unwrap().dropped.len(),
            usize::from(torn),
            "cut at {cut}"
        );
        e.shutdown();
    }

    // A bit flipped in a record's length, checksum, sequence number or body: the last record
    // may be dropped as a torn tail; any earlier one is refused as corruption.
    let mut refused = 0;
    for (r, w) in bounds.windows(2).enumerate() {
        for at in [w[0], w[0] + 5, w[0] + 9, w[0] + 20, w[1] - 1] {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(src.path(), dir.path());
            let mut bytes = original.clone();
            bytes[at] ^= 0x10;
            std::fs::write(dir.path().join(seg), &bytes).unwrap();
            match b().open_in(dir.path()) {
                Ok(e) => {
                    let n = recovered_prefix(&e, &ids);
                    assert!(n >= r && n < ids.len(), "flip at {at} (record {r}) kept {n}");
                    assert_eq!(
                        r,
                        ids.len() - 1,
                        "only the last record may be dropped (flip at {at})"
                    );
                    e.shutdown();
                }
                Err(EngineError::Durability { source, .. }) => {
                    assert!(
                        matches!(source, DurabilityError::Corrupt { .. }),
                        "flip at {at}: {source}"
                    );
                    refused += 1;
                }
                Err(other) => panic!("flip at {at}: untyped refusal {other}"),
            }
        }
    }
    assert!(refused > 0);

    // A snapshot with a flipped bit is refused (never half-loaded).
    let e = b().open_in(src.path()).unwrap();
    let snap = e.snapshot().unwrap();
    e.shutdown();
    let snap_bytes = std::fs::read(src.path().join(&snap.file)).unwrap();
    for at in (0..snap_bytes.len()).step_by(snap_bytes.len() / 40 + 1) {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        let mut bytes = snap_bytes.clone();
        bytes[at] ^= 0x01;
        std::fs::write(dir.path().join(&snap.file), &bytes).unwrap();
        let err = durability_source(b().open_in(dir.path()));
        assert!(
            matches!(
                err,
                DurabilityError::SnapshotChecksum { .. }
                    | DurabilityError::Corrupt { .. }
                    | DurabilityError::UnsupportedVersion { .. }
                    | DurabilityError::DimensionMismatch { .. }
                    | DurabilityError::ShardCountMismatch { .. }
            ),
            "flip at {at}: {err}"
        );
    }
}

/// Fails every write with ENOSPC while `full` is set.
#[derive(Debug, Default)]
struct DiskFull {
    full: std::sync::atomic::AtomicBool,
}

impl locus::durability::FaultInjector for DiskFull {
    fn before_write(&self, _: usize) -> locus::durability::WriteFault {
        if self.full.load(std::sync::atomic::Ordering::Acquire) {
            locus::durability::WriteFault::Partial {
                written: 7,
                error: std::io::Error::from_raw_os_error(libc::ENOSPC),
            }
        } else {
            locus::durability::WriteFault::Proceed
        }
    }

    fn before_sync(&self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_full_disk_refuses_the_observation_keeps_everything_acknowledged_and_recalls_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 8;
    let disk = std::sync::Arc::new(DiskFull::default());
    let b = |faults: Option<std::sync::Arc<dyn locus::durability::FaultInjector>>| {
        small(dim)
            .shards(ShardCount::Exactly(2))
            .durability(DurabilityOptions {
                policy: SyncPolicy::EveryBatch,
                snapshot_every: None,
                snapshot_interval: None,
                segment_bytes: 1 << 20,
                faults,
            })
    };
    let mut rng = Rng::new(8);
    let e = b(Some(disk.clone())).open_in(dir.path()).unwrap();
    let ids: Vec<EpisodeId> = (0..20)
        .map(|i| e.observe(Episode::new(rng.vector(dim)).with_id(i)).unwrap())
        .collect();
    disk.full.store(true, std::sync::atomic::Ordering::Release);
    let refused = Episode::new(rng.vector(dim)).with_id(100).with_link(3, 0.5);
    let probe = refused.embedding.clone();
    match e.observe(refused) {
        Err(EngineError::Durability {
            source: DurabilityError::StorageFull { .. },
            ..
        }) => {}
        other => panic!("expected StorageFull, got {other:?}"),
    }
    assert!(e.get(EpisodeId(100)).is_none(), "a refused episode is not kept");
    assert_eq!(e.len(), 20, "its quota is released");
    // Recalls go on, and do not return the refused episode.
    let r = e.recall(&Cue::new(probe, 5)).unwrap();
    assert!(r.hits.iter().all(|h| h.id != EpisodeId(100)));
    assert!(matches!(
        e.associate(ids[0], ids[1], 1.0),
        Err(EngineError::Durability { .. })
    ));
    assert!(matches!(e.forget(ids[2]), Err(EngineError::Durability { .. })));
    assert!(
        e.get(ids[2]).is_some(),
        "a forget that could not be logged is not applied"
    );
    // Space again: the log goes on.
    disk.full.store(false, std::sync::atomic::Ordering::Release);
    e.observe(Episode::new(rng.vector(dim)).with_id(101)).unwrap();
    e.shutdown();
    let e = b(None).open_in(dir.path()).unwrap();
    assert_eq!(e.len(), 21);
    assert!(ids.iter().all(|&id| e.get(id).is_some()));
    assert!(e.get(EpisodeId(100)).is_none() && e.get(EpisodeId(101)).is_some());
    assert_eq!(e.recovery_report().unwrap().associations, 0);
    e.shutdown();
}

//! Recovery modes through the engine: damage to fsynced records refuses the default open with a
//! typed error naming shard, segment and offset; `recovery_mode(PointInTime)` opens the intact
//! prefix and the report says what it left out.

use locus::durability::{DurabilityError, RecoveryMode, SyncPolicy};
use locus::engine::{DurabilityOptions, Engine, EngineError, Episode, ShardCount};
use std::path::Path;

fn builder() -> locus::engine::EngineBuilder {
    Engine::builder()
        .dimension(4)
        .shards(ShardCount::Exactly(1))
        .durability(DurabilityOptions {
            policy: SyncPolicy::EveryBatch,
            snapshot_every: None,
            segment_bytes: 4096,
            ..DurabilityOptions::default()
        })
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let seq = name.strip_prefix("wal-0-")?.strip_suffix(".log")?.parse().ok()?;
            Some((seq, p))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

#[test]
fn damage_before_the_durable_position_is_refused_and_salvaged_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let e = builder().open_in(dir.path()).unwrap();
    let ids: Vec<_> = (0..120)
        .map(|i| e.observe(Episode::new(vec![i as f32, 1.0, 0.0, 0.0])).unwrap())
        .collect();
    e.shutdown();
    let segs = segments(dir.path());
    assert!(segs.len() >= 3, "{segs:?}");
    let victim = &segs[1];
    let mut bytes = std::fs::read(victim).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x04;
    std::fs::write(victim, &bytes).unwrap();

    match builder().open_in(dir.path()) {
        Err(EngineError::Durability {
            source: DurabilityError::Corrupt { path, what, .. },
            ..
        }) => {
            assert_eq!(&path, victim);
            assert!(what.contains("shard 0"), "{what}");
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("a damaged sealed segment opened in the default mode"),
    }

    let e = builder()
        .recovery_mode(RecoveryMode::PointInTime)
        .open_in(dir.path())
        .unwrap();
    let report = e.recovery_report().expect("a report");
    assert_eq!(report.dropped.len(), 1, "{report:?}");
    assert_eq!(&report.dropped[0].path, victim);
    assert!(!report.left_out.is_empty(), "{report:?}");
    let kept = ids.iter().take_while(|id| e.get(**id).is_some()).count();
    assert!(kept > 0 && kept < ids.len(), "kept {kept}");
    assert!(ids[kept..].iter().all(|id| e.get(*id).is_none()), "not a prefix");
    e.shutdown();
    // The directory is consistent again for the default open.
    let e = builder().open_in(dir.path()).unwrap();
    assert_eq!(e.len(), kept);
}

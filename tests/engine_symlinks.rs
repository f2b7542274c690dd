//! Symbolic links planted in an engine's directory under the names it creates are never
//! written through: `.locus-write-probe` and `ENGINE.tmp` are removed and created anew
//! (`O_EXCL | O_NOFOLLOW`), a `LOCK` link is refused with a typed error. The link targets keep
//! their bytes (or stay absent).
#![cfg(unix)]

use locus::engine::{Engine, EngineError, Episode, ShardCount};
use std::os::unix::fs::symlink;

fn builder() -> locus::engine::EngineBuilder {
    Engine::builder().dimension(4).shards(ShardCount::Exactly(1))
}

#[test]
fn planted_probe_and_engine_tmp_links_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    symlink(&victim, dir.path().join(".locus-write-probe")).unwrap();
    symlink(&victim, dir.path().join("ENGINE.tmp")).unwrap();
    let e = builder().open_in(dir.path()).expect("open with planted links");
    let id = e.observe(Episode::new(vec![1.0, 0.0, 0.0, 0.0])).unwrap();
    e.shutdown();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(
        std::fs::symlink_metadata(dir.path().join("ENGINE"))
            .unwrap()
            .file_type()
            .is_file()
    );
    let again = builder().open_in(dir.path()).unwrap();
    assert!(again.get(id).is_some());
}

#[test]
fn a_planted_lock_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let dangling = outside.path().join("would-be-created");
    symlink(&dangling, dir.path().join("LOCK")).unwrap();
    match builder().open_in(dir.path()) {
        Err(EngineError::Durability { .. }) => {}
        Err(other) => panic!("expected a durability error, got {other}"),
        Ok(_) => panic!("opened through a LOCK link"),
    }
    assert!(!dangling.exists(), "the link's target was created");
}

#[test]
fn a_link_planted_as_an_index_files_temporary_name_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let e = builder().open_in(dir.path()).unwrap();
    for i in 0..50 {
        e.observe(Episode::new(vec![i as f32, 1.0, (i % 7) as f32, 0.5]))
            .unwrap();
    }
    assert!(e.wait_indexed(std::time::Duration::from_secs(30)), "indexed");
    // Planted while the engine runs (recovery removes `snap-*.tmp` at open).
    for space in 0..2 {
        for seg in 0..2 {
            symlink(
                &victim,
                dir.path().join(format!("snap-1.0.{space}.{seg}.hnsw.tmp")),
            )
            .unwrap();
        }
    }
    let report = e.snapshot().expect("snapshot");
    e.shutdown();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let saved = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|f| {
            f.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".hnsw")
        })
        .count();
    assert!(saved > 0, "the snapshot saved index files: {report:?}");
}

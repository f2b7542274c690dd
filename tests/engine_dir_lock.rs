//! One engine per durability directory: a second `open_in` of a directory that an open engine
//! holds is refused with a typed error and changes nothing; once the first engine is shut down
//! (or its process dies) the directory opens again with everything in it.

use locus::durability::DurabilityError;
use locus::engine::{Engine, EngineError, Episode, ShardCount};

fn builder() -> locus::engine::EngineBuilder {
    Engine::builder().dimension(4).shards(ShardCount::Exactly(1))
}

#[test]
fn a_second_open_of_a_held_directory_is_refused_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = builder().open_in(dir.path()).expect("first open");
    let id = first
        .observe(Episode::new(vec![1.0, 0.0, 0.0, 0.0]))
        .expect("observe");
    match builder().open_in(dir.path()) {
        Err(EngineError::Durability {
            source: DurabilityError::DirectoryLocked { path },
            ..
        }) => assert!(path.starts_with(dir.path()), "the lock file is in the directory"),
        Err(other) => panic!("expected DirectoryLocked, got {other}"),
        Ok(_) => panic!("a second engine opened a directory the first one holds"),
    }
    // The refused open did not disturb the first engine.
    let id2 = first
        .observe(Episode::new(vec![0.0, 1.0, 0.0, 0.0]))
        .expect("observe after the refused open");
    first.shutdown();
    let again = builder().open_in(dir.path()).expect("reopen after shutdown");
    assert!(
        again.get(id).is_some() && again.get(id2).is_some(),
        "both episodes recovered"
    );
    assert_eq!(again.len(), 2);
}

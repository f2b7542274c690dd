//! Fuzzes the engine directory's `ENGINE` file (format, dimension, shard count) through the
//! public open path: `Engine::builder().open_in(dir)` on a directory holding the input as its
//! `ENGINE` file must open (the file then agrees) or refuse with a typed error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use locus::engine::{Engine, ShardCount};

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    if std::fs::write(dir.path().join("ENGINE"), data).is_err() {
        return;
    }
    if let Ok(engine) = Engine::builder()
        .dimension(4)
        .shards(ShardCount::Exactly(1))
        .open_in(dir.path())
    {
        engine.shutdown();
    }
});

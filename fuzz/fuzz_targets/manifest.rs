//! Fuzzes the snapshot manifest (`MANIFEST`) reader through `durability::load_current_snapshot`
//! on a directory holding the input as its manifest (and no snapshot): a typed error or
//! `None`, never a panic, whatever file name or id the manifest forges.
#![no_main]

use libfuzzer_sys::fuzz_target;
use locus::durability::{MANIFEST_NAME, load_current_snapshot};

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    if std::fs::write(dir.path().join(MANIFEST_NAME), data).is_err() {
        return;
    }
    let _ = load_current_snapshot(dir.path(), 4, 1);
});

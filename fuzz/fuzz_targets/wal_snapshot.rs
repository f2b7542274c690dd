//! Fuzzes the durability snapshot decoder (`durability::load_snapshot`: header, sections,
//! checksums) on a file holding the input: typed errors only, never a panic, and no
//! allocation sized by a forged section length before it is checked against the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use locus::durability::load_snapshot;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("snapshot");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let _ = load_snapshot(&path, 4, 1);
});

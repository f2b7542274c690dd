//! Fuzzes WAL recovery (segment header, frames, checksums, records) on one segment file of
//! shard 0 holding the input: `Recovery::open` and replaying every record must end in records
//! or a typed error (a torn tail is cut, damage before it refused), never a panic or an
//! allocation sized by a forged length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use locus::durability::{Recovery, segment_name};

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    if std::fs::write(dir.path().join(segment_name(0, 0)), data).is_err() {
        return;
    }
    if let Ok((state, _report)) = Recovery::open(dir.path(), 4, 1) {
        for shard in &state.shards {
            for item in shard.records() {
                if item.is_err() {
                    break;
                }
            }
        }
    }
});

//! Fuzzes `HnswIndex::load` on snapshot files whose checksum is made valid (so the fuzzer gets
//! past it to the header and section checks): it must never panic or abort, and a forged
//! capacity must be refused before anything is allocated (`TooLarge`), never an out-of-memory
//! abort. An accepted file must answer a search.
#![no_main]

use libfuzzer_sys::fuzz_target;
use locus::index::HnswIndex;

fuzz_target!(|data: &[u8]| {
    let mut file = data.to_vec();
    file.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    let path = std::env::temp_dir().join(format!("locus-fuzz-snapshot-{}", std::process::id()));
    if std::fs::write(&path, &file).is_err() {
        return;
    }
    // (A forged dimension is legal for an empty index; skip searching ones too big to query.)
    if let Ok(index) = HnswIndex::load(&path)
        && index.dim() <= 1 << 16
    {
        let query = vec![0.5f32; index.dim()];
        index.search(&query, 1, 8).expect("a loaded index answers");
    }
    let _ = std::fs::remove_file(&path);
});

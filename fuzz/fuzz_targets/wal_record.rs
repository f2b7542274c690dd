//! Fuzzes the WAL record decoder (`durability::Record::decode`) with limits of a dimension
//! taken from the first byte: it must refuse bad bytes with a typed error, never panic or
//! allocate past the limits, and a record it accepts must encode and decode back to the same
//! bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use locus::durability::{Record, RecordLimits};

fuzz_target!(|data: &[u8]| {
    let Some((&dim, body)) = data.split_first() else {
        return;
    };
    let limits = RecordLimits::new(u32::from(dim).max(1));
    if let Ok(record) = Record::decode(body, &limits) {
        let mut again = Vec::new();
        record
            .encode_into(&limits, &mut again)
            .expect("a decoded record encodes");
        let back = Record::decode(&again, &limits).expect("an encoded record decodes");
        // Compared as bytes, not with `==`: a decoded weight may be NaN (the decoder does not
        // refuse it; replay's associate does), and NaN is never `==` itself.
        let mut twice = Vec::new();
        back.encode_into(&limits, &mut twice).expect("a decoded record encodes");
        assert_eq!(twice, again, "{record:?} does not round-trip");
    }
});

//! Fuzzes `CpuSet::parse_mask` (`0000ff0f,00000001`): it must never panic, and whatever it
//! accepts must survive a round trip through the list form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use locus::topology::CpuSet;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(set) = CpuSet::parse_mask(&text) {
        let again = CpuSet::parse_list(&set.to_list_string()).expect("own output parses");
        assert_eq!(again, set);
    }
});

//! Fuzzes `CpuSet::parse_list` (`0-3,8-11`): it must never panic, and whatever it accepts must
//! print back to a list that parses to the same set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use locus::topology::CpuSet;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(set) = CpuSet::parse_list(&text) {
        let again = CpuSet::parse_list(&set.to_list_string()).expect("own output parses");
        assert_eq!(again, set);
    }
});

//! Fuzzes `parse_size` (`32K`, `1024 kB`): it must never panic, and an accepted size must equal
//! its number times its unit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use locus::topology::size::parse_size;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(bytes) = parse_size(&text) {
        let digits: String = text.trim().chars().take_while(char::is_ascii_digit).collect();
        let number: u64 = digits.parse().expect("accepted sizes start with a number");
        assert!(bytes == 0 || bytes >= number);
        assert_eq!(bytes % number.max(1), 0);
    }
});

//! Randomized round trips of the text parsers (CPU lists, masks, sizes), and random garbage fed
//! to them, in the ordinary `cargo test` run. The fuzz targets in `fuzz/` do the same at depth.
//!
//! A fixed-seed xorshift generator keeps every run identical, so a failure reproduces.

use locus::topology::CpuSet;
use locus::topology::size::parse_size;

/// xorshift64*: small, deterministic, good enough to spread test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn random_set(rng: &mut Rng) -> CpuSet {
    let span = [8, 64, 300, 4096][rng.below(4) as usize];
    let density = rng.below(101);
    (0..span as u32).filter(|_| rng.below(100) < density).collect()
}

/// The kernel's mask form: 32-bit hex words, most significant first, comma-separated.
fn to_mask(set: &CpuSet) -> String {
    let words = set.last().map_or(1, |l| l / 32 + 1);
    (0..words)
        .rev()
        .map(|w| {
            let v: u32 = (0..32)
                .filter(|b| set.contains(w * 32 + b))
                .fold(0, |acc, b| acc | 1 << b);
            format!("{v:08x}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn lists_and_masks_round_trip() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        let set = random_set(&mut rng);
        let list = set.to_list_string();
        assert_eq!(CpuSet::parse_list(&list).unwrap(), set, "list {list:?}");
        assert_eq!(CpuSet::parse_list(&format!(" {list}\n")).unwrap(), set);
        let mask = to_mask(&set);
        assert_eq!(CpuSet::parse_mask(&mask).unwrap(), set, "mask {mask:?}");
        assert_eq!(CpuSet::parse_mask(&format!("{mask}\n")).unwrap(), set);
    }
}

#[test]
fn sizes_round_trip() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let units = [
        ("", 0),
        ("K", 10),
        ("kB", 10),
        (" kB", 10),
        ("KiB", 10),
        ("M", 20),
        ("G", 30),
        ("T", 40),
    ];
    for _ in 0..5000 {
        let (unit, shift) = units[rng.below(units.len() as u64) as usize];
        let value = rng.next() >> rng.below(64);
        let text = format!("{value}{unit}\n");
        match value.checked_mul(1 << shift) {
            Some(bytes) => assert_eq!(parse_size(&text), Ok(bytes), "{text:?}"),
            None => assert!(parse_size(&text).is_err(), "{text:?} should overflow"),
        }
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng(42);
    let alphabet = b"0123456789abcdefx,-: \nKkMGB\xff";
    for _ in 0..20_000 {
        let len = rng.below(40) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
            .collect();
        let text = String::from_utf8_lossy(&bytes);
        // Whatever the answer, it must come back as a value, and a parsed set must re-parse.
        if let Ok(set) = CpuSet::parse_list(&text) {
            assert_eq!(CpuSet::parse_list(&set.to_list_string()).unwrap(), set);
        }
        if let Ok(set) = CpuSet::parse_mask(&text) {
            assert_eq!(CpuSet::parse_list(&set.to_list_string()).unwrap(), set);
        }
        let _ = parse_size(&text);
    }
}

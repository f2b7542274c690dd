//! Sets of CPU (PU) or NUMA-node OS indexes, and the kernel's two text forms for them.
//!
//! The kernel writes such sets either as a *list* (`0-3,8-11`, used by `cpulist`,
//! `cpuset.cpus`, `online`) or as a *mask* (comma-separated 32-bit hex words, most significant
//! first: `00000000,0000ff0f`, used by `cpumap` and `Cpus_allowed`). Both parsers here accept
//! machines of any size (the bitset grows), reject garbage with a typed error, and never panic.

use std::fmt;

use serde::{Serialize, Serializer};

/// The largest index accepted from text. Linux's `NR_CPUS` tops out at 8192; anything much
/// beyond is garbage, and accepting it would let a malformed file allocate without bound.
pub const MAX_INDEX: u32 = 1 << 20;

/// Why a list or mask could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuSetParseError {
    /// A token is not a number, a range or a hex word.
    #[error("malformed token {token:?} in {input:?}")]
    Malformed {
        /// The offending token.
        token: String,
        /// The whole input (cut to 200 characters).
        input: String,
    },
    /// A range whose end comes before its start (`5-3`).
    #[error("reversed range {start}-{end}")]
    ReversedRange {
        /// Range start.
        start: u32,
        /// Range end.
        end: u32,
    },
    /// An index above [`MAX_INDEX`].
    #[error("index {index} is above the supported maximum {MAX_INDEX}")]
    TooLarge {
        /// The index found.
        index: u64,
    },
}

fn malformed(token: &str, input: &str) -> CpuSetParseError {
    CpuSetParseError::Malformed {
        token: token.chars().take(64).collect(),
        input: input.chars().take(200).collect(),
    }
}

/// A set of small non-negative indexes (CPU or node OS indexes), stored as a bitset.
///
/// Iteration is in increasing order. Equality ignores trailing zero words.
#[derive(Clone, Default)]
pub struct CpuSet {
    words: Vec<u64>,
}

/// A set of NUMA node OS indexes; the same representation as [`CpuSet`].
pub type NodeSet = CpuSet;

impl CpuSet {
    /// The empty set.
    pub fn new() -> Self {
        Self { words: Vec::new() }
    }

    /// A set holding exactly one index.
    ///
    /// # Panics
    /// If `index` is above [`MAX_INDEX`]; use [`CpuSet::try_single`] for an index that comes
    /// from outside the program.
    pub fn single(index: u32) -> Self {
        let mut s = Self::new();
        s.insert(index);
        s
    }

    /// A set holding exactly one index, or [`CpuSetParseError::TooLarge`] above [`MAX_INDEX`].
    ///
    /// # Errors
    /// [`CpuSetParseError::TooLarge`] if `index > MAX_INDEX` (no memory is allocated for it).
    pub fn try_single(index: u32) -> Result<Self, CpuSetParseError> {
        let mut s = Self::new();
        s.try_insert(index)?;
        Ok(s)
    }

    /// Adds `index`, refusing one above [`MAX_INDEX`] before any memory is allocated (the set
    /// is a bitset: an index near `u32::MAX` would otherwise grow it to 512 MiB).
    ///
    /// # Errors
    /// [`CpuSetParseError::TooLarge`] if `index > MAX_INDEX`; the set is unchanged.
    pub fn try_insert(&mut self, index: u32) -> Result<(), CpuSetParseError> {
        if index > MAX_INDEX {
            return Err(CpuSetParseError::TooLarge {
                index: u64::from(index),
            });
        }
        self.insert_unchecked(index);
        Ok(())
    }

    /// Adds `index`.
    ///
    /// # Panics
    /// If `index` is above [`MAX_INDEX`] (the set never grows past `MAX_INDEX / 8` bytes); use
    /// [`CpuSet::try_insert`] for an index that comes from outside the program.
    pub fn insert(&mut self, index: u32) {
        if let Err(e) = self.try_insert(index) {
            panic!("CpuSet::insert: {e}");
        }
    }

    fn insert_unchecked(&mut self, index: u32) {
        let w = (index / 64) as usize;
        if self.words.len() <= w {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1u64 << (index % 64);
    }

    /// Adds every index from `start` to `end`, both included (nothing when `end < start`), a
    /// word at a time.
    ///
    /// # Panics
    /// If `end` is above [`MAX_INDEX`] (and `end >= start`).
    pub fn insert_range(&mut self, start: u32, end: u32) {
        if end < start {
            return;
        }
        assert!(
            end <= MAX_INDEX,
            "CpuSet::insert_range: index {end} above {MAX_INDEX}"
        );
        let last_word = (end / 64) as usize;
        if self.words.len() <= last_word {
            self.words.resize(last_word + 1, 0);
        }
        for w in (start / 64) as usize..=last_word {
            let lo = if w == (start / 64) as usize { start % 64 } else { 0 };
            let hi = if w == last_word { end % 64 } else { 63 };
            let width = hi - lo + 1;
            let bits = if width == 64 {
                u64::MAX
            } else {
                ((1u64 << width) - 1) << lo
            };
            self.words[w] |= bits;
        }
    }

    /// Removes `index`.
    pub fn remove(&mut self, index: u32) {
        if let Some(w) = self.words.get_mut((index / 64) as usize) {
            *w &= !(1u64 << (index % 64));
        }
    }

    /// Whether `index` is in the set.
    pub fn contains(&self, index: u32) -> bool {
        self.words
            .get((index / 64) as usize)
            .is_some_and(|w| w & (1u64 << (index % 64)) != 0)
    }

    /// Number of indexes in the set.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// The smallest index, if any.
    pub fn first(&self) -> Option<u32> {
        self.iter().next()
    }

    /// The largest index, if any.
    pub fn last(&self) -> Option<u32> {
        self.words
            .iter()
            .enumerate()
            .rev()
            .find(|(_, w)| **w != 0)
            .map(|(i, w)| i as u32 * 64 + 63 - w.leading_zeros())
    }

    /// Indexes in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros();
                w &= w - 1;
                Some(i as u32 * 64 + bit)
            })
        })
    }

    /// The indexes as a vector, increasing.
    pub fn to_vec(&self) -> Vec<u32> {
        self.iter().collect()
    }

    /// Set intersection.
    pub fn intersection(&self, other: &Self) -> Self {
        let words = self.words.iter().zip(&other.words).map(|(a, b)| a & b).collect();
        Self { words }
    }

    /// Set union.
    pub fn union(&self, other: &Self) -> Self {
        let n = self.words.len().max(other.words.len());
        let words = (0..n)
            .map(|i| self.words.get(i).copied().unwrap_or(0) | other.words.get(i).copied().unwrap_or(0))
            .collect();
        Self { words }
    }

    /// Indexes in `self` but not in `other`.
    pub fn difference(&self, other: &Self) -> Self {
        let words = self
            .words
            .iter()
            .enumerate()
            .map(|(i, a)| a & !other.words.get(i).copied().unwrap_or(0))
            .collect();
        Self { words }
    }

    /// Whether every index of `self` is in `other`.
    pub fn is_subset(&self, other: &Self) -> bool {
        self.difference(other).is_empty()
    }

    /// Whether the two sets share an index.
    pub fn intersects(&self, other: &Self) -> bool {
        !self.intersection(other).is_empty()
    }

    /// Parses the kernel's list form: `0-3,8-11`, `5`, or empty, with surrounding whitespace
    /// ignored. The `a-b:stride` form of kernel parameters is rejected: sysfs never writes it.
    pub fn parse_list(input: &str) -> Result<Self, CpuSetParseError> {
        let mut set = Self::new();
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Ok(set);
        }
        for token in trimmed.split(',') {
            let token = token.trim();
            let (start, end) = match token.split_once('-') {
                Some((a, b)) => (parse_index(a, token, input)?, parse_index(b, token, input)?),
                None => {
                    let v = parse_index(token, token, input)?;
                    (v, v)
                }
            };
            if end < start {
                return Err(CpuSetParseError::ReversedRange { start, end });
            }
            set.insert_range(start, end);
        }
        Ok(set)
    }

    /// Parses the kernel's mask form: comma-separated hex words of up to 32 bits (some kernels
    /// and `/proc/*/status` write 32-bit words, others 64-bit), most significant word first,
    /// with or without a `0x` prefix. Empty input is the empty set.
    pub fn parse_mask(input: &str) -> Result<Self, CpuSetParseError> {
        let trimmed = input.trim();
        let trimmed = trimmed.strip_prefix("0x").unwrap_or(trimmed);
        let mut set = Self::new();
        if trimmed.is_empty() {
            return Ok(set);
        }
        // Walk words from least significant (last) to most; each word's width is its digits×4.
        let mut bit_base: u64 = 0;
        for word in trimmed.rsplit(',') {
            let word = word.trim();
            if word.is_empty() || word.len() > 16 || !word.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(malformed(word, input));
            }
            let value = u64::from_str_radix(word, 16).map_err(|_| malformed(word, input))?;
            let mut v = value;
            while v != 0 {
                let bit = v.trailing_zeros() as u64;
                let index = bit_base + bit;
                if index > MAX_INDEX as u64 {
                    return Err(CpuSetParseError::TooLarge { index });
                }
                set.insert(index as u32);
                v &= v - 1;
            }
            bit_base += word.len() as u64 * 4;
            if bit_base > MAX_INDEX as u64 + 64 {
                // Remaining words can only hold indexes above the maximum; reject if non-zero.
                bit_base = MAX_INDEX as u64 + 64;
            }
        }
        Ok(set)
    }

    /// The list form (`0-3,8-11`), empty string for the empty set.
    pub fn to_list_string(&self) -> String {
        let mut out = String::new();
        let mut iter = self.iter().peekable();
        while let Some(start) = iter.next() {
            let mut end = start;
            while iter.peek() == Some(&(end + 1)) {
                end += 1;
                iter.next();
            }
            if !out.is_empty() {
                out.push(',');
            }
            if start == end {
                out.push_str(&start.to_string());
            } else {
                out.push_str(&format!("{start}-{end}"));
            }
        }
        out
    }
}

fn parse_index(text: &str, token: &str, input: &str) -> Result<u32, CpuSetParseError> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(token, input));
    }
    let v: u64 = text
        .parse()
        .map_err(|_| CpuSetParseError::TooLarge { index: u64::MAX })?;
    if v > MAX_INDEX as u64 {
        return Err(CpuSetParseError::TooLarge { index: v });
    }
    Ok(v as u32)
}

impl PartialEq for CpuSet {
    fn eq(&self, other: &Self) -> bool {
        let n = self.words.len().max(other.words.len());
        (0..n).all(|i| self.words.get(i).copied().unwrap_or(0) == other.words.get(i).copied().unwrap_or(0))
    }
}

impl Eq for CpuSet {}

impl std::hash::Hash for CpuSet {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for i in self.iter() {
            i.hash(state);
        }
    }
}

impl PartialOrd for CpuSet {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CpuSet {
    /// Orders by the increasing index sequence (lexicographic), which sorts sets by their first CPU.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.iter().cmp(other.iter())
    }
}

impl FromIterator<u32> for CpuSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut s = Self::new();
        for i in iter {
            s.insert(i);
        }
        s
    }
}

impl fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuSet({})", self.to_list_string())
    }
}

impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_list_string())
    }
}

impl Serialize for CpuSet {
    /// Serializes as a JSON array of indexes, increasing.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_round_trip() {
        let s = CpuSet::parse_list("0-3,8-11,64,127-129\n").unwrap();
        assert_eq!(s.len(), 4 + 4 + 1 + 3);
        assert_eq!(s.to_list_string(), "0-3,8-11,64,127-129");
        assert_eq!(s.last(), Some(129));
        assert_eq!(CpuSet::parse_list("").unwrap(), CpuSet::new());
        assert_eq!(CpuSet::parse_list(" 5 ").unwrap().to_vec(), vec![5]);
    }

    #[test]
    fn list_errors() {
        assert!(matches!(
            CpuSet::parse_list("3-1"),
            Err(CpuSetParseError::ReversedRange { .. })
        ));
        assert!(matches!(
            CpuSet::parse_list("a"),
            Err(CpuSetParseError::Malformed { .. })
        ));
        assert!(matches!(
            CpuSet::parse_list("1,,2"),
            Err(CpuSetParseError::Malformed { .. })
        ));
        assert!(matches!(
            CpuSet::parse_list("-1"),
            Err(CpuSetParseError::Malformed { .. })
        ));
        assert!(matches!(
            CpuSet::parse_list("99999999999"),
            Err(CpuSetParseError::TooLarge { .. })
        ));
    }

    #[test]
    fn masks() {
        assert_eq!(CpuSet::parse_mask("0000000f").unwrap().to_vec(), vec![0, 1, 2, 3]);
        assert_eq!(
            CpuSet::parse_mask("00000001,00000000").unwrap().to_vec(),
            vec![32]
        );
        assert_eq!(CpuSet::parse_mask("ff,00000000,00000001\n").unwrap().len(), 9);
        assert_eq!(CpuSet::parse_mask("0x3").unwrap().to_vec(), vec![0, 1]);
        assert!(CpuSet::parse_mask("xyz").is_err());
        assert!(CpuSet::parse_mask("1,,2").is_err());
        assert!(CpuSet::parse_mask("").unwrap().is_empty());
    }

    #[test]
    fn inserts_above_the_maximum_are_refused_without_growing() {
        let mut s = CpuSet::new();
        assert_eq!(
            s.try_insert(u32::MAX),
            Err(CpuSetParseError::TooLarge {
                index: u64::from(u32::MAX)
            })
        );
        assert!(
            s.words.capacity() <= 1,
            "the set grew to {} words",
            s.words.capacity()
        );
        assert!(CpuSet::try_single(MAX_INDEX + 1).is_err());
        assert_eq!(
            CpuSet::try_single(MAX_INDEX).map(|s| s.last()),
            Ok(Some(MAX_INDEX))
        );
        assert!(std::panic::catch_unwind(|| CpuSet::single(u32::MAX)).is_err());
    }

    #[test]
    fn range_insert_matches_one_by_one() {
        for (a, b) in [
            (0, 0),
            (0, 63),
            (0, 64),
            (3, 129),
            (64, 127),
            (63, 64),
            (100, 1000),
        ] {
            let mut r = CpuSet::new();
            r.insert_range(a, b);
            assert_eq!(r, (a..=b).collect::<CpuSet>(), "{a}-{b}");
        }
        let mut r = CpuSet::new();
        r.insert_range(5, 4);
        assert!(r.is_empty());
    }

    #[test]
    fn set_ops() {
        let a = CpuSet::parse_list("0-7").unwrap();
        let b = CpuSet::parse_list("4-200").unwrap();
        assert_eq!(a.intersection(&b).to_list_string(), "4-7");
        assert_eq!(a.difference(&b).to_list_string(), "0-3");
        assert_eq!(a.union(&b).to_list_string(), "0-200");
        assert!(CpuSet::parse_list("1-2").unwrap().is_subset(&a));
        assert_eq!(CpuSet::parse_list("1").unwrap(), {
            let mut x = CpuSet::parse_list("1,100").unwrap();
            x.remove(100);
            x
        });
    }
}

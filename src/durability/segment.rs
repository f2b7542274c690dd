//! Segment files: `wal-<shard>-<seq>.log`, a checksummed header followed by frames.
//!
//! ```text
//! offset  0  magic "LOCUSWAL" (8 bytes)
//!         8  format version u32
//!        12  shard u32
//!        16  dimension u32
//!        20  CRC-32 of the predecessor's last frame u32 (0: none; the segment chain)
//!        24  segment sequence number u64
//!        32  lsn of the segment's first record u64
//!        40  CRC-32 of bytes 0..40, u32
//!        44  reserved u32 (must be 0)
//!        48  frames…
//! ```
//!
//! A segment is created under a temporary name, its header fsynced, then renamed and the
//! directory fsynced: a segment file either has a whole header or does not exist.
//!
//! The chain: segment `n + 1` starts at the lsn after segment `n`'s last record and names the
//! checksum of that record's frame, and the sequence number in the header must match the
//! name. So a segment deleted, renamed, swapped, truncated at a frame boundary or copied in
//! from elsewhere breaks the chain and is reported, never read as a shorter log.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::DurabilityError;
use super::fsutil::sync_dir_in;
use super::storage::{Storage, StorageFile, remove_if_present};

/// The format version this build writes and reads (segments, snapshots, manifest). Version 3
/// added the durable position to every frame and the predecessor's checksum to segment headers.
pub const FORMAT_VERSION: u32 = 3;
/// Bytes of a segment header.
pub(crate) const HEADER_LEN: usize = 48;
const MAGIC: &[u8; 8] = b"LOCUSWAL";

/// A segment's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub shard: u32,
    pub dim: u32,
    pub seq: u64,
    pub first_lsn: u64,
    /// The checksum of the predecessor's last frame (0 for the first segment or an empty one).
    pub prev_crc: u32,
}

impl SegmentHeader {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&self.shard.to_le_bytes());
        h[16..20].copy_from_slice(&self.dim.to_le_bytes());
        h[20..24].copy_from_slice(&self.prev_crc.to_le_bytes());
        h[24..32].copy_from_slice(&self.seq.to_le_bytes());
        h[32..40].copy_from_slice(&self.first_lsn.to_le_bytes());
        let crc = crc32fast::hash(&h[0..40]);
        h[40..44].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Parses and checks a header: magic, checksum, version, then shard and dimension.
    pub(crate) fn decode(bytes: &[u8], path: &Path, shard: u32, dim: u32) -> Result<Self, DurabilityError> {
        let corrupt = |what: &str| DurabilityError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            what: what.to_string(),
        };
        if bytes.len() < HEADER_LEN {
            return Err(corrupt("segment header is truncated"));
        }
        if &bytes[0..8] != MAGIC {
            return Err(corrupt("not a Locus WAL segment (bad magic)"));
        }
        let u32_at = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let u64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(a)
        };
        if u32_at(40) != crc32fast::hash(&bytes[0..40]) || u32_at(44) != 0 {
            return Err(corrupt("segment header fails its checksum"));
        }
        let version = u32_at(8);
        if version != FORMAT_VERSION {
            return Err(DurabilityError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let header = SegmentHeader {
            shard: u32_at(12),
            dim: u32_at(16),
            seq: u64_at(24),
            first_lsn: u64_at(32),
            prev_crc: u32_at(20),
        };
        if header.dim != dim {
            return Err(DurabilityError::DimensionMismatch {
                path: path.to_path_buf(),
                expected: dim,
                found: header.dim,
            });
        }
        if header.shard != shard {
            return Err(corrupt(&format!(
                "segment belongs to shard {}, its name says {shard}",
                header.shard
            )));
        }
        Ok(header)
    }
}

/// The file name of a shard's segment.
pub fn segment_name(shard: u32, seq: u64) -> String {
    format!("wal-{shard}-{seq}.log")
}

/// Parses `wal-<shard>-<seq>.log`.
fn parse_name(name: &str) -> Option<(u32, u64)> {
    let rest = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    let (shard, seq) = rest.split_once('-')?;
    Some((shard.parse().ok()?, seq.parse().ok()?))
}

/// The segments of `shard` in `dir`, in sequence order.
pub(crate) fn list(dir: &Path, shard: u32) -> Result<Vec<(u64, PathBuf)>, DurabilityError> {
    let entries = fs::read_dir(dir).map_err(|e| DurabilityError::from_io("read_dir", dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DurabilityError::from_io("read_dir", dir, e))?;
        match entry.file_name().to_str().and_then(parse_name) {
            Some((s, seq)) if s == shard => out.push((seq, entry.path())),
            _ => {}
        }
    }
    out.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(out)
}

/// Creates segment `header.seq` of `header.shard` durably through `storage` and returns it
/// opened for appending. The temporary file is created new (a leftover one is removed first).
pub(crate) fn create(
    storage: &dyn Storage,
    dir: &Path,
    header: SegmentHeader,
) -> Result<(Box<dyn StorageFile>, PathBuf), DurabilityError> {
    let path = dir.join(segment_name(header.shard, header.seq));
    let tmp = dir.join(format!("{}.tmp", segment_name(header.shard, header.seq)));
    remove_if_present(storage, &tmp).map_err(|e| DurabilityError::from_io("remove", &tmp, e))?;
    let mut f = storage
        .create_new(&tmp)
        .map_err(|e| DurabilityError::from_io("create", &tmp, e))?;
    f.write_all(&header.encode())
        .map_err(|e| DurabilityError::from_io("write", &tmp, e))?;
    f.sync_all()
        .map_err(|e| DurabilityError::from_io("fsync", &tmp, e))?;
    storage
        .rename(&tmp, &path)
        .map_err(|e| DurabilityError::from_io("rename", &path, e))?;
    sync_dir_in(storage, dir)?;
    Ok((f, path))
}

//! `wal-<shard>.head`: the newest segment of a shard's log and how far its records are known
//! fsynced, written atomically when a log is opened and at every rotation (not per group: that
//! would double the fsyncs of every append).
//!
//! ```text
//! magic "LOCUSWHD" | format version u32 | shard u32 | newest segment seq u64
//! | durable end lsn u64 (every record below it was fsynced) | CRC-32 of everything before, u32
//! ```
//!
//! Recovery holds the log to it: a newest segment deleted, or records cut off the end of the log
//! that were fsynced before its last open or rotation, are reported instead of being read as a
//! shorter log. (Records appended since then are protected by the durable position their
//! successors carry, not by the head.)

use std::path::Path;

use super::DurabilityError;
use super::fsutil::write_atomic_in;
use super::segment::FORMAT_VERSION;
use super::storage::Storage;

const MAGIC: &[u8; 8] = b"LOCUSWHD";
const LEN: usize = 8 + 4 + 4 + 8 + 8 + 4;

/// What a shard's head file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainHead {
    /// The newest segment's sequence number.
    pub seq: u64,
    /// Every record below this lsn was fsynced.
    pub durable_end: u64,
}

/// The head file's name for `shard`.
pub(crate) fn head_name(shard: u32) -> String {
    format!("wal-{shard}.head")
}

impl ChainHead {
    /// Writes the head of `shard` atomically through `storage`.
    pub(crate) fn write(&self, storage: &dyn Storage, dir: &Path, shard: u32) -> Result<(), DurabilityError> {
        let mut out = Vec::with_capacity(LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&shard.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.durable_end.to_le_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        write_atomic_in(storage, dir, &head_name(shard), &out)
    }

    /// Reads the head of `shard`; `Ok(None)` if there is none.
    pub(crate) fn read(dir: &Path, shard: u32) -> Result<Option<ChainHead>, DurabilityError> {
        let path = dir.join(head_name(shard));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DurabilityError::from_io("read", &path, e)),
        };
        let corrupt = |what: &str| DurabilityError::Corrupt {
            path: path.clone(),
            offset: 0,
            what: what.to_string(),
        };
        if bytes.len() != LEN || &bytes[0..8] != MAGIC {
            return Err(corrupt("not a Locus log head (bad magic or size)"));
        }
        let u32_at = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let u64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(a)
        };
        if u32_at(LEN - 4) != crc32fast::hash(&bytes[..LEN - 4]) {
            return Err(corrupt("log head fails its checksum"));
        }
        if u32_at(8) != FORMAT_VERSION {
            return Err(DurabilityError::UnsupportedVersion {
                path,
                found: u32_at(8),
                supported: FORMAT_VERSION,
            });
        }
        if u32_at(12) != shard {
            return Err(corrupt(&format!(
                "log head of shard {}, its name says {shard}",
                u32_at(12)
            )));
        }
        Ok(Some(ChainHead {
            seq: u64_at(16),
            durable_end: u64_at(24),
        }))
    }
}

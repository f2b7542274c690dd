//! `ENGINE`: a durable directory's identity — the format version, dimension and shard count it
//! was created with — written (temp + fsync + rename) before any log exists, and checked at
//! every open, so a directory is never reopened with another shape (its episodes would be
//! routed to other shards than the logs that hold them).
//!
//! ```text
//! magic "LOCUSENG" | format version u32 | dim u32 | shards u32 | CRC-32 of everything before, u32
//! ```

use std::path::Path;

use crate::durability::fsutil::write_atomic;
use crate::durability::{DurabilityError, FORMAT_VERSION};

/// The identity file's name.
pub(crate) const ENGINE_NAME: &str = "ENGINE";
const MAGIC: &[u8; 8] = b"LOCUSENG";
const LEN: usize = 8 + 4 + 4 + 4 + 4;

fn encode(dim: u32, shards: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&dim.to_le_bytes());
    out.extend_from_slice(&shards.to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Checks `dir/ENGINE` against `dim` and `shards`, or writes it if the directory holds no
/// Locus files yet.
///
/// # Errors
/// [`DurabilityError::UnsupportedVersion`], [`DurabilityError::DimensionMismatch`] or
/// [`DurabilityError::ShardCountMismatch`] for another shape; [`DurabilityError::Corrupt`] for a
/// damaged file, or logs or a snapshot without the file; I/O errors.
pub(crate) fn check_or_write(dir: &Path, dim: u32, shards: u32) -> Result<(), DurabilityError> {
    let path = dir.join(ENGINE_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let entries = std::fs::read_dir(dir).map_err(|e| DurabilityError::from_io("read_dir", dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| DurabilityError::from_io("read_dir", dir, e))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let ours = name.starts_with("wal-") || name.starts_with("snap-") || name == "MANIFEST";
                if ours && !name.ends_with(".tmp") {
                    return Err(DurabilityError::Corrupt {
                        path: path.clone(),
                        offset: 0,
                        what: format!(
                            "missing, but the directory holds {name}: not an engine directory of this build"
                        ),
                    });
                }
            }
            return write_atomic(dir, ENGINE_NAME, &encode(dim, shards));
        }
        Err(e) => return Err(DurabilityError::from_io("read", &path, e)),
    };
    let corrupt = |what: &str| DurabilityError::Corrupt {
        path: path.clone(),
        offset: 0,
        what: what.to_string(),
    };
    if bytes.len() != LEN || &bytes[0..8] != MAGIC {
        return Err(corrupt("not a Locus engine identity file (bad magic or size)"));
    }
    if u32_at(&bytes, LEN - 4) != crc32fast::hash(&bytes[..LEN - 4]) {
        return Err(corrupt("the engine identity file fails its checksum"));
    }
    let version = u32_at(&bytes, 8);
    if version != FORMAT_VERSION {
        return Err(DurabilityError::UnsupportedVersion {
            path,
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let found_dim = u32_at(&bytes, 12);
    if found_dim != dim {
        return Err(DurabilityError::DimensionMismatch {
            path,
            expected: dim,
            found: found_dim,
        });
    }
    let found_shards = u32_at(&bytes, 16);
    if found_shards != shards {
        return Err(DurabilityError::ShardCountMismatch {
            path,
            expected: shards,
            found: found_shards,
        });
    }
    Ok(())
}

//! `MANIFEST`: names the current snapshot. Written to a temporary name, fsynced, renamed.
//!
//! ```text
//! magic "LOCUSMAN" | format version u32 | snapshot id u64 | name_len u16 | name (UTF-8)
//! | CRC-32 of everything before, u32
//! ```

use std::path::Path;

use super::DurabilityError;
use super::fsutil::write_atomic_in;
use super::segment::FORMAT_VERSION;
use super::storage::Storage;

/// The manifest's file name.
pub const MANIFEST_NAME: &str = "MANIFEST";
const MAGIC: &[u8; 8] = b"LOCUSMAN";

/// What the manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub snapshot_id: u64,
    pub snapshot_file: String,
}

impl Manifest {
    /// Writes the manifest atomically through `storage`.
    pub(crate) fn write_in(&self, storage: &dyn Storage, dir: &Path) -> Result<(), DurabilityError> {
        let name = self.snapshot_file.as_bytes();
        let Ok(name_len) = u16::try_from(name.len()) else {
            return Err(DurabilityError::InvalidInput {
                what: "snapshot file name too long".into(),
            });
        };
        let mut out = Vec::with_capacity(8 + 4 + 8 + 2 + name.len() + 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.snapshot_id.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(name);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        write_atomic_in(storage, dir, MANIFEST_NAME, &out)
    }

    /// Reads `dir/MANIFEST`; `Ok(None)` if there is none.
    pub(crate) fn read(dir: &Path) -> Result<Option<Manifest>, DurabilityError> {
        let path = dir.join(MANIFEST_NAME);
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
        if bytes.len() < 26 || &bytes[0..8] != MAGIC {
            return Err(corrupt("not a Locus manifest (bad magic or too short)"));
        }
        let body = bytes.len() - 4;
        let crc = u32::from_le_bytes([bytes[body], bytes[body + 1], bytes[body + 2], bytes[body + 3]]);
        if crc != crc32fast::hash(&bytes[..body]) {
            return Err(corrupt("manifest fails its checksum"));
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != FORMAT_VERSION {
            return Err(DurabilityError::UnsupportedVersion {
                path,
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[12..20]);
        let name_len = u16::from_le_bytes([bytes[20], bytes[21]]) as usize;
        if 22 + name_len != body {
            return Err(corrupt("manifest name length disagrees with its size"));
        }
        let Ok(name) = std::str::from_utf8(&bytes[22..body]) else {
            return Err(corrupt("manifest names a file that is not UTF-8"));
        };
        if name.contains('/') || name.contains('\\') || name.is_empty() {
            return Err(corrupt("manifest names a file outside the directory"));
        }
        Ok(Some(Manifest {
            snapshot_id: u64::from_le_bytes(id),
            snapshot_file: name.to_string(),
        }))
    }
}

//! Checking a segment's frames: where the intact records end, and whether what follows is a torn
//! tail (a crash artefact) or corruption.

use std::path::{Path, PathBuf};

use super::DurabilityError;
use super::frame::{self, Frame};
use super::record::{Record, RecordLimits};
use super::segment::{HEADER_LEN, SegmentHeader};

/// A torn or corrupt record at the very end of a shard's last segment, dropped by recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub path: PathBuf,
    /// Where the dropped bytes start (the end of the last intact record).
    pub offset: u64,
    /// How many bytes were dropped. How many records they held cannot be known (a torn length
    /// field hides it); none of them had been acknowledged with [`SyncPolicy::EveryBatch`](super::SyncPolicy::EveryBatch).
    pub dropped_bytes: u64,
    /// Why the first dropped frame is not intact.
    pub reason: String,
}

/// The result of checking one segment.
#[derive(Debug, Clone)]
pub(crate) struct SegmentScan {
    /// Offset just past the last intact frame.
    pub end: u64,
    /// The lsn after the last intact frame.
    pub next_lsn: u64,
    /// Set when the segment ends in a torn tail (only possible for the last segment).
    pub tail: Option<TornTail>,
}

/// Checks every frame of a segment held in `bytes`.
///
/// Frames must be intact, decode, and number consecutively from the header's first lsn. A bad
/// frame in a segment that is not the last (`is_last = false`) is corruption. In the last
/// segment, a bad or short frame followed by no intact frame is a torn tail; followed by an
/// intact frame it is corruption before the tail.
pub(crate) fn scan_segment(
    path: &Path,
    bytes: &[u8],
    shard: u32,
    limits: &RecordLimits,
    is_last: bool,
) -> Result<SegmentScan, DurabilityError> {
    let header = SegmentHeader::decode(bytes, path, shard, limits.dim)?;
    let max_body = limits.max_encoded_len();
    let mut pos = HEADER_LEN;
    let mut lsn = header.first_lsn;
    while pos < bytes.len() {
        let problem = match frame::read(&bytes[pos..], max_body) {
            Frame::Valid { lsn: got, body, len } => {
                if got != lsn {
                    return Err(DurabilityError::Corrupt {
                        path: path.to_path_buf(),
                        offset: pos as u64,
                        what: format!("record numbered {got} where {lsn} should follow"),
                    });
                }
                match Record::decode(body, limits) {
                    Ok(_) => {
                        pos += len;
                        lsn += 1;
                        continue;
                    }
                    Err(e) => format!("checksummed record does not decode: {e}"),
                }
            }
            Frame::Short => "the file ends inside the record".to_string(),
            Frame::Bad(why) => why,
        };
        let corrupt = |what: String| DurabilityError::Corrupt {
            path: path.to_path_buf(),
            offset: pos as u64,
            what,
        };
        if !is_last {
            return Err(corrupt(format!("{problem} (in a sealed segment)")));
        }
        if let Some(at) = frame::any_valid_after(&bytes[pos..], limits) {
            return Err(corrupt(format!(
                "{problem}; an intact record follows at byte {}",
                pos + at
            )));
        }
        let tail = TornTail {
            path: path.to_path_buf(),
            offset: pos as u64,
            dropped_bytes: (bytes.len() - pos) as u64,
            reason: problem,
        };
        return Ok(SegmentScan {
            end: pos as u64,
            next_lsn: lsn,
            tail: Some(tail),
        });
    }
    Ok(SegmentScan {
        end: pos as u64,
        next_lsn: lsn,
        tail: None,
    })
}

/// Reads a whole segment file.
pub(crate) fn read_segment(path: &Path) -> Result<Vec<u8>, DurabilityError> {
    std::fs::read(path).map_err(|e| DurabilityError::from_io("read", path, e))
}

//! Checking a segment's frames: where the intact records end, what damage follows, and whether
//! an intact frame after the damage proves that the damaged records had been fsynced.

use std::path::{Path, PathBuf};

use super::DurabilityError;
use super::frame::{self, Frame, Survivor};
use super::record::{Record, RecordLimits};
use super::segment::{HEADER_LEN, SegmentHeader};

/// Records and bytes recovery dropped from the end of a shard's log: an unsynced tail that a
/// crash left torn (default mode), or what point-in-time salvage left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub path: PathBuf,
    /// Where the dropped bytes start (the end of the last intact record).
    pub offset: u64,
    /// How many bytes were dropped from this segment.
    pub dropped_bytes: u64,
    /// The lsn of the first record dropped.
    pub from_lsn: u64,
    /// Intact records found among the dropped bytes (after the damaged one). How many records
    /// the damaged bytes themselves held cannot be known (a torn length field hides it); no
    /// frame after them proved them fsynced, so no acknowledged-durable record was among them.
    pub intact_records_dropped: u64,
    /// Why the first dropped frame is not intact.
    pub reason: String,
}

/// The first damaged frame of a segment.
#[derive(Debug, Clone)]
pub(crate) struct Damage {
    /// Its offset.
    pub offset: u64,
    /// The lsn that should have been there.
    pub lsn: u64,
    /// What is wrong, in words.
    pub problem: String,
    /// Intact frames after it.
    pub survivors: Vec<Survivor>,
}

impl Damage {
    /// The intact frame after the damage that proves the damaged record was fsynced, if any:
    /// one whose durable position lies past the damaged lsn.
    pub(crate) fn proof(&self) -> Option<Survivor> {
        self.survivors.iter().copied().find(|s| s.durable > self.lsn)
    }
}

/// The result of checking one segment.
#[derive(Debug, Clone)]
pub(crate) struct SegmentScan {
    /// Offset just past the last intact frame.
    pub end: u64,
    /// The lsn after the last intact frame.
    pub next_lsn: u64,
    /// The checksum of the last intact frame (0: none).
    pub last_crc: u32,
    /// The first damaged frame, if the intact frames do not reach the end of the file.
    pub damage: Option<Damage>,
    /// The file's length.
    pub len: u64,
}

impl SegmentScan {
    /// The damage as a dropped tail, for the report.
    pub(crate) fn tail(&self, path: &Path) -> Option<TornTail> {
        self.damage.as_ref().map(|d| TornTail {
            path: path.to_path_buf(),
            offset: d.offset,
            dropped_bytes: self.len - d.offset,
            from_lsn: d.lsn,
            intact_records_dropped: d.survivors.len() as u64,
            reason: d.problem.clone(),
        })
    }
}

/// Checks every frame of a segment held in `bytes`: they must be intact, decode, and number
/// consecutively from the header's first lsn. Stops at the first frame that is not; what the
/// damage means (torn tail, corruption) is the caller's rule.
pub(crate) fn scan_segment(
    path: &Path,
    bytes: &[u8],
    shard: u32,
    limits: &RecordLimits,
) -> Result<SegmentScan, DurabilityError> {
    let header = SegmentHeader::decode(bytes, path, shard, limits.dim)?;
    let max_body = limits.max_encoded_len();
    let mut pos = HEADER_LEN;
    let mut lsn = header.first_lsn;
    let mut last_crc = 0;
    while pos < bytes.len() {
        let problem = match frame::read(&bytes[pos..], max_body) {
            Frame::Valid {
                lsn: got,
                body,
                len,
                crc,
                ..
            } => {
                if got != lsn {
                    format!("record numbered {got} where {lsn} should follow")
                } else {
                    match Record::decode(body, limits) {
                        Ok(_) => {
                            pos += len;
                            lsn += 1;
                            last_crc = crc;
                            continue;
                        }
                        Err(e) => format!("checksummed record does not decode: {e}"),
                    }
                }
            }
            Frame::Short => "the file ends inside the record".to_string(),
            Frame::Bad(why) => why,
        };
        let survivors = frame::survivors_after(&bytes[pos..], limits)
            .into_iter()
            .map(|s| Survivor { at: pos + s.at, ..s })
            .collect();
        return Ok(SegmentScan {
            end: pos as u64,
            next_lsn: lsn,
            last_crc,
            damage: Some(Damage {
                offset: pos as u64,
                lsn,
                problem,
                survivors,
            }),
            len: bytes.len() as u64,
        });
    }
    Ok(SegmentScan {
        end: pos as u64,
        next_lsn: lsn,
        last_crc,
        damage: None,
        len: bytes.len() as u64,
    })
}

/// The error for damage recovery may not drop: in a sealed segment, or proven fsynced.
pub(crate) fn damage_error(shard: u32, path: &Path, damage: &Damage, sealed: bool) -> DurabilityError {
    let why = match (sealed, damage.proof()) {
        (true, _) => "in a sealed segment".to_string(),
        (false, Some(p)) => format!(
            "before the durable position: the intact record {} at byte {} shows every record below {} was fsynced",
            p.lsn, p.at, p.durable
        ),
        (false, None) => "in the log".to_string(),
    };
    DurabilityError::Corrupt {
        path: path.to_path_buf(),
        offset: damage.offset,
        what: format!("shard {shard}, record {}: {} ({why})", damage.lsn, damage.problem),
    }
}

/// Reads a whole segment file.
pub(crate) fn read_segment(path: &Path) -> Result<Vec<u8>, DurabilityError> {
    std::fs::read(path).map_err(|e| DurabilityError::from_io("read", path, e))
}

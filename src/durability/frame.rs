//! Framing of records inside a segment: length, checksum, log sequence number, durable
//! position, body.
//!
//! ```text
//! len u32 | crc u32 | lsn u64 | durable u64 | body (len bytes: one encoded Record)
//! crc = CRC-32 (IEEE, crc32fast) of the 8 lsn bytes, the 8 durable bytes and the body
//! ```
//!
//! `durable` is the log's durable position when the frame's group was written: every record
//! with a smaller lsn had been fsynced before. An intact frame is proof of it, so recovery can
//! tell damage to fsynced records (an error) from an unsynced tail a power loss left in any
//! state (dropped and reported).
//!
//! Appenders encode a frame with `crc`, `lsn` and `durable` zeroed ([`push_unsealed`]); the
//! group-commit leader assigns consecutive sequence numbers to the whole batch and seals it
//! ([`seal`]) just before writing, so a failed batch leaves no gap in the numbering.

use super::DurabilityError;
use super::record::{Record, RecordLimits};

/// Bytes before a frame's body.
pub(crate) const FRAME_HEADER: usize = 24;

/// Appends `record` as a frame with a zero checksum and sequence number.
pub(crate) fn push_unsealed(
    record: &Record,
    limits: &RecordLimits,
    out: &mut Vec<u8>,
) -> Result<(), DurabilityError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER]);
    if let Err(e) = record.encode_into(limits, out) {
        out.truncate(start);
        return Err(e);
    }
    let body = out.len() - start - FRAME_HEADER;
    let Ok(body) = u32::try_from(body) else {
        out.truncate(start);
        return Err(DurabilityError::InvalidRecord {
            what: format!("record of {body} bytes is too large to frame"),
        });
    };
    out[start..start + 4].copy_from_slice(&body.to_le_bytes());
    Ok(())
}

/// Numbers the frames in `buf` from `first_lsn`, stamps them with the durable position
/// `durable` (every lsn below it is fsynced) and writes their checksums. Returns the count.
///
/// `buf` must hold only frames made by [`push_unsealed`].
pub(crate) fn seal(buf: &mut [u8], first_lsn: u64, durable: u64) -> u64 {
    let mut pos = 0;
    let mut lsn = first_lsn;
    while pos + FRAME_HEADER <= buf.len() {
        let len = u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
        buf[pos + 8..pos + 16].copy_from_slice(&lsn.to_le_bytes());
        buf[pos + 16..pos + 24].copy_from_slice(&durable.to_le_bytes());
        let crc = crc32fast::hash(&buf[pos + 8..pos + FRAME_HEADER + len]);
        buf[pos + 4..pos + 8].copy_from_slice(&crc.to_le_bytes());
        pos += FRAME_HEADER + len;
        lsn += 1;
    }
    lsn - first_lsn
}

/// The checksum of the last frame in a sealed buffer, if it holds any.
pub(crate) fn last_crc(buf: &[u8]) -> Option<u32> {
    let mut pos = 0;
    let mut last = None;
    while pos + FRAME_HEADER <= buf.len() {
        let len = u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
        last = Some(u32::from_le_bytes([
            buf[pos + 4],
            buf[pos + 5],
            buf[pos + 6],
            buf[pos + 7],
        ]));
        pos += FRAME_HEADER + len;
    }
    last
}

/// A frame read back from a segment.
#[derive(Debug, PartialEq)]
pub(crate) enum Frame<'a> {
    /// A whole, checksummed frame.
    Valid {
        /// Its sequence number.
        lsn: u64,
        /// The durable position it carries: every lsn below was fsynced before it was written.
        durable: u64,
        /// Its checksum (the segment chain names a predecessor's last one).
        crc: u32,
        /// The encoded record.
        body: &'a [u8],
        /// Total frame length (header + body).
        len: usize,
    },
    /// The bytes end inside the frame (the torn-write case).
    Short,
    /// The frame is whole but wrong: an impossible length or a checksum mismatch.
    Bad(String),
}

/// Reads the frame at the start of `bytes`; `max_body` bounds the length field.
pub(crate) fn read(bytes: &[u8], max_body: usize) -> Frame<'_> {
    if bytes.len() < FRAME_HEADER {
        return Frame::Short;
    }
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if len == 0 || len > max_body {
        return Frame::Bad(format!("frame length {len} is outside 1..={max_body}"));
    }
    if bytes.len() < FRAME_HEADER + len {
        return Frame::Short;
    }
    let crc = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let actual = crc32fast::hash(&bytes[8..FRAME_HEADER + len]);
    if crc != actual {
        return Frame::Bad(format!(
            "checksum {crc:#010x} but the frame hashes to {actual:#010x}"
        ));
    }
    let mut lsn = [0u8; 8];
    lsn.copy_from_slice(&bytes[8..16]);
    let mut durable = [0u8; 8];
    durable.copy_from_slice(&bytes[16..24]);
    Frame::Valid {
        lsn: u64::from_le_bytes(lsn),
        durable: u64::from_le_bytes(durable),
        crc,
        body: &bytes[FRAME_HEADER..FRAME_HEADER + len],
        len: FRAME_HEADER + len,
    }
}

/// An intact frame found past a damaged one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Survivor {
    /// Its offset in the searched bytes.
    pub at: usize,
    /// Its lsn.
    pub lsn: u64,
    /// The durable position it proves.
    pub durable: u64,
}

/// The whole valid frames whose records decode that start anywhere in `bytes` after offset 0
/// (a frame found is skipped over whole; the search resumes byte by byte after it).
///
/// Used to tell an unsynced tail (no intact frame after the damage proves it was fsynced) from
/// damage before the durable position.
pub(crate) fn survivors_after(bytes: &[u8], limits: &RecordLimits) -> Vec<Survivor> {
    let max_body = limits.max_encoded_len();
    let mut out = Vec::new();
    let mut at = 1;
    while at + FRAME_HEADER <= bytes.len() {
        match read(&bytes[at..], max_body) {
            Frame::Valid {
                lsn,
                durable,
                body,
                len,
                ..
            } if Record::decode(body, limits).is_ok() => {
                out.push(Survivor { at, lsn, durable });
                at += len;
            }
            _ => at += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_frames_read_back_and_any_flip_is_caught() {
        let limits = RecordLimits::new(2);
        let mut buf = Vec::new();
        push_unsealed(&Record::Forget { seq: 0, id: 5 }, &limits, &mut buf).unwrap();
        let assoc = Record::Associate {
            seq: 1,
            a: 1,
            b: 2,
            w: 0.5,
            both: true,
        };
        push_unsealed(&assoc, &limits, &mut buf).unwrap();
        assert_eq!(seal(&mut buf, 10, 7), 2);
        let max = limits.max_encoded_len();
        let Frame::Valid {
            lsn, durable, len, ..
        } = read(&buf, max)
        else {
            panic!("first frame invalid")
        };
        assert_eq!((lsn, durable), (10, 7));
        assert!(matches!(read(&buf[len..], max), Frame::Valid { lsn: 11, .. }));
        for bit in 0..len * 8 {
            let mut copy = buf.clone();
            copy[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(read(&copy, max), Frame::Valid { lsn: 10, .. }),
                "flip {bit} undetected"
            );
        }
        assert_eq!(read(&buf[..len - 1], max), Frame::Short);
    }
}

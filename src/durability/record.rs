//! The records a shard's log holds, and their binary encoding (format version 2).
//!
//! Every integer and float is little-endian. A record starts with a one-byte tag and the
//! record's engine-wide order number `seq` (it orders records of different shards on replay):
//!
//! ```text
//! tag 1  Episode    seq u64 | id u64 | space_len u8 | space (UTF-8)
//!                   | has_stream u8 (0/1) | [stream_len u8 | stream (UTF-8) if 1]
//!                   | timestamp u64
//!                   | dim u32 | dim × f32 | payload_len u32 | payload bytes
//!                   | link_count u32 | link_count × (target u64, weight f32, direction u8)
//! tag 2  Associate  seq u64 | a u64 | b u64 | w f32 | both u8 (0: a → b only, 1: both ways)
//! tag 3  Forget     seq u64 | id u64
//! ```
//!
//! A link's direction is 0 (both ways), 1 (new episode → target) or 2 (target → new episode).
//!
//! Decoding checks every count against both the bytes that remain and a [`RecordLimits`] maximum
//! before it allocates, so a corrupt or hostile length never sizes an allocation. Trailing bytes
//! after a record are an error.

use super::DurabilityError;

/// Which way a logged link points (the engine's `LinkDirection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Both ways: new ↔ target.
    Both,
    /// New episode → target only.
    Out,
    /// Target → new episode only.
    In,
}

impl LinkKind {
    fn code(self) -> u8 {
        match self {
            LinkKind::Both => 0,
            LinkKind::Out => 1,
            LinkKind::In => 2,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(LinkKind::Both),
            1 => Some(LinkKind::Out),
            2 => Some(LinkKind::In),
            _ => None,
        }
    }
}

/// One explicit link of a logged episode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkRecord {
    /// The existing episode it links to.
    pub target: u64,
    /// The weight.
    pub weight: f32,
    /// Which way it points.
    pub direction: LinkKind,
}

/// One accepted episode, as the engine hands it to its shard's log.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeRecord {
    /// Engine-wide order of the record (replay applies records of all shards in this order).
    pub seq: u64,
    /// The episode's id.
    pub id: u64,
    /// The space (tenant) it belongs to, by name (at most 255 bytes of UTF-8): names are stable
    /// across restarts, internal space numbers need not be.
    pub space: String,
    /// The stream it continues, by name (at most 255 bytes), if any.
    pub stream: Option<String>,
    /// Caller-supplied timestamp.
    pub timestamp: u64,
    /// The embedding; its length is the log's dimension.
    pub embedding: Vec<f32>,
    /// Opaque payload bytes.
    pub payload: Vec<u8>,
    /// Explicit associations to other episodes.
    pub links: Vec<LinkRecord>,
}

/// A log record: everything that changes a shard's state.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// An episode was observed.
    Episode(EpisodeRecord),
    /// An explicit association `a → b` (and `b → a` if `both`) with weight `w` was added.
    Associate {
        /// Engine-wide order of the record.
        seq: u64,
        /// Source episode.
        a: u64,
        /// Target episode.
        b: u64,
        /// Weight.
        w: f32,
        /// Whether `b → a` was added too.
        both: bool,
    },
    /// Episode `id` was forgotten.
    Forget {
        /// Engine-wide order of the record.
        seq: u64,
        /// The forgotten episode.
        id: u64,
    },
}

/// Upper bounds a decoded record must respect (besides the exact dimension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// The embedding dimension every episode must have.
    pub dim: u32,
    /// Largest payload accepted, in bytes.
    pub max_payload: u32,
    /// Most links one episode may carry.
    pub max_links: u32,
}

impl RecordLimits {
    /// Limits for `dim`-dimensional episodes with the default maxima (1 MiB payload, 4096 links).
    pub fn new(dim: u32) -> Self {
        Self {
            dim,
            max_payload: 1 << 20,
            max_links: 4096,
        }
    }

    /// The largest encoded record these limits allow, in bytes.
    pub fn max_encoded_len(&self) -> usize {
        1 + 8
            + 8
            + 1
            + 255
            + 1
            + 1
            + 255
            + 8
            + 4
            + 4 * self.dim as usize
            + 4
            + self.max_payload as usize
            + 4
            + 13 * self.max_links as usize
    }
}

const TAG_EPISODE: u8 = 1;
const TAG_ASSOCIATE: u8 = 2;
const TAG_FORGET: u8 = 3;

fn invalid(what: impl Into<String>) -> DurabilityError {
    DurabilityError::InvalidRecord { what: what.into() }
}

impl Record {
    /// The record's engine-wide order number.
    pub fn seq(&self) -> u64 {
        match self {
            Record::Episode(e) => e.seq,
            Record::Associate { seq, .. } | Record::Forget { seq, .. } => *seq,
        }
    }

    /// Appends this record's encoding to `out`.
    ///
    /// # Errors
    /// [`DurabilityError::InvalidRecord`] if the record breaks `limits` (wrong dimension, payload or
    /// link list too long, a name over 255 bytes); nothing is appended then.
    pub fn encode_into(&self, limits: &RecordLimits, out: &mut Vec<u8>) -> Result<(), DurabilityError> {
        match self {
            Record::Episode(e) => {
                if e.embedding.len() != limits.dim as usize {
                    return Err(invalid(format!(
                        "episode {} has {} dimensions, the log holds {}",
                        e.id,
                        e.embedding.len(),
                        limits.dim
                    )));
                }
                if e.space.len() > 255 {
                    return Err(invalid(format!(
                        "episode {} space name is {} bytes, the limit is 255",
                        e.id,
                        e.space.len()
                    )));
                }
                if let Some(s) = &e.stream
                    && s.len() > 255
                {
                    return Err(invalid(format!(
                        "episode {} stream name is {} bytes, the limit is 255",
                        e.id,
                        s.len()
                    )));
                }
                if e.payload.len() > limits.max_payload as usize {
                    return Err(invalid(format!(
                        "episode {} payload is {} bytes, the limit is {}",
                        e.id,
                        e.payload.len(),
                        limits.max_payload
                    )));
                }
                if e.links.len() > limits.max_links as usize {
                    return Err(invalid(format!(
                        "episode {} has {} links, the limit is {}",
                        e.id,
                        e.links.len(),
                        limits.max_links
                    )));
                }
                out.reserve(self.encoded_len());
                out.push(TAG_EPISODE);
                out.extend_from_slice(&e.seq.to_le_bytes());
                out.extend_from_slice(&e.id.to_le_bytes());
                // Fits: checked against 255 above.
                out.push(e.space.len() as u8);
                out.extend_from_slice(e.space.as_bytes());
                match &e.stream {
                    Some(s) => {
                        out.push(1);
                        // Fits: checked against 255 above.
                        out.push(s.len() as u8);
                        out.extend_from_slice(s.as_bytes());
                    }
                    None => out.push(0),
                }
                out.extend_from_slice(&e.timestamp.to_le_bytes());
                out.extend_from_slice(&limits.dim.to_le_bytes());
                for x in &e.embedding {
                    out.extend_from_slice(&x.to_le_bytes());
                }
                // Fits: checked against max_payload (a u32) above.
                out.extend_from_slice(&(e.payload.len() as u32).to_le_bytes());
                out.extend_from_slice(&e.payload);
                out.extend_from_slice(&(e.links.len() as u32).to_le_bytes());
                for l in &e.links {
                    out.extend_from_slice(&l.target.to_le_bytes());
                    out.extend_from_slice(&l.weight.to_le_bytes());
                    out.push(l.direction.code());
                }
            }
            Record::Associate { seq, a, b, w, both } => {
                out.push(TAG_ASSOCIATE);
                out.extend_from_slice(&seq.to_le_bytes());
                out.extend_from_slice(&a.to_le_bytes());
                out.extend_from_slice(&b.to_le_bytes());
                out.extend_from_slice(&w.to_le_bytes());
                out.push(u8::from(*both));
            }
            Record::Forget { seq, id } => {
                out.push(TAG_FORGET);
                out.extend_from_slice(&seq.to_le_bytes());
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
        Ok(())
    }

    /// The number of bytes [`encode_into`](Self::encode_into) appends.
    pub fn encoded_len(&self) -> usize {
        match self {
            Record::Episode(e) => {
                1 + 8
                    + 8
                    + 1
                    + e.space.len()
                    + 1
                    + e.stream.as_ref().map_or(0, |s| 1 + s.len())
                    + 8
                    + 4
                    + 4 * e.embedding.len()
                    + 4
                    + e.payload.len()
                    + 4
                    + 13 * e.links.len()
            }
            Record::Associate { .. } => 1 + 8 + 8 + 8 + 4 + 1,
            Record::Forget { .. } => 1 + 8 + 8,
        }
    }

    /// Decodes one record that fills `bytes` exactly.
    ///
    /// # Errors
    /// [`DurabilityError::InvalidRecord`] if the bytes end early, a count exceeds what remains or
    /// `limits`, the tag or a flag is unknown, or bytes are left over.
    pub fn decode(bytes: &[u8], limits: &RecordLimits) -> Result<Record, DurabilityError> {
        let mut r = Reader { bytes, pos: 0 };
        let record = match r.u8("tag")? {
            TAG_EPISODE => {
                let seq = r.u64("seq")?;
                let id = r.u64("id")?;
                let space = r.name("space")?;
                let stream = match r.u8("stream flag")? {
                    0 => None,
                    1 => Some(r.name("stream")?),
                    other => return Err(invalid(format!("stream flag is {other}, not 0 or 1"))),
                };
                let timestamp = r.u64("timestamp")?;
                let dim = r.u32("dimension")?;
                if dim != limits.dim {
                    return Err(invalid(format!(
                        "episode {id} has {dim} dimensions, the log holds {}",
                        limits.dim
                    )));
                }
                r.need(dim as usize, 4, "embedding")?;
                let mut embedding = Vec::with_capacity(dim as usize);
                for _ in 0..dim {
                    embedding.push(r.f32("embedding")?);
                }
                let payload_len = r.u32("payload length")?;
                if payload_len > limits.max_payload {
                    return Err(invalid(format!(
                        "payload of {payload_len} bytes exceeds {}",
                        limits.max_payload
                    )));
                }
                let payload = r.take(payload_len as usize, "payload")?.to_vec();
                let link_count = r.u32("link count")?;
                if link_count > limits.max_links {
                    return Err(invalid(format!("{link_count} links exceed {}", limits.max_links)));
                }
                r.need(link_count as usize, 13, "links")?;
                let mut links = Vec::with_capacity(link_count as usize);
                for _ in 0..link_count {
                    let target = r.u64("link target")?;
                    let weight = r.finite_f32("link weight")?;
                    let code = r.u8("link direction")?;
                    let direction = LinkKind::from_code(code)
                        .ok_or_else(|| invalid(format!("link direction {code} is not 0, 1 or 2")))?;
                    links.push(LinkRecord {
                        target,
                        weight,
                        direction,
                    });
                }
                Record::Episode(EpisodeRecord {
                    seq,
                    id,
                    space,
                    stream,
                    timestamp,
                    embedding,
                    payload,
                    links,
                })
            }
            TAG_ASSOCIATE => Record::Associate {
                seq: r.u64("seq")?,
                a: r.u64("a")?,
                b: r.u64("b")?,
                w: r.finite_f32("w")?,
                both: match r.u8("both")? {
                    0 => false,
                    1 => true,
                    other => return Err(invalid(format!("association flag is {other}, not 0 or 1"))),
                },
            },
            TAG_FORGET => Record::Forget {
                seq: r.u64("seq")?,
                id: r.u64("id")?,
            },
            tag => return Err(invalid(format!("unknown record tag {tag}"))),
        };
        if r.pos != bytes.len() {
            return Err(invalid(format!(
                "{} bytes left after the record",
                bytes.len() - r.pos
            )));
        }
        Ok(record)
    }
}

/// A bounds-checked little-endian cursor.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Checks that `count` items of `size` bytes remain, before anything is allocated for them.
    fn need(&self, count: usize, size: usize, what: &str) -> Result<(), DurabilityError> {
        match count.checked_mul(size) {
            Some(n) if n <= self.remaining() => Ok(()),
            _ => Err(invalid(format!(
                "{what}: {count} items of {size} bytes, only {} bytes remain",
                self.remaining()
            ))),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DurabilityError> {
        self.need(n, 1, what)?;
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DurabilityError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self, what: &str) -> Result<u8, DurabilityError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A length-prefixed (u8) UTF-8 name.
    fn name(&mut self, what: &str) -> Result<String, DurabilityError> {
        let len = self.u8(what)?;
        std::str::from_utf8(self.take(len as usize, what)?)
            .map(str::to_string)
            .map_err(|_| invalid(format!("{what} name is not UTF-8")))
    }

    fn u32(&mut self, what: &str) -> Result<u32, DurabilityError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, DurabilityError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn f32(&mut self, what: &str) -> Result<f32, DurabilityError> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }

    /// An association weight: the engine stores only finite ones, so NaN or ±inf is damage.
    fn finite_f32(&mut self, what: &str) -> Result<f32, DurabilityError> {
        let v = self.f32(what)?;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(invalid(format!("{what} is {v}, not a finite number")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(dim: usize) -> Record {
        Record::Episode(EpisodeRecord {
            seq: 3,
            id: 7,
            space: "tenant-a".into(),
            stream: Some("stream-9".into()),
            timestamp: 1234,
            embedding: (0..dim).map(|i| i as f32 * 0.5).collect(),
            payload: b"hello".to_vec(),
            links: vec![
                LinkRecord {
                    target: 1,
                    weight: 0.25,
                    direction: LinkKind::Both,
                },
                LinkRecord {
                    target: 2,
                    weight: -1.0,
                    direction: LinkKind::In,
                },
            ],
        })
    }

    #[test]
    fn every_kind_round_trips() {
        let limits = RecordLimits::new(4);
        for rec in [
            episode(4),
            Record::Associate {
                seq: 4,
                a: 1,
                b: 2,
                w: 0.5,
                both: true,
            },
            Record::Associate {
                seq: 5,
                a: 2,
                b: 1,
                w: 0.5,
                both: false,
            },
            Record::Forget { seq: 6, id: 99 },
        ] {
            let mut buf = Vec::new();
            rec.encode_into(&limits, &mut buf).unwrap();
            assert_eq!(buf.len(), rec.encoded_len());
            assert_eq!(Record::decode(&buf, &limits).unwrap(), rec);
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let limits = RecordLimits::new(4);
        let mut buf = Vec::new();
        episode(4).encode_into(&limits, &mut buf).unwrap();
        for cut in 0..buf.len() {
            assert!(Record::decode(&buf[..cut], &limits).is_err(), "cut at {cut}");
        }
        buf.push(0);
        assert!(Record::decode(&buf, &limits).is_err());
    }

    #[test]
    fn huge_counts_are_refused_before_allocating() {
        let limits = RecordLimits {
            dim: 4,
            max_payload: u32::MAX,
            max_links: u32::MAX,
        };
        let mut buf = Vec::new();
        episode(4).encode_into(&limits, &mut buf).unwrap();
        // payload_len sits after tag, seq, id, space length + name, flag, stream length + name,
        // timestamp, dim, embedding.
        let at = 1 + 8 + 8 + 1 + "tenant-a".len() + 1 + 1 + "stream-9".len() + 8 + 4 + 16;
        buf[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = Record::decode(&buf, &limits).unwrap_err();
        assert!(err.to_string().contains("payload"), "{err}");
    }

    #[test]
    fn unknown_link_direction_is_refused() {
        let limits = RecordLimits::new(4);
        let mut buf = Vec::new();
        episode(4).encode_into(&limits, &mut buf).unwrap();
        let last = buf.len() - 1;
        buf[last] = 7;
        let err = Record::decode(&buf, &limits).unwrap_err();
        assert!(err.to_string().contains("direction"), "{err}");
    }

    #[test]
    fn a_weight_that_is_not_finite_is_refused() {
        let limits = RecordLimits::new(4);
        for w in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut buf = Vec::new();
            Record::Associate {
                seq: 1,
                a: 2,
                b: 3,
                w,
                both: true,
            }
            .encode_into(&limits, &mut buf)
            .unwrap();
            let err = Record::decode(&buf, &limits).unwrap_err();
            assert!(err.to_string().contains("not a finite number"), "{err}");
        }
    }

    #[test]
    fn wrong_dimension_is_refused_both_ways() {
        let mut buf = Vec::new();
        assert!(episode(3).encode_into(&RecordLimits::new(4), &mut buf).is_err());
        assert!(buf.is_empty());
        episode(4).encode_into(&RecordLimits::new(4), &mut buf).unwrap();
        assert!(Record::decode(&buf, &RecordLimits::new(5)).is_err());
    }
}

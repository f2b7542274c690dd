//! Opening a durable directory after a restart or a crash: the current snapshot, then each
//! shard's log from the position the snapshot covers.
//!
//! Rules:
//! - Leftover `*.tmp` files (an interrupted segment, snapshot or manifest write) are removed.
//! - The manifest's snapshot is loaded and every checksum verified; a missing file, a failed
//!   checksum, another version, dimension or shard count is an error.
//! - Each shard's segments from the covered position on are checked frame by frame: records
//!   must be intact and numbered without gaps across segments. A torn or corrupt record at the
//!   tail of the shard's last segment, with no intact record after it, is a crash artefact: the
//!   segment is truncated there and the drop is reported. Anything else is an error.
//! - Nothing is replayed until every shard has been checked, so a refused recovery never yields
//!   a half-loaded state.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::DurabilityError;
use super::frame::{self, Frame};
use super::fsutil::{remove_temp_files, sync_dir};
use super::record::{Record, RecordLimits};
use super::scan::{TornTail, read_segment, scan_segment};
use super::segment::{self, HEADER_LEN, SegmentHeader};
use super::snapshot::{self, Snapshot};

/// What recovery found and did, for the caller to log or expose.
#[derive(Debug, Clone)]
pub struct RecoveryReport {
    /// The snapshot loaded, if any: (id, file).
    pub snapshot: Option<(u64, String)>,
    /// Per shard.
    pub shards: Vec<ShardRecovery>,
    /// Temporary files removed.
    pub removed_temp_files: Vec<String>,
    /// Time spent checking (not replaying).
    pub elapsed: Duration,
}

/// What recovery found in one shard's log.
#[derive(Debug, Clone)]
pub struct ShardRecovery {
    /// The shard.
    pub shard: u32,
    /// Segments checked (those holding records at or after `from_lsn`).
    pub segments: usize,
    /// First record to replay (what the snapshot covers).
    pub from_lsn: u64,
    /// One past the last intact record.
    pub end_lsn: u64,
    /// The torn tail dropped from the last segment, if there was one.
    pub torn_tail: Option<TornTail>,
}

impl RecoveryReport {
    /// Records to replay, all shards together.
    pub fn records_to_replay(&self) -> u64 {
        self.shards.iter().map(|s| s.end_lsn - s.from_lsn).sum()
    }

    /// Bytes dropped from torn tails, all shards together.
    pub fn dropped_bytes(&self) -> u64 {
        self.shards
            .iter()
            .filter_map(|s| s.torn_tail.as_ref())
            .map(|t| t.dropped_bytes)
            .sum()
    }
}

/// The recovered state: the snapshot's sections and, per shard, the log records after it.
#[derive(Debug)]
pub struct RecoveredState {
    /// The current snapshot, verified; `None` if none was ever committed.
    pub snapshot: Option<Snapshot>,
    /// One replay per shard, in shard order.
    pub shards: Vec<ShardReplay>,
}

/// One shard's log records to replay on top of the snapshot.
#[derive(Debug, Clone)]
pub struct ShardReplay {
    /// The shard.
    pub shard: u32,
    /// First record to replay.
    pub from_lsn: u64,
    /// One past the last record.
    pub end_lsn: u64,
    segments: Vec<PathBuf>,
    limits: RecordLimits,
}

impl ShardReplay {
    /// The records in order with their sequence numbers. They were verified by
    /// [`Recovery::open`]; an error here means the files changed since (or an I/O error).
    pub fn records(&self) -> ReplayIter {
        ReplayIter {
            shard: self.shard,
            segments: self.segments.clone(),
            next_segment: 0,
            buf: Vec::new(),
            pos: 0,
            path: PathBuf::new(),
            next_lsn: self.from_lsn,
            end_lsn: self.end_lsn,
            limits: self.limits,
        }
    }
}

impl ShardReplay {
    /// The records `from..to` of `shard`'s log in `dir` while the log is in use (for a
    /// snapshot that folds the log into itself): `to` must not exceed what
    /// [`ShardWal::flush`](super::ShardWal::flush) returned, so every record read is whole.
    ///
    /// # Errors
    /// I/O errors listing or reading segment headers; [`DurabilityError::WalGap`] if no segment
    /// holds `from`.
    pub fn range(
        dir: &Path,
        shard: u32,
        limits: RecordLimits,
        from: u64,
        to: u64,
    ) -> Result<ShardReplay, DurabilityError> {
        let listed = segment::list(dir, shard)?;
        let mut segments = Vec::new();
        if from < to {
            let mut headers = Vec::with_capacity(listed.len());
            for (_, path) in &listed {
                headers.push(read_header(path, shard, limits.dim)?);
            }
            let first = (0..listed.len())
                .find(|&i| i + 1 == listed.len() || headers[i + 1].first_lsn > from)
                .ok_or(DurabilityError::WalGap {
                    shard,
                    expected: from,
                    found: u64::MAX,
                })?;
            if headers[first].first_lsn > from {
                return Err(DurabilityError::WalGap {
                    shard,
                    expected: from,
                    found: headers[first].first_lsn,
                });
            }
            segments = listed[first..]
                .iter()
                .zip(&headers[first..])
                .take_while(|(_, h)| h.first_lsn < to)
                .map(|((_, p), _)| p.clone())
                .collect();
        }
        Ok(ShardReplay {
            shard,
            from_lsn: from,
            end_lsn: to,
            segments,
            limits,
        })
    }
}

/// Iterator over a shard's replayed records (see [`ShardReplay::records`]).
#[derive(Debug)]
pub struct ReplayIter {
    shard: u32,
    segments: Vec<PathBuf>,
    next_segment: usize,
    buf: Vec<u8>,
    pos: usize,
    path: PathBuf,
    next_lsn: u64,
    end_lsn: u64,
    limits: RecordLimits,
}

impl Iterator for ReplayIter {
    type Item = Result<(u64, Record), DurabilityError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.next_lsn < self.end_lsn {
            if self.pos >= self.buf.len() {
                let Some(path) = self.segments.get(self.next_segment) else {
                    self.end_lsn = self.next_lsn;
                    return Some(Err(DurabilityError::WalGap {
                        shard: self.shard,
                        expected: self.next_lsn,
                        found: u64::MAX,
                    }));
                };
                self.next_segment += 1;
                self.path = path.clone();
                match read_segment(path) {
                    Ok(b) => self.buf = b,
                    Err(e) => {
                        self.end_lsn = self.next_lsn;
                        return Some(Err(e));
                    }
                }
                self.pos = HEADER_LEN;
                continue;
            }
            let max_body = self.limits.max_encoded_len();
            let item = match frame::read(&self.buf[self.pos..], max_body) {
                Frame::Valid { lsn, body, len } => {
                    self.pos += len;
                    if lsn < self.next_lsn {
                        continue;
                    }
                    if lsn != self.next_lsn {
                        Err(DurabilityError::WalGap {
                            shard: self.shard,
                            expected: self.next_lsn,
                            found: lsn,
                        })
                    } else {
                        Record::decode(body, &self.limits).map(|r| (lsn, r))
                    }
                }
                _ => Err(DurabilityError::Corrupt {
                    path: self.path.clone(),
                    offset: self.pos as u64,
                    what: "the record changed after recovery checked it".into(),
                }),
            };
            match item {
                Ok(pair) => {
                    self.next_lsn += 1;
                    return Some(Ok(pair));
                }
                Err(e) => {
                    self.end_lsn = self.next_lsn;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// Opens a durable directory (see the module docs for the rules).
#[derive(Debug)]
pub struct Recovery;

impl Recovery {
    /// Recovers `dir` for `shards` shards of `dim`-dimensional records with default limits.
    /// Creates `dir` if it does not exist (an empty state).
    ///
    /// # Errors
    /// Every [`DurabilityError`] recovery can meet: see the module docs. On error nothing is
    /// returned to replay.
    pub fn open(
        dir: &Path,
        dim: u32,
        shards: u32,
    ) -> Result<(RecoveredState, RecoveryReport), DurabilityError> {
        Self::open_with(dir, RecordLimits::new(dim), shards)
    }

    /// As [`open`](Self::open), with explicit record limits (they must match the writers').
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(
        dir: &Path,
        limits: RecordLimits,
        shards: u32,
    ) -> Result<(RecoveredState, RecoveryReport), DurabilityError> {
        let start = Instant::now();
        if limits.dim == 0 || shards == 0 {
            return Err(DurabilityError::InvalidInput {
                what: "dimension and shard count must be at least 1".into(),
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| DurabilityError::from_io("create_dir", dir, e))?;
        let removed_temp_files = remove_temp_files(dir)?;
        let snapshot = snapshot::load_current(dir, limits.dim, shards)?;
        check_no_foreign_shards(dir, shards)?;

        let mut plans = Vec::with_capacity(shards as usize);
        for shard in 0..shards {
            let from = snapshot.as_ref().map_or(0, |s| s.info.covered[shard as usize]);
            plans.push(check_shard(dir, shard, &limits, from)?);
        }
        // Every shard is intact (up to its tail): only now change files.
        let mut report_shards = Vec::with_capacity(plans.len());
        let mut replays = Vec::with_capacity(plans.len());
        for (shard, plan) in (0..shards).zip(plans) {
            if let Some(tail) = &plan.tail {
                truncate(&tail.path, tail.offset)?;
            }
            report_shards.push(ShardRecovery {
                shard,
                segments: plan.segments.len(),
                from_lsn: plan.from,
                end_lsn: plan.end,
                torn_tail: plan.tail,
            });
            replays.push(ShardReplay {
                shard,
                from_lsn: plan.from,
                end_lsn: plan.end,
                segments: plan.segments,
                limits,
            });
        }
        if report_shards.iter().any(|s| s.torn_tail.is_some()) {
            sync_dir(dir)?;
        }
        let report = RecoveryReport {
            snapshot: snapshot.as_ref().map(|s| (s.info.id, s.info.file.clone())),
            shards: report_shards,
            removed_temp_files,
            elapsed: start.elapsed(),
        };
        Ok((
            RecoveredState {
                snapshot,
                shards: replays,
            },
            report,
        ))
    }
}

struct ShardPlan {
    from: u64,
    end: u64,
    segments: Vec<PathBuf>,
    tail: Option<TornTail>,
}

/// Checks the segments of `shard` holding records at or after `from`.
fn check_shard(
    dir: &Path,
    shard: u32,
    limits: &RecordLimits,
    from: u64,
) -> Result<ShardPlan, DurabilityError> {
    let listed = segment::list(dir, shard)?;
    if listed.is_empty() {
        if from > 0 {
            return Err(DurabilityError::WalGap {
                shard,
                expected: from,
                found: u64::MAX,
            });
        }
        return Ok(ShardPlan {
            from,
            end: from,
            segments: Vec::new(),
            tail: None,
        });
    }
    let mut headers = Vec::with_capacity(listed.len());
    for (_, path) in &listed {
        headers.push(read_header(path, shard, limits.dim)?);
    }
    // Skip segments whose records all lie below `from`: the next one starts at or before it.
    let first = (0..listed.len())
        .find(|&i| i + 1 == listed.len() || headers[i + 1].first_lsn > from)
        .unwrap_or(0);
    if headers[first].first_lsn > from {
        return Err(DurabilityError::WalGap {
            shard,
            expected: from,
            found: headers[first].first_lsn,
        });
    }
    let mut expected = headers[first].first_lsn;
    let mut segments = Vec::new();
    let mut tail = None;
    for i in first..listed.len() {
        let path = &listed[i].1;
        if headers[i].first_lsn != expected {
            return Err(DurabilityError::WalGap {
                shard,
                expected,
                found: headers[i].first_lsn,
            });
        }
        let bytes = read_segment(path)?;
        let scan = scan_segment(path, &bytes, shard, limits, i + 1 == listed.len())?;
        expected = scan.next_lsn;
        tail = scan.tail;
        segments.push(path.clone());
    }
    if expected < from {
        return Err(DurabilityError::WalGap {
            shard,
            expected: from,
            found: expected,
        });
    }
    Ok(ShardPlan {
        from,
        end: expected,
        segments,
        tail,
    })
}

fn read_header(path: &Path, shard: u32, dim: u32) -> Result<SegmentHeader, DurabilityError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| DurabilityError::from_io("open", path, e))?;
    let mut buf = Vec::with_capacity(HEADER_LEN);
    (&mut f)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut buf)
        .map_err(|e| DurabilityError::from_io("read", path, e))?;
    SegmentHeader::decode(&buf, path, shard, dim)
}

fn truncate(path: &Path, len: u64) -> Result<(), DurabilityError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| DurabilityError::from_io("open", path, e))?;
    f.set_len(len)
        .map_err(|e| DurabilityError::from_io("truncate", path, e))?;
    f.sync_all()
        .map_err(|e| DurabilityError::from_io("fsync", path, e))
}

/// Refuses a directory holding logs of shards beyond `shards` (their records would be ignored).
fn check_no_foreign_shards(dir: &Path, shards: u32) -> Result<(), DurabilityError> {
    for entry in std::fs::read_dir(dir).map_err(|e| DurabilityError::from_io("read_dir", dir, e))? {
        let entry = entry.map_err(|e| DurabilityError::from_io("read_dir", dir, e))?;
        let name = entry.file_name();
        let shard = name
            .to_str()
            .and_then(|n| n.strip_prefix("wal-"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(s, _)| s.parse::<u32>().ok());
        if let Some(found) = shard.filter(|&s| s >= shards) {
            return Err(DurabilityError::ShardCountMismatch {
                path: entry.path(),
                expected: shards,
                found: found + 1,
            });
        }
    }
    Ok(())
}

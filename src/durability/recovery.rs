//! Opening a durable directory after a restart or a crash: the current snapshot, then each
//! shard's log from the position the snapshot covers.
//!
//! Rules:
//! - Leftover `*.tmp` files (an interrupted segment, snapshot or manifest write) are removed.
//! - The manifest's snapshot is loaded and every checksum verified; a missing file, a failed
//!   checksum, another version, dimension or shard count is an error.
//! - Each shard's segments from the covered position on are checked frame by frame: records
//!   must be intact and numbered without gaps across segments, and every segment must follow
//!   its predecessor (the segment chain: sequence number in the header = the name's, the
//!   predecessor's last checksum).
//! - Every frame carries the durable position of its shard when it was written. Damage in the
//!   shard's last segment that no intact frame after it proves fsynced is the unsynced tail a
//!   power loss leaves in any state (pages lost, torn or reordered): the segment is cut there
//!   and the drop reported (bytes, intact records among them, shard). Damage an intact frame
//!   proves fsynced, damage in a sealed segment and a broken chain are errors naming shard,
//!   segment and offset — unless the caller chose [`RecoveryMode::PointInTime`].
//! - Nothing is replayed until every shard has been checked, so a refused recovery never yields
//!   a half-loaded state.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::DurabilityError;
use super::chain_head::ChainHead;
use super::frame::{self, Frame};
use super::fsutil::{remove_temp_files, sync_dir};
use super::record::{Record, RecordLimits};
use super::scan::{TornTail, damage_error, read_segment, scan_segment};
use super::segment::{self, HEADER_LEN, SegmentHeader};
use super::snapshot::{self, Snapshot};
use super::storage::OsStorage;

/// How recovery treats damage, named after RocksDB's WAL recovery modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// The default (RocksDB's `kTolerateCorruptedTailRecords`, PostgreSQL's end of WAL): an
    /// unsynced tail is dropped and reported; damage to records known fsynced, in a sealed
    /// segment or in the segment chain is an error. Opens every state a power loss can leave and
    /// loses only records that were never synced.
    #[default]
    Strict,
    /// `kAbsoluteConsistency`: any damage is an error, an unsynced tail too (for checking a
    /// backup that was taken cleanly).
    Absolute,
    /// `kPointInTimeRecovery`: each shard's log stops at its first damage or chain break, of any
    /// kind; the damaged segment is cut there (its dropped bytes kept as
    /// `<segment>.left-out`) and later segments are renamed `<segment>.left-out`. The report
    /// says what was left out. The snapshot's position is never given up: damage below it is
    /// still an error.
    PointInTime,
}

/// How to open a durable directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecoveryOptions {
    /// What to do with damage.
    pub mode: RecoveryMode,
    /// Change nothing on disk (no temporary file removed, no tail cut, nothing moved aside):
    /// for a backup on read-only media. The report says what a writable open would drop; the
    /// replay yields the same records. A log opened so cannot be appended to.
    pub read_only: bool,
}

/// What recovery found and did, for the caller to log or expose.
#[derive(Debug, Clone)]
pub struct RecoveryReport {
    /// The options it ran with.
    pub options: RecoveryOptions,
    /// The snapshot loaded, if any: (id, file).
    pub snapshot: Option<(u64, String)>,
    /// Per shard.
    pub shards: Vec<ShardRecovery>,
    /// Temporary files removed, and files of snapshots never committed (`snap-<id>.…` above the
    /// manifest's id: a failed snapshot's leftovers).
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
    /// The tail dropped: an unsynced, torn tail of the last segment, or (point-in-time mode)
    /// where the log was cut.
    pub torn_tail: Option<TornTail>,
    /// Point-in-time mode: segments left out after the cut (renamed `<name>.left-out` unless
    /// read-only), with their sizes in bytes.
    pub left_out: Vec<(String, u64)>,
    /// Point-in-time mode: why the log stopped short of its files' end, beyond a damaged record
    /// (`torn_tail`): a break in the segment chain, a segment header that cannot be read, or a
    /// log head naming a missing segment or more fsynced records than the log holds.
    pub stopped: Option<String>,
}

impl ShardRecovery {
    /// Bytes dropped from this shard's log (the tail and the segments left out).
    pub fn dropped_bytes(&self) -> u64 {
        self.torn_tail.as_ref().map_or(0, |t| t.dropped_bytes)
            + self.left_out.iter().map(|(_, b)| b).sum::<u64>()
    }
}

impl RecoveryReport {
    /// Records to replay, all shards together.
    pub fn records_to_replay(&self) -> u64 {
        self.shards.iter().map(|s| s.end_lsn - s.from_lsn).sum()
    }

    /// Bytes dropped from torn tails (and, in point-in-time mode, left-out segments), all
    /// shards together.
    pub fn dropped_bytes(&self) -> u64 {
        self.shards.iter().map(ShardRecovery::dropped_bytes).sum()
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
                Frame::Valid { lsn, body, len, .. } => {
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
        Self::open_opts(dir, limits, shards, RecoveryOptions::default())
    }

    /// As [`open_with`](Self::open_with), in the given mode, and read-only if asked (then `dir`
    /// is not created either).
    ///
    /// # Errors
    /// As [`open`](Self::open); in [`RecoveryMode::Absolute`] an unsynced tail too.
    pub fn open_opts(
        dir: &Path,
        limits: RecordLimits,
        shards: u32,
        options: RecoveryOptions,
    ) -> Result<(RecoveredState, RecoveryReport), DurabilityError> {
        let start = Instant::now();
        if limits.dim == 0 || shards == 0 {
            return Err(DurabilityError::InvalidInput {
                what: "dimension and shard count must be at least 1".into(),
            });
        }
        let removed_temp_files = if options.read_only {
            Vec::new()
        } else {
            std::fs::create_dir_all(dir).map_err(|e| DurabilityError::from_io("create_dir", dir, e))?;
            let mut removed = remove_temp_files(dir)?;
            removed.extend(remove_uncommitted_snapshot_files(dir)?);
            removed
        };
        let snapshot = snapshot::load_current(dir, limits.dim, shards)?;
        check_no_foreign_shards(dir, shards)?;

        let mut plans = Vec::with_capacity(shards as usize);
        for shard in 0..shards {
            let from = snapshot.as_ref().map_or(0, |s| s.info.covered[shard as usize]);
            plans.push(check_shard(dir, shard, &limits, from, options.mode)?);
        }
        // Every shard is intact (up to its tail): only now change files.
        let mut report_shards = Vec::with_capacity(plans.len());
        let mut replays = Vec::with_capacity(plans.len());
        let mut changed = false;
        for (shard, plan) in (0..shards).zip(plans) {
            if !options.read_only {
                if let Some(tail) = &plan.tail {
                    if options.mode == RecoveryMode::PointInTime {
                        keep_left_out(&tail.path, tail.offset)?;
                    }
                    truncate(&tail.path, tail.offset)?;
                    changed = true;
                }
            }
            let left_out = plan
                .left_out
                .iter()
                .map(|p| {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let bytes = std::fs::symlink_metadata(p).map_or(0, |m| m.len());
                    (name, bytes)
                })
                .collect();
            if !options.read_only {
                for path in &plan.left_out {
                    move_aside(path)?;
                    changed = true;
                }
                if options.mode == RecoveryMode::PointInTime && (changed || plan.stopped.is_some()) {
                    if let Some(seq) = plan.last_seq {
                        ChainHead {
                            seq,
                            durable_end: plan.end,
                        }
                        .write(&OsStorage, dir, shard)?;
                    }
                }
            }
            report_shards.push(ShardRecovery {
                shard,
                segments: plan.segments.len(),
                from_lsn: plan.from,
                end_lsn: plan.end,
                torn_tail: plan.tail,
                left_out,
                stopped: plan.stopped,
            });
            replays.push(ShardReplay {
                shard,
                from_lsn: plan.from,
                end_lsn: plan.end,
                segments: plan.segments,
                limits,
            });
        }
        if changed {
            sync_dir(dir)?;
        }
        let report = RecoveryReport {
            options,
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
    /// Point-in-time mode: segments after the cut.
    left_out: Vec<PathBuf>,
    /// The newest segment kept (its sequence number).
    last_seq: Option<u64>,
    /// Point-in-time mode: why the log stopped before its end (a chain break, a head mismatch).
    stopped: Option<String>,
}

/// A break in the segment chain: an error, or in point-in-time mode where the log stops.
fn chain_error(shard: u32, path: &Path, what: String) -> DurabilityError {
    DurabilityError::SegmentChain {
        shard,
        path: path.to_path_buf(),
        what,
    }
}

/// Whether segment `path` (named `name_seq`, header `h`) fails to follow its predecessor
/// (`prev`: its sequence number and last checksum) when the log expects lsn `expected` next.
fn chain_break(
    shard: u32,
    name_seq: u64,
    path: &Path,
    h: &SegmentHeader,
    expected: u64,
    prev: Option<(u64, u32)>,
) -> Option<DurabilityError> {
    if h.seq != name_seq {
        Some(chain_error(
            shard,
            path,
            format!(
                "its header says segment {}, its name {name_seq} (renamed or swapped)",
                h.seq
            ),
        ))
    } else if h.first_lsn != expected {
        Some(DurabilityError::WalGap {
            shard,
            expected,
            found: h.first_lsn,
        })
    } else if let Some((seq, _)) = prev.filter(|(seq, _)| name_seq != seq + 1) {
        Some(chain_error(
            shard,
            path,
            format!("segment {} is missing before it", seq + 1),
        ))
    } else if let Some((_, crc)) = prev.filter(|(_, crc)| *crc != h.prev_crc) {
        Some(chain_error(
            shard,
            path,
            format!(
                "it does not follow its predecessor (whose last record has checksum {crc:#010x}, this header names {:#010x})",
                h.prev_crc
            ),
        ))
    } else {
        None
    }
}

/// The headers of `listed`, in order; with `salvage`, those before the first one that cannot be
/// read (the first must be readable).
fn read_headers(
    listed: &[(u64, PathBuf)],
    shard: u32,
    dim: u32,
    salvage: bool,
) -> Result<Vec<SegmentHeader>, DurabilityError> {
    let mut headers = Vec::with_capacity(listed.len());
    for (i, (_, path)) in listed.iter().enumerate() {
        match read_header(path, shard, dim) {
            Ok(h) => headers.push(h),
            // Point-in-time: a later segment with a bad header is where the log stops.
            Err(_) if salvage && i > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(headers)
}

/// Checks the segments of `shard` holding records at or after `from`.
fn check_shard(
    dir: &Path,
    shard: u32,
    limits: &RecordLimits,
    from: u64,
    mode: RecoveryMode,
) -> Result<ShardPlan, DurabilityError> {
    let salvage = mode == RecoveryMode::PointInTime;
    let listed = segment::list(dir, shard)?;
    if listed.is_empty() {
        if from > 0 {
            return Err(DurabilityError::WalGap {
                shard,
                expected: from,
                found: u64::MAX,
            });
        }
        let mut plan = ShardPlan {
            from,
            end: from,
            segments: Vec::new(),
            tail: None,
            left_out: Vec::new(),
            last_seq: None,
            stopped: None,
        };
        plan.stopped = check_head(dir, shard, &plan, mode)?;
        return Ok(plan);
    }
    let headers = read_headers(&listed, shard, limits.dim, salvage)?;
    let usable = headers.len();
    // Skip segments whose records all lie below `from`: the next one starts at or before it.
    let first = (0..usable)
        .find(|&i| i + 1 == usable || headers[i + 1].first_lsn > from)
        .unwrap_or(0);
    if headers[first].first_lsn > from {
        return Err(DurabilityError::WalGap {
            shard,
            expected: from,
            found: headers[first].first_lsn,
        });
    }
    let mut expected = headers[first].first_lsn;
    let mut prev: Option<(u64, u32)> = None;
    let mut segments = Vec::new();
    let mut tail = None;
    let mut stop = usable;
    let mut last_seq = None;
    let mut stopped = None;
    for i in first..usable {
        let (name_seq, path) = &listed[i];
        let h = headers[i];
        let broken = chain_break(shard, *name_seq, path, &h, expected, prev);
        if let Some(e) = broken {
            if salvage {
                stop = i;
                stopped = Some(e.to_string());
                break;
            }
            return Err(e);
        }
        let bytes = read_segment(path)?;
        let scan = scan_segment(path, &bytes, shard, limits)?;
        let last = i + 1 == listed.len();
        if let Some(damage) = &scan.damage {
            if salvage {
                tail = scan.tail(path);
                expected = scan.next_lsn;
                last_seq = Some(h.seq);
                segments.push(path.clone());
                stop = i + 1;
                break;
            }
            if !last || damage.proof().is_some() || mode == RecoveryMode::Absolute {
                return Err(damage_error(shard, path, damage, !last));
            }
            tail = scan.tail(path);
        }
        expected = scan.next_lsn;
        prev = Some((h.seq, scan.last_crc));
        last_seq = Some(h.seq);
        segments.push(path.clone());
    }
    if expected < from {
        return Err(DurabilityError::WalGap {
            shard,
            expected: from,
            found: expected,
        });
    }
    if stop < listed.len() && stopped.is_none() {
        stopped = Some(format!(
            "{}: the segment header cannot be read",
            listed[stop].1.display()
        ));
    }
    let mut plan = ShardPlan {
        from,
        end: expected,
        segments,
        tail,
        left_out: listed[stop..].iter().map(|(_, p)| p.clone()).collect(),
        last_seq,
        stopped,
    };
    if let Some(why) = check_head(dir, shard, &plan, mode)? {
        plan.stopped.get_or_insert(why);
    }
    Ok(plan)
}

/// Holds the log to its head file (`wal-<shard>.head`): the newest segment it names must be
/// there and the records it says were fsynced must be in the log. In point-in-time mode a
/// mismatch (or an unreadable head) is returned as the reason the log stopped short instead;
/// the head is rewritten after the cut.
fn check_head(
    dir: &Path,
    shard: u32,
    plan: &ShardPlan,
    mode: RecoveryMode,
) -> Result<Option<String>, DurabilityError> {
    if mode == RecoveryMode::PointInTime {
        return Ok(head_mismatch(dir, shard, plan).err().map(|e| e.to_string()));
    }
    head_mismatch(dir, shard, plan).map(|()| None)
}

fn head_mismatch(dir: &Path, shard: u32, plan: &ShardPlan) -> Result<(), DurabilityError> {
    let Some(head) = ChainHead::read(dir, shard)? else {
        return Ok(());
    };
    if plan.last_seq.is_none_or(|last| last < head.seq) {
        let path = dir.join(segment::segment_name(shard, head.seq));
        return Err(DurabilityError::SegmentChain {
            shard,
            path,
            what: format!(
                "the newest segment {} is missing (the log head names it; the log found ends at segment {})",
                head.seq,
                plan.last_seq.map_or("none".to_string(), |s| s.to_string())
            ),
        });
    }
    if plan.end < head.durable_end {
        let path = plan.segments.last().cloned().unwrap_or_else(|| dir.to_path_buf());
        return Err(DurabilityError::SegmentChain {
            shard,
            path,
            what: format!(
                "the log ends at record {}, but every record below {} was fsynced (the log head says so): records were cut off",
                plan.end, head.durable_end
            ),
        });
    }
    Ok(())
}

/// A free name `<path>.left-out` (or `.left-out.<n>`) for bytes point-in-time recovery leaves out.
fn left_out_name(path: &Path) -> PathBuf {
    let base = path.as_os_str().to_string_lossy().into_owned();
    let mut candidate = PathBuf::from(format!("{base}.left-out"));
    let mut n = 1;
    while std::fs::symlink_metadata(&candidate).is_ok() {
        candidate = PathBuf::from(format!("{base}.left-out.{n}"));
        n += 1;
    }
    candidate
}

/// Keeps the bytes of `path` from `offset` on in a `.left-out` file before the cut.
fn keep_left_out(path: &Path, offset: u64) -> Result<(), DurabilityError> {
    let bytes = read_segment(path)?;
    let Some(rest) = usize::try_from(offset).ok().and_then(|o| bytes.get(o..)) else {
        return Ok(());
    };
    let target = left_out_name(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)
        .map_err(|e| DurabilityError::from_io("create", &target, e))?;
    f.write_all(rest)
        .map_err(|e| DurabilityError::from_io("write", &target, e))?;
    f.sync_all()
        .map_err(|e| DurabilityError::from_io("fsync", &target, e))
}

/// Renames a left-out segment out of the log (`<name>.left-out`).
fn move_aside(path: &Path) -> Result<(), DurabilityError> {
    let target = left_out_name(path);
    std::fs::rename(path, &target).map_err(|e| DurabilityError::from_io("rename", &target, e))
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

/// Removes the files of snapshots that were never committed: `snap-<id>.…` with an id above the
/// one the manifest names (a snapshot that failed after writing some of its files, such as the
/// engine's index files, or before its manifest). Nothing is removed without a readable
/// manifest: then no id is known committed.
fn remove_uncommitted_snapshot_files(dir: &Path) -> Result<Vec<String>, DurabilityError> {
    let Ok(Some(manifest)) = super::manifest::Manifest::read(dir) else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DurabilityError::from_io("read_dir", dir, e))? {
        let entry = entry.map_err(|e| DurabilityError::from_io("read_dir", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let id = name
            .strip_prefix("snap-")
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(id, _)| id.parse::<u64>().ok());
        if id.is_some_and(|id| id > manifest.snapshot_id) {
            std::fs::remove_file(entry.path())
                .map_err(|e| DurabilityError::from_io("remove", entry.path(), e))?;
            removed.push(name);
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
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

//! One shard's write-ahead log with group commit.
//!
//! Appenders encode their record into a shared pending buffer under a short lock. The first
//! appender that finds no write in progress becomes the *leader*: it takes the whole pending
//! buffer (its own record and every one queued behind it), numbers and checksums the frames,
//! and does one `write` and — with [`SyncPolicy::EveryBatch`] — one `fdatasync` for the group.
//! Appenders that arrive meanwhile queue the next group; when the leader finishes, it wakes them
//! and one of them leads the next group. So the number of fsyncs adapts to the load: one per
//! append when appends are rare, one per many when they are frequent.
//!
//! With [`SyncPolicy::EveryMs`] appenders only queue; a background thread leads a group every
//! `n` ms. Sequence numbers are assigned when a group is written, so a failed write leaves no gap.
//!
//! Failures: a write that fails (ENOSPC, EIO) is undone (the file is cut back to its length
//! before the write) and reported to that group's appenders, none of whom was acknowledged; the
//! log stays usable. If the undo or an fsync fails, the file's state is unknown and the log stops
//! ([`DurabilityError::WalBroken`]); recovery then keeps exactly what is intact on disk.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::DurabilityError;
use super::chain_head::ChainHead;
use super::frame;
use super::fsutil::{check_writable_in, sync_dir_in};
use super::policy::{Durable, SyncPolicy, WalOptions, WriteFault};
use super::record::Record;
use super::scan::{read_segment, scan_segment};
use super::segment::{self, HEADER_LEN, SegmentHeader};
use super::snapshot::SnapshotInfo;
use super::storage::StorageFile;

/// Where an enqueued record waits: see [`ShardWal::enqueue`] and [`ShardWal::wait`].
#[derive(Debug)]
#[must_use = "a ticket must be passed to ShardWal::wait"]
pub struct Ticket(TicketKind);

#[derive(Debug, Clone, Copy)]
enum TicketKind {
    /// In group `batch`, at `index` within it.
    Group { batch: u64, index: u64 },
    /// `EveryMs`: flushed in the background within this period.
    Pending { within: Duration },
}

/// Counters of a shard's log, for benchmarks and metrics.
#[derive(Debug, Clone)]
pub struct WalStats {
    /// Records written.
    pub records: u64,
    /// Groups written (one `write` each).
    pub batches: u64,
    /// fdatasync calls.
    pub syncs: u64,
    /// Frame bytes written (headers of segments excluded).
    pub bytes: u64,
    /// Segments started by rotation.
    pub rotations: u64,
    /// fdatasync latency in microseconds.
    pub sync_micros: Histogram<u64>,
}

/// Why a group failed, kept so every appender of the group can get its own error value.
#[derive(Debug, Clone)]
struct Failure {
    full: bool,
    path: PathBuf,
    message: String,
}

impl Failure {
    fn from_error(e: &DurabilityError) -> Self {
        let path = match e {
            DurabilityError::StorageFull { path }
            | DurabilityError::Io { path, .. }
            | DurabilityError::ReadOnly { path, .. } => path.clone(),
            _ => PathBuf::new(),
        };
        Failure {
            full: matches!(e, DurabilityError::StorageFull { .. }),
            path,
            message: e.to_string(),
        }
    }

    fn to_error(&self) -> DurabilityError {
        if self.full {
            DurabilityError::StorageFull {
                path: self.path.clone(),
            }
        } else {
            DurabilityError::Io {
                op: "write",
                path: self.path.clone(),
                source: std::io::Error::other(self.message.clone()),
            }
        }
    }
}

/// The result of one group, kept until all its appenders have read it.
struct Outcome {
    batch: u64,
    /// First lsn of the group, or why it failed.
    result: Result<u64, Failure>,
    waiters: usize,
}

/// What appenders share, under one mutex.
struct State {
    pending: Vec<u8>,
    pending_records: u64,
    /// Appenders of the open (pending) group waiting for its outcome.
    pending_waiters: usize,
    /// Id of the group now accumulating in `pending`.
    open_batch: u64,
    /// Groups below this id are finished.
    done_batch: u64,
    outcomes: VecDeque<Outcome>,
    writing: bool,
    next_lsn: u64,
    /// Every record below this lsn is fsynced: the durable position stamped on new frames.
    synced_lsn: u64,
    /// Whether everything written is also synced (for `flush`).
    synced: bool,
    /// The log stopped (an fsync or an undo failed).
    broken: Option<String>,
    /// `EveryMs`: the last background group failed and was kept; appends are refused until a
    /// retry succeeds.
    stalled: Option<Failure>,
    closed: bool,
}

/// The active segment: only the leader touches it.
struct Active {
    file: Box<dyn StorageFile>,
    path: PathBuf,
    seq: u64,
    len: u64,
    /// The checksum of the last frame written (0: none): the next segment's header names it.
    last_crc: u32,
}

struct Inner {
    dir: PathBuf,
    shard: u32,
    options: WalOptions,
    state: Mutex<State>,
    /// Signalled when a group finishes (or the pending buffer drains).
    done: Condvar,
    /// Wakes the `EveryMs` flusher early (buffer over its limit, or closing).
    wake_flusher: Condvar,
    active: Mutex<Active>,
    stats: Mutex<WalStats>,
}

/// One shard's write-ahead log. Cheap to share: `append` takes `&self` from many threads.
pub struct ShardWal {
    inner: Arc<Inner>,
    flusher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ShardWal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardWal")
            .field("dir", &self.inner.dir)
            .field("shard", &self.inner.shard)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain data behind (no invariant spans a panic
    // point that a later user could observe half-done), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl ShardWal {
    /// Opens (or starts) the log of `shard` in `dir` for appending.
    ///
    /// The last segment must end cleanly: after a crash, run
    /// [`Recovery::open`](super::Recovery::open) first, which truncates a torn tail and reports it.
    ///
    /// # Errors
    /// [`ReadOnly`](DurabilityError::ReadOnly) if `dir` cannot be written;
    /// [`UnrecoveredTail`](DurabilityError::UnrecoveredTail) if the last segment ends in a torn
    /// record; [`DimensionMismatch`](DurabilityError::DimensionMismatch),
    /// [`UnsupportedVersion`](DurabilityError::UnsupportedVersion) or
    /// [`Corrupt`](DurabilityError::Corrupt) if the last segment is another shape or damaged;
    /// [`InvalidInput`](DurabilityError::InvalidInput) for a zero dimension or tiny segments.
    pub fn open(dir: &Path, shard: u32, options: WalOptions) -> Result<ShardWal, DurabilityError> {
        if options.limits.dim == 0 {
            return Err(DurabilityError::InvalidInput {
                what: "dimension must be at least 1".into(),
            });
        }
        if options.segment_bytes < 4096 {
            return Err(DurabilityError::InvalidInput {
                what: format!(
                    "segment size {} is below the minimum of 4096 bytes",
                    options.segment_bytes
                ),
            });
        }
        if let SyncPolicy::EveryMs(0) = options.policy {
            return Err(DurabilityError::InvalidInput {
                what: "EveryMs needs at least 1 ms".into(),
            });
        }
        let storage = Arc::clone(&options.storage);
        check_writable_in(&*storage, dir)?;
        let (active, next_lsn) = open_active(&*storage, dir, shard, &options)?;
        // The head names the newest segment and what is fsynced (everything, after the sync above).
        ChainHead {
            seq: active.seq,
            durable_end: next_lsn,
        }
        .write(&*storage, dir, shard)?;
        let stats = WalStats {
            records: 0,
            batches: 0,
            syncs: 0,
            bytes: 0,
            rotations: 0,
            sync_micros: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .map_err(|e| DurabilityError::InvalidInput { what: e.to_string() })?,
        };
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            shard,
            state: Mutex::new(State {
                pending: Vec::new(),
                pending_records: 0,
                pending_waiters: 0,
                open_batch: 0,
                done_batch: 0,
                outcomes: VecDeque::new(),
                writing: false,
                next_lsn,
                synced_lsn: next_lsn,
                synced: true,
                broken: None,
                stalled: None,
                closed: false,
            }),
            done: Condvar::new(),
            wake_flusher: Condvar::new(),
            active: Mutex::new(active),
            stats: Mutex::new(stats),
            options,
        });
        let flusher = match inner.options.policy {
            SyncPolicy::EveryMs(ms) => {
                let inner = Arc::clone(&inner);
                Some(
                    std::thread::Builder::new()
                        .name(format!("locus-wal-{shard}"))
                        .spawn(move || inner.flusher_loop(Duration::from_millis(ms)))
                        .map_err(|e| DurabilityError::Io {
                            op: "spawn flusher",
                            path: dir.to_path_buf(),
                            source: e,
                        })?,
                )
            }
            _ => None,
        };
        Ok(ShardWal { inner, flusher })
    }

    /// The shard this log belongs to.
    pub fn shard(&self) -> u32 {
        self.inner.shard
    }

    /// The options it was opened with.
    pub fn options(&self) -> &WalOptions {
        &self.inner.options
    }

    /// Appends one record and returns the guarantee it has (see [`Durable`]).
    ///
    /// # Errors
    /// [`InvalidRecord`](DurabilityError::InvalidRecord) if the record breaks the log's limits
    /// (nothing written); [`StorageFull`](DurabilityError::StorageFull) or
    /// [`Io`](DurabilityError::Io) if the group holding it could not be written (it is not in
    /// the log; retry later); [`WalBroken`](DurabilityError::WalBroken) after an fsync failure;
    /// [`Closed`](DurabilityError::Closed) after [`close`](Self::close).
    pub fn append(&self, record: &Record) -> Result<Durable, DurabilityError> {
        let ticket = self.enqueue(record)?;
        self.wait(ticket)
    }

    /// The first half of [`append`](Self::append): encodes `record` and adds it to the group
    /// being formed, without writing or syncing (with [`SyncPolicy::EveryMs`] it may wait while
    /// the buffer is over [`WalOptions::max_pending_bytes`]). Call it inside the critical section
    /// that orders records; call [`wait`](Self::wait) with the ticket *outside* it, so that
    /// appenders behind it join the same group instead of queueing behind a write and fsync.
    ///
    /// Every group ticket must be passed to [`wait`](Self::wait) once (its group's outcome is
    /// kept until all its tickets have read it).
    ///
    /// # Errors
    /// As [`append`](Self::append), for what can be known before the write.
    pub fn enqueue(&self, record: &Record) -> Result<Ticket, DurabilityError> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            scratch.clear();
            frame::push_unsealed(record, &self.inner.options.limits, &mut scratch)?;
            self.inner.enqueue_frame(&scratch)
        })
    }

    /// The second half of [`append`](Self::append): waits until the group holding the record
    /// of `ticket` is written (and fsynced with [`SyncPolicy::EveryBatch`]), writing it itself
    /// when no write is in progress, and returns the record's guarantee.
    ///
    /// # Errors
    /// As [`append`](Self::append): the record is not in the log if this fails.
    pub fn wait(&self, ticket: Ticket) -> Result<Durable, DurabilityError> {
        self.inner.wait(ticket)
    }

    /// The sequence number the next record written will get (records enqueued and not yet
    /// written come first). Not a durability point: see [`flush`](Self::flush).
    pub fn next_lsn(&self) -> u64 {
        let st = lock(&self.inner.state);
        st.next_lsn + st.pending_records
    }

    /// Writes and fsyncs everything appended so far and returns the sequence number the next
    /// record will get: a snapshot of the state built from every record below it covers them.
    ///
    /// # Errors
    /// As [`append`](Self::append) for the write and sync.
    pub fn flush(&self) -> Result<u64, DurabilityError> {
        self.inner.flush()
    }

    /// Deletes the sealed segments whose records all lie below what `snapshot` covers for this
    /// shard. The active segment is never deleted.
    ///
    /// # Errors
    /// [`InvalidInput`](DurabilityError::InvalidInput) if the snapshot covers no such shard or
    /// covers records this log has not yet synced; I/O errors from reading headers or removing files.
    pub fn truncate_before(&self, snapshot: &SnapshotInfo) -> Result<usize, DurabilityError> {
        let inner = &self.inner;
        let Some(&covered) = snapshot.covered.get(inner.shard as usize) else {
            return Err(DurabilityError::InvalidInput {
                what: format!(
                    "the snapshot covers {} shards, not shard {}",
                    snapshot.covered.len(),
                    inner.shard
                ),
            });
        };
        let next = lock(&inner.state).next_lsn;
        if covered > next {
            return Err(DurabilityError::InvalidInput {
                what: format!("the snapshot covers records up to {covered}, the log has only {next}"),
            });
        }
        let active_seq = lock(&inner.active).seq;
        let segments = segment::list(&inner.dir, inner.shard)?;
        let mut firsts = Vec::with_capacity(segments.len());
        for (seq, path) in &segments {
            let mut header = [0u8; HEADER_LEN];
            let mut f = std::fs::File::open(path).map_err(|e| DurabilityError::from_io("open", path, e))?;
            std::io::Read::read_exact(&mut f, &mut header)
                .map_err(|e| DurabilityError::from_io("read", path, e))?;
            let h = SegmentHeader::decode(&header, path, inner.shard, inner.options.limits.dim)?;
            firsts.push((*seq, h.first_lsn, path));
        }
        let mut removed = 0;
        for pair in firsts.windows(2) {
            let (seq, _, path) = pair[0];
            let (_, next_first, _) = pair[1];
            if seq < active_seq && next_first <= covered {
                inner
                    .options
                    .storage
                    .remove_file(path)
                    .map_err(|e| DurabilityError::from_io("remove", path, e))?;
                removed += 1;
            } else {
                break;
            }
        }
        if removed > 0 {
            sync_dir_in(&*inner.options.storage, &inner.dir)?;
        }
        Ok(removed)
    }

    /// A copy of the log's counters.
    pub fn stats(&self) -> WalStats {
        lock(&self.inner.stats).clone()
    }

    /// Flushes what is pending (with [`SyncPolicy::EveryMs`]), stops the background flusher and
    /// refuses further appends.
    ///
    /// # Errors
    /// The final flush's error, if it fails.
    pub fn close(mut self) -> Result<(), DurabilityError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), DurabilityError> {
        // Refuse new appends first, so nothing can slip in after the final flush.
        lock(&self.inner.state).closed = true;
        let result = self.inner.flush();
        self.inner.wake_flusher.notify_all();
        self.inner.done.notify_all();
        if let Some(handle) = self.flusher.take() {
            // The flusher only returns; a panic in it has nothing for us to clean up.
            let _ = handle.join();
        }
        result.map(|_| ())
    }
}

impl Drop for ShardWal {
    fn drop(&mut self) {
        if self.flusher.is_some() || !lock(&self.inner.state).closed {
            // Best effort: a drop cannot report an error; `close` does.
            let _ = self.shutdown();
        }
    }
}

impl Inner {
    fn refuse(&self, st: &State) -> Option<DurabilityError> {
        if st.closed {
            return Some(DurabilityError::Closed);
        }
        if let Some(reason) = &st.broken {
            return Some(DurabilityError::WalBroken {
                shard: self.shard,
                reason: reason.clone(),
            });
        }
        st.stalled.as_ref().map(Failure::to_error)
    }

    /// Adds a frame to the pending group (or, with `EveryMs`, to the background flush's buffer)
    /// and says where it is. Never writes or syncs, except that with `EveryMs` it waits (and may
    /// write a group itself) while the buffer is over `max_pending_bytes`.
    fn enqueue_frame(&self, frame: &[u8]) -> Result<Ticket, DurabilityError> {
        let mut st = lock(&self.state);
        if let Some(e) = self.refuse(&st) {
            return Err(e);
        }
        if let SyncPolicy::EveryMs(ms) = self.options.policy {
            while st.pending.len() + frame.len() > self.options.max_pending_bytes && !st.pending.is_empty() {
                if st.writing {
                    self.wake_flusher.notify_one();
                    st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
                } else {
                    st = self.lead(st, true);
                }
                if let Some(e) = self.refuse(&st) {
                    return Err(e);
                }
            }
            st.pending.extend_from_slice(frame);
            st.pending_records += 1;
            return Ok(Ticket(TicketKind::Pending {
                within: Duration::from_millis(ms),
            }));
        }
        let batch = st.open_batch;
        let index = st.pending_records;
        st.pending.extend_from_slice(frame);
        st.pending_records += 1;
        st.pending_waiters += 1;
        Ok(Ticket(TicketKind::Group { batch, index }))
    }

    /// Waits until the group of `ticket` is written (and synced with `EveryBatch`), leading it
    /// if no write is in progress.
    fn wait(&self, ticket: Ticket) -> Result<Durable, DurabilityError> {
        let (batch, index) = match ticket.0 {
            TicketKind::Pending { within } => return Ok(Durable::Pending { within }),
            TicketKind::Group { batch, index } => (batch, index),
        };
        let sync = self.options.policy == SyncPolicy::EveryBatch;
        let mut st = lock(&self.state);
        loop {
            if st.done_batch > batch {
                let pos = st.outcomes.iter().position(|o| o.batch == batch);
                let Some(pos) = pos else {
                    // Unreachable by construction: an outcome stays until its last waiter read it.
                    return Err(DurabilityError::WalBroken {
                        shard: self.shard,
                        reason: "lost a group's outcome".into(),
                    });
                };
                let outcome = &mut st.outcomes[pos];
                let result = outcome.result.clone();
                outcome.waiters -= 1;
                if outcome.waiters == 0 {
                    st.outcomes.remove(pos);
                }
                return match result {
                    Ok(first) if sync => Ok(Durable::Synced { lsn: first + index }),
                    Ok(first) => Ok(Durable::Written { lsn: first + index }),
                    Err(f) => Err(f.to_error()),
                };
            }
            if !st.writing && st.open_batch == batch {
                st = self.lead(st, sync);
            } else {
                st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        }
    }

    /// Takes the pending group, writes it (and syncs it if `sync`), records the outcome, and
    /// wakes the waiters. Called with `writing == false` and a non-empty or empty pending buffer.
    fn lead<'a>(&'a self, mut st: MutexGuard<'a, State>, sync: bool) -> MutexGuard<'a, State> {
        let batch = st.open_batch;
        st.open_batch += 1;
        let mut buf = std::mem::take(&mut st.pending);
        let count = std::mem::take(&mut st.pending_records);
        let waiters = std::mem::take(&mut st.pending_waiters);
        let first = st.next_lsn;
        let durable = st.synced_lsn;
        st.writing = true;
        drop(st);

        let result = if count == 0 {
            Ok(())
        } else {
            frame::seal(&mut buf, first, durable);
            self.write_group(&buf, first, sync)
        };

        let mut st = lock(&self.state);
        st.writing = false;
        st.done_batch = batch + 1;
        let outcome = match result {
            Ok(()) => {
                st.next_lsn = first + count;
                if sync {
                    st.synced_lsn = st.next_lsn;
                }
                st.synced = sync || (count == 0 && st.synced);
                st.stalled = None;
                Ok(first)
            }
            Err((e, broken)) => {
                let failure = Failure::from_error(&e);
                if broken {
                    st.broken.get_or_insert_with(|| e.to_string());
                }
                if waiters == 0 && !broken {
                    // EveryMs: nobody waits for this group; keep it and retry on the next tick.
                    buf.extend_from_slice(&st.pending);
                    st.pending = buf;
                    st.pending_records += count;
                    st.stalled = Some(failure.clone());
                }
                Err(failure)
            }
        };
        if waiters > 0 {
            st.outcomes.push_back(Outcome {
                batch,
                result: outcome,
                waiters,
            });
        }
        self.done.notify_all();
        st
    }

    /// Writes a sealed group to the active segment, rotating first if it is full. On error, also
    /// says whether the file's state is unknown (the log must stop).
    fn write_group(&self, buf: &[u8], first_lsn: u64, sync: bool) -> Result<(), (DurabilityError, bool)> {
        let mut active = lock(&self.active);
        if active.len > HEADER_LEN as u64 && active.len + buf.len() as u64 > self.options.segment_bytes {
            self.rotate(&mut active, first_lsn).map_err(|e| (e, false))?;
        }
        let fault = match &self.options.faults {
            Some(f) => f.before_write(buf.len()),
            None => WriteFault::Proceed,
        };
        let written = match fault {
            WriteFault::Proceed => active.file.write_all(buf),
            WriteFault::Partial { written, error } => {
                let n = written.min(buf.len());
                active.file.write_all(&buf[..n]).and(Err(error))
            }
        };
        if let Err(e) = written {
            let err = DurabilityError::from_io("write", &active.path, e);
            // Cut the file back so that no part of an unacknowledged group stays in the log.
            let keep = active.len;
            let undone = active.file.set_len(keep).and_then(|()| active.file.sync_data());
            return Err((err, undone.is_err()));
        }
        active.len += buf.len() as u64;
        if let Some(crc) = frame::last_crc(buf) {
            active.last_crc = crc;
        }
        {
            let mut stats = lock(&self.stats);
            stats.records += frame_count(buf);
            stats.batches += 1;
            stats.bytes += buf.len() as u64;
        }
        if sync {
            self.sync(&mut active).map_err(|e| (e, true))?;
        }
        Ok(())
    }

    fn sync(&self, active: &mut Active) -> Result<(), DurabilityError> {
        let start = Instant::now();
        let result = match &self.options.faults {
            Some(f) => f.before_sync(),
            None => Ok(()),
        }
        .and_then(|()| active.file.sync_data());
        result.map_err(|e| DurabilityError::from_io("fdatasync", &active.path, e))?;
        let mut stats = lock(&self.stats);
        stats.syncs += 1;
        let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.sync_micros.saturating_record(micros.max(1));
        Ok(())
    }

    /// Seals the active segment (fdatasync) and starts the next one at `first_lsn`.
    fn rotate(&self, active: &mut Active, first_lsn: u64) -> Result<(), DurabilityError> {
        self.sync(active)?;
        let header = SegmentHeader {
            shard: self.shard,
            dim: self.options.limits.dim,
            seq: active.seq + 1,
            first_lsn,
            prev_crc: active.last_crc,
        };
        let (file, path) = segment::create(&*self.options.storage, &self.dir, header)?;
        ChainHead {
            seq: header.seq,
            durable_end: first_lsn,
        }
        .write(&*self.options.storage, &self.dir, self.shard)?;
        *active = Active {
            file,
            path,
            seq: header.seq,
            len: HEADER_LEN as u64,
            last_crc: 0,
        };
        lock(&self.stats).rotations += 1;
        Ok(())
    }

    fn flush(&self) -> Result<u64, DurabilityError> {
        let mut st = lock(&self.state);
        // Wait for the groups that hold what was appended before this call — not for later ones,
        // which would starve a flush under a steady stream of appends.
        let target = st.open_batch + u64::from(!st.pending.is_empty());
        loop {
            if let Some(reason) = &st.broken {
                return Err(DurabilityError::WalBroken {
                    shard: self.shard,
                    reason: reason.clone(),
                });
            }
            if st.stalled.is_some() {
                // An `EveryMs` group failed and is kept pending: retry it once now.
                if st.writing {
                    st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
                    continue;
                }
                st = self.lead(st, true);
                if let Some(f) = &st.stalled {
                    return Err(f.to_error());
                }
                continue;
            }
            if st.done_batch >= target {
                break;
            }
            if !st.writing && st.open_batch < target {
                st = self.lead(st, true);
            } else {
                st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        }
        // A later group may be being written: wait for it, so that this sync never overlaps a
        // leader's write (two writers at once would both number their groups from the same lsn;
        // the power-loss simulator found this).
        while st.writing {
            st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        if let Some(reason) = &st.broken {
            return Err(DurabilityError::WalBroken {
                shard: self.shard,
                reason: reason.clone(),
            });
        }
        if !st.synced {
            // Everything is written; policy None left it unsynced.
            st.writing = true;
            drop(st);
            let result = self.sync(&mut lock(&self.active));
            st = lock(&self.state);
            st.writing = false;
            self.done.notify_all();
            if let Err(e) = result {
                st.broken.get_or_insert_with(|| e.to_string());
                return Err(e);
            }
            st.synced = true;
            st.synced_lsn = st.next_lsn;
        }
        Ok(st.next_lsn)
    }

    fn flusher_loop(&self, every: Duration) {
        let mut st = lock(&self.state);
        loop {
            if st.closed || st.broken.is_some() {
                return;
            }
            let (guard, _) = self
                .wake_flusher
                .wait_timeout(st, every)
                .unwrap_or_else(|p| p.into_inner());
            st = guard;
            if !st.writing && !st.pending.is_empty() {
                st = self.lead(st, true);
            }
        }
    }
}

/// Opens the last segment of `shard` for appending (checked, fsynced), or creates segment 0;
/// returns it with the next lsn.
fn open_active(
    storage: &dyn super::storage::Storage,
    dir: &Path,
    shard: u32,
    options: &WalOptions,
) -> Result<(Active, u64), DurabilityError> {
    let segments = segment::list(dir, shard)?;
    Ok(match segments.last() {
        None => {
            let header = SegmentHeader {
                shard,
                dim: options.limits.dim,
                seq: 0,
                first_lsn: 0,
                prev_crc: 0,
            };
            let (file, path) = segment::create(storage, dir, header)?;
            (
                Active {
                    file,
                    path,
                    seq: 0,
                    len: HEADER_LEN as u64,
                    last_crc: 0,
                },
                0,
            )
        }
        Some((seq, path)) => {
            let bytes = read_segment(path)?;
            let scan = scan_segment(path, &bytes, shard, &options.limits)?;
            if let Some(damage) = scan.damage {
                return Err(DurabilityError::UnrecoveredTail {
                    shard,
                    path: path.clone(),
                    offset: damage.offset,
                });
            }
            let mut file = storage
                .open_append(path)
                .map_err(|e| DurabilityError::from_io("open", path, e))?;
            // What the log holds may be in the page cache only (the previous process was
            // killed before syncing): sync it before new frames name it durable.
            file.sync_data()
                .map_err(|e| DurabilityError::from_io("fdatasync", path, e))?;
            (
                Active {
                    file,
                    path: path.clone(),
                    seq: *seq,
                    len: scan.end,
                    last_crc: scan.last_crc,
                },
                scan.next_lsn,
            )
        }
    })
}

/// The number of frames in a sealed buffer.
fn frame_count(buf: &[u8]) -> u64 {
    let mut pos = 0;
    let mut n = 0;
    while pos + frame::FRAME_HEADER <= buf.len() {
        let len = u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
        pos += frame::FRAME_HEADER + len;
        n += 1;
    }
    n
}

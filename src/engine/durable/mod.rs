//! The durable engine: each shard's [`ShardWal`] behind the engine's [`ShardLog`] seam, the
//! directory's identity file, recovery into a running engine ([`replay`]) and snapshots
//! ([`snapshot`]). See `docs/durability.md` ("Engine integration").
//!
//! Every logged change carries an engine-wide order number `seq`, taken in the same critical
//! section that puts the record in its shard's pending group: within a shard, log order is `seq`
//! order, and a change that depends on another (a link to an episode, a forget) always has the
//! larger `seq` because the episode it depends on was logged before it became visible. Replay
//! applies the records of all shards in `seq` order, so the graph is rebuilt as it was built.

pub(crate) mod fold;
pub(crate) mod index_files;
mod meta;
pub(crate) mod replay;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::config::{DurabilityOptions, EngineBuilder};
use super::error::EngineError;
use super::log::{Guarantee, LogRecord, ShardLog};
use super::types::{EpisodeId, LinkDirection};
use crate::durability::{
    DirLock, DurabilityError, EpisodeRecord, LinkKind, LinkRecord, Record, RecordLimits, RecoveredState,
    Recovery, ShardWal, Ticket, WalOptions, WalStats,
};

pub use fold::SnapshotReport;
pub use replay::{DroppedTail, RecoveryReport};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data are plain maps and options: usable after a panic elsewhere.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn durability_err(shard: Option<usize>) -> impl FnOnce(DurabilityError) -> EngineError {
    move |source| EngineError::Durability { shard, source }
}

/// One shard's log as the engine uses it.
#[derive(Debug)]
pub(crate) struct ShardDurable {
    shard: usize,
    /// Set once recovery has replayed the directory; until then appends log nothing (replay).
    wal: OnceLock<ShardWal>,
    /// Tickets of episodes appended and not yet settled, by id. Its lock also orders `seq`
    /// with the enqueue.
    tickets: Mutex<HashMap<u64, Ticket>>,
    seq: Arc<AtomicU64>,
    /// Records logged since the last snapshot (all shards share it).
    since_snapshot: Arc<AtomicU64>,
}

impl ShardDurable {
    pub(crate) fn wal(&self) -> Option<&ShardWal> {
        self.wal.get()
    }

    /// Enqueues a record built from the next `seq` (under the tickets lock, so `seq` order is
    /// log order) and returns its ticket.
    fn enqueue(
        &self,
        make: impl FnOnce(u64) -> Record,
        id: Option<u64>,
    ) -> Result<Option<Ticket>, EngineError> {
        let Some(wal) = self.wal.get() else {
            return Ok(None);
        };
        let mut tickets = lock(&self.tickets);
        let seq = self.seq.fetch_add(1, Ordering::AcqRel);
        let ticket = wal
            .enqueue(&make(seq))
            .map_err(durability_err(Some(self.shard)))?;
        self.since_snapshot.fetch_add(1, Ordering::Relaxed);
        match id {
            Some(id) => {
                tickets.insert(id, ticket);
                Ok(None)
            }
            None => Ok(Some(ticket)),
        }
    }

    fn wait(&self, ticket: Option<Ticket>) -> Result<Guarantee, EngineError> {
        match (ticket, self.wal.get()) {
            (Some(t), Some(wal)) => wal
                .wait(t)
                .map(Guarantee::Logged)
                .map_err(durability_err(Some(self.shard))),
            _ => Ok(Guarantee::Memory),
        }
    }
}

/// The [`ShardLog`] of a durable engine's shard.
#[derive(Debug)]
pub(crate) struct DurableLog(pub(crate) Arc<ShardDurable>);

fn link_kind(d: LinkDirection) -> LinkKind {
    match d {
        LinkDirection::Both => LinkKind::Both,
        LinkDirection::Out => LinkKind::Out,
        LinkDirection::In => LinkKind::In,
    }
}

impl ShardLog for DurableLog {
    fn append(&self, r: &LogRecord<'_>) -> Result<(), EngineError> {
        self.0.enqueue(
            |seq| {
                Record::Episode(EpisodeRecord {
                    seq,
                    id: r.id.0,
                    space: r.space.to_string(),
                    stream: r.stream.map(str::to_string),
                    timestamp: r.timestamp,
                    embedding: r.embedding.to_vec(),
                    payload: r.payload.to_vec(),
                    links: r
                        .links
                        .iter()
                        .map(|l| LinkRecord {
                            target: l.target,
                            weight: l.weight,
                            direction: link_kind(l.direction),
                        })
                        .collect(),
                })
            },
            Some(r.id.0),
        )?;
        Ok(())
    }

    fn settle(&self, id: EpisodeId) -> Result<Guarantee, EngineError> {
        let ticket = lock(&self.0.tickets).remove(&id.0);
        self.0.wait(ticket)
    }
}

/// A durable engine's directory and logs.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) dir: PathBuf,
    pub(crate) dim: u32,
    pub(crate) limits: RecordLimits,
    pub(crate) options: DurabilityOptions,
    pub(crate) shards: Vec<Arc<ShardDurable>>,
    seq: Arc<AtomicU64>,
    since_snapshot: Arc<AtomicU64>,
    pub(crate) recovery: OnceLock<RecoveryReport>,
    /// Held by the one snapshot at work.
    pub(crate) snapshot_lock: Mutex<()>,
    snapshot_running: Arc<AtomicBool>,
    /// The background snapshot thread, if one was started.
    snapshot_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// When the last snapshot began (or the store opened).
    last_snapshot_at: Mutex<std::time::Instant>,
    /// The last background snapshot's outcome.
    pub(crate) last_snapshot: Mutex<Option<Result<SnapshotReport, String>>>,
    /// The directory's lock, held while the store lives (one engine per directory).
    _dir_lock: DirLock,
}

impl Store {
    /// Checks `dir`'s identity (writing it on first use) and recovers what it holds; nothing
    /// is replayed yet.
    pub(crate) fn prepare(
        dir: &Path,
        config: &EngineBuilder,
        shards: usize,
    ) -> Result<(Arc<Store>, RecoveredState, crate::durability::RecoveryReport), EngineError> {
        let err = durability_err(None);
        let dim = u32::try_from(config.dimension).map_err(|_| EngineError::InvalidConfig {
            field: "dimension",
            reason: "a durable engine's dimension must fit in 32 bits".into(),
        })?;
        let count = u32::try_from(shards).map_err(|_| EngineError::InvalidConfig {
            field: "shards",
            reason: "too many shards for a durable engine".into(),
        })?;
        std::fs::create_dir_all(dir).map_err(|e| err(DurabilityError::from_io("create_dir", dir, e)))?;
        let dir_lock = DirLock::acquire(dir).map_err(durability_err(None))?;
        meta::check_or_write(dir, dim, count).map_err(durability_err(None))?;
        let (state, report) = Recovery::open_opts(
            dir,
            limits(config, dim),
            count,
            crate::durability::RecoveryOptions {
                mode: config.recovery_mode,
                read_only: false,
            },
        )
        .map_err(durability_err(None))?;
        let seq = Arc::new(AtomicU64::new(0));
        let since = Arc::new(AtomicU64::new(0));
        let store = Store {
            dir: dir.to_path_buf(),
            dim,
            limits: limits(config, dim),
            options: config.durability.clone(),
            shards: (0..shards)
                .map(|shard| {
                    Arc::new(ShardDurable {
                        shard,
                        wal: OnceLock::new(),
                        tickets: Mutex::new(HashMap::new()),
                        seq: seq.clone(),
                        since_snapshot: since.clone(),
                    })
                })
                .collect(),
            seq,
            since_snapshot: since,
            recovery: OnceLock::new(),
            snapshot_lock: Mutex::new(()),
            snapshot_running: Arc::new(AtomicBool::new(false)),
            snapshot_thread: Mutex::new(None),
            last_snapshot_at: Mutex::new(std::time::Instant::now()),
            last_snapshot: Mutex::new(None),
            _dir_lock: dir_lock,
        };
        Ok((Arc::new(store), state, report))
    }

    /// The log seam of shard `shard`.
    pub(crate) fn log_for(&self, shard: usize) -> Box<dyn ShardLog> {
        Box::new(DurableLog(self.shards[shard].clone()))
    }

    /// Opens every shard's log for appending; from now on changes are logged. `next_seq` is one
    /// past the largest order number recovered.
    pub(crate) fn attach(&self, next_seq: u64) -> Result<(), EngineError> {
        self.seq.fetch_max(next_seq, Ordering::AcqRel);
        for sd in &self.shards {
            let mut opts = WalOptions::new(self.dim, self.options.policy);
            opts.segment_bytes = self.options.segment_bytes;
            opts.limits = self.limits;
            opts.faults = self.options.faults.clone();
            let wal =
                ShardWal::open(&self.dir, sd.shard as u32, opts).map_err(durability_err(Some(sd.shard)))?;
            let _ = sd.wal.set(wal);
        }
        Ok(())
    }

    /// Logs an explicit association (on `a`'s shard) or a forget (on `id`'s shard) and waits,
    /// outside every lock, for its guarantee.
    pub(crate) fn log_change(
        &self,
        shard: usize,
        make: impl FnOnce(u64) -> Record,
    ) -> Result<Guarantee, EngineError> {
        let sd = &self.shards[shard];
        let t = sd.enqueue(make, None)?;
        sd.wait(t)
    }

    /// Every shard's log counters (fsync latency histogram included).
    pub(crate) fn wal_stats(&self) -> Vec<WalStats> {
        self.shards
            .iter()
            .filter_map(|s| s.wal().map(ShardWal::stats))
            .collect()
    }

    /// Whether the policy asks for a background snapshot now and none is running; if so, the
    /// caller owns the running flag and must pass a job to
    /// [`run_background`](Self::run_background).
    pub(crate) fn claim_background(&self) -> bool {
        let since = self.since_snapshot.load(Ordering::Relaxed);
        let by_count = self.options.snapshot_every.is_some_and(|n| since >= n);
        let by_time = since > 0
            && self
                .options
                .snapshot_interval
                .is_some_and(|d| lock(&self.last_snapshot_at).elapsed() >= d);
        (by_count || by_time) && !self.snapshot_running.swap(true, Ordering::AcqRel)
    }

    /// Runs `job` (a snapshot) on the background snapshot thread after a successful
    /// [`claim_background`](Self::claim_background), keeping its outcome for
    /// `Engine::last_background_snapshot`.
    pub(crate) fn run_background(
        self: &Arc<Self>,
        job: impl FnOnce(&Store) -> Result<SnapshotReport, EngineError> + Send + 'static,
    ) {
        debug_assert!(self.snapshot_running(), "run_background without claim_background");
        let store = self.clone();
        let spawned = std::thread::Builder::new()
            .name("locus-snapshot".into())
            .spawn(move || {
                let out = job(&store).map_err(|e| e.to_string());
                *lock(&store.last_snapshot) = Some(out);
                store.snapshot_running.store(false, Ordering::Release);
            });
        match spawned {
            Ok(handle) => {
                // The previous thread has finished (`snapshot_running` was false): reap it.
                if let Some(old) = lock(&self.snapshot_thread).replace(handle) {
                    let _ = old.join();
                }
            }
            Err(_) => self.snapshot_running.store(false, Ordering::Release),
        }
    }

    /// Waits for the background snapshot thread, if one was started.
    pub(crate) fn join_snapshot(&self) {
        let handle = lock(&self.snapshot_thread).take();
        if let Some(h) = handle {
            // A panic in it has already been reported by the thread; nothing to clean up here.
            let _ = h.join();
        }
    }

    /// Starts the count and clock of the snapshot policy again (a snapshot begins).
    pub(crate) fn reset_since_snapshot(&self) -> u64 {
        *lock(&self.last_snapshot_at) = std::time::Instant::now();
        self.since_snapshot.swap(0, Ordering::AcqRel)
    }

    /// Whether a background snapshot is running.
    pub(crate) fn snapshot_running(&self) -> bool {
        self.snapshot_running.load(Ordering::Acquire)
    }

    /// Waits up to `timeout` for a running background snapshot to finish.
    pub(crate) fn wait_snapshot(&self, timeout: Duration) -> bool {
        let end = std::time::Instant::now() + timeout;
        while self.snapshot_running() {
            if std::time::Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }
}

/// The record limits of an engine: its dimension, and the larger of the log's defaults and its
/// admission limits on payload and links (recovery must use limits at least as large as the
/// writer's: raising the admission limits between runs is fine, lowering them below a logged
/// record makes recovery refuse it).
pub(crate) fn limits(config: &EngineBuilder, dim: u32) -> RecordLimits {
    let mut l = RecordLimits::new(dim);
    l.max_payload = l
        .max_payload
        .max(u32::try_from(config.admission.max_payload).unwrap_or(u32::MAX));
    l.max_links = l
        .max_links
        .max(u32::try_from(config.admission.max_links).unwrap_or(u32::MAX));
    l
}

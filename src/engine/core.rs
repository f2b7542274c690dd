//! The state every floor of the engine above the shards shares: the shards themselves, the
//! declared spaces and their live counts, the id counter, the streams' last episodes, the
//! submitter of the worker pool, the engine-wide recorders and the degradations. One `Inner`
//! per engine, behind an `Arc` held by the public `Engine` and by the worker handler. (A durable
//! engine's `Store` belongs to the public `Engine`: nothing here imports `durable/`.)
//!
//! Its fields are private: the floors above (admission, fan-out, outbox, handler, durable, the
//! public `Engine`) go through the methods here, so an invariant about a counter is kept in one
//! place.
//! Nothing under `shard/` imports this file: a shard gets its fixed settings when it is made
//! ([`ShardSettings`](super::shard::ShardSettings)) and returns the edges it produced for other
//! shards instead of calling back up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use super::config::{DEFAULT_SPACE, EngineBuilder};
use super::error::EngineError;
use super::metrics::OpRecorder;
use super::route::shard_of;
use super::shard::Shard;
use super::task::Task;

/// The one episode id never used: the association graph reserves `u64::MAX` (no node may have
/// it), so neither a given id nor a generated one may be it.
pub(crate) const RESERVED_ID: u64 = u64::MAX;
use crate::exec::{Priority, Submitter};
use crate::index::Kernels;
use crate::metrics::Counter;

/// A declared space and its live count (the quota's admission counter).
#[derive(Debug)]
pub(crate) struct SpaceInfo {
    name: String,
    quota: usize,
    live: AtomicUsize,
}

impl SpaceInfo {
    /// A space with nothing live yet.
    pub(crate) fn new(name: String, quota: usize) -> Self {
        Self {
            name,
            quota,
            live: AtomicUsize::new(0),
        }
    }

    /// Its name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The most live episodes it may hold.
    pub(crate) fn quota(&self) -> usize {
        self.quota
    }

    /// Live episodes (admitted and not forgotten or released).
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Takes room for one episode; `false` (nothing taken) at the quota.
    pub(crate) fn try_take(&self) -> bool {
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (v < self.quota).then_some(v + 1)
            })
            .is_ok()
    }

    /// Counts one episode restored by recovery (the quota was checked when it was first
    /// admitted).
    pub(crate) fn restored(&self) {
        self.live.fetch_add(1, Ordering::AcqRel);
    }

    /// Gives back the room of one episode (refused, lost or forgotten).
    pub(crate) fn release(&self) {
        let before = self.live.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "space {} released more than it took", self.name);
    }
}

/// Everything the public `Engine` and the workers share (see the module docs).
#[derive(Debug)]
pub(crate) struct Inner {
    config: EngineBuilder,
    kernels: Kernels,
    shards: Vec<Shard>,
    spaces: Vec<SpaceInfo>,
    space_ids: HashMap<String, u16>,
    /// Last episode per (space, stream).
    streams: Mutex<HashMap<(u16, String), u64>>,
    next_id: AtomicU64,
    submitter: OnceLock<Submitter<Task>>,
    recall: OpRecorder,
    complete: OpRecorder,
    partial: Counter,
    opened: Instant,
    /// Whether the index absorbs the append buffer (`Engine::set_absorption`).
    absorbing: AtomicBool,
    degradations: Mutex<Vec<String>>,
}

impl Inner {
    /// The shared state of an engine being opened (no submitter yet: see
    /// [`attach_submitter`](Self::attach_submitter)).
    pub(crate) fn new(config: EngineBuilder, shards: Vec<Shard>, spaces: Vec<SpaceInfo>) -> Self {
        assert!(!shards.is_empty(), "an engine has at least one shard");
        assert!(spaces.len() <= usize::from(u16::MAX), "space ids are u16");
        let space_ids = spaces
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i as u16))
            .collect();
        Self {
            kernels: *Kernels::detect(),
            shards,
            spaces,
            space_ids,
            streams: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            submitter: OnceLock::new(),
            recall: OpRecorder::default(),
            complete: OpRecorder::default(),
            partial: Counter::new(),
            opened: Instant::now(),
            absorbing: AtomicBool::new(true),
            degradations: Mutex::new(Vec::new()),
            config,
        }
    }

    /// The configuration the engine was opened with.
    pub(crate) fn config(&self) -> &EngineBuilder {
        &self.config
    }

    /// The embedding dimension.
    pub(crate) fn dim(&self) -> usize {
        self.config.dimension
    }

    /// The distance kernels in use.
    pub(crate) fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// Every shard, by index.
    pub(crate) fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// Shard `s`.
    pub(crate) fn shard(&self, s: usize) -> &Shard {
        &self.shards[s]
    }

    /// The shard episode `id` lives on.
    pub(crate) fn shard_of(&self, id: u64) -> usize {
        shard_of(id, self.shards.len())
    }

    /// Every declared space, by id (0 is the default space).
    pub(crate) fn spaces(&self) -> &[SpaceInfo] {
        &self.spaces
    }

    /// Space `id`.
    pub(crate) fn space(&self, id: u16) -> &SpaceInfo {
        &self.spaces[id as usize]
    }

    /// The id of the space named `name`.
    pub(crate) fn space_id(&self, name: &str) -> Option<u16> {
        self.space_ids.get(name).copied()
    }

    /// The id of the space named `name` (the default space for `None`).
    ///
    /// # Errors
    /// [`EngineError::UnknownSpace`].
    pub(crate) fn space_named(&self, name: Option<&str>) -> Result<u16, EngineError> {
        let name = name.unwrap_or(DEFAULT_SPACE);
        self.space_id(name)
            .ok_or_else(|| EngineError::UnknownSpace { space: name.into() })
    }

    /// Records `id` as the last episode of `stream` in `space`; returns the one before it.
    pub(crate) fn follow_stream(&self, space: u16, stream: String, id: u64) -> Option<u64> {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((space, stream), id)
    }

    /// Makes sure no later generated id is `id` or below (a given id was taken). Saturates at
    /// [`RESERVED_ID`]: the generator never wraps.
    pub(crate) fn id_taken(&self, id: u64) {
        // `saturating_add` stops at u64::MAX, which is RESERVED_ID: never past it, never 0.
        self.next_id.fetch_max(id.saturating_add(1), Ordering::AcqRel);
    }

    /// The next generated id (the caller checks that no given id took it), `None` once every
    /// id below [`RESERVED_ID`] was generated or passed: the generator never wraps to 0, and
    /// a `None` leaves it where it is.
    pub(crate) fn fresh_id(&self) -> Option<u64> {
        self.next_id
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < RESERVED_ID).then(|| n + 1)
            })
            .ok()
    }

    /// The worker pool's submitter, once the pool runs ([`EngineError::Closed`] before).
    pub(crate) fn submitter(&self) -> Result<&Submitter<Task>, EngineError> {
        self.submitter.get().ok_or(EngineError::Closed)
    }

    /// The submitter, if the pool runs.
    pub(crate) fn try_submitter(&self) -> Option<&Submitter<Task>> {
        self.submitter.get()
    }

    /// Sets the submitter (once, at open).
    pub(crate) fn attach_submitter(&self, sub: Submitter<Task>) {
        let fresh = self.submitter.set(sub).is_ok();
        assert!(fresh, "the submitter is attached once");
    }

    /// Recall latencies.
    pub(crate) fn recall_ops(&self) -> &OpRecorder {
        &self.recall
    }

    /// Completion latencies.
    pub(crate) fn complete_ops(&self) -> &OpRecorder {
        &self.complete
    }

    /// Recalls answered partially.
    pub(crate) fn partial_recalls(&self) -> &Counter {
        &self.partial
    }

    /// When the engine was opened.
    pub(crate) fn opened(&self) -> Instant {
        self.opened
    }

    /// Whether the index absorbs the append buffer.
    pub(crate) fn absorbing(&self) -> bool {
        self.absorbing.load(Ordering::Acquire)
    }

    /// Switches absorption (the caller schedules the buffers when it turns it on).
    pub(crate) fn set_absorbing(&self, on: bool) {
        self.absorbing.store(on, Ordering::Release);
    }

    /// Reports a lost association (not for a source or target forgotten meanwhile, which is no
    /// loss).
    pub(crate) fn note_association_failure(&self, e: crate::spread::SpreadError) {
        if matches!(
            e,
            crate::spread::SpreadError::Forgotten { .. } | crate::spread::SpreadError::UnknownNode { .. }
        ) {
            return;
        }
        self.note_degradation(format!("associations lost: {e}"));
    }

    /// Queues an absorption task for (`shard`, `space`) unless as many as it may run
    /// ([`IndexParams::absorbers`](super::IndexParams::absorbers)) are queued or running.
    pub(crate) fn schedule_absorb(&self, shard: usize, space: u16) {
        let sh = &self.shards[shard];
        let sp = &sh.spaces[space as usize];
        if !self.absorbing() || !sp.try_add_absorber(sh.max_absorbers()) {
            return;
        }
        let Some(sub) = self.submitter.get() else {
            sp.absorber_done();
            return;
        };
        if sub
            .submit(sh.node, Priority::Low, Task::Absorb { shard, space })
            .is_err()
        {
            // Full or closing: the next observation of this space tries again.
            sp.absorber_done();
        }
    }

    /// Adds `what` to the degradations (once).
    pub(crate) fn note_degradation(&self, what: String) {
        let mut d = self.degradations.lock().unwrap_or_else(|p| p.into_inner());
        if !d.contains(&what) {
            d.push(what);
        }
    }

    /// Replaces the degradations (at open, with the plan's and the pool's).
    pub(crate) fn set_degradations(&self, all: Vec<String>) {
        *self.degradations.lock().unwrap_or_else(|p| p.into_inner()) = all;
    }

    /// The degradations so far.
    pub(crate) fn degradations(&self) -> Vec<String> {
        self.degradations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

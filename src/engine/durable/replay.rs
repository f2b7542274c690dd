//! Recovery into a running engine: the snapshot's records, then each shard's log after it, all
//! through the normal store path.
//!
//! 1. Every episode record is stored by a worker of its own shard (a normal `Observe` task,
//!    with its links and stream held back), so its row is first touched on the shard's node and
//!    its index and graph memory come from the shard's bound arenas, as at open. Shards replay
//!    in parallel; within a shard, in log order.
//! 2. Then links, stream associations, explicit associations and forgets are applied in the
//!    engine-wide `seq` order of their records, as `observe`, `associate` and `forget` applied
//!    them. A link whose target is not there (its record was in a torn tail) is counted in the
//!    report, never silently dropped.
//! 0. Before that, each shard's index segments saved with the snapshot (if any, and if they pass
//!    their checks: [`index_files`]) are loaded into the shard's node-bound regions, and the
//!    episodes whose nodes they hold are attached to them, slot by slot, from their snapshot
//!    records: not staged, not re-linked. Their saved `similar` associations are applied in
//!    step 2 right after each one's own record.
//! 3. The other recovered episodes sit in their shards' append buffers (recall scans them
//!    exactly) until the index absorbs them in the background.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::super::core::Inner;
use super::super::error::EngineError;
use super::super::requests;
use super::super::shard::Edge;
use super::super::shard::Prepared;
use super::super::task::Task;
use super::super::types::{EpisodeId, Link, LinkDirection};
use super::{Store, durability_err, fold, index_files};
use crate::durability::{LinkKind, Record, RecoveredState};
use crate::exec::{ExecError, Gather, Priority, Rejected, oneshot};

/// A torn record dropped from the end of a shard's log (the crash case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DroppedTail {
    /// The shard.
    pub shard: usize,
    /// The segment file.
    pub path: PathBuf,
    /// Where the dropped bytes began.
    pub offset: u64,
    /// How many bytes were dropped (none of them held an episode acknowledged under `every
    /// batch`).
    pub bytes: u64,
    /// Why the first dropped record was not intact.
    pub reason: String,
    /// The log sequence number of the first record dropped.
    pub from_lsn: u64,
    /// Intact records found among the dropped bytes (after the damaged one: unsynced, or left
    /// out by point-in-time recovery).
    pub intact_records: u64,
}

/// What recovery found and did when a durable engine opened
/// ([`Engine::recovery_report`](crate::engine::Engine::recovery_report)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveryReport {
    /// The snapshot file loaded, if any.
    pub snapshot: Option<String>,
    /// Records read from the snapshot.
    pub snapshot_records: u64,
    /// Records replayed from the logs after it.
    pub log_records: u64,
    /// Episodes restored (forgotten ones included: their ids stay taken).
    pub episodes: u64,
    /// Explicit associations re-applied.
    pub associations: u64,
    /// Forgets re-applied.
    pub forgets: u64,
    /// Links and associations that could not be re-applied (an endpoint missing or forgotten):
    /// each one was also refused or lost while the engine ran, or its target's record was in a
    /// dropped tail.
    pub links_not_restored: u64,
    /// Torn tails dropped, per shard (and, in point-in-time mode, where each log was cut).
    pub dropped: Vec<DroppedTail>,
    /// Point-in-time mode: segments left out after a cut, as `(shard, file, bytes)` (renamed
    /// `<file>.left-out`).
    pub left_out: Vec<(usize, String, u64)>,
    /// Point-in-time mode: why a shard's log stopped short, as `(shard, reason)`.
    pub stopped: Vec<(usize, String)>,
    /// Leftover temporary files removed.
    pub removed_temp_files: Vec<String>,
    /// Time spent checking the directory (checksums of every record to replay).
    pub check: Duration,
    /// Time spent storing the episodes on their shards and re-applying the rest (loading the
    /// saved index included).
    pub replay: Duration,
    /// Episodes attached to index nodes loaded from the snapshot (not re-inserted).
    pub episodes_loaded_indexed: u64,
    /// Episodes stored through the normal path, left for the index to absorb (re-inserted).
    pub episodes_reabsorbed: u64,
    /// Time spent loading and checking the snapshot's index files.
    pub index_load: Duration,
    /// Saved indexes that could not be used, and why: their episodes were re-absorbed instead.
    pub index_fallbacks: Vec<String>,
}

/// What phase 2 applies, in `seq` order.
enum Event {
    Episode {
        id: u64,
        space: u16,
        stream: Option<String>,
        links: Vec<Link>,
    },
    Associate {
        a: u64,
        b: u64,
        w: f32,
        both: bool,
    },
    Forget {
        id: u64,
    },
    /// The `similar` associations saved with a loaded node (applied right after its episode).
    Similar {
        id: u64,
        list: Box<[(u64, f32)]>,
    },
}

/// One shard's store tasks in flight: (episode id, its answer).
type Window = VecDeque<(u64, Gather<Result<EpisodeId, EngineError>>)>;

/// Most store tasks of recovery in flight per shard: bounds the memory recovery holds and keeps
/// the shard's queue below its admission limit. (The engine's workers steal only within their
/// node, so a store task always first-touches its rows on the shard's node; before that was so,
/// a window of 1024 let another node's workers steal them in the emulated 4-node machine.)
const WINDOW: usize = 128;

/// Replays `state` into the engine; returns the report and one past the largest `seq` found.
// tidy: long-fn — recovery in its phases, in order, sharing the report and the in-flight queues
pub(crate) fn recover(
    eng: &std::sync::Arc<Inner>,
    store: &Store,
    state: RecoveredState,
    checked: crate::durability::RecoveryReport,
) -> Result<(RecoveryReport, u64), EngineError> {
    let started = Instant::now();
    let mut report = RecoveryReport {
        snapshot: checked.snapshot.as_ref().map(|s| s.1.clone()),
        snapshot_records: 0,
        log_records: 0,
        episodes: 0,
        associations: 0,
        forgets: 0,
        links_not_restored: 0,
        dropped: checked
            .shards
            .iter()
            .filter_map(|s| {
                s.torn_tail.as_ref().map(|t| DroppedTail {
                    shard: s.shard as usize,
                    path: t.path.clone(),
                    offset: t.offset,
                    bytes: t.dropped_bytes,
                    reason: t.reason.clone(),
                    from_lsn: t.from_lsn,
                    intact_records: t.intact_records_dropped,
                })
            })
            .collect(),
        left_out: checked
            .shards
            .iter()
            .flat_map(|s| s.left_out.iter().map(|(f, b)| (s.shard as usize, f.clone(), *b)))
            .collect(),
        stopped: checked
            .shards
            .iter()
            .filter_map(|s| s.stopped.clone().map(|w| (s.shard as usize, w)))
            .collect(),
        removed_temp_files: checked.removed_temp_files.clone(),
        check: checked.elapsed,
        replay: Duration::ZERO,
        episodes_loaded_indexed: 0,
        episodes_reabsorbed: 0,
        index_load: Duration::ZERO,
        index_fallbacks: Vec::new(),
    };
    let limits = super::limits(eng.config(), store.dim);
    let mut events: Vec<(u64, Event)> = Vec::new();
    let mut inflight: Vec<Window> = (0..state.shards.len()).map(|_| VecDeque::new()).collect();
    let mut next_seq = 0u64;
    type Records = Box<dyn Iterator<Item = Result<Record, crate::durability::DurabilityError>>>;
    let mut sources: Vec<Records> = Vec::with_capacity(state.shards.len());
    // Per shard: episodes attached to loaded index nodes, with their saved `similar` lists.
    let mut attached: Vec<HashMap<u64, index_files::SimilarList>> =
        (0..state.shards.len()).map(|_| HashMap::new()).collect();
    for (s, replay) in state.shards.iter().enumerate() {
        let from_snapshot = match &state.snapshot {
            Some(snap) => fold::decode_section(snap.section(&fold::section_name(s)).unwrap_or(&[]), &limits)
                .map_err(durability_err(Some(s)))?,
            None => Vec::new(),
        };
        let index_started = Instant::now();
        let section = state
            .snapshot
            .as_ref()
            .and_then(|snap| snap.section(&index_files::section_name(s)));
        let (loaded, fallbacks) = index_files::load_shard(eng, &store.dir, section, s, &from_snapshot);
        report.index_fallbacks.extend(fallbacks);
        for mut l in loaded {
            index_files::install(eng, s, &mut l);
            for (slot, (&at, sim)) in l.records.iter().zip(l.similar).enumerate() {
                let Some(Record::Episode(e)) = from_snapshot.get(at) else {
                    continue;
                };
                eng.shard(s).attach_indexed(
                    l.space,
                    slot,
                    e.id,
                    e.timestamp,
                    e.payload.clone(),
                    sim.clone(),
                )?;
                attached[s].insert(e.id, sim);
            }
            eng.shard(s).restore_linked(l.space, l.records.len());
        }
        report.index_load += index_started.elapsed();
        report.snapshot_records += from_snapshot.len() as u64;
        report.log_records += replay.end_lsn - replay.from_lsn;
        let logged = replay.records().map(|r| r.map(|(_, rec)| rec));
        sources.push(Box::new(from_snapshot.into_iter().map(Ok).chain(logged)));
    }
    // Round robin over the shards, so that they store in parallel on their own workers.
    let mut live: Vec<usize> = (0..sources.len()).collect();
    while !live.is_empty() {
        let mut next_live = Vec::with_capacity(live.len());
        for &s in &live {
            let Some(rec) = sources[s].next() else {
                continue;
            };
            next_live.push(s);
            let rec = rec.map_err(durability_err(Some(s)))?;
            next_seq = next_seq.max(rec.seq().saturating_add(1));
            match rec {
                Record::Episode(e) => {
                    let space = eng.space_id(&e.space).ok_or_else(|| EngineError::UnknownSpace {
                        space: e.space.clone(),
                    })?;
                    if eng.shard_of(e.id) != s {
                        return Err(EngineError::Durability {
                            shard: Some(s),
                            source: crate::durability::DurabilityError::InvalidRecord {
                                what: format!(
                                    "episode {} is in the log of shard {s}, but routes to shard {}",
                                    e.id,
                                    eng.shard_of(e.id)
                                ),
                            },
                        });
                    }
                    let links = e
                        .links
                        .iter()
                        .map(|l| Link {
                            target: l.target,
                            weight: l.weight,
                            direction: match l.direction {
                                LinkKind::Both => LinkDirection::Both,
                                LinkKind::Out => LinkDirection::Out,
                                LinkKind::In => LinkDirection::In,
                            },
                        })
                        .collect();
                    events.push((
                        e.seq,
                        Event::Episode {
                            id: e.id,
                            space,
                            stream: e.stream,
                            links,
                        },
                    ));
                    eng.id_taken(e.id);
                    eng.space(space).restored();
                    report.episodes += 1;
                    if let Some(list) = attached[s].remove(&e.id) {
                        // Already stored on its loaded node (above); its saved `similar`
                        // associations follow its own links in the order.
                        events.push((e.seq, Event::Similar { id: e.id, list }));
                        report.episodes_loaded_indexed += 1;
                        continue;
                    }
                    report.episodes_reabsorbed += 1;
                    let prepared = Prepared {
                        id: e.id,
                        space,
                        embedding: e.embedding,
                        payload: e.payload,
                        timestamp: e.timestamp,
                        links: Vec::new(),
                        stream: None,
                    };
                    if inflight[s].len() >= WINDOW
                        && let Some((id, answer)) = inflight[s].pop_front()
                    {
                        settle(eng, id, answer)?;
                    }
                    let answer = submit(eng, s, space, prepared, &mut inflight[s])?;
                    inflight[s].push_back((e.id, answer));
                }
                Record::Associate { seq, a, b, w, both } => {
                    events.push((seq, Event::Associate { a, b, w, both }));
                    report.associations += 1;
                }
                Record::Forget { seq, id } => {
                    events.push((seq, Event::Forget { id }));
                    report.forgets += 1;
                }
            }
        }
        live = next_live;
    }
    for queue in &mut inflight {
        while let Some((id, answer)) = queue.pop_front() {
            settle(eng, id, answer)?;
        }
    }
    // Stable: a loaded episode's `Similar` event (same `seq`) stays after its `Episode` event.
    events.sort_by_key(|e| e.0);
    let mut edges = Vec::new();
    for (_, ev) in events {
        report.links_not_restored += apply(eng, ev, &mut edges);
    }
    report.links_not_restored += flush_edges(eng, &mut edges);
    report.replay = started.elapsed();
    Ok((report, next_seq))
}

/// Submits one store task to shard `s`, waiting for in-flight ones while the queue is full.
fn submit(
    eng: &Inner,
    s: usize,
    space: u16,
    prepared: Prepared,
    inflight: &mut Window,
) -> Result<Gather<Result<EpisodeId, EngineError>>, EngineError> {
    let sub = eng.submitter()?;
    let shard = &eng.shard(s);
    let (reply, answer) = oneshot();
    let mut task = Task::Observe {
        shard: s,
        ep: prepared,
        reply,
    };
    loop {
        shard.replay_submitted(space);
        match sub.submit(shard.node, Priority::Normal, task) {
            Ok(()) => return Ok(answer),
            Err(Rejected { error, item }) => {
                shard.replay_refused(space);
                match error {
                    ExecError::Overloaded { .. } => {
                        task = item;
                        match inflight.pop_front() {
                            Some((id, a)) => settle(eng, id, a)?,
                            None => std::thread::sleep(Duration::from_millis(1)),
                        }
                    }
                    _ => return Err(EngineError::Closed),
                }
            }
        }
    }
}

/// Waits for one recovered episode to be stored; a refusal is an error of the whole recovery.
fn settle(eng: &Inner, id: u64, answer: Gather<Result<EpisodeId, EngineError>>) -> Result<(), EngineError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    match answer.wait_one(deadline) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(ExecError::DeadlineExceeded { waited }) => Err(EngineError::TimedOut {
            shard: eng.shard_of(id),
            waited,
            id: Some(id),
        }),
        Err(_) => Err(EngineError::Closed),
    }
}

/// Edges recovery sends in one round (one message per shard): large enough that a million
/// recovered stream associations cost a few hundred round trips, not a million.
const EDGE_BATCH: usize = 8192;

/// Applies one phase-2 event as the live engine did, through the same messages: every edge is
/// written by its source shard's workers (`edges`, batched in `pending` and sent every
/// [`EDGE_BATCH`] and before any forget, so a forget still comes after every edge logged before
/// it) and each forget by the episode's shard (`forget`). Returns how many links it could not
/// restore.
fn apply(eng: &Inner, ev: Event, pending: &mut Vec<Edge>) -> u64 {
    let edge = |source: u64, target: u64, weight: f32| Edge {
        source,
        target,
        weight,
    };
    match ev {
        Event::Episode {
            id,
            space,
            stream,
            links,
        } => {
            for l in links {
                let (a, b) = (id, l.target);
                match l.direction {
                    LinkDirection::Both => pending.extend([edge(a, b, l.weight), edge(b, a, l.weight)]),
                    LinkDirection::Out => pending.push(edge(a, b, l.weight)),
                    LinkDirection::In => pending.push(edge(b, a, l.weight)),
                }
            }
            if let Some(stream) = &stream {
                eng.shard(eng.shard_of(id)).restore_stream(id, stream);
            }
            let w = eng.config().associations.stream_weight;
            if let Some(stream) = stream
                && w > 0.0
            {
                let prev = eng.follow_stream(space, stream, id);
                if let Some(prev) = prev {
                    pending.extend([edge(id, prev, w), edge(prev, id, w)]);
                }
            }
        }
        Event::Associate { a, b, w, both } => {
            pending.push(edge(a, b, w));
            if both {
                pending.push(edge(b, a, w));
            }
        }
        Event::Similar { id, list } => {
            for &(other, w) in list.iter() {
                pending.extend([edge(id, other, w), edge(other, id, w)]);
            }
        }
        Event::Forget { id } => {
            let lost = flush_edges(eng, pending);
            let deadline = Instant::now() + Duration::from_secs(60);
            let space = requests::forget(eng, eng.shard_of(id), id, deadline)
                .ok()
                .flatten();
            if let Some(space) = space {
                eng.space(space).release();
            }
            return lost;
        }
    }
    if pending.len() >= EDGE_BATCH {
        flush_edges(eng, pending)
    } else {
        0
    }
}

/// Sends the pending edges and waits for them; returns how many were not stored (all of them if
/// the round failed: a shard closed or missed the deadline).
fn flush_edges(eng: &Inner, pending: &mut Vec<Edge>) -> u64 {
    if pending.is_empty() {
        return 0;
    }
    let edges = std::mem::take(pending);
    let n = edges.len() as u64;
    requests::store_edges_counting(eng, edges, Instant::now() + Duration::from_secs(60)).unwrap_or(n)
}

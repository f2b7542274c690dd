//! Association edges as messages: which shard a worker is working for, the edges it produced
//! for other shards, and how they travel.
//!
//! An edge `a → b` is stored on `a`'s shard, and only a worker running that shard's task writes
//! that shard's graph. While a worker runs a task of shard `s` ([`Scope::enter`]), an edge whose
//! source lives on `s` is written at once and any other is put in the scope's outbox. When the
//! task is done, [`dispatch`] sends the outbox as one [`Task::Edges`] per destination shard (a
//! batch), at high priority.
//!
//! # Accepted means visible, without a worker ever waiting
//!
//! An observation's reply waits for its edges: the observing worker does not send it, it hands
//! the reply slot to a [`Join`] shared by the edge messages, and the last destination to write
//! its edges sends it. So `observe` returns after every edge of the episode is written, while
//! **no worker ever blocks** on another shard (it submits and moves on); only the caller of
//! `observe` (not a worker) waits, with its deadline. Workers waiting on workers is what could
//! deadlock (every worker of shard A waiting on B whose workers wait on A); with no worker ever
//! waiting, that cycle cannot form. A destination that refuses the message (queue full, closing)
//! loses those edges: reported as a degradation (and counted), never silently, and the reply
//! still goes out, since the episode itself is stored.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::error::EngineError;
use super::facade::Inner;
use super::task::Task;
use super::types::EpisodeId;
use crate::exec::{Priority, ReplySlot};
use crate::spread::SpreadError;

/// One directed association to store on `source`'s shard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Edge {
    pub(crate) source: u64,
    pub(crate) target: u64,
    pub(crate) weight: f32,
}

/// What a worker is doing now: shard `shard`'s work, with edges for other shards kept aside.
struct Current {
    shard: usize,
    outbox: Vec<(usize, Edge)>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// The shard whose task this thread is running (`None` outside a worker's task: the caller's
/// thread, or a worker between tasks).
pub(crate) fn current_shard() -> Option<usize> {
    CURRENT.with(|c| c.borrow().as_ref().map(|c| c.shard))
}

/// Keeps `edge` for `dest`'s shard if this thread is running a task; returns `false` (and keeps
/// nothing) otherwise.
pub(crate) fn defer(dest: usize, edge: Edge) -> bool {
    CURRENT.with(|c| match c.borrow_mut().as_mut() {
        Some(cur) => {
            cur.outbox.push((dest, edge));
            true
        }
        None => false,
    })
}

/// Marks this thread as running shard `shard`'s task until [`Scope::leave`] (or drop, after a
/// panic).
pub(crate) struct Scope(());

impl Scope {
    pub(crate) fn enter(shard: usize) -> Self {
        CURRENT.with(|c| {
            *c.borrow_mut() = Some(Current {
                shard,
                outbox: Vec::new(),
            })
        });
        Scope(())
    }

    /// Ends the task; returns the edges it produced for other shards.
    pub(crate) fn leave(self) -> Vec<(usize, Edge)> {
        CURRENT
            .with(|c| c.borrow_mut().take())
            .map(|c| c.outbox)
            .unwrap_or_default()
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

/// An observation's reply slot and the answer to send it, once its edges are written.
pub(crate) type HeldReply = (
    ReplySlot<Result<EpisodeId, EngineError>>,
    Result<EpisodeId, EngineError>,
);

/// An observation's reply, held until every shard that got some of its edges has written them.
pub(crate) struct Join {
    remaining: AtomicUsize,
    reply: Mutex<Option<HeldReply>>,
}

impl Join {
    fn new(
        parts: usize,
        reply: ReplySlot<Result<EpisodeId, EngineError>>,
        out: Result<EpisodeId, EngineError>,
    ) -> Self {
        Self {
            remaining: AtomicUsize::new(parts),
            reply: Mutex::new(Some((reply, out))),
        }
    }

    /// One part done; the last sends the reply.
    pub(crate) fn arrive(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.send();
        }
    }

    fn send(&self) {
        let held = self.reply.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((slot, out)) = held {
            slot.send(out);
        }
    }
}

impl Drop for Join {
    /// A message dropped unrun (the executor handing work back at shutdown) must not strand the
    /// observer: the episode is stored, so it still gets its answer.
    fn drop(&mut self) {
        self.send();
    }
}

/// Who waits for a [`Task::Edges`].
pub(crate) enum EdgesDone {
    /// An observation's reply ([`Join`]).
    Join(Arc<Join>),
    /// A caller (`Engine::associate*`): one result per edge, in order.
    Reply(ReplySlot<Vec<Result<(), SpreadError>>>),
}

/// Writes `edges` on `shard` (on one of its workers): one result per edge.
pub(crate) fn write_edges(inner: &Inner, shard: usize, edges: &[Edge]) -> Vec<Result<(), SpreadError>> {
    edges
        .iter()
        .map(|e| inner.shards[shard].write_edge(e.source, e.target, e.weight))
        .collect()
}

/// Sends the edges a task of `from` produced for other shards (one message per destination), and
/// the task's observation reply, if it has one, once they are all written (see the module docs).
pub(crate) fn dispatch(inner: &Inner, from: usize, outbox: Vec<(usize, Edge)>, reply: Option<HeldReply>) {
    if outbox.is_empty() {
        if let Some((slot, out)) = reply {
            slot.send(out);
        }
        return;
    }
    let mut by_shard: Vec<Vec<Edge>> = vec![Vec::new(); inner.shards.len()];
    for (dest, e) in outbox {
        by_shard[dest].push(e);
    }
    let parts = by_shard.iter().filter(|v| !v.is_empty()).count();
    let join = reply.map(|(slot, out)| Arc::new(Join::new(parts, slot, out)));
    for (dest, edges) in by_shard.into_iter().enumerate() {
        if edges.is_empty() {
            continue;
        }
        let n = edges.len();
        let task = |done| Task::Edges {
            shard: dest,
            edges,
            done,
        };
        let sent = match (inner.submitter.get(), &join) {
            (Some(sub), Some(j)) => sub
                .submit(
                    inner.shards[dest].node,
                    Priority::High,
                    task(Some(EdgesDone::Join(j.clone()))),
                )
                .is_ok(),
            (Some(sub), None) => sub
                .submit(inner.shards[dest].node, Priority::High, task(None))
                .is_ok(),
            (None, _) => false,
        };
        if !sent {
            // A refused message comes back and is dropped here (with its clone of the join).
            inner.shards[dest].metrics.edges_lost.add(n as u64);
            inner.note_degradation(format!(
                "associations lost: shard {dest} refused {n} edge(s) from shard {from} (queue full or closing)"
            ));
            if let Some(j) = &join {
                j.arrive();
            }
        }
    }
}

//! Association edges as messages: which shard a worker is working for, the edges it produced
//! for other shards, and how they travel.
//!
//! An edge `a → b` is stored on `a`'s shard, and only a worker running that shard's task writes
//! that shard's graph. While a worker runs a task of shard `s`
//! ([`Scope::enter`](super::shard::Scope::enter)), the shard writes an edge whose source lives on
//! `s` at once and returns any other ([`Outgoing`](super::shard::Outgoing)). When the task is
//! done, the handler hands them to [`dispatch`], which sends them as one [`Task::Edges`] per
//! destination shard (a batch), at high priority.
//!
//! # Accepted means visible, without a worker ever waiting
//!
//! An observation's reply waits for its edges: the observing worker does not send it, it hands
//! the reply slot to a [`Join`](super::join::Join) shared by the edge messages, and the last destination to write
//! its edges sends it. So `observe` returns after every edge of the episode is written, while
//! **no worker ever blocks** on another shard (it submits and moves on); only the caller of
//! `observe` (not a worker) waits, with its deadline. Workers waiting on workers is what could
//! deadlock (every worker of shard A waiting on B whose workers wait on A); with no worker ever
//! waiting, that cycle cannot form. A destination that refuses the message (queue full, closing)
//! loses those edges: reported as a degradation (and counted), never silently, and the reply
//! still goes out, since the episode itself is stored.

use std::sync::Arc;

use super::core::Inner;
use super::join::{Deliver, Join};
use super::shard::Edge;
use super::task::{EdgesDone, HeldReply, Task};
use crate::exec::Priority;
use crate::spread::SpreadError;

/// Writes `edges` on `shard` (on one of its workers): one result per edge.
pub(crate) fn write_edges(inner: &Inner, shard: usize, edges: &[Edge]) -> Vec<Result<(), SpreadError>> {
    edges
        .iter()
        .map(|e| inner.shard(shard).write_edge(e.source, e.target, e.weight))
        .collect()
}

/// Sends the edges a task of `from` produced for other shards (one message per destination), and
/// the task's observation reply, if it has one, once they are all written (see the module docs).
pub(crate) fn dispatch(inner: &Inner, from: usize, outbox: Vec<(usize, Edge)>, reply: Option<HeldReply>) {
    if outbox.is_empty() {
        if let Some(held) = reply {
            held.deliver();
        }
        return;
    }
    let mut by_shard: Vec<Vec<Edge>> = vec![Vec::new(); inner.shards().len()];
    for (dest, e) in outbox {
        by_shard[dest].push(e);
    }
    let parts = by_shard.iter().filter(|v| !v.is_empty()).count();
    let join = reply.map(|held| Arc::new(Join::new(parts, held)));
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
        let sent = match (inner.try_submitter(), &join) {
            (Some(sub), Some(j)) => sub
                .submit(
                    inner.shard(dest).node,
                    Priority::High,
                    task(Some(EdgesDone::Join(j.clone()))),
                )
                .is_ok(),
            (Some(sub), None) => sub
                .submit(inner.shard(dest).node, Priority::High, task(None))
                .is_ok(),
            (None, _) => false,
        };
        if !sent {
            // A refused message comes back and is dropped here (with its clone of the join).
            inner.shard(dest).metrics.edges_lost.add(n as u64);
            inner.note_degradation(format!(
                "associations lost: shard {dest} refused {n} edge(s) from shard {from} (queue full or closing)"
            ));
            if let Some(j) = &join {
                j.arrive();
            }
        }
    }
}

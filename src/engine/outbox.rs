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
//! the reply slot to a [`Join`] shared by the edge messages, and the last destination to write
//! its edges sends it. So `observe` returns after every edge of the episode is written, while
//! **no worker ever blocks** on another shard (it submits and moves on); only the caller of
//! `observe` (not a worker) waits, with its deadline. Workers waiting on workers is what could
//! deadlock (every worker of shard A waiting on B whose workers wait on A); with no worker ever
//! waiting, that cycle cannot form. A destination that refuses the message (queue full, closing)
//! loses those edges: reported as a degradation (and counted), never silently, and the reply
//! still goes out, since the episode itself is stored.

use std::sync::Arc;

use super::core::Inner;
use super::error::EngineError;
use super::shard::Edge;
use super::task::Task;
use super::types::EpisodeId;
use crate::exec::{Priority, ReplySlot};
use crate::spread::SpreadError;
use crate::sync::{AtomicUsize, Mutex, Ordering};

/// An observation's reply slot and the answer to send it, once its edges are written: one
/// episode's ([`Task::Observe`]) or a batch's ([`Task::ObserveBatch`], one result per episode).
pub(crate) enum HeldReply {
    /// One episode.
    One(
        ReplySlot<Result<EpisodeId, EngineError>>,
        Result<EpisodeId, EngineError>,
    ),
    /// A batch.
    Batch(
        ReplySlot<Vec<Result<EpisodeId, EngineError>>>,
        Vec<Result<EpisodeId, EngineError>>,
    ),
}

/// What a [`Join`] hands over once every part has arrived.
pub(crate) trait Deliver {
    /// Hands it over (called once).
    fn deliver(self);
}

impl Deliver for HeldReply {
    fn deliver(self) {
        match self {
            HeldReply::One(slot, out) => slot.send(out),
            HeldReply::Batch(slot, out) => slot.send(out),
        }
    }
}

/// An observation's reply, held until every shard that got some of its edges has written them:
/// each part [`arrive`](Join::arrive)s once, and the last one delivers. A join dropped before
/// every part arrived (the messages handed back unrun at shutdown) delivers on drop, so the
/// observer, whose episode is stored, is never stranded. The countdown is model-checked
/// (`loom` below).
pub(crate) struct Join<T: Deliver = HeldReply> {
    remaining: AtomicUsize,
    held: Mutex<Option<T>>,
}

impl<T: Deliver> Join<T> {
    pub(crate) fn new(parts: usize, held: T) -> Self {
        Self {
            remaining: AtomicUsize::new(parts),
            held: Mutex::new(Some(held)),
        }
    }

    /// One part done; the last delivers.
    pub(crate) fn arrive(&self) {
        // AcqRel: the last part sees every earlier part's writes before it delivers.
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.deliver();
        }
    }

    fn deliver(&self) {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = held {
            h.deliver();
        }
    }
}

impl<T: Deliver> Drop for Join<T> {
    fn drop(&mut self) {
        self.deliver();
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

#[cfg(all(loom, test))]
mod loom {
    //! Model check of the join: parts arriving on several threads deliver exactly once, only
    //! after the last arrival, and a join dropped early still delivers once. Run:
    //! `RUSTFLAGS="--cfg loom" cargo test --release --lib --target-dir target/loom engine::outbox::loom`.

    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::thread;

    use super::{Deliver, Join};

    /// Counts deliveries, and records how many parts had arrived when it was delivered.
    struct Probe {
        delivered: Arc<AtomicUsize>,
        arrived: Arc<AtomicUsize>,
        seen: Arc<AtomicUsize>,
    }

    impl Deliver for Probe {
        fn deliver(self) {
            self.seen
                .store(self.arrived.load(Ordering::SeqCst), Ordering::SeqCst);
            self.delivered.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn probe() -> (Probe, Arc<AtomicUsize>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (d, a, s) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        (
            Probe {
                delivered: d.clone(),
                arrived: a.clone(),
                seen: s.clone(),
            },
            d,
            a,
            s,
        )
    }

    #[test]
    fn parts_on_three_threads_deliver_once_after_the_last() {
        loom::model(|| {
            let (p, delivered, arrived, seen) = probe();
            let join = Arc::new(Join::new(3, p));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let (join, arrived) = (join.clone(), arrived.clone());
                    thread::spawn(move || {
                        arrived.fetch_add(1, Ordering::SeqCst);
                        join.arrive();
                    })
                })
                .collect();
            arrived.fetch_add(1, Ordering::SeqCst);
            join.arrive();
            for t in threads {
                t.join().expect("part");
            }
            assert_eq!(delivered.load(Ordering::SeqCst), 1);
            assert_eq!(
                seen.load(Ordering::SeqCst),
                3,
                "delivered before the last part arrived"
            );
            drop(join);
            assert_eq!(delivered.load(Ordering::SeqCst), 1, "delivered again on drop");
        });
    }

    #[test]
    fn a_join_dropped_early_delivers_once() {
        loom::model(|| {
            let (p, delivered, _, _) = probe();
            let join = Arc::new(Join::new(2, p));
            let other = {
                let join = join.clone();
                thread::spawn(move || join.arrive())
            };
            drop(join);
            other.join().expect("part");
            assert_eq!(delivered.load(Ordering::SeqCst), 1);
        });
    }
}

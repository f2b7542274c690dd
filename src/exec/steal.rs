//! Node-first work stealing.
//!
//! An idle worker (its own three queues empty) looks for work in this order:
//!
//! 1. **Its own node.** For each class, highest first, it finds the sibling whose queue of that
//!    class is fullest, and takes half of it (at most `max_batch`). Siblings share the node's
//!    memory and usually its last-level cache, so a local steal is cheap. (High items are also
//!    taken from a sibling by a worker that is *not* idle, before its own normal or low work:
//!    see [`super::worker`].)
//! 2. **Other nodes**, only under [`StealPolicy::CrossNode`], and only from a victim whose
//!    backlog (all classes) exceeds `threshold`: the fullest such victim, from its highest
//!    non-empty class, at most half of that queue and at most `max_batch` items.
//!
//! A steal pops items out of the victim's queue by value: the thief owns them afterwards and
//! never touches the victim's queue memory in its hot loop (with node arenas, only the pop reads
//! remote memory, once per item). Pops cannot fail spuriously (an `ArrayQueue` pop returns
//! `None` only when the queue is empty at that moment), so `Steal` needs no `Retry` case.

use super::config::StealPolicy;
use super::handler::BatchSource;
use super::pool::Shared;
use super::queue::{Envelope, Priority};

/// What a steal attempt found.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Steal {
    /// Nothing to take (or the victims emptied first).
    Empty,
    /// Items of `class` were moved into the thief's buffer.
    Success {
        /// Their class.
        class: Priority,
        /// Where they came from.
        source: BatchSource,
    },
}

/// Takes items of `class` from the sibling (same node pool) of worker (`pool`, `local`) whose
/// queue of that class is fullest: half of it, at most `max_batch`, into `out` (empty on entry).
/// Honours [`StealPolicy::Off`]. The worker loop also calls it for [`Priority::High`] while it
/// still has lower-priority work of its own, so a high item never waits behind a sibling's long
/// task when another worker of the node could run it.
pub(crate) fn steal_sibling<T>(
    shared: &Shared<T>,
    pool: usize,
    local: usize,
    class: Priority,
    max_batch: usize,
    out: &mut Vec<Envelope<T>>,
) -> Steal {
    if shared.config.steal == StealPolicy::Off {
        return Steal::Empty;
    }
    let home = &shared.pools[pool];
    let victim = home
        .workers
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != local)
        .map(|(i, w)| (w.queues.len(class), i))
        .max();
    if let Some((len, i)) = victim
        && len > 0
    {
        let w = &home.workers[i];
        let n = w.queues.pop_into(class, len.div_ceil(2).min(max_batch), out);
        if n > 0 {
            return Steal::Success {
                class,
                source: BatchSource::StolenLocal {
                    from_worker: w.slot.index,
                },
            };
        }
    }
    Steal::Empty
}

/// Tries to steal for worker (`pool`, `local`) into `out` (empty on entry).
pub(crate) fn steal<T>(
    shared: &Shared<T>,
    pool: usize,
    local: usize,
    max_batch: usize,
    out: &mut Vec<Envelope<T>>,
) -> Steal {
    let policy = shared.config.steal;
    if policy == StealPolicy::Off {
        return Steal::Empty;
    }
    for class in Priority::ALL {
        if let found @ Steal::Success { .. } = steal_sibling(shared, pool, local, class, max_batch, out) {
            return found;
        }
    }
    let StealPolicy::CrossNode { threshold } = policy else {
        return Steal::Empty;
    };
    let victim = shared
        .pools
        .iter()
        .enumerate()
        .filter(|&(p, _)| p != pool)
        .flat_map(|(p, np)| {
            np.workers
                .iter()
                .enumerate()
                .map(move |(i, w)| (w.queues.total_len(), p, i))
        })
        .filter(|&(backlog, _, _)| backlog > threshold)
        .max();
    if let Some((_, p, i)) = victim {
        let w = shared.worker(p, i);
        for class in Priority::ALL {
            let len = w.queues.len(class);
            if len == 0 {
                continue;
            }
            let n = w.queues.pop_into(class, len.div_ceil(2).min(max_batch), out);
            if n > 0 {
                return Steal::Success {
                    class,
                    source: BatchSource::StolenRemote {
                        from_worker: w.slot.index,
                        from_node: w.slot.node,
                    },
                };
            }
        }
    }
    Steal::Empty
}

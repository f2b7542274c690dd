//! Priority classes and the bounded per-worker queues.
//!
//! Every worker owns one bounded MPMC queue per [`Priority`] (crossbeam's `ArrayQueue`: a ring
//! of slots with per-slot stamps, head and tail on their own cache lines). Any thread may push
//! (submitters) or pop (the owner, and stealers on the same or another node): a pop moves the
//! item out, so a stolen item is handed over by value and the thief never reads the victim's
//! memory again.
//!
//! Queue memory: today each ring is one heap allocation made by the worker's spawning thread.
//! With `alloc::NodeArena` in place, each ring belongs in the arena of its worker's
//! `memory_node` (the plan's `WorkerSlot::memory_node`), so a worker's own pops stay node-local.

use std::time::Instant;

use crossbeam::queue::ArrayQueue;
use serde::Serialize;

/// The three priority classes. Lower discriminant = served first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Latency-critical reads (recall). Always served first.
    High = 0,
    /// Writes (observe).
    Normal = 1,
    /// Background maintenance. Served after the others, but with a guaranteed share
    /// ([`crate::exec::WorkerPoolConfig::low_share`]) so it cannot starve.
    Low = 2,
}

impl Priority {
    /// All classes, in service order.
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    /// The class as an index 0..3.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// A lower-case name for labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

/// An item in a queue, stamped when it was accepted (for queue-wait and queue-to-done times).
#[derive(Debug)]
pub(crate) struct Envelope<T> {
    pub(crate) item: T,
    pub(crate) enqueued: Instant,
}

/// Bytes one queue slot takes for items of type `T`: crossbeam 0.8's `ArrayQueue` keeps each
/// slot as a stamp word beside the (possibly uninitialised) item, here an [`Envelope`] (the
/// item plus its accept timestamp).
pub(crate) fn slot_bytes<T>() -> usize {
    std::mem::size_of::<(usize, std::mem::MaybeUninit<Envelope<T>>)>()
}

/// One worker's three queues.
#[derive(Debug)]
pub(crate) struct ClassQueues<T> {
    queues: [ArrayQueue<Envelope<T>>; 3],
}

impl<T> ClassQueues<T> {
    /// Queues with the given capacities (each at least 1; checked by the config).
    pub(crate) fn new(capacity: [usize; 3]) -> Self {
        Self {
            queues: capacity.map(|c| ArrayQueue::new(c.max(1))),
        }
    }

    #[inline]
    pub(crate) fn get(&self, class: Priority) -> &ArrayQueue<Envelope<T>> {
        &self.queues[class.index()]
    }

    #[inline]
    pub(crate) fn len(&self, class: Priority) -> usize {
        self.queues[class.index()].len()
    }

    /// Items waiting in all classes.
    #[inline]
    pub(crate) fn total_len(&self) -> usize {
        self.queues.iter().map(ArrayQueue::len).sum()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.queues.iter().all(ArrayQueue::is_empty)
    }

    /// Pushes, or hands the envelope back if the class is full.
    #[inline]
    pub(crate) fn push(&self, class: Priority, env: Envelope<T>) -> Result<(), Envelope<T>> {
        self.queues[class.index()].push(env)
    }

    /// Moves up to `max` items of `class` into `out`; returns how many.
    #[inline]
    pub(crate) fn pop_into(&self, class: Priority, max: usize, out: &mut Vec<Envelope<T>>) -> usize {
        let q = &self.queues[class.index()];
        let mut n = 0;
        while n < max {
            match q.pop() {
                Some(e) => {
                    out.push(e);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(i: u32) -> Envelope<u32> {
        Envelope {
            item: i,
            enqueued: Instant::now(),
        }
    }

    #[test]
    fn push_refuses_exactly_at_capacity_and_pop_is_fifo() {
        let q = ClassQueues::new([2, 1, 1]);
        assert!(q.push(Priority::High, env(1)).is_ok());
        assert!(q.push(Priority::High, env(2)).is_ok());
        let back = q.push(Priority::High, env(3)).unwrap_err();
        assert_eq!(back.item, 3);
        assert!(q.push(Priority::Low, env(4)).is_ok());
        assert_eq!(q.total_len(), 3);
        let mut out = Vec::new();
        assert_eq!(q.pop_into(Priority::High, 10, &mut out), 2);
        assert_eq!(out.iter().map(|e| e.item).collect::<Vec<_>>(), [1, 2]);
        assert!(!q.is_empty());
        assert_eq!(q.pop_into(Priority::Low, 1, &mut out), 1);
        assert!(q.is_empty());
    }
}

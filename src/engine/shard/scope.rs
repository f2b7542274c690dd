//! Which shard the running thread works for, and the edge, the unit of association a shard
//! writes or hands to another shard.
//!
//! An edge `a → b` is stored on `a`'s shard, and only a worker running that shard's task writes
//! that shard's graph ([`Shard::write_edge`](super::Shard::write_edge) checks it in debug
//! builds). The handler marks the thread with a [`Scope`] while a task runs.

use std::cell::Cell;

/// One directed association to store on `source`'s shard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Edge {
    pub(crate) source: u64,
    pub(crate) target: u64,
    pub(crate) weight: f32,
}

thread_local! {
    /// The shard whose task this thread runs now.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The shard whose task this thread is running (`None` outside a worker's task: the caller's
/// thread, or a worker between tasks).
pub(crate) fn current_shard() -> Option<usize> {
    CURRENT.with(Cell::get)
}

/// Marks this thread as running shard `shard`'s task until [`Scope::leave`] (or drop, after a
/// panic).
pub(crate) struct Scope(());

impl Scope {
    pub(crate) fn enter(shard: usize) -> Self {
        CURRENT.with(|c| c.set(Some(shard)));
        Scope(())
    }

    /// Ends the task.
    pub(crate) fn leave(self) {
        drop(self);
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(None));
    }
}

//! What the durable engine (`src/engine/durable/`) needs of a shard's internals, in one place so
//! that a change of the shard's storage touches one file: replaying a logged episode through the
//! shard's normal store path.
//!
//! Snapshots do not read shard state: they fold the shards' logs into themselves (see
//! `src/engine/durable/snapshot.rs`), so nothing here exports rows, graph edges or index
//! segments (the index is rebuilt when recovered episodes are absorbed).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::shard::Shard;

impl Shard {
    /// Counts an observation of `space` submitted to this shard by recovery, as `observe`
    /// counts its own before submitting (the worker's store uncounts it).
    pub(crate) fn replay_submitted(&self, space: u16) {
        self.spaces[space as usize].pending.fetch_add(1, Ordering::AcqRel);
    }

    /// Undoes [`replay_submitted`](Self::replay_submitted) for a submission the queue refused.
    pub(crate) fn replay_refused(&self, space: u16) {
        self.spaces[space as usize].pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// Sets the stream of a replayed episode (replay stores episodes without their stream, so
    /// that the stream associations are made afterwards in the engine-wide order).
    pub(crate) fn restore_stream(&self, id: u64, stream: &str) {
        let Some(&(space, slot)) = self.ids().get(&id) else {
            return;
        };
        let mut d = self.spaces[space as usize]
            .data
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(m) = d.meta.get_mut(slot as usize) {
            m.stream = Some(Arc::from(stream));
        }
    }
}

//! What the durable engine (`src/engine/durable/`) needs of a shard's internals, in one place so
//! that a change of the shard's storage touches one file: replaying a logged episode through the
//! shard's normal store path, the ids and `similar` lists of a space's linked prefix (saved with
//! its index segments by a snapshot), and attaching recovered episodes to loaded segments.
//!
//! Snapshots fold the shards' logs for the episodes' records (see
//! `src/engine/durable/fold.rs`) and save the index segments beside them
//! (`src/engine/durable/index_files.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::{Meta, Segment, Shard};
use crate::engine::error::EngineError;
use crate::spread::SpreadError;

/// Slots, ids and `similar` lists of a space's linked prefix.
pub(crate) type PrefixMeta = (Vec<u64>, Vec<Box<[(u64, f32)]>>);

impl Shard {
    /// Counts an observation of `space` submitted to this shard by recovery, as `observe`
    /// counts its own before submitting (the worker's store uncounts it).
    pub(crate) fn replay_submitted(&self, space: u16) {
        self.spaces[space as usize].admit_pending();
    }

    /// Undoes [`replay_submitted`](Self::replay_submitted) for a submission the queue refused.
    pub(crate) fn replay_refused(&self, space: u16) {
        self.spaces[space as usize].pending_done();
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

    /// The episode ids and `similar` lists of slots `0..linked` of `space` (a prefix of
    /// accepted slots).
    pub(crate) fn linked_prefix_meta(&self, space: u16, linked: usize) -> PrefixMeta {
        let d = self.spaces[space as usize].read();
        let metas = &d.meta[..linked.min(d.meta.len())];
        (
            metas.iter().map(|m| m.id).collect(),
            metas
                .iter()
                .map(|m| m.similar.get().cloned().unwrap_or_default())
                .collect(),
        )
    }

    /// Puts loaded segments (nodes `0..n` linked, the segments in slot order) in place of the
    /// empty segment list of `space`, before any episode of it is stored.
    pub(crate) fn install_segments(&self, space: u16, segs: Vec<Arc<Segment>>) {
        let sp = &self.spaces[space as usize];
        let mut list = sp.segments.write().unwrap_or_else(|p| p.into_inner());
        debug_assert!(list.is_empty() && sp.len.load(Ordering::Acquire) == 0);
        *list = segs;
    }

    /// Marks slots `0..n` of `space` linked (recovery, once every one is attached).
    pub(crate) fn restore_linked(&self, space: u16, n: usize) {
        self.spaces[space as usize].progress.restore_linked(n);
    }

    /// Accepts a recovered episode whose node is already in a loaded segment, as slot `slot`
    /// (which must be the next one): its row is the node's, so nothing is staged; it is
    /// marked indexed, with the `similar` list saved with it.
    ///
    /// # Errors
    /// [`EngineError::DuplicateId`], [`EngineError::ShardFull`], or
    /// [`EngineError::Durability`] if `slot` is not the next slot or past the loaded nodes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn attach_indexed(
        &self,
        space: u16,
        slot: usize,
        id: u64,
        timestamp: u64,
        payload: Vec<u8>,
        similar: Box<[(u64, f32)]>,
    ) -> Result<(), EngineError> {
        let sp = &self.spaces[space as usize];
        let mut ids = self.ids.write().unwrap_or_else(|p| p.into_inner());
        if ids.contains_key(&id) {
            return Err(EngineError::DuplicateId { id });
        }
        let mismatch = |what: String| EngineError::Durability {
            shard: Some(self.index),
            source: crate::durability::DurabilityError::InvalidRecord { what },
        };
        let loaded = sp.segments().iter().map(|s| s.index.ids_used()).sum::<usize>();
        if slot != sp.len.load(Ordering::Acquire) || slot >= loaded {
            return Err(mismatch(format!(
                "episode {id} attached as slot {slot}; the next slot is {}, {loaded} loaded",
                sp.len.load(Ordering::Acquire)
            )));
        }
        match self.graph.add_node(id) {
            Ok(_) => {}
            Err(SpreadError::GraphFull { .. }) => {
                return Err(EngineError::ShardFull {
                    shard: self.index,
                    capacity: self.graph.capacity(),
                });
            }
            Err(SpreadError::Forgotten { .. }) => return Err(EngineError::DuplicateId { id }),
            Err(source) => {
                return Err(EngineError::Spread {
                    shard: Some(self.index),
                    source,
                });
            }
        }
        let similar_cell = OnceLock::new();
        let _ = similar_cell.set(similar);
        let mut d = sp.data.write().unwrap_or_else(|p| p.into_inner());
        d.meta.push(Meta {
            id,
            timestamp,
            accepted: Instant::now(),
            stream: None,
            payload: payload.into_boxed_slice(),
            forgotten: false,
            indexed: AtomicBool::new(true),
            similar: similar_cell,
        });
        sp.len.store(slot + 1, Ordering::SeqCst);
        drop(d);
        ids.insert(id, (space, u32::try_from(slot).unwrap_or(u32::MAX)));
        Ok(())
    }
}

//! Staging: a vector is stored (id claimed, f32 and int8 rows written) at once and linked into
//! the graph later, possibly by another thread. A caller that must accept vectors faster than
//! HNSW links them (the engine's append buffer) keeps each vector once, in the index's own
//! rows, and reads it back with [`HnswIndex::row`] until it is linked.

use std::collections::BinaryHeap;
use std::ops::Range;

use super::HnswIndex;
use super::Neighbor;
use super::graph::{READY, STAGED, TAKEN};
use super::search::Cand;
use crate::index::IndexError;

impl HnswIndex {
    /// Stores `vector` under the next id and returns the id, without linking it: searches do
    /// not return it until [`HnswIndex::link_staged`] links it, but [`HnswIndex::row`] reads
    /// it at once (from any thread that learns the id after this returns). Ids are handed out
    /// in order, shared with [`HnswIndex::insert`].
    ///
    /// # Errors
    /// As for [`HnswIndex::insert`]; on error nothing changes.
    pub fn stage(&self, vector: &[f32]) -> Result<u32, IndexError> {
        self.space.validate(vector)?;
        let id = self.claim(1)?.start;
        let p = self.space.prepare(vector);
        // SAFETY: `id` was just claimed by this call and is neither linked nor STAGED, so no
        // other thread reads or writes its row.
        unsafe { self.space.write(id, &p) };
        // Release (AcqRel): the row is visible to whoever sees the flag with Acquire.
        self.graph.set_flags(id, STAGED);
        Ok(id)
    }

    /// The stored vector of `id`, staged or inserted (deleted nodes keep theirs).
    ///
    /// # Errors
    /// [`IndexError::UnknownId`] if `id` is neither staged nor completely inserted.
    pub fn row(&self, id: u32) -> Result<&[f32], IndexError> {
        if (id as usize) < self.ids_used() && self.graph.flags(id) & (STAGED | READY) != 0 {
            // SAFETY: the flag (loaded with Acquire) was set with Release after the row was
            // written, and a row is never written again.
            Ok(unsafe { self.space.vector(id) })
        } else {
            Err(IndexError::UnknownId { id })
        }
    }

    /// Links the staged node `id` into the graph (it is returned by searches from then on) and
    /// returns up to `k` of its nearest neighbours among the nodes already linked, closest
    /// first, as [`HnswIndex::insert_returning_neighbors`] does. Staged nodes may be linked in
    /// any order, from several threads at once.
    ///
    /// # Errors
    /// [`IndexError::UnknownId`] if `id` is not staged; [`IndexError::InvalidInput`] if it was
    /// already linked (each staged node is linked once).
    pub fn link_staged(&self, id: u32, k: usize) -> Result<Vec<Neighbor>, IndexError> {
        if (id as usize) >= self.ids_used() || self.graph.flags(id) & STAGED == 0 {
            return Err(IndexError::UnknownId { id });
        }
        if self.graph.set_flags(id, TAKEN) & (TAKEN | READY) != 0 {
            return Err(IndexError::InvalidInput {
                what: format!("node {id} was already linked"),
            });
        }
        // SAFETY: `id` is STAGED (checked with Acquire above): its row is written and final
        // (already normalised for cosine, so it is prepared as stored).
        let p = self
            .space
            .prepare_stored(unsafe { self.space.vector(id) }.to_vec());
        let mut s = self.scratch();
        let found = self.link_prepared(id, &p, &mut s);
        self.release(s);
        Ok(self.nearest_of_walk(&p, found, k))
    }

    /// The `k` nodes of `ids` nearest to `query` among those staged or inserted (holes are
    /// skipped; deleted nodes too) and accepted by `keep`, closest first, by a linear scan: the
    /// walk's distance (int8 with quantisation, so a quarter of the f32 memory traffic) picks
    /// the best `shortlist` (at least `k`), which are re-ranked with exact f32 distances. With
    /// [`Quantization::None`](crate::index::Quantization::None) it is an exact scan. For
    /// vectors that are not linked yet (see [`HnswIndex::stage`]), which no search finds.
    ///
    /// # Errors
    /// [`IndexError::InvalidInput`] if `k` is 0; [`IndexError::DimensionMismatch`] or
    /// [`IndexError::NonFinite`] for a bad query.
    pub fn scan(
        &self,
        query: &[f32],
        ids: Range<u32>,
        k: usize,
        shortlist: usize,
        keep: impl Fn(u32) -> bool,
    ) -> Result<Vec<Neighbor>, IndexError> {
        if k == 0 {
            return Err(IndexError::InvalidInput {
                what: "k must be at least 1".into(),
            });
        }
        self.space.validate(query)?;
        let p = self.space.prepare(query);
        let end = ids.end.min(self.ids_used() as u32);
        let best = shortlist.max(k);
        let mut heap: BinaryHeap<Cand> = BinaryHeap::with_capacity(best + 1);
        for id in ids.start..end {
            if id + 4 < end {
                self.space.prefetch(id + 4, usize::MAX);
            }
            let f = self.graph.flags(id);
            if f & (STAGED | READY) == 0 || f & super::graph::DELETED != 0 || !keep(id) {
                continue;
            }
            // SAFETY: the flag (loaded with Acquire) was set with Release after the row was
            // written, and a row is never written again.
            let dist = unsafe { self.space.walk_distance(&p, id) };
            if heap.len() < best {
                heap.push(Cand { dist, id });
            } else if heap.peek().is_some_and(|w| dist < w.dist) {
                heap.pop();
                heap.push(Cand { dist, id });
            }
        }
        Ok(self.finish(&p, heap.into_sorted_vec(), k))
    }
}

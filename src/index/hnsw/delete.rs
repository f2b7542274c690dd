//! Deletion: tombstones (immediate, concurrent), then `repair` (unlink tombstones, reconnect
//! their neighbours) and `compact` (rebuild without them, to reclaim their ids and memory).

use std::sync::atomic::Ordering;

use super::graph::{DELETED, READY};
use super::search::Cand;
use super::{HnswConfig, HnswIndex};
use crate::index::IndexError;

impl HnswIndex {
    /// Marks `id` deleted: from now on no search returns it. The node stays in the graph as a
    /// waypoint (so recall does not drop) until [`HnswIndex::repair`] or
    /// [`HnswIndex::compact`]. Returns `false` if it was already deleted.
    ///
    /// # Errors
    /// [`IndexError::UnknownId`] if `id` is not a completely inserted vector.
    pub fn delete(&self, id: u32) -> Result<bool, IndexError> {
        self.check_ready(id)?;
        let before = self.graph.set_flags(id, DELETED);
        if before & DELETED != 0 {
            return Ok(false);
        }
        self.live.fetch_sub(1, Ordering::AcqRel);
        Ok(true)
    }

    /// Unlinks every deleted node: each live node that linked to one is reconnected, with the
    /// heuristic, to the best of its remaining links and the deleted nodes' live links; deleted
    /// nodes lose their links and, if the entry point was deleted, the highest live node takes
    /// its place. Ids of deleted nodes are not reused (see [`HnswIndex::compact`]). Returns the
    /// number of link lists rewritten.
    pub fn repair(&mut self) -> usize {
        let used = self.ids_used() as u32;
        let is_dead = |g: &super::graph::Graph, id: u32| g.flags(id) & DELETED != 0;
        let mut rewritten = 0;
        let mut links = Vec::new();
        let mut extra = Vec::new();
        for id in 0..used {
            if self.graph.flags(id) & READY == 0 || is_dead(&self.graph, id) {
                continue;
            }
            for level in 0..=self.graph.level(id) {
                self.graph.read_links(id, level, &mut links);
                if !links.iter().any(|&n| is_dead(&self.graph, n)) {
                    continue;
                }
                let mut pool: Vec<u32> = Vec::new();
                for &n in &links {
                    if is_dead(&self.graph, n) {
                        self.graph.read_links(n, level, &mut extra);
                        pool.extend(extra.iter().copied().filter(|&x| !is_dead(&self.graph, x)));
                    } else {
                        pool.push(n);
                    }
                }
                pool.retain(|&x| x != id);
                pool.sort_unstable();
                pool.dedup();
                let mut cands: Vec<Cand> = pool
                    .iter()
                    // SAFETY: `&mut self`: no insert runs; every id here is a written node.
                    .map(|&x| Cand {
                        dist: unsafe { self.space.walk_distance_between(id, x) },
                        id: x,
                    })
                    .collect();
                cands.sort_unstable();
                let chosen = self.select_neighbors(&cands, self.graph.max_links(level));
                self.graph.write_links(id, level, &chosen);
                rewritten += 1;
            }
        }
        for id in 0..used {
            if is_dead(&self.graph, id) {
                for level in 0..=self.graph.level(id) {
                    self.graph.write_links(id, level, &[]);
                }
            }
        }
        if self.entry_point().is_some_and(|(ep, _)| is_dead(&self.graph, ep)) {
            let best = (0..used)
                .filter(|&i| self.graph.flags(i) & (READY | DELETED) == READY)
                .max_by_key(|&i| (self.graph.level(i), std::cmp::Reverse(i)));
            match best {
                Some(i) => self.set_entry_point(i, self.graph.level(i)),
                None => self.entry.store(super::NO_ENTRY, Ordering::Release),
            }
        }
        rewritten
    }

    /// A new index holding only the live vectors, rebuilt on `threads` threads, with room for
    /// `capacity` vectors (at least the live count), and the map from new ids to old ids
    /// (`map[new] = old`). The new index takes its memory from the same region source as this
    /// one (a node-bound index stays bound to its node).
    ///
    /// # Errors
    /// [`IndexError::OutOfMemory`] if the new index cannot be allocated.
    pub fn compact(&self, capacity: usize, threads: usize) -> Result<(HnswIndex, Vec<u32>), IndexError> {
        let used = self.ids_used() as u32;
        let map: Vec<u32> = (0..used)
            .filter(|&i| self.graph.flags(i) & (READY | DELETED) == READY)
            .collect();
        let config = HnswConfig {
            capacity: capacity.max(map.len()),
            ..self.config.clone()
        };
        // From the same source: a node-bound index compacts into the same node's memory.
        let fresh = HnswIndex::with_regions(config, *self.space.kernels(), &*self.source)?;
        let mut flat = Vec::with_capacity(map.len() * self.dim());
        for &old in &map {
            // SAFETY: `old` is READY, so its row is written and published.
            flat.extend_from_slice(unsafe { self.space.vector(old) });
        }
        fresh.insert_batch(&flat, threads)?;
        Ok((fresh, map))
    }
}

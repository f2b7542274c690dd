//! Insertion: claim an id, write the vector, walk down choosing its neighbours on every level,
//! write all of its own link lists, then add the back-links to it, and mark it READY. Batch
//! insertion validates everything first, claims a contiguous id range, and
//! spreads the nodes over the given number of threads.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::graph::{DELETED, READY, TAKEN};
use super::search::{Cand, Scratch};
use super::{HnswIndex, NO_ENTRY, Neighbor};
use crate::index::IndexError;
use crate::index::space::Prepared;

impl HnswIndex {
    /// Inserts one vector; returns its id (ids are handed out in order: 0, 1, 2, …).
    ///
    /// # Errors
    /// [`IndexError::DimensionMismatch`] or [`IndexError::NonFinite`] for a bad vector (or
    /// [`IndexError::InvalidInput`] for a zero vector with the cosine metric);
    /// [`IndexError::CapacityExceeded`] when the index is full. On error nothing changes.
    pub fn insert(&self, vector: &[f32]) -> Result<u32, IndexError> {
        self.space.validate(vector)?;
        let id = self.claim(1)?.start;
        let p = self.space.prepare(vector);
        let mut s = self.scratch();
        self.insert_prepared(id, &p, &mut s);
        self.release(s);
        Ok(id)
    }

    /// Inserts one vector like [`HnswIndex::insert`] and also returns up to `k` of its nearest
    /// neighbours among the nodes already indexed (live, not deleted), closest first, with exact
    /// f32 distances. They come from the level-0 walk the insertion does anyway (its
    /// `ef_construction` closest candidates, re-ranked), so they cost no extra search; they are
    /// as good as a search with `ef = ef_construction` from the same entry.
    ///
    /// # Errors
    /// As for [`HnswIndex::insert`].
    pub fn insert_returning_neighbors(
        &self,
        vector: &[f32],
        k: usize,
    ) -> Result<(u32, Vec<Neighbor>), IndexError> {
        self.space.validate(vector)?;
        let id = self.claim(1)?.start;
        let p = self.space.prepare(vector);
        let mut s = self.scratch();
        let found = self.insert_prepared(id, &p, &mut s);
        self.release(s);
        Ok((id, self.nearest_of_walk(&p, found, k)))
    }

    /// Reserves `n` consecutive ids without inserting anything: the caller links each later
    /// with [`HnswIndex::insert_reserved`], in any order and from any threads. Until then a
    /// reserved id is a hole (never returned by a search; [`HnswIndex::vector`] says
    /// [`IndexError::UnknownId`]). Lets a caller fix the ids of vectors that several threads
    /// insert concurrently.
    ///
    /// # Errors
    /// [`IndexError::CapacityExceeded`] if fewer than `n` ids are left (nothing is reserved).
    pub fn reserve(&self, n: usize) -> Result<Range<u32>, IndexError> {
        self.claim(n)
    }

    /// Inserts `vector` as the reserved node `id` and returns up to `k` of its nearest
    /// neighbours, as [`HnswIndex::insert_returning_neighbors`] does.
    ///
    /// # Errors
    /// [`IndexError::UnknownId`] if `id` was not reserved; [`IndexError::InvalidInput`] if it was
    /// already inserted (each reserved id is linked once); otherwise as for
    /// [`HnswIndex::insert`]. On error nothing changes (the id stays reserved, except after the
    /// "already inserted" error).
    pub fn insert_reserved(&self, id: u32, vector: &[f32], k: usize) -> Result<Vec<Neighbor>, IndexError> {
        if id as usize >= self.ids_used() {
            return Err(IndexError::UnknownId { id });
        }
        self.space.validate(vector)?;
        if self.graph.set_flags(id, TAKEN) & (TAKEN | READY) != 0 {
            return Err(IndexError::InvalidInput {
                what: format!("node {id} was already inserted"),
            });
        }
        let p = self.space.prepare(vector);
        let mut s = self.scratch();
        let found = self.insert_prepared(id, &p, &mut s);
        self.release(s);
        Ok(self.nearest_of_walk(&p, found, k))
    }

    /// The best `k` live nodes of an insertion's level-0 walk, with exact distances.
    pub(crate) fn nearest_of_walk(&self, p: &Prepared, mut found: Vec<Cand>, k: usize) -> Vec<Neighbor> {
        found.retain(|c| self.graph.flags(c.id) & (READY | DELETED) == READY);
        self.finish(p, found, k)
    }

    /// Inserts `vectors` (concatenated: `n × dim` floats) on `threads` threads (1 if 0) and
    /// returns the id range they got, in input order. Concurrent searches see each vector as soon
    /// as its own insertion finishes.
    ///
    /// # Errors
    /// As for [`HnswIndex::insert`]; every vector is checked before any is inserted, so a bad
    /// one (or too little room for all) inserts none. A length that is not a multiple of the
    /// dimension is a [`IndexError::DimensionMismatch`].
    pub fn insert_batch(&self, vectors: &[f32], threads: usize) -> Result<Range<u32>, IndexError> {
        let dim = self.dim();
        if vectors.len() % dim != 0 {
            return Err(IndexError::DimensionMismatch {
                expected: dim,
                got: vectors.len() % dim,
            });
        }
        for v in vectors.chunks_exact(dim) {
            self.space.validate(v)?;
        }
        let n = vectors.len() / dim;
        let ids = self.claim(n)?;
        let next = AtomicUsize::new(0);
        let work = || {
            let mut s = self.scratch();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let p = self.space.prepare(&vectors[i * dim..(i + 1) * dim]);
                self.insert_prepared(ids.start + i as u32, &p, &mut s);
            }
            self.release(s);
        };
        std::thread::scope(|scope| {
            for _ in 1..threads.max(1).min(n.max(1)) {
                scope.spawn(work);
            }
            work();
        });
        Ok(ids)
    }

    /// Reserves `n` consecutive ids.
    pub(crate) fn claim(&self, n: usize) -> Result<Range<u32>, IndexError> {
        let capacity = self.capacity();
        let mut cur = self.next_id.load(Ordering::Relaxed);
        loop {
            let end = cur as usize + n;
            if end > capacity {
                return Err(IndexError::CapacityExceeded { capacity });
            }
            match self
                .next_id
                .compare_exchange_weak(cur, end as u32, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(cur..end as u32),
                Err(seen) => cur = seen,
            }
        }
    }

    /// Links the claimed node `id` holding `p` into the graph and marks it READY. Returns the
    /// candidates of its level-0 walk, closest first by walk distance (not filtered: some may
    /// be unfinished or deleted), empty for the first node.
    pub(crate) fn insert_prepared(&self, id: u32, p: &Prepared, s: &mut Scratch) -> Vec<Cand> {
        // SAFETY: `id` was claimed by this call's caller and is not yet linked anywhere, so no
        // other thread reads or writes its row.
        unsafe { self.space.write(id, p) };
        self.link_prepared(id, p, s)
    }

    /// [`insert_prepared`](Self::insert_prepared) for a node whose row is already written.
    pub(crate) fn link_prepared(&self, id: u32, p: &Prepared, s: &mut Scratch) -> Vec<Cand> {
        // The drawn level, or 0 if the reserved upper-level blocks ran out (see `graph`).
        let level = self.graph.init_node(id, self.level_for(id));

        // A node that will become the new top holds the grow lock for its whole insertion, so
        // two such nodes never race to replace the entry point.
        let mut grow_guard = None;
        let needs_grow = |e: Option<(u32, usize)>| e.is_none_or(|(_, top)| level > top);
        if needs_grow(self.entry_point()) {
            grow_guard = Some(self.grow_lock.lock().unwrap_or_else(|e| e.into_inner()));
            if !needs_grow(self.entry_point()) {
                grow_guard = None;
            }
        }
        let Some((ep, top)) = self.entry_point() else {
            self.set_entry_point(id, level);
            self.mark_ready(id);
            return Vec::new();
        };

        let mut cur = Cand {
            dist: self.dist(p, ep),
            id: ep,
        };
        for l in (level + 1..=top).rev() {
            cur = self.greedy(p, cur, l, s);
        }
        let m = self.config.m;
        let ef = self.config.ef_construction;
        // Walk down first, choosing the neighbours of every level; link afterwards, bottom up.
        // Once another node's list at level `l` names `id`, a search may step onto `id` there
        // and descend from it, so `id`'s own lists on `l` and every level below must be
        // complete by then: linking top down (as before) let a search reach `id` on an upper
        // level while its level-0 list was still empty and end with nothing — a miss of nodes
        // indexed long before the search began.
        let mut chosen_per_level: Vec<Vec<u32>> = Vec::with_capacity(level.min(top) + 1);
        let mut level0 = Vec::new();
        for l in (0..=level.min(top)).rev() {
            let mut found = self.search_level(p, &[cur], ef, l, false, s);
            found.retain(|c| c.id != id);
            if let Some(&closest) = found.first() {
                cur = closest;
            }
            chosen_per_level.push(self.select_neighbors(&found, m));
            if l == 0 {
                level0 = found;
            }
        }
        // `chosen_per_level` runs from the top level down. Every own list of `id` (level 0 first)
        // is written before the first back-link names `id`: each back-link is stored with
        // Release after them in this thread, and a reader that loads it with Acquire sees them.
        for (l, chosen) in chosen_per_level.iter().rev().enumerate() {
            self.set_own_links(id, l, chosen);
        }
        for (l, chosen) in chosen_per_level.iter().rev().enumerate() {
            for &n in chosen {
                self.add_link(n, id, l);
            }
        }
        if level > top {
            debug_assert!(grow_guard.is_some() || self.entry.load(Ordering::Relaxed) == NO_ENTRY);
            self.set_entry_point(id, level);
        }
        self.mark_ready(id);
        drop(grow_guard);
        level0
    }

    fn mark_ready(&self, id: u32) {
        self.graph.set_flags(id, READY);
        self.live.fetch_add(1, Ordering::AcqRel);
    }

    /// The paper's neighbour-selection heuristic (Algorithm 4 without extending candidates):
    /// walk the candidates closest first and keep one only if it is closer to the base node than
    /// to every node kept so far; stop at `m`.
    pub(crate) fn select_neighbors(&self, sorted: &[Cand], m: usize) -> Vec<u32> {
        let mut kept: Vec<u32> = Vec::with_capacity(m);
        for c in sorted {
            if kept.len() >= m {
                break;
            }
            // SAFETY: candidates come from walks or link lists (published), or are the calling
            // insert's own fully written node.
            let diverse = kept
                .iter()
                .all(|&k| unsafe { self.space.walk_distance_between(c.id, k) } >= c.dist);
            if diverse {
                kept.push(c.id);
            }
        }
        kept
    }

    /// Gives the node being inserted, `id`, its links at `level`: `chosen`, merged with any
    /// back-links that concurrent inserters added to `id`'s list since its walk began.
    /// `insert_prepared` writes all of `id`'s own lists before any list names `id`, so no other
    /// inserter can find `id` yet and the merge is defensive; were a back-link there,
    /// overwriting it would silently drop the edge (the other node's list names `id`, but `id`
    /// would no longer name it). Over the limit, the heuristic prunes the union, as `add_link`
    /// does.
    pub(crate) fn set_own_links(&self, id: u32, level: usize, chosen: &[u32]) {
        let _g = self.graph.lock(id);
        let mut links = Vec::with_capacity(self.graph.max_links(level) + chosen.len());
        self.graph.read_links(id, level, &mut links);
        if links.is_empty() {
            self.graph.write_links(id, level, chosen);
            return;
        }
        for &c in chosen {
            if !links.contains(&c) {
                links.push(c);
            }
        }
        let max = self.graph.max_links(level);
        if links.len() <= max {
            self.graph.write_links(id, level, &links);
            return;
        }
        let mut cands: Vec<Cand> = links
            .iter()
            // SAFETY: `id` is this insert's own fully written node; every linked id was
            // published by its inserter before it was linked.
            .map(|&x| Cand {
                dist: unsafe { self.space.walk_distance_between(id, x) },
                id: x,
            })
            .collect();
        cands.sort_unstable();
        let kept = self.select_neighbors(&cands, max);
        self.graph.write_links(id, level, &kept);
    }

    /// Adds `new` to the links of `node` at `level`; if the list is full, re-selects the best
    /// `max_links` of old links plus `new` with the heuristic.
    pub(crate) fn add_link(&self, node: u32, new: u32, level: usize) {
        let _g = self.graph.lock(node);
        let mut links = Vec::with_capacity(self.graph.max_links(level) + 1);
        self.graph.read_links(node, level, &mut links);
        if links.contains(&new) {
            return;
        }
        let max = self.graph.max_links(level);
        if links.len() < max {
            links.push(new);
            self.graph.write_links(node, level, &links);
            return;
        }
        links.push(new);
        let mut cands: Vec<Cand> = links
            .iter()
            // SAFETY: `node` and every linked id are published (or `new`, written by this thread).
            .map(|&x| Cand {
                dist: unsafe { self.space.walk_distance_between(node, x) },
                id: x,
            })
            .collect();
        cands.sort_unstable();
        let chosen = self.select_neighbors(&cands, max);
        self.graph.write_links(node, level, &chosen);
    }
}

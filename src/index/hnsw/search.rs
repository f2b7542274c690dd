//! The graph walks: greedy descent on the upper levels, the best-first walk of one level, and
//! the public `search`.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;

use super::graph::{DELETED, READY};
use super::visited::Visited;
use super::{HnswIndex, Neighbor};
use crate::index::IndexError;
use crate::index::space::{Prepared, Quantization};

/// Cache lines of each neighbour's walk row prefetched before its distance is computed. The
/// rest of the row is left to the hardware's stream prefetcher. Tried 4, 8 and 13 (a whole
/// 768-dim int8 row) on the noisy 2-core AMD EPYC dev VM: 8 was at least as good as the others.
const PREFETCH_LINES: usize = 8;
/// A node and its distance, ordered by distance (then id, so the order is total).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cand {
    pub(crate) dist: f32,
    pub(crate) id: u32,
}

impl PartialEq for Cand {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cand {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.dist.total_cmp(&other.dist).then(self.id.cmp(&other.id))
    }
}

/// Per-walk scratch memory, reused across the levels of one operation.
pub(crate) struct Scratch {
    pub(crate) visited: Visited,
    links: Vec<u32>,
    fresh: Vec<u32>,
    candidates: BinaryHeap<Reverse<Cand>>,
    results: BinaryHeap<Cand>,
}

impl HnswIndex {
    pub(crate) fn scratch(&self) -> Scratch {
        Scratch {
            visited: self.visited.take(),
            links: Vec::with_capacity(2 * self.config.m),
            fresh: Vec::with_capacity(2 * self.config.m),
            candidates: BinaryHeap::new(),
            results: BinaryHeap::new(),
        }
    }

    pub(crate) fn release(&self, s: Scratch) {
        self.visited.give_back(s.visited);
    }

    /// Walk distance from a prepared vector to a published node.
    #[inline(always)]
    pub(crate) fn dist(&self, p: &Prepared, id: u32) -> f32 {
        // SAFETY: every id reaching here came from the entry point or a link list, both
        // published with Release after the node's row was written (see `graph`), or is the
        // caller's own fully written node.
        unsafe { self.space.walk_distance(p, id) }
    }

    /// Greedy descent at one level from `cur`: move to the closest neighbour until none is closer.
    pub(crate) fn greedy(&self, p: &Prepared, mut cur: Cand, level: usize, s: &mut Scratch) -> Cand {
        loop {
            let mut moved = false;
            self.graph.read_links(cur.id, level, &mut s.links);
            for &n in &s.links {
                self.space.prefetch(n, PREFETCH_LINES);
            }
            for &n in &s.links {
                let d = self.dist(p, n);
                if d < cur.dist {
                    cur = Cand { dist: d, id: n };
                    moved = true;
                }
            }
            if !moved {
                return cur;
            }
        }
    }

    /// Best-first walk at `level` from `entries`, keeping the `ef` closest nodes seen. With
    /// `only_live`, nodes not yet READY or DELETED are walked through but not kept. Returns the
    /// kept nodes, closest first.
    pub(crate) fn search_level(
        &self,
        p: &Prepared,
        entries: &[Cand],
        ef: usize,
        level: usize,
        only_live: bool,
        s: &mut Scratch,
    ) -> Vec<Cand> {
        s.visited.reset();
        s.candidates.clear();
        s.results.clear();
        let keep = |id: u32| !only_live || self.graph.flags(id) & (READY | DELETED) == READY;
        for &e in entries {
            if !s.visited.check_and_mark(e.id) {
                s.candidates.push(Reverse(e));
                if keep(e.id) {
                    s.results.push(e);
                }
            }
        }
        while s.results.len() > ef {
            s.results.pop();
        }
        let mut bound = if s.results.len() >= ef {
            s.results.peek().map_or(f32::INFINITY, |c| c.dist)
        } else {
            f32::INFINITY
        };
        while let Some(Reverse(c)) = s.candidates.pop() {
            if c.dist > bound {
                break;
            }
            self.graph.read_links(c.id, level, &mut s.links);
            s.fresh.clear();
            for &n in &s.links {
                if !s.visited.check_and_mark(n) {
                    self.space.prefetch(n, PREFETCH_LINES);
                    s.fresh.push(n);
                }
            }
            for &n in &s.fresh {
                let d = self.dist(p, n);
                if d < bound || s.results.len() < ef {
                    if level == 0 {
                        // Likely to be expanded soon: start loading its links.
                        self.graph.prefetch_links0(n);
                    }
                    s.candidates.push(Reverse(Cand { dist: d, id: n }));
                    if keep(n) {
                        s.results.push(Cand { dist: d, id: n });
                        if s.results.len() > ef {
                            s.results.pop();
                        }
                        if s.results.len() >= ef {
                            bound = s.results.peek().map_or(f32::INFINITY, |c| c.dist);
                        }
                    }
                }
            }
        }
        let mut out: Vec<Cand> = s.results.drain().collect();
        out.sort_unstable();
        out
    }

    /// The `k` nearest live vectors to `query`, closest first, found with a walk of width
    /// `max(ef, k)`. Safe to call while other threads insert and delete.
    ///
    /// An empty index (or one whose vectors are all deleted) gives an empty result, not an
    /// error; fewer than `k` results come back only when fewer than `k` live vectors are reachable.
    ///
    /// # Errors
    /// [`IndexError::InvalidInput`] if `k` is 0; [`IndexError::DimensionMismatch`] or
    /// [`IndexError::NonFinite`] for a bad query (or a zero query with the cosine metric).
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Neighbor>, IndexError> {
        if k == 0 {
            return Err(IndexError::InvalidInput {
                what: "k must be at least 1".into(),
            });
        }
        self.space.validate(query)?;
        let Some((ep, top)) = self.entry_point() else {
            return Ok(Vec::new());
        };
        let p = self.space.prepare(query);
        let mut s = self.scratch();
        let mut cur = Cand {
            dist: self.dist(&p, ep),
            id: ep,
        };
        for level in (1..=top).rev() {
            cur = self.greedy(&p, cur, level, &mut s);
        }
        let found = self.search_level(&p, &[cur], ef.max(k), 0, true, &mut s);
        self.release(s);
        Ok(self.finish(&p, found, k))
    }

    /// Turns walk results into the answer: exact f32 re-ranking if the walk was quantised.
    pub(crate) fn finish(&self, p: &Prepared, mut found: Vec<Cand>, k: usize) -> Vec<Neighbor> {
        if self.space.quantization() == Quantization::Int8 {
            for c in &found {
                self.space.prefetch_exact(c.id, PREFETCH_LINES);
            }
            for c in &mut found {
                // SAFETY: `c.id` came from the walk, so it is published (see `dist`).
                c.dist = self.space.exact_distance(p, unsafe { self.space.vector(c.id) });
            }
            found.sort_unstable();
        }
        found.truncate(k);
        found
            .into_iter()
            .map(|c| Neighbor {
                id: c.id,
                distance: c.dist,
            })
            .collect()
    }
}

impl HnswIndex {
    /// [`HnswIndex::search`] for many queries (concatenated: `n × dim` floats) on `threads`
    /// threads (1 if 0); result `i` belongs to query `i`.
    ///
    /// # Errors
    /// As for [`HnswIndex::search`]; every query is checked before any search runs.
    pub fn search_batch(
        &self,
        queries: &[f32],
        k: usize,
        ef: usize,
        threads: usize,
    ) -> Result<Vec<Vec<Neighbor>>, IndexError> {
        let dim = self.dim();
        if queries.len() % dim != 0 {
            return Err(IndexError::DimensionMismatch {
                expected: dim,
                got: queries.len() % dim,
            });
        }
        if k == 0 {
            return Err(IndexError::InvalidInput {
                what: "k must be at least 1".into(),
            });
        }
        for q in queries.chunks_exact(dim) {
            self.space.validate(q)?;
        }
        let n = queries.len() / dim;
        /// Queries a thread claims at a time: enough to amortise the shared counter, few
        /// enough to balance the threads (a guess).
        const BLOCK: usize = 8;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = || -> Result<Vec<(usize, Vec<Neighbor>)>, IndexError> {
            let mut out = Vec::new();
            loop {
                let start = next.fetch_add(BLOCK, std::sync::atomic::Ordering::Relaxed);
                if start >= n {
                    return Ok(out);
                }
                for i in start..(start + BLOCK).min(n) {
                    out.push((i, self.search(&queries[i * dim..(i + 1) * dim], k, ef)?));
                }
            }
        };
        type Part = Result<Vec<(usize, Vec<Neighbor>)>, IndexError>;
        let parts: Vec<Part> = std::thread::scope(|scope| {
            let handles: Vec<_> = (1..threads.max(1)).map(|_| scope.spawn(work)).collect();
            let mut parts = vec![work()];
            for h in handles {
                parts.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
            parts
        });
        let mut results = vec![Vec::new(); n];
        for part in parts {
            for (i, r) in part? {
                results[i] = r;
            }
        }
        Ok(results)
    }
}

//! A shard's reads for recall and completion: the segments' HNSW search plus the exact scan of
//! the append buffer (see the module docs of `shard` for why nothing falls between the two),
//! masked similarity and rows for completion, and the one merger of hits, [`top_k`].

use super::{Shard, SpaceShard, similarity};

/// What a shard's search found.
#[derive(Debug, Default)]
pub(crate) struct ShardHits {
    /// `(episode id, similarity)`, best first, deduplicated.
    pub(crate) hits: Vec<(u64, f32)>,
    pub(crate) scanned: usize,
    pub(crate) segments: usize,
}

/// Buffer rows kept per wanted hit by the int8 pass of the append-buffer scan, for the exact
/// f32 re-rank (at least [`BUFFER_SHORTLIST_MIN`]). A guess: int8 (one scale per vector)
/// rarely moves a true top-k row this far down.
const BUFFER_SHORTLIST_PER_HIT: usize = 4;

/// The smallest shortlist of the append-buffer scan.
const BUFFER_SHORTLIST_MIN: usize = 64;

impl Shard {
    /// Top `k` `(id, similarity)` of the segments only (live episodes), each segment walked
    /// with `ef` (at least `k`).
    fn search_segments(
        &self,
        sp: &SpaceShard,
        q: &[f32],
        k: usize,
        ef: usize,
        count: &mut usize,
    ) -> Vec<(u64, f32)> {
        let segs = sp.segments();
        *count = 0;
        let mut found = Vec::new();
        for seg in &segs {
            // Nothing linked yet (only staged rows, which the buffer scan covers): not searched.
            if seg.index.is_empty() {
                continue;
            }
            *count += 1;
            let res = seg.index.search(q, k, ef.max(k));
            if let Ok(ns) = res {
                found.extend(
                    ns.iter()
                        .map(|n| (seg.base + n.id as usize, similarity(n.distance))),
                );
            }
        }
        let d = sp.read();
        found
            .into_iter()
            .filter_map(|(slot, s)| d.meta.get(slot).filter(|m| !m.forgotten).map(|m| (m.id, s)))
            .collect()
    }

    /// The `k` live episodes of `space` most similar to `q` (unit): segments, then the append
    /// buffer scanned row by row (see the module docs for why nothing is missed).
    pub(crate) fn search(&self, space: u16, q: &[f32], k: usize) -> ShardHits {
        let sp = &self.spaces[space as usize];
        let a = sp.absorbed();
        let mut segments = 0;
        let mut hits = self.search_segments(sp, q, k, self.settings.index.ef_search, &mut segments);
        let d = sp.read();
        let segs = sp.segments();
        let t = d.meta.len();
        let shortlist = (BUFFER_SHORTLIST_PER_HIT * k).max(BUFFER_SHORTLIST_MIN);
        for seg in &segs {
            let (lo, hi) = (a.max(seg.base), t.min(seg.base + seg.index.capacity()));
            if lo >= hi {
                continue;
            }
            let local = (lo - seg.base) as u32..(hi - seg.base) as u32;
            let keep = |node: u32| !d.meta[seg.base + node as usize].forgotten;
            if let Ok(found) = seg.index.scan(q, local, k, shortlist, keep) {
                hits.extend(
                    found
                        .iter()
                        .map(|n| (d.meta[seg.base + n.id as usize].id, similarity(n.distance))),
                );
            }
        }
        drop(d);
        ShardHits {
            hits: top_k(hits, k),
            scanned: t.saturating_sub(a),
            segments,
        }
    }

    /// Cosine similarity on the dimensions where `mask` is true, for every live episode of
    /// `space` among `ids` (unknown ids are skipped). `q` is the masked query (zeros elsewhere).
    pub(crate) fn masked_similarity(
        &self,
        space: u16,
        q: &[f32],
        mask: &[bool],
        ids: &[u64],
    ) -> Vec<(u64, f32)> {
        let qn: f32 = q
            .iter()
            .zip(mask)
            .filter(|p| *p.1)
            .map(|p| p.0 * p.0)
            .sum::<f32>()
            .sqrt();
        let map = self.ids();
        let sp = &self.spaces[space as usize];
        let d = sp.read();
        let segs = sp.segments();
        ids.iter()
            .filter_map(|id| {
                let &(s, slot) = map.get(id)?;
                let m = d.meta.get(slot as usize).filter(|m| s == space && !m.forgotten)?;
                let row = SpaceShard::row(&segs, slot as usize)?;
                let (mut dot, mut nn) = (0.0f32, 0.0f32);
                for ((x, y), &on) in q.iter().zip(row).zip(mask) {
                    if on {
                        dot += x * y;
                        nn += y * y;
                    }
                }
                let den = qn * nn.sqrt();
                Some((m.id, if den > 0.0 { dot / den } else { 0.0 }))
            })
            .collect()
    }

    /// Rows of live episodes of `space` among `ids`.
    pub(crate) fn rows(&self, space: u16, ids: &[u64]) -> Vec<(u64, Vec<f32>)> {
        let map = self.ids();
        let sp = &self.spaces[space as usize];
        let d = sp.read();
        let segs = sp.segments();
        ids.iter()
            .filter_map(|id| {
                let &(s, slot) = map.get(id)?;
                d.meta.get(slot as usize).filter(|m| s == space && !m.forgotten)?;
                Some((*id, SpaceShard::row(&segs, slot as usize)?.to_vec()))
            })
            .collect()
    }
}

/// Best `k` by similarity (ties by id), one entry per id.
pub(crate) fn top_k(mut hits: Vec<(u64, f32)>, k: usize) -> Vec<(u64, f32)> {
    hits.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    let mut seen = std::collections::HashSet::new();
    hits.retain(|h| seen.insert(h.0));
    hits.truncate(k);
    hits
}

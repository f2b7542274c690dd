//! Routing: which shard holds an episode.
//!
//! **Rule:** episode `id` lives on shard `splitmix64(id) mod shards`. The hash spreads
//! sequential ids evenly; the rule depends only on the id and the shard count, so any thread
//! finds an episode's shard without a lookup table, and an engine opened again with the same
//! shard count routes every id the same way.

use crate::rng::SplitMix64;

/// The shard of episode `id` among `shards` (≥ 1).
pub fn shard_of(id: u64, shards: usize) -> usize {
    let h = SplitMix64::new(id).next_u64();
    (h % shards.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_spread_evenly() {
        let mut counts = [0usize; 4];
        for id in 0..40_000 {
            counts[shard_of(id, 4)] += 1;
        }
        assert!(counts.iter().all(|&c| (9_000..11_000).contains(&c)), "{counts:?}");
        assert_eq!(shard_of(7, 1), 0);
    }
}

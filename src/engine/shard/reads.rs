//! What a shard's workers do for other shards and for the caller's thread, when those send
//! messages instead of touching the shard's data: write association edges (with the owner
//! check), and answer scoring and lookup requests.

use super::{Shard, current_shard};
use crate::spread::SpreadError;

impl Shard {
    /// Whether the running thread may write this shard's graph: only while running one of this
    /// shard's tasks on a worker ([`Scope`](super::Scope)). Everything else sends a message.
    pub(crate) fn owns_current_thread(&self) -> bool {
        current_shard() == Some(self.index)
    }

    /// Adds the edge `source → target` to this shard's graph (`source` lives here).
    ///
    /// Called only by this shard's workers: a debug build panics otherwise, so every test of the
    /// engine checks that no graph write crosses shards.
    ///
    /// # Errors
    /// As [`AssocGraph::associate`](crate::spread::AssocGraph::associate).
    pub(crate) fn write_edge(&self, source: u64, target: u64, weight: f32) -> Result<(), SpreadError> {
        debug_assert!(
            self.owns_current_thread(),
            "edge {source} → {target} written on shard {} by a thread running {:?}",
            self.index,
            current_shard()
        );
        self.graph.associate(source, target, weight)
    }

    /// The space of each of `ids` that is live here, `None` for the others.
    pub(crate) fn locate_many(&self, ids: &[u64]) -> Vec<(u64, Option<u16>)> {
        ids.iter()
            .map(|&id| (id, self.locate(id).map(|(space, _)| space)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::config::{AssociationParams, IndexParams};
    use crate::engine::log::NoLog;
    use crate::engine::shard::{Scope, ShardSettings};

    fn shard(index: usize) -> Shard {
        let settings = ShardSettings {
            shards: 3,
            dim: 4,
            kernels: *crate::index::Kernels::detect(),
            index: IndexParams::default(),
            assoc: AssociationParams {
                max_episodes_per_shard: 64,
                ..AssociationParams::default()
            },
            space_names: vec!["default".into()],
            keep_similar: false,
        };
        Shard::new(index, (0, 0, 1), Arc::new(settings), Box::new(NoLog)).unwrap()
    }

    #[test]
    fn a_shard_task_may_write_its_own_graph() {
        let s = shard(2);
        let scope = Scope::enter(2);
        s.graph.add_node(7).unwrap();
        s.write_edge(7, 8, 0.5).unwrap();
        scope.leave();
        assert_eq!(s.graph.out_edges(7).unwrap(), vec![(8, 0.5)]);
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "written on shard 2 by a thread running Some(1)")]
    fn another_shards_task_may_not() {
        let s = shard(2);
        s.graph.add_node(7).unwrap();
        let _scope = Scope::enter(1);
        let _ = s.write_edge(7, 8, 0.5);
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "by a thread running None")]
    fn nor_a_thread_that_is_no_worker() {
        let s = shard(2);
        s.graph.add_node(7).unwrap();
        let _ = s.write_edge(7, 8, 0.5);
    }
}

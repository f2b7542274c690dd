//! Model check (loom) of the edge-block publication: a writer appends edges to one node —
//! within a block, then growing it into a new block — while a reader reads the published prefix.
//! The reader must see a prefix of the writer's edges, each edge whole. Run:
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --lib --release spread::loom`.

use std::sync::Arc;

use loom::thread;

use super::edges::{self, NO_LOCAL};
use super::node::HotNode;
use crate::alloc::NodeArena;

#[test]
fn readers_see_a_whole_prefix_while_blocks_grow() {
    loom::model(|| {
        let arena = Arc::new(NodeArena::on_node(0, 4096).expect("arena"));
        let node = Arc::new(HotNode::new(7));
        let writer = {
            let (arena, node) = (arena.clone(), node.clone());
            thread::spawn(move || {
                // Initial capacity 1: the second and third appends each grow the block.
                for t in 1..=3u64 {
                    edges::append(&node, &arena, 1, t, NO_LOCAL, t as f32 * 0.5).expect("append");
                }
            })
        };
        let seen: Vec<(u64, f32)> = edges::published(&node)
            .iter()
            .map(|e| (e.target, e.weight()))
            .collect();
        for (i, &(t, w)) in seen.iter().enumerate() {
            assert_eq!(t, i as u64 + 1, "not a prefix: {seen:?}");
            assert_eq!(w, t as f32 * 0.5, "torn edge: {seen:?}");
        }
        writer.join().expect("writer");
        assert_eq!(edges::published(&node).len(), 3);
        assert_eq!(node.degree(), 3);
    });
}

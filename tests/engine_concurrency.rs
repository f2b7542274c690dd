//! Read-your-writes under concurrency: while several threads observe (and the index absorbs and
//! grows by segments), every episode whose `observe` has returned is found by every recall that
//! starts afterwards, on the observing thread and on any other; nothing is lost or duplicated.

mod engine_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine_support::{Rng, small};
use locus::engine::{Cue, Episode, EpisodeId, IndexParams, ShardCount};

#[test]
fn every_returned_observe_is_visible_to_every_later_recall() {
    let dim = 32;
    const WRITERS: u64 = 3;
    const PER: u64 = 300;
    // Small segments, so the index grows several times while the test runs.
    let engine = Arc::new(
        small(dim)
            .shards(ShardCount::Exactly(2))
            .index(IndexParams {
                segment_capacity: 128,
                ef_search: 128,
                ..IndexParams::default()
            })
            .open()
            .unwrap(),
    );
    /// (episode id, embedding) of every observe that returned, in return order.
    type Published = Arc<Mutex<Vec<(u64, Vec<f32>)>>>;
    let published: Published = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (engine, published) = (engine.clone(), published.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(100 + w);
                for i in 0..PER {
                    let v = rng.vector(dim);
                    let id = engine
                        .observe(Episode::new(v.clone()).in_stream(format!("w{w}")))
                        .unwrap();
                    // Read-your-writes on the observing thread.
                    let r = engine.recall(&Cue::new(v.clone(), 5)).unwrap();
                    assert!(!r.partial);
                    assert!(
                        r.hits.iter().any(|h| h.id == id),
                        "writer {w} episode {i} ({id}) not recalled: {:?}",
                        r.hits
                    );
                    published.lock().unwrap().push((id.0, v));
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (engine, published, done, checked) =
                (engine.clone(), published.clone(), done.clone(), checked.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(200 + r);
                while !done.load(Ordering::Acquire) {
                    let pick = {
                        let p = published.lock().unwrap();
                        if p.is_empty() {
                            None
                        } else {
                            Some(p[(rng.next_u64() % p.len() as u64) as usize].clone())
                        }
                    };
                    let Some((id, v)) = pick else {
                        std::thread::yield_now();
                        continue;
                    };
                    let res = engine.recall(&Cue::new(v, 5)).unwrap();
                    assert!(
                        res.hits.iter().any(|h| h.id.0 == id),
                        "reader {r}: {id} not recalled"
                    );
                    checked.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Release);
    for r in readers {
        r.join().unwrap();
    }
    assert!(checked.load(Ordering::Relaxed) > 0);
    let published = published.lock().unwrap();
    assert_eq!(engine.len(), published.len());
    let mut ids: Vec<u64> = published.iter().map(|p| p.0).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), (WRITERS * PER) as usize, "no id handed out twice");
    assert!(engine.wait_indexed(Duration::from_secs(300)));
    let st = engine.stats();
    assert_eq!(st.episodes, 900);
    assert!(st.segments >= 7, "grew by segments: {st:?}");
    for (id, v) in published.iter().step_by(37) {
        let r = engine.recall(&Cue::new(v.clone(), 5)).unwrap();
        assert!(r.hits.iter().any(|h| h.id.0 == *id));
        assert_eq!(engine.get(EpisodeId(*id)).unwrap().id.0, *id);
    }
}

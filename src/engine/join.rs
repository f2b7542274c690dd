//! A countdown that hands something over once every part has arrived: how an observation's
//! reply waits for the shards that write its edges (see `outbox.rs`) without a worker ever
//! waiting. Model-checked with loom (below).

use crate::sync::{AtomicUsize, Mutex, Ordering};

/// What a [`Join`] hands over once every part has arrived.
pub(crate) trait Deliver {
    /// Hands it over (called once).
    fn deliver(self);
}

/// An observation's reply, held until every shard that got some of its edges has written them:
/// each part [`arrive`](Join::arrive)s once, and the last one delivers. A join dropped before
/// every part arrived (the messages handed back unrun at shutdown) delivers on drop, so the
/// observer, whose episode is stored, is never stranded. The countdown is model-checked
/// (`loom` below).
pub(crate) struct Join<T: Deliver> {
    remaining: AtomicUsize,
    held: Mutex<Option<T>>,
}

impl<T: Deliver> Join<T> {
    pub(crate) fn new(parts: usize, held: T) -> Self {
        Self {
            remaining: AtomicUsize::new(parts),
            held: Mutex::new(Some(held)),
        }
    }

    /// One part done; the last delivers.
    pub(crate) fn arrive(&self) {
        // AcqRel: the last part sees every earlier part's writes before it delivers.
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.deliver();
        }
    }

    fn deliver(&self) {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = held {
            h.deliver();
        }
    }
}

impl<T: Deliver> Drop for Join<T> {
    fn drop(&mut self) {
        self.deliver();
    }
}

#[cfg(all(loom, test))]
mod loom {
    //! Model check of the join: parts arriving on several threads deliver exactly once, only
    //! after the last arrival, and a join dropped early still delivers once. Run:
    //! `RUSTFLAGS="--cfg loom" cargo test --release --lib --target-dir target/loom engine::join::loom`.

    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::thread;

    use super::{Deliver, Join};

    /// Counts deliveries, and records how many parts had arrived when it was delivered.
    struct Probe {
        delivered: Arc<AtomicUsize>,
        arrived: Arc<AtomicUsize>,
        seen: Arc<AtomicUsize>,
    }

    impl Deliver for Probe {
        fn deliver(self) {
            self.seen
                .store(self.arrived.load(Ordering::SeqCst), Ordering::SeqCst);
            self.delivered.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn probe() -> (Probe, Arc<AtomicUsize>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (d, a, s) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        (
            Probe {
                delivered: d.clone(),
                arrived: a.clone(),
                seen: s.clone(),
            },
            d,
            a,
            s,
        )
    }

    #[test]
    fn parts_on_three_threads_deliver_once_after_the_last() {
        loom::model(|| {
            let (p, delivered, arrived, seen) = probe();
            let join = Arc::new(Join::new(3, p));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let (join, arrived) = (join.clone(), arrived.clone());
                    thread::spawn(move || {
                        arrived.fetch_add(1, Ordering::SeqCst);
                        join.arrive();
                    })
                })
                .collect();
            arrived.fetch_add(1, Ordering::SeqCst);
            join.arrive();
            for t in threads {
                t.join().expect("part");
            }
            assert_eq!(delivered.load(Ordering::SeqCst), 1);
            assert_eq!(
                seen.load(Ordering::SeqCst),
                3,
                "delivered before the last part arrived"
            );
            drop(join);
            assert_eq!(delivered.load(Ordering::SeqCst), 1, "delivered again on drop");
        });
    }

    #[test]
    fn a_join_dropped_early_delivers_once() {
        loom::model(|| {
            let (p, delivered, _, _) = probe();
            let join = Arc::new(Join::new(2, p));
            let other = {
                let join = join.clone();
                thread::spawn(move || join.arrive())
            };
            drop(join);
            other.join().expect("part");
            assert_eq!(delivered.load(Ordering::SeqCst), 1);
        });
    }
}

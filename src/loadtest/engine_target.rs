//! [`EngineTarget`]: the load driven against an in-process [`Engine`].
//!
//! Spaces are named `s0`, `s1`, …; preloaded episode `i` goes to space `i % spaces` and its id
//! is kept so `associate` can name it. Engine errors map to outcomes: `Overloaded` and
//! `QuotaExceeded` are rejections (admission control), every other error is counted by its kind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::engine::{
    AdmissionLimits, Cue, Engine, EngineError, Episode, EpisodeId, IndexParams, ShardCount, SpreadParams,
};

use super::scenario::Scenario;
use super::target::{LoadTarget, Outcome};
use super::workload::{Op, Workload};

/// The engine under load.
pub struct EngineTarget {
    engine: Engine,
    spaces: Vec<String>,
    spread: SpreadParams,
    /// Preloaded episode ids by ordinal (filled by `preload`).
    ids: std::sync::OnceLock<Vec<EpisodeId>>,
    /// How long the index took to absorb the preload after the last observe (ms).
    absorb_ms: AtomicU64,
}

impl std::fmt::Debug for EngineTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineTarget")
            .field("spaces", &self.spaces.len())
            .finish_non_exhaustive()
    }
}

/// The label of an engine error in the results.
pub fn error_kind(e: &EngineError) -> Outcome {
    match e {
        EngineError::Overloaded { .. } | EngineError::QuotaExceeded { .. } => Outcome::Rejected,
        EngineError::DimensionMismatch { .. } => Outcome::Err("dimension_mismatch"),
        EngineError::NonFinite { .. } => Outcome::Err("non_finite"),
        EngineError::ZeroVector => Outcome::Err("zero_vector"),
        EngineError::UnknownEpisode { .. } => Outcome::Err("unknown_episode"),
        EngineError::DuplicateId { .. } => Outcome::Err("duplicate_id"),
        EngineError::UnknownSpace { .. } => Outcome::Err("unknown_space"),
        EngineError::TimedOut { .. } => Outcome::Err("timed_out"),
        EngineError::InvalidInput { .. } => Outcome::Err("invalid_input"),
        EngineError::Closed => Outcome::Err("closed"),
        _ => Outcome::Err("other"),
    }
}

fn outcome<T>(r: Result<T, EngineError>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(e) => error_kind(&e),
    }
}

impl EngineTarget {
    /// Opens an engine for the scenario: its dimension, spaces and `[engine]` overrides.
    ///
    /// # Errors
    /// The engine's error when it cannot open (bad override, no placement plan, …).
    pub fn open(s: &Scenario) -> Result<Self, EngineError> {
        let o = &s.engine;
        let spaces: Vec<String> = (0..s.data.spaces).map(|i| format!("s{i}")).collect();
        let mut index = IndexParams::default();
        if let Some(v) = o.m {
            index.m = v;
        }
        if let Some(v) = o.ef_construction {
            index.ef_construction = v;
        }
        if let Some(v) = o.ef_search {
            index.ef_search = v;
        }
        let mut b = Engine::builder().dimension(s.data.dimension).index(index);
        if let Some(n) = o.shards {
            b = b.shards(ShardCount::Exactly(n));
        }
        if let Some(q) = o.max_queue_depth {
            b = b.admission(AdmissionLimits {
                queue_capacity: [q; 3],
                ..AdmissionLimits::default()
            });
        }
        for name in &spaces {
            b = b.space(name.clone(), usize::MAX);
        }
        let mut spread = SpreadParams::default();
        if let Some(h) = o.spread_hops {
            spread.max_hops = u32::try_from(h).unwrap_or(u32::MAX);
        }
        Ok(EngineTarget {
            engine: b.open()?,
            spaces,
            spread,
            ids: std::sync::OnceLock::new(),
            absorb_ms: AtomicU64::new(0),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn space(&self, op: &Op) -> &str {
        &self.spaces[op.space as usize % self.spaces.len()]
    }

    /// Observes one episode, retrying while the engine says it is overloaded.
    fn observe_retrying(&self, ep: Episode) -> Result<EpisodeId, EngineError> {
        loop {
            match self.engine.observe(ep.clone()) {
                Err(EngineError::Overloaded { retry_after, .. }) => {
                    std::thread::sleep(
                        retry_after.clamp(Duration::from_micros(100), Duration::from_millis(100)),
                    );
                }
                other => return other,
            }
        }
    }
}

impl LoadTarget for EngineTarget {
    fn name(&self) -> String {
        let shards = self.engine.shard_count();
        format!(
            "engine ({shards} shard{}, kernels {})",
            if shards == 1 { "" } else { "s" },
            self.engine.kernels()
        )
    }

    fn preload(&self, w: &Workload, progress: &dyn Fn(u64)) -> Result<(), String> {
        let n = w.data().preload;
        let len = usize::try_from(n).map_err(|_| format!("preload {n} does not fit in memory"))?;
        let threads = std::thread::available_parallelism()
            .map_or(2, |p| p.get())
            .clamp(1, 8);
        let mut ids = vec![EpisodeId(0); len];
        let chunk = len.div_ceil(threads).max(1);
        let result: Result<(), String> = std::thread::scope(|scope| {
            let handles: Vec<_> = ids
                .chunks_mut(chunk)
                .enumerate()
                .map(|(c, slots)| {
                    scope.spawn(move || -> Result<(), String> {
                        let mut v = Vec::new();
                        for (k, slot) in slots.iter_mut().enumerate() {
                            let i = (c * chunk + k) as u64;
                            w.preload_embedding(i, &mut v);
                            let ep = Episode::new(v.clone())
                                .in_space(self.spaces[w.preload_space(i) as usize].clone());
                            *slot = self
                                .observe_retrying(ep)
                                .map_err(|e| format!("preload episode {i}: {e}"))?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join().map_err(|_| "a preload thread panicked".to_string())??;
            }
            Ok(())
        });
        result?;
        progress(n);
        let t = std::time::Instant::now();
        if !self.engine.wait_indexed(Duration::from_secs(600)) {
            return Err("the index did not absorb the preload within 600 s".into());
        }
        self.absorb_ms
            .store(t.elapsed().as_millis() as u64, Ordering::Relaxed);
        let _ = self.ids.set(ids);
        Ok(())
    }

    fn observe(&self, op: &Op, embedding: &[f32]) -> Outcome {
        outcome(
            self.engine
                .observe(Episode::new(embedding.to_vec()).in_space(self.space(op).to_string())),
        )
    }

    fn recall(&self, op: &Op, embedding: &[f32]) -> Outcome {
        outcome(
            self.engine
                .recall(&Cue::new(embedding.to_vec(), op.k).in_space(self.space(op).to_string())),
        )
    }

    fn recall_spread(&self, op: &Op, embedding: &[f32]) -> Outcome {
        outcome(
            self.engine.recall(
                &Cue::new(embedding.to_vec(), op.k)
                    .in_space(self.space(op).to_string())
                    .with_spread(self.spread.clone()),
            ),
        )
    }

    fn complete(&self, op: &Op, embedding: &[f32]) -> Outcome {
        let known = embedding.len().div_ceil(2);
        let mask: Vec<bool> = (0..embedding.len()).map(|i| i < known).collect();
        let partial: Vec<f32> = embedding
            .iter()
            .enumerate()
            .map(|(i, &x)| if i < known { x } else { 0.0 })
            .collect();
        outcome(
            self.engine
                .complete_in(Some(self.space(op)), &partial, &mask, op.k),
        )
    }

    fn associate(&self, op: &Op) -> Outcome {
        let Some(ids) = self.ids.get() else {
            return Outcome::Err("no_preload");
        };
        match (ids.get(op.pair.0 as usize), ids.get(op.pair.1 as usize)) {
            (Some(&a), Some(&b)) => outcome(self.engine.associate(a, b, op.weight)),
            _ => Outcome::Err("no_preload"),
        }
    }

    fn metrics_text(&self) -> Option<String> {
        Some(self.engine.metrics_text())
    }

    fn metrics_snapshot(&self) -> Option<serde_json::Value> {
        let mut v = serde_json::to_value(self.engine.metrics_snapshot()).ok()?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "loadtest_preload_absorb_ms".into(),
                self.absorb_ms.load(Ordering::Relaxed).into(),
            );
            obj.insert("episodes".into(), self.engine.len().into());
        }
        Some(v)
    }
}

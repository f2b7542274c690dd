//! The engine end to end: observe a stream of episodes, recall by similarity, recall with
//! spreading activation, complete a partial pattern, and print the metrics.
//!
//! Run: `cargo run --release --example engine`

use locus::engine::{Cue, Engine, EngineError, Episode, SpreadParams};

fn main() -> Result<(), EngineError> {
    let dim = 64;
    let engine = Engine::builder()
        .dimension(dim)
        .space("tenant-b", 10_000)
        .open()?;
    println!(
        "{} shard(s), kernels {}, degradations: {:?}",
        engine.shard_count(),
        engine.kernels(),
        engine.degradations()
    );

    // A day as a stream of episodes: each is associated with the one before it.
    let mut state = 7u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut day = Vec::new();
    for hour in 0..24u64 {
        let embedding: Vec<f32> = (0..dim).map(|_| next()).collect();
        let id = engine.observe(
            Episode::new(embedding.clone())
                .with_timestamp(hour * 3_600_000)
                .with_payload(format!("hour {hour}"))
                .in_stream("day-1"),
        )?;
        day.push((id, embedding));
    }

    // Recall by similarity: a noisy copy of hour 9 finds hour 9.
    let (nine, e9) = &day[9];
    let noisy: Vec<f32> = e9.iter().map(|x| x + 0.05 * next()).collect();
    let r = engine.recall(&Cue::new(noisy.clone(), 3))?;
    println!(
        "nearest to a noisy hour 9: {:?}",
        r.hits.iter().map(|h| h.id).collect::<Vec<_>>()
    );
    assert_eq!(r.hits[0].id, *nine);

    // With spreading: the stream's neighbours of hour 9 (hours 8 and 10) come up too.
    let r = engine.recall(&Cue::new(noisy, 3).with_spread(SpreadParams::default()))?;
    for h in &r.hits {
        let payload = engine
            .get(h.id)
            .map(|e| String::from_utf8_lossy(&e.payload).into_owned());
        println!(
            "  {:>3} score {:.3} similarity {:.3} activation {:.3} {:?}",
            h.id.0, h.score, h.similarity, h.activation, payload
        );
    }

    // Pattern completion from the first half of hour 15.
    let (fifteen, e15) = &day[15];
    let mask: Vec<bool> = (0..dim).map(|i| i < dim / 2).collect();
    let c = engine.complete(e15, &mask, 3)?;
    println!(
        "completed hour 15 from half its dimensions: best {} (confidence {:.3})",
        c.supporting[0].0, c.confidence
    );
    assert_eq!(c.supporting[0].0, *fifteen);

    // Spaces are separate tenants.
    engine.observe(Episode::new(vec![1.0; dim]).in_space("tenant-b"))?;
    println!(
        "default space: {} episodes; tenant-b: {}",
        engine.space_len("default")?,
        engine.space_len("tenant-b")?
    );

    let text = engine.metrics_text();
    println!("{} lines of Prometheus metrics, e.g.:", text.lines().count());
    for line in text.lines().filter(|l| l.starts_with("locus_engine_episodes")) {
        println!("  {line}");
    }
    engine.shutdown();
    Ok(())
}

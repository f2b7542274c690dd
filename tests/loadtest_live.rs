//! Live figures are true at a low rate: the count is published by time, not every N ops, so at
//! 20 ops/s the endpoint's counter moves within the second, and the progress line says `p99 –`
//! until an op has been measured instead of `p99 0.0 µs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use locus::loadtest::driver::{Progress, RunOptions, progress_message, run};
use locus::loadtest::live::LiveStats;
use locus::loadtest::scenario;
use locus::loadtest::target::NoopTarget;

#[test]
fn the_count_is_live_at_20_ops_per_second() {
    let s = scenario::parse(
        "name = \"slow\"\nduration = \"3s\"\nwarmup = \"0s\"\nthreads = 4\n[arrival]\nkind = \"constant\"\n\
         rate = 20\n[data]\npreload = 0\n",
        "slow.toml",
    )
    .unwrap();
    let live = Arc::new(LiveStats::new());
    let opts = RunOptions {
        progress: Progress::Quiet,
        live: Arc::clone(&live),
    };
    let start = Instant::now();
    let runner = std::thread::spawn(move || run(&s, &NoopTarget, &opts).unwrap());
    // Sample the counter at 1 s and 2 s: 20 and 40 ops are due by then (each within a few ops;
    // the old per-256-ops publishing showed 0 for the whole run).
    let mut seen = Vec::new();
    for at in [1000u64, 2000] {
        let due = Duration::from_millis(at);
        std::thread::sleep(due.saturating_sub(start.elapsed()));
        let t = start.elapsed().as_secs_f64();
        seen.push((t, live.ops()));
    }
    let result = runner.join().unwrap();
    for (t, ops) in &seen {
        let expected = t * 20.0;
        assert!(
            (*ops as f64 - expected).abs() <= 6.0,
            "at {t:.2} s the live count was {ops}, {expected:.0} were due ({seen:?})"
        );
    }
    assert_eq!(live.ops(), result.overall.count);
}

#[test]
fn the_first_tick_does_not_print_a_zero_p99() {
    assert_eq!(progress_message("warmup", 0, None), "warmup 0 ops/s, p99 –");
    assert_eq!(
        progress_message("run", 10, Some(12_345)),
        "run 10 ops/s, p99 12.3 µs"
    );
}

//! What the crash loops (`tests/durability_crash.rs`, `tests/engine_crash.rs`) share: running
//! the test binary itself as a child that prints `ACK id micros` per acknowledgement, killing it
//! with SIGKILL at a chosen moment, and the seeded randomness of those moments.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use locus::durability::SyncPolicy;

/// Wall-clock microseconds (acknowledgement and kill times are compared across processes).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The child's policy from its spec: `batch` or a number of milliseconds.
pub fn policy_from(s: &str) -> SyncPolicy {
    match s {
        "batch" => SyncPolicy::EveryBatch,
        ms => SyncPolicy::EveryMs(ms.parse().expect("policy")),
    }
}

/// What one child acknowledged before it was killed.
pub struct Run {
    /// (id, acknowledgement time in µs), in acknowledgement order.
    pub acked: Vec<(u64, u64)>,
    /// When the SIGKILL was sent, in µs.
    pub kill_micros: u64,
}

/// Re-runs this test binary's `test` as a child with `child_env=spec`, waits for its first
/// acknowledgement (at most `first_ack_within`), lets it run `ms` more, and SIGKILLs it.
pub fn run_child(
    test: &str,
    child_env: &str,
    spec: String,
    run: u64,
    ms: u64,
    first_ack_within: Duration,
) -> Run {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(child_env, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let (first_tx, first_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut f = line.split(' ');
            if f.next() != Some("ACK") {
                continue;
            }
            let (Some(Ok(id)), Some(Ok(t))) =
                (f.next().map(str::parse::<u64>), f.next().map(str::parse::<u64>))
            else {
                continue;
            };
            if acked.is_empty() {
                let _ = first_tx.send(());
            }
            acked.push((id, t));
        }
        acked
    });
    if first_rx.recv_timeout(first_ack_within).is_err() {
        let _ = child.kill();
        panic!(
            "child {run} acknowledged nothing in {first_ack_within:?} (status {:?})",
            child.wait()
        );
    }
    std::thread::sleep(Duration::from_millis(ms));
    child.kill().expect("SIGKILL");
    let kill_micros = now_micros();
    let status = child.wait().expect("wait");
    assert!(
        status.code().is_none(),
        "the child must die by the signal, not exit: {status:?}"
    );
    Run {
        acked: reader.join().expect("reader"),
        kill_micros,
    }
}

/// The loop's seed: `LOCUS_CRASH_SEED` if set (to reproduce the kill moments), else the clock.
pub fn seed() -> u64 {
    std::env::var("LOCUS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now_micros() | 1)
}

/// xorshift64*: enough to spread kill moments.
pub fn next_rand(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

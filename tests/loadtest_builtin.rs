//! Every shipped scenario runs by name from a directory that has no `scenarios/` (the copies
//! compiled into the binary), on the no-op target with a short duration.

use std::process::Command;

use locus::loadtest::builtin;

#[test]
fn every_scenario_by_name_from_another_directory() {
    let elsewhere = tempfile::tempdir().unwrap();
    for name in builtin::names() {
        let out = Command::new(env!("CARGO_BIN_EXE_locus"))
            .args([
                "loadtest",
                name,
                "--target",
                "noop",
                "--duration",
                "200ms",
                "--warmup",
                "0s",
                "--preload",
                "0",
                "--progress",
                "quiet",
            ])
            .current_dir(elsewhere.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("scenario {name} ({name} (built in))")),
            "{name}: {stderr}"
        );
        assert!(
            stdout.contains(&format!("scenario {name} ·")),
            "{name}: {stdout}{stderr}"
        );
        // A missed target exits 1 with its reason; nothing else may fail.
        assert!(
            out.status.success() || stderr.contains("missed its targets"),
            "{name}: {stderr}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_locus"))
        .args(["loadtest", "no_such_scenario", "--target", "noop"])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("shipped: breaking_point, burst"), "{stderr}");
}

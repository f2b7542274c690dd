//! The CLI end to end: `loadtest` exits 1 naming a missed target or a bad scenario field, and
//! `replay` runs a tiny hand-made graphpeers workload with directed spreading.

use std::path::Path;
use std::process::Command;

fn locus(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_locus"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn missed_target_and_bad_field_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let strict = dir.path().join("strict.toml");
    std::fs::write(
        &strict,
        "name = \"strict\"\nduration = \"300ms\"\n[arrival]\nkind = \"constant\"\nrate = 1000\n\
         [data]\npreload = 0\n[validation]\nmin_throughput = 1000000\n",
    )
    .unwrap();
    let (code, stdout, stderr) = locus(&[
        "loadtest",
        strict.to_str().unwrap(),
        "--target",
        "noop",
        "--progress",
        "quiet",
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("validation FAILED: throughput"), "{stdout}");
    assert!(stderr.contains("missed its targets"), "{stderr}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"bad\"\nduration = 1\n[arrival]\nkind = \"constant\"\nrat = 5\n",
    )
    .unwrap();
    let (code, _, stderr) = locus(&["loadtest", bad.to_str().unwrap(), "--target", "noop"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("bad.toml:5") && stderr.contains("arrival.rat"),
        "{stderr}"
    );
}

fn npy(path: &Path, descr: &str, shape: &str, body: &[u8]) {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    std::fs::write(path, out).unwrap();
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn replay_a_tiny_workload() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Four nodes on the axes of 4-D space; edges 0→1, 1→2 (weight 1) and 3→0 (weight 1).
    let base: Vec<f32> = (0..4)
        .flat_map(|i| (0..4).map(move |j| if i == j { 1.0 } else { 0.0 }))
        .collect();
    npy(&d.join("base_vectors.npy"), "<f4", "(4, 4)", &f32s(&base));
    let edges: Vec<u8> = [0i32, 1, 1, 2, 3, 0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    npy(&d.join("edges.npy"), "<i4", "(3, 2)", &edges);
    npy(&d.join("weights.npy"), "<f4", "(3,)", &f32s(&[1.0, 1.0, 1.0]));
    npy(
        &d.join("store_vectors.npy"),
        "<f4",
        "(1, 4)",
        &f32s(&[0.6, 0.8, 0.0, 0.0]),
    );
    npy(
        &d.join("query_vectors.npy"),
        "<f4",
        "(1, 4)",
        &f32s(&[0.0, 0.0, 1.0, 0.1]),
    );
    std::fs::write(
        d.join("meta.json"),
        r#"{"n": 4, "dim": 4, "ops": 4, "seed_hex": "0x1", "mix": {}, "m": 1, "final_nodes": 5, "decay": 0.5, "k": 2}"#,
    )
    .unwrap();
    std::fs::write(
        d.join("ops.jsonl"),
        "{\"i\":0,\"op\":\"store\",\"id\":4,\"vec\":0,\"edges\":[[4,3,0.5]]}\n\
         {\"i\":1,\"op\":\"recall\",\"q\":0,\"k\":2}\n\
         {\"i\":2,\"op\":\"spread\",\"seeds\":[0],\"hops\":3,\"decay\":0.5,\"threshold\":0.01,\"k\":10}\n\
         {\"i\":3,\"op\":\"complete\",\"q\":0,\"k\":2}\n",
    )
    .unwrap();
    let out = d.join("r.json");
    let answers = d.join("a.jsonl");
    let (code, stdout, stderr) = locus(&[
        "replay",
        d.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--answers",
        answers.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(r["replayed_ops"], 4);
    assert_eq!(r["integrity"]["ok"], true, "{}", r["integrity"]);
    assert_eq!(r["per_op"]["store"]["count"], 1);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&answers)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    // Recall: node 2 (the query's axis) first.
    assert_eq!(lines[0]["ids"][0], 2);
    // Spread from 0 follows 0→1→2 only: the edge 3→0 is directed and does not reach 3.
    assert_eq!(lines[1]["ids"], serde_json::json!([1, 2]));
}

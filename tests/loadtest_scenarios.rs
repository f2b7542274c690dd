//! Every scenario shipped in `scenarios/` parses and validates, and the embedded default is the
//! file `scenarios/default.toml`.

use locus::loadtest::scenario;

#[test]
fn every_shipped_scenario_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let s = scenario::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Some(s.name.as_str()),
            path.file_stem().and_then(|n| n.to_str()),
            "{}: name should match the file name",
            path.display()
        );
        names.push(s.name);
    }
    names.sort();
    for wanted in [
        "breaking_point",
        "burst",
        "default",
        "example",
        "hybrid_100k",
        "m17_baseline",
        "scaling",
        "soak",
        "tail",
        "tenants",
        "threads",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "scenarios/{wanted}.toml missing"
        );
    }
}

#[test]
fn embedded_default_is_the_shipped_file() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/default.toml");
    let from_file = scenario::load_file(&path).unwrap();
    let embedded = scenario::default_scenario().unwrap();
    assert_eq!(from_file.name, embedded.name);
    assert_eq!(from_file.arrival, embedded.arrival);
    assert_eq!(from_file.data, embedded.data);
}

#[test]
fn errors_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "name = \"bad\"\nduration = \"1s\"\n[arrival]\nkind = \"burst\"\nbase = 10\npeak = 100\nperiod = \"1s\"\nduty = 1.5\n",
    )
    .unwrap();
    let msg = scenario::load_file(&path).unwrap_err().to_string();
    assert!(msg.contains("bad.toml:8"), "{msg}");
    assert!(msg.contains("arrival.duty"), "{msg}");
}

//! The scenarios shipped in `scenarios/`, compiled in: `locus loadtest NAME` finds them from any
//! directory (a `scenarios/NAME.toml` in the current directory, or a path, is read instead).

use super::error::LoadtestError;
use super::scenario::{self, Scenario};

/// Every shipped scenario: its name (the file's stem) and its text.
pub const SCENARIOS: [(&str, &str); 11] = [
    (
        "breaking_point",
        include_str!("../../scenarios/breaking_point.toml"),
    ),
    ("burst", include_str!("../../scenarios/burst.toml")),
    ("default", include_str!("../../scenarios/default.toml")),
    ("example", include_str!("../../scenarios/example.toml")),
    ("hybrid_100k", include_str!("../../scenarios/hybrid_100k.toml")),
    ("m17_baseline", include_str!("../../scenarios/m17_baseline.toml")),
    ("scaling", include_str!("../../scenarios/scaling.toml")),
    ("soak", include_str!("../../scenarios/soak.toml")),
    ("tail", include_str!("../../scenarios/tail.toml")),
    ("tenants", include_str!("../../scenarios/tenants.toml")),
    ("threads", include_str!("../../scenarios/threads.toml")),
];

/// The names of [`SCENARIOS`].
pub fn names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|(n, _)| *n).collect()
}

/// The shipped scenario `name`, parsed; `None` if no shipped scenario has that name.
///
/// # Errors
/// As [`scenario::parse`] (a shipped scenario that does not parse is a bug the tests catch).
pub fn get(name: &str) -> Option<Result<Scenario, LoadtestError>> {
    SCENARIOS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| scenario::parse(text, &format!("{n} (built in)")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_file_in_scenarios_is_built_in_unchanged() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut on_disk = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let built_in = super::SCENARIOS.iter().find(|(n, _)| *n == name);
            assert_eq!(
                built_in.map(|(_, t)| *t),
                Some(text.as_str()),
                "scenarios/{name}.toml is not compiled in (add it to builtin::SCENARIOS)"
            );
            super::get(&name).unwrap().unwrap();
            on_disk.push(name);
        }
        assert_eq!(on_disk.len(), super::SCENARIOS.len());
        assert!(super::get("no_such").is_none());
    }
}

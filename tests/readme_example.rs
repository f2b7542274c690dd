//! The README's "Use it from your service" example is the crate docs' first example, which runs
//! as a doctest: every line of the README's block must be a line of that doctest, in order.

#[test]
fn readme_example_is_the_doctest() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let section = readme
        .split("## Use it from your service")
        .nth(1)
        .expect("README has no \"Use it from your service\" section");
    let block = section
        .split("```rust\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("the section has no rust block");
    let doctest: Vec<&str> = lib.lines().filter_map(|l| l.strip_prefix("//! ")).collect();
    let mut at = 0;
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let found = doctest[at..]
            .iter()
            .position(|d| *d == line)
            .unwrap_or_else(|| panic!("README line not in the crate-doc example (in order): {line}"));
        at += found + 1;
    }
    assert!(
        block.lines().count() >= 8,
        "the example is too short to be the engine tour"
    );
}

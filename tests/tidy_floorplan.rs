//! Tidy checks over the source text (no build of anything): the engine's floor plan
//! (`docs/architecture.md`, "The engine's floors") and the length of production functions.
//!
//! - No file under `src/engine` but the facade's own (`facade.rs`, and `mod.rs`, which
//!   re-exports it) names the facade: `facade::`, `Engine::` or `super::Engine`.
//! - No file under `src/engine/shard/` names a floor above the shard: `core`, `Inner`,
//!   `handler`, `outbox`, `fanout`, `admit`, `requests`, `spread`, `durable`, `task`.
//! - The ground floor (`types`, `error`, `config`, `route`, `metrics`, `log`) names no other
//!   engine file but each other.
//! - No function of `src/` (test modules left out) is longer than [`MAX_FN_LINES`] lines unless
//!   the line before it (or its attributes and doc comment) says `// tidy: long-fn — reason`.
//!
//! Comments and test modules (`#[cfg(test)] mod …`, files ending in `_tests.rs`) are not
//! checked: tests may drive the engine through its public face.

use std::path::{Path, PathBuf};

/// The agreed limit on a production function's length, in lines (its signature to its closing
/// brace).
const MAX_FN_LINES: usize = 120;

/// The marker that allows a longer function (followed by the reason).
const LONG_FN_ALLOW: &str = "// tidy: long-fn";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display()));
        for e in entries {
            let p = e.expect("a directory entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The source with comments, string and char literals blanked (same line structure), so that
/// braces and names are only code's.
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !prev_is_ident(&b, i) {
            // A raw string r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for &ch in &b[i..j.min(b.len())] {
                out.push(blank(ch));
            }
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}'), not a lifetime ('a).
            let close = if next == Some('\\') {
                (i + 2..b.len().min(i + 12)).find(|&j| b[j] == '\'')
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(j) => {
                    for _ in i..=j {
                        out.push(' ');
                    }
                    i = j + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn prev_is_ident(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

/// Lines of `code` (from [`code_only`]) with test modules blanked: from a `#[cfg(test)]` or
/// `#[cfg(all(loom, test))]` line followed by `mod` to the module's closing brace.
fn without_test_modules(code: &str) -> Vec<String> {
    let lines: Vec<&str> = code.lines().collect();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim();
        let is_test_cfg = t.starts_with("#[cfg(") && t.contains("test") && !t.contains("not(");
        let next_is_mod = lines
            .get(i + 1)
            .is_some_and(|l| l.trim_start().starts_with("mod ") || l.trim_start().starts_with("pub mod "));
        if is_test_cfg && next_is_mod && lines[i + 1].contains('{') {
            let mut depth = 0i64;
            let mut j = i + 1;
            loop {
                depth += brace_delta(lines[j]);
                out[j].clear();
                if depth <= 0 && lines[j].contains('}') || j + 1 >= lines.len() {
                    break;
                }
                j += 1;
            }
            out[i].clear();
            i = j + 1;
        } else {
            i += 1;
        }
    }
    out
}

fn brace_delta(line: &str) -> i64 {
    line.chars()
        .map(|c| match c {
            '{' => 1,
            '}' => -1,
            _ => 0,
        })
        .sum()
}

/// `(path relative to src/engine, production code lines)` of every engine file.
fn engine_files() -> Vec<(String, Vec<String>)> {
    let dir = root().join("src/engine");
    rust_files(&dir)
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with("_tests.rs"))
        .map(|p| {
            let rel = p
                .strip_prefix(&dir)
                .expect("under src/engine")
                .to_string_lossy()
                .replace('\\', "/");
            let src = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (rel, without_test_modules(&code_only(&src)))
        })
        .collect()
}

/// Lines of `lines` naming any of `names` as a path segment (`x::`, `::x` or the word itself for
/// types).
fn offending(lines: &[String], names: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        for name in names {
            let hit = line.match_indices(name).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + name.len()..].chars().next();
                let word_start = !before.is_some_and(|c| c.is_alphanumeric() || c == '_');
                let word_end = !after.is_some_and(|c| c.is_alphanumeric() || c == '_');
                word_start
                    && word_end
                    && (line[..at].ends_with("::") || line[at + name.len()..].starts_with("::"))
            });
            if hit {
                found.push(format!("line {}: names `{name}`: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn only_the_facade_names_the_facade() {
    let mut bad = Vec::new();
    for (rel, lines) in engine_files() {
        if rel == "facade.rs" || rel == "mod.rs" {
            continue;
        }
        for o in offending(&lines, &["facade", "Engine"]) {
            bad.push(format!("src/engine/{rel} {o}"));
        }
    }
    assert!(
        bad.is_empty(),
        "only facade.rs may use the facade (see docs/architecture.md):\n{}",
        bad.join("\n")
    );
}

#[test]
fn a_shard_never_names_a_floor_above_it() {
    let above = [
        "core", "Inner", "handler", "outbox", "fanout", "admit", "requests", "spread", "durable", "task",
        "facade", "Engine",
    ];
    let mut bad = Vec::new();
    let mut seen = 0;
    for (rel, lines) in engine_files() {
        if !rel.starts_with("shard/") {
            continue;
        }
        seen += 1;
        for o in offending(&lines, &above) {
            // `crate::spread` (the graph module) is not the engine's `spread.rs`.
            if o.contains("crate::spread") && !o.contains("engine::spread") {
                continue;
            }
            bad.push(format!("src/engine/{rel} {o}"));
        }
    }
    assert!(
        seen >= 5,
        "the shard's files are under src/engine/shard/ ({seen} found)"
    );
    assert!(
        bad.is_empty(),
        "a shard gets its settings at creation and returns its edges; it never names the floors above:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_ground_floor_names_only_the_ground_floor() {
    let ground = [
        "types.rs",
        "error.rs",
        "config.rs",
        "route.rs",
        "metrics.rs",
        "log.rs",
    ];
    let others = [
        "shard", "task", "join", "core", "fanout", "outbox", "requests", "spread", "admit", "durable",
        "handler", "facade", "Engine", "Inner",
    ];
    let mut bad = Vec::new();
    for (rel, lines) in engine_files() {
        if !ground.contains(&rel.as_str()) {
            continue;
        }
        for o in offending(&lines, &others) {
            if o.contains("crate::spread") && !o.contains("engine::spread") {
                continue;
            }
            bad.push(format!("src/engine/{rel} {o}"));
        }
    }
    assert!(
        bad.is_empty(),
        "the ground floor imports no engine floor above it:\n{}",
        bad.join("\n")
    );
}

/// `(first line, length)` of every function in `lines` (production code only).
fn functions(lines: &[String]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let is_fn = t
            .split_whitespace()
            .take(6)
            .any(|w| w == "fn" || w.starts_with("fn "))
            && !t.starts_with("//")
            && t.contains("fn ");
        if !is_fn {
            continue;
        }
        // Find the body's opening brace (a signature may span lines; a `;` first means no body).
        let mut j = i;
        let mut open = None;
        while j < lines.len() && j < i + 40 {
            let l = &lines[j];
            let from = if j == i { l.find("fn ").unwrap_or(0) } else { 0 };
            let seg = &l[from..];
            if let Some(b) = seg.find('{') {
                let semi = seg.find(';');
                if semi.is_none_or(|s| s > b) {
                    open = Some((j, from + b));
                }
                break;
            }
            if seg.contains(';') {
                break;
            }
            j += 1;
        }
        let Some((oj, ob)) = open else {
            continue;
        };
        let mut depth = 0i64;
        let mut end = None;
        'scan: for (k, l) in lines.iter().enumerate().skip(oj) {
            let start = if k == oj { ob } else { 0 };
            for c in l[start..].chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(k);
                            break 'scan;
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(e) = end {
            out.push((i, e - i + 1));
        }
    }
    out
}

/// Whether the lines just above `at` (attributes, doc comments, the marker) allow a long
/// function.
fn allowed(raw: &[&str], at: usize) -> bool {
    let mut k = at;
    while k > 0 {
        k -= 1;
        let t = raw[k].trim();
        if t.starts_with(LONG_FN_ALLOW) {
            return true;
        }
        if !(t.starts_with("///") || t.starts_with("#[") || t.starts_with("//")) {
            return false;
        }
    }
    false
}

#[test]
fn no_production_function_grows_past_the_limit_unallowed() {
    let mut bad = Vec::new();
    let mut checked = 0;
    for p in rust_files(&root().join("src")) {
        if p.to_string_lossy().ends_with("_tests.rs") {
            continue;
        }
        let src = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        let raw: Vec<&str> = src.lines().collect();
        let lines = without_test_modules(&code_only(&src));
        for (at, len) in functions(&lines) {
            checked += 1;
            if len > MAX_FN_LINES && !allowed(&raw, at) {
                bad.push(format!(
                    "{}:{}: {len} lines: {}",
                    p.strip_prefix(root()).unwrap_or(&p).display(),
                    at + 1,
                    raw[at].trim()
                ));
            }
        }
    }
    assert!(checked > 500, "the scanner found only {checked} functions");
    assert!(
        bad.is_empty(),
        "functions over {MAX_FN_LINES} lines: split them, or put `{LONG_FN_ALLOW} — reason` above:\n{}",
        bad.join("\n")
    );
}

/// The scanner itself: comments and literals do not count, test modules are left out, a
/// function's length runs from its signature to its closing brace.
#[test]
fn the_scanner_measures_what_it_says() {
    let src = "fn a() {\n    let s = \"{\";\n    // }\n    let c = '{';\n}\n#[cfg(test)]\nmod tests {\n    fn t() {\n    }\n}\nfn b(x: &'static str)\n    -> usize\n{\n    1\n}\n";
    let lines = without_test_modules(&code_only(src));
    assert_eq!(functions(&lines), vec![(0, 5), (10, 5)]);
    let names = vec![
        "use super::facade::Inner;".to_string(),
        "// facade".to_string(),
        "let facades = 1;".to_string(),
    ];
    assert_eq!(offending(&names, &["facade"]).len(), 1);
    let raw = [
        "/// doc",
        "// tidy: long-fn — a table",
        "#[inline]",
        "fn long() {",
    ];
    assert!(allowed(&raw, 3));
    assert!(!allowed(&["let x = 1;", "fn long() {"], 1));
}

//! `report.html` is one self-contained page with its sections and its figures inline, and renders
//! them in a real browser: headless Chromium loads the page, whose script marks
//! `<body data-figures=…>` once every inline figure has drawn its lines (or failed to), and the
//! dumped DOM is checked. Skips with a printed reason when Chromium is absent (`.ci/run` installs
//! it); the reason is written to the process's stderr itself, which the test harness does not
//! capture, so `cargo test` and `scripts/test.sh` show it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use locus::loadtest::driver::{RunOptions, run};
use locus::loadtest::output::write_all;
use locus::loadtest::scenario;
use locus::loadtest::target::NoopTarget;

fn chromium() -> Option<PathBuf> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

fn dump_dom(browser: &Path, page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--allow-file-access-from-files",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn report_renders_its_figures_in_chromium() {
    let s = scenario::parse(
        "name = \"report\"\nduration = \"2s\"\n[arrival]\nkind = \"poisson\"\nrate = 2000\n[data]\npreload = 0\n",
        "report.toml",
    )
    .unwrap();
    let result = run(&s, &NoopTarget, &RunOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let written = write_all(&result, dir.path()).unwrap();
    assert_eq!(written.len(), 6);
    for p in &written {
        assert!(
            std::fs::metadata(p).unwrap().len() > 0,
            "{} is empty",
            p.display()
        );
    }
    let svg = std::fs::read_to_string(dir.path().join("latency.svg")).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("<polyline"),
        "latency.svg has no line"
    );

    // The page stands alone: its sections in order, the figures inline, nothing linked.
    let page = dir.path().join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let mut at = 0;
    for id in [
        "scenario",
        "validation",
        "latency",
        "service",
        "driver",
        "figures",
    ] {
        let needle = format!("<h2 id=\"{id}\">");
        let found = html[at..]
            .find(&needle)
            .unwrap_or_else(|| panic!("section {id} missing or out of order"));
        at += found;
    }
    assert_eq!(html.matches("<figure data-figure=").count(), 4);
    assert_eq!(html.matches("<svg").count(), 4, "figures are not inline");
    assert!(!html.contains("<img"), "the page links a file");
    assert!(
        html.contains("arrival") && html.contains("poisson"),
        "scenario not shown"
    );
    assert!(
        html.contains("No target was set: nothing was checked."),
        "the page does not say that no target was checked"
    );

    let Some(browser) = chromium() else {
        let _ = writeln!(
            std::io::stderr(),
            "loadtest_report: SKIPPED the browser check: chromium is not installed \
             (apt-get install chromium; .ci/run does)"
        );
        return;
    };
    let dom = dump_dom(&browser, &page);
    assert!(
        dom.contains("data-figures=\"loaded 4/4\""),
        "figures did not load:\n{}",
        &dom[..dom.len().min(2000)]
    );

    // The check can fail: with one figure's drawing missing the page says so.
    let start = html.find("<figure data-figure=\"rss.svg\">").unwrap();
    let end = start + html[start..].find("</figure>").unwrap();
    let broken = format!(
        "{}<figure data-figure=\"rss.svg\"><svg width=\"900\" height=\"400\"></svg>{}",
        &html[..start],
        &html[end..]
    );
    std::fs::write(&page, broken).unwrap();
    let dom = dump_dom(&browser, &page);
    assert!(
        dom.contains("data-figures=\"failed 1/4\""),
        "a missing figure went unnoticed"
    );
}

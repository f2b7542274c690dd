//! `--metrics-addr`: the endpoint serves Prometheus text while a run is going.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use locus::loadtest::driver::{Progress, RunOptions, run};
use locus::loadtest::http::MetricsServer;
use locus::loadtest::live::LiveStats;
use locus::loadtest::scenario;
use locus::loadtest::target::{LoadTarget, NoopTarget};

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn value(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from\n{body}"))
}

#[test]
fn scrape_while_running() {
    let target: Arc<dyn LoadTarget> = Arc::new(NoopTarget);
    let live = Arc::new(LiveStats::new());
    let server = MetricsServer::start("127.0.0.1:0", Arc::clone(&target), Arc::clone(&live)).unwrap();
    let addr = server.addr();
    let s = scenario::parse(
        "name = \"m\"\nduration = \"3s\"\n[arrival]\nkind = \"constant\"\nrate = 5000\n[data]\npreload = 0\n",
        "m.toml",
    )
    .unwrap();
    let opts = RunOptions {
        progress: Progress::Quiet,
        live: Arc::clone(&live),
    };
    let runner = {
        let target = Arc::clone(&target);
        std::thread::spawn(move || run(&s, target.as_ref(), &opts).unwrap())
    };
    std::thread::sleep(Duration::from_millis(1500));
    let mid = get(addr, "/metrics");
    assert!(mid.starts_with("HTTP/1.1 200 OK"), "{mid}");
    assert!(mid.contains("text/plain; version=0.0.4"));
    assert_eq!(value(&mid, "locus_loadtest_running"), 1.0);
    let ops_mid = value(&mid, "locus_loadtest_ops_total");
    assert!(ops_mid > 0.0, "no ops counted mid-run");
    let result = runner.join().unwrap();
    let end = get(addr, "/metrics");
    assert_eq!(value(&end, "locus_loadtest_running"), 0.0);
    assert!(value(&end, "locus_loadtest_ops_total") >= result.overall.count as f64);
    assert!(value(&end, "locus_loadtest_ops_total") > ops_mid);
    assert!(get(addr, "/nope").starts_with("HTTP/1.1 404"));
}

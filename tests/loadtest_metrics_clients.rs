//! The metrics endpoint against hostile and odd clients, on loopback: a client that trickles
//! its request cannot stall the others, idle sockets cannot keep a scrape out, every
//! connection ends by its deadline, and Prometheus's query strings are accepted.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use locus::loadtest::http::{MAX_CONNECTIONS, MetricsServer, REQUEST_DEADLINE};
use locus::loadtest::live::LiveStats;
use locus::loadtest::target::{LoadTarget, NoopTarget};

fn server() -> MetricsServer {
    let target: Arc<dyn LoadTarget> = Arc::new(NoopTarget);
    MetricsServer::start("127.0.0.1:0", target, Arc::new(LiveStats::new())).unwrap()
}

/// One request; the answer, or the error if it did not come within `limit`.
fn get(addr: SocketAddr, request: &str, limit: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, limit)?;
    s.set_read_timeout(Some(limit))?;
    s.set_write_timeout(Some(limit))?;
    s.write_all(request.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    get(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(3),
    )
}

#[test]
fn a_client_trickling_its_request_stalls_no_one_and_is_cut_at_the_deadline() {
    let server = server();
    let addr = server.addr();
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(REQUEST_DEADLINE * 3)).unwrap();
        let start = Instant::now();
        // A byte every 300 ms, never finishing the head: the server must close it.
        for b in b"GET /metrics HTTP/1.1\r\nX-Slow: "
            .iter()
            .chain(std::iter::repeat(&b'a'))
        {
            if s.write_all(&[*b]).is_err() || start.elapsed() > REQUEST_DEADLINE * 3 {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
            let mut probe = [0u8; 1];
            s.set_nonblocking(true).unwrap();
            let closed = matches!(s.read(&mut probe), Ok(0));
            s.set_nonblocking(false).unwrap();
            if closed {
                break;
            }
        }
        start.elapsed()
    });
    std::thread::sleep(Duration::from_millis(200));
    // While it trickles, scrapes are answered at once, one after another.
    for _ in 0..5 {
        let t = Instant::now();
        let body = scrape(addr).expect("a scrape beside the slow client");
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "scrape took {:?}",
            t.elapsed()
        );
    }
    let held = slow.join().unwrap();
    assert!(
        held < REQUEST_DEADLINE + Duration::from_secs(2),
        "the slow client was held {held:?}, deadline {REQUEST_DEADLINE:?}"
    );
}

#[test]
fn many_idle_sockets_cannot_keep_a_scrape_out() {
    let server = server();
    let addr = server.addr();
    let idle: Vec<TcpStream> = (0..(MAX_CONNECTIONS * 8))
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    assert!(
        idle.len() >= MAX_CONNECTIONS * 2,
        "only {} sockets opened",
        idle.len()
    );
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let body = scrape(addr).expect("a scrape past the idle sockets");
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "scrape took {:?}",
        t.elapsed()
    );
    drop(idle);
}

#[test]
fn query_strings_head_and_bad_requests() {
    let server = server();
    let addr = server.addr();
    let limit = Duration::from_secs(3);
    let with_query = get(
        addr,
        "GET /metrics?x=1&name[]=up HTTP/1.1\r\nHost: x\r\n\r\n",
        limit,
    )
    .unwrap();
    assert!(with_query.starts_with("HTTP/1.1 200 OK"), "{with_query}");
    assert!(with_query.contains("locus_loadtest_running"), "{with_query}");
    let head = get(addr, "HEAD /metrics HTTP/1.1\r\n\r\n", limit).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(!head.contains("locus_loadtest_running"), "{head}");
    let post = get(addr, "POST /metrics HTTP/1.1\r\n\r\n", limit).unwrap();
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    let garbage = get(addr, "\x16\x03\x01 hello\r\n\r\n", limit).unwrap();
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    let answer = get(addr, &huge, limit).unwrap_or_default();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    assert!(
        get(addr, "GET /nope HTTP/1.1\r\n\r\n", limit)
            .unwrap()
            .starts_with("HTTP/1.1 404")
    );
}

//! A small HTTP/1.1 endpoint serving Prometheus text during a run (`--metrics-addr`).
//!
//! One thread runs an event loop (`poll(2)` over the listener and every open connection, all
//! non-blocking), so no client can hold the others up:
//! - every connection has one overall deadline ([`REQUEST_DEADLINE`]) from its accept to the
//!   last byte of its answer; a client that trickles its request a byte at a time, or reads
//!   its answer slowly, is closed when it passes, whatever its pace;
//! - at most [`MAX_CONNECTIONS`] are open at once; when a new one comes and all are taken, the
//!   oldest is closed to make room, so idle sockets cannot keep a fresh scrape out;
//! - scrapes are answered as soon as their head is complete, in the order they complete.
//!
//! One request per connection (`Connection: close`). `GET /metrics` (or `/`), with or without
//! a query string, answers the harness's live figures followed by the target's own exposition;
//! `HEAD` the same without the body; another path is a 404, another method a 405. The request
//! head is parsed by [`http_request::parse_head`](super::http_request::parse_head).
//!
//! Binding ([`MetricsListener::bind`]) is separate from serving, so a caller can check the
//! address before any target is opened. The server stops and is joined when the
//! [`MetricsServer`] drops.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::error::LoadtestError;
use super::http_request::{RequestError, parse_head};
use super::live::LiveStats;
use super::sys_poll::{Watch, wait};
use super::target::LoadTarget;

/// Longest time one connection may take, from its accept to the end of its answer.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Most connections open at once; past it the oldest is closed for the new one.
pub const MAX_CONNECTIONS: usize = 64;
/// Longest the loop waits before it looks at the stop flag again.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// A bound, not yet serving, metrics address.
#[derive(Debug)]
pub struct MetricsListener {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsListener {
    /// Resolves and binds `addr` (`127.0.0.1:9464`; port 0 picks a free one).
    ///
    /// # Errors
    /// [`LoadtestError::MetricsAddr`] if `addr` is not `HOST:PORT` or resolves to nothing;
    /// [`LoadtestError::MetricsListen`] if it cannot be bound (in use, not this machine's).
    pub fn bind(addr: &str) -> Result<Self, LoadtestError> {
        let bad = |reason: String| LoadtestError::MetricsAddr {
            addr: addr.to_string(),
            reason,
        };
        let resolved: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| bad(format!("{e} (write HOST:PORT, e.g. 127.0.0.1:9464)")))?
            .collect();
        if resolved.is_empty() {
            return Err(bad("resolves to no address".into()));
        }
        let listen_err = |source| LoadtestError::MetricsListen {
            addr: addr.to_string(),
            source,
        };
        let listener = TcpListener::bind(&resolved[..]).map_err(listen_err)?;
        listener.set_nonblocking(true).map_err(listen_err)?;
        let addr = listener.local_addr().map_err(listen_err)?;
        Ok(MetricsListener { listener, addr })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether other machines may reach it (bound to neither a loopback address nor nothing):
    /// the figures then leave this machine unauthenticated, which a caller should say.
    pub fn beyond_loopback(&self) -> bool {
        !self.addr.ip().is_loopback()
    }

    /// Starts serving `target`'s and `live`'s figures.
    ///
    /// # Errors
    /// [`LoadtestError::MetricsListen`] if the server thread cannot start.
    pub fn serve(
        self,
        target: Arc<dyn LoadTarget>,
        live: Arc<LiveStats>,
    ) -> Result<MetricsServer, LoadtestError> {
        let addr = self.addr;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_thread = Arc::clone(&stop);
        let listener = self.listener;
        let handle = std::thread::Builder::new()
            .name("loadtest-metrics".to_string())
            .spawn(move || event_loop(&listener, target.as_ref(), &live, &stop_thread))
            .map_err(|source| LoadtestError::MetricsListen {
                addr: addr.to_string(),
                source,
            })?;
        Ok(MetricsServer {
            addr,
            stop,
            handle: Some(handle),
        })
    }
}

/// A running metrics endpoint.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer").field("addr", &self.addr).finish()
    }
}

impl MetricsServer {
    /// Binds `addr` and serves until dropped ([`MetricsListener::bind`], then
    /// [`MetricsListener::serve`]).
    ///
    /// # Errors
    /// As [`MetricsListener::bind`] and [`MetricsListener::serve`].
    pub fn start(
        addr: &str,
        target: Arc<dyn LoadTarget>,
        live: Arc<LiveStats>,
    ) -> Result<Self, LoadtestError> {
        MetricsListener::bind(addr)?.serve(target, live)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Goes on serving for `grace` (the final values of a finished run, so a scraper sees
    /// them and `running 0`), then stops.
    pub fn serve_final_for(self, grace: Duration) {
        std::thread::sleep(grace);
        drop(self);
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One open connection.
struct Conn {
    stream: TcpStream,
    deadline: Instant,
    head: Vec<u8>,
    /// The answer once the head is complete, and how much of it is sent.
    answer: Option<(Vec<u8>, usize)>,
    done: bool,
}

fn event_loop(listener: &TcpListener, target: &dyn LoadTarget, live: &LiveStats, stop: &AtomicBool) {
    let mut conns: Vec<Conn> = Vec::new();
    let mut watches: Vec<Watch> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        conns.retain(|c| !c.done && c.deadline > now);
        let timeout = conns
            .iter()
            .map(|c| c.deadline.saturating_duration_since(now))
            .fold(STOP_CHECK, Duration::min);
        watches.clear();
        watches.push(watch(listener, false));
        watches.extend(conns.iter().map(|c| watch(&c.stream, c.answer.is_some())));
        if wait(&mut watches, timeout).is_err() {
            std::thread::sleep(STOP_CHECK);
            continue;
        }
        for (c, w) in conns.iter_mut().zip(&watches[1..]) {
            if w.ready {
                progress(c, target, live);
            }
        }
        if watches[0].ready {
            accept_all(listener, &mut conns);
        }
    }
}

#[cfg(unix)]
fn watch(s: &impl std::os::fd::AsRawFd, write: bool) -> Watch {
    Watch {
        fd: s.as_raw_fd(),
        write,
        ready: false,
    }
}

#[cfg(not(unix))]
fn watch<T>(_: &T, write: bool) -> Watch {
    Watch {
        fd: (),
        write,
        ready: false,
    }
}

/// Accepts every waiting connection, closing the oldest open ones past [`MAX_CONNECTIONS`].
fn accept_all(listener: &TcpListener, conns: &mut Vec<Conn>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                conns.retain(|c| !c.done);
                if conns.len() >= MAX_CONNECTIONS {
                    // The earliest deadline is the oldest connection: it has had the most time.
                    if let Some(oldest) = (0..conns.len()).min_by_key(|&i| conns[i].deadline) {
                        conns.swap_remove(oldest);
                    }
                }
                conns.push(Conn {
                    stream,
                    deadline: Instant::now() + REQUEST_DEADLINE,
                    head: Vec::with_capacity(512),
                    answer: None,
                    done: false,
                });
            }
            // WouldBlock: none left; any other error concerns that one client only.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(_) => return,
        }
    }
}

/// Reads what a connection sent or writes what it is owed, without blocking.
fn progress(c: &mut Conn, target: &dyn LoadTarget, live: &LiveStats) {
    if c.answer.is_none() {
        let mut buf = [0u8; 2048];
        loop {
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    // The client closed before its head was complete.
                    c.done = true;
                    return;
                }
                Ok(n) => {
                    c.head.extend_from_slice(&buf[..n]);
                    match parse_head(&c.head) {
                        Ok(None) => continue,
                        Ok(Some(req)) => {
                            c.answer = Some((answer(req.method, req.path, target, live), 0));
                            break;
                        }
                        Err(RequestError::TooLarge) => {
                            c.answer = Some((reply("431 Request Header Fields Too Large", "", "", false), 0));
                            break;
                        }
                        Err(e @ RequestError::Malformed(_)) => {
                            c.answer = Some((reply("400 Bad Request", "", &format!("{e}\n"), false), 0));
                            break;
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    c.done = true;
                    return;
                }
            }
        }
    }
    if let Some((bytes, sent)) = &mut c.answer {
        while *sent < bytes.len() {
            match c.stream.write(&bytes[*sent..]) {
                Ok(0) => break,
                Ok(n) => *sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = c.stream.shutdown(std::net::Shutdown::Write);
        c.done = true;
    }
}

/// The whole answer to one request.
fn answer(method: &str, path: &str, target: &dyn LoadTarget, live: &LiveStats) -> Vec<u8> {
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            return reply(
                "405 Method Not Allowed",
                "Allow: GET, HEAD\r\n",
                "GET or HEAD only\n",
                false,
            );
        }
    };
    match path {
        "/metrics" | "/" => {
            let mut body = live.prometheus_text();
            if let Some(t) = target.metrics_text() {
                body.push_str(&t);
            }
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            if !head_only {
                r.extend_from_slice(body.as_bytes());
            }
            r
        }
        _ => reply("404 Not Found", "", "try /metrics\n", head_only),
    }
}

fn reply(status: &str, extra: &str, body: &str, head_only: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        r.extend_from_slice(body.as_bytes());
    }
    r
}

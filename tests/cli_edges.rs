//! The CLI's edges over the real binary: every size a flag gives is bounded before anything
//! is allocated, bad paths and addresses are refused before the run, files that are not what
//! they claim (devices, FIFOs, huge files) are refused unread, and flags share one spelling.
//!
//! Each command runs under a wall-clock limit and with a small address-space limit
//! (`RLIMIT_AS`), so a command that would allocate its flag's worth of memory fails the test
//! fast instead of swapping the machine.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a run gave: exit code (`None` if killed at the limit), stdout, stderr, wall time.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    fn text(&self) -> String {
        format!(
            "exit {:?} after {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.took, self.stdout, self.stderr
        )
    }

    /// Refused with an error, quickly, without a panic.
    fn assert_refused(&self, needle: &str) {
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "expected a refusal: {}",
            self.text()
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.text());
        assert!(
            self.stderr.contains(needle),
            "expected `{needle}` in: {}",
            self.text()
        );
        assert!(
            self.took < Duration::from_secs(20),
            "refused only after {:?}",
            self.took
        );
    }
}

/// Address space a refused command is given (bytes): far below what any flag here asks for.
const SMALL_AS: u64 = 2 << 30;

fn locus_limited(args: &[&str], limit: Duration, address_space: Option<u64>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_locus"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(target_os = "linux")]
    if let Some(bytes) = address_space {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the child between fork and exec and only calls
        // setrlimit, which is async-signal-safe, on a stack value.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = address_space;
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code,
        took: start.elapsed(),
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    }
}

fn refused(args: &[&str]) -> Run {
    locus_limited(args, Duration::from_secs(60), Some(SMALL_AS))
}

#[test]
fn sizes_and_counts_are_bounded_before_allocation() {
    refused(&["bench-durable", "--observers", "0"]).assert_refused("--observers");
    refused(&["bench-durable", "--observers", "100000"]).assert_refused("--observers");
    refused(&["bench-durable", "--dimension", "1000000000"]).assert_refused("--dimension");
    // `--dim` stays as an alias of `--dimension`.
    refused(&["bench-durable", "--dim", "1000000000"]).assert_refused("1000000000");
    refused(&["bench-durable", "--batch", "0"]).assert_refused("--batch");
    refused(&["bench-wal", "--dimension", "1000000000"]).assert_refused("--dimension");
    refused(&["bench-wal", "--snapshot-mib", "100000000"]).assert_refused("--snapshot-mib");
    refused(&["bench-wal", "--threads", "0"]).assert_refused("--threads");
    refused(&["bench-spread", "--nodes", "1000000000000"]).assert_refused("--nodes");
    refused(&["bench-spread", "--nodes", "0"]).assert_refused("--nodes");
    refused(&["bench-spread", "--hops", "0"]).assert_refused("--hops");
    refused(&["engine-status", "--dimension", "1000000000"]).assert_refused("--dimension");
    refused(&["bench-engine", "--observers", "0"]).assert_refused("--observers");
    refused(&["bench-engine", "--seconds", "inf"]).assert_refused("--seconds");
    refused(&["bench-index", "--data", ".", "--k", "0"]).assert_refused("--k");
    refused(&["memory", "--chase-mib", "0"]).assert_refused("--chase-mib");
    refused(&["counters", "--buffer-mib", "100000000"]).assert_refused("--buffer-mib");
}

#[test]
fn every_dimension_flag_is_spelled_dimension() {
    for sub in ["bench-durable", "bench-wal", "bench-engine", "engine-status"] {
        let help = locus_limited(&[sub, "--help"], Duration::from_secs(30), None);
        assert!(help.stdout.contains("--dimension"), "{sub}: {}", help.text());
        assert!(
            !help.stdout.contains("--dim "),
            "{sub} shows --dim: {}",
            help.text()
        );
    }
}

fn scenario(dir: &Path, name: &str, extra: &str) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "name = \"edges\"\nduration = \"30s\"\n[arrival]\nkind = \"constant\"\nrate = 200\n\
             [data]\npreload = 0\ndimension = 8\n{extra}"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn loadtest_refuses_bad_inputs_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path(), "s.toml", "");
    // The "scenario" is a device: refused unread (it used to be read to the end of memory).
    refused(&["loadtest", "/dev/zero", "--target", "noop"]).assert_refused("character device");
    // An output directory that cannot be created: refused before the 30 s run, not after it.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = file.join("out");
    refused(&[
        "loadtest",
        &s,
        "--target",
        "noop",
        "--out",
        under_file.to_str().unwrap(),
    ])
    .assert_refused("--out");
    // A metrics address that is no address: refused before the target (the engine) opens.
    refused(&["loadtest", &s, "--metrics-addr", "garbage"]).assert_refused("metrics address `garbage`");
    // Engine parameters: refused by the scenario check, naming the field, before the engine.
    let bad_m = scenario(dir.path(), "m.toml", "[engine]\nm = 0\n");
    refused(&["loadtest", &bad_m]).assert_refused("engine.m");
    let bad_hops = scenario(dir.path(), "h.toml", "[engine]\nspread_hops = 0\n");
    refused(&["loadtest", &bad_hops]).assert_refused("engine.spread_hops");
    let bad_ef = scenario(dir.path(), "e.toml", "[engine]\nef_search = 4000000000\n");
    refused(&["loadtest", &bad_ef]).assert_refused("engine.ef_search");
}

#[test]
fn seeds_take_hex_and_a_public_metrics_address_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path(), "s.toml", "");
    let run = locus_limited(
        &[
            "loadtest",
            &s,
            "--target",
            "noop",
            "--duration",
            "300ms",
            "--seed",
            "0xDEADBEEF",
            "--progress",
            "quiet",
            "--metrics-addr",
            "0.0.0.0:0",
            "--metrics-grace",
            "0s",
        ],
        Duration::from_secs(60),
        None,
    );
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(
        run.stderr.contains("warning: the metrics endpoint"),
        "{}",
        run.text()
    );
    let local = locus_limited(
        &[
            "loadtest",
            &s,
            "--target",
            "noop",
            "--duration",
            "200ms",
            "--seed",
            "12345",
            "--progress",
            "quiet",
            "--metrics-addr",
            "127.0.0.1:0",
            "--metrics-grace",
            "0s",
        ],
        Duration::from_secs(60),
        None,
    );
    assert_eq!(local.code, Some(0), "{}", local.text());
    assert!(!local.stderr.contains("warning"), "{}", local.text());
}

/// A sysfs snapshot whose files are a link to `/dev/zero` and a FIFO: read as missing (with a
/// fallback each), in bounded time and memory, not read without end or waited on.
#[cfg(target_os = "linux")]
#[test]
fn topology_reads_no_device_or_fifo_under_a_sysfs_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cpu = root.join("sys/devices/system/cpu");
    for c in 0..2 {
        let t = cpu.join(format!("cpu{c}/topology"));
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join("core_cpus_list"), format!("{c}\n")).unwrap();
        std::fs::write(t.join("package_cpus_list"), "0-1\n").unwrap();
        std::fs::write(t.join("physical_package_id"), "0\n").unwrap();
    }
    std::fs::write(cpu.join("present"), "0-1\n").unwrap();
    std::os::unix::fs::symlink("/dev/zero", cpu.join("online")).unwrap();
    let fifo = std::ffi::CString::new(cpu.join("cpu1/topology/core_id").to_str().unwrap()).unwrap();
    // SAFETY: `fifo` is a NUL-terminated path that lives across the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let run = locus_limited(
        &["topology", "--json", "--sysfs-root", root.to_str().unwrap()],
        Duration::from_secs(30),
        Some(SMALL_AS),
    );
    assert_eq!(run.code, Some(0), "{}", run.text());
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let fallbacks = json["fallbacks"].to_string();
    assert!(fallbacks.contains("character device"), "{fallbacks}");
    assert!(fallbacks.contains("FIFO"), "{fallbacks}");
}

fn vecs(path: &Path, rows: &[Vec<u32>]) {
    let mut out = Vec::new();
    for r in rows {
        out.extend_from_slice(&(r.len() as i32).to_le_bytes());
        for w in r {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn bench_index_refuses_ground_truth_it_cannot_score() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = |x: f32| x.to_bits();
    let base: Vec<Vec<u32>> = (0..8)
        .map(|i| vec![f(i as f32), f(1.0), f(0.5), f(-1.0)])
        .collect();
    vecs(&d.join("base.fvecs"), &base);
    vecs(&d.join("query.fvecs"), &base[..2]);
    // Ground truth naming id 99, beyond the 8 base vectors.
    vecs(&d.join("groundtruth.ivecs"), &[vec![0, 99], vec![1, 2]]);
    let data = d.to_str().unwrap();
    refused(&[
        "bench-index",
        "--data",
        data,
        "--k",
        "2",
        "--efs",
        "8",
        "--min-batch-s",
        "0",
    ])
    .assert_refused("names id 99");
    // Ground truth with 2 neighbours per query, asked for 5.
    vecs(&d.join("groundtruth.ivecs"), &[vec![0, 1], vec![1, 2]]);
    refused(&[
        "bench-index",
        "--data",
        data,
        "--k",
        "5",
        "--efs",
        "8",
        "--min-batch-s",
        "0",
    ])
    .assert_refused("only 2 neighbours");
    // A base file that is a FIFO is refused, not waited on.
    #[cfg(target_os = "linux")]
    {
        std::fs::remove_file(d.join("base.fvecs")).unwrap();
        let fifo = std::ffi::CString::new(d.join("base.fvecs").to_str().unwrap()).unwrap();
        // SAFETY: `fifo` is a NUL-terminated path that lives across the call.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        refused(&["bench-index", "--data", data]).assert_refused("FIFO");
    }
}

/// After the run (seen running first), the endpoint serves the final values (`running 0`, the
/// final op count) for `--metrics-grace`, then the command exits.
#[test]
fn the_metrics_endpoint_serves_the_final_values_for_the_grace_period() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path(), "s.toml", "");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_locus"))
        .args([
            "loadtest",
            &s,
            "--target",
            "noop",
            "--duration",
            "1s",
            "--progress",
            "quiet",
            "--metrics-addr",
            &addr,
            "--metrics-grace",
            "4s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut saw_running = false;
    let mut final_scrape = None;
    while start.elapsed() < Duration::from_secs(30) && final_scrape.is_none() {
        std::thread::sleep(Duration::from_millis(100));
        let Ok(mut c) = std::net::TcpStream::connect(&addr) else {
            continue;
        };
        let _ = c.set_read_timeout(Some(Duration::from_secs(3)));
        let _ = c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
        let mut body = String::new();
        let _ = c.read_to_string(&mut body);
        saw_running |= body.contains("\nlocus_loadtest_running 1");
        if saw_running && body.contains("\nlocus_loadtest_running 0") {
            final_scrape = Some((body, child.try_wait().unwrap()));
        }
    }
    let (body, exited) = final_scrape.expect("no scrape saw the finished run");
    assert!(
        exited.is_none(),
        "the command had exited when the final values were scraped"
    );
    assert!(body.contains("locus_loadtest_ops_total"), "{body}");
    let status = child.wait().unwrap();
    assert!(status.success());
    assert!(
        start.elapsed() >= Duration::from_secs(5),
        "exited before the grace period"
    );
}

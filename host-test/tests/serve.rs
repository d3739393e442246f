//! `host-test serve` end to end: the real binary on a loopback port, with the built module,
//! a real upstream and a real cluster server started by the test on 127.0.0.1.

// Test helpers outside #[test] functions fail the test on any error, so panicking is right.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A `host-test serve` child process, stopped when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `host-test serve` on a free loopback port and waits for its
/// "listening on" line. Tests run in parallel, so another test's server can
/// take the port between `free_port` and the bind; the bind then fails and a
/// new port is tried, instead of sending requests to the other server.
fn start_serve(args: &[&str]) -> Server {
    for _ in 0..5 {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_host-test"))
            .current_dir(repo_root())
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start host-test serve");
        let stderr = child.stderr.take().unwrap();
        let (listening, started) = std::sync::mpsc::channel();
        // Reads the whole log, so that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut reported = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !reported && line.contains("listening on") {
                    let _ = listening.send(true);
                    reported = true;
                }
            }
            if !reported {
                let _ = listening.send(false);
            }
        });
        if started.recv_timeout(Duration::from_secs(30)) == Ok(true) {
            return Server { child, addr };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("host-test serve did not start after five ports");
}

/// Sends one HTTP/1.1 request and returns the status line, the headers (lower-cased names)
/// and the body.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: app.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap_or_default()
        .split(' ')
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn module() -> String {
    let path = repo_root().join("dist/portcullis.wasm");
    assert!(
        path.exists(),
        "{} is missing: build it with `make build`",
        path.display()
    );
    path.display().to_string()
}

#[test]
fn serve_hardens_and_blocks() {
    let module = module();
    let server = start_serve(&[
        "--plugin",
        &module,
        "--config",
        "envoy/portcullis-demo.json",
        "--workers",
        "2",
    ]);
    let (status, headers, body) = request(server.addr, "GET", "/hello", "");
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    assert_eq!(
        header(&headers, "server"),
        None,
        "the demo application's Server header leaks"
    );
    assert_eq!(header(&headers, "x-powered-by"), None);
    assert!(body.contains("portcullis demo upstream"), "{body}");

    let (status, _, body) = request(server.addr, "GET", "/search?q=1%27%20OR%201=1--", "");
    assert_eq!(status, 403);
    assert!(body.contains("request_blocked"), "{body}");

    let (status, _, _) = request(
        server.addr,
        "POST",
        "/comments",
        "comment=%3Cscript%3Ealert(1)%3C/script%3E",
    );
    assert_eq!(status, 403);
}

#[test]
fn serve_without_module_proxies_to_upstream() {
    // A plain HTTP server on loopback stands in for the application.
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let answer = std::thread::spawn(move || {
        let (mut stream, _) = upstream.accept().unwrap();
        let mut buffer = [0u8; 4096];
        let read = stream.read(&mut buffer).unwrap();
        let request = String::from_utf8_lossy(&buffer[..read]).into_owned();
        stream.write_all(b"HTTP/1.1 200 OK\r\nServer: real-app\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").unwrap();
        request
    });
    let url = format!("http://{upstream_addr}");
    let server = start_serve(&["--upstream", &url]);
    let (status, headers, body) = request(server.addr, "GET", "/plain?x=1", "");
    assert_eq!(status, 200);
    assert_eq!(body, "ok");
    assert_eq!(
        header(&headers, "server"),
        Some("real-app"),
        "without a module nothing is changed"
    );
    let seen = answer.join().unwrap();
    assert!(seen.starts_with("GET /plain?x=1 HTTP/1.1"), "{seen}");
    assert!(
        seen.to_ascii_lowercase().contains("host: app.test"),
        "{seen}"
    );
}

#[test]
fn serve_rejects_non_loopback_listen() {
    let output = Command::new(env!("CARGO_BIN_EXE_host-test"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("only loopback addresses are allowed"),
        "{stderr}"
    );
}

#[test]
fn serve_sends_http_calls_to_cluster() {
    let probe = repo_root().join("dist/probe.wasm");
    assert!(
        probe.exists(),
        "{} is missing: build it with `make build`",
        probe.display()
    );
    // The cluster: a loopback server that answers one call with a small body.
    let cluster = TcpListener::bind("127.0.0.1:0").unwrap();
    let cluster_addr = cluster.local_addr().unwrap();
    let seen = std::thread::spawn(move || {
        let (mut stream, _) = cluster.accept().unwrap();
        let mut buffer = [0u8; 4096];
        let read = stream.read(&mut buffer).unwrap();
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nkeys!")
            .unwrap();
        String::from_utf8_lossy(&buffer[..read]).into_owned()
    });
    let cluster_arg = format!("auth=http://{cluster_addr}");
    let probe = probe.display().to_string();
    let server = start_serve(&[
        "--plugin",
        &probe,
        "--cluster",
        &cluster_arg,
        "--workers",
        "2",
    ]);
    let (status, _, body) = request(server.addr, "GET", "/call?cluster=auth&path=/jwks", "");
    assert_eq!(
        status, 200,
        "the paused request resumes after the call: {body}"
    );
    let call = seen.join().unwrap();
    assert!(call.starts_with("GET /jwks HTTP/1.1"), "{call}");
    assert!(
        call.to_ascii_lowercase().contains("host: probe.internal"),
        "{call}"
    );
}

#[test]
fn serve_counts_one_key_exactly_across_eight_workers() {
    let module = module();
    let server = start_serve(&[
        "--plugin",
        &module,
        "--config",
        "tests/serve/limits-one-key.json",
        "--workers",
        "8",
    ]);
    let addr = server.addr;
    // Sixteen clients on 127.0.0.1 send 400 requests at once; every request has the
    // same key, so the eight VMs race on one shared-data bucket.
    let threads: Vec<_> = (0..16)
        .map(|client| {
            std::thread::spawn(move || {
                (0..25)
                    .map(|index| request(addr, "GET", &format!("/api/{client}/{index}"), "").0)
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let statuses: Vec<u16> = threads
        .into_iter()
        .flat_map(|thread| thread.join().unwrap())
        .collect();
    let passed = statuses.iter().filter(|&&status| status == 200).count();
    let limited = statuses.iter().filter(|&&status| status == 429).count();
    assert_eq!(passed, 100, "statuses: {statuses:?}");
    assert_eq!(limited, 300, "statuses: {statuses:?}");
}

/// A collector on 127.0.0.1 that accepts event batches, or answers 503 while
/// `down` is set. Returns its address and the events it accepted.
fn start_collector(
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::sync::atomic::Ordering;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let events = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut raw = Vec::new();
            let mut buffer = [0u8; 8192];
            // Reads the head, then as many body bytes as content-length says.
            let body = loop {
                let Ok(read) = stream.read(&mut buffer) else {
                    break None;
                };
                if read == 0 {
                    break None;
                }
                raw.extend_from_slice(&buffer[..read]);
                let text = String::from_utf8_lossy(&raw).into_owned();
                let Some((head, body)) = text.split_once("\r\n\r\n") else {
                    continue;
                };
                let length = head
                    .lines()
                    .filter_map(|line| line.split_once(':'))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    break Some(body.to_string());
                }
            };
            let status = if down.load(Ordering::SeqCst) {
                "503 Service Unavailable"
            } else {
                if let Some(body) = body {
                    let mut events = events.lock().unwrap();
                    events.extend(body.lines().map(str::to_string));
                }
                "200 OK"
            };
            let answer =
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (addr, accepted)
}

fn wait_for_events(events: &std::sync::Mutex<Vec<String>>, count: usize, seconds: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let seen = events.lock().unwrap().len();
        if seen >= count || Instant::now() >= deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serve_exports_events_and_bounds_the_queue() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let module = module();
    let down = std::sync::Arc::new(AtomicBool::new(false));
    let (collector, events) = start_collector(down.clone());
    let cluster = format!("siem=http://{collector}");
    let server = start_serve(&[
        "--plugin",
        &module,
        "--config",
        "tests/serve/export.json",
        "--cluster",
        &cluster,
        "--workers",
        "1",
    ]);
    for index in 0..10 {
        let (status, _, _) = request(
            server.addr,
            "GET",
            &format!("/s?q=1%27%20OR%201=1--&n={index}"),
            "",
        );
        assert_eq!(status, 403);
    }
    assert_eq!(
        wait_for_events(&events, 10, 15),
        10,
        "the first ten events arrive"
    );
    let first = events.lock().unwrap()[0].clone();
    assert!(first.contains("\"action\":\"request-blocked\""), "{first}");

    // While the collector fails, thirty more events arrive; the queue keeps
    // at most twenty of them.
    down.store(true, Ordering::SeqCst);
    for index in 0..30 {
        let (status, _, _) = request(
            server.addr,
            "GET",
            &format!("/s?q=1%27%20OR%201=1--&m={index}"),
            "",
        );
        assert_eq!(
            status, 403,
            "requests are answered while the collector is down"
        );
    }
    std::thread::sleep(Duration::from_secs(4));
    down.store(false, Ordering::SeqCst);
    // Retries back off up to 8 s after four failures in a row.
    let delivered = wait_for_events(&events, 30, 40);
    std::thread::sleep(Duration::from_secs(2));
    let total = events.lock().unwrap().len();
    assert_eq!(delivered, 30, "ten, then the twenty the queue held");
    assert_eq!(total, 30, "nothing more arrives later");
    // Each request came on its own connection, so each event has its own
    // source port: thirty distinct lines mean no batch was delivered twice.
    let distinct: std::collections::BTreeSet<String> =
        events.lock().unwrap().iter().cloned().collect();
    assert_eq!(distinct.len(), 30, "no event is delivered twice");
}

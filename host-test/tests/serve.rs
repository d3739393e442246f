//! `host-test serve` end to end: the real binary on a loopback port, with the built module,
//! a real upstream and a real cluster server started by the test on 127.0.0.1.

// Test helpers outside #[test] functions fail the test on any error, so panicking is right.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
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

fn start_serve(args: &[&str]) -> Server {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_host-test"))
        .current_dir(repo_root())
        .arg("serve")
        .arg("--listen")
        .arg(addr.to_string())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start host-test serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "host-test serve did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, addr }
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

//! Times the header hardening functions natively, per request and response:
//! `plan_request` on the request headers and `response_edits` on the response
//! headers of the request profile that `host-test bench` uses.
//!
//! Usage: cargo run --release -p portcullis-core --example header_timing -- [CONFIG] [ITERATIONS]

use portcullis_core::config::Config;
use portcullis_core::headers::plan_request;
use std::hint::black_box;
use std::time::Instant;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let document = match args.next() {
        Some(path) => std::fs::read(&path).map_err(|error| format!("reading {path}: {error}"))?,
        None => b"{}".to_vec(),
    };
    let iterations: u32 = match args.next() {
        Some(count) => count.parse()?,
        None => 200_000,
    };
    let config = Config::from_json(&document)?;
    let request = pairs(&[
        (":authority", "example.com"),
        (":path", "/api/items?page=2&sort=name"),
        (":method", "GET"),
        (":scheme", "https"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
        ),
        ("accept", "application/json"),
        ("cookie", "session=abc123; theme=dark"),
        ("x-forwarded-proto", "https"),
        ("x-request-id", "00000001-0000-4000-8000-000000000001"),
    ]);
    let response = pairs(&[
        (":status", "200"),
        ("content-type", "application/json"),
        ("server", "nginx"),
        ("content-length", "12"),
    ]);
    let source = "127.0.0.1".parse().ok();

    let warm_up = iterations / 10;
    let mut edits = 0;
    for _ in 0..warm_up {
        let plan = plan_request(&config.headers, &config.cors, &request, source);
        edits += config
            .headers
            .response_edits(&response, &plan.exchange)
            .len();
    }
    let started = Instant::now();
    for _ in 0..iterations {
        let plan = plan_request(&config.headers, &config.cors, black_box(&request), source);
        let response_edits = config
            .headers
            .response_edits(black_box(&response), &plan.exchange);
        edits += black_box(response_edits).len();
    }
    let elapsed = started.elapsed();
    let per_exchange = elapsed.as_nanos() as f64 / f64::from(iterations.max(1));
    // Only the mean is measured: timing each exchange would cost more than one exchange.
    println!(
        "| native plan_request + response_edits | {iterations} | {:.2} | n/a | n/a |",
        per_exchange / 1000.0
    );
    eprintln!(
        "{} header edits per response",
        edits / (iterations + warm_up).max(1) as usize
    );
    Ok(())
}

//! Times the request filter natively on the request profile that
//! `host-test bench` uses: `Filter::inspect_headers` on a GET with three
//! headers and a query string.
//!
//! Usage: cargo run --release -p portcullis-core --example filter_timing -- [CONFIG] [ITERATIONS]

use portcullis_core::config::Config;
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
        None => 20_000,
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
    ]);
    let mut score = 0;
    for _ in 0..iterations / 10 {
        score += config.filter.inspect_headers(&request).score;
    }
    let started = Instant::now();
    for _ in 0..iterations {
        score += black_box(config.filter.inspect_headers(black_box(&request))).score;
    }
    let per_request = started.elapsed().as_nanos() as f64 / f64::from(iterations.max(1));
    // Only the mean is measured: timing each request would add to its cost.
    println!(
        "| native Filter::inspect_headers | {iterations} | {:.2} | n/a | n/a |",
        per_request / 1000.0
    );
    eprintln!("total score {score}");
    Ok(())
}

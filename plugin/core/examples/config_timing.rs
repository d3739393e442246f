//! Times parsing, checking and compiling a plugin configuration natively: the work that
//! `proxy_on_configure` does in the module.
//!
//! Usage: cargo run --release -p portcullis-core --example config_timing -- [CONFIG] [RUNS]

use portcullis_core::config::Config;
use std::hint::black_box;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let document = match args.next() {
        Some(path) => std::fs::read(&path).map_err(|error| format!("reading {path}: {error}"))?,
        None => b"{}".to_vec(),
    };
    let runs: u32 = match args.next() {
        Some(count) => count.parse()?,
        None => 50,
    };
    let mut samples = Vec::new();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        black_box(Config::from_json(black_box(&document))?);
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let max = samples.iter().copied().fold(0.0, f64::max);
    println!(
        "| configure natively (`Config::from_json`) | {} | {mean:.2} | {max:.2} |",
        samples.len()
    );
    Ok(())
}

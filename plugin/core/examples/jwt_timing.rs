//! Times a fresh token verification natively, per algorithm, through
//! `jwt::check::evaluate`, the function the module calls on each request,
//! with a store that keeps nothing so that every call verifies the
//! signature. Each call also parses the token and checks its claims, as in
//! the module.
//!
//! Keys and tokens come from a directory written by
//! `tests/bench/make_jwt_tokens.py` (its `jwt.json` and the first line of
//! each `tokens-ALG.txt`), or by default from `tests/fixtures/jwt`, whose
//! tokens are checked at 2030-01-01T00:00:00Z.
//!
//! Usage: cargo run --release -p portcullis-core --example jwt_timing -- [DIRECTORY [ITERATIONS]]

use portcullis_core::config::Config;
use portcullis_core::jwt::cache::NoStore;
use portcullis_core::jwt::check::{evaluate, Decision, InlineKeys, Request};
use std::hint::black_box;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Algorithms timed, with the name of their token in `tests/fixtures/jwt/tokens.json`.
const ALGORITHMS: [(&str, &str); 7] = [
    ("HS256", "far_hs256"),
    ("RS256", "far_rs256"),
    ("PS256", "far_ps256"),
    ("ES256", "far_es256"),
    ("ES384", "far_es384"),
    ("ES512", "far_es512"),
    ("EdDSA", "far_eddsa"),
];

/// The time the fixture tokens are valid at, as in the scenarios that use them.
const FIXTURE_TIME: u64 = 1_893_456_000;

/// A configuration and one valid token per algorithm, and the time to check them at.
struct Inputs {
    config: Config,
    tokens: Vec<(&'static str, String)>,
    now: u64,
}

fn bench_inputs(directory: &Path) -> Result<Inputs, Box<dyn std::error::Error>> {
    let config = Config::from_json(&std::fs::read(directory.join("jwt.json"))?)?;
    let mut tokens = Vec::new();
    for (alg, _) in ALGORITHMS {
        let file = directory.join(format!("tokens-{alg}.txt"));
        let text = std::fs::read_to_string(&file)?;
        let first = text
            .lines()
            .next()
            .ok_or_else(|| format!("{} is empty", file.display()))?;
        tokens.push((alg, first.to_string()));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    Ok(Inputs {
        config,
        tokens,
        now,
    })
}

fn fixture_inputs() -> Result<Inputs, Box<dyn std::error::Error>> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/jwt");
    let jwks = std::fs::read_to_string(fixtures.join("jwks.json"))?;
    let config = serde_json::json!({"jwt": {
        "providers": {"main": {
            "issuer": "https://issuer.example",
            "audiences": ["api"],
            "local_jwks": {"inline_string": jwks},
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}],
    }});
    let config = Config::from_json(config.to_string().as_bytes())?;
    let all: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("tokens.json"))?)?;
    let mut tokens = Vec::new();
    for (alg, name) in ALGORITHMS {
        let token = all
            .get(name)
            .and_then(|value| value.as_str())
            .ok_or_else(|| format!("tokens.json has no {name}"))?;
        tokens.push((alg, token.to_string()));
    }
    Ok(Inputs {
        config,
        tokens,
        now: FIXTURE_TIME,
    })
}

fn micros(nanos: u64) -> f64 {
    nanos as f64 / 1000.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let inputs = match args.next() {
        Some(directory) => bench_inputs(Path::new(&directory))?,
        None => fixture_inputs()?,
    };
    let iterations: usize = match args.next() {
        Some(count) => count.parse()?,
        None => 2000,
    };
    let policy = &inputs.config.jwt;
    let lookup = InlineKeys(policy);
    for (alg, token) in &inputs.tokens {
        let headers = vec![
            (":method".to_string(), b"GET".to_vec()),
            (":path".to_string(), b"/api/items?page=2".to_vec()),
            (
                "authorization".to_string(),
                format!("Bearer {token}").into_bytes(),
            ),
        ];
        let request = Request {
            headers: &headers,
            now: inputs.now,
        };
        // A rejected token would time the rejection, not the verification.
        match evaluate(policy, &request, &lookup, &mut NoStore) {
            Decision::Allow { accepted, .. } if !accepted.is_empty() => {}
            other => return Err(format!("the {alg} token was not accepted: {other:?}").into()),
        }
        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let started = Instant::now();
            black_box(evaluate(policy, black_box(&request), &lookup, &mut NoStore));
            samples.push(started.elapsed().as_nanos() as u64);
        }
        samples.sort_unstable();
        let mean = samples.iter().sum::<u64>() / samples.len().max(1) as u64;
        let at = |q: f64| {
            samples
                .get(((samples.len() as f64 - 1.0) * q) as usize)
                .copied()
                .unwrap_or(0)
        };
        println!(
            "| native, {alg} | {iterations} | {:.1} | {:.1} | {:.1} |",
            micros(mean),
            micros(at(0.5)),
            micros(at(0.99))
        );
    }
    Ok(())
}

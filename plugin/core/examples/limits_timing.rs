//! Times the per-key limits natively: one request check against an
//! in-memory store with Envoy's shared-data semantics, for one key hit again
//! and again, and for a new key on every request. Then times a login
//! round trip through a failure-counting policy: the request check and a
//! response that is no failure. Last, fills a policy with distinct keys and
//! prints the shared-data bytes per tracked key.
//!
//! Usage: cargo run --release -p portcullis-core --example limits_timing -- [ITERATIONS]

use portcullis_core::config::Config;
use portcullis_core::limits::key::KeyInputs;
use portcullis_core::limits::store::{Anchor, MemoryStore};
use portcullis_core::limits::{Context, LimitVerdict, Report};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// A per-address policy with a limit of a million requests per window. The
/// clock stands still, so a run of up to a million checks counts every
/// request and lets it through.
const CONFIG: &str = r#"{"limits": {"policies": [
    {"name": "per-address", "key": [{"address": {}}], "limit": 1000000, "window_seconds": 1}
]}}"#;

/// A per-address login policy that counts 401 responses.
const LOGIN_CONFIG: &str = r#"{"limits": {"policies": [
    {"name": "login", "key": [{"address": {}}], "count": "failures",
     "failure_statuses": [401], "limit": 5, "window_seconds": 300}
]}}"#;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations: u32 = match std::env::args().nth(1) {
        Some(count) => count.parse()?,
        None => 200_000,
    };
    let config = Config::from_json(CONFIG.as_bytes())?;
    let limits = &config.limits;
    let headers = pairs(&[(":method", "GET"), (":path", "/api/items?page=2")]);
    let store = MemoryStore::default();
    let anchor = Anchor::default();
    let salt = [7u8; 32];
    let now = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    let context = Context {
        store: &store,
        anchor: &anchor,
        salt: &salt,
        now,
    };

    let check = |client: IpAddr| {
        let mut request = limits.start_request("GET", b"/api/items", Some(client));
        let inputs = KeyInputs {
            headers: &headers,
            client_ip: Some(client),
            claims: None,
            body: None,
        };
        let mut report = Report::default();
        request.on_request_headers(limits, &inputs, &context, &mut report)
    };

    let same = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    let mut rejected = 0u32;
    let started = Instant::now();
    for _ in 0..iterations {
        if black_box(check(black_box(same))) != LimitVerdict::Continue {
            rejected += 1;
        }
    }
    let one_key = started.elapsed().as_nanos() as f64 / f64::from(iterations.max(1));

    let started = Instant::now();
    for index in 0..iterations {
        let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + index));
        if black_box(check(client)) != LimitVerdict::Continue {
            rejected += 1;
        }
    }
    let new_keys = started.elapsed().as_nanos() as f64 / f64::from(iterations.max(1));

    // Only the mean is measured: timing each check would cost about as much
    // as the check.
    println!(
        "| native check, one key | {iterations} | {:.2} | n/a | n/a |",
        one_key / 1000.0
    );
    println!(
        "| native check, a new key each time | {iterations} | {:.2} | n/a | n/a |",
        new_keys / 1000.0
    );
    let login_round_trip = time_login_round_trip(iterations)?;
    println!(
        "| native login round trip (check and 200 response), one key | {iterations} | {:.2} | n/a | n/a |",
        login_round_trip / 1000.0
    );
    let (values, bytes) = store.usage();
    let tracked = limits
        .policies()
        .iter()
        .map(|policy| policy.buckets as usize * 4)
        .sum::<usize>();
    eprintln!(
        "{rejected} rejected; {values} shared-data values of {bytes} bytes for {tracked} tracked keys"
    );
    println!(
        "BYTES_PER_KEY {:.1} {values} {bytes} {tracked}",
        bytes as f64 / tracked.max(1) as f64
    );
    Ok(())
}

/// Returns the mean ns of a request check and a 200 response for one key of
/// a failure-counting policy.
fn time_login_round_trip(iterations: u32) -> Result<f64, Box<dyn std::error::Error>> {
    let config = Config::from_json(LOGIN_CONFIG.as_bytes())?;
    let limits = &config.limits;
    let headers = pairs(&[(":method", "POST"), (":path", "/login")]);
    let store = MemoryStore::default();
    let anchor = Anchor::default();
    let salt = [7u8; 32];
    let context = Context {
        store: &store,
        anchor: &anchor,
        salt: &salt,
        now: UNIX_EPOCH + Duration::from_secs(1_900_000_000),
    };

    let client = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 8));
    let inputs = KeyInputs {
        headers: &headers,
        client_ip: Some(client),
        claims: None,
        body: None,
    };

    let mut rejected = 0u32;
    let started = Instant::now();
    for _ in 0..iterations {
        let mut request = limits.start_request("POST", b"/login", Some(client));
        let mut report = Report::default();
        let verdict = request.on_request_headers(limits, &inputs, &context, &mut report);
        if black_box(verdict) != LimitVerdict::Continue {
            rejected += 1;
        }
        black_box(request.on_response_headers(limits, Some(200), &context, &mut report));
    }
    let mean = started.elapsed().as_nanos() as f64 / f64::from(iterations.max(1));

    if rejected > 0 {
        eprintln!("login round trip: {rejected} rejected");
    }
    Ok(mean)
}

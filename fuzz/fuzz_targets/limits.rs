//! Random sequences of limits operations against `MemoryStore`: requests
//! with one of six keys, their bodies, response statuses and `on_log`,
//! reclaim sweeps with a cursor, and a clock that moves forward and back.
//!
//! Besides the absence of panics, the target checks two invariants:
//! - The store never holds more keys than the policy has buckets, plus the
//!   anchor, nor more bytes than those keys and full buckets take.
//! - For request counting in block mode without lockout, while a single key
//!   has been used: at most `limit` requests are let through in each fixed
//!   window (sliding window), or `limit` plus the refill over the span
//!   (token bucket). Time is the latest time the key's entry has seen,
//!   because the module clamps a clock that moves backwards to it, and the
//!   counts restart when a sweep drops the key's expired entry.

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use portcullis_core::config::Config;
use portcullis_core::limits::entry::{Bucket, ENTRY_BYTES, HEADER_BYTES, WAYS};
use portcullis_core::limits::key::KeyInputs;
use portcullis_core::limits::policy::{Algorithm, Counting, Mode, Policy};
use portcullis_core::limits::store::{Anchor, MemoryStore};
use portcullis_core::limits::{Context, LimitVerdict, Limits, Report, RequestLimits};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

const SALT: &[u8] = b"fuzz salt";
/// Host time at the start of each input, on a minute boundary, in ms.
const T0: u64 = 1_700_000_040_000;
const KEYS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const STATUSES: [u32; 6] = [200, 401, 403, 429, 500, 0];
/// Requests in flight at once; a new one replaces the oldest.
const MAX_IN_FLIGHT: usize = 4;

/// Every combination of counting, algorithm, limit, window and lockout, with
/// 8 keys in 2 buckets so that keys evict each other; then a policy keyed on
/// a body field and one in monitor mode.
fn configs() -> &'static [Limits] {
    static CONFIGS: OnceLock<Vec<Limits>> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let mut documents = Vec::new();
        for count in ["requests", "failures"] {
            for algorithm in ["sliding_window", "token_bucket"] {
                for limit in [1, 3] {
                    for window in [1, 7] {
                        for lockout in [
                            "",
                            r#","lockout_seconds":2"#,
                            r#","lockout_seconds":2,"escalation":{"factor":3,"max_seconds":20,"forget_after_seconds":30}"#,
                        ] {
                            documents.push(format!(
                                r#"{{"name":"p","key":[{{"header":"x-key"}}],"count":"{count}","algorithm":"{algorithm}","limit":{limit},"window_seconds":{window},"max_keys":8{lockout}}}"#
                            ));
                        }
                    }
                }
            }
        }
        documents.push(
            r#"{"name":"body","key":[{"address":{"ipv4_prefix":24}},{"body_field":"username","lowercase":true}],"count":"failures","limit":2,"window_seconds":5,"lockout_seconds":3,"max_keys":4}"#
                .to_string(),
        );
        documents.push(
            r#"{"name":"monitor","key":[{"header":"x-key"}],"mode":"monitor","limit":1,"window_seconds":3,"max_keys":4,"on_store_failure":"allow"}"#
                .to_string(),
        );
        documents
            .iter()
            .map(|policy| {
                let document = format!(r#"{{"limits":{{"policies":[{policy}]}}}}"#);
                match Config::from_json(document.as_bytes()) {
                    Ok(config) => config.limits,
                    Err(error) => panic!("fuzz target configuration {document} is invalid: {error}"),
                }
            })
            .collect()
    })
}

enum Operation {
    Request { key: usize },
    Body { slot: usize },
    Response { slot: usize, status: u32 },
    Log { slot: usize, code: Option<u32> },
    Reclaim { batch: u32 },
    Forward { ms: u64 },
    Back { ms: u64 },
}

fn operation(u: &mut Unstructured) -> Result<Operation> {
    let slot = |u: &mut Unstructured| u.choose_index(MAX_IN_FLIGHT);
    let status = |u: &mut Unstructured| -> Result<u32> {
        Ok(if u.ratio(1, 8)? {
            u32::from(u.arbitrary::<u16>()?)
        } else {
            *u.choose(&STATUSES)?
        })
    };
    let ms = |u: &mut Unstructured| -> Result<u64> {
        let scale = *u.choose(&[1u64, 100, 1000])?;
        Ok(u64::from(u.arbitrary::<u16>()?) * scale)
    };
    Ok(match u.choose_index(7)? {
        0 => Operation::Request {
            key: u.choose_index(KEYS.len())?,
        },
        1 => Operation::Body { slot: slot(u)? },
        2 => Operation::Response {
            slot: slot(u)?,
            status: status(u)?,
        },
        3 => Operation::Log {
            slot: slot(u)?,
            code: if u.arbitrary()? { Some(status(u)?) } else { None },
        },
        4 => Operation::Reclaim {
            batch: u.int_in_range(0..=3)?,
        },
        5 => Operation::Forward { ms: ms(u)? },
        _ => Operation::Back { ms: ms(u)? },
    })
}

struct InFlight {
    state: RequestLimits,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

fn inputs<'a>(headers: &'a [(String, Vec<u8>)], body: &'a [u8]) -> KeyInputs<'a> {
    KeyInputs {
        headers,
        client_ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))),
        claims: None,
        body: Some(body),
    }
}

/// What the module may let through for one key, tracked for the invariant.
#[derive(Default)]
struct Model {
    /// Latest request time of the key's entry, in ms.
    latest_ms: Option<u64>,
    /// Requests let through per fixed-window start (sliding window).
    per_window: HashMap<u64, u32>,
    /// Times of the requests let through (token bucket).
    allowed_at: Vec<u64>,
}

impl Model {
    fn observe(&mut self, now_ms: u64) -> u64 {
        let latest = self.latest_ms.map_or(now_ms, |latest| latest.max(now_ms));
        self.latest_ms = Some(latest);
        latest
    }

    fn allowed(&mut self, policy: &Policy, at: u64) {
        match policy.algorithm {
            Algorithm::SlidingWindow => {
                let start = at - at % policy.window_ms;
                let count = self.per_window.entry(start).or_default();
                *count += 1;
                assert!(
                    *count <= policy.limit,
                    "{count} requests let through in the window at {start} ms, limit {}",
                    policy.limit
                );
            }
            Algorithm::TokenBucket => {
                self.allowed_at.push(at);
                let total = self.allowed_at.len() as u64;
                for (index, &first) in self.allowed_at.iter().enumerate() {
                    let refill = (at - first) * u64::from(policy.limit) / policy.window_ms;
                    let bound = u64::from(policy.limit) + refill;
                    assert!(
                        total - index as u64 <= bound,
                        "{} requests let through between {first} and {at} ms, bound {bound}",
                        total - index as u64
                    );
                }
            }
        }
    }
}

fn checks_invariant(policy: &Policy) -> bool {
    policy.counting == Counting::Requests && policy.mode == Mode::Block && policy.lockout.is_none()
}

fn store_is_empty_of_entries(store: &MemoryStore, policy: &Policy) -> bool {
    (0..policy.buckets).all(|index| {
        store
            .value(&policy.bucket_key(index))
            .is_none_or(|raw| Bucket::decode(&raw).entries.is_empty())
    })
}

fn check_usage(store: &MemoryStore, limits: &Limits) {
    let buckets: usize = limits.policies().iter().map(|p| p.buckets as usize).sum();
    let longest_key = limits
        .policies()
        .iter()
        .map(|p| p.bucket_key(p.buckets).len())
        .max()
        .unwrap_or(0);
    let (keys, bytes) = store.usage();
    assert!(keys <= buckets + 1, "{keys} keys stored for {buckets} buckets");
    let bucket_bytes = HEADER_BYTES + WAYS * ENTRY_BYTES;
    assert!(
        bytes <= keys * (longest_key.max(32) + bucket_bytes),
        "{bytes} bytes stored in {keys} keys"
    );
}

// The configurations are compiled before the first input, so that their
// cost does not count against the time limit of one input.
fuzz_target!(init: { configs(); }, |data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(limits) = u.choose(configs()) else {
        return;
    };
    let policy = &limits.policies()[0];
    let store = MemoryStore::default();
    let anchor = Anchor::default();
    let mut now_ms = T0;
    let mut cursor: Vec<u32> = Vec::new();
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut keys_used = [false; KEYS.len()];
    let mut model = Model::default();

    // Unstructured returns default values once its bytes run out, so the
    // loop ends on the length, not on an error.
    while !u.is_empty() {
        let Ok(operation) = operation(&mut u) else {
            break;
        };
        let context = Context {
            store: &store,
            anchor: &anchor,
            salt: SALT,
            now: UNIX_EPOCH + Duration::from_millis(now_ms),
        };
        let mut report = Report::default();
        match operation {
            Operation::Request { key } => {
                keys_used[key] = true;
                let mut request = InFlight {
                    state: limits.start_request("POST", b"/login", None),
                    headers: vec![("x-key".to_string(), KEYS[key].as_bytes().to_vec())],
                    body: format!("username={}", KEYS[key]).into_bytes(),
                };
                let inputs = inputs(&request.headers, &request.body);
                let verdict =
                    request
                        .state
                        .on_request_headers(limits, &inputs, &context, &mut report);
                let single_key = keys_used.iter().filter(|&&used| used).count() == 1;
                if checks_invariant(policy) && single_key {
                    let at = model.observe(now_ms);
                    if verdict == LimitVerdict::Continue {
                        model.allowed(policy, at);
                    }
                }
                if in_flight.len() == MAX_IN_FLIGHT {
                    in_flight.remove(0);
                }
                in_flight.push(request);
            }
            Operation::Body { slot } => {
                if let Some(request) = in_flight.get_mut(slot) {
                    if request.state.waits_for_body() {
                        let inputs = inputs(&request.headers, &request.body);
                        let _ =
                            request
                                .state
                                .on_request_body(limits, &inputs, &context, &mut report);
                    }
                }
            }
            Operation::Response { slot, status } => {
                if let Some(request) = in_flight.get_mut(slot) {
                    let status = (status != 0).then_some(status);
                    let _ = request
                        .state
                        .on_response_headers(limits, status, &context, &mut report);
                }
            }
            Operation::Log { slot, code } => {
                if let Some(request) = in_flight.get_mut(slot) {
                    request.state.on_log(limits, code, &context, &mut report);
                }
            }
            Operation::Reclaim { batch } => {
                let _ = limits.reclaim(&context, &mut cursor, batch);
                if store_is_empty_of_entries(&store, policy) {
                    model = Model::default();
                }
            }
            Operation::Forward { ms } => now_ms = now_ms.saturating_add(ms),
            Operation::Back { ms } => now_ms = now_ms.saturating_sub(ms),
        }
        check_usage(&store, limits);
    }
});

use super::entry::{Bucket, ENTRY_BYTES, HEADER_BYTES, WAYS};
use super::event::{LimitAction, LimitEvent, LimitMetric};
use super::key::{KeyHash, KeyInputs, MissingKey};
use super::policy::{Algorithm, Counting, Mode, StoreFailure};
use super::store::{
    self, Anchor, HostError, MemoryStore, SetOutcome, SharedStore, StoreError, Update, MAX_ATTEMPTS,
};
use super::*;
use crate::config::Config;
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Barrier;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod in_flight;

const SALT: &[u8] = b"test salt";
/// A host time well past the epoch, on a minute boundary, in ms.
const T0: u64 = 1_700_000_040_000;

fn limits_from(json: &str) -> Limits {
    match Config::from_json(json.as_bytes()) {
        Ok(config) => config.limits,
        Err(error) => panic!("{json}: {error}"),
    }
}

fn config_error(json: &str) -> String {
    match Config::from_json(json.as_bytes()) {
        Ok(_) => panic!("{json} was accepted"),
        Err(error) => error.to_string(),
    }
}

/// Builds a `limits` section with one policy made of `fields`, and default
/// values for the required fields that `fields` leaves out.
fn one_policy(fields: Value) -> String {
    let mut policy = json!({
        "name": "login",
        "key": [{"address": {}}],
        "limit": 3,
        "window_seconds": 60,
    });
    let object = policy.as_object_mut().unwrap();
    for (name, value) in fields.as_object().unwrap() {
        object.insert(name.clone(), value.clone());
    }
    json!({"limits": {"policies": [policy]}}).to_string()
}

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn header_pairs(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect()
}

/// One request, with the values that the adapter passes to the limits.
#[derive(Clone, Default)]
struct Request {
    method: &'static str,
    path: &'static str,
    ip: Option<IpAddr>,
    headers: Vec<(String, Vec<u8>)>,
    claims: Option<Map<String, Value>>,
    body: Option<Vec<u8>>,
}

fn from(address: &str) -> Request {
    Request {
        method: "POST",
        path: "/login",
        ip: Some(ip(address)),
        ..Request::default()
    }
}

impl Request {
    fn inputs(&self) -> KeyInputs<'_> {
        KeyInputs {
            headers: &self.headers,
            client_ip: self.ip,
            claims: self.claims.as_ref(),
            body: self.body.as_deref(),
        }
    }
}

/// The outcome of the request phase of one request.
struct Sent {
    verdict: LimitVerdict,
    state: RequestLimits,
    report: Report,
}

impl Sent {
    fn rejected(&self) -> bool {
        matches!(self.verdict, LimitVerdict::Reject(_))
    }

    fn response(&self) -> &LimitResponse {
        match &self.verdict {
            LimitVerdict::Reject(response) => response,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn actions(&self) -> Vec<LimitAction> {
        self.report
            .events
            .iter()
            .map(|event| event.action)
            .collect()
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Compiled limits, a store shared by every worker, and one worker's anchor.
struct Harness {
    limits: Limits,
    store: MemoryStore,
    anchor: Anchor,
    salt: Vec<u8>,
}

impl Harness {
    fn new(json: &str) -> Self {
        Harness {
            limits: limits_from(json),
            store: MemoryStore::default(),
            anchor: Anchor::default(),
            salt: SALT.to_vec(),
        }
    }

    fn context(&self, ms: u64) -> Context<'_, MemoryStore> {
        Context {
            store: &self.store,
            anchor: &self.anchor,
            salt: &self.salt,
            now: at(ms),
        }
    }

    /// Runs the request headers and, when a key waits for it, the body.
    fn send(&self, request: &Request, ms: u64) -> Sent {
        let context = self.context(ms);
        let mut report = Report::default();
        let mut state =
            self.limits
                .start_request(request.method, request.path.as_bytes(), request.ip);
        let mut verdict =
            state.on_request_headers(&self.limits, &request.inputs(), &context, &mut report);
        if verdict == LimitVerdict::NeedBody {
            verdict = state.on_request_body(&self.limits, &request.inputs(), &context, &mut report);
        }
        Sent {
            verdict,
            state,
            report,
        }
    }

    /// Sends a request and, when it is let through, responds with `status`.
    fn attempt(&self, request: &Request, status: u32, ms: u64) -> Sent {
        let mut sent = self.send(request, ms);
        if !sent.rejected() {
            self.respond(&mut sent, status, ms);
        }
        sent
    }

    fn respond(&self, sent: &mut Sent, status: u32, ms: u64) -> Vec<(String, String)> {
        sent.state.on_response_headers(
            &self.limits,
            Some(status),
            &self.context(ms),
            &mut sent.report,
        )
    }

    fn reclaim(&self, ms: u64) -> Report {
        let mut cursor = Vec::new();
        self.limits
            .reclaim(&self.context(ms), &mut cursor, u32::MAX)
    }

    fn key_of(&self, request: &Request) -> KeyHash {
        let policy = &self.limits.policies()[0];
        policy
            .key
            .derive(&self.salt, &policy.name, &request.inputs())
            .unwrap()
    }
}

// Configuration.

#[test]
fn config_compiles_valid_policy() {
    let limits = limits_from(
        r#"{"limits": {
            "allowlist": ["10.0.0.0/8", "2001:db8::/32"],
            "policies": [{
                "name": "login",
                "match": {"path": {"exact": "/login"}, "methods": ["post"]},
                "key": [{"address": {}}, {"body_field": "username", "lowercase": true}],
                "count": "failures",
                "failure_statuses": [401, 403],
                "limit": 5,
                "window_seconds": 300,
                "lockout_seconds": 1800,
                "escalation": {"factor": 2, "max_seconds": 86400, "forget_after_seconds": 86400},
                "max_keys": 1000
            }]
        }}"#,
    );
    assert!(limits.enabled());

    let policy = &limits.policies()[0];
    assert_eq!(policy.name, "login");
    assert_eq!(policy.methods, vec!["POST".to_string()]);
    assert!(policy.matches("POST", "/login"));
    assert!(!policy.matches("GET", "/login"));
    assert!(!policy.matches("POST", "/login/x"));

    assert_eq!(policy.counting, Counting::Failures(vec![401, 403]));
    assert_eq!(policy.algorithm, Algorithm::SlidingWindow);
    assert_eq!(policy.limit, 5);
    assert_eq!(policy.window_ms, 300_000);

    let lockout = policy.lockout.unwrap();
    assert_eq!(lockout.base_ms, 1_800_000);
    let escalation = lockout.escalation.unwrap();
    assert_eq!(escalation.factor, 2);
    assert_eq!(escalation.max_ms, 86_400_000);
    assert_eq!(escalation.forget_after_ms, 86_400_000);

    assert_eq!(policy.mode, Mode::Block);
    assert_eq!(policy.status, 429);
    assert_eq!(policy.on_store_failure, StoreFailure::Reject);
    assert_eq!(policy.key.missing, MissingKey::Count);
    assert!(policy.key.needs_body());
    assert_eq!(policy.buckets, 250);
    assert_eq!(policy.policy_item, "\"login\";q=5;w=300");

    assert!(limits.is_allowlisted(Some(ip("10.1.2.3"))));
    assert!(limits.is_allowlisted(Some(ip("2001:db8::1"))));
    assert!(!limits.is_allowlisted(Some(ip("11.0.0.1"))));
    assert!(!limits.is_allowlisted(None));
}

#[test]
fn config_defaults_leave_limits_off() {
    let limits = limits_from("{}");
    assert!(!limits.enabled());
    assert_eq!(limits.max_body_bytes(), 16 * 1024);
}

#[test]
fn config_rejects_invalid_fields() {
    let too_many: Vec<Value> = (0..65)
        .map(|index| {
            json!({
                "name": format!("p{index}"),
                "key": [{"address": {}}],
                "limit": 1,
                "window_seconds": 1,
            })
        })
        .collect();
    let duplicate = json!({"limits": {"policies": [
        {"name": "login", "key": [{"address": {}}], "limit": 1, "window_seconds": 1},
        {"name": "login", "key": [{"address": {}}], "limit": 1, "window_seconds": 1},
    ]}})
    .to_string();
    let cases = [
        (
            one_policy(json!({"colour": "red"})),
            "limits.policies[0].colour: ",
        ),
        (
            one_policy(json!({"key": [{"header": "x-user", "case": true}]})),
            "limits.policies[0].key[0].case: ",
        ),
        (
            r#"{"limits": {"policy": []}}"#.to_string(),
            "limits.policy: ",
        ),
        (
            one_policy(json!({"limit": 0})),
            "limits.policies[0].limit: ",
        ),
        (
            one_policy(json!({"limit": 1_000_001})),
            "limits.policies[0].limit: ",
        ),
        (
            one_policy(json!({"window_seconds": 0})),
            "limits.policies[0].window_seconds: ",
        ),
        (
            json!({"limits": {"allowlist": ["10.0.0.0/8", "10.0.0.0/33"]}}).to_string(),
            "limits.allowlist[1]: ",
        ),
        (
            json!({"limits": {"allowlist": ["not an address"]}}).to_string(),
            "limits.allowlist[0]: ",
        ),
        (duplicate, "limits.policies[1].name: "),
        (
            one_policy(json!({"match": {"path": {"regex": "(unclosed"}}})),
            "limits.policies[0].match.path.regex: ",
        ),
        (
            json!({"limits": {"policies": too_many}}).to_string(),
            "limits.policies: ",
        ),
        (
            one_policy(json!({"max_keys": 0})),
            "limits.policies[0].max_keys: ",
        ),
        (
            one_policy(json!({"max_keys": (1 << 20) + 1})),
            "limits.policies[0].max_keys: ",
        ),
        (
            one_policy(json!({"name": "has space"})),
            "limits.policies[0].name: ",
        ),
        (one_policy(json!({"key": []})), "limits.policies[0].key: "),
        (
            one_policy(json!({"key": [{"header": "x", "cookie": "y"}]})),
            "limits.policies[0].key[0]: ",
        ),
        (
            one_policy(json!({"key": [{"address": {"ipv6_prefix": 129}}]})),
            "limits.policies[0].key[0].address.ipv6_prefix: ",
        ),
        (
            one_policy(json!({"escalation": {"factor": 2}})),
            "limits.policies[0].escalation: ",
        ),
        (
            one_policy(json!({"lockout_seconds": 60, "escalation": {"max_seconds": 30}})),
            "limits.policies[0].escalation.max_seconds: ",
        ),
        (
            one_policy(json!({"count": "failures", "failure_statuses": []})),
            "limits.policies[0].failure_statuses: ",
        ),
        (
            one_policy(json!({"status": 200})),
            "limits.policies[0].status: ",
        ),
        (
            json!({"limits": {"max_body_bytes": 2 * 1024 * 1024}}).to_string(),
            "limits.max_body_bytes: ",
        ),
    ];
    for (json, expected) in cases {
        let message = config_error(&json);
        assert!(message.starts_with(expected), "{json}: {message}");
    }
}

#[test]
fn config_accepts_max_policies_and_max_keys() {
    let policies: Vec<Value> = (0..64)
        .map(|index| {
            json!({
                "name": format!("p{index}"),
                "key": [{"address": {}}],
                "limit": 1,
                "window_seconds": 1,
                "max_keys": 1 << 20,
            })
        })
        .collect();
    let limits = limits_from(&json!({"limits": {"policies": policies}}).to_string());
    assert_eq!(limits.policies().len(), 64);
    assert_eq!(limits.policies()[0].buckets, (1 << 20) / WAYS as u32);
}

// Request counting.

#[test]
fn sliding_window_allows_limit_then_rejects() {
    let harness = Harness::new(&one_policy(json!({})));
    let client = from("192.0.2.1");
    for _ in 0..3 {
        let sent = harness.send(&client, T0 + 1000);
        assert_eq!(sent.verdict, LimitVerdict::Continue);
        assert_eq!(sent.report.metrics, vec![LimitMetric::Allowed]);
    }
    let sent = harness.send(&client, T0 + 1000);
    assert!(sent.rejected());
    assert_eq!(sent.actions(), vec![LimitAction::RateLimited]);
    assert_eq!(sent.report.metrics, vec![LimitMetric::Rejected]);
    assert_eq!(sent.report.events[0].status_code, Some(429));
    let other = harness.send(&from("192.0.2.2"), T0 + 1000);
    assert_eq!(other.verdict, LimitVerdict::Continue);
}

#[test]
fn sliding_window_weighs_previous_window() {
    let harness = Harness::new(&one_policy(json!({"limit": 10})));
    let client = from("192.0.2.1");
    let allowed = |ms: u64| {
        (0..20)
            .take_while(|_| !harness.send(&client, ms).rejected())
            .count()
    };
    assert_eq!(allowed(T0 + 1000), 10);
    // Halfway into the next window the previous one weighs 10 * 0.5.
    assert_eq!(allowed(T0 + 90_000), 5);
    // At 36 s into that window: 10 * 24/60 + 5 = 9, so one more fits.
    let rejected = harness.send(&client, T0 + 90_000);
    assert_eq!(rejected.response().headers[1].1, "6");
    assert!(harness.send(&client, T0 + 95_999).rejected());
    assert!(!harness.send(&client, T0 + 96_000).rejected());
    // Two windows later nothing is left of the counts.
    assert_eq!(allowed(T0 + 240_000), 10);
}

#[test]
fn rate_limit_headers_report_remaining_and_reset() {
    let harness = Harness::new(&one_policy(json!({})));
    let client = from("192.0.2.1");
    let mut expected_remaining = [2, 1, 0].into_iter();
    for _ in 0..3 {
        let mut sent = harness.send(&client, T0 + 1000);
        let headers = harness.respond(&mut sent, 200, T0 + 1000);
        let remaining = expected_remaining.next().unwrap();
        assert_eq!(
            header(&headers, "ratelimit-policy"),
            Some("\"login\";q=3;w=60")
        );
        // A request counted at 1 s weighs on the sliding window until the
        // end of the next fixed window, 119 s later.
        assert_eq!(
            header(&headers, "ratelimit"),
            Some(format!("\"login\";r={remaining};t=119").as_str())
        );
    }
    // A client that waits `t` after `r=0` is let through.
    assert!(!harness.send(&client, T0 + 120_000).rejected());
}

#[test]
fn rate_limit_headers_can_be_turned_off() {
    let harness = Harness::new(&one_policy(json!({"response_headers": false})));
    let mut sent = harness.send(&from("192.0.2.1"), T0);
    let headers = harness.respond(&mut sent, 200, T0);
    assert!(headers.is_empty());
}

#[test]
fn reject_response_carries_retry_after_and_policy() {
    let harness = Harness::new(&one_policy(json!({})));
    let client = from("192.0.2.1");
    for _ in 0..3 {
        harness.send(&client, T0 + 1000);
    }
    let sent = harness.send(&client, T0 + 1000);
    let response = sent.response();
    assert_eq!(response.status, 429);
    // Only at 20 s into the next window does 3 * 40/60 = 2 leave room.
    assert_eq!(header(&response.headers, "retry-after"), Some("79"));
    assert_eq!(
        header(&response.headers, "ratelimit-policy"),
        Some("\"login\";q=3;w=60")
    );
    assert_eq!(
        header(&response.headers, "ratelimit"),
        Some("\"login\";r=0;t=79")
    );
    assert_eq!(
        header(&response.headers, "content-type"),
        Some("application/json")
    );
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body, json!({"error": "rate_limited", "policy": "login"}));
    assert_eq!(sent.report.events[0].retry_after_seconds, Some(79));
    assert!(harness.send(&client, T0 + 79_999).rejected());
    assert!(!harness.send(&client, T0 + 80_000).rejected());
}

#[test]
fn reject_response_uses_configured_status_and_body() {
    let harness = Harness::new(&one_policy(json!({
        "limit": 1, "status": 503, "body": "slow down"
    })));
    let client = from("192.0.2.1");
    harness.send(&client, T0);
    let sent = harness.send(&client, T0);
    let response = sent.response();
    assert_eq!(response.status, 503);
    assert_eq!(response.body, b"slow down");
    assert_eq!(
        header(&response.headers, "content-type"),
        Some("text/plain; charset=utf-8")
    );
}

#[test]
fn rejected_stream_is_not_counted_again() {
    let harness = Harness::new(&one_policy(json!({
        "count": "failures", "limit": 1, "lockout_seconds": 60
    })));
    let client = from("192.0.2.1");
    harness.attempt(&client, 401, T0);
    let mut sent = harness.send(&client, T0 + 1000);
    assert!(sent.rejected());
    let headers = harness.respond(&mut sent, 429, T0 + 1000);
    assert!(headers.is_empty());
    sent.state.on_log(
        &harness.limits,
        None,
        &harness.context(T0 + 1000),
        &mut sent.report,
    );
    assert_eq!(sent.report.metrics, vec![LimitMetric::Rejected]);
}

#[test]
fn request_lockout_starts_past_limit() {
    let harness = Harness::new(&one_policy(json!({"limit": 2, "lockout_seconds": 600})));
    let client = from("192.0.2.1");
    assert!(!harness.send(&client, T0).rejected());
    assert!(!harness.send(&client, T0).rejected());
    let sent = harness.send(&client, T0);
    assert_eq!(
        sent.actions(),
        vec![LimitAction::KeyLockedOut, LimitAction::RateLimited]
    );
    assert_eq!(header(&sent.response().headers, "retry-after"), Some("600"));
    // The lockout outlasts the window.
    assert!(harness.send(&client, T0 + 599_999).rejected());
    assert!(!harness.send(&client, T0 + 600_000).rejected());
}

// Token bucket.

#[test]
fn token_bucket_bursts_then_refills() {
    let harness = Harness::new(&one_policy(json!({
        "algorithm": "token_bucket", "limit": 4, "window_seconds": 60
    })));
    let client = from("192.0.2.1");
    for remaining in [3, 2, 1, 0] {
        let mut sent = harness.send(&client, T0);
        let headers = harness.respond(&mut sent, 200, T0);
        let reset = (4 - remaining) * 15;
        assert_eq!(
            header(&headers, "ratelimit"),
            Some(format!("\"login\";r={remaining};t={reset}").as_str())
        );
    }
    let sent = harness.send(&client, T0);
    // One token comes back every 60 / 4 = 15 s.
    assert_eq!(header(&sent.response().headers, "retry-after"), Some("15"));
    assert!(harness.send(&client, T0 + 14_999).rejected());
    assert!(!harness.send(&client, T0 + 15_000).rejected());
    assert!(harness.send(&client, T0 + 15_000).rejected());
    // A full window refills the whole burst, and no more.
    let refilled = (0..10)
        .take_while(|_| !harness.send(&client, T0 + 200_000).rejected())
        .count();
    assert_eq!(refilled, 4);
}

// Failure counting and lockouts.

fn failures_policy(extra: Value) -> String {
    let mut fields = json!({
        "count": "failures",
        "failure_statuses": [401, 403],
        "limit": 3,
        "window_seconds": 60,
        "lockout_seconds": 300,
    });
    let object = fields.as_object_mut().unwrap();
    for (name, value) in extra.as_object().unwrap() {
        object.insert(name.clone(), value.clone());
    }
    one_policy(fields)
}

#[test]
fn failures_count_only_configured_statuses() {
    let harness = Harness::new(&failures_policy(json!({})));
    let client = from("192.0.2.1");
    for status in [200, 302, 404, 429, 500, 200] {
        let sent = harness.attempt(&client, status, T0);
        assert!(!sent.rejected(), "{status}");
        assert!(!sent.report.metrics.contains(&LimitMetric::Failures));
    }
    let sent = harness.attempt(&client, 401, T0);
    assert_eq!(
        sent.report.metrics,
        vec![LimitMetric::Allowed, LimitMetric::Failures]
    );
    harness.attempt(&client, 403, T0);
    // It gets a response, so that it is no longer in flight.
    assert!(!harness.attempt(&client, 200, T0).rejected());
    let third = harness.attempt(&client, 401, T0);
    assert_eq!(third.actions(), vec![LimitAction::KeyLockedOut]);
    assert_eq!(third.report.events[0].lockout_seconds, Some(300));
    assert_eq!(third.report.events[0].lockout_level, Some(1));
    let locked = harness.send(&client, T0 + 1000);
    assert!(locked.rejected());
    assert_eq!(
        header(&locked.response().headers, "retry-after"),
        Some("299")
    );
}

#[test]
fn failure_response_reports_quota_after_count() {
    let harness = Harness::new(&failures_policy(json!({})));
    let client = from("192.0.2.1");
    let mut sent = harness.send(&client, T0 + 1000);
    let headers = harness.respond(&mut sent, 200, T0 + 1000);
    assert_eq!(header(&headers, "ratelimit"), Some("\"login\";r=3;t=0"));
    let mut sent = harness.send(&client, T0 + 1000);
    let headers = harness.respond(&mut sent, 401, T0 + 1000);
    assert_eq!(header(&headers, "ratelimit"), Some("\"login\";r=2;t=119"));
    let mut sent = harness.send(&client, T0 + 1000);
    let headers = harness.respond(&mut sent, 200, T0 + 1000);
    assert_eq!(header(&headers, "ratelimit"), Some("\"login\";r=2;t=119"));
}

#[test]
fn stream_without_response_counts_as_failure() {
    let harness = Harness::new(&failures_policy(json!({"limit": 2})));
    let client = from("192.0.2.1");
    for response_code in [None, Some(0)] {
        let mut sent = harness.send(&client, T0);
        sent.state.on_log(
            &harness.limits,
            response_code,
            &harness.context(T0),
            &mut sent.report,
        );
        assert!(
            sent.report.metrics.contains(&LimitMetric::Failures),
            "{response_code:?}"
        );
    }
    assert!(harness.send(&client, T0).rejected());
}

#[test]
fn on_log_counts_failure_status_once() {
    let harness = Harness::new(&failures_policy(json!({"limit": 2})));
    let client = from("192.0.2.1");
    let mut sent = harness.send(&client, T0);
    sent.state.on_log(
        &harness.limits,
        Some(200),
        &harness.context(T0),
        &mut sent.report,
    );
    assert!(!sent.report.metrics.contains(&LimitMetric::Failures));
    let mut sent = harness.send(&client, T0);
    sent.state.on_log(
        &harness.limits,
        Some(401),
        &harness.context(T0),
        &mut sent.report,
    );
    assert_eq!(sent.report.metrics.last(), Some(&LimitMetric::Failures));
    // A stream whose response headers were seen is not counted by on_log.
    let mut sent = harness.send(&client, T0);
    harness.respond(&mut sent, 200, T0);
    sent.state.on_log(
        &harness.limits,
        Some(401),
        &harness.context(T0),
        &mut sent.report,
    );
    assert!(!sent.report.metrics.contains(&LimitMetric::Failures));
    assert!(!harness.send(&client, T0).rejected());
}

#[test]
fn failures_without_lockout_reject_while_over_limit() {
    let harness = Harness::new(&failures_policy(json!({"limit": 2, "lockout_seconds": 0})));
    let client = from("192.0.2.1");
    for _ in 0..2 {
        let sent = harness.attempt(&client, 401, T0);
        assert!(!sent.actions().contains(&LimitAction::KeyLockedOut));
    }
    let sent = harness.send(&client, T0);
    assert!(sent.rejected());
    // Two failures at the start of a window weigh 2 * (1 - 30/60) = 1 at
    // 30 s into the next window.
    assert_eq!(header(&sent.response().headers, "retry-after"), Some("90"));
    assert!(harness.send(&client, T0 + 89_999).rejected());
    assert!(!harness.send(&client, T0 + 90_000).rejected());
}

#[test]
fn lockout_lifts_after_duration() {
    let harness = Harness::new(&failures_policy(json!({})));
    let client = from("192.0.2.1");
    for _ in 0..3 {
        harness.attempt(&client, 401, T0);
    }
    assert!(harness.send(&client, T0 + 299_999).rejected());
    assert!(harness.reclaim(T0 + 299_999).events.is_empty());
    let report = harness.reclaim(T0 + 300_000);
    assert_eq!(
        report
            .events
            .iter()
            .map(|event| event.action)
            .collect::<Vec<_>>(),
        vec![LimitAction::KeyReleased]
    );
    assert_eq!(report.events[0].key, Some(harness.key_of(&client)));
    assert_eq!(report.metrics, vec![LimitMetric::Released]);
    let sent = harness.attempt(&client, 200, T0 + 300_000);
    assert_eq!(sent.verdict, LimitVerdict::Continue);
    assert!(sent.report.events.is_empty());
    // A released key has its whole allowance again.
    for _ in 0..2 {
        harness.attempt(&client, 401, T0 + 300_000);
    }
    assert!(!harness.send(&client, T0 + 300_000).rejected());
}

#[test]
fn lockout_release_reported_by_request() {
    let harness = Harness::new(&failures_policy(json!({})));
    let client = from("192.0.2.1");
    for _ in 0..3 {
        harness.attempt(&client, 401, T0);
    }
    let sent = harness.send(&client, T0 + 300_000);
    assert_eq!(sent.verdict, LimitVerdict::Continue);
    assert_eq!(sent.actions(), vec![LimitAction::KeyReleased]);
    assert!(harness.reclaim(T0 + 300_001).events.is_empty());
}

#[test]
fn failures_during_lockout_do_not_extend_it() {
    let harness = Harness::new(&failures_policy(json!({})));
    let client = from("192.0.2.1");
    let in_flight: Vec<Sent> = (0..5).map(|_| harness.send(&client, T0)).collect();
    let mut locks = 0;
    for mut sent in in_flight {
        harness.respond(&mut sent, 401, T0 + 10);
        locks += sent
            .report
            .events
            .iter()
            .filter(|event| event.action == LimitAction::KeyLockedOut)
            .count();
    }
    assert_eq!(locks, 1);
    assert!(!harness.send(&client, T0 + 300_010).rejected());
}

#[test]
fn escalation_lengthens_each_lockout() {
    let harness = Harness::new(&failures_policy(json!({
        "limit": 1,
        "lockout_seconds": 60,
        "escalation": {"factor": 3, "max_seconds": 1000, "forget_after_seconds": 3600}
    })));
    let client = from("192.0.2.1");
    let mut now = T0;
    for (level, seconds) in [(1, 60), (2, 180), (3, 540), (4, 1000), (5, 1000)] {
        let sent = harness.attempt(&client, 401, now);
        let event = &sent.report.events[0];
        assert_eq!(event.action, LimitAction::KeyLockedOut);
        assert_eq!(event.lockout_level, Some(level));
        assert_eq!(event.lockout_seconds, Some(seconds));
        assert!(harness.send(&client, now + seconds * 1000 - 1).rejected());
        now += seconds * 1000;
        assert!(!harness.attempt(&client, 200, now).rejected());
    }
}

#[test]
fn escalation_forgotten_after_quiet_period() {
    let harness = Harness::new(&failures_policy(json!({
        "limit": 1,
        "lockout_seconds": 60,
        "escalation": {"factor": 2, "max_seconds": 86400, "forget_after_seconds": 3600}
    })));
    let client = from("192.0.2.1");
    harness.attempt(&client, 401, T0);
    let second = harness.attempt(&client, 401, T0 + 60_000);
    assert_eq!(second.report.events[1].lockout_seconds, Some(120));
    // The second lockout ended at 180 s; an offence just before the hour
    // after it still escalates.
    let third = harness.attempt(&client, 401, T0 + 180_000 + 3_599_999);
    assert_eq!(third.report.events[1].lockout_level, Some(3));
    assert_eq!(third.report.events[1].lockout_seconds, Some(240));
    let ended = T0 + 180_000 + 3_599_999 + 240_000;
    let fourth = harness.attempt(&client, 401, ended + 3_600_000);
    assert_eq!(fourth.report.events[1].lockout_level, Some(1));
    assert_eq!(fourth.report.events[1].lockout_seconds, Some(60));
}

#[test]
fn escalation_survives_reclaim_until_forgotten() {
    let harness = Harness::new(&failures_policy(json!({
        "limit": 1,
        "lockout_seconds": 60,
        "escalation": {"factor": 2, "max_seconds": 86400, "forget_after_seconds": 3600}
    })));
    let client = from("192.0.2.1");
    harness.attempt(&client, 401, T0);
    harness.reclaim(T0 + 600_000);
    let second = harness.attempt(&client, 401, T0 + 600_000);
    assert_eq!(second.report.events[0].lockout_seconds, Some(120));
    let ended = T0 + 720_000;
    harness.reclaim(ended + 3_600_000);
    let key = harness.key_of(&client);
    let policy = &harness.limits.policies()[0];
    let stored = harness
        .store
        .value(&policy.bucket_key(policy.bucket_of(&key)))
        .unwrap();
    assert_eq!(Bucket::decode(&stored).entries, Vec::new());
}

#[test]
fn clock_backwards_keeps_lockout() {
    let harness = Harness::new(&failures_policy(json!({})));
    let client = from("192.0.2.1");
    for _ in 0..3 {
        harness.attempt(&client, 401, T0 + 100_000);
    }
    // The clock jumps back ten minutes: the entry reads it as the time it
    // last saw, so the lockout still has 300 s to run and ends when the
    // clock passes its end again.
    let sent = harness.send(&client, T0 - 500_000);
    assert!(sent.rejected());
    assert_eq!(header(&sent.response().headers, "retry-after"), Some("300"));
    assert!(harness.reclaim(T0 - 100_000).events.is_empty());
    assert!(harness.send(&client, T0 + 200_000).rejected());
    assert!(!harness.send(&client, T0 + 400_000).rejected());
}

#[test]
fn clock_backwards_does_not_count_twice() {
    let harness = Harness::new(&one_policy(json!({"limit": 4})));
    let client = from("192.0.2.1");
    for _ in 0..2 {
        assert!(!harness.send(&client, T0 + 130_000).rejected());
    }
    // Back two windows: the counts above still apply, they are not read as
    // an older window that has rolled away.
    for _ in 0..2 {
        assert!(!harness.send(&client, T0 + 10_000).rejected());
    }
    assert!(harness.send(&client, T0 + 10_000).rejected());
    assert!(harness.send(&client, T0 + 130_000).rejected());
}

// Monitor mode.

#[test]
fn monitor_mode_flags_without_rejecting() {
    let harness = Harness::new(&one_policy(json!({"mode": "monitor", "limit": 2})));
    let client = from("192.0.2.1");
    for _ in 0..2 {
        assert_eq!(harness.send(&client, T0).verdict, LimitVerdict::Continue);
    }
    for _ in 0..3 {
        let mut sent = harness.send(&client, T0);
        assert_eq!(sent.verdict, LimitVerdict::Continue);
        assert_eq!(sent.report.metrics, vec![LimitMetric::Flagged]);
        let event = &sent.report.events[0];
        assert_eq!(event.action, LimitAction::RateLimited);
        assert!(event.monitor);
        assert!(event.success);
        assert_eq!(event.status_code, None);
        let json: Value = serde_json::from_str(&event.to_json()).unwrap();
        assert_eq!(json["portcullis"]["mode"], "monitor");
        assert_eq!(json["event"]["outcome"], "success");
        let headers = harness.respond(&mut sent, 200, T0);
        assert!(headers.is_empty());
    }
}

#[test]
fn monitor_mode_reports_lockouts() {
    let harness = Harness::new(&failures_policy(json!({"mode": "monitor", "limit": 1})));
    let client = from("192.0.2.1");
    let sent = harness.attempt(&client, 401, T0);
    assert_eq!(sent.actions(), vec![LimitAction::KeyLockedOut]);
    assert!(sent.report.events[0].monitor);
    let sent = harness.send(&client, T0 + 1000);
    assert_eq!(sent.verdict, LimitVerdict::Continue);
    assert_eq!(sent.report.metrics, vec![LimitMetric::Flagged]);
    assert!(sent.report.events[0].monitor);
}

// Allowlist and addresses.

#[test]
fn allowlist_skips_ipv4_and_ipv6_networks() {
    let mut json: Value = serde_json::from_str(&one_policy(json!({"limit": 1}))).unwrap();
    json["limits"]["allowlist"] = json!(["10.0.0.0/8", "2001:db8:1::/48", "192.0.2.7"]);
    let harness = Harness::new(&json.to_string());
    for address in [
        "10.200.3.4",
        "::ffff:10.0.0.1",
        "2001:db8:1:ffff::1",
        "192.0.2.7",
    ] {
        let client = from(address);
        let state = harness.limits.start_request("POST", b"/login", client.ip);
        assert!(!state.is_active(), "{address}");
        for _ in 0..3 {
            assert!(!harness.send(&client, T0).rejected(), "{address}");
        }
    }
    for address in ["11.0.0.1", "2001:db8:2::1", "192.0.2.8"] {
        let client = from(address);
        assert!(!harness.send(&client, T0).rejected(), "{address}");
        assert!(harness.send(&client, T0).rejected(), "{address}");
    }
}

#[test]
fn ipv6_clients_share_key_per_64() {
    let harness = Harness::new(&one_policy(json!({"limit": 1})));
    assert!(!harness.send(&from("2001:db8:0:1::1"), T0).rejected());
    assert!(harness
        .send(&from("2001:db8:0:1:ffff:ffff:ffff:ffff"), T0)
        .rejected());
    assert!(!harness.send(&from("2001:db8:0:2::1"), T0).rejected());
    assert_ne!(
        harness.key_of(&from("2001:db8:0:1::1")),
        harness.key_of(&from("2001:db8:0:2::1"))
    );
}

#[test]
fn address_prefixes_are_configurable() {
    let harness = Harness::new(&one_policy(json!({
        "key": [{"address": {"ipv4_prefix": 24, "ipv6_prefix": 128}}]
    })));
    assert_eq!(
        harness.key_of(&from("192.0.2.1")),
        harness.key_of(&from("192.0.2.200"))
    );
    assert_ne!(
        harness.key_of(&from("192.0.2.1")),
        harness.key_of(&from("192.0.3.1"))
    );
    assert_ne!(
        harness.key_of(&from("2001:db8::1")),
        harness.key_of(&from("2001:db8::2"))
    );
    // An IPv4-mapped address is the same client as the IPv4 address.
    assert_eq!(
        harness.key_of(&from("::ffff:192.0.2.9")),
        harness.key_of(&from("192.0.2.1"))
    );
}

// Keys.

fn key_harness(parts: Value) -> Harness {
    Harness::new(&one_policy(json!({"key": parts})))
}

fn with_headers(pairs: &[(&str, &str)]) -> Request {
    Request {
        headers: header_pairs(pairs),
        ..from("192.0.2.1")
    }
}

fn with_body(content_type: Option<&str>, body: &str) -> Request {
    let mut request = from("192.0.2.1");
    if let Some(content_type) = content_type {
        request.headers = header_pairs(&[("content-type", content_type)]);
    }
    request.body = Some(body.as_bytes().to_vec());
    request
}

#[test]
fn key_reads_header() {
    let harness = key_harness(json!([{"header": "X-User"}]));
    let alice = harness.key_of(&with_headers(&[("x-user", "alice")]));
    assert_eq!(
        alice,
        harness.key_of(&with_headers(&[("X-USER", "alice"), ("other", "1")]))
    );
    assert_ne!(alice, harness.key_of(&with_headers(&[("x-user", "Alice")])));
    assert_ne!(alice, harness.key_of(&with_headers(&[("x-user", "bob")])));
    assert_ne!(
        alice,
        harness.key_of(&with_headers(&[("x-user", "alice"), ("x-user", "bob")]))
    );
}

#[test]
fn key_reads_cookie() {
    let harness = key_harness(json!([{"cookie": "session"}]));
    let key = harness.key_of(&with_headers(&[("cookie", "a=1; session=abc; b=2")]));
    assert_eq!(
        key,
        harness.key_of(&with_headers(&[
            ("cookie", "x=y"),
            ("cookie", "session=abc")
        ]))
    );
    assert_ne!(
        key,
        harness.key_of(&with_headers(&[("cookie", "session=abd")]))
    );
    assert_ne!(
        key,
        harness.key_of(&with_headers(&[("cookie", "Session=abc")]))
    );
}

#[test]
fn key_reads_claim() {
    let harness = key_harness(json!([{"claim": "sub"}]));
    let with_claims = |claims: Value| Request {
        claims: Some(claims.as_object().unwrap().clone()),
        ..from("192.0.2.1")
    };
    let alice = harness.key_of(&with_claims(json!({"sub": "alice", "iat": 1})));
    assert_eq!(
        alice,
        harness.key_of(&with_claims(json!({"sub": "alice", "iat": 2})))
    );
    assert_ne!(alice, harness.key_of(&with_claims(json!({"sub": "bob"}))));
    assert_ne!(
        harness.key_of(&with_claims(json!({"sub": 7}))),
        harness.key_of(&with_claims(json!({"sub": "8"})))
    );
    assert_eq!(
        harness.key_of(&with_claims(json!({"sub": 7}))),
        harness.key_of(&with_claims(json!({"sub": "7"})))
    );
    // Without verified claims the part is missing.
    assert_eq!(
        harness.key_of(&from("192.0.2.1")),
        harness.key_of(&with_claims(json!({"iss": "x"})))
    );
}

#[test]
fn key_reads_form_and_json_fields() {
    let harness = key_harness(json!([{"body_field": "username"}]));
    let alice = harness.key_of(&with_body(
        Some("application/x-www-form-urlencoded"),
        "password=x&username=alice",
    ));
    for (content_type, body) in [
        (
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            "username=%61lice&password=y",
        ),
        (None, "username=alice"),
        (Some("application/json"), r#"{"username": "alice", "p": 1}"#),
        (Some("application/vnd.api+json"), r#"{"username": "alice"}"#),
        (None, r#" {"username": "alice"}"#),
    ] {
        assert_eq!(
            alice,
            harness.key_of(&with_body(content_type, body)),
            "{body}"
        );
    }
    for (content_type, body) in [
        (Some("application/x-www-form-urlencoded"), "username=bob"),
        (Some("application/json"), r#"{"username": "bob"}"#),
        // A form field in a JSON body, or any field in another format, is
        // missing.
        (Some("application/json"), "username=alice"),
        (Some("text/plain"), "username=alice"),
    ] {
        assert_ne!(
            alice,
            harness.key_of(&with_body(content_type, body)),
            "{body}"
        );
    }
    let spaced = harness.key_of(&with_body(None, "username=a+b"));
    assert_eq!(spaced, harness.key_of(&with_body(None, "username=a%20b")));
}

#[test]
fn key_reads_json_pointer() {
    let harness = key_harness(json!([{"body_field": "/user/name"}]));
    let alice = harness.key_of(&with_body(
        Some("application/json"),
        r#"{"user": {"name": "alice"}}"#,
    ));
    assert_eq!(
        alice,
        harness.key_of(&with_body(None, r#"{"user": {"name": "alice", "id": 3}}"#))
    );
    assert_ne!(
        alice,
        harness.key_of(&with_body(None, r#"{"user": {"name": "bob"}}"#))
    );
    // Without a leading slash the field is a top-level member name.
    let flat = key_harness(json!([{"body_field": "user/name"}]));
    assert_eq!(
        flat.key_of(&with_body(None, r#"{"user/name": "alice"}"#)),
        flat.key_of(&with_body(None, r#"{"user/name": "alice", "x": 1}"#))
    );
    assert_ne!(
        flat.key_of(&with_body(None, r#"{"user/name": "alice"}"#)),
        flat.key_of(&with_body(None, r#"{"user": {"name": "alice"}}"#))
    );
}

#[test]
fn key_lowercase_folds_case() {
    let harness = key_harness(json!([{"body_field": "username", "lowercase": true}]));
    assert_eq!(
        harness.key_of(&with_body(None, "username=Alice")),
        harness.key_of(&with_body(None, "username=ALICE"))
    );
    let headers = key_harness(json!([{"header": "x-user", "lowercase": true}]));
    assert_eq!(
        headers.key_of(&with_headers(&[("x-user", "Alice")])),
        headers.key_of(&with_headers(&[("x-user", "alice")]))
    );
}

#[test]
fn key_combines_parts() {
    let harness = Harness::new(&one_policy(json!({
        "limit": 1,
        "key": [{"address": {}}, {"body_field": "username"}]
    })));
    let attempt = |address: &str, user: &str| Request {
        ip: Some(ip(address)),
        ..with_body(None, &format!("username={user}"))
    };
    let first = harness.send(&attempt("192.0.2.1", "alice"), T0);
    assert_eq!(first.verdict, LimitVerdict::Continue);
    assert!(harness.send(&attempt("192.0.2.1", "alice"), T0).rejected());
    assert!(!harness.send(&attempt("192.0.2.1", "bob"), T0).rejected());
    assert!(!harness.send(&attempt("192.0.2.2", "alice"), T0).rejected());
    // Parts are delimited: "ab" + "c" is not "a" + "bc".
    let pair = key_harness(json!([{"header": "a"}, {"header": "b"}]));
    assert_ne!(
        pair.key_of(&with_headers(&[("a", "ab"), ("b", "c")])),
        pair.key_of(&with_headers(&[("a", "a"), ("b", "bc")]))
    );
}

#[test]
fn body_key_waits_for_body() {
    let harness = key_harness(json!([{"body_field": "username"}]));
    let request = with_body(None, "username=alice");
    let mut state = harness.limits.start_request("POST", b"/login", request.ip);
    let mut report = Report::default();
    let verdict = state.on_request_headers(
        &harness.limits,
        &request.inputs(),
        &harness.context(T0),
        &mut report,
    );
    assert_eq!(verdict, LimitVerdict::NeedBody);
    assert!(state.waits_for_body());
    let verdict = state.on_request_body(
        &harness.limits,
        &request.inputs(),
        &harness.context(T0),
        &mut report,
    );
    assert_eq!(verdict, LimitVerdict::Continue);
    assert!(!state.waits_for_body());
    assert_eq!(report.metrics, vec![LimitMetric::Allowed]);
}

#[test]
fn missing_key_counts_or_skips() {
    let counted = Harness::new(&one_policy(json!({
        "limit": 1, "key": [{"header": "x-user"}]
    })));
    let anonymous = from("192.0.2.1");
    assert!(!counted.send(&anonymous, T0).rejected());
    // Requests without the header share one key.
    assert!(counted.send(&from("192.0.2.2"), T0).rejected());
    assert_ne!(
        counted.key_of(&anonymous),
        counted.key_of(&with_headers(&[("x-user", "")]))
    );
    let skipped = Harness::new(&one_policy(json!({
        "limit": 1, "key": [{"header": "x-user"}], "on_missing_key": "skip"
    })));
    for _ in 0..3 {
        let sent = skipped.send(&anonymous, T0);
        assert_eq!(sent.verdict, LimitVerdict::Continue);
        assert!(sent.report.metrics.is_empty());
    }
    let named = with_headers(&[("x-user", "alice")]);
    assert!(!skipped.send(&named, T0).rejected());
    assert!(skipped.send(&named, T0).rejected());
    // A body too large to buffer leaves a body part missing.
    let body = Harness::new(&one_policy(json!({
        "limit": 1, "key": [{"body_field": "username"}], "on_missing_key": "skip"
    })));
    for _ in 0..3 {
        let sent = body.send(&from("192.0.2.1"), T0);
        assert!(sent.report.metrics.is_empty());
    }
}

#[test]
fn salts_give_different_hashes() {
    let harness = key_harness(json!([{"header": "x-user"}]));
    let request = with_headers(&[("x-user", "alice")]);
    let policy = &harness.limits.policies()[0];
    let first = policy.key.derive(b"salt one", "login", &request.inputs());
    let second = policy.key.derive(b"salt two", "login", &request.inputs());
    let again = policy.key.derive(b"salt one", "login", &request.inputs());
    assert_ne!(first, second);
    assert_eq!(first, again);
    assert_ne!(
        first,
        policy.key.derive(b"salt one", "other", &request.inputs())
    );
}

#[test]
fn event_json_logs_hash_not_key() {
    let harness = Harness::new(&one_policy(json!({
        "limit": 1,
        "key": [{"header": "x-user"}, {"address": {}}],
    })));
    let request = with_headers(&[("x-user", "alice.secret@example.com")]);
    harness.send(&request, T0);
    let sent = harness.send(&request, T0);
    let event = &sent.report.events[0];
    let line = event.to_json();
    assert!(!line.contains("alice"), "{line}");
    assert!(!line.contains("example.com"), "{line}");
    assert!(!line.contains("192.0.2.1"), "{line}");
    let json: Value = serde_json::from_str(&line).unwrap();
    let hash = harness.key_of(&request).to_string();
    assert_eq!(hash.len(), 32);
    assert_eq!(json["portcullis"]["key_hash"], hash.as_str());
    assert_eq!(json["portcullis"]["policy"], "login");
    assert_eq!(json["event"]["action"], "rate-limited");
    // One request at the start of a window weighs on the sliding window
    // until the end of the next one.
    assert_eq!(json["portcullis"]["retry_after_seconds"], 120);
}

#[test]
fn match_conditions_select_policies() {
    let limits = limits_from(
        &json!({"limits": {"policies": [
            {"name": "exact", "match": {"path": {"exact": "/login"}, "methods": ["POST"]},
             "key": [{"address": {}}], "limit": 1, "window_seconds": 60},
            {"name": "prefix", "match": {"path": {"prefix": "/api/"}},
             "key": [{"address": {}}], "limit": 1, "window_seconds": 60},
            {"name": "regex", "match": {"path": {"regex": "^/users/[0-9]+$"}},
             "key": [{"address": {}}], "limit": 1, "window_seconds": 60},
        ]}})
        .to_string(),
    );
    let matched = |method: &str, path: &str| -> Vec<&str> {
        limits
            .policies()
            .iter()
            .filter(|policy| policy.matches(method, path))
            .map(|policy| policy.name.as_str())
            .collect()
    };
    assert_eq!(matched("POST", "/login"), vec!["exact"]);
    assert!(matched("GET", "/login").is_empty());
    assert_eq!(matched("GET", "/api/x"), vec!["prefix"]);
    assert_eq!(matched("GET", "/users/12"), vec!["regex"]);
    assert!(matched("GET", "/users/12/x").is_empty());
}

#[test]
fn get_policy_applies_to_head() {
    let limits = limits_from(
        &json!({"limits": {"policies": [
            {"name": "pages", "match": {"methods": ["GET"]},
             "key": [{"address": {}}], "limit": 1, "window_seconds": 60},
        ]}})
        .to_string(),
    );
    let policy = &limits.policies()[0];
    assert!(policy.matches("GET", "/"));
    assert!(policy.matches("HEAD", "/"));
    assert!(!policy.matches("POST", "/"));
}

#[test]
fn encoded_slashes_match_both_readings() {
    let limits = limits_from(
        &json!({"limits": {"policies": [
            {"name": "api", "match": {"path": {"prefix": "/api/"}},
             "key": [{"address": {}}], "limit": 1, "window_seconds": 60},
        ]}})
        .to_string(),
    );
    let active = |raw: &[u8]| limits.start_request("GET", raw, None).is_active();
    assert!(active(b"/api/items"));
    assert!(active(b"/api/x%2F..%2F..%2Fpublic"));
    assert!(active(b"/public/x%2F..%2F..%2Fapi/items"));
    assert!(!active(b"/public/a%2Fb"));
}

#[test]
fn match_path_resolves_spellings_of_one_route() {
    for raw in [
        "/login",
        "//login",
        "/./login",
        "/%6cogin",
        "/login;jsessionid=1",
        "/api/../login",
        "\\login",
        "/login?next=/",
    ] {
        assert_eq!(crate::http::route_path(raw.as_bytes()), "/login", "{raw}");
    }
    assert_eq!(crate::http::route_path(b"/login/"), "/login/");
    assert_eq!(crate::http::route_path(b"/login%2f"), "/login/");
    assert_eq!(crate::http::route_path(b"/Login"), "/Login");
}

// Concurrency and memory.

#[test]
fn concurrent_workers_admit_exactly_limit() {
    let limits = limits_from(&one_policy(json!({"limit": 1000, "window_seconds": 3600})));
    let store = MemoryStore::default();
    let allowed = AtomicU32::new(0);
    let rejected = AtomicU32::new(0);
    let failed = AtomicU32::new(0);
    let start = Barrier::new(8);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                start.wait();
                let anchor = Anchor::default();
                let context = Context {
                    store: &store,
                    anchor: &anchor,
                    salt: SALT,
                    now: at(T0),
                };
                let client = from("192.0.2.1");
                for _ in 0..500 {
                    let mut report = Report::default();
                    let mut state = limits.start_request("POST", b"/login", client.ip);
                    let verdict =
                        state.on_request_headers(&limits, &client.inputs(), &context, &mut report);
                    if report.metrics.contains(&LimitMetric::StoreFailed) {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    match verdict {
                        LimitVerdict::Continue => allowed.fetch_add(1, Ordering::Relaxed),
                        _ => rejected.fetch_add(1, Ordering::Relaxed),
                    };
                }
            });
        }
    });
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert_eq!(allowed.load(Ordering::Relaxed), 1000);
    assert_eq!(rejected.load(Ordering::Relaxed), 3000);
}

#[test]
fn concurrent_first_inserts_keep_every_key() {
    // One bucket of four ways, so that every key lands in it.
    let limits = limits_from(&one_policy(json!({
        "limit": 1000, "window_seconds": 3600, "max_keys": 4
    })));
    for round in 0..50u32 {
        let store = MemoryStore::default();
        let start = Barrier::new(4);
        std::thread::scope(|scope| {
            for worker in 0..4u32 {
                let limits = &limits;
                let store = &store;
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    let anchor = Anchor::default();
                    let context = Context {
                        store,
                        anchor: &anchor,
                        salt: SALT,
                        now: at(T0),
                    };
                    let client = from(&format!("198.51.100.{}", worker + 1));
                    let mut report = Report::default();
                    let mut state = limits.start_request("POST", b"/login", client.ip);
                    let verdict =
                        state.on_request_headers(limits, &client.inputs(), &context, &mut report);
                    assert_eq!(verdict, LimitVerdict::Continue, "round {round}");
                });
            }
        });
        let policy = &limits.policies()[0];
        let bucket = Bucket::decode(&store.value(&policy.bucket_key(0)).unwrap());
        assert_eq!(bucket.entries.len(), 4, "round {round}");
        for entry in &bucket.entries {
            assert_eq!(entry.current, 1, "round {round}");
        }
    }
}

#[test]
fn million_keys_stay_within_buckets() {
    let limits = limits_from(&one_policy(json!({
        "limit": 5, "window_seconds": 60, "max_keys": 8192
    })));
    let policy = &limits.policies()[0];
    let store = MemoryStore::default();
    let anchor = Anchor::default();
    let context = Context {
        store: &store,
        anchor: &anchor,
        salt: SALT,
        now: at(T0),
    };
    let headers = Vec::new();
    let mut rejected = 0;
    for index in 0..1_000_000u32 {
        let inputs = KeyInputs {
            headers: &headers,
            client_ip: Some(IpAddr::from((0x0a00_0000 + index).to_be_bytes())),
            claims: None,
            body: None,
        };
        let mut report = Report::default();
        let mut state = limits.start_request("POST", b"/login", inputs.client_ip);
        if state.on_request_headers(&limits, &inputs, &context, &mut report)
            != LimitVerdict::Continue
        {
            rejected += 1;
        }
    }
    assert_eq!(rejected, 0);
    // 2048 buckets, each full, and the anchor. Measured here: 621,506
    // bytes of keys and values for 8192 tracked keys, 75.9 bytes per key,
    // without the host's own overhead per shared-data entry.
    assert_eq!(policy.buckets, 2048);
    let full_bucket_bytes = HEADER_BYTES + WAYS * ENTRY_BYTES;
    let expected_bytes: usize = (0..policy.buckets)
        .map(|index| policy.bucket_key(index).len() + full_bucket_bytes)
        .sum::<usize>()
        + store::ANCHOR_KEY.len();
    assert_eq!(store.usage(), (2048 + 1, expected_bytes));
    assert_eq!(expected_bytes, 621_506);
}

// The cap and store failures.

/// Locks out four keys that share the single bucket of a `max_keys` 4
/// policy, and returns a fifth client.
fn fill_bucket_with_lockouts(harness: &Harness) -> Request {
    for index in 1..=4 {
        let client = from(&format!("198.51.100.{index}"));
        assert!(!harness.send(&client, T0).rejected());
        let locked = harness.send(&client, T0);
        assert!(locked.actions().contains(&LimitAction::KeyLockedOut));
    }
    from("198.51.100.5")
}

#[test]
fn full_bucket_rejects_new_key_when_failing_closed() {
    let harness = Harness::new(&one_policy(json!({
        "limit": 1, "lockout_seconds": 600, "max_keys": 4
    })));
    let newcomer = fill_bucket_with_lockouts(&harness);
    let sent = harness.send(&newcomer, T0 + 1000);
    assert!(sent.rejected());
    assert_eq!(sent.response().status, 429);
    assert_eq!(header(&sent.response().headers, "retry-after"), Some("1"));
    assert_eq!(sent.actions(), vec![LimitAction::LimitStoreFailed]);
    // The rejection counts as a rejection too, so dashboards of rejected
    // requests include it.
    assert_eq!(
        sent.report.metrics,
        vec![LimitMetric::StoreFailed, LimitMetric::Rejected]
    );
    let event = &sent.report.events[0];
    assert!(!event.success);
    assert_eq!(event.status_code, Some(429));
    let message = event.error_message.as_deref().unwrap();
    assert!(message.contains("active lockout"), "{message}");
    assert!(message.contains("rejected"), "{message}");
    // The lockouts stay in place.
    assert!(harness.send(&from("198.51.100.1"), T0 + 1000).rejected());
    // Once they end, the new key is tracked.
    let later = harness.send(&newcomer, T0 + 600_000);
    assert_eq!(later.verdict, LimitVerdict::Continue);
    assert_eq!(later.report.metrics[0], LimitMetric::Released);
}

#[test]
fn full_bucket_allows_new_key_when_failing_open() {
    let harness = Harness::new(&one_policy(json!({
        "limit": 1, "lockout_seconds": 600, "max_keys": 4, "on_store_failure": "allow"
    })));
    let newcomer = fill_bucket_with_lockouts(&harness);
    for _ in 0..3 {
        let sent = harness.send(&newcomer, T0 + 1000);
        assert_eq!(sent.verdict, LimitVerdict::Continue);
        assert_eq!(sent.actions(), vec![LimitAction::LimitStoreFailed]);
        assert!(sent.report.events[0].success);
        assert_eq!(sent.report.events[0].status_code, None);
    }
}

#[test]
fn full_bucket_rejects_untracked_guess() {
    // Four lockouts fill the only bucket. A fifth key cannot be tracked, so
    // its guesses could never be counted: `on_store_failure: reject` (the
    // default) rejects it at once, as for request counting.
    let harness = Harness::new(&failures_policy(json!({"limit": 1, "max_keys": 4})));
    for index in 1..=4 {
        let sent = harness.attempt(&from(&format!("198.51.100.{index}")), 401, T0);
        assert_eq!(sent.actions(), vec![LimitAction::KeyLockedOut]);
    }
    let newcomer = from("198.51.100.5");
    for _ in 0..3 {
        let sent = harness.send(&newcomer, T0 + 1000);
        assert!(sent.rejected());
        assert_eq!(sent.actions(), vec![LimitAction::LimitStoreFailed]);
    }
}

#[test]
fn full_bucket_lets_guess_through_when_failing_open() {
    let harness = Harness::new(&failures_policy(json!({
        "limit": 1, "max_keys": 4, "on_store_failure": "allow"
    })));
    for index in 1..=4 {
        harness.attempt(&from(&format!("198.51.100.{index}")), 401, T0);
    }
    let sent = harness.send(&from("198.51.100.5"), T0 + 1000);
    assert_eq!(sent.verdict, LimitVerdict::Continue);
    assert_eq!(sent.actions(), vec![LimitAction::LimitStoreFailed]);
}

#[test]
fn eviction_takes_least_recently_seen_key() {
    let harness = Harness::new(&one_policy(json!({"limit": 1, "max_keys": 4})));
    let client = |index: u32| from(&format!("198.51.100.{index}"));
    for index in 1..=4 {
        assert!(!harness
            .send(&client(index), T0 + u64::from(index))
            .rejected());
    }
    // Client 1 returns, so client 2 is now the one seen longest ago.
    assert!(harness.send(&client(1), T0 + 5).rejected());
    harness.reclaim(T0 + 6);
    assert!(!harness.send(&client(5), T0 + 7).rejected());
    assert!(harness.send(&client(1), T0 + 8).rejected());
    assert!(!harness.send(&client(2), T0 + 9).rejected());
}

#[test]
fn reclaim_leaves_live_bucket_unwritten() {
    let harness = Harness::new(&one_policy(json!({"max_keys": 4})));
    harness.send(&from("192.0.2.1"), T0);
    let key = harness.limits.policies()[0].bucket_key(0);
    let before = harness.store.get(&key).unwrap().unwrap();
    assert!(harness.reclaim(T0 + 1000).events.is_empty());
    assert_eq!(harness.store.get(&key).unwrap().unwrap(), before);
    // Once the counts have expired the entry is dropped.
    harness.reclaim(T0 + 120_000);
    let after = harness.store.value(&key).unwrap();
    assert_eq!(Bucket::decode(&after).entries, Vec::new());
}

#[test]
fn reclaim_creates_no_buckets() {
    let harness = Harness::new(&one_policy(json!({"max_keys": 64})));
    let report = harness.reclaim(T0);
    assert!(report.events.is_empty());
    assert_eq!(harness.store.usage(), (0, 0));
}

#[test]
fn reclaim_cursor_advances_in_batches() {
    let harness = Harness::new(&one_policy(json!({"max_keys": 16})));
    let mut cursor = Vec::new();
    harness.limits.reclaim(&harness.context(T0), &mut cursor, 3);
    assert_eq!(cursor, vec![3]);
    harness.limits.reclaim(&harness.context(T0), &mut cursor, 3);
    assert_eq!(cursor, vec![2]);
}

/// A store whose every call fails, or whose writes always lose the race.
struct BrokenStore {
    lose_every_write: bool,
    calls: AtomicU32,
}

impl SharedStore for BrokenStore {
    fn get(&self, _key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.lose_every_write {
            return Ok(Some((Vec::new(), 7)));
        }
        Err(HostError("shared data unavailable".to_string()))
    }

    fn set(&self, _key: &str, _value: &[u8], _cas: u32) -> Result<SetOutcome, HostError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.lose_every_write {
            return Ok(SetOutcome::CasMismatch);
        }
        Err(HostError("shared data unavailable".to_string()))
    }
}

fn send_to(limits: &Limits, store: &BrokenStore) -> (LimitVerdict, Report) {
    let anchor = Anchor::default();
    let context = Context {
        store,
        anchor: &anchor,
        salt: SALT,
        now: at(T0),
    };
    let client = from("192.0.2.1");
    let mut report = Report::default();
    let mut state = limits.start_request("POST", b"/login", client.ip);
    let verdict = state.on_request_headers(limits, &client.inputs(), &context, &mut report);
    (verdict, report)
}

#[test]
fn failing_store_fails_closed_or_open() {
    let store = BrokenStore {
        lose_every_write: false,
        calls: AtomicU32::new(0),
    };
    let closed = limits_from(&one_policy(json!({})));
    let (verdict, report) = send_to(&closed, &store);
    assert!(matches!(verdict, LimitVerdict::Reject(ref response) if response.status == 429));
    assert_eq!(
        report.metrics,
        vec![LimitMetric::StoreFailed, LimitMetric::Rejected]
    );
    let message = report.events[0].error_message.as_deref().unwrap();
    assert!(message.contains("shared data unavailable"), "{message}");
    let open = limits_from(&one_policy(json!({"on_store_failure": "allow"})));
    let (verdict, report) = send_to(&open, &store);
    assert_eq!(verdict, LimitVerdict::Continue);
    assert_eq!(report.metrics, vec![LimitMetric::StoreFailed]);
    assert!(report.events[0].success);
    // Monitor mode never rejects, whatever on_store_failure says.
    let monitor = limits_from(&one_policy(json!({"mode": "monitor"})));
    let (verdict, report) = send_to(&monitor, &store);
    assert_eq!(verdict, LimitVerdict::Continue);
    assert!(report.events[0].monitor);
}

#[test]
fn failing_store_reported_by_reclaim() {
    let store = BrokenStore {
        lose_every_write: false,
        calls: AtomicU32::new(0),
    };
    let limits = limits_from(&one_policy(json!({"max_keys": 8})));
    let anchor = Anchor::default();
    let context = Context {
        store: &store,
        anchor: &anchor,
        salt: SALT,
        now: at(T0),
    };
    let report = limits.reclaim(&context, &mut Vec::new(), 64);
    assert_eq!(report.metrics, vec![LimitMetric::StoreFailed; 2]);
    assert_eq!(report.events[0].action, LimitAction::LimitStoreFailed);
    assert_eq!(report.events[0].key, None);
}

#[test]
fn contention_gives_up_after_max_attempts() {
    let store = BrokenStore {
        lose_every_write: true,
        calls: AtomicU32::new(0),
    };
    let anchor = Anchor::default();
    let result = store::update(&store, &anchor, "k", |_| {
        Ok(Update {
            value: Some(b"v".to_vec()),
            output: (),
        })
    });
    assert_eq!(
        result,
        Err(StoreError::Contention {
            attempts: MAX_ATTEMPTS
        })
    );
    assert_eq!(store.calls.load(Ordering::Relaxed), 2 * MAX_ATTEMPTS);
    let limits = limits_from(&one_policy(json!({})));
    let (verdict, report) = send_to(&limits, &store);
    assert!(matches!(verdict, LimitVerdict::Reject(_)));
    let message = report.events[0].error_message.as_deref().unwrap();
    assert!(message.contains("compare-and-swap"), "{message}");
}

#[test]
fn first_insert_loses_to_concurrent_creator() {
    let store = MemoryStore::default();
    let anchor = Anchor::default();
    let mut raced = false;
    let result = store::update(&store, &anchor, "k", |current| {
        if current.is_none() && !raced {
            raced = true;
            // Another worker creates the key between this read and write.
            store.set("k", b"theirs", 0).unwrap();
        }
        let mut value = current.unwrap_or_default().to_vec();
        value.extend_from_slice(b"+mine");
        Ok(Update {
            value: Some(value),
            output: (),
        })
    });
    assert_eq!(result, Ok(()));
    assert_eq!(store.value("k").unwrap(), b"theirs+mine");
}

#[test]
fn bucket_encoding_round_trips() {
    let harness = Harness::new(&failures_policy(json!({"limit": 1, "max_keys": 4})));
    harness.attempt(&from("192.0.2.1"), 401, T0);
    // Still in flight, so its entry has an in-flight count.
    harness.send(&from("192.0.2.2"), T0 + 5);
    let raw = harness
        .store
        .value(&harness.limits.policies()[0].bucket_key(0))
        .unwrap();
    assert_eq!(raw.len(), HEADER_BYTES + 2 * ENTRY_BYTES);
    let bucket = Bucket::decode(&raw);
    assert_eq!(bucket.encode(), raw);
    let entry = bucket.entries[0];
    assert!(entry.lock_active);
    assert_eq!(entry.locked_until_ms, T0 + 300_000);
    assert_eq!(entry.lockouts, 1);
    assert_eq!(entry.in_flight, 0);
    let pending = bucket.entries[1];
    assert_eq!(pending.in_flight, 1);
    assert_eq!(pending.in_flight_since_ms, T0 + 5);
    // Values in another format or cut short read as empty.
    for bad in [&raw[..raw.len() - 1], &[3, 0][..], &[][..], &[2, 5][..]] {
        assert_eq!(Bucket::decode(bad), Bucket::default());
    }
}

#[test]
fn event_json_has_ecs_fields() {
    let mut event = LimitEvent::new(at(T0), LimitAction::KeyLockedOut, "login", None);
    event.lockout_seconds = Some(60);
    event.lockout_level = Some(2);
    let json: Value = serde_json::from_str(&event.to_json()).unwrap();
    assert_eq!(json["event"]["kind"], "alert");
    assert_eq!(json["event"]["action"], "key-locked-out");
    assert_eq!(json["event"]["outcome"], "failure");
    assert_eq!(json["portcullis"]["lockout_seconds"], 60);
    assert_eq!(json["portcullis"]["lockout_level"], 2);
    assert_eq!(json["portcullis"]["mode"], "block");
    assert!(json["portcullis"].get("key_hash").is_none());
}

#[test]
fn repeated_form_field_is_ambiguous() {
    let harness = key_harness(json!([{"body_field": "username"}]));
    let form = Some("application/x-www-form-urlencoded");
    let alice = harness.key_of(&with_body(form, "username=alice"));
    let missing = harness.key_of(&with_body(form, "password=x"));
    // Whichever copy the application reads, the client cannot pick the key:
    // every ambiguous request shares one.
    let ambiguous = harness.key_of(&with_body(form, "username=x1&username=alice"));
    assert_ne!(ambiguous, alice);
    assert_ne!(ambiguous, missing);
    for body in ["username=alice&username=x1", "username=x2&username=alice"] {
        assert_eq!(harness.key_of(&with_body(form, body)), ambiguous, "{body}");
    }
    // The same value twice is not ambiguous.
    assert_eq!(
        harness.key_of(&with_body(form, "username=alice&username=alice")),
        alice
    );
}

#[test]
fn ambiguous_part_is_counted_when_missing_skips() {
    let harness = Harness::new(&one_policy(json!({
        "key": [{"header": "x-api-key"}], "on_missing_key": "skip"
    })));
    let derive = |request: &Request| {
        let policy = &harness.limits.policies()[0];
        policy
            .key
            .derive(&harness.salt, &policy.name, &request.inputs())
    };
    let repeated = |junk: &str| with_headers(&[("x-api-key", "k-1"), ("x-api-key", junk)]);
    assert!(derive(&with_headers(&[("x-other", "1")])).is_none());
    let first = derive(&repeated("junk-1"));
    assert!(first.is_some());
    assert_eq!(derive(&repeated("junk-2")), first);
    assert_ne!(derive(&with_headers(&[("x-api-key", "k-1")])), first);
}

#[test]
fn cookie_spellings_make_one_key() {
    let harness = key_harness(json!([{"cookie": "session"}]));
    let plain = harness.key_of(&with_headers(&[("cookie", "session=abc")]));
    for spelling in [
        "session=\"abc\"",
        "session=\"\\141bc\"",
        "session=%61bc",
        "theme=dark; session=abc",
        "session=abc; session=abc",
        "sess%69on=abc",
    ] {
        assert_eq!(
            harness.key_of(&with_headers(&[("cookie", spelling)])),
            plain,
            "{spelling}"
        );
    }
    let repeated = harness.key_of(&with_headers(&[("cookie", "session=junk; session=abc")]));
    assert_ne!(repeated, plain);
    assert_eq!(
        harness.key_of(&with_headers(&[("cookie", "session=abc; session=other")])),
        repeated
    );
}

#[test]
fn json_case_variants_are_ambiguous() {
    let harness = key_harness(json!([{"body_field": "username"}]));
    let json = Some("application/json");
    let alice = harness.key_of(&with_body(json, r#"{"username":"alice"}"#));
    assert_eq!(
        harness.key_of(&with_body(json, r#"{"USERNAME":"alice"}"#)),
        alice
    );
    assert_eq!(
        harness.key_of(&with_body(
            json,
            r#"{"username":"alice","username":"alice"}"#
        )),
        alice
    );

    let ambiguous = harness.key_of(&with_body(
        json,
        r#"{"username":"junk1","USERNAME":"alice"}"#,
    ));
    assert_ne!(ambiguous, alice);
    for body in [
        r#"{"username":"alice","username":"junk2"}"#,
        r#"{"UserName":"junk3","username":"alice"}"#,
    ] {
        assert_eq!(harness.key_of(&with_body(json, body)), ambiguous, "{body}");
    }

    let pointer = key_harness(json!([{"body_field": "/user/name"}]));
    let nested = pointer.key_of(&with_body(json, r#"{"user":{"name":"alice"}}"#));
    assert_eq!(
        pointer.key_of(&with_body(
            json,
            r#"{"user":{"name":"alice"},"User":{"name":"alice"}}"#
        )),
        nested
    );
    assert_ne!(
        pointer.key_of(&with_body(
            json,
            r#"{"user":{"name":"x"},"user":{"name":"alice"}}"#
        )),
        nested
    );
}

#[test]
fn response_store_failure_rejects_nothing() {
    let limits = limits_from(&one_policy(json!({"count": "failures"})));
    let working = MemoryStore::default();
    let anchor = Anchor::default();
    let request_context = Context {
        store: &working,
        anchor: &anchor,
        salt: SALT,
        now: at(T0),
    };
    let client = from("192.0.2.1");
    let mut report = Report::default();
    let mut state = limits.start_request("POST", b"/login", client.ip);
    let verdict =
        state.on_request_headers(&limits, &client.inputs(), &request_context, &mut report);
    assert_eq!(verdict, LimitVerdict::Continue);

    let broken = BrokenStore {
        lose_every_write: false,
        calls: AtomicU32::new(0),
    };
    let response_context = Context {
        store: &broken,
        anchor: &anchor,
        salt: SALT,
        now: at(T0 + 10),
    };
    let mut report = Report::default();
    state.on_response_headers(&limits, Some(401), &response_context, &mut report);
    // The response has gone out already: the event says the failure was not
    // counted, and nothing claims a rejection.
    assert_eq!(report.metrics, vec![LimitMetric::StoreFailed]);
    let event = &report.events[0];
    assert_eq!(event.status_code, None);
    let message = event.error_message.as_deref().unwrap();
    assert!(
        message.ends_with("the failure was not counted"),
        "{message}"
    );
}

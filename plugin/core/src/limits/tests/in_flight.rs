//! Requests in flight under failure-counting policies: they count toward
//! the limit at request time, settling lowers them, and old counts lapse.

use super::*;
use crate::limits::entry::{Entry, V1_ENTRY_BYTES};
use crate::limits::policy::{IN_FLIGHT_MAX_AGE_MS, IN_FLIGHT_RETRY_SECONDS};
use std::sync::atomic::AtomicI32;
use std::sync::Mutex;

/// Reads the stored entry of a request's key under the harness's first
/// policy.
fn stored_entry(harness: &Harness, request: &Request) -> Option<Entry> {
    let policy = &harness.limits.policies()[0];
    let key = harness.key_of(request);
    let raw = harness
        .store
        .value(&policy.bucket_key(policy.bucket_of(&key)))?;
    let bucket = Bucket::decode(&raw);
    bucket.position(&key).map(|index| bucket.entries[index])
}

fn in_flight_of(harness: &Harness, request: &Request) -> u32 {
    stored_entry(harness, request).map_or(0, |entry| entry.in_flight)
}

fn log(harness: &Harness, sent: &mut Sent, response_code: Option<u32>, ms: u64) {
    sent.state.on_log(
        &harness.limits,
        response_code,
        &harness.context(ms),
        &mut sent.report,
    );
}

#[test]
fn in_flight_requests_reach_limit() {
    let harness = Harness::new(&failures_policy(json!({})));
    let client = from("192.0.2.1");
    let pending: Vec<Sent> = (0..3).map(|_| harness.send(&client, T0)).collect();
    for sent in &pending {
        assert_eq!(sent.verdict, LimitVerdict::Continue);
    }
    assert_eq!(in_flight_of(&harness, &client), 3);

    let busy = harness.send(&client, T0 + 10);
    assert!(busy.rejected());
    let response = busy.response();
    assert_eq!(response.status, 429);
    let retry_after = IN_FLIGHT_RETRY_SECONDS.to_string();
    assert_eq!(
        header(&response.headers, "retry-after"),
        Some(retry_after.as_str())
    );
    assert_eq!(
        header(&response.headers, "ratelimit"),
        Some(format!("\"login\";r=0;t={retry_after}").as_str())
    );
    assert_eq!(busy.actions(), vec![LimitAction::RateLimited]);
    assert_eq!(busy.report.metrics, vec![LimitMetric::Rejected]);
    let event = &busy.report.events[0];
    assert_eq!(event.in_flight, Some(3));
    assert_eq!(event.status_code, Some(429));
    let json: Value = serde_json::from_str(&event.to_json()).unwrap();
    assert_eq!(json["portcullis"]["in_flight"], 3);
    // A rejected request raises nothing.
    assert_eq!(in_flight_of(&harness, &client), 3);
}

#[test]
fn in_flight_rejection_starts_no_lockout() {
    let harness = Harness::new(&failures_policy(json!({})));
    let client = from("192.0.2.1");
    let mut pending: Vec<Sent> = (0..3).map(|_| harness.send(&client, T0)).collect();
    for _ in 0..5 {
        let busy = harness.send(&client, T0);
        assert!(busy.rejected());
        assert!(!busy.actions().contains(&LimitAction::KeyLockedOut));
    }
    let entry = stored_entry(&harness, &client).unwrap();
    assert!(!entry.lock_active);
    assert_eq!(entry.lockouts, 0);
    for sent in &mut pending {
        harness.respond(sent, 200, T0 + 1000);
        assert!(sent.report.events.is_empty());
    }
    assert_eq!(in_flight_of(&harness, &client), 0);
    assert_eq!(
        harness.send(&client, T0 + 1000).verdict,
        LimitVerdict::Continue
    );
}

#[test]
fn failures_plus_in_flight_reach_limit() {
    let harness = Harness::new(&failures_policy(json!({})));
    let client = from("192.0.2.1");
    for _ in 0..2 {
        harness.attempt(&client, 401, T0);
    }
    assert_eq!(in_flight_of(&harness, &client), 0);
    let mut last = harness.send(&client, T0);
    assert_eq!(last.verdict, LimitVerdict::Continue);
    // Two failures and one request in flight: the limit of 3 is reached.
    let busy = harness.send(&client, T0);
    assert!(busy.rejected());
    assert_eq!(busy.report.events[0].in_flight, Some(1));
    // The lockout reads failures only: two failures start none.
    assert!(!busy.actions().contains(&LimitAction::KeyLockedOut));
    harness.respond(&mut last, 401, T0);
    assert_eq!(last.actions(), vec![LimitAction::KeyLockedOut]);
    let locked = harness.send(&client, T0 + 1000);
    assert!(locked.rejected());
    assert_eq!(locked.report.events[0].in_flight, None);
    assert_eq!(
        header(&locked.response().headers, "retry-after"),
        Some("299")
    );
}

#[test]
fn response_lowers_in_flight_and_counts_failure() {
    let harness = Harness::new(&failures_policy(json!({"limit": 5})));
    let client = from("192.0.2.1");
    let mut first = harness.send(&client, T0);
    let mut second = harness.send(&client, T0);
    assert_eq!(in_flight_of(&harness, &client), 2);
    harness.respond(&mut first, 401, T0 + 100);
    assert_eq!(
        first.report.metrics,
        vec![LimitMetric::Allowed, LimitMetric::Failures]
    );
    let entry = stored_entry(&harness, &client).unwrap();
    assert_eq!(entry.in_flight, 1);
    assert_eq!(entry.current, 1);
    harness.respond(&mut second, 200, T0 + 200);
    assert_eq!(second.report.metrics, vec![LimitMetric::Allowed]);
    let entry = stored_entry(&harness, &client).unwrap();
    assert_eq!(entry.in_flight, 0);
    assert_eq!(entry.current, 1);
    // A second response callback changes nothing.
    harness.respond(&mut second, 401, T0 + 300);
    assert_eq!(stored_entry(&harness, &client).unwrap().current, 1);
}

#[test]
fn on_log_lowers_in_flight() {
    let harness = Harness::new(&failures_policy(json!({})));
    let client = from("192.0.2.1");
    let mut reset = harness.send(&client, T0);
    let mut replied = harness.send(&client, T0);
    let _unanswered = harness.send(&client, T0);
    assert!(harness.send(&client, T0).rejected());

    // A reset stream counts as a failure and leaves flight.
    log(&harness, &mut reset, None, T0 + 100);
    assert_eq!(
        reset.report.metrics,
        vec![LimitMetric::Allowed, LimitMetric::Failures]
    );
    let entry = stored_entry(&harness, &client).unwrap();
    assert_eq!(entry.in_flight, 2);
    assert_eq!(entry.current, 1);
    assert!(harness.send(&client, T0 + 100).rejected());

    // A local reply that is no failure only leaves flight.
    log(&harness, &mut replied, Some(200), T0 + 200);
    assert_eq!(replied.report.metrics, vec![LimitMetric::Allowed]);
    let entry = stored_entry(&harness, &client).unwrap();
    assert_eq!(entry.in_flight, 1);
    assert_eq!(entry.current, 1);
    assert_eq!(
        harness.send(&client, T0 + 200).verdict,
        LimitVerdict::Continue
    );
}

#[test]
fn release_lowers_in_flight_once() {
    let harness = Harness::new(&failures_policy(json!({})));
    let client = from("192.0.2.1");
    let mut sent = harness.send(&client, T0);
    let mut report = Report::default();
    sent.state
        .release(&harness.limits, &harness.context(T0 + 10), &mut report);
    assert!(report.metrics.is_empty());
    assert_eq!(in_flight_of(&harness, &client), 0);
    let _other = harness.send(&client, T0 + 20);
    assert_eq!(in_flight_of(&harness, &client), 1);
    // The request is settled: neither a second release nor on_log lowers
    // the count raised by the other request, or counts a failure.
    sent.state
        .release(&harness.limits, &harness.context(T0 + 30), &mut report);
    log(&harness, &mut sent, None, T0 + 40);
    let entry = stored_entry(&harness, &client).unwrap();
    assert_eq!(entry.in_flight, 1);
    assert_eq!(entry.current, 0);
}

#[test]
fn later_policy_rejection_lowers_in_flight() {
    let harness = Harness::new(
        &json!({"limits": {"policies": [
            {"name": "login", "key": [{"address": {}}], "count": "failures",
             "failure_statuses": [401], "limit": 3, "window_seconds": 60},
            {"name": "burst", "key": [{"address": {}}], "limit": 1, "window_seconds": 60},
        ]}})
        .to_string(),
    );
    let client = from("192.0.2.1");
    let first = harness.send(&client, T0);
    assert_eq!(first.verdict, LimitVerdict::Continue);
    assert_eq!(in_flight_of(&harness, &client), 1);
    let mut second = harness.send(&client, T0);
    assert!(second.rejected());
    // The failure policy raised the count, and the rejection lowered it.
    assert_eq!(in_flight_of(&harness, &client), 1);
    // The rejected request is settled, so no later callback counts it.
    log(&harness, &mut second, None, T0);
    let entry = stored_entry(&harness, &client).unwrap();
    assert_eq!(entry.in_flight, 1);
    assert_eq!(entry.current, 0);
}

#[test]
fn stale_in_flight_reads_as_zero() {
    let harness = Harness::new(&failures_policy(json!({"window_seconds": 300})));
    let client = from("192.0.2.1");
    let mut abandoned: Vec<Sent> = (0..3).map(|_| harness.send(&client, T0)).collect();
    let last_ms = T0 + IN_FLIGHT_MAX_AGE_MS - 1;
    assert!(harness.send(&client, last_ms).rejected());
    // A sweep keeps an entry while it has requests in flight.
    harness.reclaim(last_ms);
    assert_eq!(in_flight_of(&harness, &client), 3);

    let lapsed_ms = T0 + IN_FLIGHT_MAX_AGE_MS;
    let mut late = harness.send(&client, lapsed_ms);
    assert_eq!(late.verdict, LimitVerdict::Continue);
    let entry = stored_entry(&harness, &client).unwrap();
    assert_eq!(entry.in_flight, 1);
    assert_eq!(entry.in_flight_since_ms, lapsed_ms);
    // A response that comes after the bound lowers the fresh count, never
    // below zero.
    for sent in &mut abandoned {
        harness.respond(sent, 200, lapsed_ms + 1);
    }
    assert_eq!(in_flight_of(&harness, &client), 0);
    harness.respond(&mut late, 200, lapsed_ms + 2);
    assert_eq!(in_flight_of(&harness, &client), 0);
}

#[test]
fn stale_in_flight_entry_is_reclaimed() {
    let harness = Harness::new(&failures_policy(json!({})));
    let client = from("192.0.2.1");
    let _abandoned = harness.send(&client, T0);
    harness.reclaim(T0 + IN_FLIGHT_MAX_AGE_MS - 1);
    assert!(stored_entry(&harness, &client).is_some());
    harness.reclaim(T0 + IN_FLIGHT_MAX_AGE_MS);
    assert!(stored_entry(&harness, &client).is_none());
}

#[test]
fn monitor_mode_flags_in_flight_without_raising() {
    let harness = Harness::new(&failures_policy(json!({"mode": "monitor", "limit": 2})));
    let client = from("192.0.2.1");
    let _pending: Vec<Sent> = (0..2).map(|_| harness.send(&client, T0)).collect();
    let mut flagged = harness.send(&client, T0);
    assert_eq!(flagged.verdict, LimitVerdict::Continue);
    assert_eq!(flagged.report.metrics, vec![LimitMetric::Flagged]);
    let event = &flagged.report.events[0];
    assert!(event.monitor);
    assert_eq!(event.in_flight, Some(2));
    assert_eq!(in_flight_of(&harness, &client), 2);
    // Its response lowers nothing, since it raised nothing.
    harness.respond(&mut flagged, 200, T0);
    assert_eq!(in_flight_of(&harness, &client), 2);
}

#[test]
fn request_counting_leaves_in_flight_alone() {
    let harness = Harness::new(&one_policy(json!({})));
    let client = from("192.0.2.1");
    let mut sent = harness.send(&client, T0);
    harness.respond(&mut sent, 401, T0);
    let entry = stored_entry(&harness, &client).unwrap();
    assert_eq!(entry.in_flight, 0);
    assert_eq!(entry.in_flight_since_ms, 0);
}

#[test]
fn version_1_bucket_decodes_without_in_flight() {
    let harness = Harness::new(&failures_policy(json!({"limit": 1, "max_keys": 4})));
    let locked = from("192.0.2.1");
    harness.attempt(&locked, 401, T0);
    let bucket_key = harness.limits.policies()[0].bucket_key(0);
    let current = harness.store.value(&bucket_key).unwrap();
    let bucket = Bucket::decode(&current);
    assert_eq!(bucket.entries.len(), 1);
    assert!(bucket.entries[0].lock_active);

    // The same bucket as a version-1 module wrote it.
    let mut v1 = vec![1, 1];
    v1.extend_from_slice(&current[HEADER_BYTES..HEADER_BYTES + V1_ENTRY_BYTES]);
    let decoded = Bucket::decode(&v1);
    let mut expected = bucket.clone();
    expected.entries[0].in_flight_since_ms = 0;
    assert_eq!(decoded, expected);
    assert_eq!(decoded.entries[0].in_flight, 0);
    for bad in [&v1[..v1.len() - 1], &[1, 5][..]] {
        assert_eq!(Bucket::decode(bad), Bucket::default());
    }

    // The lockout survives, and the next write stores version 2.
    harness.store.set(&bucket_key, &v1, 0).unwrap();
    assert!(harness.send(&locked, T0 + 1000).rejected());
    let newcomer = from("192.0.2.2");
    let _pending = harness.send(&newcomer, T0 + 1000);
    let raw = harness.store.value(&bucket_key).unwrap();
    assert_eq!(raw[0], 2);
    assert_eq!(raw.len(), HEADER_BYTES + 2 * ENTRY_BYTES);
    assert!(stored_entry(&harness, &locked).unwrap().lock_active);
    assert_eq!(in_flight_of(&harness, &newcomer), 1);
}

/// Runs the request phase of `client` at `T0` as the worker that owns
/// `anchor`.
fn check_once(limits: &Limits, store: &MemoryStore, anchor: &Anchor, client: &Request) -> Sent {
    let context = Context {
        store,
        anchor,
        salt: SALT,
        now: at(T0),
    };
    let mut report = Report::default();
    let mut state = limits.start_request("POST", b"/login", client.ip);
    let verdict = state.on_request_headers(limits, &client.inputs(), &context, &mut report);
    Sent {
        verdict,
        state,
        report,
    }
}

#[test]
fn concurrent_guesses_admit_at_most_limit() {
    let limits = limits_from(&failures_policy(json!({"limit": 5})));
    let store = MemoryStore::default();
    let start = Barrier::new(8);
    let admitted = Mutex::new(Vec::new());
    let rejected = AtomicU32::new(0);
    let failed = AtomicU32::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let anchor = Anchor::default();
                let client = from("192.0.2.1");
                start.wait();
                for _ in 0..5 {
                    let sent = check_once(&limits, &store, &anchor, &client);
                    if sent.report.metrics.contains(&LimitMetric::StoreFailed) {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    match sent.verdict {
                        LimitVerdict::Continue => admitted.lock().unwrap().push(sent),
                        _ => {
                            rejected.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let mut admitted = admitted.into_inner().unwrap();
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert_eq!(admitted.len(), 5);
    assert_eq!(rejected.load(Ordering::Relaxed), 35);

    // Every guess fails: the fifth failure locks the key out.
    let anchor = Anchor::default();
    let context = Context {
        store: &store,
        anchor: &anchor,
        salt: SALT,
        now: at(T0 + 1000),
    };
    let mut lockouts = 0;
    for sent in &mut admitted {
        sent.state
            .on_response_headers(&limits, Some(401), &context, &mut sent.report);
        lockouts += sent
            .report
            .events
            .iter()
            .filter(|event| event.action == LimitAction::KeyLockedOut)
            .count();
    }
    assert_eq!(lockouts, 1);
    let after = check_once(&limits, &store, &anchor, &from("192.0.2.1"));
    assert!(after.rejected());
}

#[test]
fn concurrent_round_trips_stay_within_limit() {
    let limits = limits_from(&failures_policy(json!({"limit": 3})));
    let store = MemoryStore::default();
    let start = Barrier::new(8);
    // Requests between a Continue and their response, as the threads see
    // them. It rises after the store's count and falls before it, so it
    // never exceeds the store's count.
    let in_flight = AtomicI32::new(0);
    let max_in_flight = AtomicI32::new(0);
    let admitted = AtomicU32::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let anchor = Anchor::default();
                let context = Context {
                    store: &store,
                    anchor: &anchor,
                    salt: SALT,
                    now: at(T0),
                };
                let client = from("192.0.2.1");
                start.wait();

                for _ in 0..300 {
                    let mut sent = check_once(&limits, &store, &anchor, &client);
                    if sent.verdict != LimitVerdict::Continue {
                        continue;
                    }
                    admitted.fetch_add(1, Ordering::Relaxed);
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max_in_flight.fetch_max(now, Ordering::SeqCst);
                    std::thread::yield_now();
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    sent.state
                        .on_response_headers(&limits, Some(200), &context, &mut sent.report);
                }
            });
        }
    });
    assert!(max_in_flight.load(Ordering::SeqCst) <= 3);
    assert!(admitted.load(Ordering::Relaxed) >= 3);

    // Every request was answered, so nothing is left in flight.
    let policy = &limits.policies()[0];
    let key = policy
        .key
        .derive(SALT, &policy.name, &from("192.0.2.1").inputs())
        .unwrap();
    let raw = store
        .value(&policy.bucket_key(policy.bucket_of(&key)))
        .unwrap();
    let bucket = Bucket::decode(&raw);
    let entry = bucket.entries[bucket.position(&key).unwrap()];
    assert_eq!(entry.in_flight, 0);
    assert_eq!(entry.current, 0);
}

#[test]
fn release_store_failure_is_reported() {
    let limits = limits_from(&failures_policy(json!({})));
    let working = MemoryStore::default();
    let anchor = Anchor::default();
    let mut sent = check_once(&limits, &working, &anchor, &from("192.0.2.1"));
    assert_eq!(sent.verdict, LimitVerdict::Continue);

    let broken = BrokenStore {
        lose_every_write: false,
        calls: AtomicU32::new(0),
    };
    let context = Context {
        store: &broken,
        anchor: &anchor,
        salt: SALT,
        now: at(T0 + 10),
    };
    let mut report = Report::default();
    sent.state
        .on_response_headers(&limits, Some(200), &context, &mut report);
    assert_eq!(report.metrics, vec![LimitMetric::StoreFailed]);
    let event = &report.events[0];
    assert_eq!(event.action, LimitAction::LimitStoreFailed);
    assert_eq!(event.status_code, None);
    let message = event.error_message.as_deref().unwrap();
    assert!(
        message.ends_with("the in-flight count was not lowered and lapses after 60 s"),
        "{message}"
    );
}

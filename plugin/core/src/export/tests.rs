use super::*;
use crate::config::Config;

fn events(json: &str) -> EventsPolicy {
    match Config::from_json(json.as_bytes()) {
        Ok(config) => config.events,
        Err(error) => panic!("{error}"),
    }
}

fn export_policy(batch_size: usize, max_queue: usize) -> ExportPolicy {
    ExportPolicy {
        cluster: "siem".to_string(),
        authority: "siem".to_string(),
        path: "/ingest".to_string(),
        format: Format::Ndjson,
        batch_size,
        flush_interval_ms: 5_000,
        max_queue,
        timeout_ms: 1_000,
    }
}

fn rejected(json: &str) -> String {
    match Config::from_json(json.as_bytes()) {
        Ok(_) => panic!("accepted: {json}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn defaults_limit_log_and_do_not_export() {
    let policy = events("{}");
    assert_eq!(policy.log_max_per_kind, 100);
    assert_eq!(policy.log_window_ms, 10_000);
    assert_eq!(policy.export, None);
}

#[test]
fn export_section_compiles() {
    let policy = events(
        r#"{"events": {"export": {"cluster": "siem", "path": "/in", "format": "json_array",
            "batch_size": 10, "flush_interval_seconds": 2, "max_queue": 50}}}"#,
    );
    let Some(export) = policy.export else {
        panic!("no exporter")
    };
    assert_eq!(export.authority, "siem");
    assert_eq!(export.format, Format::JsonArray);
    assert_eq!(export.batch_size, 10);
    assert_eq!(export.flush_interval_ms, 2_000);
    assert_eq!(export.max_queue, 50);
}

#[test]
fn invalid_fields_rejected_with_path() {
    for (json, path) in [
        (
            r#"{"events": {"log_window_seconds": 0}}"#,
            "events.log_window_seconds",
        ),
        (
            r#"{"events": {"export": {"cluster": ""}}}"#,
            "events.export.cluster",
        ),
        (
            r#"{"events": {"export": {"cluster": "c", "path": "in"}}}"#,
            "events.export.path",
        ),
        (
            r#"{"events": {"export": {"cluster": "c", "batch_size": 0}}}"#,
            "events.export.batch_size",
        ),
        (
            r#"{"events": {"export": {"cluster": "c", "batch_size": 10, "max_queue": 5}}}"#,
            "events.export.max_queue",
        ),
        (
            r#"{"events": {"export": {"cluster": "c", "timeout_ms": 0}}}"#,
            "events.export.timeout_ms",
        ),
        (
            r#"{"events": {"export": {"cluster": "c", "authority": "a b"}}}"#,
            "events.export.authority",
        ),
        (
            r#"{"events": {"export": {"cluster": "c", "retries": 3}}}"#,
            "events.export",
        ),
        (r#"{"events": {"exporter": {}}}"#, "events"),
    ] {
        let message = rejected(json);
        assert!(message.starts_with(path), "{json}: {message}");
    }
}

#[test]
fn log_limit_suppresses_and_reports_count() {
    let policy = events(r#"{"events": {"log_max_per_kind": 2, "log_window_seconds": 10}}"#);
    let mut limiter = LogLimiter::default();
    assert_eq!(limiter.admit("request-blocked", 0, &policy), Admission::Log);
    assert_eq!(limiter.admit("request-blocked", 1, &policy), Admission::Log);
    assert_eq!(
        limiter.admit("request-blocked", 2, &policy),
        Admission::Suppress
    );
    assert_eq!(
        limiter.admit("request-blocked", 3, &policy),
        Admission::Suppress
    );
    // Another kind has its own allowance.
    assert_eq!(limiter.admit("token-rejected", 3, &policy), Admission::Log);
    assert!(limiter.take_suppressed(9_999, &policy).is_empty());
    assert_eq!(
        limiter.take_suppressed(10_000, &policy),
        vec![("request-blocked".to_string(), 2)]
    );
    assert!(limiter.take_suppressed(10_001, &policy).is_empty());
    assert_eq!(
        limiter.admit("request-blocked", 10_002, &policy),
        Admission::Log
    );
}

#[test]
fn log_limit_reports_window_ended_by_event() {
    let policy = events(r#"{"events": {"log_max_per_kind": 1, "log_window_seconds": 1}}"#);
    let mut limiter = LogLimiter::default();
    assert_eq!(limiter.admit("k", 0, &policy), Admission::Log);
    assert_eq!(limiter.admit("k", 10, &policy), Admission::Suppress);
    assert_eq!(limiter.admit("k", 1_000, &policy), Admission::Log);
    assert_eq!(
        limiter.take_suppressed(1_001, &policy),
        vec![("k".to_string(), 1)]
    );
}

#[test]
fn log_limit_zero_logs_everything() {
    let policy = events(r#"{"events": {"log_max_per_kind": 0}}"#);
    let mut limiter = LogLimiter::default();
    for now in 0..1_000 {
        assert_eq!(limiter.admit("k", now, &policy), Admission::Log);
    }
}

#[test]
fn full_batch_sent_at_once() {
    let policy = export_policy(3, 10);
    let mut queue = ExportQueue::default();
    queue.push("{\"a\":1}".to_string(), 0, &policy);
    queue.push("{\"a\":2}".to_string(), 0, &policy);
    assert_eq!(queue.take_batch(1, &policy), None);
    queue.push("{\"a\":3}".to_string(), 0, &policy);
    let Some(batch) = queue.take_batch(1, &policy) else {
        panic!("no batch")
    };
    assert_eq!(batch.events, 3);
    assert_eq!(batch.body, b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
    assert_eq!(batch.content_type, "application/x-ndjson");
    // One call at a time.
    queue.push("{\"a\":4}".to_string(), 2, &policy);
    assert_eq!(queue.take_batch(10_000, &policy), None);
}

#[test]
fn partial_batch_sent_after_interval() {
    let mut policy = export_policy(100, 1_000);
    policy.format = Format::JsonArray;
    let mut queue = ExportQueue::default();
    queue.push("{\"a\":1}".to_string(), 1_000, &policy);
    queue.push("{\"a\":2}".to_string(), 2_000, &policy);
    assert_eq!(queue.take_batch(5_999, &policy), None);
    let Some(batch) = queue.take_batch(6_000, &policy) else {
        panic!("no batch")
    };
    assert_eq!(batch.body, b"[{\"a\":1},{\"a\":2}]");
    assert_eq!(batch.content_type, "application/json");
}

#[test]
fn failed_batch_retried_with_backoff() {
    let policy = export_policy(2, 10);
    let mut queue = ExportQueue::default();
    queue.push("1".to_string(), 0, &policy);
    queue.push("2".to_string(), 0, &policy);
    assert!(queue.take_batch(0, &policy).is_some());
    queue.push("3".to_string(), 0, &policy);
    assert_eq!(queue.settle(false, 100, &policy), 0);
    assert_eq!(queue.failures(), 1);
    assert_eq!(queue.take_batch(1_099, &policy), None);
    let Some(batch) = queue.take_batch(1_100, &policy) else {
        panic!("no retry")
    };
    assert_eq!(
        batch.body, b"1\n2\n",
        "the failed batch goes first, in order"
    );
    queue.settle(false, 1_100, &policy);
    assert_eq!(
        queue.take_batch(3_099, &policy),
        None,
        "second delay doubles"
    );
    assert!(queue.take_batch(3_100, &policy).is_some());
    queue.settle(true, 3_100, &policy);
    assert_eq!(queue.failures(), 0);
    assert_eq!(queue.len(), 1);
}

#[test]
fn backoff_capped() {
    let policy = export_policy(1, 10);
    let mut queue = ExportQueue::default();
    queue.push("1".to_string(), 0, &policy);
    let mut now = 0;
    for _ in 0..40 {
        assert!(queue.take_batch(now, &policy).is_some());
        queue.settle(false, now, &policy);
        now += RETRY_MAX_MS;
    }
    assert!(queue.take_batch(now, &policy).is_some());
}

#[test]
fn queue_drops_oldest_past_bound() {
    let policy = export_policy(2, 4);
    let mut queue = ExportQueue::default();
    let mut dropped = 0;
    for index in 0..10 {
        dropped += queue.push(index.to_string(), 0, &policy);
    }
    assert_eq!(dropped, 6);
    assert_eq!(queue.len(), 4);
    let Some(batch) = queue.take_batch(0, &policy) else {
        panic!("no batch")
    };
    assert_eq!(batch.body, b"6\n7\n");
    // While the collector is down, events keep arriving: the bound holds,
    // counting the batch in flight.
    for index in 10..20 {
        dropped += queue.push(index.to_string(), 0, &policy);
    }
    dropped += queue.settle(false, 0, &policy);
    assert_eq!(queue.len(), 4);
    assert_eq!(dropped, 16);
}

//! What happens to security events after they are rendered: a rate limit per
//! event kind on the proxy's log, and an optional exporter that sends them in
//! batches to an HTTP collector (a SIEM intake or a webhook).
//!
//! ```json
//! {"events": {
//!   "log_max_per_kind": 100,
//!   "log_window_seconds": 10,
//!   "export": {
//!     "cluster": "siem",
//!     "authority": "siem.internal",
//!     "path": "/ingest",
//!     "format": "ndjson",
//!     "batch_size": 100,
//!     "flush_interval_seconds": 5,
//!     "max_queue": 1000,
//!     "timeout_ms": 5000
//!   }
//! }}
//! ```
//!
//! Each worker VM keeps its own limiter and its own queue, so no event is
//! sent by two workers. Delivery is at least once: a batch whose call timed
//! out is sent again, and the collector may then receive it twice.

use crate::config::Object;
use crate::error::Error;
use serde::Deserialize;
use std::collections::{BTreeMap, VecDeque};

/// Largest accepted `max_queue`.
pub const MAX_QUEUE_LIMIT: u32 = 100_000;
/// Largest accepted `batch_size`.
pub const MAX_BATCH_SIZE: u32 = 10_000;
/// First delay after a failed export; each further failure doubles it.
pub const RETRY_BASE_MS: u64 = 1_000;
/// Longest delay between export attempts.
pub const RETRY_MAX_MS: u64 = 60_000;

/// The `events` section, as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct EventsSection {
    /// Events of one `event.action` written to the log per window on each
    /// worker; 0 turns the limit off. Default 100.
    log_max_per_kind: u32,
    /// Length of a log window in seconds, 1 to 86400. Default 10.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 86400)))]
    log_window_seconds: u64,
    /// Export of every event, logged or not, to an HTTP collector. Default:
    /// none.
    export: Option<Object<ExportSection>>,
}

impl Default for EventsSection {
    fn default() -> Self {
        EventsSection {
            log_max_per_kind: 100,
            log_window_seconds: 10,
            export: None,
        }
    }
}

/// The `events.export` section, as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
struct ExportSection {
    /// Proxy cluster that the http calls go to; must not be blank.
    cluster: String,
    /// `:authority` of the calls, a host name without spaces or control
    /// characters. Default: the cluster name.
    #[serde(default)]
    authority: Option<String>,
    /// `:path` of the calls, starting with `/`. Default `/`.
    #[serde(default = "default_path")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^/[^\x00-\x1f\x7f]*$")))]
    path: String,
    /// Body encoding: `ndjson` (default, one event a line) or `json_array`.
    #[serde(default)]
    format: Format,
    /// Events per call at most, 1 to 10000; a full batch is sent at the
    /// next one-second tick. Default 100.
    #[serde(default = "default_batch_size")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 10000)))]
    batch_size: u32,
    /// Maximum time in seconds, 1 to 3600, that an event waits before a
    /// partial batch is sent. Default 5.
    #[serde(default = "default_flush_interval")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 3600)))]
    flush_interval_seconds: u64,
    /// Events held per worker at most, from `batch_size` to 100000; past it
    /// the oldest are dropped and counted. Default 1000.
    #[serde(default = "default_max_queue")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100000)))]
    max_queue: u32,
    /// Timeout of each call in milliseconds, 1 to 60000. Default 5000.
    #[serde(default = "default_timeout")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 60000)))]
    timeout_ms: u64,
}

fn default_path() -> String {
    "/".to_string()
}

fn default_batch_size() -> u32 {
    100
}

fn default_flush_interval() -> u64 {
    5
}

fn default_max_queue() -> u32 {
    1_000
}

fn default_timeout() -> u64 {
    5_000
}

/// How a batch is encoded in the request body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON object a line (`application/x-ndjson`).
    #[default]
    Ndjson,
    /// One JSON array of the events (`application/json`).
    JsonArray,
}

/// The compiled `events` section.
#[derive(Debug, Clone)]
pub struct EventsPolicy {
    /// Events of one kind written to the log per window; 0 turns the limit
    /// off.
    pub log_max_per_kind: u32,
    /// Length of a log window, in milliseconds.
    pub log_window_ms: u64,
    /// The exporter, when configured.
    pub export: Option<ExportPolicy>,
}

impl Default for EventsPolicy {
    fn default() -> Self {
        EventsPolicy {
            log_max_per_kind: 100,
            log_window_ms: 10_000,
            export: None,
        }
    }
}

/// The compiled `events.export` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportPolicy {
    /// Cluster that the host sends the calls to.
    pub cluster: String,
    /// `:authority` of the calls; the cluster name when not configured.
    pub authority: String,
    /// `:path` of the calls.
    pub path: String,
    /// Body encoding.
    pub format: Format,
    /// Events per call at most; a full batch is sent at the next tick.
    pub batch_size: usize,
    /// Longest time an event waits before a partial batch is sent, in ms.
    pub flush_interval_ms: u64,
    /// Events held at most; past it the oldest are dropped and counted.
    pub max_queue: usize,
    /// Timeout of each call, in milliseconds.
    pub timeout_ms: u64,
}

impl EventsPolicy {
    /// Checks and compiles the `events` section.
    pub(crate) fn compile(section: &EventsSection) -> Result<Self, Error> {
        if section.log_window_seconds == 0 || section.log_window_seconds > 86_400 {
            return Err(Error::invalid(
                "events.log_window_seconds",
                format!(
                    "must be between 1 and 86400, got {}",
                    section.log_window_seconds
                ),
            ));
        }
        let export = match &section.export {
            Some(Object(export)) => Some(compile_export(export)?),
            None => None,
        };
        Ok(EventsPolicy {
            log_max_per_kind: section.log_max_per_kind,
            log_window_ms: section.log_window_seconds * 1000,
            export,
        })
    }
}

fn compile_export(section: &ExportSection) -> Result<ExportPolicy, Error> {
    if section.cluster.trim().is_empty() {
        return Err(Error::invalid("events.export.cluster", "must not be empty"));
    }
    if !section.path.starts_with('/') || section.path.bytes().any(|b| b.is_ascii_control()) {
        return Err(Error::invalid(
            "events.export.path",
            format!(
                "must start with / and contain no control characters, got {:?}",
                section.path
            ),
        ));
    }
    if section.batch_size == 0 || section.batch_size > MAX_BATCH_SIZE {
        return Err(Error::invalid(
            "events.export.batch_size",
            format!(
                "must be between 1 and {MAX_BATCH_SIZE}, got {}",
                section.batch_size
            ),
        ));
    }
    if section.max_queue < section.batch_size || section.max_queue > MAX_QUEUE_LIMIT {
        return Err(Error::invalid(
            "events.export.max_queue",
            format!(
                "must be between batch_size ({}) and {MAX_QUEUE_LIMIT}, got {}",
                section.batch_size, section.max_queue
            ),
        ));
    }
    if section.flush_interval_seconds == 0 || section.flush_interval_seconds > 3_600 {
        return Err(Error::invalid(
            "events.export.flush_interval_seconds",
            format!(
                "must be between 1 and 3600, got {}",
                section.flush_interval_seconds
            ),
        ));
    }
    if section.timeout_ms == 0 || section.timeout_ms > 60_000 {
        return Err(Error::invalid(
            "events.export.timeout_ms",
            format!("must be between 1 and 60000, got {}", section.timeout_ms),
        ));
    }
    let authority = match &section.authority {
        Some(authority) if authority.bytes().any(|b| b.is_ascii_control() || b == b' ') => {
            return Err(Error::invalid(
                "events.export.authority",
                format!("must be a host name, got {authority:?}"),
            ))
        }
        Some(authority) if !authority.is_empty() => authority.clone(),
        _ => section.cluster.clone(),
    };
    Ok(ExportPolicy {
        cluster: section.cluster.clone(),
        authority,
        path: section.path.clone(),
        format: section.format,
        batch_size: section.batch_size as usize,
        flush_interval_ms: section.flush_interval_seconds * 1000,
        max_queue: section.max_queue as usize,
        timeout_ms: section.timeout_ms,
    })
}

/// Whether an event goes to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Write it.
    Log,
    /// Leave it out: its kind reached the limit of the current window.
    Suppress,
}

/// Counts of one event kind in the current window.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    start_ms: u64,
    logged: u32,
    suppressed: u64,
}

/// A rate limit per event kind on the log, in fixed windows. Suppressed
/// events are counted and reported once their window ends.
#[derive(Debug, Default)]
pub struct LogLimiter {
    windows: BTreeMap<String, Window>,
    /// Suppressed counts of windows that have ended, not yet reported.
    ended: Vec<(String, u64)>,
}

impl LogLimiter {
    /// Decides whether an event of `kind` is logged.
    pub fn admit(&mut self, kind: &str, now_ms: u64, policy: &EventsPolicy) -> Admission {
        if policy.log_max_per_kind == 0 {
            return Admission::Log;
        }
        let window = self.windows.entry(kind.to_string()).or_default();
        if window_over(window, now_ms, policy) {
            if window.suppressed > 0 {
                self.ended.push((kind.to_string(), window.suppressed));
            }
            *window = Window {
                start_ms: now_ms,
                ..Window::default()
            };
        }
        if window.logged < policy.log_max_per_kind {
            window.logged += 1;
            Admission::Log
        } else {
            window.suppressed += 1;
            Admission::Suppress
        }
    }

    /// Returns the kinds whose window has ended with suppressed events, with
    /// their counts, and starts a new window for each.
    pub fn take_suppressed(&mut self, now_ms: u64, policy: &EventsPolicy) -> Vec<(String, u64)> {
        let mut ended = std::mem::take(&mut self.ended);
        for (kind, window) in &mut self.windows {
            if window.suppressed > 0 && window_over(window, now_ms, policy) {
                ended.push((kind.clone(), window.suppressed));
                *window = Window {
                    start_ms: now_ms,
                    ..Window::default()
                };
            }
        }
        ended
    }
}

/// Tells whether a window has ended. A clock that moved backwards ends it
/// too, so that a window never lasts longer than configured.
fn window_over(window: &Window, now_ms: u64, policy: &EventsPolicy) -> bool {
    now_ms >= window.start_ms.saturating_add(policy.log_window_ms) || now_ms < window.start_ms
}

/// Events waiting for export, and the state of the call in flight.
#[derive(Debug, Default)]
pub struct ExportQueue {
    queue: VecDeque<String>,
    in_flight: Vec<String>,
    failures: u32,
    next_attempt_ms: u64,
    oldest_since_ms: Option<u64>,
}

/// A batch to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Request body.
    pub body: Vec<u8>,
    /// Value of `content-type`.
    pub content_type: &'static str,
    /// Number of events in the batch.
    pub events: usize,
}

impl ExportQueue {
    /// Adds an event; returns how many old events were dropped to make room.
    pub fn push(&mut self, line: String, now_ms: u64, policy: &ExportPolicy) -> usize {
        if self.queue.is_empty() {
            self.oldest_since_ms = Some(now_ms);
        }
        self.queue.push_back(line);
        self.trim(policy)
    }

    /// Events held: queued and in flight.
    pub fn len(&self) -> usize {
        self.queue.len() + self.in_flight.len()
    }

    /// Tells whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tells whether a call is in flight.
    pub fn in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Drops the oldest queued events beyond `max_queue`, counting events in
    /// flight, which are older than any queued one.
    fn trim(&mut self, policy: &ExportPolicy) -> usize {
        let mut dropped = 0;
        while self.len() > policy.max_queue && !self.queue.is_empty() {
            self.queue.pop_front();
            dropped += 1;
        }
        dropped
    }

    /// Takes the next batch when one is due: no call is in flight, the retry
    /// delay has passed, and either a full batch is waiting or the oldest
    /// event has waited `flush_interval_ms`.
    pub fn take_batch(&mut self, now_ms: u64, policy: &ExportPolicy) -> Option<Batch> {
        if self.in_flight() || self.queue.is_empty() || now_ms < self.next_attempt_ms {
            return None;
        }
        let waited = self.oldest_since_ms.is_some_and(|since| {
            now_ms >= since.saturating_add(policy.flush_interval_ms) || now_ms < since
        });
        if self.queue.len() < policy.batch_size && !waited {
            return None;
        }
        let count = self.queue.len().min(policy.batch_size);
        self.in_flight = self.queue.drain(..count).collect();
        self.oldest_since_ms = (!self.queue.is_empty()).then_some(now_ms);
        Some(encode(&self.in_flight, policy.format))
    }

    /// Settles the call in flight. A failed batch goes back to the front of
    /// the queue and the next attempt waits a delay that doubles with each
    /// failure in a row; returns the events dropped to keep `max_queue`.
    pub fn settle(&mut self, delivered: bool, now_ms: u64, policy: &ExportPolicy) -> usize {
        let batch = std::mem::take(&mut self.in_flight);
        if delivered {
            self.failures = 0;
            self.next_attempt_ms = 0;
            return 0;
        }
        self.failures = self.failures.saturating_add(1);
        let shift = self.failures.saturating_sub(1).min(16);
        let delay = RETRY_BASE_MS.saturating_mul(1 << shift).min(RETRY_MAX_MS);
        self.next_attempt_ms = now_ms.saturating_add(delay);
        for line in batch.into_iter().rev() {
            self.queue.push_front(line);
        }
        self.oldest_since_ms = Some(
            self.oldest_since_ms
                .map_or(now_ms, |since| since.min(now_ms)),
        );
        self.trim(policy)
    }

    /// Failed attempts in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

fn encode(lines: &[String], format: Format) -> Batch {
    let mut body = Vec::with_capacity(lines.iter().map(|line| line.len() + 1).sum::<usize>() + 2);
    match format {
        Format::Ndjson => {
            for line in lines {
                body.extend_from_slice(line.as_bytes());
                body.push(b'\n');
            }
        }
        Format::JsonArray => {
            body.push(b'[');
            for (index, line) in lines.iter().enumerate() {
                if index > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(line.as_bytes());
            }
            body.push(b']');
        }
    }
    Batch {
        body,
        content_type: match format {
            Format::Ndjson => "application/x-ndjson",
            Format::JsonArray => "application/json",
        },
        events: lines.len(),
    }
}

#[cfg(test)]
mod tests;

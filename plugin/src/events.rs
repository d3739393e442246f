//! Writes every security event: to the host log under a rate limit per
//! event kind, and to the export queue when an exporter is configured. The
//! queue is flushed from the root context on tick, because the host delivers
//! the answer of an http call to the context that dispatched it.

use crate::host;
use crate::stream::Shared;
use portcullis_core::event::{suppressed_json, EventLevel};
use portcullis_core::export::{Admission, ExportPolicy, ExportQueue, LogLimiter};
use proxy_wasm::types::MapType;
use std::cell::{Cell, RefCell};
use std::time::{Duration, UNIX_EPOCH};

/// A counter of the event pipeline.
#[derive(Debug, Clone, Copy)]
enum EventMetric {
    /// Events left out of the log by the rate limit.
    Suppressed,
    /// Events the collector accepted.
    Exported,
    /// Events dropped from a full export queue.
    Dropped,
    /// Export calls that failed or got a status other than 2xx.
    ExportFailed,
}

impl EventMetric {
    const ALL: [EventMetric; 4] = [
        EventMetric::Suppressed,
        EventMetric::Exported,
        EventMetric::Dropped,
        EventMetric::ExportFailed,
    ];

    const fn name(self) -> &'static str {
        match self {
            EventMetric::Suppressed => "portcullis.events.suppressed",
            EventMetric::Exported => "portcullis.events.exported",
            EventMetric::Dropped => "portcullis.events.dropped",
            EventMetric::ExportFailed => "portcullis.events.export_failed",
        }
    }
}

/// The export call in flight.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    token: u32,
    events: usize,
}

/// Per-VM event state, created with each applied configuration.
pub struct EventsRuntime {
    limiter: RefCell<LogLimiter>,
    queue: RefCell<ExportQueue>,
    call: Cell<Option<InFlight>>,
    metric_ids: Vec<Option<u32>>,
}

impl EventsRuntime {
    /// Creates the state and defines the counters.
    pub fn new() -> Self {
        let metric_ids = EventMetric::ALL
            .iter()
            .map(|metric| host::define_counter(metric.name()))
            .collect();
        EventsRuntime {
            limiter: RefCell::new(LogLimiter::default()),
            queue: RefCell::new(ExportQueue::default()),
            call: Cell::new(None),
            metric_ids,
        }
    }

    fn add(&self, metric: EventMetric, count: usize) {
        if count == 0 {
            return;
        }
        if let Some(Some(id)) = self.metric_ids.get(metric as usize) {
            let _ = crate::abi::increment_metric(*id, count as i64);
        }
    }
}

fn now_ms() -> u64 {
    host::current_time()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as u64)
        .unwrap_or(0)
}

fn log_line(level: EventLevel, line: &str) {
    match level {
        EventLevel::Info => log::info!("{line}"),
        EventLevel::Warn => log::warn!("{line}"),
        EventLevel::Error => log::error!("{line}"),
    }
}

/// Writes one event of kind `kind` (its `event.action`) to the log, unless
/// the limiter suppresses that kind, and to the export queue when one is
/// configured. `line` builds the JSON line, only when one of the two takes
/// it.
pub fn write(shared: &Shared, kind: &str, level: EventLevel, line: impl FnOnce() -> String) {
    let now = now_ms();
    report_suppressed(shared, now);
    let runtime = &shared.events;
    let admission = runtime
        .limiter
        .borrow_mut()
        .admit(kind, now, &shared.config.events);
    if admission == Admission::Suppress {
        runtime.add(EventMetric::Suppressed, 1);
        if shared.config.events.export.is_none() {
            return;
        }
    }
    let line = line();
    if admission == Admission::Log {
        log_line(level, &line);
    }
    enqueue(shared, line, now);
}

fn enqueue(shared: &Shared, line: String, now: u64) {
    if let Some(export) = &shared.config.events.export {
        let dropped = shared.events.queue.borrow_mut().push(line, now, export);
        shared.events.add(EventMetric::Dropped, dropped);
    }
}

/// Logs one summary event for each kind whose window ended with events left
/// out.
fn report_suppressed(shared: &Shared, now: u64) {
    let ended = shared
        .events
        .limiter
        .borrow_mut()
        .take_suppressed(now, &shared.config.events);
    for (kind, count) in ended {
        let line = suppressed_json(
            host::current_time(),
            &kind,
            count,
            shared.plugin_name.as_deref(),
        );
        log::warn!("{line}");
        enqueue(shared, line, now);
    }
}

/// Reports ended windows and sends a batch when one is due.
pub fn on_tick(shared: &Shared) {
    let now = now_ms();
    report_suppressed(shared, now);
    let Some(export) = &shared.config.events.export else {
        return;
    };
    let batch = shared.events.queue.borrow_mut().take_batch(now, export);
    let Some(batch) = batch else {
        return;
    };
    let length = batch.body.len().to_string();
    let headers = vec![
        (":method", "POST"),
        (":path", export.path.as_str()),
        (":authority", export.authority.as_str()),
        ("content-type", batch.content_type),
        ("content-length", length.as_str()),
    ];
    let timeout = Duration::from_millis(export.timeout_ms);
    match crate::host::dispatch_http_call(&export.cluster, headers, Some(&batch.body), timeout) {
        Ok(token) => shared.events.call.set(Some(InFlight {
            token,
            events: batch.events,
        })),
        Err(status) => {
            log::warn!(
                "portcullis: sending {} events to cluster {} failed with status {status:?}, retrying later",
                batch.events,
                export.cluster
            );
            settle(shared, export, false, now);
        }
    }
}

fn settle(shared: &Shared, export: &ExportPolicy, delivered: bool, now: u64) {
    let dropped = shared
        .events
        .queue
        .borrow_mut()
        .settle(delivered, now, export);
    shared.events.add(EventMetric::Dropped, dropped);
    if !delivered {
        shared.events.add(EventMetric::ExportFailed, 1);
    }
}

/// Settles the export call with this token; returns `false` when the call
/// is not the exporter's.
pub fn on_http_call_response(shared: &Shared, token: u32, num_headers: usize) -> bool {
    let Some(in_flight) = shared.events.call.get() else {
        return false;
    };
    if in_flight.token != token {
        return false;
    }
    shared.events.call.set(None);
    let Some(export) = &shared.config.events.export else {
        return true;
    };
    // A failed call (reset, timeout, no healthy host) has no headers.
    let status = if num_headers == 0 {
        None
    } else {
        crate::host::header_value(MapType::HttpCallResponseHeaders, ":status")
            .and_then(|raw| String::from_utf8(raw).ok()?.parse::<u32>().ok())
    };
    let delivered = status.is_some_and(|status| (200..300).contains(&status));
    let now = now_ms();
    if delivered {
        shared.events.add(EventMetric::Exported, in_flight.events);
    } else {
        let failures = shared.events.queue.borrow().failures() + 1;
        // Logged every few failures only, since the cluster may stay down.
        if failures.is_power_of_two() {
            log::warn!(
                "portcullis: the collector on cluster {} answered {}, {failures} failures in a row, {} events held",
                export.cluster,
                status.map_or("nothing (the call failed)".to_string(), |status| status.to_string()),
                shared.events.queue.borrow().len()
            );
        }
    }
    settle(shared, export, delivered, now);
    true
}

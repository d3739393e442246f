//! Counters, defined once by the root context and shared with every HTTP
//! context.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::cell::Cell;

/// A counter that Portcullis reports. The discriminant indexes [`Metrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Requests whose headers the filter inspected.
    RequestsInspected,
    /// Requests stopped by a rule match in block mode.
    FilterBlocked,
    /// Rule matches in monitor mode.
    FilterFlagged,
    /// Bodies larger than `max_body_bytes`, rejected or passed.
    FilterBodyTooLarge,
    /// Responses whose headers the policy changed.
    HeadersHardened,
}

impl Metric {
    const ALL: [Metric; 5] = [
        Metric::RequestsInspected,
        Metric::FilterBlocked,
        Metric::FilterFlagged,
        Metric::FilterBodyTooLarge,
        Metric::HeadersHardened,
    ];

    /// Returns the metric name as the host reports it.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::RequestsInspected => "portcullis.requests.inspected",
            Metric::FilterBlocked => "portcullis.filter.blocked",
            Metric::FilterFlagged => "portcullis.filter.flagged",
            Metric::FilterBodyTooLarge => "portcullis.filter.body_too_large",
            Metric::HeadersHardened => "portcullis.headers.hardened",
        }
    }
}

/// Host ids of the counters. A counter that the host failed to define has no
/// id and is never incremented.
#[derive(Debug)]
pub struct Metrics {
    ids: [Option<u32>; 5],
    increment_failure_logged: Cell<bool>,
}

impl Metrics {
    /// Defines every counter with the host.
    pub fn define() -> Self {
        let ids = Metric::ALL.map(|metric| {
            match hostcalls::define_metric(MetricType::Counter, metric.name()) {
                Ok(id) => Some(id),
                Err(status) => {
                    log::error!(
                        "portcullis: defining metric {} failed with status {status:?}, it will not be reported",
                        metric.name()
                    );
                    None
                }
            }
        });
        Metrics {
            ids,
            increment_failure_logged: Cell::new(false),
        }
    }

    /// Adds one to a counter. The first failure is logged and later ones are
    /// not, because a failing host would otherwise log on every request.
    pub fn increment(&self, metric: Metric) {
        let Some(id) = self.ids[metric as usize] else {
            return;
        };
        if let Err(status) = hostcalls::increment_metric(id, 1) {
            if !self.increment_failure_logged.replace(true) {
                log::warn!(
                    "portcullis: incrementing metric {} failed with status {status:?}, later failures are not logged",
                    metric.name()
                );
            }
        }
    }
}

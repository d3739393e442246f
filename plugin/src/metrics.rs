//! Counters, defined once by the root context and shared with every HTTP
//! context.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

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
    /// Counters `portcullis.filter.rule.<id>`, defined on a rule's first
    /// match.
    rule_ids: RefCell<HashMap<&'static str, Option<u32>>>,
    increment_failure_logged: Cell<bool>,
}

impl Metrics {
    /// Defines every counter with the host.
    pub fn define() -> Self {
        let ids = Metric::ALL.map(|metric| crate::host::define_counter(metric.name()));
        Metrics {
            ids,
            rule_ids: RefCell::new(HashMap::new()),
            increment_failure_logged: Cell::new(false),
        }
    }

    /// Adds one to the counter `portcullis.filter.rule.<id>` of a rule that
    /// took part in a block or monitor decision, defining it on first use.
    pub fn increment_rule(&self, rule: &'static str) {
        let id = *self.rule_ids.borrow_mut().entry(rule).or_insert_with(|| {
            crate::host::define_counter(&format!("portcullis.filter.rule.{rule}"))
        });
        if let Some(id) = id {
            if crate::abi::increment_metric(id, 1).is_err() {
                self.increment_failure_logged.set(true);
            }
        }
    }

    /// Adds one to a counter. The first failure is logged and later ones are
    /// not, because a failing host would otherwise log on every request.
    pub fn increment(&self, metric: Metric) {
        let Some(id) = self.ids[metric as usize] else {
            return;
        };
        if let Err(status) = crate::abi::increment_metric(id, 1) {
            if !self.increment_failure_logged.replace(true) {
                log::warn!(
                    "portcullis: incrementing metric {} failed with status {status}, later failures are not logged",
                    metric.name()
                );
            }
        }
    }
}

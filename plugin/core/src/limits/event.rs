//! Security events and metric outcomes of the limits, rendered in the same
//! ECS shape as [`crate::event::SecurityEvent`].

use super::key::KeyHash;
use crate::event::{
    format_rfc3339, ErrorObject, EventLevel, HttpObject, ObserverObject, SourceAddress, UrlObject,
    UserObject,
};
use crate::http::{truncate_chars, RequestInfo};
use serde::Serialize;
use std::time::SystemTime;

/// The decision an event reports, rendered as `event.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitAction {
    /// A key reached its limit and was locked out.
    KeyLockedOut,
    /// A lockout ended.
    KeyReleased,
    /// A request was over the limit or its key locked out: rejected in block
    /// mode, let through in monitor mode.
    RateLimited,
    /// A counter could not be read or updated, and the policy's
    /// `on_store_failure` choice applied.
    LimitStoreFailed,
}

impl LimitAction {
    /// Returns the name rendered as `event.action`.
    pub const fn name(self) -> &'static str {
        match self {
            LimitAction::KeyLockedOut => "key-locked-out",
            LimitAction::KeyReleased => "key-released",
            LimitAction::RateLimited => "rate-limited",
            LimitAction::LimitStoreFailed => "limit-store-failed",
        }
    }
}

/// A counter that the limits report, named `portcullis.limits.<outcome>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitMetric {
    /// Requests checked and let through under the limit.
    Allowed,
    /// Requests rejected.
    Rejected,
    /// Requests over the limit let through in monitor mode.
    Flagged,
    /// Failures counted.
    Failures,
    /// Lockouts started.
    LockedOut,
    /// Lockouts ended.
    Released,
    /// Counter reads or updates that failed.
    StoreFailed,
}

impl LimitMetric {
    /// Every metric, in the order of their host ids.
    pub const ALL: [LimitMetric; 7] = [
        LimitMetric::Allowed,
        LimitMetric::Rejected,
        LimitMetric::Flagged,
        LimitMetric::Failures,
        LimitMetric::LockedOut,
        LimitMetric::Released,
        LimitMetric::StoreFailed,
    ];

    /// Returns the metric name as the host reports it.
    pub const fn name(self) -> &'static str {
        match self {
            LimitMetric::Allowed => "portcullis.limits.allowed",
            LimitMetric::Rejected => "portcullis.limits.rejected",
            LimitMetric::Flagged => "portcullis.limits.flagged",
            LimitMetric::Failures => "portcullis.limits.failures",
            LimitMetric::LockedOut => "portcullis.limits.locked_out",
            LimitMetric::Released => "portcullis.limits.released",
            LimitMetric::StoreFailed => "portcullis.limits.store_failed",
        }
    }
}

/// One limits event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitEvent {
    /// Host time of the decision.
    pub timestamp: SystemTime,
    /// The decision.
    pub action: LimitAction,
    /// Whether the request went through.
    pub success: bool,
    /// Log level for the event.
    pub level: EventLevel,
    /// Policy name.
    pub policy: String,
    /// Hash of the key; `None` when the key was not derived.
    pub key: Option<KeyHash>,
    /// Length of a lockout, in seconds.
    pub lockout_seconds: Option<u64>,
    /// 1 for a first lockout, 2 for the next one, and so on.
    pub lockout_level: Option<u16>,
    /// `Retry-After` of a rejection, in seconds.
    pub retry_after_seconds: Option<u64>,
    /// Requests of the key in flight, for a rejection because failures and
    /// requests in flight reach the limit.
    pub in_flight: Option<u32>,
    /// Status of the local response sent.
    pub status_code: Option<u32>,
    /// Whether the policy is in monitor mode.
    pub monitor: bool,
    /// Error message, for store failures.
    pub error_message: Option<String>,
    /// Client address.
    pub source: Option<SourceAddress>,
    /// Method and path of the request.
    pub request: Option<RequestInfo>,
    /// Plugin name from the `plugin_name` property.
    pub observer_name: Option<String>,
    /// Subject of the validated token, rendered as `user.name`.
    pub user_name: Option<String>,
}

impl LimitEvent {
    /// Builds an event without request details.
    pub fn new(
        timestamp: SystemTime,
        action: LimitAction,
        policy: &str,
        key: Option<KeyHash>,
    ) -> Self {
        let (success, level) = match action {
            LimitAction::KeyReleased => (true, EventLevel::Info),
            LimitAction::KeyLockedOut | LimitAction::RateLimited => (false, EventLevel::Warn),
            LimitAction::LimitStoreFailed => (false, EventLevel::Error),
        };
        LimitEvent {
            timestamp,
            action,
            success,
            level,
            policy: policy.to_string(),
            key,
            lockout_seconds: None,
            lockout_level: None,
            retry_after_seconds: None,
            in_flight: None,
            status_code: None,
            monitor: false,
            error_message: None,
            source: None,
            request: None,
            observer_name: None,
            user_name: None,
        }
    }

    /// Adds the method and path of the request.
    pub fn with_request(mut self, request: &RequestInfo) -> Self {
        self.request = Some(request.clone());
        self
    }

    /// Adds the client address.
    pub fn with_source(mut self, source: Option<SourceAddress>) -> Self {
        self.source = source;
        self
    }

    /// Adds the subject of the validated token as `user.name`. Names read
    /// from login fields are never added: people type passwords into
    /// username fields, and a failed login would then write one to the log.
    pub fn with_user(mut self, name: Option<&str>) -> Self {
        self.user_name = name.map(|name| truncate_chars(name, 128));
        self
    }

    /// Adds the plugin name as `observer.name`.
    pub fn with_observer(mut self, name: Option<&str>) -> Self {
        self.observer_name = name.map(|name| truncate_chars(name, 128));
        self
    }

    /// Renders the event as one line of JSON.
    pub fn to_json(&self) -> String {
        let http = HttpObject::from_parts(self.request.as_ref(), self.status_code);
        let key = self.key.map(|key| key.to_string());
        let document = Document {
            timestamp: format_rfc3339(self.timestamp),
            event: EventObject {
                // A lockout and a rejection are detections; a release and a
                // failed counter update report state.
                kind: match self.action {
                    LimitAction::KeyLockedOut | LimitAction::RateLimited => "alert",
                    LimitAction::KeyReleased | LimitAction::LimitStoreFailed => "event",
                },
                category: [if self.action == LimitAction::LimitStoreFailed {
                    "database"
                } else {
                    "intrusion_detection"
                }],
                action: self.action,
                outcome: if self.success { "success" } else { "failure" },
                severity: match self.action {
                    LimitAction::KeyReleased => 21,
                    LimitAction::RateLimited | LimitAction::LimitStoreFailed => 47,
                    LimitAction::KeyLockedOut => 73,
                },
            },
            source: self.source.as_ref(),
            url: self.request.as_ref().map(|request| UrlObject {
                path: crate::event::redact_excerpt(&request.path),
            }),
            http,
            observer: self
                .observer_name
                .as_deref()
                .map(|name| ObserverObject { name }),
            user: self.user_name.as_deref().map(|name| UserObject { name }),
            portcullis: PortcullisObject {
                policy: &self.policy,
                key_hash: key.as_deref(),
                mode: if self.monitor { "monitor" } else { "block" },
                lockout_seconds: self.lockout_seconds,
                lockout_level: self.lockout_level,
                retry_after_seconds: self.retry_after_seconds,
                in_flight: self.in_flight,
            },
            error: self
                .error_message
                .as_deref()
                .map(|message| ErrorObject { message }),
        };
        // The structs below have string keys and infallible fields, so
        // serialisation cannot fail; the fallback keeps the event visible.
        serde_json::to_string(&document).unwrap_or_else(|error| {
            format!("{{\"error\":{{\"message\":\"event serialization failed: {error}\"}}}}")
        })
    }
}

#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    event: EventObject,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a SourceAddress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<UrlObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<HttpObject<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    observer: Option<ObserverObject<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<UserObject<'a>>,
    portcullis: PortcullisObject<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorObject<'a>>,
}

#[derive(Serialize)]
struct EventObject {
    kind: &'static str,
    category: [&'static str; 1],
    action: LimitAction,
    outcome: &'static str,
    severity: u8,
}

#[derive(Serialize)]
struct PortcullisObject<'a> {
    policy: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_hash: Option<&'a str>,
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    lockout_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lockout_level: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    in_flight: Option<u32>,
}

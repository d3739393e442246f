//! Security events: one single-line JSON object per decision, shaped after the
//! Elastic Common Schema (ECS).
//!
//! ```json
//! {"@timestamp":"2024-05-01T12:00:00.000Z",
//!  "event":{"kind":"alert","category":["intrusion_detection"],
//!           "action":"request-blocked","outcome":"failure","severity":73},
//!  "rule":{"id":"sqli-tautology","name":"..."},
//!  "source":{"ip":"203.0.113.7","port":51234},
//!  "url":{"path":"/search"},
//!  "http":{"request":{"method":"GET"},"response":{"status_code":403}},
//!  "observer":{"name":"portcullis"},
//!  "portcullis":{"target":"query.q","excerpt":"' or 1=1","score":10,
//!                "rules":["sqli-tautology","sqli-libinjection"]}}
//! ```
//!
//! Objects without data are left out. Excerpts come from
//! [`crate::filter::Detection`], which redacts values that may hold
//! credentials, and no event carries a header, cookie or body value otherwise.

use crate::filter::{Assessment, Detection};
use crate::http::{truncate_chars, RequestInfo};
use crate::rules::{RuleInfo, Severity};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

/// The decision an event reports, rendered as `event.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventAction {
    /// A rule matched and the block response was sent.
    RequestBlocked,
    /// A rule matched in monitor mode and the request went on.
    RequestFlagged,
    /// The body passed `max_body_bytes`.
    BodyTooLarge,
    /// The plugin configuration was rejected.
    ConfigRejected,
    /// A request carried a valid token that met the matched rule.
    TokenAccepted,
    /// A request was answered 401 or 403 by token validation.
    TokenRejected,
    /// A remote JWKS was fetched and its keys loaded.
    JwksFetched,
    /// A remote JWKS fetch failed.
    JwksFetchFailed,
}

impl EventAction {
    /// Returns the ECS `event.kind`: `alert` for detections of the request
    /// filter, `event` for the outcome of a check that is not a detection.
    pub const fn ecs_kind(self) -> &'static str {
        match self {
            EventAction::RequestBlocked | EventAction::RequestFlagged => "alert",
            _ => "event",
        }
    }

    /// Returns the ECS `event.category`.
    pub const fn ecs_category(self) -> &'static str {
        match self {
            EventAction::RequestBlocked | EventAction::RequestFlagged => "intrusion_detection",
            EventAction::BodyTooLarge => "web",
            EventAction::TokenAccepted | EventAction::TokenRejected => "authentication",
            EventAction::ConfigRejected
            | EventAction::JwksFetched
            | EventAction::JwksFetchFailed => "configuration",
        }
    }

    /// Returns the name rendered as `event.action`.
    pub const fn name(self) -> &'static str {
        match self {
            EventAction::RequestBlocked => "request-blocked",
            EventAction::RequestFlagged => "request-flagged",
            EventAction::BodyTooLarge => "body-too-large",
            EventAction::ConfigRejected => "config-rejected",
            EventAction::TokenAccepted => "token-accepted",
            EventAction::TokenRejected => "token-rejected",
            EventAction::JwksFetched => "jwks-fetched",
            EventAction::JwksFetchFailed => "jwks-fetch-failed",
        }
    }
}

/// Shortest run of token characters that is logged as `[redacted]` when it
/// is not a word: long opaque runs are session ids, API keys and tokens.
const MIN_OPAQUE_RUN: usize = 24;

/// Removes credentials from a matched excerpt before it is logged, whatever
/// rule produced it: the values of `name=value` pairs whose name suggests a
/// credential (see [`crate::targets::is_sensitive_name`]), JWT-shaped
/// tokens, and long opaque runs of letters and digits that mix in digits.
pub fn redact_excerpt(excerpt: &str) -> String {
    let mut output = String::with_capacity(excerpt.len());
    let mut run = String::new();
    let mut last_name = String::new();
    let mut sensitive_value = false;
    let flush = |run: &mut String, output: &mut String, sensitive: bool| {
        if run.is_empty() {
            return;
        }
        let looks_opaque = run.len() >= MIN_OPAQUE_RUN
            && run.chars().any(|c| c.is_ascii_digit())
            && run.chars().any(|c| c.is_ascii_alphabetic());
        if sensitive || run.starts_with("eyJ") || looks_opaque {
            output.push_str("[redacted]");
        } else {
            output.push_str(run);
        }
        run.clear();
    };
    for c in excerpt.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '%') {
            run.push(c);
            continue;
        }
        let name = run.clone();
        flush(&mut run, &mut output, sensitive_value);
        if c == '=' || c == ':' {
            sensitive_value = crate::targets::is_sensitive_name(name.as_bytes());
            last_name = name;
        } else if !matches!(c, '"' | '\'' | ' ') || last_name.is_empty() {
            sensitive_value = false;
            last_name.clear();
        }
        output.push(c);
    }
    flush(&mut run, &mut output, sensitive_value);
    output
}

/// Longest quoted value that a configuration error keeps; a longer one may be
/// a key or a secret.
const MAX_QUOTED_CHARS: usize = 24;

/// Shortens the quoted values of a configuration error message: a value
/// longer than [`MAX_QUOTED_CHARS`] is replaced by its length, because a
/// secret given with the wrong type (an HMAC key, a password) is quoted back
/// by the JSON parser.
pub fn redact_config_message(message: &str) -> String {
    let mut output = String::with_capacity(message.len());
    let mut parts = message.split('"');
    if let Some(first) = parts.next() {
        output.push_str(first);
    }
    let mut inside = true;
    for part in parts {
        output.push('"');
        if inside && part.chars().count() > MAX_QUOTED_CHARS {
            output.push_str(&format!("<{} characters>", part.chars().count()));
        } else {
            output.push_str(part);
        }
        inside = !inside;
    }
    output
}

/// Renders the event that reports how many events of one kind the log rate
/// limit left out of the log in a window that has ended.
pub fn suppressed_json(
    timestamp: SystemTime,
    kind: &str,
    count: u64,
    observer: Option<&str>,
) -> String {
    let mut document = serde_json::json!({
        "@timestamp": format_rfc3339(timestamp),
        "event": {
            "kind": "event",
            "category": ["intrusion_detection"],
            "action": "events-suppressed",
            "outcome": "success",
            "severity": 21,
        },
        "portcullis": {"suppressed": {"action": kind, "count": count}},
    });
    if let Some(name) = observer {
        document["observer"] = serde_json::json!({"name": truncate_chars(name, 128)});
    }
    document.to_string()
}

/// Whether the request or configuration went through, rendered as
/// `event.outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The request went on or the body passed uninspected.
    Success,
    /// The request was stopped or the configuration rejected.
    Failure,
}

/// The log level at which the adapter writes an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventLevel {
    /// Flagged requests and bodies passed uninspected.
    Info,
    /// Blocked requests and rejected bodies.
    Warn,
    /// Rejected configurations.
    Error,
}

/// A client address from the `source.address` property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceAddress {
    /// IP address, written without brackets for IPv6.
    pub ip: IpAddr,
    /// Port, absent when the property has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl SourceAddress {
    /// Parses an `ip:port`, `[ipv6]:port` or bare IP value. Anything else is
    /// `None`, so arbitrary bytes never reach the log.
    pub fn parse(raw: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(raw).ok()?.trim();
        if let Ok(address) = text.parse::<SocketAddr>() {
            return Some(SourceAddress {
                ip: address.ip(),
                port: Some(address.port()),
            });
        }
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        let ip = bare.parse::<IpAddr>().ok()?;
        Some(SourceAddress { ip, port: None })
    }
}

/// One security event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    /// Host time of the decision.
    pub timestamp: SystemTime,
    /// The decision.
    pub action: EventAction,
    /// Whether the request or configuration went through.
    pub outcome: Outcome,
    /// Log level for the event.
    pub level: EventLevel,
    /// `event.severity`, on the scale of [`Severity::score`].
    pub severity: u8,
    /// The rule that matched, for detections.
    pub rule: Option<RuleInfo>,
    /// Client address.
    pub source: Option<SourceAddress>,
    /// Method and path of the request.
    pub request: Option<RequestInfo>,
    /// Status of the local response that the plugin sent.
    pub status_code: Option<u32>,
    /// Plugin name from the `plugin_name` property.
    pub observer_name: Option<String>,
    /// Subject of the validated token, rendered as `user.name`.
    pub user_name: Option<String>,
    /// Target label of a detection.
    pub target: Option<String>,
    /// Masked excerpt of a detection.
    pub excerpt: Option<String>,
    /// Anomaly score of the request, for detections.
    pub score: Option<u32>,
    /// Ids of every rule that matched, for detections.
    pub rule_ids: Vec<&'static str>,
    /// Buffered body size in bytes, for `body-too-large`.
    pub body_bytes: Option<usize>,
    /// Error message, for `config-rejected`.
    pub error_message: Option<String>,
}

impl SecurityEvent {
    fn new(
        timestamp: SystemTime,
        action: EventAction,
        outcome: Outcome,
        level: EventLevel,
    ) -> Self {
        SecurityEvent {
            timestamp,
            action,
            outcome,
            level,
            severity: Severity::Low.score(),
            rule: None,
            source: None,
            request: None,
            status_code: None,
            observer_name: None,
            user_name: None,
            target: None,
            excerpt: None,
            score: None,
            rule_ids: Vec::new(),
            body_bytes: None,
            error_message: None,
        }
    }

    /// Builds the event for an assessment whose score reached the threshold:
    /// the most severe match as `rule`, the score and every matched rule id.
    /// `block_status` is the status of the block response, or `None` in
    /// monitor mode.
    pub fn assessment(
        timestamp: SystemTime,
        assessment: &Assessment,
        block_status: Option<u32>,
    ) -> Self {
        let mut event = match assessment.primary() {
            Some(detection) => SecurityEvent::detection(timestamp, detection, block_status),
            None => SecurityEvent::new(
                timestamp,
                EventAction::RequestFlagged,
                Outcome::Success,
                EventLevel::Info,
            ),
        };
        event.score = Some(assessment.score);
        event.rule_ids = assessment.rule_ids();
        event
    }

    /// Builds the event for one rule match. `block_status` is the status of
    /// the block response, or `None` in monitor mode.
    pub fn detection(
        timestamp: SystemTime,
        detection: &Detection,
        block_status: Option<u32>,
    ) -> Self {
        let mut event = match block_status {
            Some(_) => SecurityEvent::new(
                timestamp,
                EventAction::RequestBlocked,
                Outcome::Failure,
                EventLevel::Warn,
            ),
            None => SecurityEvent::new(
                timestamp,
                EventAction::RequestFlagged,
                Outcome::Success,
                EventLevel::Info,
            ),
        };
        event.severity = detection.rule.severity.score();
        event.rule = Some(detection.rule);
        event.status_code = block_status;
        event.target = Some(detection.target.clone());
        event.excerpt = Some(redact_excerpt(&detection.excerpt));
        event
    }

    /// Builds the event for a body larger than `max_body_bytes`.
    /// `reject_status` is the status of the reject response, or `None` when
    /// the body passed uninspected.
    pub fn body_too_large(
        timestamp: SystemTime,
        body_bytes: usize,
        reject_status: Option<u32>,
    ) -> Self {
        let mut event = match reject_status {
            Some(_) => SecurityEvent::new(
                timestamp,
                EventAction::BodyTooLarge,
                Outcome::Failure,
                EventLevel::Warn,
            ),
            None => SecurityEvent::new(
                timestamp,
                EventAction::BodyTooLarge,
                Outcome::Success,
                EventLevel::Info,
            ),
        };
        event.status_code = reject_status;
        event.body_bytes = Some(body_bytes);
        event
    }

    /// Builds the event for a rejected plugin configuration, with the
    /// message of the [`crate::error::Error`] or of the failed host call.
    pub fn config_rejected(timestamp: SystemTime, message: &str) -> Self {
        let mut event = SecurityEvent::new(
            timestamp,
            EventAction::ConfigRejected,
            Outcome::Failure,
            EventLevel::Error,
        );
        event.severity = Severity::Medium.score();
        event.error_message = Some(message.to_string());
        event
    }

    /// Builds a token validation event: `target` names the provider
    /// (`jwt.NAME`), `message` the error code and description of a failure.
    pub fn token(
        timestamp: SystemTime,
        action: EventAction,
        target: Option<String>,
        message: Option<String>,
    ) -> Self {
        let failed = message.is_some();
        let mut event = if failed {
            SecurityEvent::new(timestamp, action, Outcome::Failure, EventLevel::Warn)
        } else {
            SecurityEvent::new(timestamp, action, Outcome::Success, EventLevel::Info)
        };
        if failed {
            event.severity = Severity::Medium.score();
        }
        event.target = target;
        event.error_message = message;
        event
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
        let document = Document {
            timestamp: format_rfc3339(self.timestamp),
            event: EventObject {
                kind: self.action.ecs_kind(),
                category: [self.action.ecs_category()],
                action: self.action,
                outcome: self.outcome,
                severity: self.severity,
            },
            rule: self.rule.map(|rule| RuleObject {
                id: rule.id,
                name: rule.name,
            }),
            source: self.source.as_ref(),
            url: self.request.as_ref().map(|request| UrlObject {
                path: redact_excerpt(&request.path),
            }),
            http: self.http_object(),
            observer: self
                .observer_name
                .as_deref()
                .map(|name| ObserverObject { name }),
            user: self.user_name.as_deref().map(|name| UserObject { name }),
            portcullis: self.portcullis_object(),
            error: self
                .error_message
                .as_deref()
                .map(|message| ErrorObject { message }),
        };
        // serde_json fails only on maps with non-string keys and on failing
        // Serialize impls, and these structs have neither. The fallback line
        // keeps the event visible all the same.
        serde_json::to_string(&document).unwrap_or_else(|error| {
            format!("{{\"error\":{{\"message\":\"event serialization failed: {error}\"}}}}")
        })
    }

    fn http_object(&self) -> Option<HttpObject<'_>> {
        HttpObject::from_parts(self.request.as_ref(), self.status_code)
    }

    fn portcullis_object(&self) -> Option<PortcullisObject<'_>> {
        if self.target.is_none() && self.excerpt.is_none() && self.body_bytes.is_none() {
            return None;
        }
        Some(PortcullisObject {
            target: self.target.as_deref(),
            excerpt: self.excerpt.as_deref(),
            score: self.score,
            rules: &self.rule_ids,
            body_bytes: self.body_bytes,
        })
    }
}

#[derive(Serialize)]
pub(crate) struct UserObject<'a> {
    pub(crate) name: &'a str,
}

#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    event: EventObject,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<RuleObject>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    portcullis: Option<PortcullisObject<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorObject<'a>>,
}

#[derive(Serialize)]
struct EventObject {
    kind: &'static str,
    category: [&'static str; 1],
    action: EventAction,
    outcome: Outcome,
    severity: u8,
}

#[derive(Serialize)]
struct RuleObject {
    id: &'static str,
    name: &'static str,
}

#[derive(Serialize)]
pub(crate) struct UrlObject {
    /// The path without the query, with tokens and credential-like segments
    /// masked as in excerpts.
    pub(crate) path: String,
}

impl<'a> HttpObject<'a> {
    /// Builds the `http` object from the request's method and the status of
    /// the local response; `None` when there is neither.
    pub(crate) fn from_parts(
        request: Option<&'a RequestInfo>,
        status_code: Option<u32>,
    ) -> Option<Self> {
        let method = request
            .map(|request| request.method.as_str())
            .filter(|method| !method.is_empty());
        if method.is_none() && status_code.is_none() {
            return None;
        }
        Some(HttpObject {
            request: method.map(|method| HttpRequestObject { method }),
            response: status_code.map(|status_code| HttpResponseObject { status_code }),
        })
    }
}

#[derive(Serialize)]
pub(crate) struct HttpObject<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) request: Option<HttpRequestObject<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) response: Option<HttpResponseObject>,
}

#[derive(Serialize)]
pub(crate) struct HttpRequestObject<'a> {
    pub(crate) method: &'a str,
}

#[derive(Serialize)]
pub(crate) struct HttpResponseObject {
    pub(crate) status_code: u32,
}

#[derive(Serialize)]
pub(crate) struct ObserverObject<'a> {
    pub(crate) name: &'a str,
}

#[derive(Serialize)]
struct PortcullisObject<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    excerpt: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<u32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    rules: &'a [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    body_bytes: Option<usize>,
}

#[derive(Serialize)]
pub(crate) struct ErrorObject<'a> {
    pub(crate) message: &'a str,
}

/// Formats a time as RFC 3339 in UTC with millisecond precision, such as
/// `2024-05-01T12:00:00.000Z`. Times before 1970 render as the epoch.
pub fn format_rfc3339(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let millis = since_epoch.subsec_millis();
    let days = seconds / 86_400;
    let second_of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Converts days since 1970-01-01 into a proleptic Gregorian date, after
/// Howard Hinnant's `civil_from_days` algorithm.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_message_hides_long_quoted_values() {
        assert_eq!(
            redact_config_message(
                r#"jwt.providers.a.local_jwks: invalid type: string "1FTa4vV3uq47CxejFdloTAhy9YqvDq2", expected a map"#
            ),
            r#"jwt.providers.a.local_jwks: invalid type: string "<31 characters>", expected a map"#
        );
        let short = r#"headers.routes[0].prefix: invalid path prefix "account""#;
        assert_eq!(redact_config_message(short), short);
    }

    #[test]
    fn excerpt_redacts_credentials() {
        assert_eq!(
            redact_excerpt("/x%zz?token=abc123&q=1"),
            "/x%zz?token=[redacted]&q=1"
        );
        assert_eq!(
            redact_excerpt("a=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln b"),
            "a=[redacted] b"
        );
        assert_eq!(
            redact_excerpt("sid 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"),
            "sid [redacted]"
        );
        assert_eq!(redact_excerpt("password: hunter2"), "password: [redacted]");
        // Attack text stays readable.
        assert_eq!(redact_excerpt("' or 1=1--"), "' or 1=1--");
        assert_eq!(
            redact_excerpt("<script>alert(document.cookie)</script>"),
            "<script>alert(document.cookie)</script>"
        );
        assert_eq!(redact_excerpt("../../etc/passwd"), "../../etc/passwd");
    }

    #[test]
    fn action_names_match_rendered_names() {
        for action in [
            EventAction::RequestBlocked,
            EventAction::RequestFlagged,
            EventAction::BodyTooLarge,
            EventAction::ConfigRejected,
            EventAction::TokenAccepted,
            EventAction::TokenRejected,
            EventAction::JwksFetched,
            EventAction::JwksFetchFailed,
        ] {
            assert_eq!(
                serde_json::to_value(action).ok(),
                Some(serde_json::Value::from(action.name()))
            );
        }
        for action in [
            crate::limits::event::LimitAction::KeyLockedOut,
            crate::limits::event::LimitAction::KeyReleased,
            crate::limits::event::LimitAction::RateLimited,
            crate::limits::event::LimitAction::LimitStoreFailed,
        ] {
            assert_eq!(
                serde_json::to_value(action).ok(),
                Some(serde_json::Value::from(action.name()))
            );
        }
    }

    #[test]
    fn suppressed_event_names_kind_and_count() {
        let line = suppressed_json(UNIX_EPOCH, "request-blocked", 42, Some("edge"));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(value["event"]["action"], "events-suppressed");
        assert_eq!(
            value["portcullis"]["suppressed"]["action"],
            "request-blocked"
        );
        assert_eq!(value["portcullis"]["suppressed"]["count"], 42);
        assert_eq!(value["observer"]["name"], "edge");
        assert_eq!(value["@timestamp"], "1970-01-01T00:00:00.000Z");
    }
    use crate::error::Error;
    use crate::rules::Severity;
    use std::time::Duration;

    fn at(seconds: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(seconds * 1000 + millis)
    }

    fn parse(line: &str) -> serde_json::Value {
        match serde_json::from_str(line) {
            Ok(value) => value,
            Err(error) => panic!("{error}: {line}"),
        }
    }

    fn detection() -> Detection {
        Detection {
            rule: RuleInfo {
                id: "sqli-tautology",
                name: "SQL injection with a tautology or a comment after a quote",
                severity: Severity::High,
            },
            target: "query.q".to_string(),
            excerpt: "' or 1=1".to_string(),
        }
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339(at(951_782_400, 5)),
            "2000-02-29T00:00:00.005Z"
        );
        assert_eq!(
            format_rfc3339(at(1_714_564_800, 123)),
            "2024-05-01T12:00:00.123Z"
        );
        assert_eq!(
            format_rfc3339(at(4_102_444_799, 999)),
            "2099-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn rfc3339_before_epoch() {
        let before = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(format_rfc3339(before), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn source_address_forms() {
        assert_eq!(
            SourceAddress::parse(b"203.0.113.7:51234"),
            Some(SourceAddress {
                ip: IpAddr::from([203, 0, 113, 7]),
                port: Some(51234)
            })
        );
        assert_eq!(
            SourceAddress::parse(b"[2001:db8::1]:443"),
            Some(SourceAddress {
                ip: IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]),
                port: Some(443)
            })
        );
        assert_eq!(
            SourceAddress::parse(b"198.51.100.2"),
            Some(SourceAddress {
                ip: IpAddr::from([198, 51, 100, 2]),
                port: None
            })
        );
        assert_eq!(SourceAddress::parse(b"not an address"), None);
        assert_eq!(SourceAddress::parse(b"\xff"), None);
        assert_eq!(SourceAddress::parse(b""), None);
    }

    #[test]
    fn blocked_event_shape() {
        let request = RequestInfo {
            method: "GET".to_string(),
            path: "/search".to_string(),
        };
        let event = SecurityEvent::detection(at(1_714_564_800, 0), &detection(), Some(403))
            .with_request(&request)
            .with_source(SourceAddress::parse(b"203.0.113.7:51234"))
            .with_observer(Some("portcullis"));
        assert_eq!(event.level, EventLevel::Warn);
        let line = event.to_json();
        assert!(!line.contains('\n'));
        let expected = serde_json::json!({
            "@timestamp": "2024-05-01T12:00:00.000Z",
            "event": {
                "kind": "alert",
                "category": ["intrusion_detection"],
                "action": "request-blocked",
                "outcome": "failure",
                "severity": 73
            },
            "rule": {
                "id": "sqli-tautology",
                "name": "SQL injection with a tautology or a comment after a quote"
            },
            "source": {"ip": "203.0.113.7", "port": 51234},
            "url": {"path": "/search"},
            "http": {"request": {"method": "GET"}, "response": {"status_code": 403}},
            "observer": {"name": "portcullis"},
            "portcullis": {"target": "query.q", "excerpt": "' or 1=1"}
        });
        assert_eq!(parse(&line), expected);
        assert!(line.starts_with("{\"@timestamp\":"));
    }

    #[test]
    fn flagged_event_has_no_response() {
        let event = SecurityEvent::detection(UNIX_EPOCH, &detection(), None);
        assert_eq!(event.level, EventLevel::Info);
        let value = parse(&event.to_json());
        assert_eq!(value["event"]["action"], "request-flagged");
        assert_eq!(value["event"]["outcome"], "success");
        assert!(value.get("http").is_none());
        assert!(value.get("source").is_none());
    }

    #[test]
    fn body_too_large_events() {
        let rejected = SecurityEvent::body_too_large(UNIX_EPOCH, 70_000, Some(413));
        assert_eq!(rejected.level, EventLevel::Warn);
        let value = parse(&rejected.to_json());
        assert_eq!(value["event"]["action"], "body-too-large");
        assert_eq!(value["event"]["outcome"], "failure");
        assert_eq!(value["http"]["response"]["status_code"], 413);
        assert_eq!(value["portcullis"]["body_bytes"], 70_000);
        assert!(value.get("rule").is_none());

        let passed = SecurityEvent::body_too_large(UNIX_EPOCH, 70_000, None);
        assert_eq!(passed.level, EventLevel::Info);
        let value = parse(&passed.to_json());
        assert_eq!(value["event"]["outcome"], "success");
        assert!(value.get("http").is_none());
    }

    #[test]
    fn config_rejected_event() {
        let error = Error::invalid(
            "filter.block_status",
            "must be between 400 and 599, got 200",
        );
        let event = SecurityEvent::config_rejected(UNIX_EPOCH, &error.to_string());
        assert_eq!(event.level, EventLevel::Error);
        let value = parse(&event.to_json());
        assert_eq!(value["event"]["action"], "config-rejected");
        assert_eq!(
            value["error"]["message"],
            "filter.block_status: must be between 400 and 599, got 200"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut found = detection();
        found.excerpt = "a\"b\\c".to_string();
        let line = SecurityEvent::detection(UNIX_EPOCH, &found, None).to_json();
        assert!(!line.contains('\n'));
        assert_eq!(parse(&line)["portcullis"]["excerpt"], "a\"b\\c");
    }
}

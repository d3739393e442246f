//! Steps of the per-request pipeline that every adapter takes the same way:
//! the verdict of an assessment, the headers of a local response and the
//! events of a token decision, the `source` of an event and the limits
//! salt. The proxy-wasm module and the component both
//! call these, so that the two cannot drift apart.

use crate::config::Config;
use crate::event::{EventAction, EventLevel, SecurityEvent, SourceAddress};
use crate::filter::{Assessment, Detection, Verdict};
use crate::headers::Exchange;
use crate::jwt::check::Accepted;
use crate::jwt::error::JwtError;
use crate::jwt::response::Rejection;
use crate::limits::store::SharedStore;
use serde_json::Value;
use std::net::IpAddr;
use std::time::SystemTime;

/// A verdict that an adapter must act on, with the detections it reports.
pub struct NewVerdict<'a> {
    /// Block or flag.
    pub verdict: Verdict,
    /// Detections that no earlier event reported, for per-rule counters.
    pub new_detections: &'a [Detection],
}

/// Returns the verdict of the assessment so far when its score reached the
/// threshold and it has detections that no earlier phase reported, and marks
/// them reported. In monitor mode a later phase is thus flagged again only
/// when it found new matches.
pub fn take_verdict<'a>(config: &Config, assessment: &'a mut Assessment) -> Option<NewVerdict<'a>> {
    let verdict = config.filter.verdict(assessment)?;
    let first_new = assessment.reported;
    if first_new == assessment.detections.len() {
        return None;
    }
    assessment.reported = assessment.detections.len();
    Some(NewVerdict {
        verdict,
        new_detections: assessment.detections.get(first_new..).unwrap_or_default(),
    })
}

/// Returns the headers of a local response: `headers` followed by the
/// route's security headers and the CORS headers of `exchange` that
/// `headers` does not set. A local response passes through no response
/// hardening, in Envoy as in the component, so it gets them here.
pub fn local_response_headers(
    config: &Config,
    exchange: &Exchange,
    headers: &[(&str, &str)],
) -> Vec<(String, String)> {
    let extra = config.headers.local_reply_headers(exchange, headers);
    let mut all: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    all.extend(extra);
    all
}

/// Tells whether a request's tokens earn a token-accepted event: a rule with
/// a requirement checked them and a provider accepted one.
pub fn reports_acceptance(accepted: &[Accepted], checked: bool) -> bool {
    checked && !accepted.is_empty()
}

/// Level of the token-accepted event, known before the event is built.
pub const TOKEN_ACCEPTED_LEVEL: EventLevel = EventLevel::Info;

/// Builds the token-accepted event (see [`reports_acceptance`]). The event
/// names every accepting provider and the first token's `sub` as the user.
pub fn token_accepted_event(timestamp: SystemTime, accepted: &[Accepted]) -> SecurityEvent {
    let providers: Vec<&str> = accepted.iter().map(|item| item.provider.as_str()).collect();
    let subject = accepted
        .first()
        .and_then(|token| token.claims.get("sub"))
        .and_then(Value::as_str);
    let target = Some(format!("jwt.{}", providers.join(",")));
    let event = SecurityEvent::token(timestamp, EventAction::TokenAccepted, target, None);
    debug_assert_eq!(event.level, TOKEN_ACCEPTED_LEVEL);
    event.with_user(subject)
}

/// Builds the event for a rejected token, with the error code and
/// description and the status of the rejection.
pub fn token_rejected_event(timestamp: SystemTime, rejection: &Rejection) -> SecurityEvent {
    let target = rejection
        .provider
        .as_ref()
        .map(|name| format!("jwt.{name}"));
    let message = format!(
        "{}: {}",
        rejection.error.code(),
        rejection.error.description()
    );
    let mut event =
        SecurityEvent::token(timestamp, EventAction::TokenRejected, target, Some(message));
    event.status_code = Some(rejection.status);
    event
}

/// The kind of a token rejection, for the adapters' counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    /// No token where a rule requires one.
    Missing,
    /// A valid token whose claims fail a requirement (403).
    Forbidden,
    /// Any other invalid token.
    Invalid,
}

/// Classifies a rejection for counting.
pub fn rejection_kind(rejection: &Rejection) -> RejectionKind {
    match rejection.error {
        JwtError::Missing => RejectionKind::Missing,
        JwtError::ClaimMismatch => RejectionKind::Forbidden,
        _ => RejectionKind::Invalid,
    }
}

/// Returns the client address that events report as `source`: the client
/// that the header policy found (the trusted `X-Forwarded-For` hop) when it
/// differs from the connection's peer, else the peer with its port.
pub fn event_source(client: Option<IpAddr>, peer: Option<SourceAddress>) -> Option<SourceAddress> {
    match client {
        Some(ip) if peer.as_ref().is_none_or(|peer| peer.ip != ip) => {
            Some(SourceAddress { ip, port: None })
        }
        _ => peer,
    }
}

/// Shared-data key of the salt mixed into every limits key hash.
pub const SALT_KEY: &str = "portcullis.limits.salt";

/// Length of a salt this crate's adapters create.
pub const SALT_BYTES: usize = 32;

/// Shortest salt accepted from the store.
const MIN_SALT_BYTES: usize = 16;

/// Reads the limits salt that every worker shares, creating it from
/// `fresh_salt` when it is missing, or `None` when the store keeps failing.
/// The salt keeps key hashes, and so bucket positions, unpredictable to
/// clients, who could otherwise choose keys that crowd one bucket.
pub fn load_salt<S: SharedStore + ?Sized>(
    store: &S,
    mut fresh_salt: impl FnMut() -> Vec<u8>,
) -> Option<Vec<u8>> {
    for _ in 0..4 {
        if let Ok(Some((salt, _))) = store.get(SALT_KEY) {
            if salt.len() >= MIN_SALT_BYTES {
                return Some(salt);
            }
        }
        // Whether this write or another worker's won, the next read returns
        // the salt that every worker then uses. A store with Envoy's
        // semantics writes a missing key whatever the CAS is and rejects a
        // CAS of u32::MAX on an existing key until its store-wide counter
        // reaches that value, after about four billion writes.
        let _ = store.set(SALT_KEY, &fresh_salt(), u32::MAX);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::store::MemoryStore;

    fn config(json: &str) -> Config {
        match Config::from_json(json.as_bytes()) {
            Ok(config) => config,
            Err(error) => panic!("configuration rejected: {error}"),
        }
    }

    fn attack_headers() -> Vec<(String, Vec<u8>)> {
        vec![
            (":method".to_string(), b"GET".to_vec()),
            (":path".to_string(), b"/search?q=1%27%20OR%201=1--".to_vec()),
            (":authority".to_string(), b"example.com".to_vec()),
        ]
    }

    #[test]
    fn verdict_reported_once() {
        let config = config("{}");
        let mut assessment = config.filter.inspect_headers(&attack_headers());
        let first = take_verdict(&config, &mut assessment).map(|new| new.new_detections.len());
        assert!(first.is_some_and(|count| count > 0), "first: {first:?}");
        assert!(take_verdict(&config, &mut assessment).is_none());
    }

    #[test]
    fn verdict_none_below_threshold() {
        let config = config("{}");
        let mut headers = attack_headers();
        headers[1].1 = b"/hello".to_vec();
        let mut assessment = config.filter.inspect_headers(&headers);
        assert!(take_verdict(&config, &mut assessment).is_none());
    }

    #[test]
    fn local_response_keeps_own_headers() {
        let config = config("{}");
        let exchange = Exchange::default();
        let headers = local_response_headers(
            &config,
            &exchange,
            &[
                ("content-type", "application/json"),
                ("x-frame-options", "SAMEORIGIN"),
            ],
        );
        assert_eq!(
            headers[0],
            ("content-type".to_string(), "application/json".to_string())
        );
        let frame: Vec<&(String, String)> = headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("x-frame-options"))
            .collect();
        assert_eq!(frame.len(), 1, "{headers:?}");
        assert!(headers
            .iter()
            .any(|(name, value)| name == "x-content-type-options" && value == "nosniff"));
    }

    #[test]
    fn event_source_prefers_forwarded_client() {
        let peer = SourceAddress {
            ip: IpAddr::from([10, 0, 0, 1]),
            port: Some(4000),
        };
        let forwarded: Option<IpAddr> = "203.0.113.7".parse().ok();
        let source = event_source(forwarded, Some(peer.clone()));
        assert_eq!(source.as_ref().map(|s| s.ip), forwarded);
        assert_eq!(source.and_then(|s| s.port), None);

        let same: Option<IpAddr> = "10.0.0.1".parse().ok();
        assert_eq!(event_source(same, Some(peer.clone())), Some(peer.clone()));
        assert_eq!(event_source(None, Some(peer.clone())), Some(peer));
    }

    #[test]
    fn salt_created_then_shared() {
        let store = MemoryStore::default();
        let first = load_salt(&store, || vec![7; SALT_BYTES]);
        assert_eq!(first, Some(vec![7; SALT_BYTES]));
        let second = load_salt(&store, || vec![9; SALT_BYTES]);
        assert_eq!(second, first);
    }

    #[test]
    fn short_salt_not_used() {
        let store = MemoryStore::default();
        let _ = store.set(SALT_KEY, b"short", 0);
        // A stored salt below the minimum is overwritten only through CAS
        // u32::MAX, which this store rejects for an existing key, so loading
        // gives up instead of using it.
        assert_eq!(load_salt(&store, || vec![1; SALT_BYTES]), None);
    }
}

//! Claim checks: time window, issuer, audiences, and the claim requirements
//! of a rule.
//!
//! Every registered claim is checked here: `exp`, `nbf` and `iat` against
//! the host clock with the clock skew, the token's lifetime, the issuer and
//! the audiences.

use super::config::ClaimRequirementSection;
use super::error::JwtError;
use super::policy::Provider;
use super::token::RegisteredClaims;
use crate::error::Error;
use serde_json::{Map, Value};

/// Checks `exp`, `nbf`, `iat` and the lifetime against `now` (seconds since
/// the epoch) with the provider's clock skew.
pub fn check_time(
    provider: &Provider,
    claims: &RegisteredClaims,
    now: u64,
) -> Result<(), JwtError> {
    let skew = provider.clock_skew_seconds;
    match claims.exp {
        Some(exp) if exp.saturating_add(skew) <= now => return Err(JwtError::Expired),
        Some(_) => {}
        None if provider.require_expiration || provider.max_lifetime_seconds.is_some() => {
            return Err(JwtError::ExpMissing)
        }
        None => {}
    }
    if let Some(nbf) = claims.nbf {
        if nbf > now.saturating_add(skew) {
            return Err(JwtError::NotYetValid);
        }
    }
    if let Some(iat) = claims.iat {
        if iat > now.saturating_add(skew) {
            return Err(JwtError::IssuedInFuture);
        }
    }
    if let (Some(max), Some(exp)) = (provider.max_lifetime_seconds, claims.exp) {
        // The lifetime starts at `iat`, else at `nbf`, else now.
        let start = claims.iat.or(claims.nbf).unwrap_or(now);
        if exp.saturating_sub(start) > max {
            return Err(JwtError::LifetimeTooLong);
        }
    }
    Ok(())
}

/// Checks `iss` and `aud`. `audiences` replaces the provider's list when not
/// empty.
pub fn check_issuer_and_audience(
    provider: &Provider,
    audiences: &[String],
    claims: &RegisteredClaims,
) -> Result<(), JwtError> {
    if let Some(issuer) = &provider.issuer {
        if claims.iss.as_deref() != Some(issuer.as_str()) {
            return Err(JwtError::UnknownIssuer);
        }
    }
    let allowed = if audiences.is_empty() {
        &provider.audiences
    } else {
        audiences
    };
    if !allowed.is_empty()
        && !claims
            .aud
            .iter()
            .any(|aud| allowed.iter().any(|ok| audience_eq(ok, aud)))
    {
        return Err(JwtError::AudienceNotAllowed);
    }
    Ok(())
}

/// Compares audiences as Envoy does: `https://`, `http://` and a trailing `/`
/// are ignored.
fn audience_eq(configured: &str, token: &str) -> bool {
    fn normalize(value: &str) -> &str {
        let value = value
            .strip_prefix("https://")
            .or_else(|| value.strip_prefix("http://"))
            .unwrap_or(value);
        value.strip_suffix('/').unwrap_or(value)
    }
    normalize(configured) == normalize(token)
}

/// Looks up a claim by a dotted path into nested objects.
pub fn lookup<'a>(claims: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = claims.get(first)?;
    for segment in rest {
        value = value.as_object()?.get(segment)?;
    }
    Some(value)
}

/// A compiled claim requirement of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequirement {
    /// Claim name or dotted path, split at dots.
    pub path: Vec<String>,
    /// The comparison.
    pub test: ClaimTest,
}

/// How a claim is compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimTest {
    /// Equal JSON values.
    Equals(Value),
    /// A list claim contains the string, or a string claim has it as one of
    /// its space-separated words (OAuth `scope`).
    Contains(String),
    /// A string claim is one of these, or a list claim has one of them.
    OneOf(Vec<String>),
}

impl ClaimRequirement {
    /// Compiles a requirement from its section.
    pub(crate) fn compile(path: &str, section: &ClaimRequirementSection) -> Result<Self, Error> {
        let claim_path: Vec<String> = section.name.split('.').map(str::to_string).collect();
        if claim_path.iter().any(String::is_empty) {
            return Err(Error::invalid(
                format!("{path}.name"),
                "must be a claim name or a dotted path",
            ));
        }
        let mut tests = Vec::new();
        if let Some(value) = &section.equals {
            tests.push(ClaimTest::Equals(value.clone()));
        }
        if let Some(word) = &section.contains {
            tests.push(ClaimTest::Contains(word.clone()));
        }
        if let Some(list) = &section.one_of {
            if list.is_empty() {
                return Err(Error::invalid(
                    format!("{path}.one_of"),
                    "must not be empty",
                ));
            }
            tests.push(ClaimTest::OneOf(list.clone()));
        }
        if tests.len() != 1 {
            return Err(Error::invalid(
                path,
                "set exactly one of equals, contains and one_of",
            ));
        }
        Ok(ClaimRequirement {
            path: claim_path,
            test: tests.remove(0),
        })
    }

    /// Tells whether the claims meet this requirement; a missing claim never
    /// does.
    pub fn holds(&self, claims: &Map<String, Value>) -> bool {
        let Some(value) = lookup(claims, &self.path) else {
            return false;
        };
        match &self.test {
            ClaimTest::Equals(expected) => json_equal(value, expected),
            ClaimTest::Contains(word) => match value {
                Value::Array(items) => items.iter().any(|item| item.as_str() == Some(word)),
                Value::String(text) => text.split(' ').any(|part| part == word),
                _ => false,
            },
            ClaimTest::OneOf(list) => match value {
                Value::String(text) => list.iter().any(|item| item == text),
                Value::Array(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|item| list.iter().any(|allowed| allowed == item)),
                _ => false,
            },
        }
    }
}

/// Compares JSON values with numbers by value, so that a claim `5.0`
/// equals a configured `5`. Other values compare as `Value` does.
fn json_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => {
            match (left.as_i64(), right.as_i64(), left.as_u64(), right.as_u64()) {
                (Some(left), Some(right), _, _) => left == right,
                (_, _, Some(left), Some(right)) => left == right,
                _ => left.as_f64() == right.as_f64(),
            }
        }
        (Value::Array(left), Value::Array(right)) => {
            left.len() == right.len() && left.iter().zip(right).all(|(l, r)| json_equal(l, r))
        }
        (Value::Object(left), Value::Object(right)) => {
            left.len() == right.len()
                && left.iter().all(|(key, value)| {
                    right.get(key).is_some_and(|other| json_equal(value, other))
                })
        }
        _ => left == right,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::keys::KeySet;
    use crate::jwt::policy::KeySource;

    fn provider() -> Provider {
        Provider {
            name: "p".to_string(),
            issuer: Some("https://issuer".to_string()),
            audiences: vec!["api".to_string()],
            require_expiration: true,
            max_lifetime_seconds: None,
            clock_skew_seconds: 60,
            sources: Vec::new(),
            forward: false,
            forward_payload_header: None,
            pad_forward_payload_header: false,
            claim_to_headers: Vec::new(),
            max_cached_token_bytes: 4096,
            keys: KeySource::Local(KeySet::default()),
        }
    }

    fn claims(exp: Option<u64>, nbf: Option<u64>, iat: Option<u64>) -> RegisteredClaims {
        RegisteredClaims {
            iss: Some("https://issuer".to_string()),
            aud: vec!["api".to_string()],
            exp,
            nbf,
            iat,
            ..RegisteredClaims::default()
        }
    }

    #[test]
    fn expiry_with_skew() {
        let provider = provider();
        assert!(check_time(&provider, &claims(Some(1000), None, None), 1059).is_ok());
        assert_eq!(
            check_time(&provider, &claims(Some(1000), None, None), 1060),
            Err(JwtError::Expired)
        );
        assert_eq!(
            check_time(&provider, &claims(None, None, None), 0),
            Err(JwtError::ExpMissing)
        );
    }

    #[test]
    fn not_before_and_issued_at() {
        let provider = provider();
        assert_eq!(
            check_time(&provider, &claims(Some(5000), Some(1100), None), 1000),
            Err(JwtError::NotYetValid)
        );
        assert!(check_time(&provider, &claims(Some(5000), Some(1060), None), 1000).is_ok());
        assert_eq!(
            check_time(&provider, &claims(Some(5000), None, Some(1100)), 1000),
            Err(JwtError::IssuedInFuture)
        );
    }

    #[test]
    fn max_lifetime_enforced() {
        let mut provider = provider();
        provider.max_lifetime_seconds = Some(3600);
        assert!(check_time(&provider, &claims(Some(4600), None, Some(1000)), 1000).is_ok());
        assert_eq!(
            check_time(&provider, &claims(Some(4601), None, Some(1000)), 1000),
            Err(JwtError::LifetimeTooLong)
        );
        assert_eq!(
            check_time(&provider, &claims(Some(999_999), None, None), 1000),
            Err(JwtError::LifetimeTooLong)
        );
    }

    #[test]
    fn issuer_and_audience() {
        let provider = provider();
        assert!(check_issuer_and_audience(&provider, &[], &claims(None, None, None)).is_ok());
        let mut other = claims(None, None, None);
        other.aud = vec!["https://api/".to_string()];
        assert!(check_issuer_and_audience(&provider, &[], &other).is_ok());
        other.aud = vec!["web".to_string()];
        assert_eq!(
            check_issuer_and_audience(&provider, &[], &other),
            Err(JwtError::AudienceNotAllowed)
        );
        assert!(check_issuer_and_audience(&provider, &["web".to_string()], &other).is_ok());
        other.iss = Some("https://evil".to_string());
        assert_eq!(
            check_issuer_and_audience(&provider, &["web".to_string()], &other),
            Err(JwtError::UnknownIssuer)
        );
    }

    #[test]
    fn claim_requirements() {
        let claims: Map<String, Value> = serde_json::from_str(
            r#"{"role":"admin","scope":"read write","groups":["a","b"],"org":{"tier":"gold"}}"#,
        )
        .unwrap();
        let compile = |json: &str| {
            let section: ClaimRequirementSection = serde_json::from_str(json).unwrap();
            ClaimRequirement::compile("c", &section).unwrap()
        };
        assert!(compile(r#"{"name":"role","equals":"admin"}"#).holds(&claims));
        assert!(!compile(r#"{"name":"role","equals":"user"}"#).holds(&claims));
        assert!(compile(r#"{"name":"scope","contains":"write"}"#).holds(&claims));
        assert!(!compile(r#"{"name":"scope","contains":"wri"}"#).holds(&claims));
        assert!(compile(r#"{"name":"groups","contains":"b"}"#).holds(&claims));
        assert!(compile(r#"{"name":"org.tier","one_of":["gold","silver"]}"#).holds(&claims));
        assert!(!compile(r#"{"name":"missing","equals":"x"}"#).holds(&claims));
    }

    #[test]
    fn equal_numbers_match_by_value() {
        let claims: Map<String, Value> =
            serde_json::from_str(r#"{"level":5.0,"big":18446744073709551615,"ids":[1,2.0]}"#)
                .unwrap();
        let compile = |json: &str| {
            let section: ClaimRequirementSection = serde_json::from_str(json).unwrap();
            ClaimRequirement::compile("c", &section).unwrap()
        };
        assert!(compile(r#"{"name":"level","equals":5}"#).holds(&claims));
        assert!(!compile(r#"{"name":"level","equals":6}"#).holds(&claims));
        assert!(!compile(r#"{"name":"level","equals":"5"}"#).holds(&claims));
        assert!(compile(r#"{"name":"big","equals":18446744073709551615}"#).holds(&claims));
        assert!(compile(r#"{"name":"ids","equals":[1.0,2]}"#).holds(&claims));
    }
}

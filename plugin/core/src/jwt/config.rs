//! The `jwt` section of the plugin configuration: the JSON form of Envoy's
//! `envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication` message,
//! with Envoy's field names.
//!
//! Envoy fields that this module does not implement are named and rejected
//! (never ignored). Portcullis adds three fields: `realm` (the
//! `WWW-Authenticate` realm), `claims` on a rule (claim requirements) and
//! `jwt_cache_config.jwt_max_token_size` applies as in Envoy.

use crate::config::Object;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `JwtAuthentication`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct JwtSection {
    /// Providers by name.
    pub(crate) providers: BTreeMap<String, Object<ProviderSection>>,
    /// Rules, first match wins. Without rules no request is checked.
    pub(crate) rules: Vec<Object<RuleSection>>,
    /// Lets CORS preflight requests (`OPTIONS` with `origin` and
    /// `access-control-request-method`) through unchecked. Default false.
    pub(crate) bypass_cors_preflight: bool,
    /// Realm in `WWW-Authenticate` (Portcullis); default `portcullis`.
    pub(crate) realm: Option<String>,
    pub(crate) requirement_map: Option<IgnoredAny>,
    pub(crate) filter_state_rules: Option<IgnoredAny>,
    pub(crate) stat_prefix: Option<IgnoredAny>,
    pub(crate) strip_failure_response: Option<IgnoredAny>,
}

/// `JwtProvider`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ProviderSection {
    /// Required `iss`; empty means any issuer.
    pub(crate) issuer: String,
    /// Allowed audiences; empty means `aud` is not checked.
    pub(crate) audiences: Vec<String>,
    /// Whether `exp` is required. Portcullis defaults to true (Envoy to false).
    pub(crate) require_expiration: Option<bool>,
    /// Maximum lifetime, a protobuf JSON duration such as `"3600s"`.
    pub(crate) max_lifetime: Option<String>,
    /// Remote JWKS.
    pub(crate) remote_jwks: Option<Object<RemoteJwksSection>>,
    /// Local JWKS or PEM.
    pub(crate) local_jwks: Option<Object<DataSourceSection>>,
    /// Whether the token goes on to the upstream. Default false: removed.
    pub(crate) forward: bool,
    /// Headers the token is read from.
    pub(crate) from_headers: Vec<Object<JwtHeaderSection>>,
    /// Query parameters the token is read from.
    pub(crate) from_params: Vec<String>,
    /// Cookies the token is read from.
    pub(crate) from_cookies: Vec<String>,
    /// Header that receives the base64url payload of a verified token.
    pub(crate) forward_payload_header: Option<String>,
    /// Pads the forwarded payload with `=`. Default false.
    pub(crate) pad_forward_payload_header: bool,
    /// Copies claims into request headers.
    pub(crate) claim_to_headers: Vec<Object<ClaimToHeaderSection>>,
    /// Tolerated clock skew for `exp`, `nbf` and `iat`, default 60.
    pub(crate) clock_skew_seconds: Option<u64>,
    /// Token cache settings.
    pub(crate) jwt_cache_config: Option<Object<JwtCacheSection>>,
    pub(crate) subjects: Option<IgnoredAny>,
    pub(crate) payload_in_metadata: Option<IgnoredAny>,
    pub(crate) header_in_metadata: Option<IgnoredAny>,
    pub(crate) failed_status_in_metadata: Option<IgnoredAny>,
    pub(crate) normalize_payload_in_metadata: Option<IgnoredAny>,
    pub(crate) clear_route_cache: Option<IgnoredAny>,
}

/// `JwtCacheConfig`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct JwtCacheSection {
    /// Entries of the per-VM verified-token cache, default 100 as in Envoy.
    pub(crate) jwt_cache_size: Option<u32>,
    /// Longest token read, in bytes; default 8192.
    pub(crate) jwt_max_token_size: Option<u32>,
}

/// `config.core.v3.DataSource`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DataSourceSection {
    pub(crate) inline_string: Option<String>,
    /// Base64 (standard alphabet), as protobuf JSON writes bytes.
    pub(crate) inline_bytes: Option<String>,
    pub(crate) filename: Option<IgnoredAny>,
    pub(crate) environment_variable: Option<IgnoredAny>,
}

/// `RemoteJwks`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RemoteJwksSection {
    pub(crate) http_uri: Option<Object<HttpUriSection>>,
    /// Default `"300s"`.
    pub(crate) cache_duration: Option<String>,
    pub(crate) async_fetch: Option<Object<AsyncFetchSection>>,
    pub(crate) retry_policy: Option<Object<RetryPolicySection>>,
}

/// `config.core.v3.HttpUri`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HttpUriSection {
    pub(crate) uri: String,
    pub(crate) cluster: String,
    /// Default `"1s"`.
    pub(crate) timeout: Option<String>,
}

/// `JwksAsyncFetch`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AsyncFetchSection {
    /// When true, requests that arrive before the first keys fail at once
    /// with 401; when false (default) they wait for the keys.
    pub(crate) fast_listener: bool,
    /// Delay before fetching again after a failure, default `"1s"`.
    pub(crate) failed_refetch_duration: Option<String>,
}

/// `config.core.v3.RetryPolicy`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RetryPolicySection {
    pub(crate) retry_back_off: Option<Object<BackoffSection>>,
    pub(crate) num_retries: Option<u32>,
    pub(crate) retry_on: Option<IgnoredAny>,
    pub(crate) retry_host_predicate: Option<IgnoredAny>,
    pub(crate) host_selection_retry_max_attempts: Option<IgnoredAny>,
}

/// `config.core.v3.BackoffStrategy`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct BackoffSection {
    pub(crate) base_interval: Option<String>,
    pub(crate) max_interval: Option<String>,
}

/// `JwtHeader`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct JwtHeaderSection {
    pub(crate) name: String,
    pub(crate) value_prefix: String,
}

/// `JwtClaimToHeader`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ClaimToHeaderSection {
    pub(crate) header_name: String,
    /// A claim name, or a dotted path into nested objects.
    pub(crate) claim_name: String,
}

/// `RequirementRule`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RuleSection {
    #[serde(rename = "match")]
    pub(crate) route: Option<Object<RouteMatchSection>>,
    pub(crate) requires: Option<Object<RequirementSection>>,
    /// Claim requirements (Portcullis): every one must hold for a verified
    /// token, or the request gets 403.
    pub(crate) claims: Vec<Object<ClaimRequirementSection>>,
    pub(crate) requirement_name: Option<IgnoredAny>,
}

/// `config.route.v3.RouteMatch`, path and header parts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RouteMatchSection {
    pub(crate) prefix: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) safe_regex: Option<Object<RegexSection>>,
    pub(crate) path_separated_prefix: Option<String>,
    /// Default true.
    pub(crate) case_sensitive: Option<bool>,
    pub(crate) headers: Vec<Object<HeaderMatcherSection>>,
    pub(crate) query_parameters: Option<IgnoredAny>,
    pub(crate) grpc: Option<IgnoredAny>,
    pub(crate) connect_matcher: Option<IgnoredAny>,
    pub(crate) path_match_policy: Option<IgnoredAny>,
    pub(crate) runtime_fraction: Option<IgnoredAny>,
    pub(crate) tls_context: Option<IgnoredAny>,
    pub(crate) dynamic_metadata: Option<IgnoredAny>,
}

/// `type.matcher.v3.RegexMatcher`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RegexSection {
    pub(crate) regex: String,
    pub(crate) google_re2: Option<IgnoredAny>,
}

/// `config.route.v3.HeaderMatcher`; `:method` matches the method.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HeaderMatcherSection {
    pub(crate) name: String,
    pub(crate) exact_match: Option<String>,
    pub(crate) prefix_match: Option<String>,
    pub(crate) suffix_match: Option<String>,
    pub(crate) contains_match: Option<String>,
    pub(crate) present_match: Option<bool>,
    pub(crate) string_match: Option<Object<StringMatchSection>>,
    pub(crate) invert_match: bool,
    pub(crate) safe_regex_match: Option<IgnoredAny>,
    pub(crate) range_match: Option<IgnoredAny>,
    pub(crate) treat_missing_header_as_empty: Option<IgnoredAny>,
}

/// `type.matcher.v3.StringMatcher`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StringMatchSection {
    pub(crate) exact: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) suffix: Option<String>,
    pub(crate) contains: Option<String>,
    pub(crate) ignore_case: bool,
    pub(crate) safe_regex: Option<IgnoredAny>,
}

/// `JwtRequirement`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RequirementSection {
    pub(crate) provider_name: Option<String>,
    pub(crate) provider_and_audiences: Option<Object<ProviderAndAudiencesSection>>,
    pub(crate) requires_any: Option<Object<RequirementListSection>>,
    pub(crate) requires_all: Option<Object<RequirementListSection>>,
    pub(crate) allow_missing_or_failed: Option<Object<Empty>>,
    pub(crate) allow_missing: Option<Object<Empty>>,
}

/// `ProviderWithAudiences`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ProviderAndAudiencesSection {
    pub(crate) provider_name: String,
    pub(crate) audiences: Vec<String>,
}

/// `JwtRequirementOrList` and `JwtRequirementAndList`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RequirementListSection {
    pub(crate) requirements: Vec<Object<RequirementSection>>,
}

/// `google.protobuf.Empty`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Empty {}

/// One claim requirement: `name` is a claim or dotted path, and exactly one
/// of `equals`, `contains` and `one_of` is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ClaimRequirementSection {
    pub(crate) name: String,
    /// The claim equals this JSON value.
    pub(crate) equals: Option<serde_json::Value>,
    /// The claim is a list containing this string, or a space-separated
    /// string (such as `scope`) with this word.
    pub(crate) contains: Option<String>,
    /// The claim is one of these strings, or a list with one of them.
    pub(crate) one_of: Option<Vec<String>>,
}

/// Parses a protobuf JSON duration (`"300s"`, `"1.5s"`) into milliseconds.
pub(crate) fn parse_duration_ms(text: &str) -> Option<u64> {
    let number = text.strip_suffix('s')?;
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: u64 = whole.parse().ok()?;
    let mut millis = 0u64;
    for (position, digit) in fraction.bytes().take(3).enumerate() {
        millis += u64::from(digit - b'0') * 10u64.pow(2 - position as u32);
    }
    seconds.checked_mul(1000)?.checked_add(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration_ms("300s"), Some(300_000));
        assert_eq!(parse_duration_ms("1.5s"), Some(1500));
        assert_eq!(parse_duration_ms("0.001s"), Some(1));
        assert_eq!(parse_duration_ms("5m"), None);
        assert_eq!(parse_duration_ms("-1s"), None);
        assert_eq!(parse_duration_ms("s"), None);
    }
}

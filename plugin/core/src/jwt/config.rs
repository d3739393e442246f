//! The `jwt` section of the plugin configuration: the JSON form of Envoy's
//! `envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication` message,
//! with Envoy's field names.
//!
//! Envoy fields that this module does not implement are named and rejected
//! (never ignored). Portcullis adds two fields: `realm` (the
//! `WWW-Authenticate` realm) and `claims` on a rule (claim requirements).

use crate::config::Object;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `JwtAuthentication`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct JwtSection {
    /// Token providers by name (1 to 128 bytes): where tokens are read
    /// from, their keys and the checks on their claims. Default empty.
    #[cfg_attr(
        feature = "schema",
        schemars(extend("propertyNames" = {"minLength": 1, "maxLength": 128}))
    )]
    pub(crate) providers: BTreeMap<String, Object<ProviderSection>>,
    /// Rules, first match wins. Without rules no request is checked.
    pub(crate) rules: Vec<Object<RuleSection>>,
    /// Lets CORS preflight requests (`OPTIONS` with `origin` and
    /// `access-control-request-method`) through unchecked. Default false.
    pub(crate) bypass_cors_preflight: bool,
    /// Realm in `WWW-Authenticate` (Portcullis): printable ASCII without
    /// `"` or `\`. Default `portcullis`.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r#"^[ !#-\[\]-~]+$"#)))]
    pub(crate) realm: Option<String>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) requirement_map: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) filter_state_rules: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) stat_prefix: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) strip_failure_response: Option<IgnoredAny>,
}

/// `JwtProvider`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ProviderSection {
    /// Required `iss`; empty (the default) means any issuer.
    pub(crate) issuer: String,
    /// Allowed audiences, any of which `aud` must contain; empty (the
    /// default) means `aud` is not checked.
    pub(crate) audiences: Vec<String>,
    /// Whether `exp` is required. Portcullis defaults to true (Envoy to false).
    pub(crate) require_expiration: Option<bool>,
    /// Maximum lifetime from `iat` (else `nbf`, else now) to `exp`, a
    /// protobuf JSON duration such as `"3600s"`; when set, `exp` is
    /// required. Default: no maximum.
    pub(crate) max_lifetime: Option<String>,
    /// Keys fetched from a JWKS endpoint with an http call. Exactly one of
    /// `local_jwks` and `remote_jwks` is required.
    pub(crate) remote_jwks: Option<Object<RemoteJwksSection>>,
    /// Keys in the configuration: a JWKS or PEM public keys. Exactly one of
    /// `local_jwks` and `remote_jwks` is required.
    pub(crate) local_jwks: Option<Object<DataSourceSection>>,
    /// Whether the token goes on to the upstream. Default false: removed.
    pub(crate) forward: bool,
    /// Headers the token is read from. Without `from_headers`,
    /// `from_params` and `from_cookies`, the token is read from
    /// `Authorization: Bearer` and the `access_token` query parameter.
    pub(crate) from_headers: Vec<Object<JwtHeaderSection>>,
    /// Query parameters the token is read from, non-empty names. Default
    /// empty.
    pub(crate) from_params: Vec<String>,
    /// Cookies the token is read from, non-empty names. Default empty.
    pub(crate) from_cookies: Vec<String>,
    /// Request header, an HTTP token, that receives the base64url payload
    /// of a verified token. Default: none.
    pub(crate) forward_payload_header: Option<String>,
    /// Pads the forwarded payload with `=`. Default false.
    pub(crate) pad_forward_payload_header: bool,
    /// Claims copied into request headers of a verified token. Default
    /// empty.
    pub(crate) claim_to_headers: Vec<Object<ClaimToHeaderSection>>,
    /// Tolerated clock skew for `exp`, `nbf` and `iat`, in seconds; default
    /// 60, and values over 86400 count as 86400.
    pub(crate) clock_skew_seconds: Option<u64>,
    /// Token cache settings.
    pub(crate) jwt_cache_config: Option<Object<JwtCacheSection>>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) subjects: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) payload_in_metadata: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) header_in_metadata: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) failed_status_in_metadata: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) normalize_payload_in_metadata: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) clear_route_cache: Option<IgnoredAny>,
}

/// `JwtCacheConfig`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct JwtCacheSection {
    /// Entries of the per-VM verified-token cache, default 100 as in Envoy.
    /// The largest value of all providers applies, capped at 10000.
    pub(crate) jwt_cache_size: Option<u32>,
    /// Maximum size in bytes of a token kept in the verified-token cache,
    /// 4096 by default and for 0, as in Envoy. A longer token is verified on
    /// every request. Tokens over 65536 bytes are rejected whatever this is.
    pub(crate) jwt_max_token_size: Option<u32>,
}

/// `config.core.v3.DataSource`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DataSourceSection {
    /// The keys as text: a JWKS document or PEM public keys. Exactly one of
    /// `inline_string` and `inline_bytes` is required.
    pub(crate) inline_string: Option<String>,
    /// The same text in base64 (standard alphabet), as protobuf JSON writes
    /// bytes.
    pub(crate) inline_bytes: Option<String>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) filename: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) environment_variable: Option<IgnoredAny>,
}

/// `RemoteJwks`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RemoteJwksSection {
    /// Location of the JWKS. Required.
    pub(crate) http_uri: Option<Object<HttpUriSection>>,
    /// How long fetched keys are used before they are fetched again, a
    /// protobuf JSON duration of at least `"1s"`. Default `"300s"`.
    pub(crate) cache_duration: Option<String>,
    /// Whether requests wait for the first fetch, and the delay before a
    /// fetch after a failure.
    pub(crate) async_fetch: Option<Object<AsyncFetchSection>>,
    /// Backoff between failed fetches.
    pub(crate) retry_policy: Option<Object<RetryPolicySection>>,
}

/// `config.core.v3.HttpUri`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HttpUriSection {
    /// `http://` or `https://` URL of the JWKS; its host is the call's
    /// `:authority` and its path the call's `:path`.
    pub(crate) uri: String,
    /// Proxy cluster that the http call goes to; must not be empty.
    pub(crate) cluster: String,
    /// Timeout of a fetch, a protobuf JSON duration from `"0.001s"` to
    /// `"60s"`. Default `"1s"`.
    pub(crate) timeout: Option<String>,
}

/// `JwksAsyncFetch`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RetryPolicySection {
    /// Delays between failed fetches.
    pub(crate) retry_back_off: Option<Object<BackoffSection>>,
    /// Accepted for Envoy compatibility and not used: failed fetches are
    /// retried, with backoff, until one succeeds.
    pub(crate) num_retries: Option<u32>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) retry_on: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) retry_host_predicate: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) host_selection_retry_max_attempts: Option<IgnoredAny>,
}

/// `config.core.v3.BackoffStrategy`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct BackoffSection {
    /// First delay after a failed fetch, a protobuf JSON duration; values
    /// under 0.1 s count as 0.1 s. Default
    /// `async_fetch.failed_refetch_duration`, else `"1s"`.
    pub(crate) base_interval: Option<String>,
    /// Maximum delay, a protobuf JSON duration. Default `"30s"`.
    pub(crate) max_interval: Option<String>,
}

/// `JwtHeader`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct JwtHeaderSection {
    /// Header name, an HTTP token.
    pub(crate) name: String,
    /// Text before the token in the value, such as `"Bearer "`. Default
    /// empty.
    pub(crate) value_prefix: String,
}

/// `JwtClaimToHeader`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ClaimToHeaderSection {
    /// Request header, an HTTP token, that receives the claim's value.
    pub(crate) header_name: String,
    /// A claim name, or a dotted path into nested objects.
    pub(crate) claim_name: String,
}

/// `RequirementRule`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RuleSection {
    /// Requests the rule applies to. Required.
    #[serde(rename = "match")]
    pub(crate) route: Option<Object<RouteMatchSection>>,
    /// Requirement on the tokens of a matching request. Without it, a
    /// matching request passes unchecked and later rules are not tried.
    pub(crate) requires: Option<Object<RequirementSection>>,
    /// Claim requirements (Portcullis): every one must hold for a verified
    /// token, or the request gets 403.
    pub(crate) claims: Vec<Object<ClaimRequirementSection>>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) requirement_name: Option<IgnoredAny>,
}

/// `config.route.v3.RouteMatch`, path and header parts.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RouteMatchSection {
    /// Path prefix. Exactly one of `prefix`, `path`,
    /// `path_separated_prefix` and `safe_regex` is required.
    pub(crate) prefix: Option<String>,
    /// Exact path, matching with or without one trailing slash.
    pub(crate) path: Option<String>,
    /// Regex (regex-lite syntax) that the whole path must match.
    pub(crate) safe_regex: Option<Object<RegexSection>>,
    /// Path prefix that ends at a `/` or at the end of the path: `/api`
    /// matches `/api` and `/api/x`, not `/apix`. Starts with `/` and does
    /// not end with `/`.
    pub(crate) path_separated_prefix: Option<String>,
    /// Whether the path comparison is case-sensitive. Default true.
    pub(crate) case_sensitive: Option<bool>,
    /// Header conditions, all required. `:method` matches the method.
    /// Default empty.
    pub(crate) headers: Vec<Object<HeaderMatcherSection>>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) query_parameters: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) grpc: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) connect_matcher: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) path_match_policy: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) runtime_fraction: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) tls_context: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) dynamic_metadata: Option<IgnoredAny>,
}

/// `type.matcher.v3.RegexMatcher`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RegexSection {
    /// The pattern, in regex-lite syntax.
    pub(crate) regex: String,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) google_re2: Option<IgnoredAny>,
}

/// `config.route.v3.HeaderMatcher`; `:method` matches the method.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HeaderMatcherSection {
    /// Header name, case-insensitive; must not be empty.
    pub(crate) name: String,
    /// The value equals this text. At most one way to match the value may
    /// be set; with none, the header must be present.
    pub(crate) exact_match: Option<String>,
    /// The value starts with this text.
    pub(crate) prefix_match: Option<String>,
    /// The value ends with this text.
    pub(crate) suffix_match: Option<String>,
    /// The value contains this text.
    pub(crate) contains_match: Option<String>,
    /// The header is present; only `true` is accepted (use `invert_match`
    /// for absence).
    #[cfg_attr(feature = "schema", schemars(extend("enum" = [true, null])))]
    pub(crate) present_match: Option<bool>,
    /// Value match with optional case folding.
    pub(crate) string_match: Option<Object<StringMatchSection>>,
    /// Inverts the result of the match. Default false.
    pub(crate) invert_match: bool,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) safe_regex_match: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) range_match: Option<IgnoredAny>,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) treat_missing_header_as_empty: Option<IgnoredAny>,
}

/// `type.matcher.v3.StringMatcher`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StringMatchSection {
    /// The value equals this text. Exactly one of `exact`, `prefix`,
    /// `suffix` and `contains` is required.
    pub(crate) exact: Option<String>,
    /// The value starts with this text.
    pub(crate) prefix: Option<String>,
    /// The value ends with this text.
    pub(crate) suffix: Option<String>,
    /// The value contains this text.
    pub(crate) contains: Option<String>,
    /// Whether ASCII case is ignored. Default false.
    pub(crate) ignore_case: bool,
    /// Envoy field that Portcullis does not support: any value but null is
    /// rejected.
    #[cfg_attr(feature = "schema", schemars(with = "()"))]
    pub(crate) safe_regex: Option<IgnoredAny>,
}

/// `JwtRequirement`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RequirementSection {
    /// A valid token of this provider is required. Exactly one of the
    /// fields of a requirement is required.
    pub(crate) provider_name: Option<String>,
    /// A valid token of the provider, with one of these audiences in place
    /// of the provider's.
    pub(crate) provider_and_audiences: Option<Object<ProviderAndAudiencesSection>>,
    /// Any one of two or more requirements.
    pub(crate) requires_any: Option<Object<RequirementListSection>>,
    /// All of two or more requirements.
    pub(crate) requires_all: Option<Object<RequirementListSection>>,
    /// `{}`: a request passes with a missing or an invalid token.
    pub(crate) allow_missing_or_failed: Option<Object<Empty>>,
    /// `{}`: a request passes without a token, but a token that is present
    /// must be valid.
    pub(crate) allow_missing: Option<Object<Empty>>,
}

/// `ProviderWithAudiences`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ProviderAndAudiencesSection {
    /// Name of a provider in `jwt.providers`.
    pub(crate) provider_name: String,
    /// Audiences that replace the provider's `audiences`; empty keeps the
    /// provider's.
    pub(crate) audiences: Vec<String>,
}

/// `JwtRequirementOrList` and `JwtRequirementAndList`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RequirementListSection {
    /// The requirements, at least two, nested at most 8 levels deep.
    #[cfg_attr(feature = "schema", schemars(length(min = 2)))]
    pub(crate) requirements: Vec<Object<RequirementSection>>,
}

/// `google.protobuf.Empty`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct Empty {}

/// One claim requirement: `name` is a claim or dotted path, and exactly one
/// of `equals`, `contains` and `one_of` is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ClaimRequirementSection {
    /// Claim name, or a dotted path into nested objects such as
    /// `realm_access.roles`.
    pub(crate) name: String,
    /// The claim equals this JSON value.
    pub(crate) equals: Option<serde_json::Value>,
    /// The claim is a list containing this string, or a space-separated
    /// string (such as `scope`) with this word.
    pub(crate) contains: Option<String>,
    /// The claim is one of these strings, or a list with one of them. Must
    /// not be empty.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
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

//! The compiled `jwt` section: providers, rules and requirements, checked
//! once when the configuration is applied.

use super::claims::ClaimRequirement;
use super::config::{
    parse_duration_ms, DataSourceSection, HeaderMatcherSection, JwtSection, ProviderSection,
    RemoteJwksSection, RequirementSection, RouteMatchSection, RuleSection,
};
use super::keys::{parse_document, KeySet};
use crate::error::Error;
use crate::http::is_token;
use base64::Engine as _;
use regex_lite::Regex;

/// Default `clock_skew_seconds`, as Envoy.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;
/// Default `jwt_cache_config.jwt_max_token_size`: the maximum size in bytes
/// of a token kept in the verified-token cache, as in Envoy.
pub const DEFAULT_MAX_CACHED_TOKEN_BYTES: usize = 4096;
/// Maximum size in bytes of a token that is read at all. A longer one is
/// rejected before it is parsed. Envoy's default limit on all request headers
/// together, 60 KiB, is below it.
pub const MAX_TOKEN_BYTES: usize = 65536;
/// Default `remote_jwks.cache_duration`: 5 minutes, as Envoy.
pub const DEFAULT_CACHE_DURATION_MS: u64 = 300_000;
/// Default `http_uri.timeout`.
pub const DEFAULT_FETCH_TIMEOUT_MS: u64 = 1_000;
/// Default first delay before fetching again after a failure.
pub const DEFAULT_RETRY_BASE_MS: u64 = 1_000;
/// Default longest delay between fetch attempts after failures.
pub const DEFAULT_RETRY_MAX_MS: u64 = 30_000;
/// Default entries of the per-VM verified-token cache, as Envoy.
pub const DEFAULT_CACHE_ENTRIES: usize = 100;
/// Longest nesting of `requires_any` / `requires_all`.
const MAX_REQUIREMENT_DEPTH: usize = 8;

/// Where a token is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A header, lower-case, with a value prefix compared without case.
    Header {
        /// Lower-case header name.
        name: String,
        /// Prefix before the token, such as `Bearer `; may be empty.
        prefix: String,
    },
    /// A query parameter.
    Param(String),
    /// A cookie.
    Cookie(String),
}

/// Where a provider's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Keys from the configuration.
    Local(KeySet),
    /// Keys fetched with an http call.
    Remote(RemoteJwks),
}

/// A remote JWKS endpoint and its fetch schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    /// Cluster the http call goes to.
    pub cluster: String,
    /// `:authority` of the call.
    pub authority: String,
    /// `:path` of the call.
    pub path: String,
    /// Call timeout in milliseconds.
    pub timeout_ms: u64,
    /// How long fetched keys are used, in milliseconds.
    pub cache_duration_ms: u64,
    /// First delay before fetching again after a failure.
    pub retry_base_ms: u64,
    /// Longest delay between attempts after failures.
    pub retry_max_ms: u64,
    /// Whether requests that arrive before the first keys fail at once (true)
    /// or wait for them (false).
    pub fail_before_keys: bool,
}

/// A compiled provider.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Name in the `providers` map.
    pub name: String,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Allowed audiences; empty means not checked.
    pub audiences: Vec<String>,
    /// Whether `exp` is required.
    pub require_expiration: bool,
    /// Longest allowed lifetime in seconds.
    pub max_lifetime_seconds: Option<u64>,
    /// Tolerated clock skew in seconds.
    pub clock_skew_seconds: u64,
    /// Token locations, in order.
    pub sources: Vec<TokenSource>,
    /// Whether the token goes on to the upstream.
    pub forward: bool,
    /// Lower-case header for the payload of a verified token.
    pub forward_payload_header: Option<String>,
    /// Whether the forwarded payload is padded.
    pub pad_forward_payload_header: bool,
    /// `(lower-case header, claim path)` pairs.
    pub claim_to_headers: Vec<(String, Vec<String>)>,
    /// Maximum size in bytes of a token kept in the verified-token cache. A
    /// longer token is verified on every request.
    pub max_cached_token_bytes: usize,
    /// Where the keys come from.
    pub keys: KeySource,
}

/// A compiled requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// A valid token of this provider (by index), with audiences that
    /// replace the provider's when not empty.
    Provider {
        /// Index in [`JwtPolicy::providers`].
        index: usize,
        /// Audiences that replace the provider's, when not empty.
        audiences: Vec<String>,
    },
    /// Any one of these.
    Any(Vec<Requirement>),
    /// All of these.
    All(Vec<Requirement>),
    /// Valid tokens are checked and forwarded, and a request without a token
    /// of any provider passes; a present but invalid token fails.
    AllowMissing,
    /// Every request passes; valid tokens are still forwarded.
    AllowMissingOrFailed,
}

/// How a rule matches the path.
#[derive(Debug, Clone)]
pub enum PathMatch {
    /// Path prefix.
    Prefix(String),
    /// Whole path.
    Exact(String),
    /// Prefix that ends at a `/` or the end of the path.
    SeparatedPrefix(String),
    /// Regex over the whole path.
    Regex(Regex),
}

/// How a header matcher compares the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueMatch {
    /// The header is present.
    Present,
    /// Equal.
    Exact(String),
    /// Starts with.
    Prefix(String),
    /// Ends with.
    Suffix(String),
    /// Contains.
    Contains(String),
}

/// A compiled header matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMatch {
    /// Lower-case name; `:method` is the method.
    pub name: String,
    /// Comparison.
    pub value: ValueMatch,
    /// Compare without ASCII case.
    pub ignore_case: bool,
    /// Invert the result.
    pub invert: bool,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Path condition.
    pub path: PathMatch,
    /// Compare the path without ASCII case.
    pub case_insensitive: bool,
    /// Header conditions, all required.
    pub headers: Vec<HeaderMatch>,
    /// What the request must present; `None` means nothing.
    pub requires: Option<Requirement>,
    /// Claim requirements for the verified tokens.
    pub claims: Vec<ClaimRequirement>,
}

/// The compiled `jwt` section.
#[derive(Debug, Clone, Default)]
pub struct JwtPolicy {
    /// Providers in name order.
    pub providers: Vec<Provider>,
    /// Rules in order.
    pub rules: Vec<Rule>,
    /// Whether CORS preflight requests pass unchecked.
    pub bypass_cors_preflight: bool,
    /// Realm in `WWW-Authenticate`.
    pub realm: String,
    /// Entries of the per-VM verified-token cache.
    pub cache_entries: usize,
}

fn unsupported(path: &str) -> Error {
    Error::invalid(path, "is an Envoy field that Portcullis does not support")
}

fn duration(path: &str, text: &Option<String>, default: u64) -> Result<u64, Error> {
    match text {
        None => Ok(default),
        Some(text) => parse_duration_ms(text).ok_or_else(|| {
            Error::invalid(
                path,
                format!("must be a duration such as \"300s\", got {text:?}"),
            )
        }),
    }
}

fn header_name(path: &str, name: &str) -> Result<String, Error> {
    if !is_token(name) {
        return Err(Error::invalid(
            path,
            format!("{name:?} is not a valid header name"),
        ));
    }
    Ok(name.to_ascii_lowercase())
}

impl JwtPolicy {
    /// Tells whether any rule can require a token.
    pub fn enabled(&self) -> bool {
        !self.rules.is_empty()
    }

    /// Compiles the section, naming the first invalid value by its path.
    pub(crate) fn compile(section: &JwtSection) -> Result<Self, Error> {
        for (present, name) in [
            (section.requirement_map.is_some(), "requirement_map"),
            (section.filter_state_rules.is_some(), "filter_state_rules"),
            (section.stat_prefix.is_some(), "stat_prefix"),
            (
                section.strip_failure_response.is_some(),
                "strip_failure_response",
            ),
        ] {
            if present {
                return Err(unsupported(&format!("jwt.{name}")));
            }
        }
        let realm = section
            .realm
            .clone()
            .unwrap_or_else(|| "portcullis".to_string());
        if realm.is_empty()
            || !realm
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            return Err(Error::invalid(
                "jwt.realm",
                "must be printable ASCII without quotes or backslashes",
            ));
        }
        let mut providers = Vec::new();
        let mut cache_entries = 0;
        for (name, provider) in &section.providers {
            let compiled = compile_provider(name, &provider.0)?;
            let entries = provider
                .0
                .jwt_cache_config
                .as_ref()
                .and_then(|cache| cache.0.jwt_cache_size)
                .map_or(DEFAULT_CACHE_ENTRIES, |size| size as usize);
            cache_entries = cache_entries.max(entries.min(10_000));
            providers.push(compiled);
        }
        let mut rules = Vec::new();
        for (index, rule) in section.rules.iter().enumerate() {
            rules.push(compile_rule(
                &format!("jwt.rules[{index}]"),
                &rule.0,
                &providers,
            )?);
        }
        Ok(JwtPolicy {
            providers,
            rules,
            bypass_cors_preflight: section.bypass_cors_preflight,
            realm,
            cache_entries: cache_entries.max(1),
        })
    }
}

fn compile_provider(name: &str, section: &ProviderSection) -> Result<Provider, Error> {
    let path = format!("jwt.providers.{name}");
    for (present, field) in [
        (section.subjects.is_some(), "subjects"),
        (section.payload_in_metadata.is_some(), "payload_in_metadata"),
        (section.header_in_metadata.is_some(), "header_in_metadata"),
        (
            section.failed_status_in_metadata.is_some(),
            "failed_status_in_metadata",
        ),
        (
            section.normalize_payload_in_metadata.is_some(),
            "normalize_payload_in_metadata",
        ),
        (section.clear_route_cache.is_some(), "clear_route_cache"),
    ] {
        if present {
            return Err(unsupported(&format!("{path}.{field}")));
        }
    }
    if name.is_empty() || name.len() > 128 {
        return Err(Error::invalid(
            &path,
            "provider names must have 1 to 128 characters",
        ));
    }
    let keys = match (&section.local_jwks, &section.remote_jwks) {
        (Some(local), None) => {
            KeySource::Local(local_keys(&format!("{path}.local_jwks"), &local.0)?)
        }
        (None, Some(remote)) => {
            KeySource::Remote(remote_jwks(&format!("{path}.remote_jwks"), &remote.0)?)
        }
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                &path,
                "set only one of local_jwks and remote_jwks",
            ))
        }
        (None, None) => return Err(Error::invalid(&path, "needs local_jwks or remote_jwks")),
    };
    let mut sources = Vec::new();
    for (index, header) in section.from_headers.iter().enumerate() {
        let header_path = format!("{path}.from_headers[{index}].name");
        sources.push(TokenSource::Header {
            name: header_name(&header_path, &header.0.name)?,
            prefix: header.0.value_prefix.clone(),
        });
    }
    for (index, param) in section.from_params.iter().enumerate() {
        if param.is_empty() {
            return Err(Error::invalid(
                format!("{path}.from_params[{index}]"),
                "must not be empty",
            ));
        }
        sources.push(TokenSource::Param(param.clone()));
    }
    for (index, cookie) in section.from_cookies.iter().enumerate() {
        if cookie.is_empty() {
            return Err(Error::invalid(
                format!("{path}.from_cookies[{index}]"),
                "must not be empty",
            ));
        }
        sources.push(TokenSource::Cookie(cookie.clone()));
    }
    if sources.is_empty() {
        // Envoy's default locations.
        sources.push(TokenSource::Header {
            name: "authorization".to_string(),
            prefix: "Bearer ".to_string(),
        });
        sources.push(TokenSource::Param("access_token".to_string()));
    }
    let forward_payload_header = match &section.forward_payload_header {
        Some(name) => Some(header_name(
            &format!("{path}.forward_payload_header"),
            name,
        )?),
        None => None,
    };
    let mut claim_to_headers = Vec::new();
    for (index, pair) in section.claim_to_headers.iter().enumerate() {
        let pair_path = format!("{path}.claim_to_headers[{index}]");
        let header = header_name(&format!("{pair_path}.header_name"), &pair.0.header_name)?;
        let claim: Vec<String> = pair.0.claim_name.split('.').map(str::to_string).collect();
        if claim.iter().any(String::is_empty) {
            return Err(Error::invalid(
                format!("{pair_path}.claim_name"),
                "must be a claim name or a dotted path",
            ));
        }
        claim_to_headers.push((header, claim));
    }
    let max_lifetime_seconds = match &section.max_lifetime {
        Some(_) => {
            Some(duration(&format!("{path}.max_lifetime"), &section.max_lifetime, 0)? / 1000)
        }
        None => None,
    };
    // Envoy's field is a proto3 integer, where 0 means unset.
    let max_cached_token_bytes = section
        .jwt_cache_config
        .as_ref()
        .and_then(|cache| cache.0.jwt_max_token_size)
        .filter(|&size| size != 0)
        .map_or(DEFAULT_MAX_CACHED_TOKEN_BYTES, |size| {
            (size as usize).min(MAX_TOKEN_BYTES)
        });
    Ok(Provider {
        name: name.to_string(),
        issuer: Some(section.issuer.clone()).filter(|issuer| !issuer.is_empty()),
        audiences: section.audiences.clone(),
        require_expiration: section.require_expiration.unwrap_or(true),
        max_lifetime_seconds,
        // Envoy's field is a proto3 integer, which cannot tell 0 from
        // unset, so 0 also means the default there.
        clock_skew_seconds: section
            .clock_skew_seconds
            .filter(|&seconds| seconds != 0)
            .unwrap_or(DEFAULT_CLOCK_SKEW_SECONDS)
            .min(86_400),
        sources,
        forward: section.forward,
        forward_payload_header,
        pad_forward_payload_header: section.pad_forward_payload_header,
        claim_to_headers,
        max_cached_token_bytes,
        keys,
    })
}

fn local_keys(path: &str, section: &DataSourceSection) -> Result<KeySet, Error> {
    if section.filename.is_some() {
        return Err(Error::invalid(
            format!("{path}.filename"),
            "is not supported: a wasm module has no file system; use inline_string",
        ));
    }
    if section.environment_variable.is_some() {
        return Err(unsupported(&format!("{path}.environment_variable")));
    }
    let text = match (&section.inline_string, &section.inline_bytes) {
        (Some(text), None) => text.clone(),
        (None, Some(encoded)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|error| {
                    Error::invalid(
                        format!("{path}.inline_bytes"),
                        format!("invalid base64: {error}"),
                    )
                })?;
            String::from_utf8(bytes)
                .map_err(|_| Error::invalid(format!("{path}.inline_bytes"), "is not UTF-8"))?
        }
        _ => {
            return Err(Error::invalid(
                path,
                "set exactly one of inline_string and inline_bytes",
            ))
        }
    };
    parse_document(&text).map_err(|error| Error::invalid(path, error.to_string()))
}

fn remote_jwks(path: &str, section: &RemoteJwksSection) -> Result<RemoteJwks, Error> {
    let Some(http_uri) = &section.http_uri else {
        return Err(Error::invalid(path, "needs http_uri"));
    };
    let uri = &http_uri.0.uri;
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .ok_or_else(|| {
            Error::invalid(
                format!("{path}.http_uri.uri"),
                format!("must be an http or https URL, got {uri:?}"),
            )
        })?;
    let (authority, request_path) = match rest.find('/') {
        Some(index) => (&rest[..index], &rest[index..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || http_uri.0.cluster.is_empty() {
        return Err(Error::invalid(
            format!("{path}.http_uri"),
            "needs a host in uri and a cluster",
        ));
    }
    let (fail_before_keys, retry_default) = match &section.async_fetch {
        Some(async_fetch) => (
            async_fetch.0.fast_listener,
            duration(
                &format!("{path}.async_fetch.failed_refetch_duration"),
                &async_fetch.0.failed_refetch_duration,
                DEFAULT_RETRY_BASE_MS,
            )?,
        ),
        None => (false, DEFAULT_RETRY_BASE_MS),
    };
    let (retry_base_ms, retry_max_ms) = match &section.retry_policy {
        Some(policy) => {
            for (present, field) in [
                (policy.0.retry_on.is_some(), "retry_on"),
                (
                    policy.0.retry_host_predicate.is_some(),
                    "retry_host_predicate",
                ),
                (
                    policy.0.host_selection_retry_max_attempts.is_some(),
                    "host_selection_retry_max_attempts",
                ),
            ] {
                if present {
                    return Err(unsupported(&format!("{path}.retry_policy.{field}")));
                }
            }
            match &policy.0.retry_back_off {
                Some(backoff) => (
                    duration(
                        &format!("{path}.retry_policy.retry_back_off.base_interval"),
                        &backoff.0.base_interval,
                        retry_default,
                    )?,
                    duration(
                        &format!("{path}.retry_policy.retry_back_off.max_interval"),
                        &backoff.0.max_interval,
                        DEFAULT_RETRY_MAX_MS,
                    )?,
                ),
                None => (retry_default, DEFAULT_RETRY_MAX_MS),
            }
        }
        None => (retry_default, DEFAULT_RETRY_MAX_MS),
    };
    let timeout_ms = duration(
        &format!("{path}.http_uri.timeout"),
        &http_uri.0.timeout,
        DEFAULT_FETCH_TIMEOUT_MS,
    )?;
    if timeout_ms == 0 || timeout_ms > 60_000 {
        return Err(Error::invalid(
            format!("{path}.http_uri.timeout"),
            "must be between 1ms and 60s",
        ));
    }
    let cache_duration_ms = duration(
        &format!("{path}.cache_duration"),
        &section.cache_duration,
        DEFAULT_CACHE_DURATION_MS,
    )?;
    if cache_duration_ms < 1000 {
        return Err(Error::invalid(
            format!("{path}.cache_duration"),
            "must be at least 1s",
        ));
    }
    Ok(RemoteJwks {
        cluster: http_uri.0.cluster.clone(),
        authority: authority.to_string(),
        path: request_path.to_string(),
        timeout_ms,
        cache_duration_ms,
        retry_base_ms: retry_base_ms.max(100),
        retry_max_ms: retry_max_ms.max(retry_base_ms.max(100)),
        fail_before_keys,
    })
}

fn compile_rule(path: &str, section: &RuleSection, providers: &[Provider]) -> Result<Rule, Error> {
    if section.requirement_name.is_some() {
        return Err(unsupported(&format!("{path}.requirement_name")));
    }
    let Some(route) = &section.route else {
        return Err(Error::invalid(path, "needs match"));
    };
    let (path_match, case_insensitive, headers) =
        compile_match(&format!("{path}.match"), &route.0)?;
    let requires = match &section.requires {
        Some(requires) => Some(compile_requirement(
            &format!("{path}.requires"),
            &requires.0,
            providers,
            0,
        )?),
        None => None,
    };
    let mut claims = Vec::new();
    for (index, claim) in section.claims.iter().enumerate() {
        claims.push(ClaimRequirement::compile(
            &format!("{path}.claims[{index}]"),
            &claim.0,
        )?);
    }
    if !claims.is_empty() && requires.is_none() {
        return Err(Error::invalid(
            format!("{path}.claims"),
            "needs requires: claims are read from verified tokens",
        ));
    }
    Ok(Rule {
        path: path_match,
        case_insensitive,
        headers,
        requires,
        claims,
    })
}

fn compile_match(
    path: &str,
    section: &RouteMatchSection,
) -> Result<(PathMatch, bool, Vec<HeaderMatch>), Error> {
    for (present, field) in [
        (section.query_parameters.is_some(), "query_parameters"),
        (section.grpc.is_some(), "grpc"),
        (section.connect_matcher.is_some(), "connect_matcher"),
        (section.path_match_policy.is_some(), "path_match_policy"),
        (section.runtime_fraction.is_some(), "runtime_fraction"),
        (section.tls_context.is_some(), "tls_context"),
        (section.dynamic_metadata.is_some(), "dynamic_metadata"),
    ] {
        if present {
            return Err(unsupported(&format!("{path}.{field}")));
        }
    }
    let case_insensitive = !section.case_sensitive.unwrap_or(true);
    let mut found = Vec::new();
    if let Some(prefix) = &section.prefix {
        found.push(PathMatch::Prefix(prefix.clone()));
    }
    if let Some(exact) = &section.path {
        found.push(PathMatch::Exact(exact.clone()));
    }
    if let Some(prefix) = &section.path_separated_prefix {
        if !prefix.starts_with('/') || (prefix.len() > 1 && prefix.ends_with('/')) {
            return Err(Error::invalid(
                format!("{path}.path_separated_prefix"),
                "must start with / and not end with /",
            ));
        }
        found.push(PathMatch::SeparatedPrefix(prefix.clone()));
    }
    if let Some(regex) = &section.safe_regex {
        if regex.0.google_re2.is_some() {
            return Err(unsupported(&format!("{path}.safe_regex.google_re2")));
        }
        let anchored = format!("^(?:{})$", regex.0.regex);
        let compiled = regex_lite::RegexBuilder::new(&anchored)
            .case_insensitive(case_insensitive)
            .size_limit(1 << 20)
            .build()
            .map_err(|error| {
                Error::invalid(format!("{path}.safe_regex.regex"), error.to_string())
            })?;
        found.push(PathMatch::Regex(compiled));
    }
    if found.len() != 1 {
        return Err(Error::invalid(
            path,
            "set exactly one of prefix, path, path_separated_prefix and safe_regex",
        ));
    }
    let mut headers = Vec::new();
    for (index, header) in section.headers.iter().enumerate() {
        headers.push(compile_header(
            &format!("{path}.headers[{index}]"),
            &header.0,
        )?);
    }
    Ok((found.remove(0), case_insensitive, headers))
}

fn compile_header(path: &str, section: &HeaderMatcherSection) -> Result<HeaderMatch, Error> {
    for (present, field) in [
        (section.safe_regex_match.is_some(), "safe_regex_match"),
        (section.range_match.is_some(), "range_match"),
        (
            section.treat_missing_header_as_empty.is_some(),
            "treat_missing_header_as_empty",
        ),
    ] {
        if present {
            return Err(unsupported(&format!("{path}.{field}")));
        }
    }
    let name = section.name.to_ascii_lowercase();
    if name.is_empty() {
        return Err(Error::invalid(format!("{path}.name"), "must not be empty"));
    }
    let mut found = Vec::new();
    let mut ignore_case = false;
    if let Some(value) = &section.exact_match {
        found.push(ValueMatch::Exact(value.clone()));
    }
    if let Some(value) = &section.prefix_match {
        found.push(ValueMatch::Prefix(value.clone()));
    }
    if let Some(value) = &section.suffix_match {
        found.push(ValueMatch::Suffix(value.clone()));
    }
    if let Some(value) = &section.contains_match {
        found.push(ValueMatch::Contains(value.clone()));
    }
    if let Some(present) = section.present_match {
        if !present {
            return Err(Error::invalid(
                format!("{path}.present_match"),
                "must be true; use invert_match for absence",
            ));
        }
        found.push(ValueMatch::Present);
    }
    if let Some(string_match) = &section.string_match {
        let matcher = &string_match.0;
        if matcher.safe_regex.is_some() {
            return Err(unsupported(&format!("{path}.string_match.safe_regex")));
        }
        ignore_case = matcher.ignore_case;
        let mut inner = Vec::new();
        if let Some(value) = &matcher.exact {
            inner.push(ValueMatch::Exact(value.clone()));
        }
        if let Some(value) = &matcher.prefix {
            inner.push(ValueMatch::Prefix(value.clone()));
        }
        if let Some(value) = &matcher.suffix {
            inner.push(ValueMatch::Suffix(value.clone()));
        }
        if let Some(value) = &matcher.contains {
            inner.push(ValueMatch::Contains(value.clone()));
        }
        if inner.len() != 1 {
            return Err(Error::invalid(
                format!("{path}.string_match"),
                "set exactly one of exact, prefix, suffix and contains",
            ));
        }
        found.append(&mut inner);
    }
    if found.len() > 1 {
        return Err(Error::invalid(
            path,
            "set at most one way to match the value",
        ));
    }
    Ok(HeaderMatch {
        name,
        value: found.pop().unwrap_or(ValueMatch::Present),
        ignore_case,
        invert: section.invert_match,
    })
}

fn compile_requirement(
    path: &str,
    section: &RequirementSection,
    providers: &[Provider],
    depth: usize,
) -> Result<Requirement, Error> {
    if depth > MAX_REQUIREMENT_DEPTH {
        return Err(Error::invalid(path, "requirements are nested too deeply"));
    }
    let provider_index = |field_path: String, name: &str| {
        providers
            .iter()
            .position(|provider| provider.name == name)
            .ok_or_else(|| Error::invalid(field_path, format!("names no provider: {name:?}")))
    };
    let mut found = Vec::new();
    if let Some(name) = &section.provider_name {
        found.push(Requirement::Provider {
            index: provider_index(format!("{path}.provider_name"), name)?,
            audiences: Vec::new(),
        });
    }
    if let Some(pair) = &section.provider_and_audiences {
        found.push(Requirement::Provider {
            index: provider_index(
                format!("{path}.provider_and_audiences.provider_name"),
                &pair.0.provider_name,
            )?,
            audiences: pair.0.audiences.clone(),
        });
    }
    for (list, field, all) in [
        (&section.requires_any, "requires_any", false),
        (&section.requires_all, "requires_all", true),
    ] {
        if let Some(list) = list {
            let mut compiled = Vec::new();
            for (index, item) in list.0.requirements.iter().enumerate() {
                compiled.push(compile_requirement(
                    &format!("{path}.{field}.requirements[{index}]"),
                    &item.0,
                    providers,
                    depth + 1,
                )?);
            }
            if compiled.len() < 2 {
                return Err(Error::invalid(
                    format!("{path}.{field}.requirements"),
                    "needs at least two requirements",
                ));
            }
            found.push(if all {
                Requirement::All(compiled)
            } else {
                Requirement::Any(compiled)
            });
        }
    }
    if section.allow_missing.is_some() {
        found.push(Requirement::AllowMissing);
    }
    if section.allow_missing_or_failed.is_some() {
        found.push(Requirement::AllowMissingOrFailed);
    }
    if found.len() != 1 {
        return Err(Error::invalid(path, "set exactly one of provider_name, provider_and_audiences, requires_any, requires_all, allow_missing and allow_missing_or_failed"));
    }
    Ok(found.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skew_of(provider: &str) -> u64 {
        let jwk = r#"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}"#;
        let json = format!(
            r#"{{"providers":{{"p":{{"local_jwks":{{"inline_string":"{{\"keys\":[{jwk}]}}"}}{provider}}}}}}}"#
        );
        let section: JwtSection =
            serde_json::from_str(&json).unwrap_or_else(|error| panic!("{error}: {json}"));
        let policy = JwtPolicy::compile(&section).unwrap_or_else(|error| panic!("{error}"));
        policy.providers[0].clock_skew_seconds
    }

    #[test]
    fn clock_skew_zero_means_default() {
        assert_eq!(skew_of(""), DEFAULT_CLOCK_SKEW_SECONDS);
        assert_eq!(
            skew_of(r#","clock_skew_seconds":0"#),
            DEFAULT_CLOCK_SKEW_SECONDS
        );
        assert_eq!(skew_of(r#","clock_skew_seconds":5"#), 5);
    }
}

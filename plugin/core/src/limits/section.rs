//! The `limits` section of the configuration, as written, and its
//! compilation into [`Policy`] values.

use super::key::{Cidr, KeyPart, KeySpec, MissingKey};
use super::policy::{Algorithm, Counting, Escalation, Lockout, Mode, Policy, StoreFailure};
use crate::config::Object;
use crate::error::Error;
use regex_lite::Regex;
use serde::Deserialize;

/// Largest accepted `limit`.
pub const MAX_LIMIT: u32 = 1_000_000;
/// Largest accepted `window_seconds`, `lockout_seconds` and escalation
/// durations: 366 days.
pub const MAX_DURATION_SECONDS: u64 = 366 * 86_400;
/// Largest accepted `max_keys` of one policy.
pub const MAX_KEYS_LIMIT: u32 = 1 << 20;
/// Default `max_keys`.
pub const DEFAULT_MAX_KEYS: u32 = 8192;
/// Largest accepted `limits.max_body_bytes`.
pub const MAX_BODY_BYTES_LIMIT: u64 = 1024 * 1024;
/// Default `limits.max_body_bytes`.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 * 1024;
/// Maximum number of policies.
pub const MAX_POLICIES: usize = 64;
/// Maximum length of a policy name.
pub const MAX_NAME_CHARS: usize = 64;

/// The `limits` section, as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LimitsSection {
    /// Counting policies, at most 64, each with a distinct name. Default
    /// empty: nothing is counted.
    #[cfg_attr(feature = "schema", schemars(length(max = 64)))]
    pub(crate) policies: Vec<Object<PolicySection>>,
    /// Client addresses that no policy counts or rejects: IP addresses or
    /// CIDR blocks such as `10.0.0.0/8` or `2001:db8::/32`. Default empty.
    pub(crate) allowlist: Vec<String>,
    /// Largest request body, in bytes, buffered to read `body_field` key
    /// parts, at most 1048576. Default 16384.
    #[cfg_attr(feature = "schema", schemars(range(max = 1048576)))]
    pub(crate) max_body_bytes: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            policies: Vec::new(),
            allowlist: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// One entry of `limits.policies`, as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicySection {
    /// Policy name in events, metrics and the `RateLimit-Policy` header: 1
    /// to 64 characters of `a-z`, `A-Z`, `0-9`, `-` and `_`.
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,64}$"))
    )]
    name: String,
    /// Requests the policy counts. Default: every request.
    #[serde(rename = "match", default)]
    matcher: Object<MatchSection>,
    /// Parts of the counting key, at least one, hashed together.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    key: Vec<Object<KeyPartSection>>,
    /// Events counted: `requests` (default), or `failures`, the responses
    /// with a status in `failure_statuses`.
    #[serde(default)]
    count: CountSection,
    /// Response statuses, 100 to 599, that count as failures when `count`
    /// is `failures`; then at least one is required. Default `[401, 403]`.
    #[serde(default = "default_failure_statuses")]
    failure_statuses: Vec<u16>,
    /// `sliding_window` (default: the previous window weighs by its
    /// overlap) or `token_bucket` (bursts of `limit`, refilled over the
    /// window).
    #[serde(default)]
    algorithm: AlgorithmSection,
    /// Requests or failures allowed per window, 1 to 1000000.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1000000)))]
    limit: u32,
    /// Window length in seconds, 1 to 31622400 (366 days).
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 31622400)))]
    window_seconds: u64,
    /// How long a key over the limit stays rejected, in seconds, 0 to
    /// 31622400. Default 0: no lockout, only the window's limit.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(max = 31622400)))]
    lockout_seconds: u64,
    /// Longer lockouts for repeat offenders; needs a non-zero
    /// `lockout_seconds`. Default: none.
    escalation: Option<Object<EscalationSection>>,
    /// `block` (default) rejects keys over the limit; `monitor` only logs.
    #[serde(default)]
    mode: ModeSection,
    /// Status of the rejection, 400 to 599. Default 429.
    #[serde(default = "default_status")]
    #[cfg_attr(feature = "schema", schemars(range(min = 400, max = 599)))]
    status: u16,
    /// Body of the rejection. Default
    /// `{"error":"rate_limited","policy":NAME}`.
    body: Option<String>,
    /// `reject` (default) or `allow` a request when shared data fails or a
    /// new key finds no free entry.
    #[serde(default)]
    on_store_failure: StoreFailureSection,
    /// Keys tracked at most, 1 to 1048576, spread over `max_keys / 4`
    /// shared-data buckets of four entries. Default 8192.
    #[serde(default = "default_max_keys")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1048576)))]
    max_keys: u32,
    /// Requests without a key part: `count` (default: they share one key)
    /// or `skip` (not counted).
    #[serde(default)]
    on_missing_key: MissingKeySection,
    /// Whether forwarded responses carry `RateLimit-Policy` and
    /// `RateLimit`. Default true.
    #[serde(default = "yes")]
    response_headers: bool,
}

fn default_failure_statuses() -> Vec<u16> {
    vec![401, 403]
}

fn default_status() -> u16 {
    429
}

fn default_max_keys() -> u32 {
    DEFAULT_MAX_KEYS
}

fn yes() -> bool {
    true
}

/// The requests that a policy counts, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
struct MatchSection {
    /// Route path condition, compared after percent-decoding, with doubled
    /// slashes, dot segments and `;` parameters resolved. Default: every
    /// path.
    path: Option<Object<PathSection>>,
    /// Methods, HTTP tokens that are upper-cased before comparison.
    /// Default empty: every method.
    methods: Vec<String>,
}

/// A route path condition, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
struct PathSection {
    /// Exact path, matching with or without one trailing slash. Exactly one
    /// of `exact`, `prefix` and `regex` is required.
    exact: Option<String>,
    /// Path prefix.
    prefix: Option<String>,
    /// Regex (regex-lite syntax) that matches anywhere in the path; anchor
    /// it with `^` and `$` to match the whole path.
    regex: Option<String>,
}

/// One part of a counting key, as written: exactly one of `address`,
/// `header`, `cookie`, `claim` and `body_field`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
struct KeyPartSection {
    /// The client address of `headers.client_address`, cut to a prefix.
    address: Option<Object<AddressSection>>,
    /// A request header's value; the name is an HTTP token.
    header: Option<String>,
    /// A cookie's value; the name must not be empty.
    cookie: Option<String>,
    /// A claim of the validated token, by name; must not be empty.
    claim: Option<String>,
    /// A form or JSON body field, or a JSON pointer such as `/user/name`;
    /// must not be empty.
    body_field: Option<String>,
    /// Whether the value is folded before hashing (header, cookie, claim and
    /// body field parts): surrounding whitespace removed, fullwidth forms
    /// read as ASCII, letters lower-cased. Default false.
    #[serde(default)]
    lowercase: bool,
}

/// The prefix lengths of an `address` key part, as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
struct AddressSection {
    /// Prefix length that IPv4 addresses are cut to, 1 to 32. Default 32.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 32)))]
    ipv4_prefix: u8,
    /// Prefix length that IPv6 addresses are cut to, 1 to 128. Default 64.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 128)))]
    ipv6_prefix: u8,
}

impl Default for AddressSection {
    fn default() -> Self {
        AddressSection {
            ipv4_prefix: 32,
            ipv6_prefix: 64,
        }
    }
}

/// The events that a policy counts.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
enum CountSection {
    #[default]
    Requests,
    Failures,
}

/// The counting algorithm of a policy.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
enum AlgorithmSection {
    #[default]
    SlidingWindow,
    TokenBucket,
}

/// The action of a policy on a key over its limit.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
enum ModeSection {
    #[default]
    Block,
    Monitor,
}

/// The outcome of a request whose key cannot be tracked.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
enum StoreFailureSection {
    #[default]
    Reject,
    Allow,
}

/// The handling of a request without a key part.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
enum MissingKeySection {
    #[default]
    Count,
    Skip,
}

/// Lockout escalation, as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
struct EscalationSection {
    /// Each new lockout of a key lasts this many times the previous one, 1
    /// to 100. Default 2.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100)))]
    factor: u32,
    /// Maximum lockout in seconds, at least `lockout_seconds` and at most
    /// 31622400. Default 86400.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 31622400)))]
    max_seconds: u64,
    /// Time after the end of a key's last lockout, in seconds (1 to
    /// 31622400), after which its next lockout starts again from
    /// `lockout_seconds`. Default 86400.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 31622400)))]
    forget_after_seconds: u64,
}

impl Default for EscalationSection {
    fn default() -> Self {
        EscalationSection {
            factor: 2,
            max_seconds: 86_400,
            forget_after_seconds: 86_400,
        }
    }
}

fn check_duration(path: String, seconds: u64, allow_zero: bool) -> Result<u64, Error> {
    if (!allow_zero && seconds == 0) || seconds > MAX_DURATION_SECONDS {
        let low = if allow_zero { 0 } else { 1 };
        return Err(Error::invalid(
            path,
            format!("must be between {low} and {MAX_DURATION_SECONDS} seconds, got {seconds}"),
        ));
    }
    Ok(seconds)
}

fn compile_path(path: &str, section: &PathSection) -> Result<super::policy::PathMatch, Error> {
    use super::policy::PathMatch;
    let given = [
        section.exact.is_some(),
        section.prefix.is_some(),
        section.regex.is_some(),
    ];
    if given.iter().filter(|set| **set).count() != 1 {
        return Err(Error::invalid(
            path,
            "needs exactly one of \"exact\", \"prefix\" or \"regex\"",
        ));
    }
    if let Some(exact) = &section.exact {
        return Ok(PathMatch::Exact(exact.clone()));
    }
    if let Some(prefix) = &section.prefix {
        return Ok(PathMatch::Prefix(prefix.clone()));
    }
    let pattern = section.regex.as_deref().unwrap_or_default();
    Regex::new(pattern)
        .map(PathMatch::Regex)
        .map_err(|error| Error::invalid(format!("{path}.regex"), format!("invalid regex: {error}")))
}

fn compile_key_part(path: &str, section: &KeyPartSection) -> Result<KeyPart, Error> {
    let given = [
        section.address.is_some(),
        section.header.is_some(),
        section.cookie.is_some(),
        section.claim.is_some(),
        section.body_field.is_some(),
    ];
    if given.iter().filter(|set| **set).count() != 1 {
        return Err(Error::invalid(
            path,
            "needs exactly one of \"address\", \"header\", \"cookie\", \"claim\" or \"body_field\"",
        ));
    }
    let lowercase = section.lowercase;
    let non_empty = |field: &str, value: &str| -> Result<String, Error> {
        if value.is_empty() {
            return Err(Error::invalid(
                format!("{path}.{field}"),
                "must not be empty",
            ));
        }
        Ok(value.to_string())
    };
    if let Some(address) = &section.address {
        let address = &address.0;
        if address.ipv4_prefix > 32 || address.ipv4_prefix == 0 {
            return Err(Error::invalid(
                format!("{path}.address.ipv4_prefix"),
                format!("must be between 1 and 32, got {}", address.ipv4_prefix),
            ));
        }
        if address.ipv6_prefix > 128 || address.ipv6_prefix == 0 {
            return Err(Error::invalid(
                format!("{path}.address.ipv6_prefix"),
                format!("must be between 1 and 128, got {}", address.ipv6_prefix),
            ));
        }
        return Ok(KeyPart::Address {
            ipv4_prefix: address.ipv4_prefix,
            ipv6_prefix: address.ipv6_prefix,
        });
    }
    if let Some(header) = &section.header {
        let name = non_empty("header", header)?.to_ascii_lowercase();
        if !crate::http::is_token(&name) {
            return Err(Error::invalid(
                format!("{path}.header"),
                format!("invalid header name {header:?}, expected an HTTP token"),
            ));
        }
        return Ok(KeyPart::Header { name, lowercase });
    }
    if let Some(cookie) = &section.cookie {
        let name = non_empty("cookie", cookie)?;
        return Ok(KeyPart::Cookie { name, lowercase });
    }
    if let Some(claim) = &section.claim {
        let name = non_empty("claim", claim)?;
        return Ok(KeyPart::Claim { name, lowercase });
    }
    let field = non_empty(
        "body_field",
        section.body_field.as_deref().unwrap_or_default(),
    )?;
    Ok(KeyPart::BodyField { field, lowercase })
}

impl PolicySection {
    pub(crate) fn compile(&self, path: &str) -> Result<Policy, Error> {
        let name = &self.name;
        let valid_name = !name.is_empty()
            && name.len() <= MAX_NAME_CHARS
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if !valid_name {
            return Err(Error::invalid(
                format!("{path}.name"),
                format!("invalid name {name:?}, expected 1 to {MAX_NAME_CHARS} characters of a-z, A-Z, 0-9, '-' and '_'"),
            ));
        }
        let path_match = match &self.matcher.0.path {
            Some(section) => Some(compile_path(&format!("{path}.match.path"), &section.0)?),
            None => None,
        };
        let mut methods = Vec::new();
        for (index, method) in self.matcher.0.methods.iter().enumerate() {
            if !crate::http::is_token(method) {
                return Err(Error::invalid(
                    format!("{path}.match.methods[{index}]"),
                    format!("invalid method {method:?}"),
                ));
            }
            methods.push(method.to_ascii_uppercase());
        }
        if self.key.is_empty() {
            return Err(Error::invalid(
                format!("{path}.key"),
                "needs at least one part, such as {\"address\": {}}",
            ));
        }
        let mut parts = Vec::new();
        for (index, part) in self.key.iter().enumerate() {
            parts.push(compile_key_part(&format!("{path}.key[{index}]"), &part.0)?);
        }
        let counting = match self.count {
            CountSection::Requests => Counting::Requests,
            CountSection::Failures => {
                if self.failure_statuses.is_empty() {
                    return Err(Error::invalid(
                        format!("{path}.failure_statuses"),
                        "must list at least one status when \"count\" is \"failures\"",
                    ));
                }
                for (index, status) in self.failure_statuses.iter().enumerate() {
                    if !(100..=599).contains(status) {
                        return Err(Error::invalid(
                            format!("{path}.failure_statuses[{index}]"),
                            format!("must be between 100 and 599, got {status}"),
                        ));
                    }
                }
                Counting::Failures(self.failure_statuses.clone())
            }
        };
        if self.limit == 0 || self.limit > MAX_LIMIT {
            return Err(Error::invalid(
                format!("{path}.limit"),
                format!("must be between 1 and {MAX_LIMIT}, got {}", self.limit),
            ));
        }
        let window = check_duration(format!("{path}.window_seconds"), self.window_seconds, false)?;
        let lockout_seconds = check_duration(
            format!("{path}.lockout_seconds"),
            self.lockout_seconds,
            true,
        )?;
        let escalation = match &self.escalation {
            None => None,
            Some(section) => {
                let section = &section.0;
                if lockout_seconds == 0 {
                    return Err(Error::invalid(
                        format!("{path}.escalation"),
                        "needs a non-zero \"lockout_seconds\"",
                    ));
                }
                if !(1..=100).contains(&section.factor) {
                    return Err(Error::invalid(
                        format!("{path}.escalation.factor"),
                        format!("must be between 1 and 100, got {}", section.factor),
                    ));
                }
                let max = check_duration(
                    format!("{path}.escalation.max_seconds"),
                    section.max_seconds,
                    false,
                )?;
                if max < lockout_seconds {
                    return Err(Error::invalid(
                        format!("{path}.escalation.max_seconds"),
                        format!("must be at least lockout_seconds ({lockout_seconds}), got {max}"),
                    ));
                }
                let forget = check_duration(
                    format!("{path}.escalation.forget_after_seconds"),
                    section.forget_after_seconds,
                    false,
                )?;
                Some(Escalation {
                    factor: section.factor,
                    max_ms: max * 1000,
                    forget_after_ms: forget * 1000,
                })
            }
        };
        let lockout = (lockout_seconds > 0).then_some(Lockout {
            base_ms: lockout_seconds * 1000,
            escalation,
        });
        if !(400..=599).contains(&self.status) {
            return Err(Error::invalid(
                format!("{path}.status"),
                format!("must be between 400 and 599, got {}", self.status),
            ));
        }
        if self.max_keys == 0 || self.max_keys > MAX_KEYS_LIMIT {
            return Err(Error::invalid(
                format!("{path}.max_keys"),
                format!(
                    "must be between 1 and {MAX_KEYS_LIMIT}, got {}",
                    self.max_keys
                ),
            ));
        }
        let body = match &self.body {
            Some(body) => body.clone().into_bytes(),
            None => serde_json::json!({"error": "rate_limited", "policy": name})
                .to_string()
                .into_bytes(),
        };
        Ok(Policy::new(
            name.clone(),
            path_match,
            methods,
            KeySpec {
                parts,
                missing: match self.on_missing_key {
                    MissingKeySection::Count => MissingKey::Count,
                    MissingKeySection::Skip => MissingKey::Skip,
                },
            },
            counting,
            match self.algorithm {
                AlgorithmSection::SlidingWindow => Algorithm::SlidingWindow,
                AlgorithmSection::TokenBucket => Algorithm::TokenBucket,
            },
            self.limit,
            window * 1000,
            lockout,
            match self.mode {
                ModeSection::Block => Mode::Block,
                ModeSection::Monitor => Mode::Monitor,
            },
            u32::from(self.status),
            body,
            match self.on_store_failure {
                StoreFailureSection::Reject => StoreFailure::Reject,
                StoreFailureSection::Allow => StoreFailure::Allow,
            },
            self.max_keys,
            self.response_headers,
        ))
    }
}

/// Compiles the allowlist entries, each an IP address or a CIDR block.
pub(crate) fn compile_allowlist(entries: &[String]) -> Result<Vec<Cidr>, Error> {
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            Cidr::parse(entry).ok_or_else(|| {
                Error::invalid(
                    format!("limits.allowlist[{index}]"),
                    format!("invalid address or CIDR block {entry:?}, expected such as \"10.0.0.0/8\" or \"2001:db8::/32\""),
                )
            })
        })
        .collect()
}

//! Cross-origin resource sharing (Fetch standard, "CORS protocol"): the
//! module answers preflight requests itself and sets the CORS response
//! headers of allowed origins, so that an origin outside the allowlist is
//! never reflected whatever the application sends.

use crate::config::Object;
use crate::error::Error;
use crate::http::{first_value, is_token, HeaderPairs};
use serde::Deserialize;

/// Default `cors.allowed_methods`: the CORS-safelisted methods.
pub const DEFAULT_ALLOWED_METHODS: &[&str] = &["GET", "HEAD", "POST"];

/// Default `cors.max_age` in seconds.
pub const DEFAULT_MAX_AGE: u32 = 600;

/// Maximum `cors.max_age` in seconds. Browsers cap the preflight cache
/// lifetime at two hours (Chromium) or one day (Firefox).
pub const MAX_MAX_AGE: u32 = 86400;

/// Response headers that the CORS policy owns while it is on: the
/// application's copies are removed.
pub const CORS_RESPONSE_HEADERS: &[&str] = &[
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
];

/// The `cors` section of the configuration, as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CorsSection {
    /// Whether the module responds to preflights itself and sets the CORS
    /// response headers. Default false: the application's CORS headers pass
    /// unchanged.
    enabled: bool,
    /// Origins allowed to read responses: a serialized origin such as
    /// `https://app.example.com:8443`, `.example.com` for every `https`
    /// subdomain on the default port, or `*` for every origin (not with
    /// `allow_credentials`). Default empty: no origin is allowed.
    allowed_origins: Vec<String>,
    /// Methods allowed in preflights, HTTP tokens compared
    /// case-sensitively. Default `["GET", "HEAD", "POST"]`.
    allowed_methods: Vec<String>,
    /// Request header names allowed in preflights, case-insensitive.
    /// Default empty.
    allowed_headers: Vec<String>,
    /// Response header names sent in `Access-Control-Expose-Headers`.
    /// Default empty.
    expose_headers: Vec<String>,
    /// Whether `Access-Control-Allow-Credentials: true` is sent. Default
    /// false.
    allow_credentials: bool,
    /// `Access-Control-Max-Age` of preflight responses, in seconds, at most
    /// 86400. Default 600.
    #[cfg_attr(feature = "schema", schemars(range(max = 86400)))]
    max_age: u32,
}

impl Default for CorsSection {
    fn default() -> Self {
        CorsSection {
            enabled: false,
            allowed_origins: Vec::new(),
            allowed_methods: DEFAULT_ALLOWED_METHODS
                .iter()
                .map(|method| method.to_string())
                .collect(),
            allowed_headers: Vec::new(),
            expose_headers: Vec::new(),
            allow_credentials: false,
            max_age: DEFAULT_MAX_AGE,
        }
    }
}

/// The `cors` section wrapped so that only a JSON object is accepted.
pub(crate) type CorsObject = Object<CorsSection>;

/// An entry of `cors.allowed_origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// Every origin, answered with `Access-Control-Allow-Origin: *`.
    Any,
    /// One serialized origin such as `https://app.example.com:8443`, lower-case.
    Exact(String),
    /// Every `https` origin on the default port whose host ends with this
    /// lower-case text, which starts with a dot (`.example.com`).
    Suffix(String),
}

impl OriginPattern {
    /// Tells whether a lower-case serialized origin matches.
    pub fn matches(&self, origin: &str) -> bool {
        match self {
            OriginPattern::Any => true,
            OriginPattern::Exact(exact) => origin == exact,
            OriginPattern::Suffix(suffix) => origin
                .strip_prefix("https://")
                .filter(|host| !host.contains(':'))
                .is_some_and(|host| host.len() > suffix.len() && host.ends_with(suffix.as_str())),
        }
    }
}

/// What the CORS policy does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsDecision {
    /// Answer a preflight request locally with this status and these headers.
    Preflight {
        /// 204 for an allowed preflight, 403 otherwise.
        status: u32,
        /// CORS headers of the answer; none for a rejected preflight.
        headers: Vec<(String, String)>,
    },
    /// Let the request go on, and treat its response as described.
    Continue(CorsResponse),
}

/// The CORS part of a response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsResponse {
    /// CORS is off: the application's CORS headers pass unchanged.
    #[default]
    Unmanaged,
    /// CORS is on: the application's [`CORS_RESPONSE_HEADERS`] are removed
    /// and these are set instead.
    Managed {
        /// Headers to add; empty when the request had no allowed origin.
        headers: Vec<(String, String)>,
        /// Whether `Origin` must be in `Vary`, because the answer depends on it.
        vary_origin: bool,
    },
}

/// The compiled CORS policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    enabled: bool,
    origins: Vec<OriginPattern>,
    methods: Vec<String>,
    headers: Vec<String>,
    expose_headers: Vec<String>,
    credentials: bool,
    max_age: u32,
}

impl CorsPolicy {
    /// Checks the `cors` section. `*` together with `allow_credentials` is
    /// rejected, because the Fetch standard forbids that pair and reflecting
    /// every origin with credentials would open the application to every site.
    pub(crate) fn compile(section: &CorsSection) -> Result<Self, Error> {
        let mut origins = Vec::with_capacity(section.allowed_origins.len());
        for (index, entry) in section.allowed_origins.iter().enumerate() {
            let path = format!("cors.allowed_origins[{index}]");
            let pattern = compile_origin(entry, &path)?;
            if pattern == OriginPattern::Any && section.allow_credentials {
                return Err(Error::invalid(
                    path,
                    "\"*\" cannot be combined with \"allow_credentials\": true, list the allowed origins instead",
                ));
            }
            origins.push(pattern);
        }
        if section.max_age > MAX_MAX_AGE {
            return Err(Error::invalid(
                "cors.max_age",
                format!(
                    "must be at most {MAX_MAX_AGE} seconds, got {}",
                    section.max_age
                ),
            ));
        }
        Ok(CorsPolicy {
            enabled: section.enabled,
            origins,
            methods: compile_tokens(&section.allowed_methods, "cors.allowed_methods", false)?,
            headers: compile_tokens(&section.allowed_headers, "cors.allowed_headers", true)?,
            expose_headers: compile_tokens(&section.expose_headers, "cors.expose_headers", true)?,
            credentials: section.allow_credentials,
            max_age: section.max_age,
        })
    }

    /// Tells whether the module handles CORS.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Decides what to do with a request from its headers.
    ///
    /// A preflight is an `OPTIONS` request with `Origin` and
    /// `Access-Control-Request-Method`. It is answered 204 with the allowed
    /// methods and headers when the origin, the method and every requested
    /// header are allowed, and 403 otherwise.
    pub fn decide(&self, headers: &HeaderPairs) -> CorsDecision {
        if !self.enabled {
            return CorsDecision::Continue(CorsResponse::Unmanaged);
        }
        let origin = self.allowed_origin(headers);
        let is_options = first_value(headers, ":method").is_some_and(|method| method == b"OPTIONS");
        let requested_method = first_value(headers, "access-control-request-method");
        let has_origin = first_value(headers, "origin").is_some();
        if let (true, true, Some(method)) = (is_options, has_origin, requested_method) {
            return self.preflight(origin, method, headers);
        }
        let mut response_headers = Vec::new();
        if let Some(origin) = origin {
            response_headers.extend(self.origin_headers(origin));
            if !self.expose_headers.is_empty() {
                response_headers.push((
                    "access-control-expose-headers".to_string(),
                    self.expose_headers.join(", "),
                ));
            }
        }
        CorsDecision::Continue(CorsResponse::Managed {
            headers: response_headers,
            vary_origin: !self.answers_any_origin(),
        })
    }

    fn preflight(
        &self,
        origin: Option<String>,
        method: &[u8],
        headers: &HeaderPairs,
    ) -> CorsDecision {
        let method_allowed = self
            .methods
            .iter()
            .any(|allowed| allowed.as_bytes() == method.trim_ascii());
        let headers_allowed = headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("access-control-request-headers"))
            .flat_map(|(_, value)| value.split(|&byte| byte == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|name| !name.is_empty())
            .all(|name| {
                self.headers
                    .iter()
                    .any(|allowed| allowed.as_bytes().eq_ignore_ascii_case(name))
            });
        let Some(origin) = origin.filter(|_| method_allowed && headers_allowed) else {
            return CorsDecision::Preflight {
                status: 403,
                headers: Vec::new(),
            };
        };
        let mut answer = self.origin_headers(origin);
        answer.push((
            "access-control-allow-methods".to_string(),
            self.methods.join(", "),
        ));
        if !self.headers.is_empty() {
            answer.push((
                "access-control-allow-headers".to_string(),
                self.headers.join(", "),
            ));
        }
        answer.push((
            "access-control-max-age".to_string(),
            self.max_age.to_string(),
        ));
        if !self.answers_any_origin() {
            answer.push(("vary".to_string(), "Origin".to_string()));
        }
        CorsDecision::Preflight {
            status: 204,
            headers: answer,
        }
    }

    /// Returns the request's origin as it will be reflected, or `*`, when the
    /// request has exactly one `Origin` header and it is allowed.
    fn allowed_origin(&self, headers: &HeaderPairs) -> Option<String> {
        let mut origins = headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("origin"));
        let (_, raw) = origins.next()?;
        if origins.next().is_some() {
            return None;
        }
        if self.answers_any_origin() {
            return Some("*".to_string());
        }
        let origin = std::str::from_utf8(raw).ok()?.trim();
        if !is_serialized_origin(origin) {
            return None;
        }
        let lower = origin.to_ascii_lowercase();
        self.origins
            .iter()
            .any(|pattern| pattern.matches(&lower))
            .then(|| origin.to_string())
    }

    fn origin_headers(&self, origin: String) -> Vec<(String, String)> {
        let mut headers = vec![("access-control-allow-origin".to_string(), origin)];
        if self.credentials {
            headers.push((
                "access-control-allow-credentials".to_string(),
                "true".to_string(),
            ));
        }
        headers
    }

    fn answers_any_origin(&self) -> bool {
        self.origins.contains(&OriginPattern::Any)
    }
}

/// Tells whether `text` is a serialized origin `scheme://host[:port]` with
/// scheme `http` or `https` and nothing after the authority.
fn is_serialized_origin(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let Some(authority) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((address, "")) => (address, None),
            Some((address, after)) => match after.strip_prefix(':') {
                Some(port) => (address, Some(port)),
                None => return false,
            },
            None => return false,
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port_valid = port.is_none_or(|port| port.parse::<u16>().is_ok());
    let host_valid = !host.is_empty()
        && host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-.:".contains(&byte));
    port_valid && host_valid
}

fn compile_origin(entry: &str, path: &str) -> Result<OriginPattern, Error> {
    if entry == "*" {
        return Ok(OriginPattern::Any);
    }
    let lower = entry.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix('.') {
        let valid = !rest.is_empty()
            && rest.contains('.')
            && rest
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.');
        if !valid {
            return Err(Error::invalid(
                path,
                format!("invalid origin suffix {entry:?}, expected a domain after the dot such as \".example.com\""),
            ));
        }
        return Ok(OriginPattern::Suffix(lower));
    }
    if lower == "null" || !is_serialized_origin(&lower) {
        return Err(Error::invalid(
            path,
            format!(
                "invalid origin {entry:?}, expected \"https://host[:port]\", \".domain\" or \"*\""
            ),
        ));
    }
    // Browsers leave the default port out of the origins they send.
    if let Some(bare) = lower
        .strip_suffix(":443")
        .filter(|_| lower.starts_with("https://"))
        .or_else(|| {
            lower
                .strip_suffix(":80")
                .filter(|_| lower.starts_with("http://"))
        })
    {
        return Err(Error::invalid(
            path,
            format!("origin {entry:?} never matches, because browsers send it without the default port; write it as {bare:?}"),
        ));
    }
    Ok(OriginPattern::Exact(lower))
}

/// Methods that browsers send in upper case whatever case a script wrote
/// them in (the Fetch standard's normalization; `PATCH` is not among them).
const STANDARD_METHODS: &[&str] = &["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];

/// Checks a list of HTTP tokens. Header names are lower-cased; methods are
/// case-sensitive (RFC 9110, section 9.1) and kept as written.
fn compile_tokens(entries: &[String], path: &str, lower: bool) -> Result<Vec<String>, Error> {
    let mut tokens = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        if !is_token(entry) {
            return Err(Error::invalid(
                format!("{path}[{index}]"),
                format!("invalid token {entry:?}, expected a method or header name"),
            ));
        }
        let token = if lower {
            entry.to_ascii_lowercase()
        } else {
            entry.clone()
        };
        // Browsers send the standard methods in upper case, and methods
        // compare case-sensitively, so a lower-case spelling never matches.
        let upper = entry.to_ascii_uppercase();
        if !lower && upper != *entry && STANDARD_METHODS.contains(&upper.as_str()) {
            return Err(Error::invalid(
                format!("{path}[{index}]"),
                format!("method {entry:?} never matches, because methods are case-sensitive and browsers send {upper:?}"),
            ));
        }
        if !tokens.contains(&token) {
            tokens.push(token);
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_from(json: &str) -> CorsPolicy {
        let section: CorsSection = match serde_json::from_str(json) {
            Ok(section) => section,
            Err(error) => panic!("{error}"),
        };
        match CorsPolicy::compile(&section) {
            Ok(policy) => policy,
            Err(error) => panic!("{error}"),
        }
    }

    fn compile_error(json: &str) -> String {
        let section: CorsSection = match serde_json::from_str(json) {
            Ok(section) => section,
            Err(error) => panic!("{error}"),
        };
        match CorsPolicy::compile(&section) {
            Ok(_) => panic!("{json} was accepted"),
            Err(error) => error.to_string(),
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect()
    }

    const POLICY: &str = r#"{
        "enabled": true,
        "allowed_origins": ["https://app.example.com", ".example.org"],
        "allowed_methods": ["GET", "PUT"],
        "allowed_headers": ["Content-Type", "x-token"],
        "expose_headers": ["x-request-id"],
        "allow_credentials": true,
        "max_age": 300
    }"#;

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    #[test]
    fn disabled_policy_is_unmanaged() {
        let policy = policy_from("{}");
        let headers = pairs(&[(":method", "OPTIONS"), ("origin", "https://a.example")]);
        assert_eq!(
            policy.decide(&headers),
            CorsDecision::Continue(CorsResponse::Unmanaged)
        );
    }

    #[test]
    fn allowed_origin_reflected_with_credentials() {
        let policy = policy_from(POLICY);
        let headers = pairs(&[(":method", "GET"), ("origin", "https://app.example.com")]);
        let CorsDecision::Continue(CorsResponse::Managed {
            headers,
            vary_origin,
        }) = policy.decide(&headers)
        else {
            panic!("not managed");
        };
        assert!(vary_origin);
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(
            header(&headers, "access-control-allow-credentials"),
            Some("true")
        );
        assert_eq!(
            header(&headers, "access-control-expose-headers"),
            Some("x-request-id")
        );
    }

    #[test]
    fn disallowed_origin_never_reflected() {
        let policy = policy_from(POLICY);
        for origin in [
            "https://evil.com",
            "https://app.example.com.evil.com",
            "https://evilapp.example.com",
            "http://app.example.com",
            "https://example.org",
            "https://x.example.org:8443",
            "http://x.example.org",
            "null",
            "https://app.example.com/path",
        ] {
            let headers = pairs(&[(":method", "GET"), ("origin", origin)]);
            assert_eq!(
                policy.decide(&headers),
                CorsDecision::Continue(CorsResponse::Managed {
                    headers: Vec::new(),
                    vary_origin: true
                }),
                "{origin}"
            );
        }
    }

    #[test]
    fn suffix_matches_subdomains() {
        let pattern = OriginPattern::Suffix(".example.org".to_string());
        assert!(pattern.matches("https://a.example.org"));
        assert!(pattern.matches("https://a.b.example.org"));
        assert!(!pattern.matches("https://example.org"));
        assert!(!pattern.matches("https://aexample.org"));
        assert!(!pattern.matches("https://a.example.org.evil"));
    }

    #[test]
    fn two_origin_headers_not_allowed() {
        let policy = policy_from(POLICY);
        let headers = pairs(&[
            ("origin", "https://app.example.com"),
            ("origin", "https://app.example.com"),
        ]);
        let CorsDecision::Continue(CorsResponse::Managed { headers, .. }) = policy.decide(&headers)
        else {
            panic!("not managed");
        };
        assert!(headers.is_empty());
    }

    #[test]
    fn preflight_allowed() {
        let policy = policy_from(POLICY);
        let headers = pairs(&[
            (":method", "OPTIONS"),
            ("origin", "https://a.example.org"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "content-type, X-Token"),
        ]);
        let CorsDecision::Preflight { status, headers } = policy.decide(&headers) else {
            panic!("not a preflight");
        };
        assert_eq!(status, 204);
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some("https://a.example.org")
        );
        assert_eq!(
            header(&headers, "access-control-allow-methods"),
            Some("GET, PUT")
        );
        assert_eq!(
            header(&headers, "access-control-allow-headers"),
            Some("content-type, x-token")
        );
        assert_eq!(header(&headers, "access-control-max-age"), Some("300"));
        assert_eq!(header(&headers, "vary"), Some("Origin"));
    }

    #[test]
    fn preflight_rejected() {
        let policy = policy_from(POLICY);
        let cases = [
            ("https://evil.com", "GET", ""),
            ("https://app.example.com", "DELETE", ""),
            ("https://app.example.com", "put", ""),
            ("https://app.example.com", "GET", "x-admin"),
        ];
        for (origin, method, requested) in cases {
            let headers = pairs(&[
                (":method", "OPTIONS"),
                ("origin", origin),
                ("access-control-request-method", method),
                ("access-control-request-headers", requested),
            ]);
            assert_eq!(
                policy.decide(&headers),
                CorsDecision::Preflight {
                    status: 403,
                    headers: Vec::new()
                },
                "{origin} {method} {requested}"
            );
        }
    }

    #[test]
    fn options_without_request_method_is_not_preflight() {
        let policy = policy_from(POLICY);
        let headers = pairs(&[
            (":method", "OPTIONS"),
            ("origin", "https://app.example.com"),
        ]);
        assert!(matches!(policy.decide(&headers), CorsDecision::Continue(_)));
    }

    #[test]
    fn wildcard_answers_star_without_vary() {
        let policy = policy_from(r#"{"enabled": true, "allowed_origins": ["*"]}"#);
        let headers = pairs(&[("origin", "https://anyone.example")]);
        assert_eq!(
            policy.decide(&headers),
            CorsDecision::Continue(CorsResponse::Managed {
                headers: vec![("access-control-allow-origin".to_string(), "*".to_string())],
                vary_origin: false
            })
        );
    }

    #[test]
    fn rejects_bad_configuration() {
        let cases = [
            (
                r#"{"allowed_origins": ["https://a.example.com:443"]}"#,
                "cors.allowed_origins[0]: origin \"https://a.example.com:443\" never matches",
            ),
            (
                r#"{"allowed_origins": ["*"], "allowed_methods": ["get"]}"#,
                "cors.allowed_methods[0]: method \"get\" never matches",
            ),
            (
                r#"{"allowed_origins": ["*"], "allow_credentials": true}"#,
                "cors.allowed_origins[0]: \"*\" cannot be combined",
            ),
            (
                r#"{"allowed_origins": ["https://a.example", "example.com"]}"#,
                "cors.allowed_origins[1]: invalid origin",
            ),
            (
                r#"{"allowed_origins": ["null"]}"#,
                "cors.allowed_origins[0]: invalid origin",
            ),
            (
                r#"{"allowed_origins": ["https://a.example/"]}"#,
                "cors.allowed_origins[0]: invalid origin",
            ),
            (
                r#"{"allowed_origins": ["."]}"#,
                "cors.allowed_origins[0]: invalid origin suffix",
            ),
            (
                r#"{"allowed_origins": [".com"]}"#,
                "cors.allowed_origins[0]: invalid origin suffix",
            ),
            (
                r#"{"allowed_methods": ["GET", "P UT"]}"#,
                "cors.allowed_methods[1]: invalid token",
            ),
            (r#"{"max_age": 86401}"#, "cors.max_age: must be at most"),
        ];
        for (json, expected) in cases {
            let message = compile_error(json);
            assert!(message.starts_with(expected), "{json}: {message}");
        }
    }

    #[test]
    fn serialized_origin_forms() {
        assert!(is_serialized_origin("https://a.example"));
        assert!(is_serialized_origin("http://a.example:8080"));
        assert!(is_serialized_origin("https://[2001:db8::1]:443"));
        assert!(!is_serialized_origin("https://a.example:"));
        assert!(!is_serialized_origin("https://a.example:99999"));
        assert!(!is_serialized_origin("ftp://a.example"));
        assert!(!is_serialized_origin("https://"));
        assert!(!is_serialized_origin("https://a b"));
    }
}

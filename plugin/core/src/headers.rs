//! Header hardening: security headers added to responses, headers that leak
//! server details removed from responses, and internal headers stripped from
//! requests before they reach the upstream.

use crate::config::Object;
use crate::error::Error;
use crate::http::{is_token, HeaderPairs};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// Response headers that the plugin adds when the configuration does not
/// override them, with the mode used for each.
pub const DEFAULT_RESPONSE_HEADERS: &[(&str, HeaderMode, &str)] = &[
    (
        "strict-transport-security",
        HeaderMode::Default,
        "max-age=63072000; includeSubDomains",
    ),
    (
        "content-security-policy",
        HeaderMode::Default,
        "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'",
    ),
    ("x-frame-options", HeaderMode::Default, "DENY"),
    (
        "referrer-policy",
        HeaderMode::Default,
        "strict-origin-when-cross-origin",
    ),
    (
        "permissions-policy",
        HeaderMode::Default,
        "camera=(), microphone=(), geolocation=()",
    ),
    (
        "cross-origin-opener-policy",
        HeaderMode::Default,
        "same-origin",
    ),
    (
        "cross-origin-resource-policy",
        HeaderMode::Default,
        "same-origin",
    ),
    ("x-content-type-options", HeaderMode::Set, "nosniff"),
    ("x-xss-protection", HeaderMode::Set, "0"),
    (
        "x-permitted-cross-domain-policies",
        HeaderMode::Default,
        "none",
    ),
    ("x-dns-prefetch-control", HeaderMode::Default, "off"),
    ("origin-agent-cluster", HeaderMode::Default, "?1"),
];

/// Default `remove_response` list. An entry ending in `*` matches every name
/// that starts with the text before it.
pub const DEFAULT_REMOVE_RESPONSE: &[&str] = &[
    "server",
    "x-powered-by",
    "x-aspnet-version",
    "x-aspnetmvc-version",
    "x-generator",
    "x-drupal-cache",
    "x-runtime",
    "x-backend-server",
    "x-envoy-upstream-service-time",
    "x-envoy-*",
];

/// Default `strip_request` list, in the same syntax as `remove_response`.
/// The `x-portcullis-` prefix is reserved for headers that the proxy sets, so
/// a client must not be able to send them.
pub const DEFAULT_STRIP_REQUEST: &[&str] = &["x-portcullis-*"];

/// Headers that no rule may add, replace or remove: changing them would break
/// message framing, and `set-cookie` needs per-cookie handling.
const PROTECTED_HEADERS: &[&str] = &["content-length", "transfer-encoding", "set-cookie"];

/// The treatment of the upstream's copies of a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderMode {
    /// Replace all copies with one copy of the configured value.
    Set,
    /// Add the configured value only when the response has no copy.
    Default,
    /// Remove all copies.
    Remove,
}

/// The `headers` section of the configuration, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HeadersSection {
    enabled: bool,
    response: ResponseHeaderSpecs,
    remove_response: Vec<String>,
    strip_request: Vec<String>,
}

impl Default for HeadersSection {
    fn default() -> Self {
        HeadersSection {
            enabled: true,
            response: ResponseHeaderSpecs::default(),
            remove_response: DEFAULT_REMOVE_RESPONSE
                .iter()
                .map(|s| s.to_string())
                .collect(),
            strip_request: DEFAULT_STRIP_REQUEST
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// One entry of `headers.response`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponseHeaderSpec {
    mode: HeaderMode,
    #[serde(default)]
    value: Option<String>,
}

/// The `headers.response` object with its entries in document order,
/// duplicates included, so that compilation can reject them.
#[derive(Debug, Clone, Default)]
struct ResponseHeaderSpecs(Vec<(String, ResponseHeaderSpec)>);

impl<'de> Deserialize<'de> for ResponseHeaderSpecs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpecsVisitor;

        impl<'de> Visitor<'de> for SpecsVisitor {
            type Value = ResponseHeaderSpecs;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from header name to {\"mode\", \"value\"}")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some((name, spec)) =
                    map.next_entry::<String, Object<ResponseHeaderSpec>>()?
                {
                    entries.push((name, spec.0));
                }
                Ok(ResponseHeaderSpecs(entries))
            }
        }

        deserializer.deserialize_map(SpecsVisitor)
    }
}

/// The compiled effect of a response header rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderAction {
    /// Replace all copies with one copy of this value.
    Set(String),
    /// Add this value only when the response has no copy.
    Default(String),
    /// Remove all copies.
    Remove,
}

/// A compiled response header rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeaderRule {
    /// Lower-case header name.
    pub name: String,
    /// Effect on the header.
    pub action: HeaderAction,
}

/// A header name matcher from `remove_response` or `strip_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamePattern {
    /// Matches one lower-case name.
    Exact(String),
    /// Matches every name that starts with this lower-case text.
    Prefix(String),
}

impl NamePattern {
    /// Tells whether a lower-case header name matches.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Exact(exact) => name == exact,
            NamePattern::Prefix(prefix) => name.starts_with(prefix.as_str()),
        }
    }
}

/// A change to a header map. Hosts apply all removals before any addition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Remove every copy of this lower-case header name.
    Remove(String),
    /// Add one copy of this header.
    Add(String, String),
}

/// The compiled header policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderPolicy {
    enabled: bool,
    response: Vec<ResponseHeaderRule>,
    remove_response: Vec<NamePattern>,
    strip_request: Vec<NamePattern>,
}

impl HeaderPolicy {
    /// Checks the `headers` section and merges `response` over
    /// [`DEFAULT_RESPONSE_HEADERS`]. A `remove_response` or `strip_request`
    /// list that is present replaces its default list.
    pub(crate) fn compile(section: &HeadersSection) -> Result<Self, Error> {
        let mut response: Vec<ResponseHeaderRule> = DEFAULT_RESPONSE_HEADERS
            .iter()
            .map(|(name, mode, value)| ResponseHeaderRule {
                name: name.to_string(),
                action: action_for(*mode, value.to_string()),
            })
            .collect();
        let mut configured: Vec<String> = Vec::new();
        for (raw_name, spec) in &section.response.0 {
            let path = format!("headers.response.{raw_name}");
            let name = check_header_name(raw_name, &path)?;
            if configured.contains(&name) {
                return Err(Error::invalid(
                    path,
                    format!("duplicate header name {name:?}, names are case-insensitive"),
                ));
            }
            let rule = ResponseHeaderRule {
                action: compile_action(spec, &format!("{path}.value"))?,
                name: name.clone(),
            };
            configured.push(name);
            match response
                .iter_mut()
                .find(|existing| existing.name == rule.name)
            {
                Some(existing) => *existing = rule,
                None => response.push(rule),
            }
        }
        Ok(HeaderPolicy {
            enabled: section.enabled,
            response,
            remove_response: compile_patterns(&section.remove_response, "headers.remove_response")?,
            strip_request: compile_patterns(&section.strip_request, "headers.strip_request")?,
        })
    }

    /// Tells whether header hardening is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Returns the response header rules, built-in defaults first.
    pub fn response_rules(&self) -> &[ResponseHeaderRule] {
        &self.response
    }

    /// Returns the `remove_response` patterns.
    pub fn remove_response(&self) -> &[NamePattern] {
        &self.remove_response
    }

    /// Returns the `strip_request` patterns.
    pub fn strip_request(&self) -> &[NamePattern] {
        &self.strip_request
    }

    /// Computes the edits that harden a response header map.
    ///
    /// `remove_response` applies first, then the response rules, so a rule for
    /// a header that `remove_response` also lists puts the configured value
    /// back. The result never leaves two copies of a header that a rule sets,
    /// and it is empty when the policy is off or the map needs no change.
    /// Pseudo-headers and [`PROTECTED_HEADERS`] are never touched.
    pub fn response_edits(&self, headers: &HeaderPairs) -> Vec<HeaderEdit> {
        if !self.enabled {
            return Vec::new();
        }
        let present: Vec<(String, &[u8])> = headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.as_slice()))
            .collect();
        let mut removed = names_matching(
            present.iter().map(|(name, _)| name.as_str()),
            &self.remove_response,
        );
        let mut added: Vec<(String, String)> = Vec::new();
        for rule in &self.response {
            let remaining: Vec<&[u8]> = if removed.contains(&rule.name) {
                Vec::new()
            } else {
                present
                    .iter()
                    .filter(|(name, _)| *name == rule.name)
                    .map(|(_, value)| *value)
                    .collect()
            };
            match &rule.action {
                HeaderAction::Set(value) => {
                    if remaining == [value.as_bytes()] {
                        continue;
                    }
                    if !remaining.is_empty() {
                        removed.push(rule.name.clone());
                    }
                    added.push((rule.name.clone(), value.clone()));
                }
                HeaderAction::Default(value) => {
                    if remaining.is_empty() {
                        added.push((rule.name.clone(), value.clone()));
                    }
                }
                HeaderAction::Remove => {
                    if !remaining.is_empty() {
                        removed.push(rule.name.clone());
                    }
                }
            }
        }
        let removals = removed.into_iter().map(HeaderEdit::Remove);
        let additions = added
            .into_iter()
            .map(|(name, value)| HeaderEdit::Add(name, value));
        removals.chain(additions).collect()
    }

    /// Returns the lower-case names of request headers that `strip_request`
    /// matches, each once, or nothing when the policy is off.
    pub fn request_headers_to_strip(&self, headers: &HeaderPairs) -> Vec<String> {
        if !self.enabled {
            return Vec::new();
        }
        let lower: Vec<String> = headers
            .iter()
            .map(|(name, _)| name.to_ascii_lowercase())
            .collect();
        names_matching(lower.iter().map(String::as_str), &self.strip_request)
    }
}

/// Returns each distinct name that a pattern matches, in order of first
/// appearance, leaving out pseudo-headers and protected headers.
fn names_matching<'a>(
    names: impl Iterator<Item = &'a str>,
    patterns: &[NamePattern],
) -> Vec<String> {
    let mut matched: Vec<String> = Vec::new();
    for name in names {
        let touchable = !name.starts_with(':') && !PROTECTED_HEADERS.contains(&name);
        if touchable
            && patterns.iter().any(|pattern| pattern.matches(name))
            && !matched.iter().any(|seen| seen == name)
        {
            matched.push(name.to_string());
        }
    }
    matched
}

fn action_for(mode: HeaderMode, value: String) -> HeaderAction {
    match mode {
        HeaderMode::Set => HeaderAction::Set(value),
        HeaderMode::Default => HeaderAction::Default(value),
        HeaderMode::Remove => HeaderAction::Remove,
    }
}

fn compile_action(spec: &ResponseHeaderSpec, value_path: &str) -> Result<HeaderAction, Error> {
    match (spec.mode, &spec.value) {
        (HeaderMode::Remove, None) => Ok(HeaderAction::Remove),
        (HeaderMode::Remove, Some(_)) => Err(Error::invalid(
            value_path,
            "must be absent when mode is \"remove\"",
        )),
        (mode, None) => Err(Error::invalid(
            value_path,
            format!(
                "missing, a value is required when mode is {:?}",
                mode_name(mode)
            ),
        )),
        (mode, Some(value)) => {
            check_header_value(value, value_path)?;
            Ok(action_for(mode, value.clone()))
        }
    }
}

fn mode_name(mode: HeaderMode) -> &'static str {
    match mode {
        HeaderMode::Set => "set",
        HeaderMode::Default => "default",
        HeaderMode::Remove => "remove",
    }
}

/// Checks a configured header name and returns it in lower case.
fn check_header_name(raw: &str, path: &str) -> Result<String, Error> {
    if !is_token(raw) {
        return Err(Error::invalid(
            path,
            format!(
                "invalid header name {raw:?}, expected an HTTP token such as \"x-frame-options\""
            ),
        ));
    }
    let name = raw.to_ascii_lowercase();
    if PROTECTED_HEADERS.contains(&name.as_str()) {
        return Err(Error::invalid(
            path,
            format!("header {name:?} cannot be configured because the plugin never changes it"),
        ));
    }
    Ok(name)
}

/// Checks a configured header value: non-empty, no surrounding whitespace, and
/// no control characters other than horizontal tab (RFC 9110, section 5.5).
fn check_header_value(value: &str, path: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::invalid(path, "must not be empty"));
    }
    if value.trim() != value {
        return Err(Error::invalid(
            path,
            format!("invalid header value {value:?}, remove the leading or trailing whitespace"),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Error::invalid(
            path,
            format!("invalid header value {value:?}, control characters such as CR, LF or NUL are not allowed"),
        ));
    }
    Ok(())
}

fn compile_patterns(entries: &[String], path: &str) -> Result<Vec<NamePattern>, Error> {
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let entry_path = format!("{path}[{index}]");
            match entry.strip_suffix('*') {
                Some(prefix) => {
                    if prefix.contains('*') || !is_token(prefix) {
                        return Err(Error::invalid(
                            entry_path,
                            format!("invalid header name pattern {entry:?}, expected a name or a name prefix followed by one \"*\""),
                        ));
                    }
                    Ok(NamePattern::Prefix(prefix.to_ascii_lowercase()))
                }
                None => {
                    if entry.contains('*') {
                        return Err(Error::invalid(
                            entry_path,
                            format!("invalid header name pattern {entry:?}, \"*\" is allowed only at the end"),
                        ));
                    }
                    Ok(NamePattern::Exact(check_header_name(entry, &entry_path)?))
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_from(json: &str) -> HeaderPolicy {
        let section: HeadersSection = match serde_json::from_str(json) {
            Ok(section) => section,
            Err(error) => panic!("{error}"),
        };
        match HeaderPolicy::compile(&section) {
            Ok(policy) => policy,
            Err(error) => panic!("{error}"),
        }
    }

    fn compile_error(json: &str) -> String {
        let section: HeadersSection = match serde_json::from_str(json) {
            Ok(section) => section,
            Err(error) => panic!("{error}"),
        };
        match HeaderPolicy::compile(&section) {
            Ok(_) => panic!("{json} was accepted"),
            Err(error) => error.to_string(),
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect()
    }

    /// Applies edits the way a host does: all removals, then all additions.
    fn apply(headers: &[(String, Vec<u8>)], edits: &[HeaderEdit]) -> Vec<(String, Vec<u8>)> {
        let mut result: Vec<(String, Vec<u8>)> = headers.to_vec();
        for edit in edits {
            if let HeaderEdit::Remove(name) = edit {
                result.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
            }
        }
        for edit in edits {
            if let HeaderEdit::Add(name, value) = edit {
                result.push((name.clone(), value.as_bytes().to_vec()));
            }
        }
        result
    }

    fn values<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Vec<&'a [u8]> {
        headers
            .iter()
            .filter(|(existing, _)| existing == name)
            .map(|(_, value)| value.as_slice())
            .collect()
    }

    #[test]
    fn defaults_harden_bare_response() {
        let policy = policy_from("{}");
        let headers = pairs(&[(":status", "200"), ("content-type", "text/html")]);
        let result = apply(&headers, &policy.response_edits(&headers));
        for (name, _, value) in DEFAULT_RESPONSE_HEADERS {
            assert_eq!(
                values(&result, name),
                vec![value.as_bytes()],
                "header {name}"
            );
        }
        assert_eq!(values(&result, ":status"), vec![&b"200"[..]]);
    }

    #[test]
    fn default_mode_keeps_upstream_value() {
        let policy = policy_from("{}");
        let headers = pairs(&[("x-frame-options", "SAMEORIGIN")]);
        let result = apply(&headers, &policy.response_edits(&headers));
        assert_eq!(values(&result, "x-frame-options"), vec![&b"SAMEORIGIN"[..]]);
    }

    #[test]
    fn set_mode_replaces_all_copies() {
        let policy = policy_from("{}");
        let headers = pairs(&[
            ("x-content-type-options", "sniff"),
            ("X-Content-Type-Options", "nosniff"),
        ]);
        let result = apply(&headers, &policy.response_edits(&headers));
        let count = result
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("x-content-type-options"))
            .count();
        assert_eq!(count, 1);
        assert_eq!(
            values(&result, "x-content-type-options"),
            vec![&b"nosniff"[..]]
        );
    }

    #[test]
    fn set_mode_skips_matching_single_copy() {
        let policy = policy_from("{}");
        let mut headers = pairs(&[
            ("x-content-type-options", "nosniff"),
            ("x-xss-protection", "0"),
        ]);
        for (name, _, value) in DEFAULT_RESPONSE_HEADERS {
            if !headers.iter().any(|(existing, _)| existing == name) {
                headers.push((name.to_string(), value.as_bytes().to_vec()));
            }
        }
        assert_eq!(policy.response_edits(&headers), Vec::new());
    }

    #[test]
    fn removes_leaky_headers() {
        let policy = policy_from("{}");
        let headers = pairs(&[
            ("server", "nginx/1.25"),
            ("x-powered-by", "PHP/8"),
            ("x-envoy-upstream-service-time", "3"),
            ("x-envoy-decorator-operation", "op"),
            ("x-request-id", "abc"),
        ]);
        let edits = policy.response_edits(&headers);
        let result = apply(&headers, &edits);
        assert!(values(&result, "server").is_empty());
        assert!(values(&result, "x-powered-by").is_empty());
        assert!(values(&result, "x-envoy-upstream-service-time").is_empty());
        assert!(values(&result, "x-envoy-decorator-operation").is_empty());
        assert_eq!(values(&result, "x-request-id"), vec![&b"abc"[..]]);
    }

    #[test]
    fn remove_edits_are_distinct() {
        let policy = policy_from("{}");
        let headers = pairs(&[("server", "a"), ("Server", "b")]);
        let removals: Vec<_> = policy
            .response_edits(&headers)
            .into_iter()
            .filter(|edit| matches!(edit, HeaderEdit::Remove(_)))
            .collect();
        assert_eq!(removals, vec![HeaderEdit::Remove("server".to_string())]);
    }

    #[test]
    fn set_cookie_is_never_touched() {
        let policy = policy_from(r#"{"remove_response": ["set-*", "x-*"]}"#);
        let headers = pairs(&[("set-cookie", "a=1"), ("set-cookie", "b=2"), ("x-a", "1")]);
        let result = apply(&headers, &policy.response_edits(&headers));
        assert_eq!(
            values(&result, "set-cookie"),
            vec![&b"a=1"[..], &b"b=2"[..]]
        );
        assert!(values(&result, "x-a").is_empty());
    }

    #[test]
    fn configured_rules_merge_over_defaults() {
        let policy = policy_from(
            r#"{"response": {
                "X-Frame-Options": {"mode": "set", "value": "SAMEORIGIN"},
                "content-security-policy": {"mode": "remove"},
                "x-custom": {"mode": "default", "value": "1"}
            }}"#,
        );
        let rules = policy.response_rules();
        assert_eq!(rules.len(), DEFAULT_RESPONSE_HEADERS.len() + 1);
        let frame = rules.iter().find(|rule| rule.name == "x-frame-options");
        assert_eq!(
            frame.map(|rule| &rule.action),
            Some(&HeaderAction::Set("SAMEORIGIN".to_string()))
        );
        let csp = rules
            .iter()
            .find(|rule| rule.name == "content-security-policy");
        assert_eq!(csp.map(|rule| &rule.action), Some(&HeaderAction::Remove));
        let headers = pairs(&[("content-security-policy", "default-src *")]);
        let result = apply(&headers, &policy.response_edits(&headers));
        assert!(values(&result, "content-security-policy").is_empty());
        assert_eq!(values(&result, "x-custom"), vec![&b"1"[..]]);
    }

    #[test]
    fn rule_puts_back_removed_header() {
        let policy =
            policy_from(r#"{"response": {"server": {"mode": "set", "value": "portcullis"}}}"#);
        let headers = pairs(&[("server", "nginx"), ("server", "apache")]);
        let edits = policy.response_edits(&headers);
        let result = apply(&headers, &edits);
        assert_eq!(values(&result, "server"), vec![&b"portcullis"[..]]);
        let removals = edits
            .iter()
            .filter(|edit| **edit == HeaderEdit::Remove("server".to_string()))
            .count();
        assert_eq!(removals, 1);
    }

    #[test]
    fn disabled_policy_changes_nothing() {
        let policy = policy_from(r#"{"enabled": false}"#);
        let headers = pairs(&[("server", "nginx"), ("x-portcullis-client-ip", "1.2.3.4")]);
        assert!(policy.response_edits(&headers).is_empty());
        assert!(policy.request_headers_to_strip(&headers).is_empty());
    }

    #[test]
    fn strips_internal_request_headers() {
        let policy = policy_from("{}");
        let headers = pairs(&[
            (":path", "/"),
            ("X-Portcullis-Client-Ip", "10.0.0.1"),
            ("x-portcullis-client-ip", "10.0.0.2"),
            ("x-portcullis-user", "admin"),
            ("x-forwarded-for", "1.2.3.4"),
        ]);
        assert_eq!(
            policy.request_headers_to_strip(&headers),
            vec![
                "x-portcullis-client-ip".to_string(),
                "x-portcullis-user".to_string()
            ]
        );
    }

    #[test]
    fn configured_lists_replace_defaults() {
        let policy = policy_from(r#"{"remove_response": ["Via"], "strip_request": []}"#);
        assert_eq!(
            policy.remove_response(),
            &[NamePattern::Exact("via".to_string())]
        );
        assert!(policy.strip_request().is_empty());
    }

    #[test]
    fn default_lists_compile() {
        let policy = policy_from("{}");
        assert_eq!(
            policy.remove_response().len(),
            DEFAULT_REMOVE_RESPONSE.len()
        );
        assert!(policy
            .remove_response()
            .contains(&NamePattern::Prefix("x-envoy-".to_string())));
        assert_eq!(
            policy.strip_request(),
            &[NamePattern::Prefix("x-portcullis-".to_string())]
        );
    }

    #[test]
    fn rejects_bad_response_entries() {
        let cases = [
            (
                r#"{"response": {"bad name": {"mode": "set", "value": "1"}}}"#,
                "headers.response.bad name: invalid header name",
            ),
            (
                r#"{"response": {"x-a": {"mode": "set"}}}"#,
                "headers.response.x-a.value: missing",
            ),
            (
                r#"{"response": {"x-a": {"mode": "remove", "value": "1"}}}"#,
                "headers.response.x-a.value: must be absent",
            ),
            (
                r#"{"response": {"x-a": {"mode": "set", "value": "a\r\nb: c"}}}"#,
                "headers.response.x-a.value: invalid header value",
            ),
            (
                r#"{"response": {"x-a": {"mode": "default", "value": ""}}}"#,
                "headers.response.x-a.value: must not be empty",
            ),
            (
                r#"{"response": {"x-a": {"mode": "set", "value": " 1"}}}"#,
                "headers.response.x-a.value: invalid header value",
            ),
            (
                r#"{"response": {"Set-Cookie": {"mode": "remove"}}}"#,
                "headers.response.Set-Cookie: header \"set-cookie\" cannot be configured",
            ),
            (
                r#"{"response": {"x-a": {"mode": "remove"}, "X-A": {"mode": "remove"}}}"#,
                "headers.response.X-A: duplicate header name \"x-a\"",
            ),
            (
                r#"{"response": {"x-a": {"mode": "remove"}, "x-a": {"mode": "remove"}}}"#,
                "headers.response.x-a: duplicate header name",
            ),
        ];
        for (json, expected) in cases {
            let message = compile_error(json);
            assert!(message.starts_with(expected), "{json}: {message}");
        }
    }

    #[test]
    fn rejects_bad_name_patterns() {
        let cases = [
            (
                r#"{"remove_response": ["*"]}"#,
                "headers.remove_response[0]: ",
            ),
            (
                r#"{"remove_response": ["server", "x-*-y"]}"#,
                "headers.remove_response[1]: ",
            ),
            (
                r#"{"remove_response": ["x-**"]}"#,
                "headers.remove_response[0]: ",
            ),
            (
                r#"{"strip_request": [":path"]}"#,
                "headers.strip_request[0]: ",
            ),
            (
                r#"{"strip_request": ["content-length"]}"#,
                "headers.strip_request[0]: ",
            ),
            (r#"{"strip_request": [""]}"#, "headers.strip_request[0]: "),
        ];
        for (json, expected) in cases {
            let message = compile_error(json);
            assert!(message.starts_with(expected), "{json}: {message}");
        }
    }

    #[test]
    fn name_pattern_matching() {
        assert!(NamePattern::Prefix("x-envoy-".to_string()).matches("x-envoy-attempt-count"));
        assert!(!NamePattern::Prefix("x-envoy-".to_string()).matches("x-envoy"));
        assert!(NamePattern::Exact("server".to_string()).matches("server"));
        assert!(!NamePattern::Exact("server".to_string()).matches("server-timing"));
    }
}

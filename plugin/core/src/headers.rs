//! Header hardening: security headers added to responses, headers that leak
//! server details removed from responses, `Set-Cookie` attributes, and the
//! request side (host allowlist, internal headers stripped, the client
//! address forwarded upstream).
//!
//! [`plan_request`] runs on request headers and returns an [`Exchange`] that
//! [`HeaderPolicy::response_edits`] and [`HeaderPolicy::local_reply_headers`]
//! use for the response of the same request.

use crate::client::{ClientAddressPolicy, ClientAddressSection};
use crate::config::Object;
use crate::cookies::{CookiePolicy, CookiesSection};
use crate::cors::{CorsDecision, CorsPolicy, CorsResponse, CORS_RESPONSE_HEADERS};
use crate::error::Error;
use crate::hosts::HostAllowlist;
use crate::http::{dashed, first_value, ip_text, is_token, lower_case, HeaderPairs};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

/// Response headers that the plugin adds when the configuration does not
/// override them, with the mode used for each. Policy headers that an
/// application may tune are `default`; headers with one right value are `set`.
pub const DEFAULT_RESPONSE_HEADERS: &[(&str, HeaderMode, &str)] = &[
    (
        "strict-transport-security",
        HeaderMode::Default,
        "max-age=63072000; includeSubDomains",
    ),
    (
        "content-security-policy",
        HeaderMode::Default,
        "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'",
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
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
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

/// Values used for a `set` or `default` rule written without `value`, for
/// headers that are off by default because they can break pages:
/// cross-origin isolation and caching.
pub const RECOMMENDED_VALUES: &[(&str, &str)] = &[
    ("cross-origin-embedder-policy", "require-corp"),
    ("cache-control", "no-store"),
    ("clear-site-data", "\"cache\", \"cookies\", \"storage\""),
];

/// Default `remove_response` list: the OWASP Secure Headers Project's list of
/// headers that disclose the server stack (`ci/headers_remove.json`, updated
/// 2024-07-19), a few more of the same kind, and every `x-envoy-*` header.
/// An entry ending in `*` matches every name that starts with the text before
/// it.
pub const DEFAULT_REMOVE_RESPONSE: &[&str] = &[
    "$wsep",
    "host-header",
    "k-proxy-request",
    "liferay-portal",
    "oraclecommercecloud-version",
    "pega-host",
    "powered-by",
    "product",
    "server",
    "sourcemap",
    "x-aspnet-version",
    "x-aspnetmvc-version",
    "x-atmosphere-error",
    "x-atmosphere-first-request",
    "x-atmosphere-tracking-id",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-spanid",
    "x-b3-traceid",
    "x-beserver",
    "x-cf-powered-by",
    "x-cms",
    "x-calculatedbetarget",
    "x-cocoon-version",
    "x-content-encoded-by",
    "x-diaginfo",
    "x-envoy-*",
    "x-feserver",
    "x-framework",
    "x-generated-by",
    "x-generator",
    "x-jitsi-release",
    "x-kubernetes-pf-flowschema-ui",
    "x-kubernetes-pf-prioritylevel-uid",
    "x-litespeed-cache",
    "x-litespeed-purge",
    "x-litespeed-tag",
    "x-litespeed-vary",
    "x-litespeed-cache-control",
    "x-mod-pagespeed",
    "x-nextjs-cache",
    "x-nextjs-matched-path",
    "x-nextjs-page",
    "x-nextjs-redirect",
    "x-owa-version",
    "x-old-content-length",
    "x-oneagent-js-injection",
    "x-page-speed",
    "x-php-version",
    "x-powered-by",
    "x-powered-by-plesk",
    "x-powered-cms",
    "x-redirect-by",
    "x-server-powered-by",
    "x-sourcefiles",
    "x-sourcemap",
    "x-turbo-charged-by",
    "x-umbraco-version",
    "x-varnish-backend",
    "x-varnish-server",
    "x-dtagentid",
    "x-dthealthcheck",
    "x-dtinjectedservlet",
    "x-ruxit-js-agent",
    "x-drupal-cache",
    "x-runtime",
    "x-backend-server",
];

/// Default `strip_request` list, in the same syntax as `remove_response`.
/// The `x-portcullis-` prefix is reserved for headers that the proxy sets, so
/// a client must not be able to send them.
pub const DEFAULT_STRIP_REQUEST: &[&str] = &["x-portcullis-*"];

/// Default `host_mismatch_status`: 421 Misdirected Request (RFC 9110,
/// section 15.5.20).
pub const DEFAULT_HOST_MISMATCH_STATUS: u16 = 421;

/// Headers that no rule may add, replace or remove: changing them would break
/// message framing, and `set-cookie` needs per-cookie handling.
const PROTECTED_HEADERS: &[&str] = &["content-length", "transfer-encoding", "set-cookie"];

/// The treatment of the upstream's copies of a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HeadersSection {
    /// Whether header hardening is on: response rules, `remove_response`,
    /// `strip_request`, cookie hardening, the host allowlist and the
    /// forwarded client address. Default true.
    enabled: bool,
    /// Response header rules by header name (case-insensitive, each name
    /// once), merged over the built-in security headers. A rule for a
    /// built-in header replaces it.
    response: ResponseHeaderSpecs,
    /// Response headers removed before the client sees them: names, or a
    /// prefix followed by one `*`. A configured list replaces the built-in
    /// list (the OWASP Secure Headers Project's removal list and
    /// `x-envoy-*`).
    remove_response: Vec<String>,
    /// Response headers removed in addition to `remove_response`, in the
    /// same syntax. Default empty.
    remove_response_extra: Vec<String>,
    /// Request headers removed before the request is forwarded, matched
    /// also when spelled with `_` for `-`, in the syntax of
    /// `remove_response`.
    /// Default `["x-portcullis-*"]`. The client address header is always
    /// removed when it is forwarded.
    strip_request: Vec<String>,
    /// Response rules for paths under a prefix, merged over `response`; the
    /// route with the longest matching prefix applies alone. Default empty.
    routes: Vec<Object<RouteSection>>,
    /// `Set-Cookie` hardening.
    cookies: Object<CookiesSection>,
    /// Sources of the client address and scheme, and forwarding of the
    /// address upstream.
    client_address: Object<ClientAddressSection>,
    /// Hosts that requests may name in `:authority`, compared without port
    /// and case-insensitively: `example.com`, or `.example.com` for its
    /// subdomains. Default empty, which allows every host.
    allowed_hosts: Vec<String>,
    /// Status of the response to a request for a host outside
    /// `allowed_hosts`: 421 (Misdirected Request, the default) or 400.
    #[cfg_attr(feature = "schema", schemars(extend("enum" = [400, 421])))]
    host_mismatch_status: u16,
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
            remove_response_extra: Vec::new(),
            strip_request: DEFAULT_STRIP_REQUEST
                .iter()
                .map(|s| s.to_string())
                .collect(),
            routes: Vec::new(),
            cookies: Object::default(),
            client_address: Object::default(),
            allowed_hosts: Vec::new(),
            host_mismatch_status: DEFAULT_HOST_MISMATCH_STATUS,
        }
    }
}

/// One entry of `headers.routes`, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
struct RouteSection {
    /// Path prefix starting with `/`, compared byte for byte with the
    /// request path after doubled slashes and dot segments are resolved.
    /// Each prefix may appear once.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^/[^\x00-\x1f\x7f]*$")))]
    prefix: String,
    /// Response header rules for the route, merged over
    /// `headers.response`. Default empty.
    #[serde(default)]
    response: ResponseHeaderSpecs,
}

/// One response header rule, as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
struct ResponseHeaderSpec {
    /// `set` replaces the application's copies with one copy of `value`,
    /// `default` adds `value` only when the response has no copy, and
    /// `remove` removes all copies.
    mode: HeaderMode,
    /// Header value. Must be absent with `remove`. Without it, `set` and
    /// `default` use the built-in value of the header, and a header
    /// without one is rejected.
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

/// A JSON object from header name to rule; the parser also rejects a name
/// given twice, which a schema cannot express.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for ResponseHeaderSpecs {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ResponseHeaderSpecs".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Response header rules by header name, an HTTP token compared \
                case-insensitively. Each name may appear once, and `content-length`, \
                `transfer-encoding` and `set-cookie` cannot be configured.",
            "type": "object",
            "propertyNames": {"pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"},
            "additionalProperties": generator.subschema_for::<ResponseHeaderSpec>(),
        })
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

/// Response rules for the paths under one prefix: the global rules with the
/// route's entries merged over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRules {
    /// Path prefix, compared byte for byte with the normalized request path.
    pub prefix: String,
    /// Rules for the route.
    pub rules: Vec<ResponseHeaderRule>,
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

    /// Returns the pattern with every `_` written as `-`.
    fn dashed(self) -> NamePattern {
        match self {
            NamePattern::Exact(exact) => NamePattern::Exact(dashed(&exact).into_owned()),
            NamePattern::Prefix(prefix) => NamePattern::Prefix(dashed(&prefix).into_owned()),
        }
    }

    /// Tells whether every name that `other` matches also matches this.
    fn covers(&self, other: &NamePattern) -> bool {
        match other {
            NamePattern::Exact(name) => self.matches(name),
            NamePattern::Prefix(prefix) => {
                matches!(self, NamePattern::Prefix(own) if prefix.starts_with(own.as_str()))
            }
        }
    }
}

/// A change to a header map. Hosts apply all removals before any addition.
/// Names and values borrow from the policy and the response where they can,
/// because most responses take the same dozen edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit<'a> {
    /// Remove every copy of this lower-case header name.
    Remove(Cow<'a, str>),
    /// Add one copy of this header; the value is bytes because a hardened
    /// `Set-Cookie` keeps the application's bytes.
    Add(Cow<'a, str>, Cow<'a, [u8]>),
}

/// Facts about a request that the hardening of its response needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exchange {
    /// Request path as route rules read it (see [`crate::http::route_path`]).
    pub path: String,
    /// Whether the client reached the first proxy over HTTPS.
    pub https: bool,
    /// The client address, see [`crate::client::client_address`].
    pub client: Option<IpAddr>,
    /// The CORS part of the response.
    pub cors: CorsResponse,
}

/// The reason the module sends a local reply itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyReason {
    /// `:authority` names a host outside `allowed_hosts`.
    HostNotAllowed,
    /// An allowed CORS preflight.
    Preflight,
    /// A CORS preflight for an origin, method or header outside the policy.
    PreflightRejected,
}

/// A local reply decided on the request side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Reason for the reply.
    pub reason: ReplyReason,
    /// HTTP status code.
    pub status: u32,
    /// Headers, security headers included.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// The request-side decisions for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPlan {
    /// Facts for the response.
    pub exchange: Exchange,
    /// A reply to send in place of forwarding the request.
    pub reply: Option<Reply>,
    /// Lower-case names of request headers to remove.
    pub strip: Vec<String>,
    /// Request headers to add after the removals.
    pub add: Vec<(String, String)>,
}

/// The compiled header policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderPolicy {
    enabled: bool,
    response: Vec<ResponseHeaderRule>,
    /// Routes, longest prefix first.
    routes: Vec<RouteRules>,
    remove_response: Vec<NamePattern>,
    strip_request: Vec<NamePattern>,
    cookies: CookiePolicy,
    client: ClientAddressPolicy,
    hosts: HostAllowlist,
}

impl HeaderPolicy {
    /// Checks the `headers` section and merges `response` over
    /// [`DEFAULT_RESPONSE_HEADERS`], and each route's `response` over that.
    /// A `remove_response` or `strip_request` list that is present replaces
    /// its default list; `remove_response_extra` adds to `remove_response`.
    pub(crate) fn compile(section: &HeadersSection) -> Result<Self, Error> {
        let defaults: Vec<ResponseHeaderRule> = DEFAULT_RESPONSE_HEADERS
            .iter()
            .map(|(name, mode, value)| ResponseHeaderRule {
                name: name.to_string(),
                action: action_for(*mode, value.to_string()),
            })
            .collect();
        let response = merge_rules(defaults, &section.response, "headers.response")?;
        let mut routes: Vec<RouteRules> = Vec::with_capacity(section.routes.len());
        for (index, route) in section.routes.iter().enumerate() {
            let route = &route.0;
            let path = format!("headers.routes[{index}]");
            if !route.prefix.starts_with('/') || route.prefix.bytes().any(|b| b.is_ascii_control())
            {
                return Err(Error::invalid(
                    format!("{path}.prefix"),
                    format!(
                        "invalid path prefix {:?}, expected a path starting with \"/\"",
                        route.prefix
                    ),
                ));
            }
            // Request paths are decoded and normalized before they are
            // compared, so a prefix that normalizing changes never matches.
            let normalized = crate::http::route_path(route.prefix.as_bytes());
            if normalized != route.prefix && normalized != route.prefix.trim_end_matches('/') {
                return Err(Error::invalid(
                    format!("{path}.prefix"),
                    format!(
                        "path prefix {:?} never matches, because request paths are compared decoded and normalized; write it as {normalized:?}",
                        route.prefix
                    ),
                ));
            }
            if routes
                .iter()
                .any(|existing| existing.prefix == route.prefix)
            {
                return Err(Error::invalid(
                    format!("{path}.prefix"),
                    format!("duplicate path prefix {:?}", route.prefix),
                ));
            }
            routes.push(RouteRules {
                prefix: route.prefix.clone(),
                rules: merge_rules(
                    response.clone(),
                    &route.response,
                    &format!("{path}.response"),
                )?,
            });
        }
        routes.sort_by_key(|route| std::cmp::Reverse(route.prefix.len()));

        let mut remove_response =
            compile_patterns(&section.remove_response, "headers.remove_response")?;
        remove_response.extend(compile_patterns(
            &section.remove_response_extra,
            "headers.remove_response_extra",
        )?);
        let client = ClientAddressPolicy::compile(&section.client_address.0)?;
        // Request names are matched with `_` read as `-` (see
        // `request_headers_to_strip`), so the patterns are folded the same way.
        let mut strip_request: Vec<NamePattern> =
            compile_patterns(&section.strip_request, "headers.strip_request")?
                .into_iter()
                .map(NamePattern::dashed)
                .collect();
        // The host routes the request: Envoy keeps it in `:authority`, and
        // nginx would lose the client's `Host`.
        if let Some(index) = strip_request
            .iter()
            .position(|pattern| pattern.matches("host"))
        {
            return Err(Error::invalid(
                format!("headers.strip_request[{index}]"),
                "the host header cannot be stripped: it routes the request",
            ));
        }
        let client_header = NamePattern::Exact(client.header().to_string()).dashed();
        let header_stripped = strip_request
            .iter()
            .any(|pattern| pattern.covers(&client_header));
        if client.forward() && !header_stripped {
            strip_request.push(client_header);
        }
        Ok(HeaderPolicy {
            enabled: section.enabled,
            response,
            routes,
            remove_response,
            strip_request,
            cookies: CookiePolicy::compile(&section.cookies.0)?,
            client,
            hosts: HostAllowlist::compile(&section.allowed_hosts, section.host_mismatch_status)?,
        })
    }

    /// Tells whether header hardening is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Returns the global response header rules, built-in defaults first.
    pub fn response_rules(&self) -> &[ResponseHeaderRule] {
        &self.response
    }

    /// Returns the rules for a normalized path: those of the route with the
    /// longest matching prefix, or the global rules.
    pub fn rules_for(&self, path: &str) -> &[ResponseHeaderRule] {
        self.routes
            .iter()
            .find(|route| path.starts_with(route.prefix.as_str()))
            .map_or(&self.response, |route| &route.rules)
    }

    /// Returns the names of every response rule, global and per route, when
    /// header hardening is on.
    pub(crate) fn rule_names(&self) -> impl Iterator<Item = &str> {
        let routes = self.routes.iter().flat_map(|route| &route.rules);
        self.response
            .iter()
            .chain(routes)
            .filter(|_| self.enabled)
            .map(|rule| rule.name.as_str())
    }

    /// Returns the `remove_response` patterns, `remove_response_extra`
    /// included.
    pub fn remove_response(&self) -> &[NamePattern] {
        &self.remove_response
    }

    /// Returns the `strip_request` patterns, with the client address header
    /// added when it is forwarded.
    pub fn strip_request(&self) -> &[NamePattern] {
        &self.strip_request
    }

    /// Returns the client address policy, which other controls use to find
    /// the client of a request.
    pub fn client_address(&self) -> &ClientAddressPolicy {
        &self.client
    }

    /// Computes the edits that harden a response header map.
    ///
    /// `remove_response` applies first, then the route's response rules, so a
    /// rule for a header that `remove_response` also lists puts the
    /// configured value back. Then each `Set-Cookie` gets its attributes, and
    /// the CORS headers of `exchange` replace the application's. The result
    /// never adds a header twice nor beside a copy the application sent, and
    /// it is empty when nothing needs to change. Pseudo-headers and
    /// [`PROTECTED_HEADERS`] are never touched by rules.
    pub fn response_edits<'a>(
        &'a self,
        headers: &'a HeaderPairs,
        exchange: &Exchange,
    ) -> Vec<HeaderEdit<'a>> {
        let present: Vec<(Cow<'a, str>, &'a [u8])> = headers
            .iter()
            .map(|(name, value)| (lower_case(name), value.as_slice()))
            .collect();
        let mut removed: Vec<Cow<'a, str>> = Vec::new();
        let mut added: Vec<(Cow<'a, str>, Cow<'a, [u8]>)> = Vec::new();
        if self.enabled {
            for (name, _) in &present {
                if is_removable(name, &self.remove_response) {
                    removed.push(name.clone());
                }
            }
            self.rule_edits(&present, exchange, &mut removed, &mut added);
            self.cookie_edits(&present, exchange.https, &mut removed, &mut added);
        }
        cors_edits(&present, &exchange.cors, &mut removed, &mut added);

        let mut edits: Vec<HeaderEdit<'a>> = Vec::with_capacity(removed.len() + added.len());
        for name in removed {
            let seen = edits
                .iter()
                .any(|edit| matches!(edit, HeaderEdit::Remove(earlier) if *earlier == name));
            if !seen {
                edits.push(HeaderEdit::Remove(name));
            }
        }
        for (name, value) in added {
            // Each cookie is its own header, and any other name is added once.
            let seen = name != "set-cookie"
                && edits
                    .iter()
                    .any(|edit| matches!(edit, HeaderEdit::Add(earlier, _) if *earlier == name));
            if !seen {
                edits.push(HeaderEdit::Add(name, value));
            }
        }
        edits
    }

    fn rule_edits<'a>(
        &'a self,
        present: &[(Cow<'a, str>, &'a [u8])],
        exchange: &Exchange,
        removed: &mut Vec<Cow<'a, str>>,
        added: &mut Vec<(Cow<'a, str>, Cow<'a, [u8]>)>,
    ) {
        for rule in self.rules_for(&exchange.path) {
            let name = Cow::Borrowed(rule.name.as_str());
            let remaining: Vec<&[u8]> = if removed.contains(&name) {
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
                        removed.push(name.clone());
                    }
                    added.push((name, Cow::Borrowed(value.as_bytes())));
                }
                HeaderAction::Default(value) => {
                    // Browsers read an empty policy header as none, so an
                    // empty value from the application is replaced.
                    if remaining.iter().all(|value| value.trim_ascii().is_empty()) {
                        if !remaining.is_empty() {
                            removed.push(name.clone());
                        }
                        added.push((name, Cow::Borrowed(value.as_bytes())));
                    }
                }
                HeaderAction::Remove => {
                    if !remaining.is_empty() {
                        removed.push(name);
                    }
                }
            }
        }
    }

    /// Replaces the `Set-Cookie` headers with their hardened forms, in the
    /// same order and one header per cookie, when at least one changes.
    fn cookie_edits<'a>(
        &self,
        present: &[(Cow<'a, str>, &'a [u8])],
        https: bool,
        removed: &mut Vec<Cow<'a, str>>,
        added: &mut Vec<(Cow<'a, str>, Cow<'a, [u8]>)>,
    ) {
        let cookies: Vec<&'a [u8]> = present
            .iter()
            .filter(|(name, _)| name == "set-cookie")
            .map(|(_, value)| *value)
            .collect();
        let hardened: Vec<Option<Vec<u8>>> = cookies
            .iter()
            .map(|value| self.cookies.harden(value, https))
            .collect();
        if hardened.iter().all(Option::is_none) {
            return;
        }
        removed.push(Cow::Borrowed("set-cookie"));
        for (original, changed) in cookies.into_iter().zip(hardened) {
            let value = changed.map_or(Cow::Borrowed(original), Cow::Owned);
            added.push((Cow::Borrowed("set-cookie"), value));
        }
    }

    /// Returns the security headers for a reply that the module sends itself:
    /// every `set` and `default` value of the route's rules, and the CORS
    /// headers of `exchange`, leaving out names that `existing` already has.
    /// Such a reply does not pass through the response callbacks, in Envoy
    /// as in host-test, so these headers are added when it is built.
    pub fn local_reply_headers(
        &self,
        exchange: &Exchange,
        existing: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = Vec::new();
        let has = |headers: &[(String, String)], name: &str| {
            existing
                .iter()
                .any(|(key, _)| key.eq_ignore_ascii_case(name))
                || headers.iter().any(|(key, _)| key == name)
        };
        if self.enabled {
            for rule in self.rules_for(&exchange.path) {
                let value = match &rule.action {
                    HeaderAction::Set(value) | HeaderAction::Default(value) => value,
                    HeaderAction::Remove => continue,
                };
                if !has(&headers, &rule.name) {
                    headers.push((rule.name.clone(), value.clone()));
                }
            }
        }
        if let CorsResponse::Managed {
            headers: cors,
            vary_origin,
        } = &exchange.cors
        {
            for (name, value) in cors {
                if !has(&headers, name) {
                    headers.push((name.clone(), value.clone()));
                }
            }
            if *vary_origin && !has(&headers, "vary") {
                headers.push(("vary".to_string(), "Origin".to_string()));
            }
        }
        headers
    }

    /// Returns the lower-case names of request headers that `strip_request`
    /// matches, each once, or nothing when the policy is off.
    pub fn request_headers_to_strip(&self, headers: &HeaderPairs) -> Vec<String> {
        if !self.enabled {
            return Vec::new();
        }
        // A name spelled with underscores is matched as its dashed form,
        // because CGI-style servers read both as the same variable.
        let mut matched: Vec<String> = Vec::new();
        for (name, _) in headers {
            let lower = lower_case(name);
            if is_removable(&dashed(&lower), &self.strip_request)
                && !matched.iter().any(|seen| *seen == *lower)
            {
                matched.push(lower.into_owned());
            }
        }
        matched
    }
}

/// Decides the request side of one request.
///
/// In order: the host allowlist (a request for another host is answered
/// `host_mismatch_status`), CORS (a preflight is answered 204 or 403), then
/// the request headers to strip and the client address header to add. A
/// reply carries the security headers, because no response callback runs for
/// it. `source` is the connection's peer, the `source.address` property.
pub fn plan_request(
    policy: &HeaderPolicy,
    cors: &CorsPolicy,
    headers: &HeaderPairs,
    source: Option<IpAddr>,
) -> RequestPlan {
    let raw_path = first_value(headers, ":path").unwrap_or(b"/");
    let mut exchange = Exchange {
        path: crate::http::route_path(raw_path),
        https: policy.client.is_https(headers),
        client: policy.client.client_address(headers, source),
        cors: CorsResponse::Unmanaged,
    };
    let mut plan_reply = None;
    if policy.enabled && !policy.hosts.allows(headers) {
        let body = br#"{"error":"host_not_allowed"}"#.to_vec();
        plan_reply = Some((
            ReplyReason::HostNotAllowed,
            policy.hosts.status(),
            Vec::new(),
            body,
        ));
    } else {
        match cors.decide(headers) {
            CorsDecision::Preflight { status, headers } => {
                let reason = if status == 204 {
                    ReplyReason::Preflight
                } else {
                    ReplyReason::PreflightRejected
                };
                let body = if status == 204 {
                    Vec::new()
                } else {
                    br#"{"error":"cors_rejected"}"#.to_vec()
                };
                plan_reply = Some((reason, status, headers, body));
            }
            CorsDecision::Continue(response) => exchange.cors = response,
        }
    }
    let reply = plan_reply.map(|(reason, status, mut reply_headers, body)| {
        if !body.is_empty() {
            reply_headers.push(("content-type".to_string(), "application/json".to_string()));
        }
        let existing: Vec<(&str, &str)> = reply_headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let extra = policy.local_reply_headers(&exchange, &existing);
        reply_headers.extend(extra);
        Reply {
            reason,
            status,
            headers: reply_headers,
            body,
        }
    });
    let strip = policy.request_headers_to_strip(headers);
    let mut add = Vec::new();
    if policy.enabled && policy.client.forward() {
        if let Some(client) = exchange.client {
            add.push((policy.client.header().to_string(), ip_text(client)));
        }
    }
    RequestPlan {
        exchange,
        reply,
        strip,
        add,
    }
}

/// Removes the application's CORS headers and adds the policy's, with
/// `Origin` merged into one `Vary` header.
fn cors_edits<'a>(
    present: &[(Cow<'a, str>, &'a [u8])],
    cors: &CorsResponse,
    removed: &mut Vec<Cow<'a, str>>,
    added: &mut Vec<(Cow<'a, str>, Cow<'a, [u8]>)>,
) {
    let CorsResponse::Managed {
        headers,
        vary_origin,
    } = cors
    else {
        return;
    };
    for name in CORS_RESPONSE_HEADERS {
        if present.iter().any(|(existing, _)| existing == name) {
            removed.push(Cow::Borrowed(name));
        }
    }
    for (name, value) in headers {
        added.push((
            Cow::Owned(name.clone()),
            Cow::Owned(value.as_bytes().to_vec()),
        ));
    }
    if !vary_origin {
        return;
    }
    let vary: Vec<&[u8]> = present
        .iter()
        .filter(|(name, _)| name == "vary")
        .map(|(_, value)| *value)
        .collect();
    let covered = vary
        .iter()
        .flat_map(|value| value.split(|&byte| byte == b','))
        .map(<[u8]>::trim_ascii)
        .any(|token| token == b"*" || token.eq_ignore_ascii_case(b"origin"));
    if covered {
        return;
    }
    let mut merged: Vec<u8> = Vec::new();
    for value in vary
        .iter()
        .map(|value| value.trim_ascii())
        .filter(|v| !v.is_empty())
    {
        merged.extend_from_slice(value);
        merged.extend_from_slice(b", ");
    }
    merged.extend_from_slice(b"Origin");
    if !vary.is_empty() {
        removed.push(Cow::Borrowed("vary"));
    }
    added.push((Cow::Borrowed("vary"), Cow::Owned(merged)));
}

/// Normalizes a request path for route matching: repeated slashes become
/// one and `.` and `..` segments are resolved (RFC 3986, section 5.2.4), so
/// `//account/` and `/x/../account` match the `/account` route.
pub fn normalize_path(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut segments: Vec<&str> = Vec::new();
    for segment in text.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut path = String::with_capacity(text.len() + 1);
    for segment in &segments {
        path.push('/');
        path.push_str(segment);
    }
    let ends_in_directory = text.ends_with('/') || text.ends_with("/.") || text.ends_with("/..");
    if path.is_empty() || ends_in_directory {
        path.push('/');
    }
    path
}

/// Merges configured rules over `base`, checking each entry.
fn merge_rules(
    mut base: Vec<ResponseHeaderRule>,
    specs: &ResponseHeaderSpecs,
    path: &str,
) -> Result<Vec<ResponseHeaderRule>, Error> {
    let mut configured: Vec<String> = Vec::new();
    for (raw_name, spec) in &specs.0 {
        let entry_path = format!("{path}.{raw_name}");
        let name = check_header_name(raw_name, &entry_path)?;
        if configured.contains(&name) {
            return Err(Error::invalid(
                entry_path,
                format!("duplicate header name {name:?}, names are case-insensitive"),
            ));
        }
        let rule = ResponseHeaderRule {
            action: compile_action(&name, spec, &format!("{entry_path}.value"))?,
            name: name.clone(),
        };
        configured.push(name);
        match base.iter_mut().find(|existing| existing.name == rule.name) {
            Some(existing) => *existing = rule,
            None => base.push(rule),
        }
    }
    Ok(base)
}

/// Returns whether a pattern matches `name` and the header may be removed.
/// Pseudo-headers and protected headers never may.
fn is_removable(name: &str, patterns: &[NamePattern]) -> bool {
    !name.starts_with(':')
        && !PROTECTED_HEADERS.contains(&name)
        && patterns.iter().any(|pattern| pattern.matches(name))
}

fn action_for(mode: HeaderMode, value: String) -> HeaderAction {
    match mode {
        HeaderMode::Set => HeaderAction::Set(value),
        HeaderMode::Default => HeaderAction::Default(value),
        HeaderMode::Remove => HeaderAction::Remove,
    }
}

/// Returns the value used for a rule written without one: the built-in
/// default or the recommended value of a known header.
fn known_value(name: &str) -> Option<&'static str> {
    DEFAULT_RESPONSE_HEADERS
        .iter()
        .find(|(known, _, _)| *known == name)
        .map(|(_, _, value)| *value)
        .or_else(|| {
            RECOMMENDED_VALUES
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, value)| *value)
        })
}

fn compile_action(
    name: &str,
    spec: &ResponseHeaderSpec,
    value_path: &str,
) -> Result<HeaderAction, Error> {
    match (spec.mode, &spec.value) {
        (HeaderMode::Remove, None) => Ok(HeaderAction::Remove),
        (HeaderMode::Remove, Some(_)) => Err(Error::invalid(
            value_path,
            "must be absent when mode is \"remove\"",
        )),
        (mode, None) => match known_value(name) {
            Some(value) => Ok(action_for(mode, value.to_string())),
            None => Err(Error::invalid(
                value_path,
                format!(
                    "missing, a value is required when mode is {:?} for a header without a built-in value",
                    mode_name(mode)
                ),
            )),
        },
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
                result.push((name.to_string(), value.to_vec()));
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
        let result = apply(
            &headers,
            &policy.response_edits(&headers, &Exchange::default()),
        );
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
        let result = apply(
            &headers,
            &policy.response_edits(&headers, &Exchange::default()),
        );
        assert_eq!(values(&result, "x-frame-options"), vec![&b"SAMEORIGIN"[..]]);
    }

    #[test]
    fn default_mode_replaces_an_empty_value() {
        let policy = policy_from("{}");
        let headers = pairs(&[("x-frame-options", " "), ("content-security-policy", "")]);
        let result = apply(
            &headers,
            &policy.response_edits(&headers, &Exchange::default()),
        );
        assert_eq!(values(&result, "x-frame-options"), vec![&b"DENY"[..]]);
        let csp = values(&result, "content-security-policy");
        assert_eq!(csp.len(), 1);
        assert!(!csp[0].is_empty());
    }

    #[test]
    fn set_mode_replaces_all_copies() {
        let policy = policy_from("{}");
        let headers = pairs(&[
            ("x-content-type-options", "sniff"),
            ("X-Content-Type-Options", "nosniff"),
        ]);
        let result = apply(
            &headers,
            &policy.response_edits(&headers, &Exchange::default()),
        );
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
        assert_eq!(
            policy.response_edits(&headers, &Exchange::default()),
            Vec::new()
        );
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
        let edits = policy.response_edits(&headers, &Exchange::default());
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
            .response_edits(&headers, &Exchange::default())
            .into_iter()
            .filter(|edit| matches!(edit, HeaderEdit::Remove(_)))
            .collect();
        assert_eq!(removals, vec![HeaderEdit::Remove("server".into())]);
    }

    #[test]
    fn remove_patterns_skip_set_cookie() {
        let policy =
            policy_from(r#"{"remove_response": ["set-*", "x-*"], "cookies": {"enabled": false}}"#);
        let headers = pairs(&[("set-cookie", "a=1"), ("set-cookie", "b=2"), ("x-a", "1")]);
        let result = apply(
            &headers,
            &policy.response_edits(&headers, &Exchange::default()),
        );
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
        let result = apply(
            &headers,
            &policy.response_edits(&headers, &Exchange::default()),
        );
        assert!(values(&result, "content-security-policy").is_empty());
        assert_eq!(values(&result, "x-custom"), vec![&b"1"[..]]);
    }

    #[test]
    fn rule_puts_back_removed_header() {
        let policy =
            policy_from(r#"{"response": {"server": {"mode": "set", "value": "portcullis"}}}"#);
        let headers = pairs(&[("server", "nginx"), ("server", "apache")]);
        let edits = policy.response_edits(&headers, &Exchange::default());
        let result = apply(&headers, &edits);
        assert_eq!(values(&result, "server"), vec![&b"portcullis"[..]]);
        let removals = edits
            .iter()
            .filter(|edit| **edit == HeaderEdit::Remove("server".into()))
            .count();
        assert_eq!(removals, 1);
    }

    #[test]
    fn disabled_policy_changes_nothing() {
        let policy = policy_from(r#"{"enabled": false}"#);
        let headers = pairs(&[("server", "nginx"), ("x-portcullis-client-ip", "1.2.3.4")]);
        assert!(policy
            .response_edits(&headers, &Exchange::default())
            .is_empty());
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
    fn strips_underscore_spellings() {
        let policy = policy_from("{}");
        let headers = pairs(&[
            (":path", "/"),
            ("X_Portcullis_User", "admin"),
            ("x_portcullis_user", "admin"),
            ("x-portcullis_client-ip", "10.0.0.1"),
            ("x_forwarded_for", "1.2.3.4"),
        ]);
        assert_eq!(
            policy.request_headers_to_strip(&headers),
            vec![
                "x_portcullis_user".to_string(),
                "x-portcullis_client-ip".to_string()
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
        assert_eq!(
            policy.strip_request(),
            &[NamePattern::Exact("x-portcullis-client-ip".to_string())]
        );
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
                r#"{"routes": [{"prefix": "/a?x=1", "response": {}}]}"#,
                "headers.routes[0].prefix: path prefix \"/a?x=1\" never matches",
            ),
            (
                r#"{"routes": [{"prefix": "//a/../b", "response": {}}]}"#,
                "headers.routes[0].prefix: path prefix \"//a/../b\" never matches",
            ),
            (
                r#"{"strip_request": ["x-a", "host"]}"#,
                "headers.strip_request[1]: the host header cannot be stripped",
            ),
            (
                r#"{"response": {"bad name": {"mode": "set", "value": "1"}}}"#,
                "headers.response.bad name: invalid header name",
            ),
            (
                r#"{"response": {"x-a": {"mode": "set"}}}"#,
                "headers.response.x-a.value: missing",
            ),
            (
                r#"{"routes": [{"prefix": "account"}]}"#,
                "headers.routes[0].prefix: invalid path prefix",
            ),
            (
                r#"{"routes": [{"prefix": "/a"}, {"prefix": "/a"}]}"#,
                "headers.routes[1].prefix: duplicate path prefix",
            ),
            (
                r#"{"routes": [{"prefix": "/a", "response": {"x-a": {"mode": "set"}}}]}"#,
                "headers.routes[0].response.x-a.value: missing",
            ),
            (
                r#"{"remove_response_extra": ["x-*-y"]}"#,
                "headers.remove_response_extra[0]: ",
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

    fn exchange(path: &str, https: bool) -> Exchange {
        Exchange {
            path: path.to_string(),
            https,
            ..Exchange::default()
        }
    }

    fn cors_from(json: &str) -> CorsPolicy {
        let section: crate::cors::CorsSection = match serde_json::from_str(json) {
            Ok(section) => section,
            Err(error) => panic!("{error}"),
        };
        match CorsPolicy::compile(&section) {
            Ok(policy) => policy,
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn value_less_rule_uses_known_value() {
        let policy = policy_from(
            r#"{"response": {
                "cache-control": {"mode": "set"},
                "x-frame-options": {"mode": "set"}
            }}"#,
        );
        let headers = pairs(&[("cache-control", "public, max-age=60")]);
        let result = apply(
            &headers,
            &policy.response_edits(&headers, &Exchange::default()),
        );
        assert_eq!(values(&result, "cache-control"), vec![&b"no-store"[..]]);
        assert_eq!(values(&result, "x-frame-options"), vec![&b"DENY"[..]]);
    }

    #[test]
    fn longest_route_prefix_wins() {
        let policy = policy_from(
            r#"{"routes": [
                {"prefix": "/account", "response": {
                    "cross-origin-embedder-policy": {"mode": "set"},
                    "cache-control": {"mode": "set"}
                }},
                {"prefix": "/account/public", "response": {
                    "cache-control": {"mode": "set", "value": "public, max-age=300"}
                }}
            ]}"#,
        );
        let headers = pairs(&[(":status", "200")]);
        let account = apply(
            &headers,
            &policy.response_edits(&headers, &exchange("/account/me", true)),
        );
        assert_eq!(values(&account, "cache-control"), vec![&b"no-store"[..]]);
        assert_eq!(
            values(&account, "cross-origin-embedder-policy"),
            vec![&b"require-corp"[..]]
        );
        let public = apply(
            &headers,
            &policy.response_edits(&headers, &exchange("/account/public/logo", true)),
        );
        assert_eq!(
            values(&public, "cache-control"),
            vec![&b"public, max-age=300"[..]]
        );
        let other = apply(
            &headers,
            &policy.response_edits(&headers, &exchange("/home", true)),
        );
        assert!(values(&other, "cache-control").is_empty());
        assert!(values(&other, "cross-origin-embedder-policy").is_empty());
        assert_eq!(values(&other, "x-frame-options"), vec![&b"DENY"[..]]);
    }

    #[test]
    fn remove_response_extra_extends_default() {
        let policy = policy_from(r#"{"remove_response_extra": ["via", "x-cache-*"]}"#);
        let headers = pairs(&[
            ("via", "1.1 cache"),
            ("x-cache-hits", "3"),
            ("server", "nginx"),
        ]);
        let result = apply(
            &headers,
            &policy.response_edits(&headers, &Exchange::default()),
        );
        assert!(values(&result, "via").is_empty());
        assert!(values(&result, "x-cache-hits").is_empty());
        assert!(values(&result, "server").is_empty());
    }

    #[test]
    fn owasp_removal_list_compiles() {
        let policy = policy_from("{}");
        for name in [
            "x-b3-traceid",
            "x-nextjs-cache",
            "x-envoy-attempt-count",
            "$wsep",
        ] {
            assert!(
                policy
                    .remove_response()
                    .iter()
                    .any(|pattern| pattern.matches(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn cookies_hardened_in_order() {
        let policy = policy_from("{}");
        let headers = pairs(&[
            ("set-cookie", "sid=1; Path=/"),
            ("content-type", "text/html"),
            ("set-cookie", "theme=dark; Secure; SameSite=Strict"),
            ("Set-Cookie", "lang=en"),
        ]);
        let edits = policy.response_edits(&headers, &exchange("/", true));
        let result = apply(&headers, &edits);
        assert_eq!(
            values(&result, "set-cookie"),
            vec![
                &b"sid=1; Path=/; Secure; HttpOnly; SameSite=Lax"[..],
                &b"theme=dark; Secure; SameSite=Strict"[..],
                &b"lang=en; Secure; SameSite=Lax"[..],
            ]
        );
        assert_eq!(
            edits
                .iter()
                .filter(|edit| **edit == HeaderEdit::Remove("set-cookie".into()))
                .count(),
            1
        );
    }

    #[test]
    fn hardened_cookies_need_no_edit() {
        let policy = policy_from("{}");
        let headers = pairs(&[("set-cookie", "a=1; Secure; SameSite=Lax")]);
        let edits = policy.response_edits(&headers, &exchange("/", true));
        assert!(!edits
            .iter()
            .any(|edit| matches!(edit, HeaderEdit::Remove(name) if name == "set-cookie")));
    }

    #[test]
    fn cors_headers_replace_application_ones() {
        let policy = policy_from("{}");
        let mut exchange = exchange("/", true);
        exchange.cors = CorsResponse::Managed {
            headers: vec![(
                "access-control-allow-origin".to_string(),
                "https://app.example".to_string(),
            )],
            vary_origin: true,
        };
        let headers = pairs(&[
            ("access-control-allow-origin", "https://evil.example"),
            ("access-control-allow-credentials", "true"),
            ("vary", "Accept-Encoding"),
        ]);
        let result = apply(&headers, &policy.response_edits(&headers, &exchange));
        assert_eq!(
            values(&result, "access-control-allow-origin"),
            vec![&b"https://app.example"[..]]
        );
        assert!(values(&result, "access-control-allow-credentials").is_empty());
        assert_eq!(
            values(&result, "vary"),
            vec![&b"Accept-Encoding, Origin"[..]]
        );
    }

    #[test]
    fn vary_with_origin_left_alone() {
        let policy = policy_from("{}");
        let mut exchange = exchange("/", true);
        exchange.cors = CorsResponse::Managed {
            headers: Vec::new(),
            vary_origin: true,
        };
        let headers = pairs(&[("vary", "origin, accept")]);
        let result = apply(&headers, &policy.response_edits(&headers, &exchange));
        assert_eq!(values(&result, "vary"), vec![&b"origin, accept"[..]]);
    }

    #[test]
    fn local_reply_carries_security_headers() {
        let policy = policy_from(
            r#"{"routes": [{"prefix": "/account", "response": {"cache-control": {"mode": "set"}}}]}"#,
        );
        let headers = policy.local_reply_headers(
            &exchange("/account", true),
            &[
                ("content-type", "application/json"),
                ("X-Frame-Options", "SAMEORIGIN"),
            ],
        );
        let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        assert!(names.contains(&"content-security-policy"));
        assert!(names.contains(&"strict-transport-security"));
        assert!(names.contains(&"cache-control"));
        assert!(!names.contains(&"x-frame-options"));
        assert!(!names.contains(&"content-type"));
    }

    #[test]
    fn plan_rejects_unlisted_host() {
        let policy =
            policy_from(r#"{"allowed_hosts": ["example.com"], "host_mismatch_status": 400}"#);
        let cors = cors_from("{}");
        let headers = pairs(&[(":authority", "evil.example"), (":path", "/")]);
        let plan = plan_request(&policy, &cors, &headers, None);
        let Some(reply) = plan.reply else {
            panic!("no reply");
        };
        assert_eq!(reply.reason, ReplyReason::HostNotAllowed);
        assert_eq!(reply.status, 400);
        assert!(reply
            .headers
            .iter()
            .any(|(name, _)| name == "content-security-policy"));
        let allowed = pairs(&[(":authority", "Example.COM:443"), (":path", "/")]);
        assert_eq!(plan_request(&policy, &cors, &allowed, None).reply, None);
    }

    #[test]
    fn plan_forwards_client_address() {
        let policy = policy_from(r#"{"client_address": {"trusted_hops": 1}}"#);
        let cors = cors_from("{}");
        let headers = pairs(&[
            (":path", "/a?b"),
            ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
            ("x-portcullis-client-ip", "6.6.6.6"),
        ]);
        let plan = plan_request(&policy, &cors, &headers, "10.0.0.1".parse().ok());
        assert_eq!(plan.exchange.client, "198.51.100.7".parse().ok());
        assert_eq!(plan.exchange.path, "/a");
        assert_eq!(plan.strip, vec!["x-portcullis-client-ip".to_string()]);
        assert_eq!(
            plan.add,
            vec![(
                "x-portcullis-client-ip".to_string(),
                "198.51.100.7".to_string()
            )]
        );
    }

    #[test]
    fn plan_answers_preflight() {
        let policy = policy_from("{}");
        let cors = cors_from(r#"{"enabled": true, "allowed_origins": ["https://app.example"]}"#);
        let headers = pairs(&[
            (":method", "OPTIONS"),
            (":path", "/api"),
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
        ]);
        let plan = plan_request(&policy, &cors, &headers, None);
        let Some(reply) = plan.reply else {
            panic!("no reply");
        };
        assert_eq!(reply.reason, ReplyReason::Preflight);
        assert_eq!(reply.status, 204);
        assert!(reply.body.is_empty());
        let vary = reply
            .headers
            .iter()
            .filter(|(name, _)| name == "vary")
            .count();
        assert_eq!(vary, 1);
        assert!(reply
            .headers
            .iter()
            .any(|(name, _)| name == "x-content-type-options"));
    }

    #[test]
    fn path_normalization() {
        assert_eq!(normalize_path(b"/account"), "/account");
        assert_eq!(normalize_path(b"//account//me"), "/account/me");
        assert_eq!(normalize_path(b"/x/../account/./me/"), "/account/me/");
        assert_eq!(normalize_path(b"/../.."), "/");
        assert_eq!(normalize_path(b""), "/");
        assert_eq!(normalize_path(b"/a/.."), "/");
    }
}

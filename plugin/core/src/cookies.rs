//! `Set-Cookie` hardening: `Secure`, `SameSite` and `HttpOnly` added to each
//! cookie that lacks them, every other byte of the header kept as sent.

use crate::error::Error;
use crate::http::is_token;
use serde::Deserialize;

/// Default `headers.cookies.http_only` list: common session cookie names of
/// web frameworks, compared case-insensitively. `*session*` covers names such
/// as `_myapp_session`, `.AspNetCore.Session` and `KEYCLOAK_SESSION`.
pub const DEFAULT_HTTP_ONLY_COOKIES: &[&str] = &[
    "*session*",
    "*sessid",
    "session",
    "sessionid",
    "session_id",
    "sid",
    "jsessionid",
    "phpsessid",
    "connect.sid",
    "asp.net_sessionid",
    "laravel_session",
    "_session_id",
];

/// The `SameSite` value added to cookies that have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum SameSiteDefault {
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=None`, which browsers accept only with `Secure`.
    None,
    /// No `SameSite` is added.
    Off,
}

/// The `headers.cookies` section of the configuration, as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CookiesSection {
    /// Whether `Set-Cookie` headers are hardened. Default true. Each cookie
    /// stays its own header and keeps every byte it had.
    enabled: bool,
    /// Whether `Secure` is added to cookies of requests that came over
    /// HTTPS. Default true. Must be true when `same_site` is `none`.
    secure: bool,
    /// `SameSite` value added to cookies that have none: `lax` (default),
    /// `strict`, `none` or `off` (add nothing). A `SameSite=None` cookie
    /// always gets `Secure`.
    same_site: SameSiteDefault,
    /// Cookie names, compared case-insensitively and without a `__Host-` or
    /// `__Secure-` prefix, that get `HttpOnly`. A leading or trailing `*`
    /// matches any start or end. Default: `*session*`, `*sessid` and common
    /// session cookie names of web frameworks (`sid`, `connect.sid` and others).
    http_only: Vec<String>,
    /// Whether every cookie gets `HttpOnly`, whatever its name. Default
    /// false.
    http_only_all: bool,
}

impl Default for CookiesSection {
    fn default() -> Self {
        CookiesSection {
            enabled: true,
            secure: true,
            same_site: SameSiteDefault::Lax,
            http_only: DEFAULT_HTTP_ONLY_COOKIES
                .iter()
                .map(|name| name.to_string())
                .collect(),
            http_only_all: false,
        }
    }
}

/// The compiled cookie policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookiePolicy {
    enabled: bool,
    secure: bool,
    same_site: SameSiteDefault,
    http_only: Vec<String>,
    http_only_all: bool,
}

/// Attributes found in one `Set-Cookie` value.
#[derive(Debug, Default)]
struct Attributes {
    secure: bool,
    http_only: bool,
    /// Value of the `SameSite` attribute, trimmed, when present.
    same_site: Option<Vec<u8>>,
}

impl CookiePolicy {
    /// Checks the `headers.cookies` section.
    pub(crate) fn compile(section: &CookiesSection) -> Result<Self, Error> {
        if section.same_site == SameSiteDefault::None && !section.secure {
            return Err(Error::invalid(
                "headers.cookies.same_site",
                "\"none\" requires \"secure\": true, because browsers reject SameSite=None cookies without Secure",
            ));
        }
        let mut http_only = Vec::with_capacity(section.http_only.len());
        for (index, name) in section.http_only.iter().enumerate() {
            if !is_token(name) {
                return Err(Error::invalid(
                    format!("headers.cookies.http_only[{index}]"),
                    format!("invalid cookie name {name:?}, expected an HTTP token"),
                ));
            }
            http_only.push(name.to_ascii_lowercase());
        }
        Ok(CookiePolicy {
            enabled: section.enabled,
            secure: section.secure,
            same_site: section.same_site,
            http_only,
            http_only_all: section.http_only_all,
        })
    }

    /// Tells whether `Set-Cookie` hardening is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Returns the hardened form of one `Set-Cookie` value, or `None` when it
    /// already has every attribute that the policy adds.
    ///
    /// `https` is whether the request came over HTTPS: `Secure` is added only
    /// then, except to a `SameSite=None` cookie, which browsers drop without
    /// `Secure` anyway. Attribute names compare case-insensitively, and new
    /// attributes go at the end so that the original bytes stay as sent.
    pub fn harden(&self, value: &[u8], https: bool) -> Option<Vec<u8>> {
        if !self.enabled {
            return None;
        }
        let mut segments = value.split(|&byte| byte == b';');
        let name = segments
            .next()
            .map(|pair| match pair.iter().position(|&byte| byte == b'=') {
                Some(index) => pair[..index].trim_ascii(),
                None => pair.trim_ascii(),
            })
            .unwrap_or_default();
        let present = parse_attributes(segments);

        let mut additions: Vec<&[u8]> = Vec::new();
        let same_site_none = match &present.same_site {
            Some(existing) => existing.eq_ignore_ascii_case(b"none"),
            None => self.same_site == SameSiteDefault::None,
        };
        if !present.secure && ((self.secure && https) || same_site_none) {
            additions.push(b"Secure");
        }
        if !present.http_only && self.wants_http_only(name) {
            additions.push(b"HttpOnly");
        }
        if present.same_site.is_none() {
            match self.same_site {
                SameSiteDefault::Lax => additions.push(b"SameSite=Lax"),
                SameSiteDefault::Strict => additions.push(b"SameSite=Strict"),
                SameSiteDefault::None => additions.push(b"SameSite=None"),
                SameSiteDefault::Off => {}
            }
        }
        if additions.is_empty() {
            return None;
        }
        let mut hardened = value.to_vec();
        for attribute in additions {
            if hardened.trim_ascii_end().ends_with(b";") {
                hardened.push(b' ');
            } else {
                hardened.extend_from_slice(b"; ");
            }
            hardened.extend_from_slice(attribute);
        }
        Some(hardened)
    }

    fn wants_http_only(&self, name: &[u8]) -> bool {
        let lower = name.to_ascii_lowercase();
        // Browsers give the `__Host-` and `__Secure-` prefixes a meaning of
        // their own. The name after them is the one applications choose.
        let bare = lower
            .strip_prefix(b"__host-")
            .or_else(|| lower.strip_prefix(b"__secure-"))
            .unwrap_or(&lower);
        self.http_only_all
            || self.http_only.iter().any(|listed| {
                name_matches(listed.as_bytes(), &lower) || name_matches(listed.as_bytes(), bare)
            })
    }
}

/// Matches a lower-case cookie name against a lower-case list entry, where a
/// leading `*` stands for any start and a trailing `*` for any end.
fn name_matches(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.strip_prefix(b"*"), pattern.strip_suffix(b"*")) {
        (Some(rest), _) if rest.ends_with(b"*") => {
            let middle = &rest[..rest.len() - 1];
            middle.is_empty() || name.windows(middle.len()).any(|window| window == middle)
        }
        (Some(suffix), _) => name.ends_with(suffix),
        (None, Some(prefix)) => name.starts_with(prefix),
        (None, None) => pattern == name,
    }
}

fn parse_attributes<'a>(segments: impl Iterator<Item = &'a [u8]>) -> Attributes {
    let mut attributes = Attributes::default();
    for segment in segments {
        let (name, value) = match segment.iter().position(|&byte| byte == b'=') {
            Some(index) => (&segment[..index], Some(&segment[index + 1..])),
            None => (segment, None),
        };
        let name = name.trim_ascii();
        if name.eq_ignore_ascii_case(b"secure") {
            attributes.secure = true;
        } else if name.eq_ignore_ascii_case(b"httponly") {
            attributes.http_only = true;
        } else if name.eq_ignore_ascii_case(b"samesite") {
            // The last `SameSite` counts, and browsers read a value other
            // than these three as no attribute.
            let value = value.unwrap_or_default().trim_ascii();
            let known = [&b"strict"[..], b"lax", b"none"]
                .iter()
                .any(|known| value.eq_ignore_ascii_case(known));
            attributes.same_site = known.then(|| value.to_vec());
        }
    }
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_from(json: &str) -> CookiePolicy {
        let section: CookiesSection = match serde_json::from_str(json) {
            Ok(section) => section,
            Err(error) => panic!("{error}"),
        };
        match CookiePolicy::compile(&section) {
            Ok(policy) => policy,
            Err(error) => panic!("{error}"),
        }
    }

    fn harden(policy: &CookiePolicy, value: &str, https: bool) -> Option<String> {
        policy
            .harden(value.as_bytes(), https)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    #[test]
    fn https_cookie_gets_secure_and_lax() {
        let policy = policy_from("{}");
        assert_eq!(
            harden(&policy, "theme=dark; Path=/", true).as_deref(),
            Some("theme=dark; Path=/; Secure; SameSite=Lax")
        );
    }

    #[test]
    fn session_like_names_get_http_only() {
        let policy = policy_from("{}");
        for name in [
            "_myapp_session",
            ".AspNetCore.Session",
            "__Secure-next-auth.session-token",
            "__Host-sessionid",
            "KEYCLOAK_SESSION",
            "PHPSESSID",
            "connect.sid",
        ] {
            let hardened = harden(&policy, &format!("{name}=v"), true).unwrap_or_default();
            assert!(hardened.contains("HttpOnly"), "{name}: {hardened}");
        }
        for name in ["theme", "XSRF-TOKEN", "sidebar", "lang"] {
            let hardened = harden(&policy, &format!("{name}=v"), true).unwrap_or_default();
            assert!(!hardened.contains("HttpOnly"), "{name}: {hardened}");
        }
    }

    #[test]
    fn list_entries_match_with_wildcards() {
        assert!(name_matches(b"*sess*", b"my_session"));
        assert!(name_matches(b"app_*", b"app_auth"));
        assert!(name_matches(b"*_auth", b"app_auth"));
        assert!(!name_matches(b"app_*", b"my_app"));
        assert!(name_matches(b"**", b"anything"));
        assert!(!name_matches(b"sid", b"sidebar"));
    }

    #[test]
    fn http_cookie_gets_no_secure() {
        let policy = policy_from("{}");
        assert_eq!(
            harden(&policy, "theme=dark", false).as_deref(),
            Some("theme=dark; SameSite=Lax")
        );
    }

    #[test]
    fn session_cookie_gets_http_only() {
        let policy = policy_from("{}");
        assert_eq!(
            harden(&policy, "SessionID=abc", true).as_deref(),
            Some("SessionID=abc; Secure; HttpOnly; SameSite=Lax")
        );
    }

    #[test]
    fn present_attributes_not_duplicated() {
        let policy = policy_from("{}");
        assert_eq!(
            harden(&policy, "sid=1; secure; HTTPONLY; samesite=strict", true),
            None
        );
        assert_eq!(
            harden(&policy, "a=1;Secure;SameSite=Lax", true),
            None,
            "attributes without spaces"
        );
    }

    #[test]
    fn same_site_none_forces_secure() {
        let policy = policy_from("{}");
        assert_eq!(
            harden(&policy, "a=1; SameSite=None", false).as_deref(),
            Some("a=1; SameSite=None; Secure")
        );
    }

    #[test]
    fn other_bytes_kept_as_sent() {
        let policy = policy_from("{}");
        let value = b"a=\xff\xfe;  Expires=Wed, 21 Oct 2015 07:28:00 GMT;Path=/x;";
        let hardened = match policy.harden(value, true) {
            Some(hardened) => hardened,
            None => panic!("cookie was not hardened"),
        };
        assert!(hardened.starts_with(value));
        assert_eq!(&hardened[value.len()..], b" Secure; SameSite=Lax");
    }

    #[test]
    fn http_only_all_and_configured_names() {
        let all = policy_from(r#"{"http_only_all": true}"#);
        assert_eq!(
            harden(&all, "theme=dark; Secure; SameSite=Lax", true).as_deref(),
            Some("theme=dark; Secure; SameSite=Lax; HttpOnly")
        );
        let named = policy_from(r#"{"http_only": ["Auth"]}"#);
        assert_eq!(
            harden(&named, "auth=1; Secure; SameSite=Lax", true).as_deref(),
            Some("auth=1; Secure; SameSite=Lax; HttpOnly")
        );
        assert_eq!(harden(&named, "sid=1; Secure; SameSite=Lax", true), None);
    }

    #[test]
    fn configured_same_site_values() {
        let strict = policy_from(r#"{"same_site": "strict"}"#);
        assert_eq!(
            harden(&strict, "a=1", false).as_deref(),
            Some("a=1; SameSite=Strict")
        );
        let none = policy_from(r#"{"same_site": "none"}"#);
        assert_eq!(
            harden(&none, "a=1", false).as_deref(),
            Some("a=1; Secure; SameSite=None")
        );
        let off = policy_from(r#"{"same_site": "off", "secure": false}"#);
        assert_eq!(harden(&off, "a=1", true), None);
    }

    #[test]
    fn disabled_policy_keeps_cookies() {
        let policy = policy_from(r#"{"enabled": false}"#);
        assert_eq!(harden(&policy, "sid=1", true), None);
    }

    #[test]
    fn rejects_insecure_same_site_none() {
        let section: CookiesSection =
            match serde_json::from_str(r#"{"same_site": "none", "secure": false}"#) {
                Ok(section) => section,
                Err(error) => panic!("{error}"),
            };
        let message = match CookiePolicy::compile(&section) {
            Ok(_) => panic!("accepted"),
            Err(error) => error.to_string(),
        };
        assert!(
            message.starts_with("headers.cookies.same_site: "),
            "{message}"
        );
    }

    #[test]
    fn rejects_bad_cookie_names() {
        let section: CookiesSection = match serde_json::from_str(r#"{"http_only": ["a b"]}"#) {
            Ok(section) => section,
            Err(error) => panic!("{error}"),
        };
        let message = match CookiePolicy::compile(&section) {
            Ok(_) => panic!("accepted"),
            Err(error) => error.to_string(),
        };
        assert!(
            message.starts_with("headers.cookies.http_only[0]: "),
            "{message}"
        );
    }

    #[test]
    fn unknown_same_site_ignored() {
        let policy = policy_from(r#"{"secure": false}"#);
        for value in [
            "a=1; SameSite=",
            "a=1; SameSite=Laxx",
            "a=1; SameSite=Strict; SameSite=x",
        ] {
            assert_eq!(
                harden(&policy, value, false),
                Some(format!("{value}; SameSite=Lax")),
                "{value}"
            );
        }
        assert_eq!(
            harden(&policy, "a=1; SameSite=x; SameSite=strict", false),
            None
        );
    }
}

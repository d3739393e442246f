//! The host allowlist: requests whose `:authority` names another host are
//! answered locally, so that a forged `Host` never reaches virtual hosts,
//! password-reset links or caches of the application.

use crate::error::Error;
use crate::http::{first_value, HeaderPairs};

/// An entry of `headers.allowed_hosts`, lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// One host name or IP address.
    Exact(String),
    /// Every host whose name ends with this text, which starts with a dot.
    Suffix(String),
}

/// The compiled host allowlist. An empty list allows every host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAllowlist {
    hosts: Vec<HostPattern>,
    status: u32,
}

impl HostAllowlist {
    /// Checks `headers.allowed_hosts` and `headers.host_mismatch_status`.
    pub(crate) fn compile(entries: &[String], status: u16) -> Result<Self, Error> {
        if status != 421 && status != 400 {
            return Err(Error::invalid(
                "headers.host_mismatch_status",
                format!("must be 421 or 400, got {status}"),
            ));
        }
        let mut hosts = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let lower = entry.to_ascii_lowercase();
            let (suffix, name) = match lower.strip_prefix('.') {
                Some(name) => (true, name),
                None => (false, lower.as_str()),
            };
            // Request hosts lose one trailing dot before the comparison, so
            // entries do too.
            let name = name.strip_suffix('.').unwrap_or(name);
            let valid = if name.starts_with('[') {
                !suffix && is_ipv6_literal(name)
            } else {
                is_host_name(name)
            };
            if !valid {
                return Err(Error::invalid(
                    format!("headers.allowed_hosts[{index}]"),
                    format!("invalid host {entry:?}, expected a host name or IP address without port, such as \"example.com\", \".example.com\" or \"[2001:db8::1]\""),
                ));
            }
            hosts.push(if suffix {
                HostPattern::Suffix(format!(".{name}"))
            } else {
                HostPattern::Exact(name.to_string())
            });
        }
        Ok(HostAllowlist {
            hosts,
            status: u32::from(status),
        })
    }

    /// Status of the answer to a request for a host outside the list.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// Tells whether a request may go on: the list is empty, or the host
    /// that the client named, without port and compared case-insensitively,
    /// is in the list.
    ///
    /// The client's host is every `host` header when there is one, and
    /// `:authority` otherwise. Envoy folds `Host` into `:authority`, while
    /// ngx_wasm_module keeps the client's `Host` and fills `:authority` from
    /// the server name.
    pub fn allows(&self, headers: &HeaderPairs) -> bool {
        if self.hosts.is_empty() {
            return true;
        }
        let host_headers: Vec<&[u8]> = headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("host"))
            .map(|(_, value)| value.as_slice())
            .collect();
        let named: Vec<&[u8]> = if host_headers.is_empty() {
            first_value(headers, ":authority").into_iter().collect()
        } else {
            host_headers
        };
        !named.is_empty()
            && named
                .into_iter()
                .all(|authority| self.allows_authority(authority))
    }

    fn allows_authority(&self, authority: &[u8]) -> bool {
        let Some(host) = host_of(authority) else {
            return false;
        };
        self.hosts.iter().any(|pattern| match pattern {
            HostPattern::Exact(exact) => host == *exact,
            HostPattern::Suffix(suffix) => host.ends_with(suffix.as_str()),
        })
    }
}

/// Returns the lower-case host of an authority without its port and without
/// a trailing dot, or `None` when the authority is not a host name or a
/// bracketed IPv6 address, optionally followed by `:` and a decimal port.
///
/// Anything else is refused rather than cut, because some applications and
/// proxies read a value such as `evil.example:x.example.org` as the host
/// before the first colon, while its end would match a suffix entry.
fn host_of(authority: &[u8]) -> Option<String> {
    // Only ASCII white space is trimmed: U+3000 and the like are part of
    // the value, which then is no host.
    let text = std::str::from_utf8(authority)
        .ok()?
        .trim_matches(|c: char| c == ' ' || c == '\t');
    let (host, port) = if text.starts_with('[') {
        let end = text.find(']')?;
        let (host, rest) = text.split_at(end + 1);
        if !is_ipv6_literal(host) {
            return None;
        }
        (host, rest)
    } else {
        match text.find(':') {
            Some(colon) => text.split_at(colon),
            None => (text, ""),
        }
    };
    let port_valid = match port.strip_prefix(':') {
        Some(digits) => digits.bytes().all(|byte| byte.is_ascii_digit()),
        None => port.is_empty(),
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    (port_valid && (host.starts_with('[') || is_host_name(host))).then(|| host.to_ascii_lowercase())
}

/// Tells whether `name` is a host name or IPv4 address: dot-separated
/// labels of letters, digits, `-` and `_`, none of them empty.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        })
}

/// Tells whether `text` is an IPv6 address in brackets, such as `[::1]`.
fn is_ipv6_literal(text: &str) -> bool {
    text.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|inner| {
            inner.contains(':')
                && inner
                    .bytes()
                    .all(|byte| byte.is_ascii_hexdigit() || byte == b':' || byte == b'.')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowlist(entries: &[&str]) -> HostAllowlist {
        let entries: Vec<String> = entries.iter().map(|entry| entry.to_string()).collect();
        match HostAllowlist::compile(&entries, 421) {
            Ok(list) => list,
            Err(error) => panic!("{error}"),
        }
    }

    fn authority(value: &str) -> Vec<(String, Vec<u8>)> {
        vec![(":authority".to_string(), value.as_bytes().to_vec())]
    }

    #[test]
    fn empty_list_allows_all() {
        assert!(allowlist(&[]).allows(&authority("anything.example")));
        assert!(allowlist(&[]).allows(&[]));
    }

    #[test]
    fn exact_host_ignores_port_and_case() {
        let list = allowlist(&["Example.com", "[2001:db8::1]"]);
        assert!(list.allows(&authority("example.com")));
        assert!(list.allows(&authority("EXAMPLE.COM:8443")));
        assert!(list.allows(&authority("example.com.")));
        assert!(list.allows(&authority("[2001:db8::1]:443")));
        assert!(!list.allows(&authority("www.example.com")));
        assert!(!list.allows(&authority("example.com.evil")));
        assert!(!list.allows(&authority("evil.com")));
        assert!(!list.allows(&[]));
    }

    #[test]
    fn host_header_checked_before_authority() {
        let list = allowlist(&["example.com"]);
        let ngx = vec![
            (":authority".to_string(), b"localhost:8080".to_vec()),
            ("Host".to_string(), b"example.com".to_vec()),
        ];
        assert!(list.allows(&ngx));
        let forged = vec![
            (":authority".to_string(), b"example.com".to_vec()),
            ("host".to_string(), b"example.com".to_vec()),
            ("host".to_string(), b"evil.example".to_vec()),
        ];
        assert!(!list.allows(&forged));
    }

    #[test]
    fn suffix_allows_subdomains_only() {
        let list = allowlist(&[".example.com"]);
        assert!(list.allows(&authority("api.example.com")));
        assert!(!list.allows(&authority("example.com")));
        assert!(!list.allows(&authority("badexample.com")));
    }

    #[test]
    fn malformed_authorities_refused() {
        let list = allowlist(&[".example.org", "[::1]", "example.com"]);
        for value in [
            "evil.com:x.example.org",
            "evil.com:1:x.example.org",
            "evil.com:443.example.org",
            "[::1]evil.com",
            "[::1]:80:evil",
            "[::1]x",
            "[evil]",
            "a..example.org",
            "evil.com/.example.org",
            "evil.com\\.example.org",
            "evil.com?.example.org",
            "evil.com#.example.org",
            "user@example.com",
            "example.com:",
            "example.com:x",
            ":443",
            "a.example.org\u{3000}",
            "\u{a0}a.example.org",
        ] {
            let allowed = list.allows(&authority(value));
            // `example.com:` has an empty port, which RFC 3986 allows.
            assert_eq!(allowed, value == "example.com:", "{value}");
        }
        assert!(list.allows(&authority("a.example.org:8443")));
        assert!(list.allows(&authority("[::1]:8080")));
    }

    #[test]
    fn entries_drop_dot_reject_port() {
        let list = allowlist(&["www.example.com.", ".example.net."]);
        assert!(list.allows(&authority("www.example.com")));
        assert!(list.allows(&authority("api.example.net.")));
        for entry in [
            "example.com:8443",
            "[::1",
            "..",
            ":",
            "a..b",
            "[::1]:80",
            ".[::1]",
            "ex ample.com",
        ] {
            assert!(
                HostAllowlist::compile(&[entry.to_string()], 421).is_err(),
                "{entry}"
            );
        }
    }

    #[test]
    fn rejects_bad_configuration() {
        let bad_host = HostAllowlist::compile(&["example.com/x".to_string()], 421);
        assert!(
            matches!(bad_host, Err(Error::InvalidValue { ref path, .. }) if path == "headers.allowed_hosts[0]")
        );
        let bad_status = HostAllowlist::compile(&[], 403);
        assert!(
            matches!(bad_status, Err(Error::InvalidValue { ref path, .. }) if path == "headers.host_mismatch_status")
        );
    }
}

//! The client's address and scheme, read from `X-Forwarded-For` and
//! `X-Forwarded-Proto` only as far as the configured proxies in front are
//! trusted.
//!
//! With `trusted_hops` N, the request passed N proxies before this one and
//! each appended the address it received the request from to
//! `X-Forwarded-For`. The last N entries were written by trusted proxies, so
//! the N-th entry from the right is the client and every entry to its left is
//! whatever the client sent. With N = 0 the connection's peer, the
//! `source.address` property, is the client.

use crate::error::Error;
use crate::http::{first_value, is_token, HeaderPairs};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

/// Default name of the request header that carries the client address to the
/// upstream.
pub const DEFAULT_CLIENT_IP_HEADER: &str = "x-portcullis-client-ip";

/// Maximum accepted `trusted_hops`.
pub const MAX_TRUSTED_HOPS: u8 = 16;

/// The `headers.client_address` section of the configuration, as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ClientAddressSection {
    /// Number of proxies in front of this one whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` are trusted, 0 to 16. Default 0: the
    /// connection's peer is the client. With N, the N-th `X-Forwarded-For`
    /// entry from the right is the client.
    #[cfg_attr(feature = "schema", schemars(range(max = 16)))]
    trusted_hops: u8,
    /// Request header that carries the client address upstream, an HTTP
    /// token other than the headers that frame, route or authenticate a
    /// request (`host`, `content-length`, `transfer-encoding`, `cookie`,
    /// `authorization` and the like). Default `x-portcullis-client-ip`.
    header: String,
    /// Whether the client address is sent upstream in `header`, after the
    /// client's own copies of that header are removed. Default true.
    forward: bool,
}

impl Default for ClientAddressSection {
    fn default() -> Self {
        ClientAddressSection {
            trusted_hops: 0,
            header: DEFAULT_CLIENT_IP_HEADER.to_string(),
            forward: true,
        }
    }
}

/// The compiled client address policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddressPolicy {
    trusted_hops: u8,
    header: String,
    forward: bool,
}

/// Headers that `client_address.header` may not name.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "te",
    "trailer",
    "connection",
    "keep-alive",
    "upgrade",
    "proxy-connection",
    "expect",
    "cookie",
    "authorization",
    "proxy-authorization",
];

impl ClientAddressPolicy {
    /// Checks the `headers.client_address` section.
    pub(crate) fn compile(section: &ClientAddressSection) -> Result<Self, Error> {
        if section.trusted_hops > MAX_TRUSTED_HOPS {
            return Err(Error::invalid(
                "headers.client_address.trusted_hops",
                format!(
                    "must be at most {MAX_TRUSTED_HOPS}, got {}",
                    section.trusted_hops
                ),
            ));
        }
        let header = section.header.to_ascii_lowercase();
        if !is_token(&header) {
            return Err(Error::invalid(
                "headers.client_address.header",
                format!(
                    "invalid header name {:?}, expected an HTTP token such as \"x-real-ip\"",
                    section.header
                ),
            ));
        }
        // The header is stripped from every request and then set, so a name
        // that frames the message, routes it, or carries the client's
        // credentials would break requests or drop what the client sent.
        if RESERVED_HEADERS.contains(&&*crate::http::dashed(&header)) {
            return Err(Error::invalid(
                "headers.client_address.header",
                format!(
                    "header {:?} frames, routes or authenticates requests, use a header of its own such as \"x-real-ip\"",
                    section.header
                ),
            ));
        }
        Ok(ClientAddressPolicy {
            trusted_hops: section.trusted_hops,
            header,
            forward: section.forward,
        })
    }

    /// Number of proxies in front of this one whose forwarding headers are
    /// trusted.
    pub fn trusted_hops(&self) -> usize {
        usize::from(self.trusted_hops)
    }

    /// Lower-case name of the request header that carries the client address
    /// upstream.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// Tells whether the client address is sent upstream in [`Self::header`].
    pub fn forward(&self) -> bool {
        self.forward
    }

    /// Returns the client address of a request, see [`client_address`].
    pub fn client_address(&self, headers: &HeaderPairs, source: Option<IpAddr>) -> Option<IpAddr> {
        client_address(headers, source, self.trusted_hops())
    }

    /// Tells whether the client reached the first proxy over HTTPS, see
    /// [`is_https`].
    pub fn is_https(&self, headers: &HeaderPairs) -> bool {
        is_https(headers, self.trusted_hops())
    }
}

/// Returns the client address of a request.
///
/// `source` is the connection's peer (the `source.address` property). With
/// `trusted_hops` 0 it is the answer. Otherwise the answer is the
/// `trusted_hops`-th `X-Forwarded-For` entry from the right, all copies of
/// the header read as one list in order. When the list has fewer entries, or
/// that entry is not an IP address, nothing trustworthy names the client and
/// `source` is returned.
pub fn client_address(
    headers: &HeaderPairs,
    source: Option<IpAddr>,
    trusted_hops: usize,
) -> Option<IpAddr> {
    if trusted_hops == 0 {
        return source;
    }
    let entries: Vec<&[u8]> = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("x-forwarded-for"))
        .flat_map(|(_, value)| value.split(|&byte| byte == b','))
        .map(<[u8]>::trim_ascii)
        .collect();
    if entries.len() < trusted_hops {
        return source;
    }
    parse_ip(entries[entries.len() - trusted_hops]).or(source)
}

/// Tells whether the client reached the first proxy over HTTPS: `:scheme` is
/// `https`, or, when a proxy in front is trusted, the last
/// `X-Forwarded-Proto` value is `https`.
pub fn is_https(headers: &HeaderPairs, trusted_hops: usize) -> bool {
    if first_value(headers, ":scheme").is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"https")) {
        return true;
    }
    if trusted_hops == 0 {
        return false;
    }
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("x-forwarded-proto"))
        .flat_map(|(_, value)| value.split(|&byte| byte == b','))
        .next_back()
        .is_some_and(|proto| proto.trim_ascii().eq_ignore_ascii_case(b"https"))
}

/// Parses an address as proxies write it in `X-Forwarded-For`: a bare IPv4
/// or IPv6 address, `ip:port`, `[ipv6]` or `[ipv6]:port`.
pub fn parse_ip(raw: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(raw).ok()?.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    text.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect()
    }

    fn ip(text: &str) -> Option<IpAddr> {
        text.parse().ok()
    }

    #[test]
    fn zero_hops_uses_source() {
        let headers = pairs(&[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(
            client_address(&headers, ip("203.0.113.9"), 0),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn one_hop_takes_rightmost_entry() {
        let headers = pairs(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7")]);
        assert_eq!(
            client_address(&headers, ip("10.0.0.1"), 1),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn spoofed_leftmost_entries_ignored() {
        let headers = pairs(&[
            ("x-forwarded-for", "1.2.3.4, 5.6.7.8"),
            ("X-Forwarded-For", "198.51.100.7, 10.0.0.2"),
        ]);
        assert_eq!(
            client_address(&headers, ip("10.0.0.3"), 2),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn short_list_falls_back_to_source() {
        let headers = pairs(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(client_address(&headers, ip("10.0.0.1"), 2), ip("10.0.0.1"));
        assert_eq!(client_address(&[], ip("10.0.0.1"), 1), ip("10.0.0.1"));
    }

    #[test]
    fn invalid_entry_falls_back_to_source() {
        let headers = pairs(&[("x-forwarded-for", "1.2.3.4, unknown")]);
        assert_eq!(client_address(&headers, ip("10.0.0.1"), 1), ip("10.0.0.1"));
    }

    #[test]
    fn entries_with_ports_and_brackets() {
        assert_eq!(parse_ip(b"198.51.100.7:4711"), ip("198.51.100.7"));
        assert_eq!(parse_ip(b"[2001:db8::1]:443"), ip("2001:db8::1"));
        assert_eq!(parse_ip(b"[2001:db8::1]"), ip("2001:db8::1"));
        assert_eq!(parse_ip(b"2001:db8::1"), ip("2001:db8::1"));
        assert_eq!(parse_ip(b"evil.example"), None);
        assert_eq!(parse_ip(b""), None);
    }

    #[test]
    fn https_from_scheme_or_trusted_proto() {
        let direct = pairs(&[(":scheme", "https")]);
        assert!(is_https(&direct, 0));
        let forwarded = pairs(&[(":scheme", "http"), ("x-forwarded-proto", "https")]);
        assert!(!is_https(&forwarded, 0));
        assert!(is_https(&forwarded, 1));
        let chained = pairs(&[(":scheme", "http"), ("x-forwarded-proto", "https, http")]);
        assert!(!is_https(&chained, 1));
    }

    #[test]
    fn rejects_bad_configuration() {
        let too_many = ClientAddressSection {
            trusted_hops: 17,
            ..ClientAddressSection::default()
        };
        let message = match ClientAddressPolicy::compile(&too_many) {
            Ok(_) => panic!("accepted"),
            Err(error) => error.to_string(),
        };
        assert!(message.starts_with("headers.client_address.trusted_hops: "));
        let bad_name = ClientAddressSection {
            header: "x ip".to_string(),
            ..ClientAddressSection::default()
        };
        let message = match ClientAddressPolicy::compile(&bad_name) {
            Ok(_) => panic!("accepted"),
            Err(error) => error.to_string(),
        };
        assert!(message.starts_with("headers.client_address.header: "));
    }
}

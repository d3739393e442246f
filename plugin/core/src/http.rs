//! HTTP types and parsing helpers shared by the filter and the header policy.

use std::borrow::Cow;
use std::net::IpAddr;

/// A header map as the host returns it: every pair in order, names as the host
/// spells them (lower-case for HTTP/2 and Envoy), values as raw bytes.
///
/// Repeated names stay separate pairs, so a second `authorization` header is
/// visible to every check.
pub type HeaderPairs = [(String, Vec<u8>)];

/// A response that the plugin sends in place of the upstream response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// HTTP status code.
    pub status: u32,
    /// Headers of the response, without framing headers (the host adds them).
    pub headers: Vec<(&'static str, &'static str)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl LocalResponse {
    /// Builds a JSON response from a `serde_json` value.
    pub fn json(status: u32, body: &serde_json::Value) -> Self {
        LocalResponse {
            status,
            headers: vec![("content-type", "application/json")],
            body: body.to_string().into_bytes(),
        }
    }
}

/// Returns the path that route rules (token rules, limits policies) match: the `:path` without its query,
/// percent-decoded once, with backslashes read as slashes, `;` parameters
/// dropped from each segment, and empty and dot segments resolved. Clients
/// that spell a protected route another way (`//login`, `/./login`,
/// `/%6cogin`, `/login;x=1`) are matched as the route that the application
/// serves.
pub fn route_path(raw_path: &[u8]) -> String {
    let (path, _) = split_path(raw_path);
    let decoded = crate::decode::percent_decode(path, crate::decode::Plus::Literal);
    let cleaned: Vec<u8> = decoded
        .split(|&byte| byte == b'/' || byte == b'\\')
        .map(
            |segment| match segment.iter().position(|&byte| byte == b';') {
                Some(end) => &segment[..end],
                None => segment,
            },
        )
        .collect::<Vec<&[u8]>>()
        .join(&b'/');
    crate::headers::normalize_path(&cleaned)
}

/// Returns every route path that a request path can mean to the upstream:
/// [`route_path`], and a second one when the path contains an encoded slash or
/// backslash (`%2F`, `%5C`, `%u002F`, `%u005C`) and keeping it inside its
/// segment gives another route. Envoy and most routers keep `%2F` inside a
/// segment while some servers decode it to `/`, so a rule must hold for both
/// readings: `/api/x%2F..%2F..%2Fpublic` is under `/api` for the first kind
/// and `/public` for the second.
pub fn route_paths(raw_path: &[u8]) -> Vec<String> {
    let separated = route_path(raw_path);
    let (path, _) = split_path(raw_path);
    let mut unsplit = Vec::with_capacity(path.len() + 8);
    let mut index = 0;
    let mut changed = false;
    while index < path.len() {
        let rest = &path[index..];
        let escaped = [&b"%2f"[..], b"%5c", b"%u002f", b"%u005c"]
            .into_iter()
            .find(|encoded| {
                rest.len() >= encoded.len() && rest[..encoded.len()].eq_ignore_ascii_case(encoded)
            });
        match escaped {
            // `%25` decodes to `%`, so the separator reaches the route path
            // still encoded.
            Some(encoded) => {
                unsplit.extend_from_slice(b"%25");
                unsplit.extend_from_slice(&rest[1..encoded.len()]);
                index += encoded.len();
                changed = true;
            }
            None => {
                unsplit.push(path[index]);
                index += 1;
            }
        }
    }
    if !changed {
        return vec![separated];
    }
    let inside = route_path(&unsplit);
    if inside == separated {
        vec![separated]
    } else {
        vec![separated, inside]
    }
}

/// Returns whether a request path equals a configured exact path, ignoring
/// one trailing slash on either, as most application routers do.
pub fn exact_path_matches(path: &str, exact: &str) -> bool {
    let trim = |text: &str| -> String {
        if text.len() > 1 {
            text.strip_suffix('/').unwrap_or(text).to_string()
        } else {
            text.to_string()
        }
    };
    trim(path) == trim(exact)
}

/// Parses an integer property in either host encoding: Envoy's 8 bytes
/// little-endian, or the decimal text of Kong's ngx_wasm_module. Eight ASCII
/// digits are read as text, because as little-endian bytes they would be a
/// number above 3 * 10^18 that no port or status code reaches.
pub fn parse_property_integer(raw: &[u8]) -> Option<u64> {
    if !raw.is_empty() && raw.iter().all(u8::is_ascii_digit) {
        return std::str::from_utf8(raw).ok()?.parse().ok();
    }
    let word = <[u8; 8]>::try_from(raw).ok()?;
    Some(u64::from_le_bytes(word))
}

/// Request details that security events report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Value of `:method`, lossy UTF-8, empty when absent.
    pub method: String,
    /// Value of `:path` without the query string, lossy UTF-8, empty when
    /// absent, cut to [`RequestInfo::MAX_PATH_CHARS`] characters.
    pub path: String,
}

impl RequestInfo {
    /// Maximum number of characters of the path that events report.
    pub const MAX_PATH_CHARS: usize = 256;

    /// Reads method and path from request headers.
    pub fn from_headers(headers: &HeaderPairs) -> Self {
        let method = first_value(headers, ":method")
            .map(|value| truncate_chars(&String::from_utf8_lossy(value), 32))
            .unwrap_or_default();
        let path = first_value(headers, ":path")
            .map(|value| {
                let (path, _query) = split_path(value);
                truncate_chars(&String::from_utf8_lossy(path), Self::MAX_PATH_CHARS)
            })
            .unwrap_or_default();
        RequestInfo { method, path }
    }
}

/// Writes an IP address as its `Display` form does. IPv4 addresses, which
/// most requests carry, skip the formatting machinery: under callgrind it
/// took about 5,000 wasm instructions per address.
pub fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut text = String::with_capacity(15);
    for (index, octet) in v4.octets().into_iter().enumerate() {
        if index > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

/// Returns `text` in ASCII lower case, borrowed when it has no capitals.
/// Envoy passes header names in lower case, so most names are borrowed.
pub fn lower_case(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|byte| byte.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// Returns a header name with each `_` written as `-`, borrowed when it has
/// none. CGI-style servers read `x_user_id` and `x-user-id` as one variable,
/// so checks of header names compare this form.
pub fn dashed(name: &str) -> Cow<'_, str> {
    if name.contains('_') {
        Cow::Owned(name.replace('_', "-"))
    } else {
        Cow::Borrowed(name)
    }
}

/// Returns the value of the first header named `name`, compared
/// case-insensitively.
pub fn first_value<'a>(headers: &'a HeaderPairs, name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_slice())
}

/// Splits a `:path` value at the first `?` into path and query string.
pub fn split_path(raw: &[u8]) -> (&[u8], Option<&[u8]>) {
    match raw.iter().position(|&byte| byte == b'?') {
        Some(index) => (&raw[..index], Some(&raw[index + 1..])),
        None => (raw, None),
    }
}

/// Splits a query string or form body into `(name, value)` pairs, still
/// percent-encoded. A pair without `=` has an empty value, and empty pairs
/// (`a=1&&b=2`) are skipped.
pub fn split_pairs(raw: &[u8]) -> Vec<(&[u8], &[u8])> {
    raw.split(|&byte| byte == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&byte| byte == b'=') {
            Some(index) => (&pair[..index], &pair[index + 1..]),
            None => (pair, &pair[pair.len()..]),
        })
        .collect()
}

/// Splits a `cookie` header value into `(name, value)` pairs, with the
/// whitespace around each pair trimmed.
pub fn split_cookies(raw: &[u8]) -> Vec<(&[u8], &[u8])> {
    raw.split(|&byte| byte == b';')
        .map(<[u8]>::trim_ascii)
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&byte| byte == b'=') {
            Some(index) => (&pair[..index], &pair[index + 1..]),
            None => (&pair[..0], pair),
        })
        .collect()
}

/// Tells whether a `content-type` value is `application/x-www-form-urlencoded`,
/// ignoring case and parameters.
pub fn is_form_urlencoded(content_type: &[u8]) -> bool {
    let media_type = content_type
        .split(|&byte| byte == b';')
        .next()
        .map(<[u8]>::trim_ascii)
        .unwrap_or_default();
    media_type.eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
}

/// Tells whether a header name is an HTTP token (RFC 9110, section 5.6.2).
pub fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// Cuts `text` to at most `max` characters, on a character boundary.
pub fn truncate_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_matches_display() {
        for octet in [0u8, 1, 9, 10, 42, 99, 100, 101, 199, 200, 250, 255] {
            let ip = IpAddr::from([octet, 255 - octet, octet / 2, 7]);
            assert_eq!(ip_text(ip), ip.to_string());
        }
        let v6 = IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
        assert_eq!(ip_text(v6), "2001:db8::1");
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn property_integer_in_both_encodings() {
        assert_eq!(parse_property_integer(&401u64.to_le_bytes()), Some(401));
        assert_eq!(parse_property_integer(b"429"), Some(429));
        assert_eq!(parse_property_integer(b"12345678"), Some(12_345_678));
        assert_eq!(parse_property_integer(b""), None);
        assert_eq!(parse_property_integer(b"4x9"), None);
    }

    #[test]
    fn route_paths_read_encoded_slashes_both_ways() {
        assert_eq!(route_paths(b"/api/items?q=%2F"), vec!["/api/items"]);
        assert_eq!(route_paths(b"/a%2Fb"), vec!["/a/b", "/a%2Fb"]);
        assert_eq!(
            route_paths(b"/api/x%2F..%2F..%2Fpublic"),
            vec!["/public", "/api/x%2F..%2F..%2Fpublic"]
        );
        assert_eq!(
            route_paths(b"/public/x%5c..%5C..%5capi"),
            vec!["/api", "/public/x%5c..%5C..%5capi"]
        );
        assert_eq!(route_paths(b"/a%u002Fb"), vec!["/a/b", "/a%u002Fb"]);
    }

    #[test]
    fn split_path_with_query() {
        assert_eq!(split_path(b"/a?b=1?c"), (&b"/a"[..], Some(&b"b=1?c"[..])));
    }

    #[test]
    fn split_path_without_query() {
        assert_eq!(split_path(b"/a/b"), (&b"/a/b"[..], None));
        assert_eq!(split_path(b""), (&b""[..], None));
    }

    #[test]
    fn split_pairs_keeps_encoded_separators() {
        let parsed = split_pairs(b"q=a%26b&x=%3D");
        assert_eq!(
            parsed,
            vec![(&b"q"[..], &b"a%26b"[..]), (&b"x"[..], &b"%3D"[..])]
        );
    }

    #[test]
    fn split_pairs_edge_cases() {
        let parsed = split_pairs(b"flag&&=v&k=a=b&");
        assert_eq!(
            parsed,
            vec![
                (&b"flag"[..], &b""[..]),
                (&b""[..], &b"v"[..]),
                (&b"k"[..], &b"a=b"[..]),
            ]
        );
        assert!(split_pairs(b"").is_empty());
    }

    #[test]
    fn split_cookies_trims_pairs() {
        let parsed = split_cookies(b"a=1; b=x=y ;; lone");
        assert_eq!(
            parsed,
            vec![
                (&b"a"[..], &b"1"[..]),
                (&b"b"[..], &b"x=y"[..]),
                (&b""[..], &b"lone"[..]),
            ]
        );
    }

    #[test]
    fn form_content_type_detection() {
        assert!(is_form_urlencoded(b"application/x-www-form-urlencoded"));
        assert!(is_form_urlencoded(
            b" Application/X-WWW-Form-Urlencoded ; charset=utf-8"
        ));
        assert!(!is_form_urlencoded(b"application/json"));
        assert!(!is_form_urlencoded(b""));
    }

    #[test]
    fn token_validation() {
        assert!(is_token("x-frame-options"));
        assert!(!is_token(""));
        assert!(!is_token("bad name"));
        assert!(!is_token(":status"));
        assert!(!is_token("x\r\ny"));
    }

    #[test]
    fn request_info_from_headers() {
        let headers = pairs(&[(":method", "POST"), (":path", "/login?user=a")]);
        let info = RequestInfo::from_headers(&headers);
        assert_eq!(info.method, "POST");
        assert_eq!(info.path, "/login");
    }

    #[test]
    fn request_info_missing_pseudo_headers() {
        let info = RequestInfo::from_headers(&[]);
        assert_eq!(info, RequestInfo::default());
    }

    #[test]
    fn request_info_truncates_long_path() {
        let long = format!("/{}", "a".repeat(1000));
        let info = RequestInfo::from_headers(&pairs(&[(":path", &long)]));
        assert_eq!(info.path.chars().count(), RequestInfo::MAX_PATH_CHARS);
    }

    #[test]
    fn first_value_ignores_case() {
        let headers = pairs(&[("Content-Type", "a"), ("content-type", "b")]);
        assert_eq!(first_value(&headers, "content-type"), Some(&b"a"[..]));
        assert_eq!(first_value(&headers, "accept"), None);
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate_chars("ééé", 2), "éé");
        assert_eq!(truncate_chars("ab", 5), "ab");
    }
}

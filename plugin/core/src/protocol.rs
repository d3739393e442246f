//! Request limits and HTTP protocol checks: allowed methods, sizes and
//! counts, content types and charsets, request smuggling through conflicting
//! framing headers, and header injection.
//!
//! Each check reports a [`Hit`] under a fixed rule id, scored like any other
//! rule, so exclusions and paranoia levels apply to them too.

use crate::decode::{hex_byte, percent_decode, Plus};
use crate::http::{dashed, first_value, lower_case, split_path, HeaderPairs};
use crate::rules::TargetKind;
use crate::rules::{RuleInfo, Severity};
use crate::targets::{
    body_format, json_depth, media_type, BodyFormat, Part, Target, JSON_NAME_LABEL, MAX_JSON_DEPTH,
};
use serde::Deserialize;

mod url_hosts;

pub use url_hosts::check_url_hosts;

/// A protocol check that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The check, as a rule.
    pub rule: RuleInfo,
    /// Lowest paranoia level at which the check runs.
    pub paranoia: u8,
    /// Label of the offending value.
    pub target: String,
    /// The offending value or a description of it, never a header value
    /// that may hold a credential.
    pub excerpt: String,
}

/// The `filter.limits` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Methods that pass, upper-case and compared case-sensitively.
    /// Default `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE` and
    /// `OPTIONS`.
    pub allowed_methods: Vec<String>,
    /// Maximum length of `:path` in bytes, query included. Default 8192, the
    /// request line that nginx and Apache accept by default.
    pub max_uri_bytes: usize,
    /// Maximum number of request headers; 0, the default, leaves the limit
    /// to the proxy (Envoy allows 100).
    pub max_headers: usize,
    /// Maximum size of one header value in bytes; 0, the default, leaves the
    /// limit to the proxy (Envoy allows 60 KiB of headers in all).
    pub max_header_bytes: usize,
    /// Maximum number of query, form and multipart arguments together.
    /// Default 255. JSON keys do not count: arrays of objects in ordinary
    /// API bodies hold hundreds, and `limit-json-depth` bounds JSON.
    pub max_args: usize,
    /// Maximum length of an argument name in bytes. Default 100.
    pub max_arg_name_bytes: usize,
    /// Maximum length of an argument value in bytes. Default 65536, so that
    /// long texts and inline images in bodies within the default
    /// `max_body_bytes` pass.
    pub max_arg_value_bytes: usize,
    /// Media types that a request body may have; a trailing `*` matches a
    /// prefix and `+json`/`+xml` suffixes are accepted as their base type.
    /// Default: form, multipart, JSON, XML, SOAP, GraphQL, gRPC,
    /// octet-stream, plain text, Markdown, CSV, YAML and CSP report types.
    pub allowed_content_types: Vec<String>,
    /// Charsets that a `content-type` may name, lower-case. Default
    /// `utf-8`, `iso-8859-1`, `iso-8859-15`, `windows-1252` and `us-ascii`.
    pub allowed_charsets: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            allowed_methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
                .map(String::from)
                .to_vec(),
            max_uri_bytes: 8192,
            max_headers: 0,
            max_header_bytes: 0,
            max_args: 255,
            max_arg_name_bytes: 100,
            max_arg_value_bytes: 65536,
            allowed_content_types: [
                "application/x-www-form-urlencoded",
                "multipart/form-data",
                "multipart/related",
                "application/json",
                "application/csp-report",
                "application/xml",
                "text/xml",
                "application/soap+xml",
                "application/octet-stream",
                "application/graphql",
                "text/plain",
                "text/markdown",
                "text/csv",
                "application/yaml",
                "application/x-yaml",
                "text/yaml",
                "application/x-ndjson",
                "application/x-protobuf",
                "application/grpc",
                "application/grpc+proto",
                "application/grpc-web",
                "application/grpc-web+proto",
                "application/grpc-web-text",
            ]
            .map(String::from)
            .to_vec(),
            allowed_charsets: [
                "utf-8",
                "iso-8859-1",
                "iso-8859-15",
                "windows-1252",
                "us-ascii",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

macro_rules! check {
    ($name:ident, $id:literal, $title:literal, $severity:ident) => {
        const $name: RuleInfo = RuleInfo {
            id: $id,
            name: $title,
            severity: Severity::$severity,
        };
    };
}

check!(
    METHOD,
    "protocol-method-not-allowed",
    "Request method not allowed",
    Critical
);
check!(
    URI_LENGTH,
    "limit-uri-length",
    "URI longer than allowed",
    Critical
);
check!(
    HEADER_COUNT,
    "limit-header-count",
    "More request headers than allowed",
    Critical
);
check!(
    HEADER_SIZE,
    "limit-header-size",
    "Request header larger than allowed",
    Critical
);
check!(
    JSON_DEPTH,
    "limit-json-depth",
    "JSON body nested deeper than allowed",
    Critical
);
check!(
    ARG_COUNT,
    "limit-arg-count",
    "More arguments than allowed",
    Critical
);
check!(
    ARG_NAME,
    "limit-arg-name-length",
    "Argument name longer than allowed",
    Critical
);
check!(
    ARG_VALUE,
    "limit-arg-value-length",
    "Argument value longer than allowed",
    Critical
);
check!(
    CONTENT_TYPE,
    "protocol-content-type-not-allowed",
    "Request content type not allowed",
    Critical
);
check!(
    CHARSET,
    "protocol-charset-not-allowed",
    "Request charset not allowed",
    Critical
);
check!(
    CONTENT_TYPE_SYNTAX,
    "protocol-content-type-malformed",
    "Malformed or smuggled content type",
    Critical
);
check!(
    NO_CONTENT_TYPE,
    "protocol-body-without-content-type",
    "Request body without a content type",
    Critical
);
check!(
    GET_BODY,
    "protocol-get-with-body",
    "GET or HEAD request with a body",
    Critical
);
check!(
    CONTENT_LENGTH,
    "protocol-content-length-invalid",
    "Invalid or repeated Content-Length",
    Critical
);
check!(
    SMUGGLING,
    "protocol-smuggling-cl-te",
    "Request smuggling: Content-Length with Transfer-Encoding",
    Critical
);
check!(
    TRANSFER_ENCODING,
    "protocol-transfer-encoding-invalid",
    "Transfer-Encoding other than chunked",
    Critical
);
check!(
    HEADER_INJECTION,
    "protocol-header-injection",
    "Line break in a header value",
    Critical
);
check!(
    NUL_BYTE,
    "protocol-nul-byte",
    "NUL or control byte in the URI, an argument, a cookie name or a header",
    Critical
);
check!(
    URL_ENCODING,
    "protocol-invalid-url-encoding",
    "Invalid percent-encoding",
    Critical
);
check!(
    OVERLONG,
    "protocol-overlong-utf8",
    "Overlong or full-width UTF-8 evasion",
    Critical
);
check!(
    RANGE,
    "protocol-range-abuse",
    "Abusive or invalid Range header",
    Critical
);
check!(HOST, "protocol-host-missing", "Missing or empty Host", High);
check!(
    HOST_IP,
    "protocol-host-is-ip",
    "Host is a numeric IP address",
    Medium
);
check!(
    RESTRICTED_HEADER,
    "protocol-restricted-header",
    "Request header restricted by policy",
    Critical
);
check!(
    METHOD_OVERRIDE,
    "protocol-method-override",
    "HTTP method override parameter or header",
    Critical
);
check!(
    CONNECTION,
    "protocol-connection-repeated",
    "Repeated or conflicting Connection options",
    Critical
);
check!(
    ACCEPT_ENCODING,
    "protocol-accept-encoding-invalid",
    "Malformed Accept-Encoding",
    Critical
);
check!(
    ACCEPT_CHARSET,
    "protocol-accept-charset-invalid",
    "Accept header names a charset not allowed",
    Critical
);
check!(
    MULTIPART,
    "protocol-multipart-malformed",
    "Malformed multipart body or part name",
    Critical
);
check!(
    MULTIPART_CHARSET,
    "protocol-multipart-charset",
    "Multipart part with a charset not allowed",
    Critical
);
check!(
    DOUBLE_ENCODING,
    "protocol-double-url-encoding",
    "Letter or digit percent-encoded twice",
    Critical
);
check!(
    HOST_CONFUSION,
    "rfi-host-confusion",
    "URL argument that imitates the request host",
    Critical
);
check!(
    BACKUP_FILE,
    "protocol-restricted-extension",
    "Request for a backup or restricted file extension",
    Critical
);

/// Request headers that have no use in ordinary client requests and serve
/// known attacks: `proxy` (httpoxy), WebDAV lock headers and `if`,
/// `content-range` and `content-encoding` in requests, `translate` (IIS
/// source disclosure), the legacy `request-range`, and `x-original-url` and
/// `x-rewrite-url`, with which servers that trust them route a request to
/// another path than the one access rules checked.
const RESTRICTED_HEADERS: &[&str] = &[
    "proxy",
    "lock-token",
    "content-range",
    "if",
    "translate",
    "request-range",
    "content-encoding",
    "x-up-devcap-post-charset",
    "x-original-url",
    "x-rewrite-url",
];

/// File extensions of backups, editor swap files, configuration, database
/// and version control files.
const RESTRICTED_EXTENSIONS: &[&str] = &[
    ".bak",
    ".backup",
    ".old",
    ".orig",
    ".save",
    ".swp",
    ".swo",
    ".tmp",
    ".temp",
    ".sql",
    ".sqlite",
    ".db",
    ".mdb",
    ".dbf",
    ".config",
    ".conf",
    ".cfg",
    ".ini",
    ".log",
    ".htaccess",
    ".htpasswd",
    ".git",
    ".svn",
    ".hg",
    ".env",
    ".pem",
    ".key",
    ".crt",
    ".p12",
    ".pfx",
    ".cer",
    ".der",
    ".asa",
    ".cdx",
    ".idq",
    ".ida",
    ".htr",
    ".printer",
    ".dll",
    ".rdb",
    ".resources",
    ".csproj",
    ".vbproj",
    ".sln",
    ".vb",
    ".cs",
    ".bat",
    ".cmd",
    ".ps1",
    ".exe",
    ".sys",
    ".dist",
    ".inc",
    ".lock",
    ".kdbx",
    ".npmrc",
    ".history",
];

/// Runs every header-phase check.
pub fn check_headers(limits: &Limits, headers: &HeaderPairs, targets: &[Target]) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut hit = |rule: RuleInfo, paranoia: u8, target: &str, excerpt: &str| {
        hits.push(Hit {
            rule,
            paranoia,
            target: target.to_string(),
            excerpt: excerpt.chars().take(40).collect(),
        })
    };
    let method =
        String::from_utf8_lossy(first_value(headers, ":method").unwrap_or_default()).into_owned();
    if !limits.allowed_methods.contains(&method) {
        hit(METHOD, 1, "method", &method);
    }
    let raw_path = first_value(headers, ":path").unwrap_or_default();
    if raw_path.len() > limits.max_uri_bytes {
        hit(URI_LENGTH, 1, "path", &format!("{} bytes", raw_path.len()));
    }
    if !raw_path.starts_with(b"/") && method != "OPTIONS" && method != "CONNECT" {
        hit(
            URI_LENGTH_FORM,
            1,
            "path",
            &String::from_utf8_lossy(raw_path),
        );
    }
    let regular: Vec<_> = headers
        .iter()
        .filter(|(name, _)| !name.starts_with(':'))
        .collect();
    if limits.max_headers > 0 && regular.len() > limits.max_headers {
        hit(
            HEADER_COUNT,
            1,
            "headers",
            &format!("{} headers", regular.len()),
        );
    }
    let has_line_break = |bytes: &[u8]| bytes.iter().any(|&byte| byte == b'\r' || byte == b'\n');
    for (name, value) in &regular {
        let lower = lower_case(name);
        let label = || format!("header.{lower}");
        if limits.max_header_bytes > 0 && value.len() > limits.max_header_bytes && lower != "cookie"
        {
            hit(HEADER_SIZE, 1, &label(), &format!("{} bytes", value.len()));
        }
        // Decoding only matters when the value has a `%`.
        let decoded = value
            .contains(&b'%')
            .then(|| percent_decode(value, Plus::Literal));
        if has_line_break(value) || decoded.as_deref().is_some_and(has_line_break) {
            hit(HEADER_INJECTION, 1, &label(), "line break");
        }
        // An encoded NUL, as in `Referer: x%00`, ends a C string in
        // applications that decode the header before they use it.
        if value.contains(&0) || decoded.is_some_and(|decoded| decoded.contains(&0)) {
            hit(NUL_BYTE, 1, &label(), "NUL byte");
        }
        if RESTRICTED_HEADERS.contains(&&*dashed(&lower)) {
            hit(RESTRICTED_HEADER, 1, &label(), &lower);
        }
    }
    check_host(headers, &mut hit);
    check_framing(headers, &method, &mut hit);
    check_content_type(limits, headers, &mut hit);
    check_negotiation(limits, headers, &mut hit);
    check_uri(limits, raw_path, targets, &mut hit);
    hits
}

check!(
    URI_LENGTH_FORM,
    "protocol-uri-not-origin-form",
    "Request target is not a path",
    Critical
);

fn check_host(headers: &HeaderPairs, hit: &mut impl FnMut(RuleInfo, u8, &str, &str)) {
    let host = first_value(headers, ":authority").or_else(|| first_value(headers, "host"));
    match host {
        None => hit(HOST, 1, "header.host", "missing"),
        Some(value) if value.trim_ascii().is_empty() => hit(HOST, 1, "header.host", "empty"),
        Some(value) => {
            let text = String::from_utf8_lossy(value);
            let bare = text.trim_start_matches('[');
            let bare = bare.split(']').next().unwrap_or_default();
            let without_port = bare.rsplit_once(':').map_or(bare, |(host, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) && !bare.contains("::") {
                    host
                } else {
                    bare
                }
            });
            let address = without_port
                .parse::<std::net::IpAddr>()
                .or_else(|_| bare.parse::<std::net::Ipv6Addr>().map(std::net::IpAddr::V6));
            // A loopback host is a local client or test, not a scanner
            // sweeping addresses, and naming it cannot lower a score.
            if address.is_ok_and(|ip| !ip.is_loopback()) {
                hit(HOST_IP, 1, "header.host", &text);
            }
        }
    }
}

fn check_framing(
    headers: &HeaderPairs,
    method: &str,
    hit: &mut impl FnMut(RuleInfo, u8, &str, &str),
) {
    let lengths: Vec<&[u8]> = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map(|(_, value)| value.as_slice())
        .collect();
    for value in &lengths {
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            hit(
                CONTENT_LENGTH,
                1,
                "header.content-length",
                &String::from_utf8_lossy(value),
            );
        }
    }
    if lengths.len() > 1 && lengths.windows(2).any(|pair| pair[0] != pair[1]) {
        hit(
            CONTENT_LENGTH,
            1,
            "header.content-length",
            "conflicting values",
        );
    }
    let transfer = first_value(headers, "transfer-encoding");
    if let Some(transfer) = transfer {
        if !lengths.is_empty() {
            hit(
                SMUGGLING,
                1,
                "header.transfer-encoding",
                "with content-length",
            );
        }
        // Repeated headers form one list, so a second `transfer-encoding`
        // counts as `chunked, identity` written in one would.
        let copies = headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("transfer-encoding"))
            .count();
        if copies > 1 || !transfer.trim_ascii().eq_ignore_ascii_case(b"chunked") {
            hit(
                TRANSFER_ENCODING,
                1,
                "header.transfer-encoding",
                &String::from_utf8_lossy(transfer),
            );
        }
    }
    let has_body =
        transfer.is_some() || lengths.iter().any(|value| value.iter().any(|&b| b != b'0'));
    if has_body && (method == "GET" || method == "HEAD") {
        hit(GET_BODY, 1, "method", method);
    }
}

fn check_content_type(
    limits: &Limits,
    headers: &HeaderPairs,
    hit: &mut impl FnMut(RuleInfo, u8, &str, &str),
) {
    let Some(content_type) = first_value(headers, "content-type") else {
        return;
    };
    let label = "header.content-type";
    let text = String::from_utf8_lossy(content_type).to_ascii_lowercase();
    let media = media_type(content_type);
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let well_formed = media
        .split_once('/')
        .is_some_and(|(kind, sub)| token(kind) && token(sub));
    if !well_formed {
        hit(CONTENT_TYPE_SYNTAX, 1, label, &media);
        return;
    }
    let base = if media.ends_with("+json") {
        "application/json".to_string()
    } else if media.ends_with("+xml") {
        "application/xml".to_string()
    } else {
        media.clone()
    };
    let allowed =
        limits
            .allowed_content_types
            .iter()
            .any(|allowed| match allowed.strip_suffix('*') {
                Some(prefix) => base.starts_with(prefix),
                None => *allowed == base || *allowed == media,
            });
    if !allowed {
        hit(CONTENT_TYPE, 1, label, &media);
    }
    // HTTP writes a media type parameter as `name=value`. Multipart and
    // charset parsers disagree on a parameter without `=` or a value after
    // a run of spaces, as in `boundary=  x`. One space around `=`, which
    // some clients send, and empty parameters from a trailing `;` pass.
    let malformed_parameter = parameters_outside_quotes(&text).find(|parameter| {
        let parameter = parameter.trim();
        !parameter.is_empty()
            && parameter.split_once('=').is_none_or(|(_, value)| {
                let value = value.strip_prefix([' ', '\t']).unwrap_or(value);
                value.is_empty() || value.starts_with([' ', '\t'])
            })
    });
    if let Some(parameter) = malformed_parameter {
        hit(CONTENT_TYPE_SYNTAX, 1, label, parameter.trim());
    }
    let parameters: Vec<(&str, &str)> = parameters_outside_quotes(&text)
        .filter_map(|parameter| parameter.split_once('='))
        .map(|(name, value)| (name.trim(), value.trim().trim_matches('"')))
        .collect();
    let charsets: Vec<&str> = parameters
        .iter()
        .filter(|(n, _)| *n == "charset")
        .map(|(_, v)| *v)
        .collect();
    if charsets.len() > 1 {
        hit(CHARSET, 1, label, "repeated charset");
    }
    if let Some(charset) = charsets
        .iter()
        .find(|charset| !charset_allowed(limits, charset))
    {
        hit(CHARSET, 1, label, charset);
    }
    let boundary = parameters.iter().any(|(name, _)| *name == "boundary");
    if boundary && !media.starts_with("multipart/") {
        hit(
            CONTENT_TYPE_SYNTAX,
            1,
            label,
            "boundary on a non-multipart type",
        );
    }
    if parameters.iter().any(|(_, value)| value.contains('/')) && !media.starts_with("multipart/") {
        hit(
            CONTENT_TYPE_SYNTAX,
            1,
            label,
            "media type inside a parameter",
        );
    }
}

fn check_negotiation(
    limits: &Limits,
    headers: &HeaderPairs,
    hit: &mut impl FnMut(RuleInfo, u8, &str, &str),
) {
    if let Some(connection) = first_value(headers, "connection") {
        let text = String::from_utf8_lossy(connection).to_ascii_lowercase();
        let options: Vec<&str> = text.split(',').map(str::trim).collect();
        let repeated = options
            .iter()
            .enumerate()
            .any(|(i, a)| options[..i].contains(a));
        let conflicting = options.contains(&"close") && options.contains(&"keep-alive");
        if repeated || conflicting {
            hit(CONNECTION, 1, "header.connection", &text);
        }
    }
    if let Some(encoding) = first_value(headers, "accept-encoding") {
        let text = String::from_utf8_lossy(encoding).to_ascii_lowercase();
        let valid = text.len() <= 100
            && text.split(',').all(|item| {
                let coding = item.split(';').next().unwrap_or_default().trim();
                coding.len() <= 20
                    && coding
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-*_.".contains(&b))
            });
        if !valid {
            hit(ACCEPT_ENCODING, 1, "header.accept-encoding", &text);
        }
    }
    if let Some(accept) = first_value(headers, "accept") {
        let text = String::from_utf8_lossy(accept).to_ascii_lowercase();
        for (index, _) in text.match_indices("charset=") {
            let value: String = text[index + 8..]
                .trim_start_matches('"')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            if !charset_allowed(limits, &value) {
                hit(ACCEPT_CHARSET, 1, "header.accept", &value);
            }
        }
    }
    for name in ["range", "request-range"] {
        let Some(range) = first_value(headers, name) else {
            continue;
        };
        let text = String::from_utf8_lossy(range).to_ascii_lowercase();
        let spec = text.trim().strip_prefix("bytes=").unwrap_or(&text);
        let ranges: Vec<&str> = spec.split(',').map(str::trim).collect();
        let inverted = ranges.iter().any(|range| {
            let (first, last) = range.split_once('-').unwrap_or((range, ""));
            match (first.parse::<u64>(), last.parse::<u64>()) {
                (Ok(first), Ok(last)) => last < first,
                _ => false,
            }
        });
        if ranges.len() > 5 || inverted || !text.trim().starts_with("bytes=") {
            hit(RANGE, 1, &format!("header.{name}"), &text);
        }
    }
    if let Some(value) = first_value(headers, "x-http-method-override")
        .or_else(|| first_value(headers, "x-http-method"))
        .or_else(|| first_value(headers, "x-method-override"))
        .filter(|value| {
            first_value(headers, ":method") != Some(b"POST".as_slice())
                || !is_allowed_method(limits, value)
        })
    {
        hit(
            METHOD_OVERRIDE,
            1,
            "header.x-http-method-override",
            &String::from_utf8_lossy(value),
        );
    }
}

/// Tells whether a method override names a method that the request could
/// have used directly. Frameworks such as Rails and Laravel send a
/// `_method` form field with every edit form, and API clients send the
/// override header on POST; an override to a method outside
/// `allowed_methods` gets past the method check.
fn is_allowed_method(limits: &Limits, value: &[u8]) -> bool {
    let method = String::from_utf8_lossy(value.trim_ascii()).to_ascii_uppercase();
    limits.allowed_methods.contains(&method)
}

fn check_uri(
    limits: &Limits,
    raw_path: &[u8],
    targets: &[Target],
    hit: &mut impl FnMut(RuleInfo, u8, &str, &str),
) {
    let (path, _) = split_path(raw_path);
    if invalid_percent(raw_path) {
        hit(URL_ENCODING, 1, "path", &String::from_utf8_lossy(raw_path));
    }
    // Text with a percent sign followed by two hex digits, such as the printf
    // format `%4d` typed into a search box, is encoded as `%254d` and reads
    // as a double encoding, so the check runs from paranoia level 2.
    if let Some(escape) = double_encoded_unreserved(raw_path) {
        hit(DOUBLE_ENCODING, 2, "path", &escape);
    }
    let decoded_path =
        String::from_utf8_lossy(&percent_decode(path, Plus::Literal)).to_ascii_lowercase();
    // `shell.php%00.jpg`: servers and languages that end strings at NUL
    // open `shell.php`, while an extension check reads `.jpg`.
    if decoded_path.contains('\0') {
        hit(NUL_BYTE, 1, "path", "NUL byte");
    }
    let file = decoded_path.rsplit('/').next().unwrap_or_default();
    // An editor backup such as `index.php~` also counts before more path
    // segments, which servers pass to the script as path info.
    let segments: Vec<&str> = decoded_path.split('/').collect();
    let backup_segment = segments.iter().enumerate().find_map(|(index, segment)| {
        // Servers drop `;` parameters, and Windows drops trailing dots,
        // spaces and the `::$data` stream name, before they open the file.
        let name = segment.split(';').next().unwrap_or_default();
        let name = name.strip_suffix("::$data").unwrap_or(name);
        let name = name.trim_end_matches(['.', ' ']);
        let stem = name.strip_suffix('~')?;
        // A lone `~` is a home-directory segment. Before more segments, only
        // a file name with an extension counts, since a directory may end
        // in `~`.
        let last = index + 1 == segments.len();
        (!stem.is_empty() && (last || stem.contains('.'))).then_some(*segment)
    });
    if let Some(segment) = backup_segment {
        hit(BACKUP_FILE, 1, "path", segment);
    } else if RESTRICTED_EXTENSIONS
        .iter()
        .any(|ext| file.ends_with(ext) && file.len() > ext.len())
    {
        hit(BACKUP_FILE, 1, "path", file);
    }
    check_args(limits, targets, hit);
}

/// Runs the argument checks over query, form, JSON, XML and multipart
/// targets.
pub fn check_args(
    limits: &Limits,
    targets: &[Target],
    hit: &mut impl FnMut(RuleInfo, u8, &str, &str),
) {
    let mut count = 0;
    for target in targets {
        match target.kind {
            TargetKind::ArgName => {
                if target.label != JSON_NAME_LABEL {
                    count += 1;
                }
                if target.value.len() > limits.max_arg_name_bytes {
                    hit(
                        ARG_NAME,
                        1,
                        &target.label,
                        &format!("{} bytes", target.value.len()),
                    );
                }
            }
            TargetKind::ArgValue => {
                if target.value.len() > limits.max_arg_value_bytes {
                    hit(
                        ARG_VALUE,
                        1,
                        &target.label,
                        &format!("{} bytes", target.value.len()),
                    );
                }
                // In the query string an override lets a link or an image
                // make a state-changing request, so it always counts.
                let overrides = target.name == "_method"
                    && (target.label.starts_with("query.")
                        || (target.label.starts_with("form.")
                            && !is_allowed_method(limits, &target.value)));
                if overrides {
                    hit(
                        METHOD_OVERRIDE,
                        1,
                        &target.label,
                        &String::from_utf8_lossy(&target.value),
                    );
                }
            }
            _ => {}
        }
        if matches!(
            target.kind,
            TargetKind::ArgName | TargetKind::ArgValue | TargetKind::Path | TargetKind::CookieName
        ) {
            let control = target
                .value
                .iter()
                .any(|&b| b == 0 || (b < 0x20 && !b"\t\r\n".contains(&b)) || b == 0x7f);
            if control
                && !target.label.starts_with("json")
                && !target.label.starts_with("multipart")
            {
                hit(NUL_BYTE, 1, &target.label, "control byte");
            }
            if has_overlong(&target.value) {
                hit(OVERLONG, 1, &target.label, "overlong UTF-8 form");
            } else if has_full_width_syntax(&target.value) {
                hit(OVERLONG, 2, &target.label, "full-width form");
            }
        }
    }
    if count > limits.max_args {
        hit(ARG_COUNT, 1, "args", &format!("{count} arguments"));
    }
}

/// Runs the checks that need the body: form encoding and multipart parts.
pub fn check_body(
    limits: &Limits,
    body: &[u8],
    content_type: Option<&[u8]>,
    parts: Option<&[Part]>,
    targets: &[Target],
) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut hit = |rule: RuleInfo, paranoia: u8, target: &str, excerpt: &str| {
        hits.push(Hit {
            rule,
            paranoia,
            target: target.to_string(),
            excerpt: excerpt.chars().take(40).collect(),
        })
    };
    if content_type.is_none() && !body.is_empty() {
        hit(NO_CONTENT_TYPE, 1, "body", "no content-type");
    }
    let media = content_type.map(media_type).unwrap_or_default();
    if media == "application/x-www-form-urlencoded" && invalid_percent(body) {
        hit(URL_ENCODING, 1, "body", "invalid escape");
    }
    let json = match body_format(content_type) {
        BodyFormat::Json => true,
        BodyFormat::Raw => matches!(body.trim_ascii_start().first(), Some(b'{' | b'[')),
        _ => false,
    };
    // Ordinary API requests rarely nest this deep, and parsers with recursion
    // limits reject such documents, so a deep body is worth scoring even
    // though the filter reads its values at any depth.
    if json {
        let depth = json_depth(body);
        if depth > MAX_JSON_DEPTH {
            hit(JSON_DEPTH, 1, "body", &format!("nesting depth {depth}"));
        }
    }
    if media == "multipart/form-data" {
        match parts {
            None => hit(MULTIPART, 1, "body", "unparsable multipart body"),
            Some(parts) => {
                for part in parts {
                    // Browsers fill a field named `_charset_` with the
                    // encoding of the form, and servers may decode the
                    // other fields with it.
                    if part.name == b"_charset_" {
                        let charset =
                            String::from_utf8_lossy(part.content.trim_ascii()).to_ascii_lowercase();
                        // An empty field names no charset.
                        let known = charset.is_empty() || charset_allowed(limits, &charset);
                        if !known {
                            hit(MULTIPART_CHARSET, 1, "multipart._charset_", &charset);
                        }
                    }
                    // An RFC 2047 encoded word, in which some clients write a
                    // file name that is not ASCII (`=?utf-8?B?...?=`), has
                    // `=` and `?` of its own.
                    let encoded_word = |name: &[u8]| {
                        name.starts_with(b"=?")
                            && name.ends_with(b"?=")
                            && !name.iter().any(|b| b"\"';\\ ".contains(b) || *b < 0x20)
                    };
                    // The paranoia level from which a name counts as
                    // malformed, if it does. People write apostrophes in
                    // file names (`John's CV.pdf`), so an apostrophe alone
                    // counts from `apostrophe_level`.
                    let malformed_from = |name: &[u8], apostrophe_level: u8| {
                        if encoded_word(name) {
                            None
                        } else if name.iter().any(|b| b"\";=\\".contains(b) || *b < 0x20) {
                            Some(1)
                        } else if name.contains(&b'\'') {
                            Some(apostrophe_level)
                        } else {
                            None
                        }
                    };
                    let file_names = [&part.filename, &part.extended_filename];
                    let level = file_names
                        .into_iter()
                        .flatten()
                        .map(|name| malformed_from(name, 2))
                        .chain([malformed_from(&part.name, 1)])
                        .flatten()
                        .min();
                    if let Some(level) = level {
                        hit(
                            MULTIPART,
                            level,
                            "multipart_name",
                            &String::from_utf8_lossy(&part.name),
                        );
                    }
                    for (name, value) in &part.headers {
                        let lower = String::from_utf8_lossy(value).to_ascii_lowercase();
                        if name == "content-type" {
                            if let Some(index) = lower.find("charset") {
                                let charset: String = lower[index + 7..]
                                    .trim_start_matches([' ', '='])
                                    .trim_start_matches('"')
                                    .chars()
                                    .take_while(|c| {
                                        c.is_ascii_alphanumeric() || *c == '-' || *c == '_'
                                    })
                                    .collect();
                                if !charset_allowed(limits, &charset) {
                                    hit(MULTIPART_CHARSET, 1, "multipart_header", &charset);
                                }
                            }
                        }
                        // Identity encodings, which some HTTP clients name,
                        // change nothing. Base64 and quoted-printable hide
                        // the content from the rules.
                        let identity = ["7bit", "8bit", "binary"].contains(&lower.trim());
                        if name == "content-transfer-encoding" && !identity {
                            hit(MULTIPART, 1, "multipart_header", name);
                        }
                    }
                }
            }
        }
    }
    check_args(limits, targets, &mut hit);
    hits
}

/// Returns the first escape of a letter or a digit that is left after `raw`
/// is percent-decoded once, twice or three times, as `%2573` and `%25%37%33`
/// leave `%73`. Encoders have no need to escape those characters, so an
/// escape that is escaped again only serves to get a word past a filter that
/// decodes once. Doubly encoded reserved characters such as `%252F` pass,
/// because a URL carried inside a parameter has them.
fn double_encoded_unreserved(raw: &[u8]) -> Option<String> {
    let has_encoded_percent = |value: &[u8]| {
        value
            .windows(3)
            .any(|window| window.eq_ignore_ascii_case(b"%25"))
    };
    let encodes_alphanumeric = |window: &[u8]| {
        window[0] == b'%' && hex_byte(window, 1).is_some_and(|byte| byte.is_ascii_alphanumeric())
    };
    let mut value = raw.to_vec();
    for _ in 0..3 {
        if !has_encoded_percent(&value) {
            return None;
        }
        value = percent_decode(&value, Plus::Literal);
        if let Some(window) = value.windows(3).find(|window| encodes_alphanumeric(window)) {
            return Some(String::from_utf8_lossy(window).into_owned());
        }
    }
    None
}

/// Returns the parameters of a media type, the text after each `;` that is
/// not inside a quoted string.
fn parameters_outside_quotes(text: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    let mut escaped = false;
    let mut starts = vec![];
    for (index, byte) in text.bytes().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b';' if !quoted => starts.push(index),
            _ => {}
        }
    }
    let ends: Vec<usize> = starts.iter().skip(1).copied().chain([text.len()]).collect();
    starts
        .into_iter()
        .zip(ends)
        .map(move |(start, end)| &text[start + 1..end])
}

fn invalid_percent(raw: &[u8]) -> bool {
    raw.iter().enumerate().any(|(index, &byte)| {
        byte == b'%'
            && !(raw.get(index + 1).is_some_and(u8::is_ascii_hexdigit)
                && raw.get(index + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// Tells whether a lower-case charset name is allowed. `utf8` is a common
/// spelling of UTF-8 and counts as `utf-8`.
fn charset_allowed(limits: &Limits, charset: &str) -> bool {
    let charset = if charset == "utf8" { "utf-8" } else { charset };
    limits
        .allowed_charsets
        .iter()
        .any(|allowed| allowed == charset)
}

/// Tells whether a value has an overlong UTF-8 form, which clients never
/// need and filters often miss.
fn has_overlong(value: &[u8]) -> bool {
    value
        .windows(2)
        .any(|pair| (pair[0] == 0xc0 || pair[0] == 0xc1) && pair[1] & 0xc0 == 0x80)
        || value
            .windows(3)
            .any(|w| w[0] == 0xe0 && w[1] < 0xa0 && w[1] & 0xc0 == 0x80 && w[2] & 0xc0 == 0x80)
}

/// Tells whether a value has the full-width form of `/`, `<`, `>` or `\`,
/// which a server that folds Unicode compatibility forms reads as the ASCII
/// character. Chinese and Japanese text uses these forms as ordinary
/// punctuation, so they count from paranoia level 2; the rules read values
/// with full-width forms folded anyway.
fn has_full_width_syntax(value: &[u8]) -> bool {
    value
        .windows(3)
        .any(|w| w[0] == 0xef && w[1] == 0xbc && b"\x8f\x9c\x9e\xbc".contains(&w[2]))
}

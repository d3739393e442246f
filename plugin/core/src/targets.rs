//! Extraction of the separate values that rules inspect from a request.
//!
//! Each argument, header, cookie, JSON string, XML attribute or text node and
//! multipart field becomes its own [`Target`], so a pattern never matches
//! across two values. Argument names and values are decoded once, the way an
//! application framework decodes them; rules decode further in their chains.

use crate::decode::{percent_decode, Plus};
use crate::http::{split_cookies, split_pairs, split_path, truncate_chars, HeaderPairs};
use crate::rules::TargetKind;

/// Maximum number of characters of a parameter, header or cookie name in a
/// target label.
pub const MAX_TARGET_NAME_CHARS: usize = 64;

/// Maximum nesting depth of a JSON body that is walked; deeper values are
/// inspected as part of the raw body instead.
pub const MAX_JSON_DEPTH: usize = 32;

/// Name fragments that mark a header, cookie or parameter as holding a
/// credential, so its value never appears in an excerpt.
const SENSITIVE_NAME_FRAGMENTS: &[&str] = &[
    "auth",
    "cookie",
    "credential",
    "csrf",
    "jwt",
    "key",
    "otp",
    "pass",
    "pwd",
    "secret",
    "session",
    "signature",
    "token",
    "xsrf",
];

/// One request value to inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What the value is.
    pub kind: TargetKind,
    /// Lower-case name of the header, argument or cookie, empty for targets
    /// without one; rules limited to names compare against it.
    pub name: String,
    /// Label in events, such as `query.q`, `header.referer` or `json.a.b`.
    pub label: String,
    /// The value, decoded once for arguments and cookies.
    pub value: Vec<u8>,
    /// Whether the value may hold a credential and must not be excerpted.
    pub sensitive: bool,
}

impl Target {
    fn new(kind: TargetKind, name: &[u8], label: String, value: Vec<u8>) -> Self {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let sensitive = is_sensitive_name(name.as_bytes());
        Target {
            kind,
            name,
            label,
            value,
            sensitive,
        }
    }
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Part {
    /// Part headers as written, names lower-cased.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The `name` parameter of `content-disposition`.
    pub name: Vec<u8>,
    /// The `filename` parameter, when present.
    pub filename: Option<Vec<u8>>,
    /// The part content.
    pub content: Vec<u8>,
}

/// Tells whether a header, cookie or parameter name suggests that its value
/// is a credential, such as `authorization`, `x-api-key` or `password`.
pub fn is_sensitive_name(name: &[u8]) -> bool {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    SENSITIVE_NAME_FRAGMENTS
        .iter()
        .any(|fragment| lower.contains(fragment))
}

/// Returns a name as a label part: lossy UTF-8, control characters as `?`,
/// cut to [`MAX_TARGET_NAME_CHARS`] characters.
pub fn label_name(name: &[u8]) -> String {
    truncate_chars(&String::from_utf8_lossy(name), MAX_TARGET_NAME_CHARS)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Returns the targets of the request headers: method, path, query string,
/// each query argument, each header name and value, and each cookie.
pub fn header_targets(headers: &HeaderPairs) -> Vec<Target> {
    let mut targets = Vec::new();
    for (name, value) in headers {
        match name.to_ascii_lowercase().as_str() {
            ":method" => targets.push(Target::new(
                TargetKind::Method,
                b"",
                "method".to_string(),
                value.clone(),
            )),
            ":path" => {
                let (path, query) = split_path(value);
                targets.push(Target::new(
                    TargetKind::Path,
                    b"",
                    "path".to_string(),
                    path.to_vec(),
                ));
                if let Some(query) = query {
                    targets.push(Target::new(
                        TargetKind::QueryString,
                        b"",
                        "query_string".to_string(),
                        query.to_vec(),
                    ));
                    push_pairs(&mut targets, query, "query");
                }
            }
            ":authority" => targets.push(Target::new(
                TargetKind::HeaderValue,
                b"host",
                "header.host".to_string(),
                value.clone(),
            )),
            lower if lower.starts_with(':') => {}
            "cookie" => {
                for (cookie_name, cookie_value) in split_cookies(value) {
                    let decoded_name = percent_decode(cookie_name, Plus::Literal);
                    targets.push(Target::new(
                        TargetKind::CookieName,
                        b"",
                        "cookie_name".to_string(),
                        decoded_name.clone(),
                    ));
                    let mut target = Target::new(
                        TargetKind::CookieValue,
                        &decoded_name,
                        format!("cookie.{}", label_name(&decoded_name)),
                        percent_decode(cookie_value, Plus::Literal),
                    );
                    // Cookie values are session state, so none is ever logged.
                    target.sensitive = true;
                    targets.push(target);
                }
            }
            lower => {
                targets.push(Target::new(
                    TargetKind::HeaderName,
                    b"",
                    "header_name".to_string(),
                    name.as_bytes().to_vec(),
                ));
                targets.push(Target::new(
                    TargetKind::HeaderValue,
                    lower.as_bytes(),
                    format!("header.{}", label_name(lower.as_bytes())),
                    value.clone(),
                ));
            }
        }
    }
    targets
}

/// Appends the name and value targets of a query string or form body.
fn push_pairs(targets: &mut Vec<Target>, raw: &[u8], source: &str) {
    for (name, value) in split_pairs(raw) {
        let decoded_name = percent_decode(name, Plus::Space);
        targets.push(Target::new(
            TargetKind::ArgName,
            b"",
            format!("{source}_name"),
            decoded_name.clone(),
        ));
        targets.push(Target::new(
            TargetKind::ArgValue,
            &decoded_name,
            format!("{source}.{}", label_name(&decoded_name)),
            percent_decode(value, Plus::Space),
        ));
    }
}

/// The body formats that are parsed into arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `application/json` or a `+json` type.
    Json,
    /// `multipart/form-data`.
    Multipart,
    /// `application/xml`, `text/xml` or a `+xml` type.
    Xml,
    /// Anything else, inspected as raw text.
    Raw,
}

/// Returns the media type of a `content-type` value, lower-cased, without
/// parameters.
pub fn media_type(content_type: &[u8]) -> String {
    let media = content_type
        .split(|&byte| byte == b';')
        .next()
        .map(<[u8]>::trim_ascii)
        .unwrap_or_default();
    String::from_utf8_lossy(media).to_ascii_lowercase()
}

/// Picks the parser for a body by its `content-type`.
pub fn body_format(content_type: Option<&[u8]>) -> BodyFormat {
    let Some(content_type) = content_type else {
        return BodyFormat::Raw;
    };
    let media = media_type(content_type);
    match media.as_str() {
        "application/x-www-form-urlencoded" => BodyFormat::Form,
        "multipart/form-data" => BodyFormat::Multipart,
        "application/json" => BodyFormat::Json,
        "application/xml" | "text/xml" => BodyFormat::Xml,
        other if other.ends_with("+json") => BodyFormat::Json,
        other if other.ends_with("+xml") => BodyFormat::Xml,
        _ => BodyFormat::Raw,
    }
}

/// Returns the targets of a complete body, parsed by `content_type`.
///
/// A JSON or XML body that fails to parse, and a body of any other type, is
/// one raw [`TargetKind::Body`] target. A JSON body of another content type
/// that starts with `{` or `[` is parsed too, since attackers send JSON as
/// `text/plain` to skip the parser.
pub fn body_targets(body: &[u8], content_type: Option<&[u8]>, parts: &[Part]) -> Vec<Target> {
    let mut targets = Vec::new();
    match body_format(content_type) {
        BodyFormat::Form => push_pairs(&mut targets, body, "form"),
        BodyFormat::Json => {
            if !push_json(&mut targets, body) {
                targets.push(raw_body(body));
            }
        }
        BodyFormat::Multipart => push_parts(&mut targets, parts),
        BodyFormat::Xml => push_xml(&mut targets, body),
        BodyFormat::Raw => {
            targets.push(raw_body(body));
            let start = body.trim_ascii_start().first();
            if matches!(start, Some(b'{' | b'[')) {
                push_json(&mut targets, body);
            }
        }
    }
    targets
}

fn raw_body(body: &[u8]) -> Target {
    Target::new(TargetKind::Body, b"", "body".to_string(), body.to_vec())
}

fn push_json(targets: &mut Vec<Target>, body: &[u8]) -> bool {
    let Ok(document) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    walk_json(targets, &document, "json", b"", 0);
    true
}

fn walk_json(
    targets: &mut Vec<Target>,
    value: &serde_json::Value,
    path: &str,
    key: &[u8],
    depth: usize,
) {
    if depth > MAX_JSON_DEPTH {
        return;
    }
    match value {
        serde_json::Value::Object(map) => {
            for (name, child) in map {
                targets.push(Target::new(
                    TargetKind::ArgName,
                    b"",
                    "json_name".to_string(),
                    name.as_bytes().to_vec(),
                ));
                let child_path = format!("{path}.{}", label_name(name.as_bytes()));
                walk_json(targets, child, &child_path, name.as_bytes(), depth + 1);
            }
        }
        serde_json::Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                walk_json(targets, child, &format!("{path}[{index}]"), key, depth + 1);
            }
        }
        serde_json::Value::String(text) => targets.push(Target::new(
            TargetKind::ArgValue,
            key,
            path.to_string(),
            text.as_bytes().to_vec(),
        )),
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) | serde_json::Value::Null => {}
    }
}

fn push_parts(targets: &mut Vec<Target>, parts: &[Part]) {
    for part in parts {
        let label = label_name(&part.name);
        targets.push(Target::new(
            TargetKind::ArgName,
            b"",
            "multipart_name".to_string(),
            part.name.clone(),
        ));
        match &part.filename {
            Some(filename) => {
                targets.push(Target::new(
                    TargetKind::FileName,
                    &part.name,
                    format!("multipart_file.{label}"),
                    filename.clone(),
                ));
                targets.push(Target::new(
                    TargetKind::Body,
                    &part.name,
                    format!("multipart_content.{label}"),
                    part.content.clone(),
                ));
            }
            None => targets.push(Target::new(
                TargetKind::ArgValue,
                &part.name,
                format!("multipart.{label}"),
                part.content.clone(),
            )),
        }
    }
}

/// Returns the `boundary` parameter of a multipart `content-type`.
pub fn multipart_boundary(content_type: &[u8]) -> Option<Vec<u8>> {
    content_type
        .split(|&byte| byte == b';')
        .skip(1)
        .find_map(|parameter| {
            let parameter = parameter.trim_ascii();
            let (name, value) = parameter.split_at(parameter.iter().position(|&b| b == b'=')?);
            name.trim_ascii()
                .eq_ignore_ascii_case(b"boundary")
                .then(|| trim_quotes(value[1..].trim_ascii()).to_vec())
        })
        .filter(|boundary| !boundary.is_empty())
}

fn trim_quotes(value: &[u8]) -> &[u8] {
    value
        .strip_prefix(b"\"")
        .and_then(|inner| inner.strip_suffix(b"\""))
        .unwrap_or(value)
}

/// Splits a multipart body into parts. Returns `None` when the body has no
/// delimiter line for `boundary` or a part has no blank line after its
/// headers.
pub fn parse_multipart(body: &[u8], boundary: &[u8]) -> Option<Vec<Part>> {
    let mut delimiter = b"--".to_vec();
    delimiter.extend_from_slice(boundary);
    let mut sections = split_on(body, &delimiter);
    // The preamble before the first delimiter is ignored.
    sections.next()?;
    let mut parts = Vec::new();
    let mut seen_delimiter = false;
    for section in sections {
        seen_delimiter = true;
        if section.starts_with(b"--") {
            break;
        }
        let section = section
            .strip_prefix(b"\r\n")
            .or_else(|| section.strip_prefix(b"\n"))
            .unwrap_or(section);
        let (head, content) = split_head(section)?;
        let content = content
            .strip_suffix(b"\r\n")
            .or_else(|| content.strip_suffix(b"\n"))
            .unwrap_or(content);
        let mut part = Part {
            content: content.to_vec(),
            ..Part::default()
        };
        for line in head.split(|&byte| byte == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&byte| byte == b':') else {
                continue;
            };
            let name = String::from_utf8_lossy(&line[..colon])
                .trim()
                .to_ascii_lowercase();
            let value = line[colon + 1..].trim_ascii().to_vec();
            if name == "content-disposition" {
                part.name = disposition_parameter(&value, b"name").unwrap_or_default();
                part.filename = disposition_parameter(&value, b"filename");
            }
            part.headers.push((name, value));
        }
        parts.push(part);
    }
    seen_delimiter.then_some(parts)
}

fn split_on<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(haystack);
    std::iter::from_fn(move || {
        let current = rest?;
        match current
            .windows(needle.len())
            .position(|window| window == needle)
        {
            Some(index) => {
                rest = Some(&current[index + needle.len()..]);
                Some(&current[..index])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

fn split_head(section: &[u8]) -> Option<(&[u8], &[u8])> {
    if let Some(index) = section.windows(4).position(|window| window == b"\r\n\r\n") {
        return Some((&section[..index], &section[index + 4..]));
    }
    let index = section.windows(2).position(|window| window == b"\n\n")?;
    Some((&section[..index], &section[index + 2..]))
}

/// Reads a parameter such as `name="field"` from a `content-disposition`
/// value. A quoted value ends at the next quote not escaped by a backslash.
fn disposition_parameter(value: &[u8], wanted: &[u8]) -> Option<Vec<u8>> {
    let mut index = 0;
    while index < value.len() {
        let rest = &value[index..];
        let at_start = index == 0 || matches!(value[index - 1], b';' | b' ' | b'\t');
        if at_start
            && rest.len() > wanted.len()
            && rest[..wanted.len()].eq_ignore_ascii_case(wanted)
            && rest[wanted.len()] == b'='
        {
            let raw = &rest[wanted.len() + 1..];
            if raw.first() == Some(&b'"') {
                let mut output = Vec::new();
                let mut position = 1;
                while position < raw.len() && raw[position] != b'"' {
                    if raw[position] == b'\\' && position + 1 < raw.len() {
                        position += 1;
                    }
                    output.push(raw[position]);
                    position += 1;
                }
                return Some(output);
            }
            let end = raw.iter().position(|&b| b == b';').unwrap_or(raw.len());
            return Some(raw[..end].trim_ascii().to_vec());
        }
        index += 1;
    }
    None
}

/// Appends attribute values and text nodes of an XML body as arguments. The
/// scan is lexical: it needs no well-formed document.
fn push_xml(targets: &mut Vec<Target>, body: &[u8]) {
    let mut index = 0;
    let mut element: Vec<u8> = Vec::new();
    while index < body.len() {
        if body[index] == b'<' {
            let end = body[index..]
                .iter()
                .position(|&b| b == b'>')
                .map_or(body.len(), |offset| index + offset);
            let tag = &body[index + 1..end];
            let name_length = tag
                .iter()
                .take_while(|b| !b.is_ascii_whitespace() && **b != b'/' && **b != b'>')
                .count();
            element = tag[..name_length].to_vec();
            push_xml_attributes(targets, &tag[name_length..]);
            index = end + 1;
            continue;
        }
        let end = body[index..]
            .iter()
            .position(|&b| b == b'<')
            .map_or(body.len(), |offset| index + offset);
        let text = body[index..end].trim_ascii();
        if !text.is_empty() {
            targets.push(Target::new(
                TargetKind::ArgValue,
                &element,
                format!("xml.{}", label_name(&element)),
                text.to_vec(),
            ));
        }
        index = end;
    }
}

fn push_xml_attributes(targets: &mut Vec<Target>, mut rest: &[u8]) {
    while let Some(equals) = rest.iter().position(|&b| b == b'=') {
        let name = rest[..equals].trim_ascii();
        let name = name
            .iter()
            .rposition(|b| b.is_ascii_whitespace())
            .map_or(name, |space| &name[space + 1..]);
        let after = rest[equals + 1..].trim_ascii_start();
        let Some(&quote) = after.first().filter(|b| **b == b'"' || **b == b'\'') else {
            rest = after;
            continue;
        };
        let close = after[1..]
            .iter()
            .position(|&b| b == quote)
            .map_or(after.len(), |offset| offset + 1);
        targets.push(Target::new(
            TargetKind::ArgValue,
            name,
            format!("xml.@{}", label_name(name)),
            after[1..close].to_vec(),
        ));
        rest = after.get(close + 1..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests;

//! Extraction of the separate values that rules inspect from a request.
//!
//! Each argument, header, cookie, JSON string, XML attribute or text node and
//! multipart field becomes its own [`Target`], so a pattern never matches
//! across two values. Argument names and values are decoded once, the way an
//! application framework decodes them; rules decode further in their chains.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use crate::decode::{percent_decode, Plus};
use crate::http::{lower_case, split_cookies, split_pairs, split_path, HeaderPairs};
use crate::rules::TargetKind;

/// Maximum number of characters of a parameter, header or cookie name in a
/// target label.
pub const MAX_TARGET_NAME_CHARS: usize = 64;

/// Nesting depth of a JSON body past which the body scores as an anomaly
/// (rule `limit-json-depth`). Values at any depth are inspected regardless.
pub const MAX_JSON_DEPTH: usize = 32;

/// Label of the target for a JSON member name. Argument counts leave these
/// targets out, since an array of objects repeats the same few names.
pub const JSON_NAME_LABEL: &str = "json_name";

/// Maximum number of bytes of a JSON member name that the values under it
/// carry as their name. The member name target itself is whole.
const MAX_JSON_NAME_BYTES: usize = 64;

/// Maximum number of bytes of a JSON key path in a target label. Segments past
/// it are left out of the label, but their values are still inspected.
const MAX_JSON_LABEL_BYTES: usize = 256;

/// Name fragments that mark a header, cookie or parameter as holding a
/// credential, so its value never appears in an excerpt, by their first
/// letter.
fn sensitive_fragments(first: u8) -> &'static [&'static [u8]] {
    match first {
        b'a' => &[b"auth"],
        b'c' => &[b"cookie", b"credential", b"csrf"],
        b'j' => &[b"jwt"],
        b'k' => &[b"key"],
        b'o' => &[b"otp"],
        b'p' => &[b"pass", b"pwd"],
        b's' => &[b"secret", b"session", b"signature"],
        b't' => &[b"token"],
        b'x' => &[b"xsrf"],
        _ => &[],
    }
}

/// One request value to inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What the value is.
    pub kind: TargetKind,
    /// Lower-case name of the header, argument or cookie, empty for targets
    /// without one; rules limited to names compare against it.
    pub name: String,
    /// Label in events, such as `query.q`, `header.referer` or `json.a.b`.
    pub label: Cow<'static, str>,
    /// The value, decoded once for arguments and cookies.
    pub value: Vec<u8>,
    /// Whether the value is never excerpted, whatever its name (cookie
    /// values). See [`Target::is_sensitive`].
    pub sensitive: bool,
}

impl Target {
    fn new(
        kind: TargetKind,
        name: &[u8],
        label: impl Into<Cow<'static, str>>,
        value: Vec<u8>,
    ) -> Self {
        Target {
            kind,
            name: String::from_utf8_lossy(name).to_ascii_lowercase(),
            label: label.into(),
            value,
            sensitive: false,
        }
    }

    /// Tells whether the value may hold a credential and must not be
    /// excerpted. The name is looked at only here, when a rule matched,
    /// because most targets never match one.
    pub fn is_sensitive(&self) -> bool {
        self.sensitive || is_sensitive_name(self.name.as_bytes())
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
    /// The `filename*` parameter (RFC 8187), percent-decoded, when present.
    /// Servers that read it prefer it to `filename`.
    pub extended_filename: Option<Vec<u8>>,
    /// The part content.
    pub content: Vec<u8>,
}

/// Short names of credentials, matched whole because as fragments they would
/// match ordinary names (`pin` in `shipping`, `code` in `zipcode`).
const SENSITIVE_NAMES: &[&str] = &["code", "cvc", "cvv", "pin", "pw", "sid", "sig", "ssn"];

/// Length of the longest of [`SENSITIVE_NAMES`].
const MAX_SENSITIVE_NAME_BYTES: usize = 4;

/// Tells whether a header, cookie or parameter name suggests that its value
/// is a credential, such as `authorization`, `x-api-key`, `password`, `pw`
/// or OAuth's `code`.
pub fn is_sensitive_name(name: &[u8]) -> bool {
    // Names are short, so comparing at each position costs less than
    // lower-casing a copy and building a substring searcher per fragment.
    (name.len() <= MAX_SENSITIVE_NAME_BYTES
        && SENSITIVE_NAMES
            .iter()
            .any(|wanted| name.eq_ignore_ascii_case(wanted.as_bytes())))
        || (0..name.len()).any(|start| {
            let rest = &name[start..];
            sensitive_fragments(rest[0].to_ascii_lowercase())
                .iter()
                .any(|fragment| {
                    rest.get(..fragment.len())
                        .is_some_and(|part| part.eq_ignore_ascii_case(fragment))
                })
        })
}

/// Returns a name as a label part: lossy UTF-8, control characters as `?`,
/// cut to [`MAX_TARGET_NAME_CHARS`] characters.
pub fn label_name(name: &[u8]) -> String {
    let mut label = String::new();
    push_label_name(&mut label, name);
    label
}

/// Returns `prefix.name`, the name written as [`label_name`] writes it.
fn label(prefix: &str, name: &[u8]) -> String {
    let mut label = String::with_capacity(prefix.len() + 1 + name.len().min(MAX_TARGET_NAME_CHARS));
    label.push_str(prefix);
    label.push('.');
    push_label_name(&mut label, name);
    label
}

/// Appends a name as [`label_name`] returns it. Most names are short and
/// printable ASCII, which is appended as it is.
fn push_label_name(label: &mut String, name: &[u8]) {
    let printable = name.len() <= MAX_TARGET_NAME_CHARS
        && name.iter().all(|&byte| (0x20..0x7f).contains(&byte));
    match std::str::from_utf8(name) {
        Ok(text) if printable => label.push_str(text),
        _ => label.extend(
            String::from_utf8_lossy(name)
                .chars()
                .take(MAX_TARGET_NAME_CHARS)
                .map(|c| if c.is_control() { '?' } else { c }),
        ),
    }
}

/// Returns the targets of the request headers: method, path, query string,
/// each query argument, each header name and value, and each cookie.
pub fn header_targets(headers: &HeaderPairs) -> Vec<Target> {
    let mut targets = Vec::new();
    for (name, value) in headers {
        match &*lower_case(name) {
            ":method" => targets.push(Target::new(
                TargetKind::Method,
                b"",
                "method",
                value.clone(),
            )),
            ":path" => {
                let (path, query) = split_path(value);
                targets.push(Target::new(TargetKind::Path, b"", "path", path.to_vec()));
                if let Some(query) = query {
                    targets.push(Target::new(
                        TargetKind::QueryString,
                        b"",
                        "query_string",
                        query.to_vec(),
                    ));
                    push_pairs(&mut targets, query, "query", "query_name");
                }
            }
            ":authority" => targets.push(Target::new(
                TargetKind::HeaderValue,
                b"host",
                "header.host",
                value.clone(),
            )),
            lower if lower.starts_with(':') => {}
            "cookie" => {
                for (cookie_name, cookie_value) in split_cookies(value) {
                    let decoded_name = percent_decode(cookie_name, Plus::Literal);
                    let mut target = Target::new(
                        TargetKind::CookieValue,
                        &decoded_name,
                        label("cookie", &decoded_name),
                        percent_decode(cookie_value, Plus::Literal),
                    );
                    // Cookie values are session state, so none is ever logged.
                    target.sensitive = true;
                    targets.push(Target::new(
                        TargetKind::CookieName,
                        b"",
                        "cookie_name",
                        decoded_name,
                    ));
                    targets.push(target);
                }
            }
            lower => {
                targets.push(Target::new(
                    TargetKind::HeaderName,
                    b"",
                    "header_name",
                    name.as_bytes().to_vec(),
                ));
                targets.push(Target::new(
                    TargetKind::HeaderValue,
                    lower.as_bytes(),
                    label("header", lower.as_bytes()),
                    value.clone(),
                ));
            }
        }
    }
    targets
}

/// Appends the name and value targets of a query string or form body:
/// `name_label` labels the names and `source.name` each value.
fn push_pairs(targets: &mut Vec<Target>, raw: &[u8], source: &str, name_label: &'static str) {
    for (name, value) in split_pairs(raw) {
        let decoded_name = percent_decode(name, Plus::Space);
        let value = Target::new(
            TargetKind::ArgValue,
            &decoded_name,
            label(source, &decoded_name),
            percent_decode(value, Plus::Space),
        );
        targets.push(Target::new(
            TargetKind::ArgName,
            b"",
            name_label,
            decoded_name,
        ));
        targets.push(value);
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
/// A body of a type that is not parsed is one raw [`TargetKind::Body`]
/// target. A JSON body that is not strict JSON adds the raw body target to its
/// scanned keys and values. A body of another content type that starts with
/// `{` or `[` is scanned as JSON too, since attackers send JSON as
/// `text/plain` to skip the parser. The string literals of an
/// `application/graphql` body are argument values too. A raw body, or a JSON
/// body that is not JSON, that has the shape of form encoding (see
/// [`is_form_shaped`]) adds its fields as arguments, because lenient
/// applications read such a body as a form whatever its declared type.
pub fn body_targets(body: &[u8], content_type: Option<&[u8]>, parts: &[Part]) -> Vec<Target> {
    let mut targets = Vec::new();
    match body_format(content_type) {
        BodyFormat::Form => push_pairs(&mut targets, body, "form", "form_name"),
        BodyFormat::Json => push_json(&mut targets, body),
        BodyFormat::Multipart => push_parts(&mut targets, parts),
        BodyFormat::Xml => push_xml(&mut targets, body),
        BodyFormat::Raw => {
            targets.push(raw_body(body));
            let start = strip_bom(body).trim_ascii_start().first();
            if matches!(start, Some(b'{' | b'[')) {
                scan_json(&mut targets, strip_bom(body));
            }
            if content_type.is_some_and(|value| media_type(value) == "application/graphql") {
                push_graphql_strings(&mut targets, body);
            }
            if is_form_shaped(body) {
                push_pairs(&mut targets, body, "form", "form_name");
            }
        }
    }
    targets
}

/// Returns whether a body reads as `application/x-www-form-urlencoded`. It
/// needs at least one `name=value` field, names of letters, digits, `_`,
/// `.`, `-`, brackets or percent escapes, and no whitespace or control byte
/// anywhere, because form encoding writes spaces as `+` or `%20`. Prose,
/// code and JSON documents have spaces or other name characters, so they are
/// not split.
fn is_form_shaped(body: &[u8]) -> bool {
    let body = body
        .strip_suffix(b"\r\n")
        .or_else(|| body.strip_suffix(b"\n"))
        .unwrap_or(body);
    if body.iter().any(|&byte| byte <= b' ' || byte == 0x7f) {
        return false;
    }
    let is_name_byte = |byte: &u8| {
        byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-' | b'[' | b']' | b'%')
    };
    let mut fields = body
        .split(|&byte| byte == b'&')
        .filter(|field| !field.is_empty())
        .peekable();
    fields.peek().is_some()
        && fields.all(|field| match field.iter().position(|&byte| byte == b'=') {
            Some(equals) => equals > 0 && field[..equals].iter().all(is_name_byte),
            None => false,
        })
}

fn raw_body(body: &[u8]) -> Target {
    Target::new(TargetKind::Body, b"", "body", body.to_vec())
}

/// Appends each string literal of a GraphQL document as an argument value,
/// named after the argument or field that it is given to. Block strings
/// (`"""`) count as one literal, and comments (`#` to the end of the line)
/// are skipped.
fn push_graphql_strings(targets: &mut Vec<Target>, body: &[u8]) {
    let mut index = 0;
    while index < body.len() {
        match body[index] {
            b'#' => {
                let line = body[index..].iter().position(|&byte| byte == b'\n');
                index = line.map_or(body.len(), |offset| index + offset);
            }
            b'"' => {
                let name = graphql_argument_name(&body[..index]);
                let (value, length) = graphql_string(&body[index..]);
                targets.push(Target::new(
                    TargetKind::ArgValue,
                    name,
                    label("graphql", name),
                    value,
                ));
                index += length;
            }
            _ => index += 1,
        }
    }
}

/// Returns the argument name of a `name:` that ends `before`, or an empty
/// name when `before` does not end with a colon.
fn graphql_argument_name(before: &[u8]) -> &[u8] {
    let before = before.trim_ascii_end();
    let Some(before) = before.strip_suffix(b":") else {
        return b"";
    };
    let before = before.trim_ascii_end();
    let start = before
        .iter()
        .rposition(|&byte| !(byte.is_ascii_alphanumeric() || byte == b'_'))
        .map_or(0, |position| position + 1);
    &before[start..]
}

/// Reads the string literal at the start of `rest`, which starts with `"`,
/// and returns its text and its length in the document. An escaped quote
/// or backslash gives the character itself, and other escapes are kept as
/// they are for the rules' decoders. An unterminated literal runs to the
/// end of the document.
fn graphql_string(rest: &[u8]) -> (Vec<u8>, usize) {
    if rest.starts_with(b"\"\"\"") {
        let text = &rest[3..];
        let end = text.windows(3).position(|window| window == b"\"\"\"");
        return match end {
            Some(end) => (text[..end].to_vec(), end + 6),
            None => (text.to_vec(), rest.len()),
        };
    }
    let mut value = Vec::new();
    let mut index = 1;
    while index < rest.len() {
        match rest[index] {
            b'"' => return (value, index + 1),
            b'\\' if matches!(rest.get(index + 1), Some(b'"' | b'\\')) => {
                value.push(rest[index + 1]);
                index += 2;
            }
            byte => {
                value.push(byte);
                index += 1;
            }
        }
    }
    (value, rest.len())
}

/// Appends every key and string value of a JSON body, and the raw body as
/// well when `serde_json` rejects the body, with its fields when it has the
/// shape of a form.
///
/// The scan is lexical and iterative, so it reads values at any depth, keeps
/// every member of an object with duplicate names, and accepts what common
/// application parsers accept but `serde_json` rejects: a leading UTF-8 byte
/// order mark and lone surrogate escapes (decoded as U+FFFD).
fn push_json(targets: &mut Vec<Target>, body: &[u8]) {
    let body = strip_bom(body);
    scan_json(targets, body);
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
        targets.push(raw_body(body));
        if is_form_shaped(body) {
            push_pairs(targets, body, "form", "form_name");
        }
    }
}

fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body)
}

/// One open JSON object or array during [`scan_json`].
struct JsonFrame {
    /// Length of the key path of the container itself.
    base: usize,
    /// The nearest enclosing member name, which values inside arrays share,
    /// cut to [`MAX_JSON_NAME_BYTES`]. Frames share one copy, so a long name
    /// over many nested arrays costs its length once.
    key: Rc<[u8]>,
    /// Whether the container is an array.
    array: bool,
    /// Index of the current element of an array.
    index: usize,
    /// Whether the next string of an object is a member name.
    expect_key: bool,
}

/// Returns the maximum nesting depth of objects and arrays in a JSON text,
/// counting brackets outside strings only.
pub fn json_depth(body: &[u8]) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Appends a target for every member name and string value of a JSON text,
/// labelled with its key path such as `json.user.tags[1]`.
fn scan_json(targets: &mut Vec<Target>, body: &[u8]) {
    let mut frames: Vec<JsonFrame> = Vec::new();
    let mut path = String::from("json");
    let mut index = 0;
    while index < body.len() {
        let byte = body[index];
        match byte {
            b'{' | b'[' => {
                let key = enter_value(&frames, &mut path);
                frames.push(JsonFrame {
                    base: path.len(),
                    key,
                    array: byte == b'[',
                    index: 0,
                    expect_key: byte == b'{',
                });
                index += 1;
            }
            b'}' | b']' => {
                frames.pop();
                index += 1;
            }
            b',' => {
                if let Some(frame) = frames.last_mut() {
                    if frame.array {
                        frame.index += 1;
                    } else {
                        frame.expect_key = true;
                    }
                }
                index += 1;
            }
            b'"' => {
                let (text, next) = json_string(body, index + 1);
                index = next;
                match frames.last_mut() {
                    Some(frame) if !frame.array && frame.expect_key => {
                        frame.expect_key = false;
                        frame.key = Rc::from(&text[..text.len().min(MAX_JSON_NAME_BYTES)]);
                        // `prototype` inside a `constructor` object is read as
                        // one name, which deep-merge code resolves to a
                        // prototype just as it does `__proto__`.
                        let parent = frames.len().checked_sub(2).and_then(|at| frames.get(at));
                        let name = match parent {
                            Some(parent)
                                if !parent.array
                                    && text == b"prototype"
                                    && *parent.key == *b"constructor" =>
                            {
                                b"constructor.prototype".to_vec()
                            }
                            _ => text,
                        };
                        targets.push(Target::new(TargetKind::ArgName, b"", JSON_NAME_LABEL, name));
                    }
                    _ => {
                        let key = enter_value(&frames, &mut path);
                        targets.push(Target::new(TargetKind::ArgValue, &key, path.clone(), text));
                    }
                }
            }
            _ => index += 1,
        }
    }
}

/// Sets `path` to the key path of the value that starts at the current
/// position and returns the name of its nearest enclosing member.
fn enter_value(frames: &[JsonFrame], path: &mut String) -> Rc<[u8]> {
    let Some(frame) = frames.last() else {
        path.truncate("json".len());
        return Rc::from(&b""[..]);
    };
    path.truncate(frame.base);
    if frame.base < MAX_JSON_LABEL_BYTES {
        if frame.array {
            path.push_str(&format!("[{}]", frame.index));
        } else {
            path.push('.');
            path.push_str(&label_name(&frame.key));
        }
    }
    frame.key.clone()
}

/// Decodes the JSON string whose content starts at `start`, returning its
/// bytes and the index after the closing quote. Invalid escapes are kept as
/// written, lone surrogates become U+FFFD, and an unterminated string runs to
/// the end of the body.
fn json_string(body: &[u8], start: usize) -> (Vec<u8>, usize) {
    let mut output = Vec::new();
    let mut index = start;
    while index < body.len() {
        let byte = body[index];
        if byte == b'"' {
            return (output, index + 1);
        }
        if byte != b'\\' {
            output.push(byte);
            index += 1;
            continue;
        }
        let Some(&escape) = body.get(index + 1) else {
            output.push(byte);
            break;
        };
        index += 2;
        let simple = match escape {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(decoded) = simple {
            output.push(decoded);
            continue;
        }
        if escape != b'u' {
            output.extend_from_slice(&[b'\\', escape]);
            continue;
        }
        let Some(unit) = hex_unit(body, index) else {
            output.extend_from_slice(b"\\u");
            continue;
        };
        index += 4;
        let mut code = u32::from(unit);
        if (0xd800..0xdc00).contains(&unit) && body.get(index..index + 2) == Some(b"\\u") {
            if let Some(low) =
                hex_unit(body, index + 2).filter(|low| (0xdc00..0xe000).contains(low))
            {
                code = 0x10000 + ((code - 0xd800) << 10) + (u32::from(low) - 0xdc00);
                index += 6;
            }
        }
        let character = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
        let mut buffer = [0; 4];
        output.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
    }
    (output, body.len())
}

fn hex_unit(body: &[u8], start: usize) -> Option<u16> {
    let digits = body.get(start..start + 4)?;
    let text = std::str::from_utf8(digits).ok()?;
    u16::from_str_radix(text, 16).ok()
}

fn push_parts(targets: &mut Vec<Target>, parts: &[Part]) {
    for part in parts {
        let label = label_name(&part.name);
        // Part headers reach applications that log or parse them, such as
        // a part's content type. The disposition is read as name and file
        // name below.
        for (name, value) in &part.headers {
            if name != "content-disposition" {
                targets.push(Target::new(
                    TargetKind::HeaderValue,
                    name.as_bytes(),
                    format!("multipart_header.{}", label_name(name.as_bytes())),
                    value.clone(),
                ));
            }
        }
        targets.push(Target::new(
            TargetKind::ArgName,
            b"",
            "multipart_name",
            part.name.clone(),
        ));
        // A browser sends a part with an empty file name for an empty file
        // input, and a form parser may hand such a part to the application
        // as a plain field, so it is inspected as one. So is a part with
        // only `filename*`, which some servers read as a field.
        if part.filename.as_ref().is_none_or(|name| name.is_empty()) {
            targets.push(Target::new(
                TargetKind::ArgValue,
                &part.name,
                format!("multipart.{label}"),
                part.content.clone(),
            ));
        }
        let file_names: Vec<&Vec<u8>> = [&part.filename, &part.extended_filename]
            .into_iter()
            .flatten()
            .filter(|name| !name.is_empty())
            .collect();
        for name in &file_names {
            targets.push(Target::new(
                TargetKind::FileName,
                &part.name,
                format!("multipart_file.{label}"),
                name.to_vec(),
            ));
        }
        if !file_names.is_empty() {
            targets.push(Target::new(
                TargetKind::Body,
                &part.name,
                format!("multipart_content.{label}"),
                part.content.clone(),
            ));
        }
    }
}

/// Maximum length of a multipart boundary under RFC 2046.
const MAX_BOUNDARY_BYTES: usize = 70;

/// Returns the `boundary` parameter of a multipart `content-type`, or `None`
/// when it is missing, empty, longer than RFC 2046 allows, or given twice:
/// servers differ on which of two they use, so the body has no one reading.
pub fn multipart_boundary(content_type: &[u8]) -> Option<Vec<u8>> {
    let mut boundaries = content_type
        .split(|&byte| byte == b';')
        .skip(1)
        .filter_map(|parameter| {
            let parameter = parameter.trim_ascii();
            let (name, value) = parameter.split_at(parameter.iter().position(|&b| b == b'=')?);
            name.trim_ascii()
                .eq_ignore_ascii_case(b"boundary")
                .then(|| trim_quotes(value[1..].trim_ascii()).to_vec())
        });
    let boundary = boundaries.next()?;
    // RFC 2046 allows 1 to 70 characters; a longer one would make the
    // search for delimiters cost its length at each byte of the body.
    let valid = (1..=MAX_BOUNDARY_BYTES).contains(&boundary.len());
    (boundaries.next().is_none() && valid).then_some(boundary)
}

fn trim_quotes(value: &[u8]) -> &[u8] {
    value
        .strip_prefix(b"\"")
        .and_then(|inner| inner.strip_suffix(b"\""))
        .unwrap_or(value)
}

/// Splits a multipart body into parts.
///
/// Returns `None` when the body has no delimiter line for `boundary`, or a
/// part has no blank line after its headers. It also returns `None` for
/// layouts that parsers read differently, so the body has no single
/// reading: a part with two dispositions, folded headers or a parameter
/// twice, and a delimiter that is not a line of its own. Such a delimiter
/// is one in mid-line before a line end, one followed by more text at the
/// start of a line, or one after the closing delimiter.
pub fn parse_multipart(body: &[u8], boundary: &[u8]) -> Option<Vec<Part>> {
    let mut delimiter = b"--".to_vec();
    delimiter.extend_from_slice(boundary);
    // A delimiter line is the delimiter at the start of a line, followed by
    // `--` or by optional white space up to the line end. An occurrence that
    // only starts a line, or only ends one, is a delimiter for some parsers
    // and content for others, so it makes the body malformed. One in
    // mid-line followed by more text (`--frontiersman` under the boundary
    // `frontier`) is content for all.
    //
    // The rest of the line is read only as far as its white space goes, so
    // occurrences in mid-line cost their own bytes, not the rest of the body.
    let mut starts = Vec::new();
    let mut from = 0;
    while let Some(offset) = find(&body[from..], &delimiter) {
        let start = from + offset;
        let after = &body[start + delimiter.len()..];
        let line_start = start == 0 || body[start - 1] == b'\n';
        let line_end = after.starts_with(b"--")
            || after
                .iter()
                .take_while(|&&byte| byte != b'\n')
                .all(|&byte| matches!(byte, b' ' | b'\t' | b'\r'));
        if line_start && line_end {
            starts.push(start);
        } else if line_start || line_end {
            return None;
        }
        from = start + delimiter.len();
    }
    if starts.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    for (index, &start) in starts.iter().enumerate() {
        let after = &body[start + delimiter.len()..];
        if after.starts_with(b"--") {
            // The closing delimiter: what follows is the epilogue.
            return (index + 1 == starts.len()).then_some(parts);
        }
        // The rest of a delimiter line is white space, checked above.
        let line_end = after
            .iter()
            .position(|&byte| byte == b'\n')
            .unwrap_or(after.len());
        let section_start = (start + delimiter.len() + line_end + 1).min(body.len());
        let section_end = starts.get(index + 1).copied().unwrap_or(body.len());
        let section = &body[section_start..section_end.max(section_start)];
        let (head, content) = split_head(section)?;
        let content = content
            .strip_suffix(b"\r\n")
            .or_else(|| content.strip_suffix(b"\n"))
            .unwrap_or(content);
        let mut part = Part {
            content: content.to_vec(),
            ..Part::default()
        };
        let mut dispositions = 0;
        for line in head.split(|&byte| byte == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            // A folded line continues the header before it for some parsers
            // and is dropped by others.
            if matches!(line.first(), Some(b' ' | b'\t')) {
                return None;
            }
            let Some(colon) = line.iter().position(|&byte| byte == b':') else {
                continue;
            };
            let name = String::from_utf8_lossy(&line[..colon])
                .trim()
                .to_ascii_lowercase();
            let value = line[colon + 1..].trim_ascii().to_vec();
            if name == "content-disposition" {
                // Parsers differ on which of two dispositions, or of two
                // equal parameters, counts.
                if dispositions > 0 {
                    return None;
                }
                dispositions += 1;
                let parameters = disposition_parameters(&value);
                let single = |wanted: &[u8]| -> Result<Option<Vec<u8>>, ()> {
                    let mut found = parameters
                        .iter()
                        .filter(|(name, _)| name == wanted)
                        .map(|(_, value)| value.clone());
                    let first = found.next();
                    match found.next() {
                        Some(_) => Err(()),
                        None => Ok(first),
                    }
                };
                part.name = single(b"name").ok()?.unwrap_or_default();
                part.filename = single(b"filename").ok()?;
                part.extended_filename = single(b"filename*").ok()?.map(|raw| extended_value(&raw));
            }
            part.headers.push((name, value));
        }
        parts.push(part);
    }
    Some(parts)
}

/// Returns the offset of the first `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Decodes an RFC 8187 extended value, `charset'language'percent-encoded`,
/// to its bytes. A value without the two quotes is percent-decoded whole.
fn extended_value(raw: &[u8]) -> Vec<u8> {
    let mut quotes = raw
        .iter()
        .enumerate()
        .filter(|(_, &byte)| byte == b'\'')
        .map(|(index, _)| index);
    let encoded = match (quotes.next(), quotes.next()) {
        (Some(_), Some(second)) => &raw[second + 1..],
        _ => raw,
    };
    percent_decode(encoded, Plus::Literal)
}

fn split_head(section: &[u8]) -> Option<(&[u8], &[u8])> {
    // The head ends at the first empty line, which ends with LF or CRLF as
    // every line may.
    let mut line_start = 0;
    for (index, &byte) in section.iter().enumerate() {
        if byte != b'\n' {
            continue;
        }
        let line = &section[line_start..index];
        if line.is_empty() || line == b"\r" {
            return Some((&section[..line_start], &section[index + 1..]));
        }
        line_start = index + 1;
    }
    None
}

/// Returns the parameters of a `content-disposition` value after its type,
/// names lower-case, in order. In a value in double quotes only `\"` and
/// `\\` are escapes, so other backslashes, as in a Windows path, stay. A
/// value in single quotes loses them too, as some servers read it.
fn disposition_parameters(value: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut parameters = Vec::new();
    let mut index = value
        .iter()
        .position(|&byte| byte == b';')
        .unwrap_or(value.len());
    while index < value.len() {
        index += 1;
        let rest = &value[index..];
        let name_end = rest
            .iter()
            .position(|&byte| byte == b'=' || byte == b';')
            .unwrap_or(rest.len());
        let name = rest[..name_end].trim_ascii().to_ascii_lowercase();
        index += name_end;
        if value.get(index) != Some(&b'=') {
            if !name.is_empty() {
                parameters.push((name, Vec::new()));
            }
            continue;
        }
        index += 1;
        while matches!(value.get(index), Some(b' ' | b'\t')) {
            index += 1;
        }
        let mut output = Vec::new();
        match value.get(index) {
            Some(&quote @ (b'"' | b'\'')) => {
                index += 1;
                while index < value.len() && value[index] != quote {
                    if quote == b'"'
                        && value[index] == b'\\'
                        && matches!(value.get(index + 1), Some(b'"' | b'\\'))
                    {
                        index += 1;
                    }
                    output.push(value[index]);
                    index += 1;
                }
                // Whatever follows the closing quote, up to the next `;`,
                // is not part of the value.
                index = value[index.min(value.len())..]
                    .iter()
                    .position(|&byte| byte == b';')
                    .map_or(value.len(), |offset| index + offset);
            }
            _ => {
                let end = value[index..]
                    .iter()
                    .position(|&byte| byte == b';')
                    .map_or(value.len(), |offset| index + offset);
                output = value[index..end].trim_ascii().to_vec();
                index = end;
            }
        }
        parameters.push((name, output));
    }
    parameters
}

/// Appends attribute values and text nodes of an XML body as arguments. The
/// scan is lexical: it needs no well-formed document.
///
/// An element's text is collected up to its next tag, with the contents of
/// CDATA sections added as text and comments and processing instructions
/// removed, because an XML parser hands the application that joined text.
fn push_xml(targets: &mut Vec<Target>, body: &[u8]) {
    let mut index = 0;
    let mut element: Vec<u8> = Vec::new();
    let mut text: Vec<u8> = Vec::new();
    let mut entities = Entities::default();
    while index < body.len() {
        let rest = &body[index..];
        if let Some(length) = comment_length(rest) {
            index += length;
            continue;
        }
        if rest.starts_with(b"<![CDATA[") {
            let content = &rest[9..];
            let length = find_or_end(content, b"]]>");
            text.extend_from_slice(&content[..length]);
            index += 9 + length.saturating_add(3);
            continue;
        }
        if rest.len() >= 9 && rest[..9].eq_ignore_ascii_case(b"<!doctype") {
            let length = doctype_length(rest);
            // A body target, so that the rules for documents inspect it and
            // the markup rules for fields, which read `<!DOCTYPE` as HTML, do
            // not.
            targets.push(Target::new(
                TargetKind::Body,
                b"doctype",
                "xml.doctype",
                rest[..length].to_vec(),
            ));
            entities.declare(&rest[..length]);
            index += length;
            continue;
        }
        if rest[0] == b'<' {
            push_xml_text(targets, &element, &entities.expand(&text));
            text.clear();
            let end = rest
                .iter()
                .position(|&b| b == b'>')
                .map_or(body.len(), |offset| index + offset);
            let tag = &body[index + 1..end];
            let name_length = tag
                .iter()
                .take_while(|b| !b.is_ascii_whitespace() && **b != b'/' && **b != b'>')
                .count();
            element = tag[..name_length].to_vec();
            push_xml_attributes(targets, &tag[name_length..], &mut entities);
            index = end + 1;
            continue;
        }
        let end = rest
            .iter()
            .position(|&b| b == b'<')
            .map_or(body.len(), |offset| index + offset);
        text.extend_from_slice(&body[index..end]);
        index = end;
    }
    push_xml_text(targets, &element, &entities.expand(&text));
}

/// Returns the length of the comment or processing instruction at the
/// start of `rest`, which runs to the end of `rest` when it is not closed,
/// or `None` when neither starts there.
fn comment_length(rest: &[u8]) -> Option<usize> {
    let (open, close): (&[u8], &[u8]) = if rest.starts_with(b"<!--") {
        (b"<!--", b"-->")
    } else if rest.starts_with(b"<?") {
        (b"<?", b"?>")
    } else {
        return None;
    };
    let body = &rest[open.len()..];
    Some(open.len() + find(body, close).map_or(body.len(), |end| end + close.len()))
}

/// Returns the length of the quoted literal at the start of `rest`, which
/// starts with `"` or `'` and runs to the end of `rest` when it is not
/// closed.
fn literal_length(rest: &[u8]) -> usize {
    let body = &rest[1..];
    1 + body
        .iter()
        .position(|&byte| byte == rest[0])
        .map_or(body.len(), |end| end + 1)
}

/// Upper bound on the internal entities read from one document.
const MAX_XML_ENTITIES: usize = 4096;

/// Upper bound on the bytes that entity expansion adds to one document.
const MAX_XML_EXPANSION_BYTES: usize = 65536;

/// The internal general entities that a document type declaration defines,
/// such as `<!ENTITY p "text">`. XML parsers replace `&p;` in the document
/// with the text, even with external entities turned off, so the rules read
/// the text in its place.
#[derive(Default)]
struct Entities {
    /// Entity texts by name. The first declaration of a name binds, as in
    /// XML.
    declared: HashMap<Vec<u8>, Vec<u8>>,
    /// Bytes that expansion has added in the document so far.
    added: usize,
}

impl Entities {
    /// Reads the internal general entities of a document type declaration,
    /// skipping comments, processing instructions and quoted literals outside
    /// declarations. Parameter and external entities are left out, because
    /// rules of their own inspect them in the declaration.
    fn declare(&mut self, doctype: &[u8]) {
        let mut index = 0;
        while index < doctype.len() {
            let rest = &doctype[index..];
            if let Some(length) = comment_length(rest) {
                index += length;
            } else if rest.starts_with(b"<!ENTITY") {
                index += 8 + self.declare_entity(&rest[8..]);
            } else if matches!(rest[0], b'"' | b'\'') {
                index += literal_length(rest);
            } else {
                index += 1;
            }
        }
    }

    /// Reads the declaration that follows `<!ENTITY` and returns its length
    /// up to the end of its value. Comment syntax inside the value is text,
    /// as in XML.
    fn declare_entity(&mut self, declaration: &[u8]) -> usize {
        let trimmed = declaration.trim_ascii_start();
        let skipped = declaration.len() - trimmed.len();
        if trimmed.first() == Some(&b'%') {
            return skipped;
        }
        let name_length = trimmed
            .iter()
            .take_while(|byte| !byte.is_ascii_whitespace())
            .count();
        let name = &trimmed[..name_length];
        let after_name = &trimmed[name_length..];
        let value = after_name.trim_ascii_start();
        let offset = skipped + name_length + (after_name.len() - value.len());
        if !matches!(value.first(), Some(b'"' | b'\'')) {
            return offset;
        }
        let length = literal_length(value);
        let closed = length >= 2 && value.get(length - 1) == value.first();
        if closed && !name.is_empty() && self.declared.len() < MAX_XML_ENTITIES {
            self.declared
                .entry(name.to_vec())
                .or_insert_with(|| value[1..length - 1].to_vec());
        }
        offset + length
    }

    /// Returns `text` with each reference to a declared entity replaced by
    /// its text, once (the replacement is not expanded again), while the
    /// whole document has added fewer than [`MAX_XML_EXPANSION_BYTES`].
    fn expand(&mut self, text: &[u8]) -> Vec<u8> {
        if self.declared.is_empty() || !text.contains(&b'&') {
            return text.to_vec();
        }
        let mut output = Vec::with_capacity(text.len());
        let mut index = 0;
        while index < text.len() {
            if text[index] == b'&' {
                // A name runs to the first byte that no XML name has, so
                // each byte is read once whatever the references.
                let rest = &text[index + 1..];
                let length = rest
                    .iter()
                    .take_while(|&&byte| {
                        byte.is_ascii_alphanumeric() || b"_-.:".contains(&byte) || byte >= 0x80
                    })
                    .count();
                let reference = (rest.get(length) == Some(&b';'))
                    .then(|| self.declared.get_key_value(&rest[..length]))
                    .flatten();
                if let Some((name, value)) = reference {
                    if self.added + value.len() <= MAX_XML_EXPANSION_BYTES {
                        output.extend_from_slice(value);
                        self.added += value.len();
                        index += name.len() + 2;
                        continue;
                    }
                }
            }
            output.push(text[index]);
            index += 1;
        }
        output
    }
}

/// Returns the length of the document type declaration at the start of
/// `rest`: up to the `]>` that closes its internal subset when it has one,
/// else up to its first `>`, or all of `rest` when it is not closed. The
/// internal subset contains the entity declarations, which an XML parser acts
/// on and the rules must see.
fn doctype_length(rest: &[u8]) -> usize {
    // Quoted values, comments and processing instructions may hold `>`
    // and `]>` without ending anything.
    let mut index = "<!doctype".len();
    let mut in_subset = false;
    while index < rest.len() {
        let tail = &rest[index..];
        if let Some(length) = comment_length(tail).filter(|_| in_subset) {
            index += length;
            continue;
        }
        let skip = match tail[0] {
            b'"' | b'\'' => literal_length(tail),
            b'[' if !in_subset => {
                in_subset = true;
                1
            }
            b']' if in_subset => {
                let after = tail[1..].trim_ascii_start();
                if after.first() == Some(&b'>') {
                    return rest.len() - after.len() + 1;
                }
                1
            }
            b'>' if !in_subset => return index + 1,
            _ => 1,
        };
        index += skip;
    }
    rest.len()
}

/// Returns the offset of `needle` in `haystack`, or the length of
/// `haystack` when it does not occur.
fn find_or_end(haystack: &[u8], needle: &[u8]) -> usize {
    find(haystack, needle).unwrap_or(haystack.len())
}

fn push_xml_text(targets: &mut Vec<Target>, element: &[u8], text: &[u8]) {
    let text = text.trim_ascii();
    if !text.is_empty() {
        targets.push(Target::new(
            TargetKind::ArgValue,
            element,
            label("xml", element),
            text.to_vec(),
        ));
    }
}

fn push_xml_attributes(targets: &mut Vec<Target>, mut rest: &[u8], entities: &mut Entities) {
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
            entities.expand(&after[1..close]),
        ));
        rest = after.get(close + 1..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests;

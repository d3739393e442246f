//! Transforms that rules apply to a request value before matching.
//!
//! A rule names a chain of [`Transform`]s, and [`apply`] runs them in order.
//! Values are bytes throughout: invalid UTF-8 and overlong encodings stay in
//! the value, and [`Transform::Utf8Fold`] turns overlong and full-width forms
//! of ASCII characters into the characters themselves, so `%c0%af` is seen as
//! `/`. [`to_text`] gives the lossy UTF-8 view that regexes match, where each
//! remaining invalid byte becomes U+FFFD.

use serde::Deserialize;

/// Maximum number of percent-decoding rounds applied to one value.
pub const MAX_DECODE_ROUNDS: usize = 3;

/// The meaning of `+` while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plus {
    /// `+` is a space, as in query strings and form bodies.
    Space,
    /// `+` is a literal plus sign, as in paths and header values.
    Literal,
}

/// One step of a rule's transform chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Percent-decoding of `%XX` and `%uXXXX`, repeated until the value stops
    /// changing, for at most [`MAX_DECODE_ROUNDS`] rounds. `+` stays `+`.
    UrlDecode,
    /// Overlong UTF-8 forms and full-width forms (U+FF01 to U+FF5E) of ASCII
    /// characters become the ASCII character, and the curly quotation marks
    /// U+2018, U+2019, U+201C, U+201D and the modifier apostrophe U+02BC
    /// become `'` or `"`.
    Utf8Fold,
    /// HTML character references: named ones such as `&lt;`, decimal `&#60;`
    /// and hexadecimal `&#x3c;`, with or without the closing `;`.
    HtmlEntities,
    /// JavaScript escapes `\xHH`, `\uHHHH` and `\u{H...}`.
    JsEscapes,
    /// CSS escapes: a backslash with one to six hex digits and an optional
    /// space, or a backslash before any other character.
    CssEscapes,
    /// ASCII and Unicode lower-casing.
    Lowercase,
    /// Removal of NUL bytes.
    RemoveNul,
    /// Path normalization: backslashes become `/`, `;` parameters are cut
    /// from each segment, and empty, `.` and `..` segments are resolved.
    NormalizePath,
    /// Every run of whitespace becomes one space.
    CompressWhitespace,
    /// Removal of C and SQL block comments `/* ... */`; the text of a MySQL
    /// executable comment `/*! ... */` is kept.
    RemoveComments,
    /// Removal of shell quoting and escapes inside words: quotes in `c'a't`,
    /// backslashes in `c\at`, carets (the `cmd.exe` escape), empty
    /// substitutions such as `$@`, and `$IFS` or `${IFS}` turned into a space.
    ShellUnescape,
    /// Base64 decoding (standard or URL-safe alphabet) of a value that is
    /// entirely base64 and at least 8 characters long; other values stay.
    Base64Decode,
    /// [`Transform::Base64Decode`], except that any other value becomes
    /// empty, so that the rules after it see decoded data only.
    Base64DecodeOrEmpty,
}

impl Transform {
    /// Every transform, in declaration order.
    pub const ALL: [Transform; 13] = [
        Transform::UrlDecode,
        Transform::Utf8Fold,
        Transform::HtmlEntities,
        Transform::JsEscapes,
        Transform::CssEscapes,
        Transform::Lowercase,
        Transform::RemoveNul,
        Transform::NormalizePath,
        Transform::CompressWhitespace,
        Transform::RemoveComments,
        Transform::ShellUnescape,
        Transform::Base64Decode,
        Transform::Base64DecodeOrEmpty,
    ];
}

/// Runs `chain` over `input` in order.
///
/// A transform that cannot change the value, such as URL decoding of a value
/// without `%`, is skipped without copying, so a plain value costs one scan
/// per transform.
pub fn apply(chain: &[Transform], input: &[u8]) -> Vec<u8> {
    apply_if_changed(chain, input).unwrap_or_else(|| input.to_vec())
}

/// Runs `chain` over `input` like [`apply`], but returns `None` instead of a
/// copy when no transform changes the value.
pub fn apply_if_changed(chain: &[Transform], input: &[u8]) -> Option<Vec<u8>> {
    let mut value: Option<Vec<u8>> = None;
    let mut present = Present::of(input);
    for &transform in chain {
        if !present.may_change(transform) {
            continue;
        }
        let current = value.as_deref().unwrap_or(input);
        if let Some(output) = changed_by(transform, current) {
            present = Present::of(&output);
            value = Some(output);
        }
    }
    value
}

/// The kinds of bytes in a value that some transform acts on, found in one
/// pass, so that the transforms of a chain that leave a value alone cost one
/// scan between them rather than one each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Present(u16);

impl Present {
    const PERCENT: u16 = 1;
    const NON_ASCII: u16 = 1 << 1;
    const AMPERSAND: u16 = 1 << 2;
    const BACKSLASH: u16 = 1 << 3;
    const UPPER: u16 = 1 << 4;
    const NUL: u16 = 1 << 5;
    /// Whitespace other than a lone space: a tab, a newline, or a run.
    const SPACE_RUN: u16 = 1 << 6;
    /// `/*`.
    const COMMENT: u16 = 1 << 7;
    /// A quote, caret, backslash, backtick, `$`, `<` or `>`.
    const SHELL: u16 = 1 << 8;
    /// A slash, backslash, semicolon or dot: the bytes of path segments
    /// that path normalisation removes or rewrites.
    const PATH: u16 = 1 << 9;
    /// Set for every value, for the transforms that may change any value.
    const ANY: u16 = 1 << 15;

    /// The bits that each byte sets by itself.
    const CLASSES: [u16; 256] = {
        let mut table = [0u16; 256];
        let mut byte = 0;
        while byte < 256 {
            let value = byte as u8;
            let mut bits = 0;
            if value >= 0x80 {
                bits |= Self::NON_ASCII;
            }
            if value.is_ascii_uppercase() {
                bits |= Self::UPPER;
            }
            match value {
                b'%' => bits |= Self::PERCENT,
                b'&' => bits |= Self::AMPERSAND,
                b'\\' => bits |= Self::BACKSLASH | Self::SHELL | Self::PATH,
                b'/' | b';' | b'.' => bits |= Self::PATH,
                0 => bits |= Self::NUL,
                // `<` and `>` for the empty process substitutions `<()`
                // and `>()`.
                b'\'' | b'"' | b'^' | b'`' | b'$' | b'<' | b'>' => bits |= Self::SHELL,
                _ => {}
            }
            if is_space(value) && value != b' ' {
                bits |= Self::SPACE_RUN;
            }
            table[byte] = bits;
            byte += 1;
        }
        table
    };

    pub(crate) fn of(value: &[u8]) -> Present {
        let mut bits = Self::ANY;
        let mut previous = 0u8;
        for &byte in value {
            bits |= Self::CLASSES[usize::from(byte)];
            if previous == b' ' && is_space(byte) {
                bits |= Self::SPACE_RUN;
            }
            if previous == b'/' && byte == b'*' {
                bits |= Self::COMMENT;
            }
            previous = byte;
        }
        Present(bits)
    }

    /// Tells whether `transform` may change a value with these bytes;
    /// `false` only when the value lacks every byte that it acts on.
    fn may_change(self, transform: Transform) -> bool {
        self.0 & Self::acted_on(transform) != 0
    }

    /// Returns the kinds of bytes that some transform of `chain` acts on. A
    /// value without any of them leaves the chain as it entered, because
    /// each transform passes it on unchanged to the next.
    pub(crate) fn acted_on_by(chain: &[Transform]) -> Present {
        Present(
            chain
                .iter()
                .fold(0, |bits, &transform| bits | Self::acted_on(transform)),
        )
    }

    /// Tells whether a value with these bytes has one of the kinds in `kinds`.
    pub(crate) fn has_any(self, kinds: Present) -> bool {
        self.0 & kinds.0 != 0
    }

    /// Returns the bits of the bytes that `transform` acts on.
    fn acted_on(transform: Transform) -> u16 {
        match transform {
            Transform::UrlDecode => Self::PERCENT,
            Transform::Utf8Fold => Self::NON_ASCII,
            Transform::HtmlEntities => Self::AMPERSAND,
            Transform::JsEscapes | Transform::CssEscapes => Self::BACKSLASH,
            Transform::Lowercase => Self::NON_ASCII | Self::UPPER,
            Transform::RemoveNul => Self::NUL,
            Transform::CompressWhitespace => Self::SPACE_RUN,
            Transform::RemoveComments => Self::COMMENT,
            Transform::ShellUnescape => Self::SHELL,
            Transform::NormalizePath => Self::PATH,
            // Any value may be base64.
            Transform::Base64Decode | Transform::Base64DecodeOrEmpty => Self::ANY,
        }
    }
}

/// Returns the lossy UTF-8 view of a transformed value for regex matching.
pub fn to_text(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}

/// Returns the output of one transform, or `None` when it equals `value`.
fn changed_by(transform: Transform, value: &[u8]) -> Option<Vec<u8>> {
    let output = match transform {
        // A value that is not base64 stays, so no copy is made for it.
        Transform::Base64Decode => base64_decode(value)?,
        _ => apply_one(transform, value),
    };
    (output != value).then_some(output)
}

fn apply_one(transform: Transform, value: &[u8]) -> Vec<u8> {
    match transform {
        Transform::UrlDecode => url_decode_repeated(value),
        Transform::Utf8Fold => utf8_fold(value),
        Transform::HtmlEntities => html_entities(value),
        Transform::JsEscapes => js_escapes(value),
        Transform::CssEscapes => css_escapes(value),
        Transform::Lowercase => lowercase(value),
        Transform::RemoveNul => value.iter().copied().filter(|&byte| byte != 0).collect(),
        Transform::NormalizePath => normalize_path(value),
        Transform::CompressWhitespace => compress_whitespace(value),
        Transform::RemoveComments => remove_comments(value),
        Transform::ShellUnescape => shell_unescape(value),
        Transform::Base64Decode => base64_decode(value).unwrap_or_else(|| value.to_vec()),
        Transform::Base64DecodeOrEmpty => base64_decode(value).unwrap_or_default(),
    }
}

/// Decodes, cleans and lower-cases `raw` with one round of form decoding
/// followed by the default chain (repeated URL decoding, UTF-8 folding, NUL
/// removal, lower-casing).
pub fn normalize(raw: &[u8], plus: Plus) -> String {
    let first = percent_decode(raw, plus);
    let chain = [
        Transform::UrlDecode,
        Transform::Utf8Fold,
        Transform::RemoveNul,
        Transform::Lowercase,
    ];
    to_text(&apply(&chain, &first))
}

fn url_decode_repeated(value: &[u8]) -> Vec<u8> {
    let mut current = value.to_vec();
    for _ in 0..MAX_DECODE_ROUNDS {
        let decoded = percent_decode(&current, Plus::Literal);
        if decoded == current {
            break;
        }
        current = decoded;
    }
    current
}

/// Runs one round of percent-decoding of `%XX` and `%uXXXX`.
pub fn percent_decode(input: &[u8], plus: Plus) -> Vec<u8> {
    let mut output = Vec::with_capacity(input.len());
    let mut index = 0;
    while index < input.len() {
        let byte = input[index];
        if byte == b'%' {
            if let Some(decoded) = hex_byte(input, index + 1) {
                output.push(decoded);
                index += 3;
                continue;
            }
            if matches!(input.get(index + 1), Some(b'u' | b'U')) {
                if let Some(code) = hex_number(input, index + 2, 4) {
                    push_char(&mut output, code);
                    index += 6;
                    continue;
                }
            }
        }
        if byte == b'+' && plus == Plus::Space {
            output.push(b' ');
        } else {
            output.push(byte);
        }
        index += 1;
    }
    output
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Reads the two hex digits at `at` as one byte.
pub(crate) fn hex_byte(input: &[u8], at: usize) -> Option<u8> {
    let high = input.get(at).copied().and_then(hex_value)?;
    let low = input.get(at + 1).copied().and_then(hex_value)?;
    Some(high << 4 | low)
}

/// Reads exactly `digits` hex digits at `at`.
fn hex_number(input: &[u8], at: usize, digits: usize) -> Option<u32> {
    let slice = input.get(at..at + digits)?;
    slice.iter().try_fold(0u32, |acc, &byte| {
        hex_value(byte).map(|value| acc << 4 | u32::from(value))
    })
}

/// Appends the UTF-8 form of `code`, or U+FFFD for a surrogate or an
/// out-of-range value.
fn push_char(output: &mut Vec<u8>, code: u32) {
    let c = char::from_u32(code).unwrap_or('\u{fffd}');
    let mut buffer = [0u8; 4];
    output.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
}

fn utf8_fold(value: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(value.len());
    let mut index = 0;
    while index < value.len() {
        let byte = value[index];
        let next = value.get(index + 1).copied().unwrap_or(0);
        let third = value.get(index + 2).copied().unwrap_or(0);
        let continuation = |b: u8| b & 0xc0 == 0x80;
        // Overlong two-byte form of an ASCII character: C0 or C1 lead byte.
        if (byte == 0xc0 || byte == 0xc1) && continuation(next) {
            output.push(((byte & 0x1f) << 6) | (next & 0x3f));
            index += 2;
            continue;
        }
        // Overlong three-byte form of an ASCII character: E0 80..81 xx.
        if byte == 0xe0 && (next == 0x80 || next == 0x81) && continuation(third) {
            output.push(((next & 0x3f) << 6) | (third & 0x3f));
            index += 3;
            continue;
        }
        // Quotation marks that some databases and parsers treat as ASCII
        // quotes: U+2018 and U+2019 (E2 80 98..99), U+201C and U+201D
        // (E2 80 9C..9D), and U+02BC (CA BC).
        if byte == 0xe2 && next == 0x80 && matches!(third, 0x98 | 0x99 | 0x9c | 0x9d) {
            output.push(if third <= 0x99 { b'\'' } else { b'"' });
            index += 3;
            continue;
        }
        if byte == 0xca && next == 0xbc {
            output.push(b'\'');
            index += 2;
            continue;
        }
        // Full-width forms U+FF01..U+FF5E, encoded EF BC 81..BF and EF BD 80..9E.
        if byte == 0xef && (next == 0xbc || next == 0xbd) && continuation(third) {
            let code = 0xff00 | u32::from(next & 0x03) << 6 | u32::from(third & 0x3f);
            if (0xff01..=0xff5e).contains(&code) {
                output.push((code - 0xff00 + 0x20) as u8);
                index += 3;
                continue;
            }
        }
        if byte & 0xf0 == 0xe0 && continuation(next) && continuation(third) {
            let code = u32::from(byte & 0x0f) << 12
                | u32::from(next & 0x3f) << 6
                | u32::from(third & 0x3f);
            if let Some(ascii) = enclosed_ascii(code) {
                output.extend_from_slice(ascii.as_bytes());
                index += 3;
                continue;
            }
        }
        output.push(byte);
        index += 1;
    }
    output
}

/// Returns the ASCII text that Unicode's compatibility normalization (NFKC),
/// and so IDNA host name processing, gives a circled letter or digit, or
/// the dot of an ideographic full stop. Host names such as
/// `ⓛⓞⓒⓐⓛⓗⓞⓢⓣ` or `127。0。0。1` reach the loopback address this way.
fn enclosed_ascii(code: u32) -> Option<&'static str> {
    const DIGITS: [&str; 21] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
        "17", "18", "19", "20",
    ];
    const LETTERS: [&str; 26] = [
        "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r",
        "s", "t", "u", "v", "w", "x", "y", "z",
    ];
    let index = |first: u32| (code - first) as usize;
    match code {
        // Circled digits one to twenty.
        0x2460..=0x2473 => DIGITS.get(index(0x2460) + 1).copied(),
        // Circled capital and small letters.
        0x24b6..=0x24cf => LETTERS.get(index(0x24b6)).copied(),
        0x24d0..=0x24e9 => LETTERS.get(index(0x24d0)).copied(),
        // Circled digit zero.
        0x24ea => Some("0"),
        // Ideographic and half-width ideographic full stops.
        0x3002 | 0xff61 => Some("."),
        _ => None,
    }
}

/// Named character references that attackers use to hide syntax.
const NAMED_ENTITIES: &[(&[u8], u8)] = &[
    (b"lt", b'<'),
    (b"gt", b'>'),
    (b"amp", b'&'),
    (b"quot", b'"'),
    (b"apos", b'\''),
    (b"lpar", b'('),
    (b"rpar", b')'),
    (b"lbrace", b'{'),
    (b"rbrace", b'}'),
    (b"lcub", b'{'),
    (b"rcub", b'}'),
    (b"lsqb", b'['),
    (b"rsqb", b']'),
    (b"lbrack", b'['),
    (b"rbrack", b']'),
    (b"colon", b':'),
    (b"semi", b';'),
    (b"sol", b'/'),
    (b"bsol", b'\\'),
    (b"dollar", b'$'),
    (b"period", b'.'),
    (b"comma", b','),
    (b"excl", b'!'),
    (b"quest", b'?'),
    (b"equals", b'='),
    (b"num", b'#'),
    (b"percnt", b'%'),
    (b"plus", b'+'),
    (b"lowbar", b'_'),
    (b"grave", b'`'),
    (b"tab", b'\t'),
    (b"newline", b'\n'),
    (b"nbsp", b' '),
    (b"hyphen", b'-'),
    (b"ast", b'*'),
    (b"vert", b'|'),
    (b"verbar", b'|'),
    (b"commat", b'@'),
];

fn html_entities(value: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(value.len());
    let mut index = 0;
    while index < value.len() {
        if value[index] == b'&' {
            if let Some((decoded, used)) = html_entity_at(&value[index + 1..]) {
                output.extend_from_slice(&decoded);
                index += 1 + used;
                continue;
            }
        }
        output.push(value[index]);
        index += 1;
    }
    output
}

/// Decodes the reference after an `&`; returns the bytes and the length used.
fn html_entity_at(rest: &[u8]) -> Option<(Vec<u8>, usize)> {
    let skip_semicolon = |used: usize| usize::from(rest.get(used) == Some(&b';'));
    if rest.first() == Some(&b'#') {
        let hex = matches!(rest.get(1), Some(b'x' | b'X'));
        let start = if hex { 2 } else { 1 };
        let mut end = start;
        let mut code: u32 = 0;
        while let Some(&byte) = rest.get(end) {
            let digit = if hex {
                hex_value(byte).map(u32::from)
            } else {
                byte.is_ascii_digit().then(|| u32::from(byte - b'0'))
            };
            let Some(digit) = digit else { break };
            code = code
                .saturating_mul(if hex { 16 } else { 10 })
                .saturating_add(digit);
            end += 1;
        }
        if end == start {
            return None;
        }
        let mut output = Vec::new();
        push_char(&mut output, code.min(0x10ffff + 1));
        return Some((output, end + skip_semicolon(end)));
    }
    let length = rest
        .iter()
        .take(10)
        .take_while(|byte| byte.is_ascii_alphabetic())
        .count();
    let name = &rest[..length];
    let (_, byte) = NAMED_ENTITIES
        .iter()
        .find(|(entity, _)| entity.eq_ignore_ascii_case(name))?;
    Some((vec![*byte], length + skip_semicolon(length)))
}

fn js_escapes(value: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(value.len());
    let mut index = 0;
    while index < value.len() {
        if value[index] == b'\\' {
            match value.get(index + 1) {
                Some(b'x') => {
                    if let Some(byte) = hex_byte(value, index + 2) {
                        output.push(byte);
                        index += 4;
                        continue;
                    }
                }
                Some(b'u') if value.get(index + 2) == Some(&b'{') => {
                    let digits = value[index + 3..]
                        .iter()
                        .take(7)
                        .take_while(|byte| byte.is_ascii_hexdigit())
                        .count();
                    if digits > 0 && value.get(index + 3 + digits) == Some(&b'}') {
                        if let Some(code) = hex_number(value, index + 3, digits) {
                            push_char(&mut output, code);
                            index += 4 + digits;
                            continue;
                        }
                    }
                }
                Some(b'u') => {
                    if let Some(code) = hex_number(value, index + 2, 4) {
                        push_char(&mut output, code);
                        index += 6;
                        continue;
                    }
                }
                _ => {}
            }
        }
        output.push(value[index]);
        index += 1;
    }
    output
}

fn css_escapes(value: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(value.len());
    let mut index = 0;
    while index < value.len() {
        if value[index] == b'\\' {
            let digits = value[index + 1..]
                .iter()
                .take(6)
                .take_while(|byte| byte.is_ascii_hexdigit())
                .count();
            if digits > 0 {
                if let Some(code) = hex_number(value, index + 1, digits) {
                    push_char(&mut output, code);
                    index += 1 + digits;
                    if value.get(index).is_some_and(u8::is_ascii_whitespace) {
                        index += 1;
                    }
                    continue;
                }
            }
            if let Some(&next) = value.get(index + 1) {
                if next != b'\n' {
                    output.push(next);
                    index += 2;
                    continue;
                }
            }
        }
        output.push(value[index]);
        index += 1;
    }
    output
}

fn lowercase(value: &[u8]) -> Vec<u8> {
    if value.is_ascii() {
        return value.to_ascii_lowercase();
    }
    // Lower-cases each valid UTF-8 run and keeps invalid bytes as they are.
    let mut output = Vec::with_capacity(value.len());
    for chunk in value.utf8_chunks() {
        output.extend_from_slice(chunk.valid().to_lowercase().as_bytes());
        output.extend_from_slice(chunk.invalid());
    }
    output
}

fn normalize_path(value: &[u8]) -> Vec<u8> {
    let slashed: Vec<u8> = value
        .iter()
        .map(|&byte| if byte == b'\\' { b'/' } else { byte })
        .collect();
    let absolute = slashed.first() == Some(&b'/');
    let trailing = slashed.len() > 1 && slashed.ends_with(b"/");
    let mut segments: Vec<&[u8]> = Vec::new();
    for segment in slashed.split(|&byte| byte == b'/') {
        let segment = match segment.iter().position(|&byte| byte == b';') {
            Some(index) => &segment[..index],
            None => segment,
        };
        match segment {
            b"" | b"." => {}
            b".." => {
                if segments.last().is_some_and(|last| *last != b"..") {
                    segments.pop();
                } else if !absolute {
                    segments.push(segment);
                }
            }
            _ => segments.push(segment),
        }
    }
    let mut output = Vec::with_capacity(slashed.len());
    if absolute {
        output.push(b'/');
    }
    output.extend_from_slice(&segments.join(&b'/'));
    if trailing && !segments.is_empty() {
        output.push(b'/');
    }
    output
}

/// Tells whether a byte may separate words for some interpreter. These are
/// the space, every C0 control byte but NUL, and 0xA0. Evasion lists give
/// control bytes as white space for some SQL engines. 0xA0 is the Latin-1
/// no-break space and also ends the UTF-8 form of U+00A0.
const fn is_space(byte: u8) -> bool {
    matches!(byte, 0x01..=0x20 | 0xa0)
}

/// Replaces each run of separators with one space. Valid UTF-8 is read as
/// characters, so U+00A0 counts and `à` (`C3 A0`) does not. The bytes of
/// an invalid sequence are read one by one, so Latin-1 no-break spaces
/// count too.
fn compress_whitespace(value: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(value.len());
    let mut in_space = false;
    let mut push = |output: &mut Vec<u8>, bytes: &[u8], space: bool| {
        if !space {
            output.extend_from_slice(bytes);
        } else if !in_space {
            output.push(b' ');
        }
        in_space = space;
    };
    for chunk in value.utf8_chunks() {
        for character in chunk.valid().chars() {
            let mut buffer = [0u8; 4];
            let bytes = character.encode_utf8(&mut buffer).as_bytes();
            let space = character == '\u{a0}' || (bytes.len() == 1 && is_space(bytes[0]));
            push(&mut output, bytes, space);
        }
        for &byte in chunk.invalid() {
            push(&mut output, &[byte], is_space(byte));
        }
    }
    output
}

fn remove_comments(value: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(value.len());
    let mut index = 0;
    while index < value.len() {
        if value[index] == b'/' && value.get(index + 1) == Some(&b'*') {
            let body_start = index + 2;
            let end = value[body_start..]
                .windows(2)
                .position(|pair| pair == b"*/")
                .map(|offset| body_start + offset);
            let body_end = end.unwrap_or(value.len());
            if value.get(body_start) == Some(&b'!') {
                // MySQL runs the text of /*!50000 ... */; skip the version.
                let text = &value[body_start + 1..body_end];
                let digits = text.iter().take_while(|byte| byte.is_ascii_digit()).count();
                output.extend_from_slice(&text[digits..]);
            }
            index = end.map_or(value.len(), |end| end + 2);
            continue;
        }
        output.push(value[index]);
        index += 1;
    }
    output
}

fn shell_unescape(value: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(value.len());
    let prose = value.contains(&b'`') && prose_words(value) >= CODE_SPAN_PROSE_WORDS;
    // Index of the closing backtick of the Markdown code span being read.
    let mut span_end: Option<usize> = None;
    let mut index = 0;
    while index < value.len() {
        let rest = &value[index..];
        if span_end.is_some_and(|end| index >= end) {
            if span_end == Some(index) {
                output.push(b' ');
                index += 1;
            }
            span_end = None;
            continue;
        }
        // Backticks of a code span become spaces, so the command inside
        // reads as text and not as a substitution.
        if let Some(length) = (prose && span_end.is_none())
            .then(|| code_span(value, index))
            .flatten()
        {
            output.push(b' ');
            span_end = Some(index + length - 1);
            index += 1;
            continue;
        }
        if let Some(length) = ifs_reference(rest) {
            output.push(b' ');
            index += length;
            continue;
        }
        let line_start = index == 0 || value[index - 1] == b'\n';
        // A fence becomes a shell comment, which keeps the line after it
        // out of the command position at the start of the value.
        if let Some(length) = line_start.then(|| code_fence(rest)).flatten() {
            output.push(b'#');
            index += length;
            continue;
        }
        match rest {
            // Positional and special parameters that expand to nothing in a
            // fresh shell: $@, $*, $0..$9 after a letter. `$$` (the shell's
            // process id) and `$-` (its option flags) are cut too, because
            // payloads put them inside command names such as `una$$me`.
            [b'$', b'@' | b'*', ..] => index += 2,
            [b'$', b'$' | b'-', ..] if output.last().is_some_and(u8::is_ascii_alphabetic) => {
                index += 2
            }
            [b'$', b'{', b'@' | b'*', b'}', ..] => index += 4,
            // Bash's ANSI-C quoting: `$'\143\141\164'` is `cat`.
            [b'$', b'\'', body @ ..] => {
                let (decoded, length) = ansi_c_string(body);
                output.extend_from_slice(&decoded);
                index += 2 + length;
            }
            [b'$', digit, ..]
                if digit.is_ascii_digit() && output.last().is_some_and(u8::is_ascii_alphabetic) =>
            {
                index += 2
            }
            [b'\'', ..] | [b'"', ..] | [b'^', ..] => index += 1,
            [b'\\', b'\n', ..] => index += 2,
            [b'\\', ..] => index += 1,
            [b'`', b'`', ..] => index += 2,
            [b'$' | b'<' | b'>', b'(', b')', ..] => index += 3,
            _ => {
                output.push(rest[0]);
                index += 1;
            }
        }
    }
    output
}

/// Decodes the body of a `$'...'` string up to its closing quote, and
/// returns the decoded bytes and the number of bytes read, the quote
/// included. Octal, `\x`, `\u` and `\U` escapes give their character, the
/// letter escapes their control character, and a backslash before any
/// other byte gives that byte.
fn ansi_c_string(body: &[u8]) -> (Vec<u8>, usize) {
    let mut output = Vec::with_capacity(body.len());
    let mut index = 0;
    while index < body.len() {
        let byte = body[index];
        if byte == b'\'' {
            return (output, index + 1);
        }
        if byte != b'\\' || index + 1 >= body.len() {
            output.push(byte);
            index += 1;
            continue;
        }
        let escape = body[index + 1];
        index += 2;
        let control = match escape {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'e' | b'E' => Some(0x1b),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            _ => None,
        };
        if let Some(control) = control {
            output.push(control);
            continue;
        }
        let (radix, first, most) = match escape {
            b'0'..=b'7' => (8, index - 1, 3),
            b'x' => (16, index, 2),
            b'u' => (16, index, 4),
            b'U' => (16, index, 8),
            _ => {
                output.push(escape);
                continue;
            }
        };
        let digits = body[first..]
            .iter()
            .take(most)
            .take_while(|digit| char::from(**digit).is_digit(radix))
            .count();
        let text = std::str::from_utf8(&body[first..first + digits]).unwrap_or_default();
        match u32::from_str_radix(text, radix) {
            Ok(code) if matches!(escape, b'u' | b'U') => {
                let character = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                let mut buffer = [0; 4];
                output.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
            }
            // An octal escape above \377 keeps its low byte.
            Ok(code) => output.push(code as u8),
            // `\x` without a hex digit stays as written.
            Err(_) => output.extend_from_slice(&[b'\\', escape]),
        }
        index = first + digits;
    }
    (output, index)
}

/// Matches a Markdown code fence at the start of `rest`: three or more
/// backticks and an optional language name, alone on their line. Returns
/// its length, the line break excluded. A fence is layout, while backticks
/// inside a line are command substitution.
///
/// NOTE: a shell given a whole fenced block would run the lines inside it
/// as a substitution. Those lines still meet every other command rule.
fn code_fence(rest: &[u8]) -> Option<usize> {
    let ticks = rest.iter().take_while(|&&byte| byte == b'`').count();
    if ticks < 3 {
        return None;
    }
    let language = rest[ticks..]
        .iter()
        .take_while(|byte| byte.is_ascii_alphanumeric() || b"_+.#-".contains(byte))
        .count();
    let length = ticks + language;
    matches!(rest.get(length), None | Some(b'\n' | b'\r')).then_some(length)
}

/// Minimum number of prose words outside backticks that makes backticks in
/// a value Markdown code spans, as in "run `npm install` and restart".
/// Payloads that use backticks for command substitution usually have
/// fewer.
const CODE_SPAN_PROSE_WORDS: usize = 2;

/// Counts the words of two or more letters outside backtick pairs in
/// `value`, with punctuation around them allowed.
fn prose_words(value: &[u8]) -> usize {
    let mut outside = Vec::with_capacity(value.len());
    let mut inside = false;
    for &byte in value {
        if byte == b'`' {
            inside = !inside;
            outside.push(b' ');
        } else if !inside {
            outside.push(byte);
        }
    }
    outside
        .split(u8::is_ascii_whitespace)
        .map(|word| {
            let start = word
                .iter()
                .take_while(|byte| b"(\"'".contains(byte))
                .count();
            let end = word.len()
                - word[start..]
                    .iter()
                    .rev()
                    .take_while(|byte| b".,:;!?)\"'".contains(byte))
                    .count();
            &word[start..end]
        })
        .filter(|word| word.len() >= 2 && word.iter().all(u8::is_ascii_alphabetic))
        .count()
}

/// Matches a Markdown code span that starts at `index` and returns its
/// length with both backticks. The opening backtick follows a space, a line
/// break or `(`. The text inside is one line of two or more words without
/// backticks. The closing backtick, with any punctuation after it, ends the
/// value or comes before whitespace.
fn code_span(value: &[u8], index: usize) -> Option<usize> {
    if value.get(index) != Some(&b'`') || index == 0 {
        return None;
    }
    if !matches!(value[index - 1], b' ' | b'\t' | b'\n' | b'(') {
        return None;
    }
    let text = &value[index + 1..];
    let close = text
        .iter()
        .position(|&byte| byte == b'`' || byte == b'\n')?;
    // A single word such as `whoami` stays a substitution, because a code
    // span in prose quotes a command with its arguments.
    if text[close] != b'`' || !text[..close].contains(&b' ') {
        return None;
    }
    let after = &text[close + 1..];
    let punctuation = after
        .iter()
        .take_while(|byte| b".,;:!?)".contains(byte))
        .count();
    match after.get(punctuation) {
        None => Some(close + 2),
        Some(byte) if byte.is_ascii_whitespace() => Some(close + 2),
        Some(_) => None,
    }
}

/// Matches `$IFS`, `${IFS}` or `$IFS$9` at the start of `rest` and returns
/// its length.
fn ifs_reference(rest: &[u8]) -> Option<usize> {
    let length = if rest.len() >= 6 && rest[..6].eq_ignore_ascii_case(b"${ifs}") {
        6
    } else if rest.len() >= 4 && rest[..4].eq_ignore_ascii_case(b"$ifs") {
        4
    } else {
        return None;
    };
    match &rest[length..] {
        [b'$', digit, ..] if digit.is_ascii_digit() => Some(length + 2),
        _ => Some(length),
    }
}

fn base64_decode(value: &[u8]) -> Option<Vec<u8>> {
    let trimmed = value.trim_ascii();
    let body = trimmed
        .strip_suffix(b"==")
        .or_else(|| trimmed.strip_suffix(b"="))
        .unwrap_or(trimmed);
    let alphabet = |byte: &u8| byte.is_ascii_alphanumeric() || b"+-/_".contains(byte);
    if body.len() < 8 || !body.iter().all(alphabet) {
        return None;
    }
    let mut output = Vec::with_capacity(body.len() * 3 / 4);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in body {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        buffer = buffer << 6 | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            output.push((buffer >> bits) as u8);
        }
    }
    Some(output)
}

#[cfg(test)]
mod tests;

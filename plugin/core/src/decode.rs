//! Normalization of request values before rule matching.
//!
//! Every inspected value goes through [`normalize`]: repeated percent-decoding,
//! NUL removal, a lossy UTF-8 view and lower-casing. Attackers encode payloads
//! once or several times to slip past filters, so decoding repeats until the
//! value stops changing, for at most [`MAX_DECODE_ROUNDS`] rounds.

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

/// Decodes, cleans and lower-cases `raw` for rule matching.
///
/// The result is a lossy UTF-8 view: invalid byte sequences become U+FFFD, so
/// arbitrary bytes never return an error. Malformed escapes such as `%zz` or a trailing
/// `%` stay as they are.
pub fn normalize(raw: &[u8], plus: Plus) -> String {
    let mut current = raw.to_vec();
    for _ in 0..MAX_DECODE_ROUNDS {
        let decoded = percent_decode(&current, plus);
        if decoded == current {
            break;
        }
        current = decoded;
    }
    current.retain(|&byte| byte != 0);
    String::from_utf8_lossy(&current).to_lowercase()
}

/// Runs one round of percent-decoding.
pub fn percent_decode(input: &[u8], plus: Plus) -> Vec<u8> {
    let mut output = Vec::with_capacity(input.len());
    let mut index = 0;
    while index < input.len() {
        let byte = input[index];
        if byte == b'%' {
            let high = input.get(index + 1).copied().and_then(hex_value);
            let low = input.get(index + 2).copied().and_then(hex_value);
            if let (Some(high), Some(low)) = (high, low) {
                output.push(high << 4 | low);
                index += 3;
                continue;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_plain_escape() {
        assert_eq!(percent_decode(b"a%20b", Plus::Literal), b"a b");
    }

    #[test]
    fn decode_mixed_case_hex() {
        assert_eq!(percent_decode(b"%2e%2E%2f", Plus::Literal), b"../");
    }

    #[test]
    fn decode_keeps_malformed_escapes() {
        assert_eq!(percent_decode(b"100%", Plus::Literal), b"100%");
        assert_eq!(percent_decode(b"%zz%4", Plus::Literal), b"%zz%4");
        assert_eq!(percent_decode(b"%%41", Plus::Literal), b"%A");
    }

    #[test]
    fn decode_plus_by_mode() {
        assert_eq!(percent_decode(b"a+b", Plus::Space), b"a b");
        assert_eq!(percent_decode(b"a+b", Plus::Literal), b"a+b");
    }

    #[test]
    fn normalize_double_encoding() {
        assert_eq!(normalize(b"%252e%252e%252f", Plus::Literal), "../");
    }

    #[test]
    fn normalize_stops_after_max_rounds() {
        // Four layers of encoding: three rounds leave one layer.
        assert_eq!(normalize(b"%2525252e", Plus::Literal), "%2e");
    }

    #[test]
    fn normalize_lowercases() {
        assert_eq!(normalize(b"UNION SeLeCt", Plus::Literal), "union select");
    }

    #[test]
    fn normalize_removes_nul() {
        assert_eq!(normalize(b"<scr%00ipt>", Plus::Literal), "<script>");
        assert_eq!(normalize(b"a\0b", Plus::Literal), "ab");
    }

    #[test]
    fn normalize_accepts_invalid_utf8() {
        assert_eq!(normalize(b"\xff\xfeA", Plus::Literal), "\u{fffd}\u{fffd}a");
        assert_eq!(normalize(b"%ff", Plus::Literal), "\u{fffd}");
    }

    #[test]
    fn normalize_empty_value() {
        assert_eq!(normalize(b"", Plus::Space), "");
    }
}

//! Parsing of compact JWS tokens: strict base64url, JSON without duplicate
//! members, and the registered header parameters and claims checked for type.
//!
//! Nothing here trusts the token: every failure is a [`JwtError`] and no input
//! panics.

use super::error::JwtError;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Number, Value};
use std::fmt;
use std::rc::Rc;

/// Unpadded base64url that rejects padding, whitespace, characters outside the
/// alphabet and non-zero trailing bits (RFC 7515, section 2).
pub const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Largest NumericDate accepted: 9999-12-31T23:59:59Z. Larger values are
/// rejected because no issuer means them and they overflow time arithmetic.
pub const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// Signature algorithms (RFC 7518, section 3, and RFC 8037 for EdDSA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256 and MGF1 with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384 and MGF1 with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512 and MGF1 with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// ECDSA on P-521 with SHA-512.
    ES512,
    /// EdDSA; only the Ed25519 curve is supported.
    EdDSA,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 13] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
    ];

    /// Parses a JOSE `alg` value; the comparison is case-sensitive, as
    /// RFC 7515 requires.
    pub fn from_name(name: &str) -> Option<Self> {
        Algorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.name() == name)
    }

    /// Returns the JOSE name.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
            Algorithm::EdDSA => "EdDSA",
        }
    }
}

/// The parts of a JWS header this module uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The signature algorithm.
    pub alg: Algorithm,
    /// Key id, used only to select among the provider's configured keys.
    pub kid: Option<String>,
}

/// Registered claims checked for type at parse time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisteredClaims {
    /// `iss`.
    pub iss: Option<String>,
    /// `sub`.
    pub sub: Option<String>,
    /// `aud`, a single string read as a list of one.
    pub aud: Vec<String>,
    /// `exp` in seconds since the epoch.
    pub exp: Option<u64>,
    /// `nbf` in seconds since the epoch.
    pub nbf: Option<u64>,
    /// `iat` in seconds since the epoch.
    pub iat: Option<u64>,
}

/// A parsed, not yet verified, compact JWS.
#[derive(Debug, Clone)]
pub struct Token<'a> {
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, the bytes the
    /// signature covers (RFC 7515, section 5.2).
    pub signing_input: &'a str,
    /// The payload part as sent, still base64url.
    pub payload_part: &'a str,
    /// The decoded header.
    pub header: Header,
    /// Every claim of the payload.
    pub claims: Rc<Map<String, Value>>,
    /// Registered claims, checked for type.
    pub registered: RegisteredClaims,
    /// The signature part as sent, checked to be base64url. It is decoded
    /// only for a verification, which a cached token does not need.
    pub signature_part: &'a str,
}

/// The result of [`parse`] without the token's bytes, kept so that a token
/// seen again need not be parsed again.
#[derive(Debug)]
pub struct ParsedToken {
    header: Header,
    claims: Rc<Map<String, Value>>,
    registered: RegisteredClaims,
    /// Length of the signing input, which ends at the second dot.
    signing_input_len: usize,
    /// Offset of the payload part, after the first dot.
    payload_start: usize,
    /// See [`Self::weight`].
    weight: usize,
}

impl ParsedToken {
    /// Copies the parse out of `token`.
    pub fn of(token: &Token<'_>) -> Self {
        ParsedToken {
            header: token.header.clone(),
            claims: Rc::clone(&token.claims),
            registered: token.registered.clone(),
            signing_input_len: token.signing_input.len(),
            payload_start: token.signing_input.len() - token.payload_part.len(),
            weight: PARSE_FIXED_BYTES + object_weight(&token.claims),
        }
    }

    /// Returns an estimate, made when the parse was kept, of the bytes of
    /// memory it takes on wasm32: the claims' strings, vectors and B-tree
    /// nodes, and the header and registered claims. A B-tree node of the claims map takes
    /// about 400 bytes however few members it has, so a payload of many
    /// small objects takes many times its own length.
    pub fn weight(&self) -> usize {
        self.weight
    }

    /// Rebuilds the parse of `raw`, which must be the bytes that were parsed,
    /// or `None` when the lengths show they are not.
    pub fn token<'a>(&self, raw: &'a str) -> Option<Token<'a>> {
        let signing_input = raw.get(..self.signing_input_len)?;
        let payload_part = signing_input.get(self.payload_start..)?;
        let signature_part = raw.get(self.signing_input_len + 1..)?;
        Some(Token {
            signing_input,
            payload_part,
            header: self.header.clone(),
            claims: Rc::clone(&self.claims),
            registered: self.registered.clone(),
            signature_part,
        })
    }
}

/// Bytes of a parse besides its claims: the header, the registered claims
/// and the reference-counted boxes.
const PARSE_FIXED_BYTES: usize = 256;
/// Bytes of one B-tree leaf of a claims map on wasm32: 11 keys of 12 bytes,
/// 11 values and a few links.
const MAP_NODE_BYTES: usize = 400;
/// Bytes of a JSON value in its parent's vector or node on wasm32: a tag and
/// a number of 8 bytes, aligned to 8.
const VALUE_BYTES: usize = 24;

/// Estimates the heap bytes of an object's members and their values.
fn object_weight(map: &Map<String, Value>) -> usize {
    let nodes = map.len().div_ceil(11) * MAP_NODE_BYTES;
    nodes
        + map
            .iter()
            .map(|(key, value)| key.len() + value_weight(value))
            .sum::<usize>()
}

/// Estimates the heap bytes a JSON value owns, beyond its own slot.
fn value_weight(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len(),
        Value::Array(items) => items
            .iter()
            .map(|item| VALUE_BYTES + value_weight(item))
            .sum(),
        Value::Object(map) => object_weight(map),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

impl Token<'_> {
    /// Decodes the signature.
    pub fn signature(&self) -> Vec<u8> {
        // `parse` accepted the part only if `is_base64url` did, and that
        // agrees with the decoder (see `is_base64url_matches_decoder`). Should
        // decoding fail anyway, the empty signature fails every verification.
        BASE64URL.decode(self.signature_part).unwrap_or_default()
    }
}

/// A compact JWS whose header is parsed and whose payload is still encoded.
#[derive(Debug, Clone)]
pub struct Jws<'a> {
    /// The bytes the signature covers.
    pub signing_input: &'a str,
    /// The payload part as sent, still base64url.
    pub payload_part: &'a str,
    /// The decoded header.
    pub header: Header,
    /// The decoded signature.
    pub signature: Vec<u8>,
}

/// Parses a compact JWS into its parts, checking the encoding, the JSON and
/// the types of the registered header parameters and claims.
pub fn parse(raw: &str) -> Result<Token<'_>, JwtError> {
    let parts = parse_parts(raw)?;
    let claims = parse_object(&parts.payload).ok_or(JwtError::PayloadBadJson)?;
    let registered = parse_registered(&claims)?;
    Ok(Token {
        signing_input: parts.signing_input,
        payload_part: parts.payload_part,
        header: parts.header,
        claims: Rc::new(claims),
        registered,
        signature_part: parts.signature_part,
    })
}

/// Parses the header and signature of a compact JWS and checks that the
/// payload part is base64url, without reading the payload as JSON claims.
pub fn parse_jws(raw: &str) -> Result<Jws<'_>, JwtError> {
    let parts = parse_parts(raw)?;
    let signature = BASE64URL
        .decode(parts.signature_part)
        .map_err(|_| JwtError::SignatureBadBase64)?;
    Ok(Jws {
        signing_input: parts.signing_input,
        payload_part: parts.payload_part,
        header: parts.header,
        signature,
    })
}

/// The parts of a compact JWS: the header parsed, the payload decoded, and
/// the signature checked to be base64url.
struct Parts<'a> {
    signing_input: &'a str,
    payload_part: &'a str,
    header: Header,
    payload: Vec<u8>,
    signature_part: &'a str,
}

/// Parses the header of a compact JWS, decodes its payload part and checks
/// the encoding of its signature part.
fn parse_parts(raw: &str) -> Result<Parts<'_>, JwtError> {
    let mut parts = raw.split('.');
    let (Some(header_part), Some(payload_part), Some(signature_part), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::BadFormat);
    };
    let signing_input = &raw[..header_part.len() + 1 + payload_part.len()];

    let header_bytes = BASE64URL
        .decode(header_part)
        .map_err(|_| JwtError::HeaderBadBase64)?;
    let header_json = parse_object(&header_bytes).ok_or(JwtError::HeaderBadJson)?;
    let header = parse_header(&header_json)?;

    let payload = BASE64URL
        .decode(payload_part)
        .map_err(|_| JwtError::PayloadBadBase64)?;

    if !is_base64url(signature_part.as_bytes()) {
        return Err(JwtError::SignatureBadBase64);
    }
    Ok(Parts {
        signing_input,
        payload_part,
        header,
        payload,
        signature_part,
    })
}

/// Tells whether [`BASE64URL`] decodes `part`: only characters of the
/// base64url alphabet, no padding, a length that is not 1 modulo 4, and
/// zero bits after the last whole byte. It checks without decoding.
fn is_base64url(part: &[u8]) -> bool {
    if !part
        .iter()
        .all(|&symbol| BASE64URL_VALUES[usize::from(symbol)] != INVALID)
    {
        return false;
    }
    let last = part
        .last()
        .map_or(0, |&symbol| BASE64URL_VALUES[usize::from(symbol)]);
    match part.len() % 4 {
        1 => false,
        2 => last & 0x0f == 0,
        3 => last & 0x03 == 0,
        _ => true,
    }
}

/// Marks a byte outside the base64url alphabet in [`BASE64URL_VALUES`].
const INVALID: u8 = 0xff;

/// The 6-bit value of each base64url symbol, and [`INVALID`] for every other
/// byte.
static BASE64URL_VALUES: [u8; 256] = {
    let mut values = [INVALID; 256];
    let mut i = 0;
    while i < 26 {
        values[b'A' as usize + i] = i as u8;
        values[b'a' as usize + i] = 26 + i as u8;
        i += 1;
    }
    let mut digit = 0;
    while digit < 10 {
        values[b'0' as usize + digit] = 52 + digit as u8;
        digit += 1;
    }
    values[b'-' as usize] = 62;
    values[b'_' as usize] = 63;
    values
};

fn parse_header(header: &Map<String, Value>) -> Result<Header, JwtError> {
    let name = match header.get("alg") {
        Some(Value::String(name)) => name,
        _ => return Err(JwtError::HeaderBadAlg),
    };
    if name.eq_ignore_ascii_case("none") {
        return Err(JwtError::HeaderAlgNone);
    }
    let alg = Algorithm::from_name(name).ok_or(JwtError::HeaderUnsupportedAlg)?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(JwtError::HeaderBadKid),
    };
    // RFC 7515, section 4.1.11: a recipient that does not understand an
    // extension listed in `crit` must reject the token. This module
    // understands none (not even `b64` of RFC 7797), so any `crit` is
    // rejected, as is a malformed one.
    if header.contains_key("crit") {
        return Err(JwtError::HeaderUnknownCrit);
    }
    // `jku`, `x5u`, `jwk` and `x5c` point at keys the sender chose; they are
    // never read, so a token cannot bring its own key.
    Ok(Header { alg, kid })
}

fn parse_registered(claims: &Map<String, Value>) -> Result<RegisteredClaims, JwtError> {
    let string = |name: &str, error: JwtError| match claims.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(error),
    };
    let iss = string("iss", JwtError::IssNotString)?;
    let sub = string("sub", JwtError::SubNotString)?;
    string("jti", JwtError::JtiNotString)?;
    let aud = match claims.get("aud") {
        None => Vec::new(),
        Some(Value::String(aud)) => vec![aud.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or(JwtError::AudNotString)?,
        Some(_) => return Err(JwtError::AudNotString),
    };
    // A fraction is rounded so that the validity window only shrinks: `exp`
    // down, `nbf` and `iat` up.
    let exp = numeric_date(
        claims,
        "exp",
        f64::floor,
        JwtError::ExpNotInteger,
        JwtError::ExpOutOfRange,
    )?;
    let nbf = numeric_date(
        claims,
        "nbf",
        f64::ceil,
        JwtError::NbfNotInteger,
        JwtError::NbfOutOfRange,
    )?;
    let iat = numeric_date(
        claims,
        "iat",
        f64::ceil,
        JwtError::IatNotInteger,
        JwtError::IatOutOfRange,
    )?;
    Ok(RegisteredClaims {
        iss,
        sub,
        aud,
        exp,
        nbf,
        iat,
    })
}

/// Reads a NumericDate claim: a JSON number of seconds since the epoch,
/// which RFC 7519, section 2 allows to have a fraction. A fraction or an
/// exponent form such as `2e9` goes through `round`, and the result must lie
/// from 0 to [`MAX_NUMERIC_DATE`]. A value of another JSON type fails with
/// `not_number`, a number outside the range with `out_of_range`.
fn numeric_date(
    claims: &Map<String, Value>,
    name: &str,
    round: fn(f64) -> f64,
    not_number: JwtError,
    out_of_range: JwtError,
) -> Result<Option<u64>, JwtError> {
    let number = match claims.get(name) {
        None => return Ok(None),
        Some(Value::Number(number)) => number,
        Some(_) => return Err(not_number),
    };
    if let Some(value) = number.as_u64() {
        return if value <= MAX_NUMERIC_DATE {
            Ok(Some(value))
        } else {
            Err(out_of_range)
        };
    }
    if number.is_i64() {
        return Err(out_of_range);
    }
    match number.as_f64().map(round) {
        // The range check makes the conversion exact: the value is a whole
        // number below 2^53.
        Some(value) if (0.0..=MAX_NUMERIC_DATE as f64).contains(&value) => Ok(Some(value as u64)),
        _ => Err(out_of_range),
    }
}

/// Parses bytes as one JSON object whose objects, at any depth, have no
/// duplicate member names. Returns `None` for anything else.
pub fn parse_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    match value.0 {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A JSON value whose deserialization fails on a duplicate object member,
/// where `serde_json::Value` would keep the last one silently. Two parsers
/// that pick different duplicates could otherwise read different claims from
/// one signed payload.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value without duplicate object members")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<StrictValue>()? {
            items.push(item.0);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(de::Error::custom(format!("duplicate member {name:?}")));
            }
            let value = map.next_value::<StrictValue>()?;
            members.insert(name, value.0);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(json: &str) -> String {
        BASE64URL.encode(json)
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.c2ln", encode(header), encode(payload))
    }

    #[test]
    fn is_base64url_matches_decoder() {
        let symbols = b"AQgwz09-_=+/ .";
        let mut cases: Vec<Vec<u8>> = vec![Vec::new()];
        for length in 1..=5 {
            let mut next = Vec::new();
            for case in cases.iter().filter(|case| case.len() == length - 1) {
                for &symbol in symbols {
                    let mut longer = case.clone();
                    longer.push(symbol);
                    next.push(longer);
                }
            }
            cases.extend(next);
        }
        assert!(cases.len() > 500_000);
        for case in &cases {
            assert_eq!(
                is_base64url(case),
                BASE64URL.decode(case).is_ok(),
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn well_formed_token_parses() {
        let raw = token(
            r#"{"alg":"RS256","kid":"k1"}"#,
            r#"{"iss":"a","aud":["x","y"],"exp":10,"custom":{"n":1}}"#,
        );
        let parsed = parse(&raw).unwrap();
        assert_eq!(parsed.header.alg, Algorithm::RS256);
        assert_eq!(parsed.header.kid.as_deref(), Some("k1"));
        assert_eq!(parsed.registered.aud, vec!["x", "y"]);
        assert_eq!(parsed.registered.exp, Some(10));
        assert_eq!(parsed.signature(), b"sig");
        assert!(raw.starts_with(parsed.signing_input));
    }

    #[test]
    fn alg_none_rejected_in_any_case() {
        for name in ["none", "None", "NONE", "nOnE"] {
            let raw = token(&format!(r#"{{"alg":"{name}"}}"#), "{}");
            assert_eq!(parse(&raw).unwrap_err(), JwtError::HeaderAlgNone, "{name}");
        }
    }

    #[test]
    fn alg_names_are_case_sensitive() {
        let raw = token(r#"{"alg":"rs256"}"#, "{}");
        assert_eq!(parse(&raw).unwrap_err(), JwtError::HeaderUnsupportedAlg);
    }

    #[test]
    fn crit_rejected() {
        let raw = token(r#"{"alg":"HS256","crit":["exp"],"exp":1}"#, "{}");
        assert_eq!(parse(&raw).unwrap_err(), JwtError::HeaderUnknownCrit);
        let raw = token(r#"{"alg":"HS256","crit":[]}"#, "{}");
        assert_eq!(parse(&raw).unwrap_err(), JwtError::HeaderUnknownCrit);
    }

    #[test]
    fn duplicate_members_rejected() {
        let raw = token(r#"{"alg":"HS256","alg":"none"}"#, "{}");
        assert_eq!(parse(&raw).unwrap_err(), JwtError::HeaderBadJson);
        let raw = token(r#"{"alg":"HS256"}"#, r#"{"sub":"a","sub":"admin"}"#);
        assert_eq!(parse(&raw).unwrap_err(), JwtError::PayloadBadJson);
        let raw = token(r#"{"alg":"HS256"}"#, r#"{"x":{"r":1,"r":2}}"#);
        assert_eq!(parse(&raw).unwrap_err(), JwtError::PayloadBadJson);
    }

    #[test]
    fn base64_junk_rejected() {
        let header = encode(r#"{"alg":"HS256"}"#);
        let payload = encode("{}");
        for raw in [
            format!("{header}=.{payload}.c2ln"),
            format!("{header} .{payload}.c2ln"),
            format!("{header}.{payload}.c2ln="),
            format!("{header}.{payload}.c2l+"),
            format!("{header}.{payload}.c2"),
            format!("{header}.{payload}.c2\nln"),
        ] {
            assert!(parse(&raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn part_count_checked() {
        assert_eq!(parse("a.b").unwrap_err(), JwtError::BadFormat);
        assert_eq!(parse("a.b.c.d").unwrap_err(), JwtError::BadFormat);
        assert_eq!(parse("").unwrap_err(), JwtError::BadFormat);
    }

    #[test]
    fn numeric_dates_checked() {
        let cases = [
            (r#"{"exp":"1"}"#, JwtError::ExpNotInteger),
            (r#"{"exp":-0.5}"#, JwtError::ExpOutOfRange),
            (r#"{"exp":253402300800.5}"#, JwtError::ExpOutOfRange),
            (r#"{"exp":-1}"#, JwtError::ExpOutOfRange),
            (r#"{"exp":2.001e+206}"#, JwtError::ExpOutOfRange),
            (r#"{"exp":18446744073709551615}"#, JwtError::ExpOutOfRange),
            (r#"{"exp":1e400}"#, JwtError::PayloadBadJson),
            (r#"{"nbf":true}"#, JwtError::NbfNotInteger),
            (r#"{"iat":-5}"#, JwtError::IatOutOfRange),
        ];
        for (payload, expected) in cases {
            let raw = token(r#"{"alg":"HS256"}"#, payload);
            assert_eq!(parse(&raw).unwrap_err(), expected, "{payload}");
        }
    }

    #[test]
    fn numeric_date_fractions_narrow_window() {
        let raw = token(
            r#"{"alg":"HS256"}"#,
            r#"{"exp":1000.9,"nbf":10.1,"iat":1234.5678,"extra":2e3}"#,
        );
        let registered = parse(&raw).unwrap().registered;
        assert_eq!(registered.exp, Some(1000));
        assert_eq!(registered.nbf, Some(11));
        assert_eq!(registered.iat, Some(1235));
        let raw = token(r#"{"alg":"HS256"}"#, r#"{"exp":2e9}"#);
        assert_eq!(parse(&raw).unwrap().registered.exp, Some(2_000_000_000));
    }

    #[test]
    fn payload_must_be_object() {
        let raw = token(r#"{"alg":"HS256"}"#, "[1]");
        assert_eq!(parse(&raw).unwrap_err(), JwtError::PayloadBadJson);
        let raw = token(r#"{"alg":"HS256"}"#, "{} x");
        assert_eq!(parse(&raw).unwrap_err(), JwtError::PayloadBadJson);
    }
}

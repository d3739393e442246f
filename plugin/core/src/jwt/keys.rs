//! Verification keys: JWKS documents (RFC 7517) and PEM public keys, parsed
//! into key material that [`super::verify`] uses.
//!
//! A JWKS whose keys are partly unusable keeps the usable ones and reports
//! the others, so that one key of a type this module does not support (or a
//! malformed one) does not take down a provider.

use super::ed25519::{Ed25519Key, Ed25519KeyError};
use super::montgomery::Modulus;
use super::token::{Algorithm, BASE64URL};
use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::der::asn1::ObjectIdentifier;
use spki::der::Decode;
use spki::SubjectPublicKeyInfoRef;
use std::fmt;
use std::sync::OnceLock;

/// Smallest RSA modulus accepted, in bits (RFC 7518, section 3.3).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits; larger keys only cost time.
pub const MAX_RSA_BITS: usize = 8192;
/// Shortest HMAC secret accepted, in bytes: the output of SHA-256, which
/// RFC 7518, section 3.2 sets as the minimum for HS256.
pub const MIN_HMAC_SECRET_BYTES: usize = 32;
/// Most keys kept from one JWKS, so a large document cannot make every
/// token try thousands of keys.
pub const MAX_KEYS: usize = 64;

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The key family, which decides the verifier: a token is never verified
/// with a key of another family (an HS256 token never against an RSA key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// Shared secret (`kty` `oct`).
    Hmac,
    /// RSA public key.
    Rsa,
    /// P-256 public key.
    P256,
    /// P-384 public key.
    P384,
    /// P-521 public key.
    P521,
    /// Ed25519 public key (`kty` `OKP`, `crv` `Ed25519`).
    Ed25519,
}

impl KeyFamily {
    /// Tells whether tokens signed with `alg` may be verified with a key of
    /// this family.
    pub fn accepts(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyFamily::Hmac => matches!(alg, HS256 | HS384 | HS512),
            KeyFamily::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyFamily::P256 => alg == ES256,
            KeyFamily::P384 => alg == ES384,
            KeyFamily::P521 => alg == ES512,
            KeyFamily::Ed25519 => alg == EdDSA,
        }
    }
}

/// Parsed key material, in the form its verifier uses, so that a
/// verification repeats no key decoding or precomputation.
#[derive(Clone)]
pub enum Material {
    /// An HMAC secret, keyed for each hash.
    Hmac(Box<HmacKey>),
    /// An RSA public key with its Montgomery parameters.
    Rsa(Box<RsaKey>),
    /// A P-256 public key.
    P256(p256::ecdsa::VerifyingKey),
    /// A P-384 public key.
    P384(p384::ecdsa::VerifyingKey),
    /// A P-521 public key.
    P521(p521::ecdsa::VerifyingKey),
    /// An Ed25519 public key, decompressed.
    Ed25519(Box<Ed25519Key>),
}

/// An HMAC secret keyed once for each SHA-2 hash: the inner and outer
/// padded keys are hashed when the key loads, and a verification clones the
/// keyed state instead of hashing them again.
#[derive(Clone)]
pub struct HmacKey {
    sha256: Hmac<Sha256>,
    sha384: Hmac<Sha384>,
    sha512: Hmac<Sha512>,
}

impl HmacKey {
    fn new(secret: &[u8]) -> Option<Self> {
        Some(HmacKey {
            sha256: Hmac::new_from_slice(secret).ok()?,
            sha384: Hmac::new_from_slice(secret).ok()?,
            sha512: Hmac::new_from_slice(secret).ok()?,
        })
    }

    /// Checks the tag of `message` for an `HS*` algorithm in constant time.
    /// A tag whose length differs from the hash output fails.
    pub fn verify(&self, alg: Algorithm, message: &[u8], tag: &[u8]) -> bool {
        fn check(mut mac: impl Mac, message: &[u8], tag: &[u8]) -> bool {
            mac.update(message);
            mac.verify_slice(tag).is_ok()
        }
        match alg {
            Algorithm::HS256 => check(self.sha256.clone(), message, tag),
            Algorithm::HS384 => check(self.sha384.clone(), message, tag),
            Algorithm::HS512 => check(self.sha512.clone(), message, tag),
            _ => false,
        }
    }
}

/// An RSA public key: `rsa`'s form, whose Montgomery parameters are
/// computed when it is built, and the narrow-limb form of wasm32, computed
/// on first use.
#[derive(Clone)]
pub struct RsaKey {
    /// The key with `crypto-bigint`'s Montgomery parameters.
    pub public: rsa::PublicKey,
    /// The modulus, big-endian, without leading zero bytes.
    pub modulus: Vec<u8>,
    /// The public exponent, big-endian, without leading zero bytes.
    pub exponent: Vec<u8>,
    narrow: OnceLock<Option<Modulus>>,
}

impl RsaKey {
    /// Returns the modulus prepared for narrow-limb products, computing it
    /// on first use, or `None` when the modulus is too long for them.
    pub fn narrow(&self) -> Option<&Modulus> {
        self.narrow
            .get_or_init(|| Modulus::new(&self.modulus))
            .as_ref()
    }
}

/// One usable verification key.
#[derive(Clone)]
pub struct Key {
    /// `kid`, when the JWK has one.
    pub kid: Option<String>,
    /// `alg`, when the JWK has one: tokens must then use exactly it.
    pub alg: Option<Algorithm>,
    /// The family, which decides the verifier.
    pub family: KeyFamily,
    /// The key itself.
    pub material: Material,
    /// Length in bytes of an HMAC secret, which decides the HMAC algorithms
    /// the key may verify. `None` for public keys.
    pub hmac_secret_len: Option<usize>,
    /// SHA-256 of the family and the public key bytes, which identifies the
    /// key in the verified-token cache across JWKS refreshes.
    pub fingerprint: [u8; 32],
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// Tells whether this key may verify a token with `alg` and `kid`: the
    /// family must accept the algorithm, a key `alg` must equal it, an HMAC
    /// secret must be at least as long as the hash output of `alg`, and when
    /// both have a `kid` they must be equal.
    pub fn matches(&self, alg: Algorithm, kid: Option<&str>) -> bool {
        if !self.family.accepts(alg) {
            return false;
        }
        if self.alg.is_some_and(|own| own != alg) {
            return false;
        }
        if let (Some(len), Some(min)) = (self.hmac_secret_len, min_hmac_secret_len(alg)) {
            if len < min {
                return false;
            }
        }
        match (kid, self.kid.as_deref()) {
            (Some(wanted), Some(own)) => wanted == own,
            _ => true,
        }
    }
}

/// Returns the shortest HMAC secret allowed with `alg`, in bytes, or `None`
/// for algorithms other than HMAC. RFC 7518, section 3.2 requires a key at
/// least as long as the hash output.
pub fn min_hmac_secret_len(alg: Algorithm) -> Option<usize> {
    match alg {
        Algorithm::HS256 => Some(32),
        Algorithm::HS384 => Some(48),
        Algorithm::HS512 => Some(64),
        _ => None,
    }
}

/// Why a key, or a whole key document, is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The document is not JSON, or not a JSON object.
    NotJson,
    /// The object has no `keys` member.
    NoKeys,
    /// `keys` is not an array.
    KeysNotArray,
    /// No key of the document is usable; the first key's error follows.
    NoUsableKeys(Box<KeyError>),
    /// `kty` is missing.
    MissingKty,
    /// `kty` is not a string.
    BadKty,
    /// `kty` names a type this module does not support.
    UnsupportedKty(String),
    /// `alg` does not fit the key type, or is not a string.
    BadAlg,
    /// A required member is missing.
    MissingMember(&'static str),
    /// A member is not a string.
    MemberNotString(&'static str),
    /// A member is not strict base64url.
    BadBase64(&'static str),
    /// `crv` is not supported for this key type.
    UnsupportedCurve,
    /// `crv` and `alg` do not fit each other.
    CurveAlgMismatch,
    /// The key bytes do not form a valid key (size, point on the curve...).
    InvalidKey(&'static str),
    /// `use` is not `sig`, or `key_ops` lacks `verify`.
    NotForSignatures,
    /// The PEM text or its DER content is malformed.
    BadPem,
    /// The PEM key's algorithm is not supported.
    UnsupportedPemKey,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NotJson => f.write_str("the JWKS is not a JSON object"),
            KeyError::NoKeys => f.write_str("the JWKS has no [keys] member"),
            KeyError::KeysNotArray => f.write_str("[keys] in the JWKS is not an array"),
            KeyError::NoUsableKeys(first) => {
                write!(f, "the JWKS has no usable key (first key: {first})")
            }
            KeyError::MissingKty => f.write_str("[kty] is missing"),
            KeyError::BadKty => f.write_str("[kty] is not a string"),
            KeyError::UnsupportedKty(kty) => write!(f, "[kty] {kty:?} is not supported"),
            KeyError::BadAlg => f.write_str("[alg] does not fit the key type"),
            KeyError::MissingMember(name) => write!(f, "[{name}] is missing"),
            KeyError::MemberNotString(name) => write!(f, "[{name}] is not a string"),
            KeyError::BadBase64(name) => write!(f, "[{name}] is not valid base64url"),
            KeyError::UnsupportedCurve => f.write_str("[crv] is not supported"),
            KeyError::CurveAlgMismatch => f.write_str("[crv] does not fit [alg]"),
            KeyError::InvalidKey(reason) => write!(f, "invalid key: {reason}"),
            KeyError::NotForSignatures => {
                f.write_str("the key is not for signatures ([use] or [key_ops])")
            }
            KeyError::BadPem => f.write_str("the PEM public key is malformed"),
            KeyError::UnsupportedPemKey => f.write_str("the PEM key type is not supported"),
        }
    }
}

impl std::error::Error for KeyError {}

/// The usable keys of a document, and the errors of the keys left out.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    /// Usable keys, at most [`MAX_KEYS`].
    pub keys: Vec<Key>,
    /// Position and error of each key left out.
    pub skipped: Vec<(usize, KeyError)>,
}

/// Parses a key document: a JWKS, a single JWK, or PEM public keys.
///
/// Envoy's `local_jwks` takes a JWKS or a PEM text; a single JWK object is
/// read as a JWKS of one key. Fails when no key is usable.
pub fn parse_document(text: &str) -> Result<KeySet, KeyError> {
    if text.trim_start().starts_with("-----BEGIN") {
        return parse_pem(text);
    }
    parse_jwks(text)
}

/// Parses a JWKS document (RFC 7517, section 5), a single JWK, or an object
/// that maps key ids to PEM X.509 certificates.
///
/// Google publishes the keys of its service accounts in the last form, and
/// jwt_verify_lib, so Envoy's `jwt_authn`, reads it as a JWKS. Only the
/// public key of each certificate is used: as in jwt_verify_lib, validity
/// dates, issuer and signature are not checked, because the configured
/// document itself is what the provider trusts.
pub fn parse_jwks(text: &str) -> Result<KeySet, KeyError> {
    let document = super::token::parse_object(text.as_bytes()).ok_or(KeyError::NotJson)?;
    let list = match document.get("keys") {
        Some(Value::Array(list)) => list,
        Some(_) => return Err(KeyError::KeysNotArray),
        None if document.contains_key("kty") => {
            let key = parse_jwk(&document)?;
            return Ok(KeySet {
                keys: vec![key],
                skipped: Vec::new(),
            });
        }
        None if is_certificate_map(&document) => {
            let keys = document.iter().map(|(kid, value)| match value {
                Value::String(pem) => certificate_key(kid, pem),
                _ => Err(KeyError::BadPem),
            });
            return collect_keys(keys, KeyError::NoKeys);
        }
        None => return Err(KeyError::NoKeys),
    };
    let keys = list.iter().map(|item| match item {
        Value::Object(jwk) => parse_jwk(jwk),
        _ => Err(KeyError::MissingKty),
    });
    collect_keys(keys, KeyError::NoKeys)
}

/// Tells whether a JSON object without `keys` maps key ids to certificates:
/// it has members, and every name and value is a non-empty string, the test
/// jwt_verify_lib applies.
fn is_certificate_map(document: &Map<String, Value>) -> bool {
    !document.is_empty()
        && document.iter().all(|(kid, value)| {
            !kid.is_empty() && value.as_str().is_some_and(|text| !text.is_empty())
        })
}

/// Keeps the usable keys, at most [`MAX_KEYS`], and records the errors of
/// the others. Fails with [`KeyError::NoUsableKeys`] when no key is usable,
/// holding the first key's error, or `empty` when there is no key at all.
fn collect_keys(
    parsed: impl Iterator<Item = Result<Key, KeyError>>,
    empty: KeyError,
) -> Result<KeySet, KeyError> {
    let mut set = KeySet::default();
    for (index, parsed) in parsed.enumerate() {
        match parsed {
            Ok(key) if set.keys.len() < MAX_KEYS => set.keys.push(key),
            Ok(_) => set
                .skipped
                .push((index, KeyError::InvalidKey("more keys than the limit"))),
            Err(error) => set.skipped.push((index, error)),
        }
    }
    if set.keys.is_empty() {
        let first = set
            .skipped
            .first()
            .map(|(_, error)| error.clone())
            .unwrap_or(empty);
        return Err(KeyError::NoUsableKeys(Box::new(first)));
    }
    Ok(set)
}

fn member<'a>(jwk: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, KeyError> {
    match jwk.get(name) {
        None => Err(KeyError::MissingMember(name)),
        Some(Value::String(value)) => Ok(value),
        Some(_) => Err(KeyError::MemberNotString(name)),
    }
}

fn decode_member(jwk: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, KeyError> {
    let text = member(jwk, name)?;
    decode_lenient(text).ok_or(KeyError::BadBase64(name))
}

/// Decodes a JWK member. RFC 7515 says unpadded base64url; padded values and
/// standard-alphabet values are common in published JWKS (and accepted by
/// jwt_verify_lib), so both are read here. Tokens get the strict decoder.
fn decode_lenient(text: &str) -> Option<Vec<u8>> {
    let trimmed = text.trim_end_matches('=');
    if let Ok(bytes) = BASE64URL.decode(trimmed) {
        return Some(bytes);
    }
    let converted: String = trimmed
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    BASE64URL.decode(converted).ok()
}

fn fingerprint(family: KeyFamily, bytes: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([family as u8]);
    for part in bytes {
        hasher.update((part.len() as u32).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Parses one JWK (RFC 7517, section 4; RFC 7518, section 6; RFC 8037).
pub fn parse_jwk(jwk: &Map<String, Value>) -> Result<Key, KeyError> {
    let kty = match jwk.get("kty") {
        None => return Err(KeyError::MissingKty),
        Some(Value::String(kty)) => kty.as_str(),
        Some(_) => return Err(KeyError::BadKty),
    };
    let alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(name)) => Some(Algorithm::from_name(name).ok_or(KeyError::BadAlg)?),
        Some(_) => return Err(KeyError::BadAlg),
    };
    match jwk.get("use") {
        None => {}
        Some(Value::String(usage)) if usage == "sig" => {}
        Some(_) => return Err(KeyError::NotForSignatures),
    }
    // RFC 7517, section 4.3: a key whose `key_ops` lacks "verify" must not
    // verify signatures.
    match jwk.get("key_ops") {
        None => {}
        Some(Value::Array(ops)) if ops.iter().any(|op| op.as_str() == Some("verify")) => {}
        Some(_) => return Err(KeyError::NotForSignatures),
    }
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(KeyError::MemberNotString("kid")),
    };
    let mut hmac_secret_len = None;
    let (family, material, print) = match kty {
        "RSA" => rsa_jwk(jwk)?,
        "EC" => ec_jwk(jwk, alg)?,
        "oct" => {
            let secret = decode_member(jwk, "k")?;
            hmac_secret_len = Some(secret.len());
            hmac_material(&secret, alg)?
        }
        "OKP" => okp_jwk(jwk)?,
        other => return Err(KeyError::UnsupportedKty(other.to_string())),
    };
    if let Some(alg) = alg {
        if !family.accepts(alg) {
            return Err(match family {
                KeyFamily::P256 | KeyFamily::P384 | KeyFamily::P521 => KeyError::CurveAlgMismatch,
                _ => KeyError::BadAlg,
            });
        }
    }
    Ok(Key {
        kid,
        alg,
        family,
        material,
        hmac_secret_len,
        fingerprint: print,
    })
}

/// Builds an HMAC key. The secret must be at least as long as the hash
/// output of the key's `alg`, and at least 32 bytes (the output of SHA-256)
/// when the key has no `alg`, because a shorter secret fits no algorithm.
fn hmac_material(
    secret: &[u8],
    alg: Option<Algorithm>,
) -> Result<(KeyFamily, Material, [u8; 32]), KeyError> {
    if alg.is_some_and(|alg| !KeyFamily::Hmac.accepts(alg)) {
        return Err(KeyError::BadAlg);
    }
    let min = alg
        .and_then(min_hmac_secret_len)
        .unwrap_or(MIN_HMAC_SECRET_BYTES);
    if secret.len() < min {
        return Err(KeyError::InvalidKey(
            "HMAC secret is shorter than the hash output of its algorithm",
        ));
    }
    let key = HmacKey::new(secret).ok_or(KeyError::InvalidKey("HMAC secret rejected"))?;
    let print = fingerprint(KeyFamily::Hmac, &[secret]);
    Ok((KeyFamily::Hmac, Material::Hmac(Box::new(key)), print))
}

fn rsa_jwk(jwk: &Map<String, Value>) -> Result<(KeyFamily, Material, [u8; 32]), KeyError> {
    if let Some(Value::String(name)) = jwk.get("alg") {
        if !(name.starts_with("RS") || name.starts_with("PS")) {
            return Err(KeyError::BadAlg);
        }
    }
    let n = decode_member(jwk, "n")?;
    let e = decode_member(jwk, "e")?;
    rsa_material(&n, &e)
}

fn rsa_material(n: &[u8], e: &[u8]) -> Result<(KeyFamily, Material, [u8; 32]), KeyError> {
    let n = strip_leading_zeros(n);
    let e = strip_leading_zeros(e);
    // An empty modulus (`"n": ""`) has no bits.
    let bits = n
        .first()
        .map_or(0, |top| n.len() * 8 - top.leading_zeros() as usize);
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(KeyError::InvalidKey(
            "RSA modulus must have 2048 to 8192 bits",
        ));
    }
    if n.last().is_some_and(|low| low & 1 == 0) {
        return Err(KeyError::InvalidKey("RSA modulus is even"));
    }
    if super::roca::has_fingerprint(n) {
        return Err(KeyError::InvalidKey(
            "RSA modulus comes from the Infineon RSALib generator and can be factored (ROCA)",
        ));
    }
    // The exponent must be odd, at least 3 and fit in 64 bits.
    if e.is_empty() || e.len() > 8 || e.last().is_some_and(|low| low & 1 == 0) || e == [1] {
        return Err(KeyError::InvalidKey(
            "RSA exponent must be odd, 3 or more, and at most 64 bits",
        ));
    }
    let key = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(n),
        rsa::BoxedUint::from_be_slice_vartime(e),
    )
    .map_err(|_| {
        KeyError::InvalidKey("RSA exponent must be at most 2^33 - 1, the limit of the rsa crate")
    })?;
    let print = fingerprint(KeyFamily::Rsa, &[n, e]);
    let key = RsaKey {
        public: key,
        modulus: n.to_vec(),
        exponent: e.to_vec(),
        narrow: OnceLock::new(),
    };
    Ok((KeyFamily::Rsa, Material::Rsa(Box::new(key)), print))
}

/// Returns `bytes` without its leading zero bytes.
pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&byte| byte != 0)
        .unwrap_or(bytes.len());
    &bytes[start..]
}

fn ec_jwk(
    jwk: &Map<String, Value>,
    alg: Option<Algorithm>,
) -> Result<(KeyFamily, Material, [u8; 32]), KeyError> {
    if let Some(Value::String(name)) = jwk.get("alg") {
        if !name.starts_with("ES") {
            return Err(KeyError::BadAlg);
        }
    }
    let family = match jwk.get("crv") {
        // A key without `crv` takes its curve from `alg`, as jwt_verify_lib does.
        None => match alg {
            Some(Algorithm::ES256) | None => KeyFamily::P256,
            Some(Algorithm::ES384) => KeyFamily::P384,
            Some(Algorithm::ES512) => KeyFamily::P521,
            Some(_) => return Err(KeyError::BadAlg),
        },
        Some(Value::String(curve)) => match curve.as_str() {
            "P-256" => KeyFamily::P256,
            "P-384" => KeyFamily::P384,
            "P-521" => KeyFamily::P521,
            _ => return Err(KeyError::UnsupportedCurve),
        },
        Some(_) => return Err(KeyError::MemberNotString("crv")),
    };
    let x = decode_member(jwk, "x")?;
    let y = decode_member(jwk, "y")?;
    let size = match family {
        KeyFamily::P256 => 32,
        KeyFamily::P384 => 48,
        _ => 66,
    };
    // RFC 7518, section 6.2.1.2 asks for full-length coordinates, but some
    // issuers drop leading zero bytes of P-521 coordinates; shorter values
    // are left-padded, as jwt_verify_lib does.
    if x.is_empty() || y.is_empty() || x.len() > size || y.len() > size {
        return Err(KeyError::InvalidKey("EC coordinates have the wrong length"));
    }
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(0x04);
    point.resize(1 + size - x.len(), 0);
    point.extend_from_slice(&x);
    point.resize(1 + 2 * size - y.len(), 0);
    point.extend_from_slice(&y);
    ec_material(family, &point)
}

/// Builds EC key material from an uncompressed SEC1 point, checking that the
/// point lies on the curve.
fn ec_material(
    family: KeyFamily,
    point: &[u8],
) -> Result<(KeyFamily, Material, [u8; 32]), KeyError> {
    let print = fingerprint(family, &[point]);
    let material = match family {
        KeyFamily::P256 => Material::P256(
            p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|_| KeyError::InvalidKey("EC point is not on P-256"))?,
        ),
        KeyFamily::P384 => Material::P384(
            p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|_| KeyError::InvalidKey("EC point is not on P-384"))?,
        ),
        KeyFamily::P521 => Material::P521(
            p521::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|_| KeyError::InvalidKey("EC point is not on P-521"))?,
        ),
        _ => return Err(KeyError::UnsupportedCurve),
    };
    Ok((family, material, print))
}

fn okp_jwk(jwk: &Map<String, Value>) -> Result<(KeyFamily, Material, [u8; 32]), KeyError> {
    if let Some(alg) = jwk.get("alg") {
        if alg.as_str() != Some("EdDSA") {
            return Err(KeyError::BadAlg);
        }
    }
    match member(jwk, "crv")? {
        "Ed25519" => {}
        _ => return Err(KeyError::UnsupportedCurve),
    }
    let x = decode_member(jwk, "x")?;
    ed25519_material(&x)
}

fn ed25519_material(x: &[u8]) -> Result<(KeyFamily, Material, [u8; 32]), KeyError> {
    let bytes: &[u8; 32] = x
        .try_into()
        .map_err(|_| KeyError::InvalidKey("Ed25519 public key must be 32 bytes"))?;
    // A key of small order verifies signatures that no private key made.
    let key = Ed25519Key::from_bytes(*bytes).map_err(|error| match error {
        Ed25519KeyError::NotAPoint => KeyError::InvalidKey("Ed25519 point is invalid"),
        Ed25519KeyError::SmallOrder => KeyError::InvalidKey("Ed25519 public key has small order"),
    })?;
    let print = fingerprint(KeyFamily::Ed25519, &[x]);
    Ok((KeyFamily::Ed25519, Material::Ed25519(Box::new(key)), print))
}

/// Parses one or more PEM `PUBLIC KEY` blocks (SubjectPublicKeyInfo) of RSA,
/// P-256, P-384, P-521 or Ed25519 keys, and `RSA PUBLIC KEY` (PKCS#1) blocks.
pub fn parse_pem(text: &str) -> Result<KeySet, KeyError> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN") {
        let block_and_rest = &rest[start..];
        let Some(end_marker) = block_and_rest.find("-----END") else {
            blocks.push(Err(KeyError::BadPem));
            break;
        };
        let after_end = &block_and_rest[end_marker + 8..];
        let end = after_end
            .find("-----")
            .map_or(block_and_rest.len(), |close| end_marker + 8 + close + 5);
        blocks.push(pem_key(&block_and_rest[..end]));
        rest = &block_and_rest[end..];
    }
    collect_keys(blocks.into_iter(), KeyError::BadPem)
}

fn pem_key(block: &str) -> Result<Key, KeyError> {
    let (label, der) =
        spki::der::pem::decode_vec(block.trim().as_bytes()).map_err(|_| KeyError::BadPem)?;
    let (family, material, print) = match label {
        "PUBLIC KEY" => spki_der_material(&der)?,
        "RSA PUBLIC KEY" => rsa_pkcs1_material(&der)?,
        _ => return Err(KeyError::UnsupportedPemKey),
    };
    Ok(public_key(None, family, material, print))
}

/// Reads the public key of one PEM X.509 certificate and gives it `kid`.
fn certificate_key(kid: &str, pem: &str) -> Result<Key, KeyError> {
    let (label, der) =
        spki::der::pem::decode_vec(pem.trim().as_bytes()).map_err(|_| KeyError::BadPem)?;
    if label != "CERTIFICATE" {
        return Err(KeyError::UnsupportedPemKey);
    }
    let spki = certificate_spki(&der)?;
    let (family, material, print) = spki_der_material(spki)?;
    Ok(public_key(Some(kid.to_string()), family, material, print))
}

/// Returns the DER bytes of `subjectPublicKeyInfo` in a DER certificate
/// (RFC 5280, section 4.1), skipping the fields before it.
fn certificate_spki(der: &[u8]) -> Result<&[u8], KeyError> {
    use spki::der::{Reader, SliceReader};
    let mut reader = SliceReader::new(der).map_err(|_| KeyError::BadPem)?;
    let spki = reader
        .sequence(|certificate| {
            let spki = certificate.sequence(|tbs| {
                // `version` is an explicit [0] field, absent in v1 certificates.
                if tbs.peek_byte() == Some(0xa0) {
                    tbs.tlv_bytes()?;
                }
                // serialNumber, signature, issuer, validity, subject.
                for _ in 0..5 {
                    tbs.tlv_bytes()?;
                }
                let spki = tbs.tlv_bytes()?;
                // Unique ids and extensions.
                tbs.read_slice(tbs.remaining_len())?;
                Ok::<_, spki::der::Error>(spki)
            })?;
            // signatureAlgorithm and signatureValue.
            certificate.read_slice(certificate.remaining_len())?;
            Ok(spki)
        })
        .map_err(|_: spki::der::Error| KeyError::BadPem)?;
    if !reader.is_finished() {
        return Err(KeyError::BadPem);
    }
    Ok(spki)
}

fn public_key(kid: Option<String>, family: KeyFamily, material: Material, print: [u8; 32]) -> Key {
    Key {
        kid,
        alg: None,
        family,
        material,
        hmac_secret_len: None,
        fingerprint: print,
    }
}

/// Builds key material from a DER SubjectPublicKeyInfo.
fn spki_der_material(der: &[u8]) -> Result<(KeyFamily, Material, [u8; 32]), KeyError> {
    let info = SubjectPublicKeyInfoRef::from_der(der).map_err(|_| KeyError::BadPem)?;
    let bits = info.subject_public_key.as_bytes().ok_or(KeyError::BadPem)?;
    spki_material(&info, bits)
}

fn spki_material(
    info: &SubjectPublicKeyInfoRef<'_>,
    bits: &[u8],
) -> Result<(KeyFamily, Material, [u8; 32]), KeyError> {
    let oid = info.algorithm.oid;
    if oid == OID_RSA {
        return rsa_pkcs1_material(bits);
    }
    if oid == OID_ED25519 {
        return ed25519_material(bits);
    }
    if oid == OID_EC {
        let curve = info
            .algorithm
            .parameters_oid()
            .map_err(|_| KeyError::UnsupportedPemKey)?;
        let family = match curve {
            c if c == OID_P256 => KeyFamily::P256,
            c if c == OID_P384 => KeyFamily::P384,
            c if c == OID_P521 => KeyFamily::P521,
            _ => return Err(KeyError::UnsupportedPemKey),
        };
        return ec_material(family, bits);
    }
    Err(KeyError::UnsupportedPemKey)
}

/// Reads a PKCS#1 `RSAPublicKey`: a SEQUENCE of two INTEGERs.
fn rsa_pkcs1_material(der: &[u8]) -> Result<(KeyFamily, Material, [u8; 32]), KeyError> {
    use spki::der::asn1::UintRef;
    use spki::der::{Reader, SliceReader};
    let mut reader = SliceReader::new(der).map_err(|_| KeyError::BadPem)?;
    let (n, e) = reader
        .sequence(|inner| {
            let n = UintRef::decode(inner)?;
            let e = UintRef::decode(inner)?;
            Ok((n.as_bytes().to_vec(), e.as_bytes().to_vec()))
        })
        .map_err(|_: spki::der::Error| KeyError::BadPem)?;
    if !reader.is_finished() {
        return Err(KeyError::BadPem);
    }
    rsa_material(&n, &e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256_JWK: &str = r#"{"kty":"EC","crv":"P-256","kid":"e1",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    #[test]
    fn p256_jwk_parses() {
        let set = parse_jwks(&format!(r#"{{"keys":[{P256_JWK}]}}"#)).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.keys[0].family, KeyFamily::P256);
        assert_eq!(set.keys[0].kid.as_deref(), Some("e1"));
    }

    /// Found by the `jwt_jwks` fuzz target: an empty `n` underflowed the
    /// bit count.
    #[test]
    fn empty_rsa_modulus_is_rejected() {
        for n in ["", "AA", "AAAA"] {
            let jwk = format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB"}}"#);
            assert!(parse_document(&jwk).is_err(), "n = {n:?} was accepted");
        }
    }

    #[test]
    fn small_order_ed25519_key_is_rejected() {
        // The identity point, x = 1: every signature with R = identity and
        // s = 0 verifies under it with the non-strict check.
        let jwk =
            r#"{"kty":"OKP","crv":"Ed25519","x":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
        assert_eq!(
            parse_document(jwk).err(),
            Some(KeyError::InvalidKey("Ed25519 public key has small order"))
        );
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let text = format!(r#"{{"keys":[{{"kty":"XYZ"}},{P256_JWK},{{"kty":"oct"}}]}}"#);
        let set = parse_jwks(&text).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.skipped.len(), 2);
        assert_eq!(set.skipped[0].0, 0);
        assert_eq!(set.skipped[1].1, KeyError::MissingMember("k"));
    }

    #[test]
    fn jwks_without_usable_key_fails() {
        let error = parse_jwks(r#"{"keys":[{"kty":"XYZ"}]}"#).unwrap_err();
        assert!(matches!(error, KeyError::NoUsableKeys(_)));
        assert_eq!(
            parse_jwks(r#"{"keys":{}}"#).unwrap_err(),
            KeyError::KeysNotArray
        );
        assert_eq!(parse_jwks(r#"{"other":1}"#).unwrap_err(), KeyError::NoKeys);
        assert_eq!(parse_jwks("[1]").unwrap_err(), KeyError::NotJson);
    }

    #[test]
    fn point_off_curve_rejected() {
        let text = P256_JWK.replace("x_FEzRu9", "x_FEzRu8");
        let object = super::super::token::parse_object(text.as_bytes()).unwrap();
        assert!(matches!(parse_jwk(&object), Err(KeyError::InvalidKey(_))));
    }

    #[test]
    fn oct_key_with_alg_mismatch_rejected() {
        let object =
            super::super::token::parse_object(br#"{"kty":"oct","k":"c2VjcmV0","alg":"RS256"}"#)
                .unwrap();
        assert_eq!(parse_jwk(&object).unwrap_err(), KeyError::BadAlg);
    }

    /// `0123456789abcdef0123456789abcdef`, a 32-byte HMAC secret.
    const SECRET_32: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";

    fn oct_jwk(members: &str) -> Result<Key, KeyError> {
        let text = format!(r#"{{"kty":"oct",{members}}}"#);
        parse_jwk(&super::super::token::parse_object(text.as_bytes()).unwrap())
    }

    #[test]
    fn hmac_secret_length_checked() {
        let short = oct_jwk(r#""k":"c2VjcmV0""#);
        assert!(matches!(short, Err(KeyError::InvalidKey(_))));
        let short_for_alg = oct_jwk(&format!(r#""k":"{SECRET_32}","alg":"HS384""#));
        assert!(matches!(short_for_alg, Err(KeyError::InvalidKey(_))));
        let key = oct_jwk(&format!(r#""k":"{SECRET_32}""#)).unwrap();
        assert_eq!(key.hmac_secret_len, Some(32));
        assert!(key.matches(Algorithm::HS256, None));
        assert!(!key.matches(Algorithm::HS384, None));
        assert!(!key.matches(Algorithm::HS512, None));
    }

    /// A self-signed X.509 v3 certificate of a P-256 key.
    const P256_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----\n\
        MIIBCzCBsaADAgECAgEBMAoGCCqGSM49BAMCMA8xDTALBgNVBAMMBHRlc3QwHhcN\n\
        MjAwMTAxMDAwMDAwWhcNMjAwMTAyMDAwMDAwWjAPMQ0wCwYDVQQDDAR0ZXN0MFkw\n\
        EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEMHcK/EDyMwKA9JPdb1GY5bMZfx5k0Wku\n\
        W+NQYkbqe4Yjnp0HMoQCCiy/J84//+CpycQ/9f91SQxYI/GdytDCvTAKBggqhkjO\n\
        PQQDAgNJADBGAiEAu+E+qkQipFC07GwkE8yZdLJr0yseCXgCf8nKbaVeMsMCIQCg\n\
        sqMQPq0Zg6EKhym7olpJevaqVdVAtTqNqE8hY04wyg==\n\
        -----END CERTIFICATE-----\n";

    #[test]
    fn certificate_map_parses() {
        let document = serde_json::json!({ "cert-1": P256_CERTIFICATE }).to_string();
        let set = parse_jwks(&document).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.keys[0].kid.as_deref(), Some("cert-1"));
        assert_eq!(set.keys[0].family, KeyFamily::P256);
        assert_eq!(set.keys[0].alg, None);
    }

    #[test]
    fn certificate_map_rejects_other_pem() {
        let public_key = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        let document = serde_json::json!({ "k": public_key }).to_string();
        let error = parse_jwks(&document).unwrap_err();
        assert_eq!(
            error,
            KeyError::NoUsableKeys(Box::new(KeyError::UnsupportedPemKey))
        );
        let document = serde_json::json!({ "k": "not a certificate" }).to_string();
        assert!(matches!(
            parse_jwks(&document),
            Err(KeyError::NoUsableKeys(_))
        ));
        assert_eq!(parse_jwks(r#"{"k":""}"#).unwrap_err(), KeyError::NoKeys);
    }

    /// The modulus of the RSA 2048 key in `tests/fixtures/jwt/jwks.json`.
    const RSA_N: &str = "3Oqua-M76k2R4g-b-OiIhMyz18-VSYsNLbtG1uEGX3vTsEMGtl1ycMf8HxGW7Phg8jP2AM1iynchRQV3zoqqIviQslfIfxS9E7uIyjH5BdFPcTz3uZykiNXz3mxdZ3gnCCtnFNCN9OqZB0uPwWFRYYk7qnOF6z2uxdj-36X2hKGVjRkH5gby44WL_CEp9ilnSO79pokTJZkez7sDpbM6qaP5IvL2aHhpo5uLLk6vX0q1bedOn1DGDUJ5G92WCJrvoKLa7RTRvYbCtbB0lAojdgaoBPLr8ncsT15KUdo6zsms5E_Gf_v9vvdS0CToqHSatm4O-J3wsUAlGVF-cuBiQQ";

    #[test]
    fn rsa_exponent_limit_checked_at_load() {
        let jwk = |e: &str| {
            let text = format!(r#"{{"kty":"RSA","n":"{RSA_N}","e":"{e}"}}"#);
            parse_jwk(&super::super::token::parse_object(text.as_bytes()).unwrap())
        };
        let key = jwk("AQAB").unwrap();
        assert_eq!(key.family, KeyFamily::Rsa);
        assert!(matches!(key.material, Material::Rsa(_)));
        // 2^33 + 1 fits in 64 bits but is above the `rsa` crate's limit.
        assert!(matches!(jwk("AgAAAAE"), Err(KeyError::InvalidKey(_))));
    }

    #[test]
    fn key_matching_rules() {
        let object = super::super::token::parse_object(
            format!(r#"{{"kty":"oct","k":"{SECRET_32}","alg":"HS256","kid":"a"}}"#).as_bytes(),
        )
        .unwrap();
        let key = parse_jwk(&object).unwrap();
        assert!(key.matches(Algorithm::HS256, Some("a")));
        assert!(key.matches(Algorithm::HS256, None));
        assert!(!key.matches(Algorithm::HS256, Some("b")));
        assert!(!key.matches(Algorithm::HS384, Some("a")));
        assert!(!key.matches(Algorithm::RS256, Some("a")));
    }
}

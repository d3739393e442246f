//! Conformance of token parsing, key parsing and signature verification
//! against public test corpora: Wycheproof (JWS, JWK, ECDSA P1363, RSA
//! PKCS#1 v1.5, RSA-PSS, Ed25519), Google's jwt_verify_lib (the library
//! behind Envoy's jwt_authn), RFC 7515 appendix A and RFC 7520.
//!
//! The corpora are read from `PORTCULLIS_JWT_CORPORA`, or from
//! `../shared/corpora/jwt` beside the repository; each test prints a note
//! and passes when its corpus is absent. Every case runs through the
//! functions the proxy adapter calls: `token::parse`, `keys::parse_document`,
//! `verify::verify_signature`, `claims::check_time` and
//! `claims::check_issuer_and_audience`.
//!
//! Where a verdict differs from a vector's label on purpose, the case is
//! listed with the reason in one of the `*_DELIBERATE` tables, or in
//! `jwks_deliberate` for key sets. The test prints each such case with its
//! reason, and any other difference fails it.

// A malformed corpus file should stop the test at once, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_core::jwt::claims::{check_issuer_and_audience, check_time};
use portcullis_core::jwt::error::JwtError;
use portcullis_core::jwt::keys::{parse_document, parse_jwk, Key, KeyError, KeySet};
use portcullis_core::jwt::policy::{KeySource, Provider};
use portcullis_core::jwt::token::{parse, parse_jws, parse_object, Algorithm, Header};
use portcullis_core::jwt::verify::{verify_signature, verify_with};
use serde_json::Value;
use std::path::PathBuf;

fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("PORTCULLIS_JWT_CORPORA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/jwt"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("note: JWT corpora not found at {}, skipping", dir.display());
        None
    }
}

fn load(dir: &std::path::Path, name: &str) -> Option<Value> {
    let path = dir.join(name);
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!("note: {} not found, skipping", path.display());
        return None;
    };
    Some(serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display())))
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn tc_id(test: &Value) -> u64 {
    match &test["tcId"] {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        other => panic!("tcId {other}"),
    }
}

/// Counts of one corpus, printed at the end of a test.
#[derive(Default)]
struct Tally {
    agree: usize,
    acceptable: usize,
    deliberate: usize,
    mismatches: Vec<String>,
}

impl Tally {
    fn finish(self, corpus: &str) {
        println!(
            "{corpus}: {} agree, {} acceptable either way, {} deliberate differences, {} mismatches",
            self.agree,
            self.acceptable,
            self.deliberate,
            self.mismatches.len()
        );
        assert!(
            self.mismatches.is_empty(),
            "{corpus} mismatches:\n{}",
            self.mismatches.join("\n")
        );
    }

    /// Counts a deliberate difference and prints it with its reason.
    fn differ_deliberately(&mut self, case: &str, reason: &str) {
        println!("{case}: deliberate difference: {reason}");
        self.deliberate += 1;
    }

    fn record(&mut self, label: &str, verdict: bool, deliberate: Option<&str>, case: String) {
        match (label, deliberate) {
            ("acceptable", _) => self.acceptable += 1,
            (_, Some(reason)) if (label == "valid") != verdict => {
                self.differ_deliberately(&case, reason)
            }
            _ if (label == "valid") == verdict => self.agree += 1,
            _ => self
                .mismatches
                .push(format!("{case}: label {label}, verdict {verdict}")),
        }
    }
}

/// Verifies with one PEM key the way the module does, under `alg`.
fn verify_pem(pem: &str, alg: Algorithm, message: &[u8], signature: &[u8]) -> Option<bool> {
    let set = parse_document(pem).ok()?;
    let key = set.keys.first()?;
    Some(key.family.accepts(alg) && verify_with(alg, key, message, signature))
}

fn signature_corpus(
    file: &str,
    alg_for_group: impl Fn(&Value) -> Option<Algorithm>,
    deliberate: &[(u64, &str)],
) {
    let Some(dir) = corpus_dir() else { return };
    let Some(document) = load(&dir, &format!("wycheproof/testvectors_v1/{file}")) else {
        return;
    };
    let mut tally = Tally::default();
    let mut skipped_groups = 0;
    for group in document["testGroups"].as_array().unwrap() {
        let Some(alg) = alg_for_group(group) else {
            skipped_groups += 1;
            continue;
        };
        let pem = group["publicKeyPem"].as_str().unwrap();
        for test in group["tests"].as_array().unwrap() {
            let id = tc_id(test);
            let message = hex(test["msg"].as_str().unwrap());
            let signature = hex(test["sig"].as_str().unwrap());
            let verdict = verify_pem(pem, alg, &message, &signature).unwrap_or(false);
            let reason = deliberate
                .iter()
                .find(|(case, _)| *case == id)
                .map(|(_, reason)| *reason);
            tally.record(
                test["result"].as_str().unwrap(),
                verdict,
                reason,
                format!("{file} tcId {id}"),
            );
        }
    }
    if skipped_groups > 0 {
        println!(
            "{file}: {skipped_groups} groups with parameters no JWS algorithm uses were left out"
        );
    }
    tally.finish(file);
}

#[test]
fn wycheproof_ecdsa_p1363() {
    for (file, alg) in [
        ("ecdsa_secp256r1_sha256_p1363_test.json", Algorithm::ES256),
        ("ecdsa_secp384r1_sha384_p1363_test.json", Algorithm::ES384),
        ("ecdsa_secp521r1_sha512_p1363_test.json", Algorithm::ES512),
    ] {
        signature_corpus(file, |_| Some(alg), &[]);
    }
}

#[test]
fn wycheproof_rsa_pkcs1() {
    for (file, alg) in [
        ("rsa_signature_2048_sha256_test.json", Algorithm::RS256),
        ("rsa_signature_2048_sha384_test.json", Algorithm::RS384),
        ("rsa_signature_2048_sha512_test.json", Algorithm::RS512),
        ("rsa_signature_3072_sha256_test.json", Algorithm::RS256),
        ("rsa_signature_3072_sha384_test.json", Algorithm::RS384),
        ("rsa_signature_3072_sha512_test.json", Algorithm::RS512),
    ] {
        signature_corpus(file, |_| Some(alg), &[]);
    }
}

/// PS256/384/512 use MGF1 with the same hash and a salt of the hash length
/// (RFC 7518, section 3.5); groups with other parameters are left out.
fn pss_algorithm(group: &Value) -> Option<Algorithm> {
    let sha = group["sha"].as_str()?;
    let mgf_sha = group["mgfSha"].as_str()?;
    let salt: u64 = group["sLen"]
        .as_str()
        .map(|s| s.parse().ok())
        .unwrap_or(group["sLen"].as_u64())?;
    if sha != mgf_sha || group["mgf"].as_str()? != "MGF1" {
        return None;
    }
    match (sha, salt) {
        ("SHA-256", 32) => Some(Algorithm::PS256),
        ("SHA-384", 48) => Some(Algorithm::PS384),
        ("SHA-512", 64) => Some(Algorithm::PS512),
        _ => None,
    }
}

#[test]
fn wycheproof_rsa_pss() {
    for file in [
        "rsa_pss_2048_sha256_mgf1_32_test.json",
        "rsa_pss_2048_sha384_mgf1_48_test.json",
        "rsa_pss_3072_sha256_mgf1_32_test.json",
        "rsa_pss_4096_sha384_mgf1_48_test.json",
        "rsa_pss_4096_sha512_mgf1_64_test.json",
        "rsa_pss_misc_test.json",
    ] {
        signature_corpus(file, pss_algorithm, &[]);
    }
}

#[test]
fn wycheproof_ed25519() {
    signature_corpus("ed25519_test.json", |_| Some(Algorithm::EdDSA), &[]);
}

/// Keys of a Wycheproof JWS group: `public` or `private` JWK, or a JWKS.
fn group_keys(group: &Value) -> Vec<Key> {
    let key = group
        .get("public")
        .or_else(|| group.get("private"))
        .unwrap_or(&Value::Null);
    let text = key.to_string();
    match parse_document(&text) {
        Ok(set) => set.keys,
        Err(_) => Vec::new(),
    }
}

/// Reason for rejecting a JWK whose `alg` names another algorithm than the
/// token's.
const KEY_ALG_RESTRICTS: &str = "the key's alg is PS256 and the token's PS384: a JWK alg restricts the key to that algorithm (RFC 7517, section 4.4), and Wycheproof added the alg to the RFC 7520 key without changing the token";

/// Reason for rejecting a JWK whose `alg` is `ES521`.
const KEY_ALG_UNKNOWN: &str = "the key's alg is ES521, which is not a JOSE algorithm (P-521 is ES512), so the key is rejected rather than guessed at";

/// Reason for accepting a token labelled invalid for padding it lacks.
const NO_PADDING_PRESENT: &str = "the token is byte for byte the valid token of tcId 357 and has no padding, so no verifier can reject it without rejecting tcId 357";

/// Cases of the Wycheproof JWS and JWK files whose verdict differs from the
/// label on purpose.
const JWS_DELIBERATE: &[(&str, u64, &str)] = &[
    ("json_web_signature_test.json", 346, KEY_ALG_RESTRICTS),
    ("json_web_signature_test.json", 347, KEY_ALG_UNKNOWN),
    ("json_web_signature_test.json", 350, KEY_ALG_RESTRICTS),
    ("json_web_signature_test.json", 351, KEY_ALG_UNKNOWN),
    ("json_web_signature_test.json", 367, NO_PADDING_PRESENT),
    ("json_web_signature_test.json", 370, NO_PADDING_PRESENT),
    ("json_web_signature_test.json", 372, "a '?' inserted in the header: the MAC covers the raw compact bytes (RFC 7515, section 5.2), so the token fails"),
    ("json_web_signature_test.json", 373, "a '?' inserted in the payload: the MAC covers the raw compact bytes (RFC 7515, section 5.2), so the token fails"),
    ("json_web_key_test.json", 1, "a key set with an HMAC secret and an EC public key: keys are matched by family, so the HS256 token is checked against the secret only, and this module never publishes or re-serializes a key set, so the secret cannot leak with the public key"),
    ("json_web_key_test.json", 4, "two HMAC secrets share a kid: every key whose kid matches is tried, as jwt_verify_lib does, and both secrets are trusted, so either may sign. Rejecting the key set would take the provider down over a harmless duplicate"),
];

fn jws_corpus(file: &str) {
    let Some(dir) = corpus_dir() else { return };
    let Some(document) = load(&dir, &format!("wycheproof/testvectors_v1/{file}")) else {
        return;
    };
    let mut tally = Tally::default();
    for group in document["testGroups"].as_array().unwrap() {
        let keys = group_keys(group);
        for test in group["tests"].as_array().unwrap() {
            let id = tc_id(test);
            let Some(jws) = test["jws"].as_str() else {
                // JSON serializations: this module reads only compact tokens.
                tally.record(
                    test["result"].as_str().unwrap(),
                    false,
                    Some("JSON serialization"),
                    format!("{file} tcId {id}"),
                );
                continue;
            };
            let verdict = match parse_jws(jws) {
                Ok(parsed) => verify_signature(
                    &parsed.header,
                    parsed.signing_input.as_bytes(),
                    &parsed.signature,
                    &keys,
                )
                .is_ok(),
                Err(_) => false,
            };
            let reason = JWS_DELIBERATE
                .iter()
                .find(|(name, case, _)| *name == file && *case == id)
                .map(|(_, _, reason)| *reason);
            tally.record(
                test["result"].as_str().unwrap(),
                verdict,
                reason,
                format!("{file} tcId {id} ({})", test["comment"]),
            );
        }
    }
    tally.finish(file);
}

#[test]
fn wycheproof_jws() {
    jws_corpus("json_web_signature_test.json");
}

#[test]
fn wycheproof_jwk() {
    jws_corpus("json_web_key_test.json");
}

fn provider() -> Provider {
    Provider {
        name: "p".to_string(),
        issuer: None,
        audiences: Vec::new(),
        require_expiration: false,
        max_lifetime_seconds: None,
        clock_skew_seconds: 60,
        sources: Vec::new(),
        forward: false,
        forward_payload_header: None,
        pad_forward_payload_header: false,
        claim_to_headers: Vec::new(),
        max_cached_token_bytes: 4096,
        keys: KeySource::Local(Default::default()),
    }
}

/// jwt_verify_lib statuses mapped to this module's errors.
fn expected_error(status: &str) -> Option<JwtError> {
    Some(match status {
        "Ok" => return None,
        "JwtBadFormat" => JwtError::BadFormat,
        "JwtHeaderParseErrorBadBase64" => JwtError::HeaderBadBase64,
        "JwtHeaderParseErrorBadJson" => JwtError::HeaderBadJson,
        "JwtHeaderBadAlg" => JwtError::HeaderBadAlg,
        "JwtHeaderNotImplementedAlg" => JwtError::HeaderUnsupportedAlg,
        "JwtHeaderBadKid" => JwtError::HeaderBadKid,
        "JwtPayloadParseErrorBadBase64" => JwtError::PayloadBadBase64,
        "JwtPayloadParseErrorBadJson" => JwtError::PayloadBadJson,
        "JwtPayloadParseErrorIssNotString" => JwtError::IssNotString,
        "JwtPayloadParseErrorSubNotString" => JwtError::SubNotString,
        "JwtPayloadParseErrorIatNotInteger" => JwtError::IatNotInteger,
        "JwtPayloadParseErrorIatOutOfRange" => JwtError::IatOutOfRange,
        "JwtPayloadParseErrorNbfNotInteger" => JwtError::NbfNotInteger,
        "JwtPayloadParseErrorNbfOutOfRange" => JwtError::NbfOutOfRange,
        "JwtPayloadParseErrorExpNotInteger" => JwtError::ExpNotInteger,
        "JwtPayloadParseErrorExpOutOfRange" => JwtError::ExpOutOfRange,
        "JwtPayloadParseErrorJtiNotString" => JwtError::JtiNotString,
        "JwtPayloadParseErrorAudNotString" => JwtError::AudNotString,
        "JwtSignatureParseErrorBadBase64" => JwtError::SignatureBadBase64,
        "JwksKidAlgMismatch" => JwtError::KeyNotFound,
        "JwtVerificationFail" => JwtError::VerificationFailed,
        "JwtAudienceNotAllowed" => JwtError::AudienceNotAllowed,
        "JwtExpired" => JwtError::Expired,
        "JwtNotYetValid" => JwtError::NotYetValid,
        other => panic!("unmapped status {other}"),
    })
}

/// Reason for rejecting base64url that jwt_verify_lib accepts.
const STRICT_BASE64: &str = "token parts must be canonical unpadded base64url (RFC 7515, section 2): padding and non-zero unused bits give one token several encodings, and Wycheproof expects both rejected";

/// jwt_verify_lib parse vectors whose verdict differs on purpose: file, test
/// name, this module's error and the reason.
const PARSE_DELIBERATE: &[(&str, &str, JwtError, &str)] = &[
    // The signature part of these tokens ends in '4', which leaves non-zero
    // unused bits.
    (
        "test/jwt_time_test.cc",
        "BothNbfExp",
        JwtError::SignatureBadBase64,
        STRICT_BASE64,
    ),
    (
        "test/jwt_time_test.cc",
        "BothNbfExpWithCustomClockSkew",
        JwtError::SignatureBadBase64,
        STRICT_BASE64,
    ),
    (
        "test/jwt_time_test.cc",
        "OnlyExp",
        JwtError::SignatureBadBase64,
        STRICT_BASE64,
    ),
    (
        "test/jwt_time_test.cc",
        "OnlyNbf",
        JwtError::SignatureBadBase64,
        STRICT_BASE64,
    ),
    (
        "test/jwt_time_test.cc",
        "NotTimeConstraint",
        JwtError::SignatureBadBase64,
        STRICT_BASE64,
    ),
    // The signature part ends in "==".
    (
        "test/verify_x509_test.cc",
        "NoKidToken",
        JwtError::SignatureBadBase64,
        STRICT_BASE64,
    ),
];

/// Returns the reason of a deliberate difference when the table lists the
/// vector with exactly the error `got`.
fn deliberate_error(
    table: &[(&str, &str, JwtError, &'static str)],
    vector: &Value,
    got: Option<JwtError>,
) -> Option<&'static str> {
    table
        .iter()
        .find(|(file, test, ours, _)| {
            vector["file"] == *file && vector["test"] == *test && got == Some(*ours)
        })
        .map(|(_, _, _, reason)| *reason)
}

#[test]
fn jwt_verify_lib_token_parse() {
    let Some(dir) = corpus_dir() else { return };
    let Some(document) = load(&dir, "jwt_verify_lib/jwt_parse_vectors.json") else {
        return;
    };
    let mut tally = Tally::default();
    for vector in document["vectors"].as_array().unwrap() {
        let name = format!("{}::{}", vector["file"], vector["test"]);
        let token = vector["token"].as_str().unwrap_or_default();
        let expected = expected_error(vector["expected_parse_status"].as_str().unwrap());
        let got = parse(token).err();
        if got == expected {
            tally.agree += 1;
        } else if let Some(reason) = deliberate_error(PARSE_DELIBERATE, vector, got) {
            tally.differ_deliberately(&name, reason);
        } else {
            tally
                .mismatches
                .push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    tally.finish("jwt_verify_lib jwt_parse_vectors");
}

/// Tells whether a JSON text has a comma right before a closing bracket or
/// brace, outside strings.
fn has_trailing_comma(text: &str) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    let mut after_comma = false;
    for c in text.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                after_comma = false;
            }
            ',' => after_comma = true,
            ']' | '}' if after_comma => return true,
            c if c.is_whitespace() => {}
            _ => after_comma = false,
        }
    }
    false
}

/// Removes each comma that only whitespace separates from a closing bracket
/// or brace. The key sets it is used on have no such text inside strings.
fn strip_trailing_commas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // A comma and the whitespace after it, kept until the next other
    // character shows whether the comma trails.
    let mut pending_comma = String::new();
    for c in text.chars() {
        if !pending_comma.is_empty() {
            if c.is_whitespace() {
                pending_comma.push(c);
                continue;
            }
            if c == ']' || c == '}' {
                out.push_str(&pending_comma[1..]);
            } else {
                out.push_str(&pending_comma);
            }
            pending_comma.clear();
        }
        if c == ',' {
            pending_comma.push(c);
        } else {
            out.push(c);
        }
    }
    out.push_str(&pending_comma);
    out
}

/// Reason for rejecting jwt_verify_lib's Ed25519 JWK.
///
/// The x of that key is the x coordinate of a P-256 key from the same tests,
/// and decompressing it as an Ed25519 point (RFC 8032, section 5.1.3) fails.
/// jwt_verify_lib only checks its length, so no signature could ever verify
/// with it.
const NOT_A_POINT: &str = "x is not an Ed25519 point, so this module rejects the key when it loads instead of failing every signature later";

/// Reason for rejecting a key set with a trailing comma.
const STRICT_JSON: &str = "key documents are strict JSON (RFC 8259), so a trailing comma is a syntax error reported when the keys load";

/// jwt_verify_lib JWKS vectors whose verdict differs on purpose.
fn jwks_deliberate(vector: &Value, parsed: &Result<KeySet, KeyError>) -> Option<&'static str> {
    let text = vector["keys"].as_str().unwrap_or_default();
    let test = &vector["test"];
    match parsed {
        // jwt_verify_lib fails a whole JWKS on its first bad key; this module
        // keeps the usable keys of a partly bad JWKS.
        Ok(set) if !set.keys.is_empty() => Some("partly bad JWKS keeps its usable keys"),
        // Protobuf's JSON parser, which jwt_verify_lib uses, accepts a
        // trailing comma.
        Err(KeyError::NotJson) if has_trailing_comma(text) => Some(STRICT_JSON),
        Err(KeyError::NoUsableKeys(first))
            if **first == KeyError::InvalidKey("Ed25519 point is invalid")
                && (test == "GoodOKP" || test == "JwksIgnoreUnsupportedKey") =>
        {
            Some(NOT_A_POINT)
        }
        _ => None,
    }
}

#[test]
fn jwt_verify_lib_jwks_parse() {
    let Some(dir) = corpus_dir() else { return };
    let Some(document) = load(&dir, "jwt_verify_lib/jwks_parse_vectors.json") else {
        return;
    };
    let mut tally = Tally::default();
    for vector in document["vectors"].as_array().unwrap() {
        let name = format!("{}::{}", vector["file"], vector["test"]);
        let text = vector["keys"].as_str().unwrap_or_default();
        let status = vector["expected_status"].as_str().unwrap();
        let parsed = parse_document(text);
        let ok = parsed.is_ok();
        if ok == (status == "Ok") {
            tally.agree += 1;
        } else if let Some(reason) = jwks_deliberate(vector, &parsed) {
            tally.differ_deliberately(&name, reason);
        } else {
            tally
                .mismatches
                .push(format!("{name}: expected {status}, got {:?}", parsed.err()));
        }
    }
    tally.finish("jwt_verify_lib jwks_parse_vectors");
}

/// jwt_verify_lib verify vectors whose verdict differs on purpose: file, test
/// name, this module's error and the reason.
const VERIFY_DELIBERATE: &[(&str, &str, JwtError, &str)] = &[
    (
        "test/verify_audiences_test.cc",
        "MissingAudience",
        JwtError::KeyNotFound,
        "the key set is empty: this module verifies the signature before it reads any claim, so it reports the missing key where jwt_verify_lib, which checks aud first, reports the audience",
    ),
    (
        "test/verify_pem_ec_test.cc",
        "jwksAlgUnspecifiedDoesNotMatchJwtFail",
        JwtError::KeyNotFound,
        "a P-384 key and an ES256 token: keys are matched by curve, so the key is never tried, where jwt_verify_lib tries it and fails the signature",
    ),
    ("test/verify_x509_test.cc", "NoKidToken", JwtError::SignatureBadBase64, STRICT_BASE64),
];

/// Algorithms that jwt_verify_lib's tests assign to the loaded key before
/// verifying, by file and test name.
const KEY_ALG_OVERRIDES: &[(&str, &str, Algorithm)] = &[
    // The test sets alg "ES512" and crv "P-512" on a P-256 key.
    (
        "test/verify_pem_ec_test.cc",
        "jwksIncorrectAlgSpecifiedFail",
        Algorithm::ES512,
    ),
    (
        "test/verify_pem_okp_test.cc",
        "jwksIncorrectAlgSpecifiedFail",
        Algorithm::RS256,
    ),
];

/// Loads the key set of a verify vector as jwt_verify_lib's test had it.
fn verify_keys(vector: &Value) -> Vec<Key> {
    let Some(text) = vector["keys"].as_str() else {
        return Vec::new();
    };
    // Protobuf's JSON parser, which jwt_verify_lib uses, accepts a trailing
    // comma and this module does not, which the JWKS parse test records as a
    // deliberate difference. Here the comma is removed so that the
    // signatures are still checked.
    let text = if has_trailing_comma(text) {
        strip_trailing_commas(text)
    } else {
        text.to_string()
    };
    let mut keys = parse_document(&text)
        .map(|set| set.keys)
        .unwrap_or_default();
    let overrides = KEY_ALG_OVERRIDES
        .iter()
        .filter(|(file, test, _)| vector["file"] == *file && vector["test"] == *test);
    for (_, _, alg) in overrides {
        for key in &mut keys {
            key.alg = Some(*alg);
        }
    }
    keys
}

/// Returns the clock for a verify vector, in seconds since the epoch.
///
/// jwt_verify_lib's tests pass a clock of 1 so that long-expired tokens pass
/// its exp check, and it never checks iat. This module rejects an iat later
/// than the clock, so such a clock moves to the token's iat, the earliest
/// moment at which the token is current. None of these vectors has an nbf.
/// A vector without a clock used the real one.
fn verify_clock(vector: &Value, iat: Option<u64>) -> u64 {
    match vector["now"].as_u64() {
        Some(1) => iat.unwrap_or(1),
        Some(now) => now,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    }
}

#[test]
fn jwt_verify_lib_verify() {
    let Some(dir) = corpus_dir() else { return };
    let Some(document) = load(&dir, "jwt_verify_lib/verify_vectors.json") else {
        return;
    };
    let mut tally = Tally::default();
    for vector in document["vectors"].as_array().unwrap() {
        let name = format!("{}::{}", vector["file"], vector["test"]);
        let status = vector["expected_status"].as_str().unwrap();
        let expected = expected_error(status);
        let keys = verify_keys(vector);
        let token = vector["token"].as_str().unwrap_or_default();
        let audiences: Vec<String> = vector["audiences"]
            .as_str()
            .filter(|text| text.starts_with('{'))
            .map(|text| {
                text.trim_matches(|c| c == '{' || c == '}')
                    .split(',')
                    .map(|a| a.trim().trim_matches('"').to_string())
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        // The order of `check::evaluate`: signature, time, then issuer and
        // audiences.
        let got = parse(token).and_then(|parsed| {
            verify_signature(
                &parsed.header,
                parsed.signing_input.as_bytes(),
                &parsed.signature(),
                &keys,
            )?;
            let mut provider = provider();
            provider.audiences = audiences.clone();
            let now = verify_clock(vector, parsed.registered.iat);
            check_time(&provider, &parsed.registered, now)?;
            check_issuer_and_audience(&provider, &[], &parsed.registered)?;
            Ok(())
        });
        let got = got.err();
        if got == expected {
            tally.agree += 1;
        } else if let Some(reason) = deliberate_error(VERIFY_DELIBERATE, vector, got) {
            tally.differ_deliberately(&name, reason);
        } else {
            tally
                .mismatches
                .push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    tally.finish("jwt_verify_lib verify_vectors");
}

#[test]
fn rfc7515_appendix_a() {
    let Some(dir) = corpus_dir() else { return };
    let Some(document) = load(&dir, "rfc7515/rfc7515_appendix_a.json") else {
        return;
    };
    let mut tally = Tally::default();
    for vector in document["vectors"].as_array().unwrap() {
        let id = vector["id"].as_str().unwrap();
        let keys = parse_jwk(vector["jwk"].as_object().unwrap_or(&Default::default()))
            .map(|key| vec![key])
            .unwrap_or_default();
        let jws = vector["jws"].as_str().unwrap();
        let verdict = match parse_jws(jws) {
            Ok(parsed) => verify_signature(
                &parsed.header,
                parsed.signing_input.as_bytes(),
                &parsed.signature,
                &keys,
            )
            .is_ok(),
            Err(_) => false,
        };
        tally.record(
            vector["expected"].as_str().unwrap(),
            verdict,
            None,
            id.to_string(),
        );
    }
    tally.finish("RFC 7515 appendix A");
}

#[test]
fn rfc7520_compact_examples() {
    let Some(dir) = corpus_dir() else { return };
    let mut tally = Tally::default();
    for file in [
        "rfc7520_cookbook/jws/4_1.rsa_v15_signature.json",
        "rfc7520_cookbook/jws/4_2.rsa-pss_signature.json",
        "rfc7520_cookbook/jws/4_3.ecdsa_signature.json",
        "rfc7520_cookbook/jws/4_4.hmac-sha2_integrity_protection.json",
        "rfc7520_cookbook/curve25519/jws.json",
    ] {
        let Some(document) = load(&dir, file) else {
            continue;
        };
        let cases: Vec<Value> = match document {
            Value::Array(list) => list,
            single => vec![single],
        };
        for case in cases {
            let Some(compact) = case["output"]["compact"].as_str() else {
                continue;
            };
            let key = &case["input"]["key"];
            let keys = key
                .as_object()
                .and_then(|jwk| parse_jwk(jwk).ok())
                .map(|key| vec![key])
                .unwrap_or_default();
            let verdict = match parse_jws(compact) {
                Ok(parsed) => verify_signature(
                    &parsed.header,
                    parsed.signing_input.as_bytes(),
                    &parsed.signature,
                    &keys,
                )
                .is_ok(),
                Err(_) => false,
            };
            tally.record("valid", verdict, None, format!("{file} {}", case["title"]));
        }
    }
    tally.finish("RFC 7520 compact examples");
}

#[test]
fn header_parse_keeps_alg_and_kid() {
    let header = parse_object(br#"{"alg":"ES512","kid":"k"}"#).unwrap();
    assert_eq!(header["alg"], "ES512");
    let parsed = Header {
        alg: Algorithm::ES512,
        kid: Some("k".to_string()),
    };
    assert_eq!(parsed.alg.name(), "ES512");
}

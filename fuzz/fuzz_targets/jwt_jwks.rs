//! A key document (JWKS, single JWK, or PEM) from fuzz bytes, parsed and then
//! used to verify fixture tokens of every algorithm family.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::jwt::keys::parse_document;
use portcullis_core::jwt::token::{parse_jws, Jws};
use portcullis_core::jwt::verify::verify_signature;
use std::sync::OnceLock;

const TOKENS: &str = include_str!("../../tests/fixtures/jwt/tokens.json");

/// One valid fixture token per algorithm family.
const TOKEN_NAMES: &[&str] = &[
    "far_rs256", "far_ps256", "far_es256", "far_es384", "far_es512", "far_eddsa", "far_hs256",
];

fn tokens() -> &'static [Jws<'static>] {
    static PARSED: OnceLock<Vec<Jws<'static>>> = OnceLock::new();
    PARSED.get_or_init(|| {
        static RAW: OnceLock<serde_json::Value> = OnceLock::new();
        let raw = RAW.get_or_init(|| match serde_json::from_str(TOKENS) {
            Ok(value) => value,
            Err(error) => panic!("tokens.json is invalid: {error}"),
        });
        TOKEN_NAMES
            .iter()
            .map(|name| match raw[*name].as_str().map(parse_jws) {
                Some(Ok(token)) => token,
                other => panic!("fixture token {name} does not parse: {other:?}"),
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(set) = parse_document(text) else {
        return;
    };
    for token in tokens() {
        let _ = verify_signature(
            &token.header,
            token.signing_input.as_bytes(),
            &token.signature,
            &set.keys,
        );
    }
});

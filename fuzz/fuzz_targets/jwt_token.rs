//! A token from fuzz bytes, sent as `Authorization: Bearer <token>` through
//! `check::evaluate` against a provider with the fixture JWKS
//! (tests/fixtures/jwt/jwks.json: RSA, P-256, P-384, P-521, Ed25519 and an
//! HMAC key), and through the token parsers directly.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::config::Config;
use portcullis_core::jwt::cache::{Reach, Verified, VerifiedStore};
use portcullis_core::jwt::check::{evaluate, Decision, InlineKeys, Request};
use portcullis_core::jwt::policy::JwtPolicy;
use portcullis_core::jwt::token;
use std::collections::HashMap;
use std::sync::OnceLock;

const JWKS: &str = include_str!("../../tests/fixtures/jwt/jwks.json");

/// 2030-01-01T00:00:00Z: the fixture tokens named `far_*` are valid then.
const NOW: u64 = 1_893_456_000;

fn policy() -> &'static JwtPolicy {
    static POLICY: OnceLock<JwtPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let document = serde_json::json!({"jwt": {
            "providers": {"main": {
                "issuer": "https://issuer.example",
                "audiences": ["api"],
                "local_jwks": {"inline_string": JWKS},
                "forward_payload_header": "x-jwt-payload",
                "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}],
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}],
        }});
        match Config::from_json(document.to_string().as_bytes()) {
            Ok(config) => config.jwt,
            Err(error) => panic!("fuzz target configuration is invalid: {error}"),
        }
    })
}

/// A verified-token store that keeps every entry, like shared data.
#[derive(Default)]
struct MapStore(HashMap<Vec<u8>, Verified>);

impl VerifiedStore for MapStore {
    fn get(&mut self, token: &[u8], _reach: Reach) -> Option<Verified> {
        self.0.get(token).copied()
    }

    fn put(&mut self, token: &[u8], verified: Verified, _reach: Reach) {
        self.0.insert(token.to_vec(), verified);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = token::parse(text);
        let _ = token::parse_jws(text);
    }

    let policy = policy();
    let mut authorization = b"Bearer ".to_vec();
    authorization.extend_from_slice(data);
    let headers = vec![
        (":method".to_string(), b"GET".to_vec()),
        (":path".to_string(), b"/api/items".to_vec()),
        (":authority".to_string(), b"example.com".to_vec()),
        ("authorization".to_string(), authorization),
    ];
    let request = Request {
        headers: &headers,
        now: NOW,
    };
    let keys = InlineKeys(policy);
    let mut store = MapStore::default();
    let first = evaluate(policy, &request, &keys, &mut store);
    // The second evaluation may take the signature check from the store, and
    // must reach the same decision.
    let second = evaluate(policy, &request, &keys, &mut store);
    match (&first, &second) {
        (Decision::Allow { edits: a, .. }, Decision::Allow { edits: b, .. }) => assert_eq!(a, b),
        (Decision::Reject(a), Decision::Reject(b)) => assert_eq!(a, b),
        _ => panic!("cached evaluation differs: {first:?} then {second:?}"),
    }
});

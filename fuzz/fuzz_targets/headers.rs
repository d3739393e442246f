//! Header hardening over a request and a response built from fuzz bytes
//! (see the crate documentation for the text form; the response follows the
//! request's empty line and its start line is ignored): `plan_request`, then
//! `HeaderPolicy::response_edits` and `local_reply_headers` with the
//! request's exchange, under three policies.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::client::parse_ip;
use portcullis_core::config::Config;
use portcullis_core::headers::{normalize_path, plan_request, HeaderEdit};
use portcullis_fuzz::{parse_message, request_headers, Headers};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

const ALL_CONTROLS: &str = include_str!("../../tests/fuzz/all-controls.json");

/// Cookie hardening on every cookie, wildcard CORS, routes, a host allowlist
/// and two trusted proxy hops.
const STRICT: &str = r#"{
  "headers": {
    "cookies": {"same_site": "none", "http_only_all": true},
    "routes": [{"prefix": "/account", "response": {"cache-control": {"mode": "set"}}}],
    "allowed_hosts": ["example.com", ".example.com"],
    "client_address": {"trusted_hops": 2},
    "remove_response_extra": ["x-debug-*"]
  },
  "cors": {"enabled": true, "allowed_origins": ["*"], "expose_headers": ["x-request-id"]}
}"#;

const SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));

fn configs() -> &'static [Config] {
    static CONFIGS: OnceLock<Vec<Config>> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        ["{}", ALL_CONTROLS, STRICT]
            .iter()
            .map(|document| match Config::from_json(document.as_bytes()) {
                Ok(config) => config,
                Err(error) => panic!("fuzz target configuration is invalid: {error}"),
            })
            .collect()
    })
}

fn has_control_byte(value: &[u8]) -> bool {
    value.iter().any(|byte| matches!(byte, b'\r' | b'\n' | 0))
}

/// Checks the promises of `response_edits`: no header added twice except
/// `Set-Cookie`, none added beside a copy the application sent, and no
/// CR, LF or NUL in an added value unless an input value had one.
fn check_edits(edits: &[HeaderEdit], response: &Headers, clean_input: bool) {
    let mut added: Vec<&str> = Vec::new();
    for edit in edits {
        let HeaderEdit::Add(name, value) = edit else {
            continue;
        };
        if name != "set-cookie" {
            assert!(!added.contains(&&**name), "{name} added twice: {edits:?}");
        }
        added.push(name);
        let sent = response
            .iter()
            .any(|(sent, _)| sent.eq_ignore_ascii_case(name));
        let removed = edits
            .iter()
            .any(|edit| matches!(edit, HeaderEdit::Remove(removed) if removed == name));
        assert!(!sent || removed, "{name} added beside the application's copy: {edits:?}");
        if clean_input {
            assert!(!has_control_byte(value), "{name} value {value:?} has a control byte");
        }
    }
}

// The configurations are compiled before the first input, so that their
// cost does not count against the time limit of one input.
fuzz_target!(init: { configs(); }, |data: &[u8]| {
    let request_message = parse_message(data);
    let request = request_headers(&request_message);
    let response = parse_message(request_message.rest).headers;
    let clean_input = !request
        .iter()
        .chain(&response)
        .any(|(name, value)| has_control_byte(name.as_bytes()) || has_control_byte(value));

    for (_, value) in &request {
        let _ = parse_ip(value);
    }
    let _ = normalize_path(request_message.start);

    for config in configs() {
        for source in [Some(SOURCE), None] {
            let plan = plan_request(&config.headers, &config.cors, &request, source);
            if let Some(reply) = &plan.reply {
                for (name, value) in &reply.headers {
                    if clean_input {
                        assert!(!has_control_byte(value.as_bytes()), "reply {name}: {value:?}");
                    }
                }
            }
            let edits = config.headers.response_edits(&response, &plan.exchange);
            check_edits(&edits, &response, clean_input);
            let local = config.headers.local_reply_headers(&plan.exchange, &[]);
            for (index, (name, _)) in local.iter().enumerate() {
                assert!(
                    !local[..index].iter().any(|(other, _)| other == name),
                    "local reply repeats {name}: {local:?}"
                );
            }
        }
    }
});

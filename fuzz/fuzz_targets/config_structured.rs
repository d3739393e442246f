//! Configuration documents built from fuzz bytes on a JSON skeleton: field
//! names and values come mostly from the names the sections accept, so that
//! inputs get past the outer objects and reach the checks of each section.

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use portcullis_core::config::Config;
use serde_json::{Map, Value};

const SECTIONS: &[&str] = &["headers", "filter", "cors", "jwt", "limits", "events"];

/// Field names of every section and subsection, as the configuration
/// structs spell them.
const FIELDS: &[&str] = &[
    "address", "algorithm", "allow_credentials", "allow_missing", "allow_missing_or_failed",
    "allowed_charsets", "allowed_content_types", "allowed_headers", "allowed_hosts",
    "allowed_methods", "allowed_origins", "allowlist", "anomaly_threshold", "async_fetch",
    "audiences", "authority", "base_interval", "batch_size", "block_status", "body",
    "body_field", "bypass_cors_preflight", "cache_duration", "case_sensitive", "claim",
    "claim_name", "claim_to_headers", "claims", "client_address", "clock_skew_seconds",
    "cluster", "contains", "cookie", "cookies", "count", "enabled", "equals", "escalation",
    "exact", "exclusions", "export", "expose_headers", "factor", "failure_statuses",
    "flush_interval_seconds", "forget_after_seconds", "format", "forward",
    "forward_payload_header", "from_cookies", "from_headers", "from_params", "header",
    "header_name", "headers", "host_mismatch_status", "http_only", "http_only_all", "http_uri",
    "id", "ignore_case", "inline_string", "invert_match", "ipv4_prefix", "ipv6_prefix",
    "issuer", "jwt_cache_config", "jwt_cache_size", "jwt_max_token_size", "key", "limit",
    "local_jwks", "lockout_seconds", "log_max_per_kind", "log_window_seconds", "lowercase",
    "match", "max_age", "max_arg_name_bytes", "max_arg_value_bytes", "max_args",
    "max_body_bytes", "max_header_bytes", "max_headers", "max_interval", "max_keys",
    "max_lifetime", "max_queue", "max_seconds", "max_uri_bytes", "methods", "mode", "name",
    "names", "num_retries", "on_body_too_large", "on_missing_key", "on_store_failure",
    "one_of", "pad_forward_payload_header", "paranoia", "paranoia_level", "path", "paths",
    "phrases", "policies", "prefix", "present_match", "provider_name", "providers",
    "range_match", "realm", "regex", "remote_jwks", "remove_response", "remove_response_extra",
    "require_expiration", "requires", "requires_all", "requires_any", "response",
    "response_headers", "retry_back_off", "retry_policy", "routes", "rules", "safe_regex",
    "safe_regex_match", "same_site", "secure", "severity", "status", "string_match",
    "strip_request", "suffix", "suffix_match", "targets", "timeout", "transforms",
    "trusted_hops", "uri", "value", "value_prefix", "window_seconds",
];

/// String values that the sections give a meaning to.
const WORDS: &[&str] = &[
    "", "*", "/", "/api", "/login", "block", "monitor", "reject", "pass", "set", "default",
    "remove", "lax", "strict", "none", "off", "requests", "failures", "sliding_window",
    "token_bucket", "allow", "skip", "count", "url_decode", "utf8_fold", "html_entities",
    "js_escapes", "css_escapes", "lowercase", "remove_nul", "normalize_path",
    "compress_whitespace", "remove_comments", "shell_unescape", "base64_decode", "args",
    "query", "path", "headers", "cookies", "body", "x-frame-options", "content-security-policy",
    "set-cookie", "x-envoy-*", "x-portcullis-*", "authorization", "Bearer ", "session",
    "https://app.example.com", ".example.com", "example.com", "GET", "POST", "OPTIONS",
    "10.0.0.0/8", "192.0.2.1", "::1/128", "2001:db8::/32", "300s", "1.5s", "0s", "-1s",
    "https://issuer.example", "api", "main", "sub", "scope", "a.b.c", "(a|b)*c", "^/a[0-9]+$",
    "\\", "\u{0}", "%", "\r\n", "jsonl", "json", "collector", "/v1/events",
    r#"{"keys":[{"kty":"oct","kid":"k","alg":"HS256","k":"1FTa4vV3uq47CxejFdloTAhy9YqvDq2_arzQdElGJXE"}]}"#,
    "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEApe83fAy8_1-3EQ-d8UlihzfiHKmAEdN6WFWdAMzldEk=\n-----END PUBLIC KEY-----\n",
];

/// Numbers at and around the bounds the sections check.
const NUMBERS: &[i64] = &[
    -1, 0, 1, 2, 3, 4, 5, 8, 64, 65, 199, 200, 399, 400, 403, 421, 429, 499, 500, 599, 600,
    1000, 65535, 65536, 1_048_576, 1_048_577, 31_622_400, 31_622_401, 1_000_000, 1_000_001,
    u32::MAX as i64, i64::MAX, i64::MIN,
];

fn name(u: &mut Unstructured) -> Result<String> {
    Ok(if u.ratio(1, 16)? {
        u.arbitrary()?
    } else {
        u.choose(FIELDS)?.to_string()
    })
}

fn value(u: &mut Unstructured, depth: u32) -> Result<Value> {
    let kinds = if depth == 0 { 6 } else { 8 };
    Ok(match u.choose_index(kinds)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(*u.choose(NUMBERS)?),
        3 => serde_json::Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        4 => Value::String(u.choose(WORDS)?.to_string()),
        5 => Value::String(u.arbitrary()?),
        6 => {
            let length = u.int_in_range(0..=4)?;
            let mut items = Vec::with_capacity(length);
            for _ in 0..length {
                items.push(value(u, depth - 1)?);
            }
            Value::Array(items)
        }
        _ => Value::Object(object(u, depth - 1)?),
    })
}

fn object(u: &mut Unstructured, depth: u32) -> Result<Map<String, Value>> {
    let mut fields = Map::new();
    for _ in 0..u.int_in_range(0..=6)? {
        let key = name(u)?;
        fields.insert(key, value(u, depth)?);
    }
    Ok(fields)
}

/// Builds a document whose top level names real sections, each an object
/// up to five levels deep.
fn document(u: &mut Unstructured) -> Result<Value> {
    let mut sections = Map::new();
    for section in SECTIONS {
        if u.arbitrary()? {
            sections.insert(section.to_string(), Value::Object(object(u, 4)?));
        }
    }
    Ok(Value::Object(sections))
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(document) = document(&mut u) else {
        return;
    };
    let text = document.to_string();
    let _ = Config::from_json(text.as_bytes());
});

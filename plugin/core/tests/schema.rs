//! The JSON Schema of the plugin configuration (`schema/portcullis.schema.json`)
//! against the parser, `Config::from_json`.
//!
//! - The checked-in file equals the schema generated from the types.
//! - Every configuration in the repository that the parser accepts is valid
//!   under the schema: the demo, the `serve`, `bench` and `fuzz` files and
//!   the accepted scenario configurations.
//! - Invalid configurations are rejected by both. Those whose fault a schema
//!   cannot express are listed apart with the reason, and only the parser is
//!   required to reject them. The scenarios that expect a rejected
//!   configuration are checked the same way.

#![cfg(feature = "schema")]
// A missing or malformed file should stop the test at once, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_core::config::{json_schema, Config};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const REGENERATE: &str = "make schema, or cargo run -q -p portcullis-core --features schema \
     --example schema > schema/portcullis.schema.json";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn generated_text() -> String {
    let schema = serde_json::to_string_pretty(&json_schema()).unwrap();
    // The generator prints the schema with `println!`.
    format!("{schema}\n")
}

fn validator() -> jsonschema::Validator {
    let schema = serde_json::to_value(json_schema()).unwrap();
    jsonschema::draft202012::new(&schema).unwrap_or_else(|error| panic!("invalid schema: {error}"))
}

/// Returns the schema's errors for `document`, each as `path: message`.
fn schema_errors(validator: &jsonschema::Validator, document: &Value) -> Vec<String> {
    validator
        .iter_errors(document)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect()
}

fn parser_error(document: &[u8]) -> Option<String> {
    Config::from_json(document)
        .err()
        .map(|error| error.to_string())
}

/// Returns the files in `dir` whose names end with `extension`, sorted.
fn files(dir: &str, extension: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repository().join(dir))
        .unwrap_or_else(|error| panic!("{dir}: {error}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(extension))
        .collect();
    found.sort();
    found
}

fn name(path: &Path) -> String {
    path.strip_prefix(repository())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn checked_in_schema_is_current() {
    let path = repository().join("schema/portcullis.schema.json");
    let checked_in = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}; regenerate it: {REGENERATE}", path.display()));
    assert!(
        checked_in == generated_text(),
        "schema/portcullis.schema.json differs from the schema of the configuration types; \
         regenerate it: {REGENERATE}"
    );
}

#[test]
fn example_configurations_are_valid() {
    let validator = validator();
    let mut paths = vec![repository().join("envoy/portcullis-demo.json")];
    for dir in ["tests/serve", "tests/bench", "tests/fuzz"] {
        let found = files(dir, ".json");
        assert!(!found.is_empty(), "no configuration found in {dir}");
        paths.extend(found);
    }
    for path in &paths {
        let text = std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", name(path)));
        let document: Value = serde_json::from_slice(&text).unwrap();
        let errors = schema_errors(&validator, &document);
        assert!(errors.is_empty(), "{}: {errors:#?}", name(path));
        if let Some(error) = parser_error(&text) {
            panic!("{}: rejected by the parser: {error}", name(path));
        }
    }
}

/// The fields of a scenario file that concern the plugin configuration
/// (`host-test/src/scenario/file.rs`); the rest are ignored.
#[derive(Deserialize)]
struct ScenarioConfiguration {
    configuration: Option<Value>,
    configuration_raw: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    expect_configure: Option<String>,
    /// Host functions the scenario makes fail; a rejection then comes from
    /// the host, not from the document.
    #[serde(default)]
    failing_host_calls: serde_yaml_ng::Mapping,
}

/// Returns the bytes that host-test hands to the plugin for a scenario.
fn scenario_document(scenario: &ScenarioConfiguration) -> Vec<u8> {
    match (&scenario.configuration_raw, &scenario.configuration) {
        (Some(raw), _) => raw_bytes(raw),
        (None, Some(value)) => value.to_string().into_bytes(),
        (None, None) => Vec::new(),
    }
}

/// Decodes `configuration_raw`: a string, or `{repeat, count, prefix,
/// suffix}`. Its `{base64: ...}` form is not used by any plugin scenario.
fn raw_bytes(raw: &serde_yaml_ng::Value) -> Vec<u8> {
    if let Some(text) = raw.as_str() {
        return text.as_bytes().to_vec();
    }
    let text = |key: &str| raw.get(key).and_then(|value| value.as_str()).unwrap_or("");
    let count = raw
        .get("count")
        .and_then(|value| value.as_u64())
        .unwrap_or_else(|| panic!("unsupported configuration_raw {raw:?}"));
    let mut bytes = text("prefix").as_bytes().to_vec();
    bytes.extend(text("repeat").repeat(count as usize).into_bytes());
    bytes.extend_from_slice(text("suffix").as_bytes());
    bytes
}

/// Scenarios whose rejected configuration is valid under the schema,
/// because the fault is one that a schema cannot express.
const PARSER_ONLY_SCENARIOS: &[(&str, &str)] = &[
    (
        "cors-star-credentials.yaml",
        "`*` in allowed_origins together with allow_credentials: a rule over two fields",
    ),
    (
        "headers-config-client-header.yaml",
        "a header name from a list of reserved names in any letter case, or with `_` for `-`",
    ),
    (
        "counting-config-errors.yaml",
        "two policies with the same name: uniqueness of a field across array items",
    ),
    (
        "jwt-ed25519-noncanonical-only.yaml",
        "an Ed25519 key inside the JWKS string whose encoding is not canonical: curve arithmetic",
    ),
];

/// Scenarios whose rejected configuration is not JSON, so no schema applies.
const NOT_JSON_SCENARIOS: &[&str] = &["configuration-raw.yaml"];

#[test]
fn scenario_configurations_match_schema() {
    let validator = validator();
    let paths = files("tests/scenarios/plugin", ".yaml");
    let mut accepted = 0;
    let mut rejected = 0;
    for path in &paths {
        let file_name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        let scenario: ScenarioConfiguration = serde_yaml_ng::from_str(&text)
            .unwrap_or_else(|error| panic!("{}: {error}", name(path)));
        let bytes = scenario_document(&scenario);
        let expect_rejected = match scenario.expect_configure.as_deref() {
            None | Some("accepted") => false,
            Some("rejected") => true,
            Some(other) => panic!("{}: unknown expect_configure {other:?}", name(path)),
        };
        // An empty document means the defaults, the same as `{}`.
        let document: Option<Value> = if bytes.trim_ascii().is_empty() {
            Some(json!({}))
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        let parser = parser_error(&bytes);
        if !expect_rejected {
            accepted += 1;
            if let Some(error) = parser {
                panic!("{}: rejected by the parser: {error}", name(path));
            }
            let document = document
                .unwrap_or_else(|| panic!("{}: accepted configuration is not JSON", name(path)));
            let errors = schema_errors(&validator, &document);
            assert!(errors.is_empty(), "{}: {errors:#?}", name(path));
            continue;
        }
        if !scenario.failing_host_calls.is_empty() {
            // The document is valid and the host fails to hand it over.
            assert!(parser.is_none(), "{}: {parser:?}", name(path));
            let document =
                document.unwrap_or_else(|| panic!("{}: configuration is not JSON", name(path)));
            let errors = schema_errors(&validator, &document);
            assert!(errors.is_empty(), "{}: {errors:#?}", name(path));
            continue;
        }
        rejected += 1;
        assert!(
            parser.is_some(),
            "{}: the scenario expects a rejection, but the parser accepts it",
            name(path)
        );
        let Some(document) = document else {
            assert!(
                NOT_JSON_SCENARIOS.contains(&file_name.as_str()),
                "{}: rejected configuration is not JSON; list it in NOT_JSON_SCENARIOS",
                name(path)
            );
            continue;
        };
        let schema_rejects = !validator.is_valid(&document);
        match PARSER_ONLY_SCENARIOS
            .iter()
            .find(|(listed, _)| *listed == file_name)
        {
            Some((_, reason)) => assert!(
                !schema_rejects,
                "{}: listed as beyond the schema ({reason}), but the schema rejects it",
                name(path)
            ),
            None => assert!(
                schema_rejects,
                "{}: the parser rejects it ({}), but the schema accepts it",
                name(path),
                parser.unwrap_or_default()
            ),
        }
    }
    assert!(accepted > 0, "no accepted scenario configuration found");
    assert!(rejected > 0, "no rejected scenario configuration found");
}

/// Merges `patch` into `base`: objects field by field, anything else replaced.
fn merge(base: Value, patch: Value) -> Value {
    match (base, patch) {
        (Value::Object(mut base), Value::Object(patch)) => {
            for (key, value) in patch {
                let merged = match base.remove(&key) {
                    Some(old) => merge(old, value),
                    None => value,
                };
                base.insert(key, merged);
            }
            Value::Object(base)
        }
        (_, patch) => patch,
    }
}

/// A JWKS with one 32-byte HS256 key.
const JWKS: &str =
    r#"{"keys":[{"kty":"oct","alg":"HS256","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]}"#;

/// Builds a `jwt` section with provider `main` (local keys) merged with
/// `patch`, and one rule that requires it.
fn provider(patch: Value) -> Value {
    json!({"jwt": {
        "providers": {"main": merge(json!({"local_jwks": {"inline_string": JWKS}}), patch)},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}]
    }})
}

/// Builds a `jwt` section with provider `main` fetching its keys, merged
/// with `patch` under `remote_jwks`.
fn remote(patch: Value) -> Value {
    let jwks = json!({"http_uri": {"uri": "https://idp.example/jwks", "cluster": "idp"}});
    json!({"jwt": {"providers": {"main": {"remote_jwks": merge(jwks, patch)}}}})
}

/// Builds a `jwt` section with provider `main` and one rule merged with
/// `patch`.
fn jwt_rule(patch: Value) -> Value {
    let rule = json!({"match": {"prefix": "/api"}, "requires": {"provider_name": "main"}});
    json!({"jwt": {
        "providers": {"main": {"local_jwks": {"inline_string": JWKS}}},
        "rules": [merge(rule, patch)]
    }})
}

/// Builds a `limits` section with one policy merged with `patch`.
fn policy(patch: Value) -> Value {
    let policy =
        json!({"name": "login", "key": [{"address": {}}], "limit": 5, "window_seconds": 60});
    json!({"limits": {"policies": [merge(policy, patch)]}})
}

/// Builds an `events.export` section merged with `patch`.
fn export(patch: Value) -> Value {
    json!({"events": {"export": merge(json!({"cluster": "siem"}), patch)}})
}

/// Builds a `filter` section with one custom rule merged with `patch`.
fn custom_rule(patch: Value) -> Value {
    let rule = json!({"id": "custom-1", "targets": ["arg_value"], "phrases": ["evil"]});
    json!({"filter": {"rules": [merge(rule, patch)]}})
}

#[test]
fn test_bases_are_valid() {
    let validator = validator();
    let empty = || json!({});
    let bases = [
        ("provider", provider(empty())),
        ("remote", remote(empty())),
        ("jwt_rule", jwt_rule(empty())),
        ("policy", policy(empty())),
        ("export", export(empty())),
        ("custom_rule", custom_rule(empty())),
    ];
    for (label, document) in bases {
        let errors = schema_errors(&validator, &document);
        assert!(errors.is_empty(), "{label}: {errors:#?}");
        let parser = parser_error(document.to_string().as_bytes());
        assert!(parser.is_none(), "{label}: {parser:?}");
    }
}

/// Configurations that the schema and the parser both reject, each a valid
/// base with one fault.
fn invalid_configurations() -> Vec<(&'static str, Value)> {
    let mut cases = vec![
        // Not an object.
        ("document null", json!(null)),
        ("document array", json!([])),
        ("document string", json!("{}")),
        ("document number", json!(1)),
        // Wrong types.
        (
            "filter.enabled string",
            json!({"filter": {"enabled": "yes"}}),
        ),
        (
            "filter.max_body_bytes string",
            json!({"filter": {"max_body_bytes": "large"}}),
        ),
        (
            "filter.max_body_bytes negative",
            json!({"filter": {"max_body_bytes": -1}}),
        ),
        (
            "filter.anomaly_threshold float",
            json!({"filter": {"anomaly_threshold": 2.5}}),
        ),
        (
            "filter.limits.max_args string",
            json!({"filter": {"limits": {"max_args": "9"}}}),
        ),
        (
            "filter.limits.allowed_methods string",
            json!({"filter": {"limits": {"allowed_methods": "GET"}}}),
        ),
        (
            "headers.remove_response item",
            json!({"headers": {"remove_response": ["server", 7]}}),
        ),
        (
            "headers.response value number",
            json!({"headers": {"response": {"x-a": {"mode": "set", "value": 1}}}}),
        ),
        (
            "headers.response mode missing",
            json!({"headers": {"response": {"x-a": {"value": "1"}}}}),
        ),
        (
            "headers.routes prefix missing",
            json!({"headers": {"routes": [{"response": {}}]}}),
        ),
        (
            "headers.cookies.secure null",
            json!({"headers": {"cookies": {"secure": null}}}),
        ),
        (
            "headers.allowed_hosts string",
            json!({"headers": {"allowed_hosts": "example.com"}}),
        ),
        ("cors.max_age negative", json!({"cors": {"max_age": -1}})),
        (
            "cors.allowed_origins object",
            json!({"cors": {"allowed_origins": {"a": 1}}}),
        ),
        (
            "jwt.providers.issuer number",
            provider(json!({"issuer": 5})),
        ),
        (
            "jwt.providers.forward string",
            provider(json!({"forward": "true"})),
        ),
        (
            "jwt.providers.clock_skew_seconds negative",
            provider(json!({"clock_skew_seconds": -1})),
        ),
        (
            "jwt.rules.claims.one_of string",
            jwt_rule(json!({"claims": [{"name": "scope", "one_of": "a"}]})),
        ),
        (
            "limits.policies.limit string",
            policy(json!({"limit": "5"})),
        ),
        (
            "limits.policies.key missing",
            json!({"limits": {"policies": [{"name": "a", "limit": 5, "window_seconds": 60}]}}),
        ),
        (
            "limits.policies.limit missing",
            json!({"limits": {"policies": [{"name": "a", "key": [{"address": {}}], "window_seconds": 60}]}}),
        ),
        (
            "limits.policies.window_seconds missing",
            json!({"limits": {"policies": [{"name": "a", "key": [{"address": {}}], "limit": 5}]}}),
        ),
        (
            "limits.policies.failure_statuses item",
            policy(json!({"failure_statuses": ["401"]})),
        ),
        (
            "limits.allowlist number",
            json!({"limits": {"allowlist": [10]}}),
        ),
        (
            "events.log_max_per_kind float",
            json!({"events": {"log_max_per_kind": 1.5}}),
        ),
        (
            "events.export.cluster missing",
            json!({"events": {"export": {"path": "/"}}}),
        ),
        (
            "filter.rules.id missing",
            json!({"filter": {"rules": [{"targets": ["path"], "phrases": ["x"]}]}}),
        ),
        (
            "filter.rules.targets missing",
            json!({"filter": {"rules": [{"id": "a", "phrases": ["x"]}]}}),
        ),
        // Unknown fields, in each section.
        ("unknown top-level section", json!({"header": {}})),
        ("unknown in headers", json!({"headers": {"respons": {}}})),
        (
            "unknown in headers.response entry",
            json!({"headers": {"response": {"x-a": {"mode": "set", "valu": "1"}}}}),
        ),
        (
            "unknown in headers.routes",
            json!({"headers": {"routes": [{"prefix": "/a", "responses": {}}]}}),
        ),
        (
            "unknown in headers.cookies",
            json!({"headers": {"cookies": {"same_sit": "lax"}}}),
        ),
        (
            "unknown in headers.client_address",
            json!({"headers": {"client_address": {"hops": 1}}}),
        ),
        ("unknown in filter", json!({"filter": {"paranoia": 2}})),
        (
            "unknown in filter.exclusions",
            json!({"filter": {"exclusions": [{"rule": ["a"]}]}}),
        ),
        (
            "unknown in filter.rules",
            custom_rule(json!({"action": "block"})),
        ),
        (
            "unknown in filter.limits",
            json!({"filter": {"limits": {"max_uri_length": 10}}}),
        ),
        ("unknown in cors", json!({"cors": {"origins": []}})),
        ("unknown in jwt", json!({"jwt": {"provider": {}}})),
        ("unknown in jwt.providers", provider(json!({"issuers": []}))),
        (
            "unknown in local_jwks",
            provider(json!({"local_jwks": {"inline": "x"}})),
        ),
        ("unknown in remote_jwks", remote(json!({"cache": "300s"}))),
        (
            "unknown in http_uri",
            remote(json!({"http_uri": {"host": "idp"}})),
        ),
        (
            "unknown in async_fetch",
            remote(json!({"async_fetch": {"fast": true}})),
        ),
        (
            "unknown in retry_policy",
            remote(json!({"retry_policy": {"retries": 1}})),
        ),
        (
            "unknown in retry_back_off",
            remote(json!({"retry_policy": {"retry_back_off": {"base": "1s"}}})),
        ),
        (
            "unknown in from_headers",
            provider(json!({"from_headers": [{"name": "x-token", "prefix": "T "}]})),
        ),
        (
            "unknown in claim_to_headers",
            provider(json!({"claim_to_headers": [{"header_name": "x-sub", "claim": "sub"}]})),
        ),
        (
            "unknown in jwt_cache_config",
            provider(json!({"jwt_cache_config": {"size": 10}})),
        ),
        ("unknown in jwt.rules", jwt_rule(json!({"require": {}}))),
        (
            "unknown in jwt.rules.match",
            jwt_rule(json!({"match": {"regex": "/a"}})),
        ),
        (
            "unknown in safe_regex",
            jwt_rule(json!({"match": {"prefix": null, "safe_regex": {"pattern": "/a"}}})),
        ),
        (
            "unknown in headers matcher",
            jwt_rule(json!({"match": {"headers": [{"name": "x-a", "exact": "1"}]}})),
        ),
        (
            "unknown in string_match",
            jwt_rule(
                json!({"match": {"headers": [{"name": "x-a", "string_match": {"equals": "1"}}]}}),
            ),
        ),
        (
            "unknown in requires",
            jwt_rule(json!({"requires": {"provider": "main"}})),
        ),
        (
            "unknown in provider_and_audiences",
            jwt_rule(
                json!({"requires": {"provider_name": null, "provider_and_audiences": {"provider_name": "main", "audience": []}}}),
            ),
        ),
        (
            "unknown in requires_any",
            jwt_rule(json!({"requires": {"provider_name": null, "requires_any": {"list": []}}})),
        ),
        (
            "unknown in allow_missing",
            jwt_rule(json!({"requires": {"provider_name": null, "allow_missing": {"x": 1}}})),
        ),
        (
            "unknown in claims",
            jwt_rule(json!({"claims": [{"name": "scope", "has": "read"}]})),
        ),
        ("unknown in limits", json!({"limits": {"policy": []}})),
        ("unknown in limits.policies", policy(json!({"burst": 2}))),
        (
            "unknown in limits.policies.match",
            policy(json!({"match": {"paths": []}})),
        ),
        (
            "unknown in limits.policies.match.path",
            policy(json!({"match": {"path": {"glob": "/a*"}}})),
        ),
        (
            "unknown in limits.policies.key",
            policy(json!({"key": [{"ip": {}}]})),
        ),
        (
            "unknown in limits.policies.key.address",
            policy(json!({"key": [{"address": {"prefix": 24}}]})),
        ),
        (
            "unknown in limits.policies.escalation",
            policy(json!({"lockout_seconds": 60, "escalation": {"multiplier": 2}})),
        ),
        ("unknown in events", json!({"events": {"log_max": 5}})),
        (
            "unknown in events.export",
            export(json!({"url": "https://siem"})),
        ),
        // Envoy fields that Portcullis does not support.
        ("jwt.stat_prefix", json!({"jwt": {"stat_prefix": "jwt"}})),
        (
            "jwt.requirement_map",
            json!({"jwt": {"requirement_map": {}}}),
        ),
        (
            "jwt.providers.payload_in_metadata",
            provider(json!({"payload_in_metadata": "jwt_payload"})),
        ),
        (
            "jwt.providers.clear_route_cache",
            provider(json!({"clear_route_cache": true})),
        ),
        (
            "local_jwks.filename",
            provider(json!({"local_jwks": {"inline_string": null, "filename": "/jwks.json"}})),
        ),
        (
            "retry_policy.retry_on",
            remote(json!({"retry_policy": {"retry_on": "5xx"}})),
        ),
        (
            "jwt.rules.requirement_name",
            jwt_rule(json!({"requirement_name": "r"})),
        ),
        (
            "jwt.rules.match.grpc",
            jwt_rule(json!({"match": {"grpc": {}}})),
        ),
        (
            "safe_regex.google_re2",
            jwt_rule(
                json!({"match": {"prefix": null, "safe_regex": {"regex": "/a", "google_re2": {}}}}),
            ),
        ),
        (
            "headers matcher safe_regex_match",
            jwt_rule(
                json!({"match": {"headers": [{"name": "x-a", "safe_regex_match": {"regex": "a"}}]}}),
            ),
        ),
        (
            "string_match.safe_regex",
            jwt_rule(
                json!({"match": {"headers": [{"name": "x-a", "string_match": {"safe_regex": {"regex": "a"}}}]}}),
            ),
        ),
        // Values outside their enumeration.
        ("filter.mode", json!({"filter": {"mode": "deny"}})),
        ("filter.mode case", json!({"filter": {"mode": "Block"}})),
        (
            "filter.on_body_too_large",
            json!({"filter": {"on_body_too_large": "drop"}}),
        ),
        (
            "headers.response mode",
            json!({"headers": {"response": {"x-a": {"mode": "append", "value": "1"}}}}),
        ),
        (
            "headers.cookies.same_site",
            json!({"headers": {"cookies": {"same_site": "medium"}}}),
        ),
        (
            "filter.rules.severity",
            custom_rule(json!({"severity": "urgent"})),
        ),
        (
            "filter.rules.targets",
            custom_rule(json!({"targets": ["uri"]})),
        ),
        (
            "filter.rules.transforms",
            custom_rule(json!({"transforms": ["rot13"]})),
        ),
        ("limits.policies.count", policy(json!({"count": "errors"}))),
        (
            "limits.policies.algorithm",
            policy(json!({"algorithm": "leaky_bucket"})),
        ),
        ("limits.policies.mode", policy(json!({"mode": "dry_run"}))),
        (
            "limits.policies.on_store_failure",
            policy(json!({"on_store_failure": "fail"})),
        ),
        (
            "limits.policies.on_missing_key",
            policy(json!({"on_missing_key": "ignore"})),
        ),
        ("events.export.format", export(json!({"format": "xml"}))),
        (
            "headers.host_mismatch_status",
            json!({"headers": {"host_mismatch_status": 404}}),
        ),
        (
            "headers matcher present_match false",
            jwt_rule(json!({"match": {"headers": [{"name": "x-a", "present_match": false}]}})),
        ),
        // Numbers outside their range.
        (
            "filter.block_status below",
            json!({"filter": {"block_status": 200}}),
        ),
        (
            "filter.block_status above",
            json!({"filter": {"block_status": 600}}),
        ),
        (
            "filter.block_status over u16",
            json!({"filter": {"block_status": 70000}}),
        ),
        (
            "filter.max_body_bytes above",
            json!({"filter": {"max_body_bytes": 16_777_217}}),
        ),
        (
            "filter.paranoia_level below",
            json!({"filter": {"paranoia_level": 0}}),
        ),
        (
            "filter.paranoia_level above",
            json!({"filter": {"paranoia_level": 5}}),
        ),
        (
            "filter.anomaly_threshold zero",
            json!({"filter": {"anomaly_threshold": 0}}),
        ),
        (
            "filter.rules.paranoia above",
            custom_rule(json!({"paranoia": 5})),
        ),
        (
            "filter.rules.paranoia below",
            custom_rule(json!({"paranoia": 0})),
        ),
        (
            "filter.rules.targets empty",
            custom_rule(json!({"targets": []})),
        ),
        (
            "headers.client_address.trusted_hops",
            json!({"headers": {"client_address": {"trusted_hops": 17}}}),
        ),
        ("cors.max_age", json!({"cors": {"max_age": 86_401}})),
        (
            "jwt_max_token_size negative",
            provider(json!({"jwt_cache_config": {"jwt_max_token_size": -1}})),
        ),
        (
            "limits.max_body_bytes",
            json!({"limits": {"max_body_bytes": 1_048_577}}),
        ),
        ("limits.policies.limit zero", policy(json!({"limit": 0}))),
        (
            "limits.policies.limit above",
            policy(json!({"limit": 1_000_001})),
        ),
        (
            "limits.policies.window_seconds zero",
            policy(json!({"window_seconds": 0})),
        ),
        (
            "limits.policies.window_seconds above",
            policy(json!({"window_seconds": 31_622_401})),
        ),
        (
            "limits.policies.lockout_seconds above",
            policy(json!({"lockout_seconds": 31_622_401})),
        ),
        ("limits.policies.status", policy(json!({"status": 302}))),
        (
            "limits.policies.max_keys zero",
            policy(json!({"max_keys": 0})),
        ),
        (
            "limits.policies.max_keys above",
            policy(json!({"max_keys": 1_048_577})),
        ),
        ("limits.policies.key empty", policy(json!({"key": []}))),
        (
            "address.ipv4_prefix zero",
            policy(json!({"key": [{"address": {"ipv4_prefix": 0}}]})),
        ),
        (
            "address.ipv4_prefix above",
            policy(json!({"key": [{"address": {"ipv4_prefix": 33}}]})),
        ),
        (
            "address.ipv6_prefix above",
            policy(json!({"key": [{"address": {"ipv6_prefix": 129}}]})),
        ),
        (
            "escalation.factor zero",
            policy(json!({"lockout_seconds": 60, "escalation": {"factor": 0}})),
        ),
        (
            "escalation.factor above",
            policy(json!({"lockout_seconds": 60, "escalation": {"factor": 101}})),
        ),
        (
            "escalation.forget_after_seconds zero",
            policy(json!({"lockout_seconds": 60, "escalation": {"forget_after_seconds": 0}})),
        ),
        (
            "events.log_window_seconds zero",
            json!({"events": {"log_window_seconds": 0}}),
        ),
        (
            "events.log_window_seconds above",
            json!({"events": {"log_window_seconds": 86_401}}),
        ),
        (
            "events.export.batch_size zero",
            export(json!({"batch_size": 0})),
        ),
        (
            "events.export.batch_size above",
            export(json!({"batch_size": 10_001})),
        ),
        (
            "events.export.flush_interval_seconds",
            export(json!({"flush_interval_seconds": 3_601})),
        ),
        (
            "events.export.max_queue above",
            export(json!({"max_queue": 100_001})),
        ),
        (
            "events.export.timeout_ms zero",
            export(json!({"timeout_ms": 0})),
        ),
        (
            "events.export.timeout_ms above",
            export(json!({"timeout_ms": 60_001})),
        ),
        (
            "jwt.rules.requires_any one item",
            jwt_rule(
                json!({"requires": {"provider_name": null, "requires_any": {"requirements": [{"provider_name": "main"}]}}}),
            ),
        ),
        (
            "jwt.rules.claims.one_of empty",
            jwt_rule(json!({"claims": [{"name": "scope", "one_of": []}]})),
        ),
        // Strings outside their syntax.
        (
            "headers.routes.prefix without slash",
            json!({"headers": {"routes": [{"prefix": "account"}]}}),
        ),
        (
            "headers.response name not a token",
            json!({"headers": {"response": {"x a": {"mode": "remove"}}}}),
        ),
        ("filter.rules.id", custom_rule(json!({"id": "my rule"}))),
        ("limits.policies.name", policy(json!({"name": "log in"}))),
        (
            "limits.policies.name too long",
            policy(json!({"name": "a".repeat(65)})),
        ),
        ("jwt.realm quote", json!({"jwt": {"realm": "a\"b"}})),
        (
            "jwt.providers name empty",
            json!({"jwt": {"providers": {"": {"local_jwks": {"inline_string": JWKS}}}}}),
        ),
        ("events.export.path", export(json!({"path": "ingest"}))),
        // Arrays where objects are expected.
        ("filter array", json!({"filter": [true]})),
        ("cors array", json!({"cors": [true]})),
        (
            "headers.response array",
            json!({"headers": {"response": []}}),
        ),
        (
            "headers.response entry array",
            json!({"headers": {"response": {"x-a": ["set", "1"]}}}),
        ),
        (
            "headers.cookies array",
            json!({"headers": {"cookies": [true]}}),
        ),
        (
            "headers.routes entry array",
            json!({"headers": {"routes": [["/a"]]}}),
        ),
        (
            "filter.limits array",
            json!({"filter": {"limits": [["GET"]]}}),
        ),
        (
            "filter.exclusions entry array",
            json!({"filter": {"exclusions": [[["sqli-*"]]]}}),
        ),
        (
            "filter.rules entry array",
            json!({"filter": {"rules": [["custom-1", null, "critical", 1, ["path"], [], [], null, ["x"]]]}}),
        ),
        ("jwt.providers array", json!({"jwt": {"providers": []}})),
        (
            "jwt.providers entry array",
            json!({"jwt": {"providers": {"main": ["https://idp"]}}}),
        ),
        (
            "jwt.rules entry array",
            json!({"jwt": {"rules": [[{"prefix": "/"}]]}}),
        ),
        (
            "limits.policies entry array",
            json!({"limits": {"policies": [["login"]]}}),
        ),
        (
            "limits.policies.key entry array",
            policy(json!({"key": [["x-user"]]})),
        ),
        (
            "events.export array",
            json!({"events": {"export": ["siem"]}}),
        ),
    ];
    let too_many: Vec<Value> = (0..65)
        .map(|index| {
            json!({"name": format!("p{index}"), "key": [{"address": {}}], "limit": 5, "window_seconds": 60})
        })
        .collect();
    cases.push((
        "limits.policies over 64",
        json!({"limits": {"policies": too_many}}),
    ));
    cases
}

#[test]
fn invalid_configurations_are_rejected() {
    let validator = validator();
    let mut failures = Vec::new();
    for (label, document) in invalid_configurations() {
        let schema_rejects = !validator.is_valid(&document);
        let parser = parser_error(document.to_string().as_bytes());
        if !schema_rejects {
            failures.push(format!("{label}: the schema accepts {document}"));
        }
        if parser.is_none() {
            failures.push(format!("{label}: the parser accepts {document}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Configurations that the parser rejects for a reason that the schema does
/// not express, with that reason. The schema must accept each one, so that
/// this list stays true: a case that the schema learns to reject moves to
/// `invalid_configurations`.
fn parser_only_rejections() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        // Values that need parsing or compiling.
        (
            "custom rule regex",
            "a regex that does not compile",
            custom_rule(json!({"phrases": [], "regex": "("})),
        ),
        (
            "limits path regex",
            "a regex that does not compile",
            policy(json!({"match": {"path": {"regex": "(a"}}})),
        ),
        (
            "jwt safe_regex",
            "a regex that does not compile",
            jwt_rule(json!({"match": {"prefix": null, "safe_regex": {"regex": "["}}})),
        ),
        (
            "limits allowlist",
            "a CIDR block with a prefix over 32",
            json!({"limits": {"allowlist": ["10.0.0.0/33"]}}),
        ),
        (
            "cors origin",
            "an origin with a scheme other than http and https",
            json!({"cors": {"allowed_origins": ["ftp://example.com"]}}),
        ),
        (
            "cors method",
            "an HTTP token check on each list item",
            json!({"cors": {"allowed_methods": ["GE T"]}}),
        ),
        (
            "allowed_hosts",
            "a host name with a space",
            json!({"headers": {"allowed_hosts": ["exa mple.com"]}}),
        ),
        (
            "remove_response",
            "a pattern that is only `*`",
            json!({"headers": {"remove_response": ["*"]}}),
        ),
        (
            "response value",
            "a header value with a control character",
            json!({"headers": {"response": {"x-a": {"mode": "set", "value": "a\u{1}b"}}}}),
        ),
        (
            "protected header",
            "a header that the plugin never changes",
            json!({"headers": {"response": {"content-length": {"mode": "remove"}}}}),
        ),
        (
            "client_address.header",
            "`host` as the client address header",
            json!({"headers": {"client_address": {"header": "host"}}}),
        ),
        (
            "http_only",
            "a cookie name that is not a token",
            json!({"headers": {"cookies": {"http_only": ["a b"]}}}),
        ),
        (
            "max_lifetime",
            "a duration in minutes, not protobuf JSON seconds",
            provider(json!({"max_lifetime": "5m"})),
        ),
        (
            "cache_duration",
            "a duration under one second",
            remote(json!({"cache_duration": "0.5s"})),
        ),
        (
            "http_uri.uri",
            "a URL with a scheme other than http and https",
            remote(json!({"http_uri": {"uri": "ftp://idp.example/jwks"}})),
        ),
        (
            "inline_string",
            "a key set that is not a JWKS or PEM",
            provider(json!({"local_jwks": {"inline_string": "keys"}})),
        ),
        (
            "inline_bytes",
            "base64 that does not decode",
            provider(json!({"local_jwks": {"inline_string": null, "inline_bytes": "!!"}})),
        ),
        (
            "provider name",
            "129 bytes in 65 characters: the limit is in bytes",
            json!({"jwt": {"providers": {"é".repeat(64) + "a": {"local_jwks": {"inline_string": JWKS}}}}}),
        ),
        (
            "requirement provider",
            "a provider name that names no provider",
            jwt_rule(json!({"requires": {"provider_name": "other"}})),
        ),
        // Rules over several fields.
        (
            "cors star with credentials",
            "`*` together with allow_credentials",
            json!({"cors": {"allowed_origins": ["*"], "allow_credentials": true}}),
        ),
        (
            "cookies none without secure",
            "same_site none together with secure false",
            json!({"headers": {"cookies": {"same_site": "none", "secure": false}}}),
        ),
        (
            "custom rule both",
            "both regex and phrases",
            custom_rule(json!({"regex": "evil"})),
        ),
        (
            "custom rule neither",
            "neither regex nor phrases",
            custom_rule(json!({"phrases": []})),
        ),
        (
            "provider both key sources",
            "both local_jwks and remote_jwks",
            provider(
                json!({"remote_jwks": {"http_uri": {"uri": "https://idp.example/jwks", "cluster": "idp"}}}),
            ),
        ),
        (
            "provider no key source",
            "neither local_jwks nor remote_jwks",
            provider(json!({"local_jwks": null})),
        ),
        (
            "jwt rule two paths",
            "more than one of prefix, path and safe_regex",
            jwt_rule(json!({"match": {"path": "/api"}})),
        ),
        (
            "jwt rule no match",
            "a rule without match",
            jwt_rule(json!({"match": null})),
        ),
        (
            "jwt claims without requires",
            "claims on a rule without requires",
            jwt_rule(json!({"requires": null, "claims": [{"name": "sub", "equals": "a"}]})),
        ),
        (
            "claim requirement two tests",
            "more than one of equals, contains and one_of",
            jwt_rule(json!({"claims": [{"name": "scope", "contains": "a", "equals": "a"}]})),
        ),
        (
            "requirement two kinds",
            "more than one kind of requirement",
            jwt_rule(json!({"requires": {"allow_missing": {}}})),
        ),
        (
            "string_match two tests",
            "more than one of exact, prefix, suffix and contains",
            jwt_rule(
                json!({"match": {"headers": [{"name": "x-a", "string_match": {"exact": "a", "prefix": "a"}}]}}),
            ),
        ),
        (
            "key part two kinds",
            "more than one kind of key part",
            policy(json!({"key": [{"header": "x-user", "cookie": "user"}]})),
        ),
        (
            "path match two kinds",
            "more than one of exact, prefix and regex",
            policy(json!({"match": {"path": {"exact": "/a", "prefix": "/a"}}})),
        ),
        (
            "escalation without lockout",
            "escalation needs lockout_seconds above 0",
            policy(json!({"escalation": {}})),
        ),
        (
            "escalation max under lockout",
            "max_seconds below lockout_seconds",
            policy(json!({"lockout_seconds": 600, "escalation": {"max_seconds": 60}})),
        ),
        (
            "failures without statuses",
            "count failures with an empty failure_statuses",
            policy(json!({"count": "failures", "failure_statuses": []})),
        ),
        (
            "failure status out of range",
            "a failure status outside 100 to 599, checked only when count is failures",
            policy(json!({"count": "failures", "failure_statuses": [700]})),
        ),
        (
            "max_queue under batch_size",
            "max_queue below batch_size",
            export(json!({"batch_size": 500, "max_queue": 100})),
        ),
        // Uniqueness.
        (
            "duplicate response header",
            "the same header name in two cases",
            json!({"headers": {"response": {"x-a": {"mode": "remove"}, "X-A": {"mode": "remove"}}}}),
        ),
        (
            "duplicate route prefix",
            "two routes with one prefix",
            json!({"headers": {"routes": [{"prefix": "/a"}, {"prefix": "/a"}]}}),
        ),
        (
            "duplicate policy name",
            "two policies with one name",
            json!({"limits": {"policies": [
                {"name": "a", "key": [{"address": {}}], "limit": 5, "window_seconds": 60},
                {"name": "a", "key": [{"address": {}}], "limit": 5, "window_seconds": 60}
            ]}}),
        ),
        (
            "custom rule id of a built-in rule",
            "an id that a built-in rule has",
            custom_rule(json!({"id": "sqli-union-select"})),
        ),
    ]
}

#[test]
fn parser_only_rejections_are_rejected() {
    let validator = validator();
    let mut failures = Vec::new();
    for (label, reason, document) in parser_only_rejections() {
        let errors = schema_errors(&validator, &document);
        if !errors.is_empty() {
            failures.push(format!(
                "{label} ({reason}): the schema rejects it, move it to invalid_configurations: {errors:?}"
            ));
        }
        if parser_error(document.to_string().as_bytes()).is_none() {
            failures.push(format!("{label} ({reason}): the parser accepts {document}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

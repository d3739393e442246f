//! Runs every scenario file under `tests/scenarios/<family>/` against the built modules.
//!
//! The modules come from `make build` (`dist/portcullis.wasm`, `dist/probe.wasm`); each
//! family is one test so that a failure names it, and the failing steps are printed.

// Test helpers outside #[test] functions fail the test on any error, so panicking is right.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use host_test::module;
use host_test::scenario::{run_file, ScenarioOutcome};
use host_test::state::HostProfile;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run_family(family: &str, host: HostProfile) {
    let root = repo_root();
    let plugin = root.join("dist/portcullis.wasm");
    assert!(
        plugin.exists(),
        "{} is missing: build it with `make build`",
        plugin.display()
    );
    let dir = root.join("tests/scenarios").join(family);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "json")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario files in {}", dir.display());
    let engine = module::engine().expect("engine");
    let mut failures = Vec::new();
    let mut steps = 0;
    for file in &files {
        let outcome: ScenarioOutcome = run_file(&engine, file, &plugin, host);
        if let Some(error) = &outcome.error {
            failures.push(format!("{}: {error}", outcome.file));
        }
        for step in &outcome.steps {
            steps += 1;
            if !step.passed() {
                let logs: Vec<String> = step
                    .logs
                    .iter()
                    .map(|l| format!("    [{:?}] {}", l.level, l.message))
                    .collect();
                failures.push(format!(
                    "{}: {}: {}\n{}",
                    outcome.file,
                    step.name,
                    step.failures.join("; "),
                    logs.join("\n")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {steps} steps failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn host_scenarios() {
    run_family("host", HostProfile::Envoy);
}

#[test]
fn plugin_scenarios() {
    run_family("plugin", HostProfile::Envoy);
}

/// The module must behave the same under Kong's ngx_wasm_module, so its scenarios run under
/// that profile too (a scenario that depends on one host names it with `host:`).
#[test]
fn plugin_scenarios_ngx() {
    run_family("plugin", HostProfile::Ngx);
}

/// Secrets a scenario file sends: the payload part of every JWT-shaped token
/// and every password field value, in form or JSON bodies.
fn secrets_in(text: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut rest = text;
    while let Some(start) = rest.find("eyJ") {
        let candidate: String = rest[start..]
            .chars()
            .take_while(|&c| is_token_char(c))
            .collect();
        let parts: Vec<&str> = candidate.split('.').collect();
        if parts.len() >= 2 && parts[1].len() >= 16 {
            secrets.push(parts[1].to_string());
        }
        rest = &rest[start + 3..];
    }
    for marker in ["password=", "\"password\": \"", "\"password\":\""] {
        let mut rest = text;
        while let Some(start) = rest.find(marker) {
            let value: String = rest[start + marker.len()..]
                .chars()
                .take_while(|&c| !matches!(c, '&' | '"' | '\'' | ' ' | '\n' | '}' | ','))
                .collect();
            if value.len() >= 3 {
                secrets.push(value);
            }
            rest = &rest[start + marker.len()..];
        }
    }
    secrets.sort();
    secrets.dedup();
    secrets
}

/// No log line of any plugin scenario contains a token or a password that the
/// scenario sent: events name keys by their hash and never copy credentials.
#[test]
fn no_secret_in_plugin_logs() {
    let root = repo_root();
    let plugin = root.join("dist/portcullis.wasm");
    assert!(
        plugin.exists(),
        "{} is missing: build it with `make build`",
        plugin.display()
    );
    let dir = root.join("tests/scenarios/plugin");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    let engine = module::engine().expect("engine");
    let mut checked = 0;
    let mut leaks = Vec::new();
    for file in &files {
        let secrets = secrets_in(&std::fs::read_to_string(file).unwrap());
        if secrets.is_empty() {
            continue;
        }
        checked += secrets.len();
        let outcome = run_file(&engine, file, &plugin, HostProfile::Envoy);
        for step in &outcome.steps {
            for log in &step.logs {
                for secret in secrets.iter().filter(|s| log.message.contains(s.as_str())) {
                    leaks.push(format!(
                        "{}: {}: {secret} in {}",
                        outcome.file, step.name, log.message
                    ));
                }
            }
        }
    }
    assert!(
        checked >= 20,
        "only {checked} secrets found in the scenarios"
    );
    assert!(leaks.is_empty(), "secrets in logs:\n{}", leaks.join("\n"));
}

#[test]
fn secrets_found_in_scenario_text() {
    let text = r#"body: "username=alice&password=guess1"
headers: {authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MX0.c2ln}
body: '{"password": "hunter22"}'"#;
    assert_eq!(
        secrets_in(text),
        vec!["eyJzdWIiOiJhbGljZSIsImV4cCI6MX0", "guess1", "hunter22"]
    );
}

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

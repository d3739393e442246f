//! Runs one scenario of each kind through both the module and the component, and checks
//! that they decide every step the same way: status, forwarding, the headers and body sent
//! upstream, and the response headers and body the client gets.
//!
//! The artifacts come from `make build` (`dist/portcullis.wasm`) and `make component`
//! (`dist/portcullis-component.wasm`); `PORTCULLIS_WASM` and `PORTCULLIS_COMPONENT` name
//! other builds.

// Test helpers outside #[test] functions fail the test on any error, so panicking is right.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use host_test::module;
use host_test::scenario::component::{run_component_file, ComponentHost};
use host_test::scenario::{run_file, BytesJson, StepResult};
use host_test::state::HostProfile;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn artifact(variable: &str, name: &str, make_target: &str) -> PathBuf {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("dist").join(name));
    assert!(
        path.exists(),
        "{} is missing: build it with `make {make_target}`",
        path.display()
    );
    path
}

/// Header pairs as text, without `x-request-id`, which the host numbers per stream.
fn comparable(headers: &[(BytesJson, BytesJson)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| name.0 != b"x-request-id")
        .map(|(name, value)| {
            (
                String::from_utf8_lossy(&name.0).into_owned(),
                String::from_utf8_lossy(&value.0).into_owned(),
            )
        })
        .collect()
}

/// Returns every difference between the decisions of one step.
fn differences(module: &StepResult, component: &StepResult) -> Vec<String> {
    let mut found = Vec::new();
    if module.status != component.status {
        found.push(format!(
            "status: module {:?}, component {:?}",
            module.status, component.status
        ));
    }
    if module.forwarded != component.forwarded {
        found.push(format!(
            "forwarded: module {}, component {}",
            module.forwarded, component.forwarded
        ));
    }
    let upstream = |step: &StepResult| {
        step.upstream_request
            .as_ref()
            .map(|seen| (comparable(&seen.headers), seen.body.0.clone()))
    };
    if upstream(module) != upstream(component) {
        found.push(format!(
            "upstream request: module {:?}, component {:?}",
            upstream(module),
            upstream(component)
        ));
    }
    let (by_module, by_component) = (
        comparable(&module.response_headers),
        comparable(&component.response_headers),
    );
    if by_module != by_component {
        found.push(format!(
            "response headers: module {by_module:?}, component {by_component:?}"
        ));
    }
    if module.response_body != component.response_body {
        found.push("response body differs".to_string());
    }
    found
}

/// Runs a scenario both ways; returns the number of request steps compared, which the
/// tests pin so that a step that stops running is noticed.
fn compare(scenario: &str) -> usize {
    let root = repo_root();
    let plugin = artifact("PORTCULLIS_WASM", "portcullis.wasm", "build");
    let component = artifact(
        "PORTCULLIS_COMPONENT",
        "portcullis-component.wasm",
        "component",
    );
    let file = root.join("tests/scenarios/plugin").join(scenario);
    let engine = module::engine().expect("engine");
    let host = ComponentHost::load(&engine, &component).expect("component");

    let by_module = run_file(&engine, &file, &plugin, HostProfile::Envoy);
    let by_component = run_component_file(&host, &file);
    assert!(by_module.error.is_none(), "module: {:?}", by_module.error);
    assert!(
        by_component.error.is_none() && by_component.skipped.is_none(),
        "component: {:?} {:?}",
        by_component.error,
        by_component.skipped
    );
    assert_eq!(
        by_module.steps.len(),
        by_component.steps.len(),
        "step count"
    );

    let mut compared = 0;
    let mut failures = Vec::new();
    for (module_step, component_step) in by_module.steps.iter().zip(&by_component.steps) {
        let component_result = &component_step.result;
        assert_eq!(module_step.name, component_result.name);
        if component_step.skipped.is_some() || module_step.status.is_none() {
            continue;
        }
        if !module_step.passed() {
            failures.push(format!(
                "module: {}: {:?}",
                module_step.name, module_step.failures
            ));
        }
        if !component_result.passed() {
            failures.push(format!(
                "component: {}: {:?}",
                component_result.name, component_result.failures
            ));
        }
        for difference in differences(module_step, component_result) {
            failures.push(format!("{}: {difference}", module_step.name));
        }
        compared += 1;
    }
    assert!(failures.is_empty(), "{scenario}:\n{}", failures.join("\n"));
    compared
}

#[test]
fn headers_same_decisions() {
    assert_eq!(compare("headers-routes.yaml"), 4);
    assert_eq!(compare("headers-cookies.yaml"), 4);
}

#[test]
fn cors_same_decisions() {
    assert_eq!(compare("cors-credentials.yaml"), 10);
}

#[test]
fn filter_same_decisions() {
    assert_eq!(compare("defaults.yaml"), 11);
    assert_eq!(compare("monitor.yaml"), 1);
}

#[test]
fn jwt_local_same_decisions() {
    assert_eq!(compare("jwt-local.yaml"), 41);
}

#[test]
fn limits_same_decisions() {
    assert_eq!(compare("counting-rate.yaml"), 8);
    assert_eq!(compare("counting-login.yaml"), 13);
}

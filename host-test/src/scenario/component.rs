//! Runs scenario files through the Portcullis component (`wit/portcullis.wit`) instead of
//! the proxy-wasm module: the driver plays the host that calls `check-request`, forwards an
//! allowed request to the scenario's upstream and hardens the response with
//! `harden-response`.
//!
//! The component world has no http calls, ticks, workers, metrics or shared-data views, so
//! steps and expectations that need them are reported as skipped by name, never passed.

use std::collections::HashMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use wasmtime::component::{Component, HasSelf, Linker, ResourceAny};
use wasmtime::{Engine, Store};

use super::file::{ConfigureOutcome, Expect, RequestSpec, Scenario, Step, StepKind, UpstreamSpec};
use super::report::{pairs_json, BytesJson, StepResult, UpstreamSeen};
use super::run::{
    check_logs_contain, check_request, client_request, json_text, load, parse_time,
    upstream_response, DEFAULT_TIME,
};
use crate::abi::Pairs;
use crate::state::{LocalResponse, LogLevel, LogRecord};
use crate::stream::{codec_rejection, local_client_response, request_header_map};

mod bindings {
    wasmtime::component::bindgen!({
        world: "portcullis",
        path: "../wit",
    });
}

use bindings::exports::portcullis::filter::checks::{Decision, Request, RequestEdit, ResponseEdit};
use bindings::portcullis::filter::{clock, log, store};
use bindings::Portcullis;

/// The host side of one component instance: the scenario's clock, a key-value store with
/// the semantics of Envoy's shared data, and the lines of the log sink.
struct HostState {
    now: SystemTime,
    entries: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
    logs: Vec<LogRecord>,
}

impl HostState {
    fn new(now: SystemTime) -> Self {
        HostState {
            now,
            entries: HashMap::new(),
            next_cas: 1,
            logs: Vec::new(),
        }
    }
}

impl clock::Host for HostState {
    fn now_ms(&mut self) -> u64 {
        self.now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64)
    }
}

impl store::Host for HostState {
    fn get(&mut self, key: String) -> Result<Option<store::Entry>, String> {
        Ok(self.entries.get(&key).map(|(value, cas)| store::Entry {
            value: value.clone(),
            cas: *cas,
        }))
    }

    /// Envoy's rules: a non-zero CAS must match an existing key's token, a missing key is
    /// written whatever the CAS, and every write takes the next token of one sequence that
    /// skips 0.
    fn set(&mut self, key: String, value: Vec<u8>, cas: u32) -> Result<store::SetOutcome, String> {
        if let Some((_, stored)) = self.entries.get(&key) {
            if cas != 0 && cas != *stored {
                return Ok(store::SetOutcome::CasMismatch);
            }
        }
        let token = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1).max(1);
        self.entries.insert(key, (value, token));
        Ok(store::SetOutcome::Stored)
    }
}

fn log_level(level: log::Level) -> LogLevel {
    match level {
        log::Level::Info => LogLevel::Info,
        log::Level::Warn => LogLevel::Warn,
        log::Level::Error => LogLevel::Error,
    }
}

impl log::Host for HostState {
    fn event(&mut self, level: log::Level, _action: String, line: String) {
        self.logs.push(LogRecord {
            level: log_level(level),
            message: line,
        });
    }

    fn message(&mut self, level: log::Level, text: String) {
        self.logs.push(LogRecord {
            level: log_level(level),
            message: text,
        });
    }
}

/// The outcome of one step run through the component.
#[derive(Debug, Serialize)]
pub struct ComponentStep {
    /// The step's outputs and every expectation it failed.
    pub result: StepResult,
    /// The reason the whole step was not run, when it was not.
    pub skipped: Option<String>,
    /// Expectations of a step that ran but that the component world cannot check.
    pub unchecked: Vec<String>,
}

/// The result of one scenario file run through the component.
#[derive(Debug, Serialize)]
pub struct ComponentOutcome {
    pub file: String,
    /// Set when the scenario could not run at all.
    pub error: Option<String>,
    /// Set when no step of the scenario can run through the component.
    pub skipped: Option<String>,
    pub steps: Vec<ComponentStep>,
}

impl ComponentOutcome {
    /// Tells whether the scenario ran and no step that ran failed.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.steps.iter().all(|step| step.result.passed())
    }
}

/// Converts wasmtime's error, which is not a `std::error::Error`, keeping its chain.
fn wasm_error(error: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{error:#}")
}

/// The component compiled once, with a linker that provides its imports.
pub struct ComponentHost {
    engine: Engine,
    component: Component,
    linker: Linker<HostState>,
}

impl ComponentHost {
    /// Compiles the component and links the world's imports. The WASI imports that the
    /// Rust standard library brings in are linked too: randomness from the host's
    /// generator, an empty environment, and every other function as a trap, since the
    /// component must not print, read files or exit.
    pub fn load(engine: &Engine, path: &Path) -> anyhow::Result<ComponentHost> {
        let component = Component::from_file(engine, path).map_err(|error| {
            anyhow::anyhow!(
                "failed to load the component {} (build it with `make component`): {error:#}",
                path.display()
            )
        })?;
        let mut linker: Linker<HostState> = Linker::new(engine);
        Portcullis::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(wasm_error)?;
        let imports: Vec<String> = component
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        for name in imports {
            if name.starts_with("wasi:random/random@") {
                let mut instance = linker.instance(&name).map_err(wasm_error)?;
                instance
                    .func_wrap("get-random-bytes", |_, (count,): (u64,)| {
                        let bytes: Vec<u8> =
                            (0..count.min(1 << 16)).map(|_| rand::random()).collect();
                        Ok((bytes,))
                    })
                    .map_err(wasm_error)?;
                instance
                    .func_wrap("get-random-u64", |_, (): ()| Ok((rand::random::<u64>(),)))
                    .map_err(wasm_error)?;
            } else if name.starts_with("wasi:cli/environment@") {
                // An empty environment: the host sets no variables and passes no arguments.
                let mut instance = linker.instance(&name).map_err(wasm_error)?;
                instance
                    .func_wrap("get-environment", |_, (): ()| {
                        Ok((Vec::<(String, String)>::new(),))
                    })
                    .map_err(wasm_error)?;
                instance
                    .func_wrap("get-arguments", |_, (): ()| Ok((Vec::<String>::new(),)))
                    .map_err(wasm_error)?;
                instance
                    .func_wrap("initial-cwd", |_, (): ()| Ok((None::<String>,)))
                    .map_err(wasm_error)?;
            } else if name.starts_with("wasi:random/insecure-seed@") {
                let mut instance = linker.instance(&name).map_err(wasm_error)?;
                instance
                    .func_wrap("insecure-seed", |_, (): ()| {
                        Ok(((rand::random::<u64>(), rand::random::<u64>()),))
                    })
                    .map_err(wasm_error)?;
            }
        }
        linker
            .define_unknown_imports_as_traps(&component)
            .map_err(wasm_error)?;
        Ok(ComponentHost {
            engine: engine.clone(),
            component,
            linker,
        })
    }

    fn instantiate(&self, now: SystemTime) -> anyhow::Result<(Store<HostState>, Portcullis)> {
        let mut store = Store::new(&self.engine, HostState::new(now));
        let instance = Portcullis::instantiate(&mut store, &self.component, &self.linker)
            .map_err(|error| anyhow::anyhow!("failed to instantiate the component: {error:#}"))?;
        Ok((store, instance))
    }
}

/// Loads and runs a scenario file through the component.
pub fn run_component_file(host: &ComponentHost, path: &Path) -> ComponentOutcome {
    let label = path.display().to_string();
    match load(path) {
        Ok(scenario) => run_component_scenario(host, &scenario, &label),
        Err(error) => ComponentOutcome {
            file: label,
            error: Some(format!("{error:#}")),
            skipped: None,
            steps: Vec::new(),
        },
    }
}

/// Returns why the component world cannot run any step of the scenario, if it cannot.
fn scenario_skip_reason(scenario: &Scenario) -> Option<String> {
    if scenario.plugin.is_some() {
        return Some("the scenario names its own module".to_string());
    }
    if scenario.workers > 1 {
        return Some(format!("{} workers", scenario.workers));
    }
    if !scenario.http_calls.is_empty() {
        return Some("http-call answers".to_string());
    }
    if !scenario.failing_host_calls.is_empty() {
        return Some("failing proxy-wasm host calls".to_string());
    }
    if scenario.vm_configuration.is_some() || !scenario.environment.is_empty() {
        return Some("VM configuration and environment".to_string());
    }
    if scenario
        .host
        .is_some_and(|host| host != crate::state::HostProfile::Envoy)
    {
        return Some("a host profile other than Envoy".to_string());
    }
    None
}

/// Runs a parsed scenario through a fresh instance of the component.
pub fn run_component_scenario(
    host: &ComponentHost,
    scenario: &Scenario,
    label: &str,
) -> ComponentOutcome {
    let mut outcome = ComponentOutcome {
        file: label.to_string(),
        error: None,
        skipped: scenario_skip_reason(scenario),
        steps: Vec::new(),
    };
    if outcome.skipped.is_some() {
        return outcome;
    }
    let start = match parse_time(scenario.time.as_deref().unwrap_or(DEFAULT_TIME)) {
        Ok(start) => start,
        Err(error) => {
            outcome.error = Some(format!("time: {error:#}"));
            return outcome;
        }
    };
    let (mut store, instance) = match host.instantiate(start) {
        Ok(pair) => pair,
        Err(error) => {
            outcome.error = Some(format!("{error:#}"));
            return outcome;
        }
    };
    let document = match (&scenario.configuration_raw, &scenario.configuration) {
        (Some(raw), _) => Some(String::from_utf8_lossy(&raw.0).into_owned()),
        (None, Some(value)) => Some(String::from_utf8_lossy(&json_text(value)).into_owned()),
        (None, None) => None,
    };
    let checks = instance.portcullis_filter_checks();
    if let Some(document) = document {
        let applied = match checks.call_configure(&mut store, &document) {
            Ok(applied) => applied,
            Err(error) => {
                outcome.error = Some(format!("configure trapped: {error:#}"));
                return outcome;
            }
        };
        match (applied, scenario.expect_configure) {
            (Ok(()), ConfigureOutcome::Accepted) => {}
            (Err(message), ConfigureOutcome::Rejected) => {
                let mut result = StepResult::empty("configure rejected".to_string());
                // The sink contains the component's `config-rejected` event, and the driver
                // logs the returned message as the proxy module logs it.
                result.logs = std::mem::take(&mut store.data_mut().logs);
                result.logs.push(LogRecord {
                    level: LogLevel::Error,
                    message: format!("host-test: invalid plugin configuration: {message}"),
                });
                if let Some(expected) = &scenario.configure_log_contains {
                    check_logs_contain(&mut result, &expected.to_vec());
                }
                outcome.steps.push(ComponentStep {
                    result,
                    skipped: None,
                    unchecked: Vec::new(),
                });
                return outcome;
            }
            (Ok(()), ConfigureOutcome::Rejected) => {
                outcome.error = Some(
                    "the component accepted a configuration the scenario expects it to reject"
                        .to_string(),
                );
                return outcome;
            }
            (Err(message), ConfigureOutcome::Accepted) => {
                if message.contains("the component does not") {
                    outcome.skipped = Some(message);
                } else {
                    outcome.error =
                        Some(format!("configure rejected the configuration: {message}"));
                }
                return outcome;
            }
        }
    }
    let mut driver = Driver {
        store,
        instance,
        default_upstream: scenario.upstream.clone().unwrap_or_default(),
        limits: scenario.limits,
        connections: 0,
    };
    if let Some(expected) = &scenario.configure_log_contains {
        let mut setup = StepResult::empty("start".to_string());
        setup.logs = std::mem::take(&mut driver.store.data_mut().logs);
        check_logs_contain(&mut setup, &expected.to_vec());
        if !setup.failures.is_empty() {
            outcome.steps.push(ComponentStep {
                result: setup,
                skipped: None,
                unchecked: Vec::new(),
            });
        }
    }
    for (index, step) in scenario.steps.iter().enumerate() {
        let name = step
            .name
            .clone()
            .unwrap_or_else(|| format!("step {}", index + 1));
        outcome.steps.push(driver.step(step, name));
    }
    outcome
}

/// Expectations that name something the component world does not have.
fn unchecked_expectations(expect: &Expect) -> Vec<String> {
    let mut unchecked = Vec::new();
    if !expect.metrics.is_empty() {
        unchecked.push("metrics".to_string());
    }
    if !expect.http_calls.is_empty() {
        unchecked.push("http_calls".to_string());
    }
    if expect.vm_failed.is_some() {
        unchecked.push("vm_failed".to_string());
    }
    if !expect.status_counts.is_empty() {
        unchecked.push("status_counts".to_string());
    }
    unchecked
}

struct Driver {
    store: Store<HostState>,
    instance: Portcullis,
    default_upstream: UpstreamSpec,
    limits: crate::state::Limits,
    connections: u64,
}

/// Replaces the value of the first copy of a header in place and removes the others, or
/// adds the header when it is missing, as Envoy's `replace_header_map_value` does.
fn replace_header(headers: &mut Pairs, name: String, value: Vec<u8>) {
    let name = name.into_bytes();
    let mut value = Some(value);
    headers.retain_mut(|(existing, current)| {
        if !existing.eq_ignore_ascii_case(&name) {
            return true;
        }
        match value.take() {
            Some(value) => {
                *current = value;
                true
            }
            None => false,
        }
    });
    if let Some(value) = value {
        headers.push((name, value));
    }
}

/// Applies request edits in order to a header map.
fn apply_request_edits(headers: &mut Pairs, edits: Vec<RequestEdit>) {
    for edit in edits {
        match edit {
            RequestEdit::Set((name, value)) => replace_header(headers, name, value),
            RequestEdit::Remove(name) => {
                headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name.as_bytes()))
            }
            RequestEdit::Append((name, value)) => headers.push((name.into_bytes(), value)),
        }
    }
}

/// Applies response edits in order to a header map.
fn apply_response_edits(headers: &mut Pairs, edits: Vec<ResponseEdit>) {
    for edit in edits {
        match edit {
            ResponseEdit::Set((name, value)) => replace_header(headers, name, value),
            ResponseEdit::Remove(name) => {
                headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name.as_bytes()))
            }
            ResponseEdit::Append((name, value)) => headers.push((name.into_bytes(), value)),
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Splits the header map a proxy's codec builds into the fields of a component request.
fn component_request(
    headers: &Pairs,
    body: Option<Vec<u8>>,
    source: &str,
    now: SystemTime,
) -> Request {
    let pseudo = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name.as_bytes())
            .map(|(_, value)| text(value))
            .unwrap_or_default()
    };
    Request {
        method: pseudo(":method"),
        path: pseudo(":path"),
        authority: pseudo(":authority"),
        scheme: pseudo(":scheme"),
        headers: headers
            .iter()
            .filter(|(name, _)| !name.starts_with(b":"))
            .map(|(name, value)| (text(name), value.clone()))
            .collect(),
        body,
        client_address: Some(source.to_string()),
        time_ms: now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64),
    }
}

/// The outputs of one request through the component.
struct Exchanged {
    status: u16,
    forwarded: Option<UpstreamSeen>,
    response_headers: Pairs,
    response_body: Vec<u8>,
}

impl Driver {
    fn step(&mut self, step: &Step, name: String) -> ComponentStep {
        let mut result = StepResult::empty(name);
        let kind = match step.kind() {
            Ok(kind) => kind,
            Err(error) => {
                result.failures.push(error);
                return ComponentStep {
                    result,
                    skipped: None,
                    unchecked: Vec::new(),
                };
            }
        };
        let skip = |result: StepResult, reason: &str| ComponentStep {
            result,
            skipped: Some(reason.to_string()),
            unchecked: Vec::new(),
        };
        match kind {
            StepKind::Advance(by) => {
                // The clock moves, so that windows and lockouts expire as in the module, but
                // no tick runs: the component has no timer.
                self.store.data_mut().now += by;
                skip(result, "ticks (the clock moved, no tick ran)")
            }
            StepKind::SetTime(value) => match parse_time(value) {
                Ok(time) => {
                    self.store.data_mut().now = time;
                    ComponentStep {
                        result,
                        skipped: None,
                        unchecked: unchecked_expectations(&step.expect),
                    }
                }
                Err(error) => {
                    result.failures.push(format!("set_time: {error:#}"));
                    ComponentStep {
                        result,
                        skipped: None,
                        unchecked: Vec::new(),
                    }
                }
            },
            StepKind::Calls(_) => skip(result, "http-call answers"),
            StepKind::Concurrent(_) => skip(result, "concurrent requests over workers"),
            StepKind::Request(_) if step.worker.is_some_and(|worker| worker != 0) => {
                skip(result, "a request on another worker")
            }
            StepKind::Request(spec) if spec.trailers.is_some() => skip(result, "request trailers"),
            StepKind::Request(spec) if !spec.end_of_stream => {
                skip(result, "a request body that never ends")
            }
            StepKind::Request(spec)
                if [&spec.method, &spec.path]
                    .iter()
                    .any(|field| std::str::from_utf8(&field.0).is_err()) =>
            {
                skip(
                    result,
                    "a method or path outside UTF-8 (a string in the interface)",
                )
            }
            StepKind::Request(spec) => {
                let upstream = step
                    .upstream
                    .clone()
                    .unwrap_or_else(|| self.default_upstream.clone());
                let mut outcome = Err("repeat: must be at least 1".to_string());
                for _ in 0..step.repeat.unwrap_or(1) {
                    outcome = self.exchange(spec, &upstream);
                }
                match outcome {
                    Ok(exchanged) => {
                        result.status = Some(exchanged.status);
                        result.forwarded = exchanged.forwarded.is_some();
                        result.upstream_request = exchanged.forwarded;
                        result.response_headers = pairs_json(&exchanged.response_headers);
                        result.response_body = BytesJson(exchanged.response_body);
                    }
                    Err(error) => result.failures.push(error),
                }
                result.logs = std::mem::take(&mut self.store.data_mut().logs);
                check_request(&step.expect, &mut result);
                ComponentStep {
                    result,
                    skipped: None,
                    unchecked: unchecked_expectations(&step.expect),
                }
            }
        }
    }

    fn exchange(
        &mut self,
        spec: &RequestSpec,
        upstream: &UpstreamSpec,
    ) -> Result<Exchanged, String> {
        self.connections += 1;
        let client = client_request(spec, self.connections)?;
        if let Some(response) = codec_rejection(&client, &self.limits) {
            return Ok(Exchanged {
                status: response.status,
                forwarded: None,
                response_headers: response.headers,
                response_body: response.body,
            });
        }

        let mut headers = request_header_map(&client, self.connections);
        let body = client.body_chunks.concat();
        let body = (!client.body_chunks.is_empty()).then_some(body);
        let now = self.store.data().now;
        let request = component_request(&headers, body.clone(), &client.source.to_string(), now);
        let checks = self.instance.portcullis_filter_checks();
        let decision = checks
            .call_check_request(&mut self.store, &request)
            .map_err(|error| format!("check-request trapped: {error:#}"))?;
        let allowed = match decision {
            Decision::Respond(response) => {
                let local = local_client_response(LocalResponse {
                    status: u32::from(response.status),
                    details: "component".to_string(),
                    headers: response
                        .headers
                        .into_iter()
                        .map(|(name, value)| (name.into_bytes(), value))
                        .collect(),
                    body: response.body,
                });
                return Ok(Exchanged {
                    status: local.status,
                    forwarded: None,
                    response_headers: local.headers,
                    response_body: local.body,
                });
            }
            Decision::Allow(allowed) => allowed,
        };

        apply_request_edits(&mut headers, allowed.edits);
        let forwarded = UpstreamSeen {
            headers: pairs_json(&headers),
            body: BytesJson(body.unwrap_or_default()),
        };

        let answer = upstream_response(upstream);
        let mut response_headers: Pairs = answer
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect();
        let component_headers: Vec<(String, Vec<u8>)> = response_headers
            .iter()
            .map(|(name, value)| (text(name), value.clone()))
            .collect();
        let hardened = self.harden(allowed.exchange, answer.status, &component_headers)?;
        apply_response_edits(&mut response_headers, hardened);
        Ok(Exchanged {
            status: answer.status,
            forwarded: Some(forwarded),
            response_headers,
            response_body: answer.body_chunks.concat(),
        })
    }

    /// Calls `harden-response` on the exchange, then drops it.
    fn harden(
        &mut self,
        exchange: ResourceAny,
        status: u16,
        headers: &[(String, Vec<u8>)],
    ) -> Result<Vec<ResponseEdit>, String> {
        let checks = self.instance.portcullis_filter_checks();
        let edits = checks
            .exchange()
            .call_harden_response(&mut self.store, exchange, status, headers)
            .map_err(|error| format!("harden-response trapped: {error:#}"));
        let dropped = exchange
            .resource_drop(&mut self.store)
            .map_err(|error| format!("dropping the exchange trapped: {error:#}"));
        let edits = edits?;
        dropped?;
        Ok(edits)
    }
}

//! Running a scenario: VMs on a shared store, a harness clock, http-call answers, and the
//! checks of each step.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use wasmtime::Engine;

use super::file::{
    CallAnswer, CallFailure, ConfigureOutcome, Expect, HeaderExpect, RequestSpec, Scenario, Step,
    StepKind, UpstreamSpec,
};
use super::report::{pairs_json, BytesJson, CallSeen, StepResult, UpstreamSeen};
use crate::abi::Pairs;
use crate::module::Plugin;
use crate::shared::{Clock, HostShared};
use crate::state::{CallResponse, FailurePolicy, HostProfile, LogRecord, OutgoingCall, VmOptions};
use crate::stream::{
    ClientRequest, ClientResponse, ForwardedRequest, StreamPoll, UpstreamResponse,
};
use crate::vm::{StartError, Vm};

/// Default start of the harness clock.
pub(super) const DEFAULT_TIME: &str = "2026-01-01T00:00:00Z";
/// Default client address of requests.
const DEFAULT_SOURCE: &str = "203.0.113.10:40000";
const DESTINATION: &str = "127.0.0.1:10000";

/// The result of one scenario file.
#[derive(Debug, serde::Serialize)]
pub struct ScenarioOutcome {
    pub file: String,
    /// Set when the scenario could not run at all (bad file, module or start-up).
    pub error: Option<String>,
    pub steps: Vec<StepResult>,
}

impl ScenarioOutcome {
    /// Whether the scenario ran and every step passed.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.steps.iter().all(StepResult::passed)
    }
}

/// Reads and checks a scenario file; errors name the file, line and field.
pub fn load(path: &Path) -> anyhow::Result<Scenario> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    let scenario: Scenario = serde_yaml_ng::from_str(&text).map_err(|e| {
        let location = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        anyhow::anyhow!("{}{location}: {e}", path.display())
    })?;
    for (i, step) in scenario.steps.iter().enumerate() {
        step.kind()
            .map_err(|e| anyhow::anyhow!("{}: steps[{i}]: {e}", path.display()))?;
        for (j, inner) in step.concurrent.iter().flatten().enumerate() {
            if !matches!(inner.kind(), Ok(StepKind::Request(_))) {
                anyhow::bail!(
                    "{}: steps[{i}].concurrent[{j}]: a concurrent step holds request steps only",
                    path.display()
                );
            }
        }
    }
    if scenario.workers == 0 {
        anyhow::bail!("{}: workers: must be at least 1", path.display());
    }
    Ok(scenario)
}

/// Loads and runs a scenario file. `default_plugin` is used when the file names none, and
/// `host` when it names no host profile.
pub fn run_file(
    engine: &Engine,
    path: &Path,
    default_plugin: &Path,
    host: HostProfile,
) -> ScenarioOutcome {
    let label = path.display().to_string();
    match load(path) {
        Ok(scenario) => {
            let base = path.parent().unwrap_or(Path::new("."));
            run_scenario(engine, &scenario, base, default_plugin, host, &label)
        }
        Err(error) => ScenarioOutcome {
            file: label,
            error: Some(format!("{error:#}")),
            steps: Vec::new(),
        },
    }
}

pub(super) fn json_text(value: &serde_json::Value) -> Vec<u8> {
    match value {
        serde_json::Value::String(text) => text.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    }
}

pub(super) fn parse_time(text: &str) -> anyhow::Result<SystemTime> {
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("invalid RFC 3339 time {text:?}"))?;
    let nanos = parsed.timestamp_nanos_opt().context("time out of range")?;
    Ok(SystemTime::UNIX_EPOCH
        + Duration::from_nanos(u64::try_from(nanos).context("time before 1970")?))
}

fn options_for(scenario: &Scenario, host: HostProfile) -> VmOptions {
    let mut clusters: Vec<String> = scenario.clusters.clone();
    clusters.extend(scenario.http_calls.iter().map(|a| a.cluster.clone()));
    for step in &scenario.steps {
        clusters.extend(step.http_calls.iter().flatten().map(|a| a.cluster.clone()));
    }
    clusters.sort();
    clusters.dedup();
    let plugin_configuration = match (&scenario.configuration_raw, &scenario.configuration) {
        (Some(raw), _) => raw.0.clone(),
        (None, Some(value)) => value.to_string().into_bytes(),
        (None, None) => Vec::new(),
    };
    let defaults = VmOptions::default();
    VmOptions {
        plugin_name: scenario.plugin_name.clone().unwrap_or(defaults.plugin_name),
        root_id: scenario.root_id.clone().unwrap_or_default(),
        vm_id: scenario.vm_id.clone().unwrap_or_default(),
        vm_configuration: scenario
            .vm_configuration
            .as_ref()
            .map(json_text)
            .unwrap_or_default(),
        plugin_configuration,
        environment: scenario
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        failure_policy: scenario.failure_policy,
        log_level: scenario.log_level.unwrap_or(defaults.log_level),
        clusters,
        limits: scenario.limits,
        server_header: scenario.server_header_transformation,
        host: scenario.host.unwrap_or(host),
        failing_calls: scenario
            .failing_host_calls
            .iter()
            .map(|(name, status)| (name.clone(), *status))
            .collect(),
    }
}

/// Runs a parsed scenario; relative plugin paths are resolved against `base`.
pub fn run_scenario(
    engine: &Engine,
    scenario: &Scenario,
    base: &Path,
    default_plugin: &Path,
    host: HostProfile,
    label: &str,
) -> ScenarioOutcome {
    let mut outcome = ScenarioOutcome {
        file: label.to_string(),
        error: None,
        steps: Vec::new(),
    };
    let plugin_path: PathBuf = match &scenario.plugin {
        Some(p) => base.join(p),
        None => default_plugin.to_path_buf(),
    };
    let plugin = match Plugin::load(engine, &plugin_path) {
        Ok(plugin) => plugin,
        Err(error) => {
            outcome.error = Some(format!("{error:#}"));
            return outcome;
        }
    };
    let start = match parse_time(scenario.time.as_deref().unwrap_or(DEFAULT_TIME)) {
        Ok(start) => start,
        Err(error) => {
            outcome.error = Some(format!("time: {error:#}"));
            return outcome;
        }
    };
    let shared = HostShared::new(Clock::manual(start));
    let options = Arc::new(options_for(scenario, host));
    let mut vms = Vec::new();
    let mut start_logs = Vec::new();
    for index in 0..scenario.workers {
        match Vm::start(&plugin, options.clone(), shared.clone(), index) {
            Ok(mut vm) => {
                start_logs.extend(vm.take_logs());
                vms.push(vm);
            }
            Err(error) => return start_failed(outcome, scenario, error),
        }
    }
    if scenario.expect_configure == ConfigureOutcome::Rejected {
        outcome.error = Some(
            "the plugin accepted a configuration the scenario expects it to reject".to_string(),
        );
        return outcome;
    }
    let mut run = Run {
        vms,
        shared,
        answers: scenario.http_calls.clone(),
        pending: Vec::new(),
        default_upstream: scenario.upstream.clone().unwrap_or_default(),
        client_timeout: scenario
            .client_timeout
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(60)),
        connections: 0,
        calls_seen: Vec::new(),
    };
    let mut setup = StepResult::empty("start".to_string());
    setup.logs = start_logs;
    if let Some(expected) = &scenario.configure_log_contains {
        check_logs_contain(&mut setup, &expected.to_vec());
    }
    run.collect_calls();
    run.deliver_due();
    setup.logs.extend(run.take_logs());
    if !setup.failures.is_empty() {
        outcome.steps.push(setup);
    }
    for (index, step) in scenario.steps.iter().enumerate() {
        let name = step
            .name
            .clone()
            .unwrap_or_else(|| format!("step {}", index + 1));
        let result = run.step(step, name);
        outcome.steps.push(result);
    }
    outcome
}

fn start_failed(
    mut outcome: ScenarioOutcome,
    scenario: &Scenario,
    error: StartError,
) -> ScenarioOutcome {
    match (&error, scenario.expect_configure) {
        (StartError::ConfigRejected { logs }, ConfigureOutcome::Rejected) => {
            let mut result = StepResult::empty("configure rejected".to_string());
            result.logs = logs.clone();
            if let Some(expected) = &scenario.configure_log_contains {
                check_logs_contain(&mut result, &expected.to_vec());
            }
            outcome.steps.push(result);
        }
        _ => outcome.error = Some(error.to_string()),
    }
    outcome
}

pub(super) fn check_logs_contain(result: &mut StepResult, expected: &[String]) {
    for needle in expected {
        if !result
            .logs
            .iter()
            .any(|l| l.message.contains(needle.as_str()))
        {
            result
                .failures
                .push(format!("no log line contains {needle:?}"));
        }
    }
}

/// The results of one worker's requests in a concurrent step, each with its index.
type WorkerResults = Vec<(usize, StepResult)>;

/// An http call waiting for its answer.
struct PendingCall {
    vm: usize,
    call: OutgoingCall,
    /// Monotonic time at which the answer (or the failure) arrives.
    due: u64,
    response: Option<CallResponse>,
}

struct Run {
    vms: Vec<Vm>,
    shared: HostShared,
    answers: Vec<CallAnswer>,
    pending: Vec<PendingCall>,
    default_upstream: UpstreamSpec,
    client_timeout: Duration,
    connections: u64,
    calls_seen: Vec<CallSeen>,
}

fn call_path(call: &OutgoingCall) -> String {
    String::from_utf8_lossy(call.header(":path").unwrap_or_default()).into_owned()
}

/// Finds the answer to a call, with when it arrives (delay from now) and what it is.
fn answer_call(answers: &[CallAnswer], call: &OutgoingCall) -> (Duration, Option<CallResponse>) {
    let path = call_path(call);
    let bare = path.split('?').next().unwrap_or_default();
    let timeout = Duration::from_millis(call.timeout_ms.into());
    let answer = answers
        .iter()
        .filter(|a| a.cluster == call.cluster)
        .find(|a| a.path.as_deref() == Some(path.as_str()))
        .or_else(|| {
            answers
                .iter()
                .filter(|a| a.cluster == call.cluster)
                .find(|a| a.path.as_deref() == Some(bare))
        })
        .or_else(|| {
            answers
                .iter()
                .find(|a| a.cluster == call.cluster && a.path.is_none())
        });
    let Some(answer) = answer else {
        let headers = vec![(b":status".to_vec(), b"404".to_vec())];
        return (
            Duration::ZERO,
            Some(CallResponse {
                headers,
                ..CallResponse::default()
            }),
        );
    };
    match answer.failure {
        Some(CallFailure::Reset) => return (answer.delay.map(|d| d.0).unwrap_or_default(), None),
        Some(CallFailure::Timeout) => return (timeout, None),
        None => {}
    }
    let delay = answer.delay.map(|d| d.0).unwrap_or_default();
    if !timeout.is_zero() && delay > timeout {
        return (timeout, None);
    }
    let mut headers: Pairs = vec![(b":status".to_vec(), answer.status.to_string().into_bytes())];
    headers.extend(
        answer
            .headers
            .0
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
    );
    let body = answer.body.clone().map(|b| b.0).unwrap_or_default();
    if !headers.iter().any(|(k, _)| k == b"content-length") {
        headers.push((
            b"content-length".to_vec(),
            body.len().to_string().into_bytes(),
        ));
    }
    (
        delay,
        Some(CallResponse {
            headers,
            body,
            trailers: Vec::new(),
        }),
    )
}

/// Sleeps for the upstream's `delay`, in real time.
fn wait_for_upstream(spec: &UpstreamSpec) {
    if let Some(delay) = spec.delay {
        std::thread::sleep(delay.0);
    }
}

pub(super) fn upstream_response(spec: &UpstreamSpec) -> UpstreamResponse {
    let body_chunks = match (&spec.body_chunks, &spec.body) {
        (Some(chunks), _) => chunks.iter().map(|c| c.0.clone()).collect(),
        (None, Some(body)) if !body.0.is_empty() => vec![body.0.clone()],
        _ => Vec::new(),
    };
    let mut headers = spec.headers.0.clone();
    let length: usize = body_chunks.iter().map(Vec::len).sum();
    if !headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case(b"content-length") || k.eq_ignore_ascii_case(b"transfer-encoding")
    }) {
        headers.push((b"content-length".to_vec(), length.to_string().into_bytes()));
    }
    UpstreamResponse {
        status: spec.status,
        headers,
        body_chunks,
        trailers: spec.trailers.as_ref().map(|t| t.0.clone()),
    }
}

pub(super) fn client_request(
    spec: &RequestSpec,
    connection_id: u64,
) -> Result<ClientRequest, String> {
    let source: SocketAddr = spec
        .source
        .as_deref()
        .unwrap_or(DEFAULT_SOURCE)
        .parse()
        .map_err(|e| format!("request.source: invalid ip:port: {e}"))?;
    let destination: SocketAddr = DESTINATION.parse().map_err(|e| format!("{e}"))?;
    let body_chunks = match (&spec.body_chunks, &spec.body) {
        (Some(chunks), _) => chunks.iter().map(|c| c.0.clone()).collect(),
        (None, Some(body)) if !body.0.is_empty() => vec![body.0.clone()],
        _ => Vec::new(),
    };
    Ok(ClientRequest {
        method: spec.method.0.clone(),
        path: spec.path.0.clone(),
        authority: spec
            .authority
            .clone()
            .map(|a| a.0)
            .unwrap_or_else(|| b"example.com".to_vec()),
        scheme: spec
            .scheme
            .clone()
            .map(|s| s.0)
            .unwrap_or_else(|| b"http".to_vec()),
        headers: spec.headers.0.clone(),
        body_chunks,
        trailers: spec.trailers.as_ref().map(|t| t.0.clone()),
        source,
        destination,
        mtls: spec.mtls,
        connection_id,
        ends: spec.end_of_stream,
    })
}

/// What a request step produced before checking.
struct Exchange {
    forwarded: Option<ForwardedRequest>,
    response: ClientResponse,
    abandoned: Option<String>,
}

impl Run {
    fn take_logs(&mut self) -> Vec<LogRecord> {
        self.vms.iter_mut().flat_map(Vm::take_logs).collect()
    }

    fn collect_calls(&mut self) {
        let now = self.shared.clock.monotonic_nanos();
        for (index, vm) in self.vms.iter_mut().enumerate() {
            for call in vm.take_outgoing_calls() {
                let (delay, response) = answer_call(&self.answers, &call);
                self.calls_seen.push(CallSeen {
                    cluster: call.cluster.clone(),
                    path: call_path(&call),
                });
                self.pending.push(PendingCall {
                    vm: index,
                    call,
                    due: now + delay.as_nanos() as u64,
                    response,
                });
            }
        }
    }

    /// Delivers every answer and tick that is due; returns whether anything ran.
    fn deliver_due(&mut self) -> bool {
        let mut delivered = false;
        loop {
            let now = self.shared.clock.monotonic_nanos();
            let due = self
                .pending
                .iter()
                .enumerate()
                .filter(|(_, p)| p.due <= now)
                .min_by_key(|(_, p)| p.due)
                .map(|(i, _)| i);
            if let Some(index) = due {
                let pending = self.pending.remove(index);
                if let Some(vm) = self.vms.get_mut(pending.vm) {
                    vm.deliver_call_response(&pending.call, pending.response);
                }
                delivered = true;
                self.collect_calls();
                continue;
            }
            let tick = self
                .vms
                .iter()
                .position(|vm| vm.next_tick_nanos().is_some_and(|t| t <= now));
            if let Some(index) = tick {
                self.vms[index].fire_tick();
                delivered = true;
                self.collect_calls();
                continue;
            }
            break;
        }
        for vm in &mut self.vms {
            vm.deliver_queue_ready();
        }
        self.collect_calls();
        delivered
    }

    fn next_event(&self) -> Option<u64> {
        let ticks = self.vms.iter().filter_map(Vm::next_tick_nanos);
        let calls = self.pending.iter().map(|p| p.due);
        ticks.chain(calls).min()
    }

    /// Moves the clock to `target` (monotonic nanoseconds), running ticks and answers in
    /// time order on the way.
    fn advance_to(&mut self, target: u64) {
        self.deliver_due();
        while let Some(next) = self.next_event().filter(|t| *t <= target) {
            let now = self.shared.clock.monotonic_nanos();
            if next > now {
                self.shared.clock.advance(Duration::from_nanos(next - now));
            }
            self.deliver_due();
        }
        let now = self.shared.clock.monotonic_nanos();
        if target > now {
            self.shared
                .clock
                .advance(Duration::from_nanos(target - now));
        }
        self.deliver_due();
    }

    fn prepare_worker(&mut self, worker: usize) -> Result<(), String> {
        let Some(vm) = self.vms.get_mut(worker) else {
            return Err(format!(
                "worker {worker} does not exist (the scenario has {} workers)",
                self.vms.len()
            ));
        };
        // ngx_wasm_module recreates the instance after a trap whatever the policy says.
        let reload = vm.failure_policy() == FailurePolicy::FailReload || vm.options().ngx();
        if vm.failure().is_some() && reload {
            vm.reload()
                .map_err(|e| format!("reloading the failed VM failed: {e}"))?;
        }
        Ok(())
    }

    fn exchange(
        &mut self,
        worker: usize,
        spec: &RequestSpec,
        upstream: &UpstreamSpec,
    ) -> Result<Exchange, String> {
        self.prepare_worker(worker)?;
        self.connections += 1;
        let request = client_request(spec, self.connections)?;
        let started = self.shared.clock.monotonic_nanos();
        let deadline = started + self.client_timeout.as_nanos() as u64;
        let id = self.vms[worker].start_stream(request);
        let mut forwarded = None;
        loop {
            let poll = self.vms[worker].poll_stream(id);
            self.collect_calls();
            match poll {
                StreamPoll::NeedUpstream(request) => {
                    forwarded = Some(request);
                    wait_for_upstream(upstream);
                    self.vms[worker].set_upstream_response(id, upstream_response(upstream));
                }
                StreamPoll::Done(response) => {
                    self.deliver_due();
                    return Ok(Exchange {
                        forwarded,
                        response,
                        abandoned: None,
                    });
                }
                StreamPoll::Waiting => {
                    if self.deliver_due() {
                        continue;
                    }
                    let reason = match self.next_event() {
                        Some(next) if next <= deadline => {
                            self.advance_to(next);
                            continue;
                        }
                        Some(_) => {
                            self.advance_to(deadline);
                            "the stream was still paused when the client timed out"
                        }
                        None => "the stream stayed paused with nothing pending to resume it",
                    };
                    if self.vms[worker].stream_open(id) {
                        self.vms[worker].abandon_stream(id);
                    }
                    return Ok(Exchange {
                        forwarded,
                        response: ClientResponse::default(),
                        abandoned: Some(reason.to_string()),
                    });
                }
            }
        }
    }

    fn step(&mut self, step: &Step, name: String) -> StepResult {
        self.calls_seen.clear();
        let mut result = StepResult::empty(name);
        match step.kind() {
            Ok(StepKind::Advance(by)) => {
                let target = self.shared.clock.monotonic_nanos() + by.as_nanos() as u64;
                self.advance_to(target);
            }
            Ok(StepKind::SetTime(text)) => match parse_time(text) {
                Ok(time) => self.shared.clock.set_wall(time),
                Err(error) => result.failures.push(format!("set_time: {error:#}")),
            },
            Ok(StepKind::Calls(answers)) => self.answers = answers.to_vec(),
            Ok(StepKind::Concurrent(steps)) => {
                let counts = self.concurrent(steps, &mut result);
                for (status, expected) in &step.expect.status_counts {
                    let got = counts.get(status).copied().unwrap_or(0);
                    if got != *expected {
                        result.failures.push(format!("{got} requests got status {status}, expected {expected} (all: {counts:?})"));
                    }
                }
            }
            Ok(StepKind::Request(spec)) => {
                let worker = step.worker.unwrap_or(0);
                result.worker = Some(worker);
                let upstream = step
                    .upstream
                    .clone()
                    .unwrap_or_else(|| self.default_upstream.clone());
                let mut outcome = Err("repeat: must be at least 1".to_string());
                for _ in 0..step.repeat.unwrap_or(1) {
                    outcome = self.exchange(worker, spec, &upstream);
                }
                match outcome {
                    Ok(exchange) => self.record(&mut result, exchange),
                    Err(error) => result.failures.push(error),
                }
                result.vm_failure = self
                    .vms
                    .get(worker)
                    .and_then(|vm| vm.failure().map(str::to_string));
            }
            Err(error) => result.failures.push(error),
        }
        if step.request.is_none() {
            result.vm_failure = self
                .vms
                .iter()
                .find_map(|vm| vm.failure().map(str::to_string));
        }
        result.logs.extend(self.take_logs());
        result.metrics = self
            .shared
            .metrics
            .snapshot()
            .into_iter()
            .map(|(k, m)| (k, m.value))
            .collect();
        result.http_calls = self.calls_seen.clone();
        if step.request.is_some() {
            check(&step.expect, &mut result);
        } else {
            check_other_step(&step.expect, &mut result);
        }
        result
    }

    fn record(&self, result: &mut StepResult, exchange: Exchange) {
        result.status = Some(exchange.response.status);
        result.forwarded = exchange.forwarded.is_some() && !exchange.response.local;
        result.upstream_request = exchange.forwarded.map(|f| UpstreamSeen {
            headers: pairs_json(&f.headers),
            body: BytesJson(f.body),
        });
        result.response_headers = pairs_json(&exchange.response.headers);
        result.response_body = BytesJson(exchange.response.body);
        if let Some(reason) = exchange.abandoned {
            result.logs.push(LogRecord {
                level: crate::state::LogLevel::Info,
                message: format!("host-test: {reason}"),
            });
        }
    }

    /// Sends the steps' requests at once: one thread per worker, all released together, so
    /// that workers really race on shared data. Answers to http calls arrive at once.
    fn concurrent(&mut self, steps: &[Step], result: &mut StepResult) -> BTreeMap<u16, usize> {
        let workers = self.vms.len();
        let mut plan: Vec<Vec<(usize, &Step)>> = vec![Vec::new(); workers];
        for (index, step) in steps.iter().enumerate() {
            let worker = step.worker.unwrap_or(index % workers);
            match plan.get_mut(worker) {
                Some(list) => list.push((index, step)),
                None => result.failures.push(format!(
                    "concurrent[{index}]: worker {worker} does not exist"
                )),
            }
        }
        for worker in 0..workers {
            if let Err(error) = self.prepare_worker(worker) {
                result.failures.push(error);
            }
        }
        let barrier = std::sync::Barrier::new(workers);
        let answers = &self.answers;
        let default_upstream = &self.default_upstream;
        let base_connection = self.connections;
        // Calls made before the step go with their VM, sorted so that `pop` takes
        // the earliest due, and a request waiting for one of them gets it delivered.
        let mut earlier: Vec<Vec<PendingCall>> = (0..workers).map(|_| Vec::new()).collect();
        for pending in std::mem::take(&mut self.pending) {
            if let Some(list) = earlier.get_mut(pending.vm) {
                list.push(pending);
            }
        }
        for list in &mut earlier {
            list.sort_by_key(|pending| std::cmp::Reverse(pending.due));
        }
        let (outcomes, left): (Vec<WorkerResults>, Vec<Vec<PendingCall>>) =
            std::thread::scope(|scope| {
                let handles: Vec<_> = self
                    .vms
                    .iter_mut()
                    .zip(plan)
                    .zip(earlier)
                    .map(|((vm, jobs), mut earlier)| {
                        let barrier = &barrier;
                        scope.spawn(move || {
                            barrier.wait();
                            let results = jobs
                                .into_iter()
                                .map(|(index, step)| {
                                    let upstream =
                                        step.upstream.as_ref().unwrap_or(default_upstream);
                                    (
                                        index,
                                        isolated_exchange(
                                            vm,
                                            step,
                                            upstream,
                                            answers,
                                            &mut earlier,
                                            base_connection + index as u64 + 1,
                                        ),
                                    )
                                })
                                .collect::<Vec<_>>();
                            (results, earlier)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_default())
                    .unzip()
            });
        self.pending.extend(left.into_iter().flatten());
        self.connections += steps.len() as u64;
        let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
        let mut inner: Vec<(usize, StepResult)> = outcomes.into_iter().flatten().collect();
        inner.sort_by_key(|(index, _)| *index);
        for (index, step_result) in inner {
            if let Some(status) = step_result.status {
                *counts.entry(status).or_default() += 1;
            }
            for failure in step_result.failures {
                result.failures.push(format!(
                    "concurrent[{index}] ({}): {failure}",
                    step_result.name
                ));
            }
            result.logs.extend(step_result.logs);
        }
        self.collect_calls();
        self.deliver_due();
        counts
    }
}

/// Runs one request to the end on its own VM, answering its http calls at once; used by
/// concurrent steps, where the clock cannot move for one thread alone. A request that
/// waits with nothing else to run gets the response to the VM's earliest due call from
/// before the step at once too (`earlier` is sorted latest due first).
fn isolated_exchange(
    vm: &mut Vm,
    step: &Step,
    upstream: &UpstreamSpec,
    answers: &[CallAnswer],
    earlier: &mut Vec<PendingCall>,
    connection_id: u64,
) -> StepResult {
    let mut result = StepResult::empty(
        step.name
            .clone()
            .unwrap_or_else(|| format!("request {connection_id}")),
    );
    let Some(spec) = step.request.as_ref() else {
        result.failures.push("not a request step".to_string());
        return result;
    };
    let request = match client_request(spec, connection_id) {
        Ok(request) => request,
        Err(error) => {
            result.failures.push(error);
            return result;
        }
    };
    let id = vm.start_stream(request);
    let mut forwarded = None;
    let mut seen = Vec::new();
    let response = loop {
        let poll = vm.poll_stream(id);
        // Answer every call at once, including calls made by the response callbacks.
        let mut answered = false;
        loop {
            let calls = vm.take_outgoing_calls();
            if calls.is_empty() {
                break;
            }
            for call in &calls {
                seen.push(CallSeen {
                    cluster: call.cluster.clone(),
                    path: call_path(call),
                });
                let (_, response) = answer_call(answers, call);
                vm.deliver_call_response(call, response);
            }
            answered = true;
        }
        match poll {
            StreamPoll::NeedUpstream(request) => {
                forwarded = Some(request);
                wait_for_upstream(upstream);
                vm.set_upstream_response(id, upstream_response(upstream));
            }
            StreamPoll::Done(response) => break response,
            StreamPoll::Waiting if answered => {}
            StreamPoll::Waiting if !earlier.is_empty() => {
                if let Some(pending) = earlier.pop() {
                    vm.deliver_call_response(&pending.call, pending.response);
                }
            }
            StreamPoll::Waiting => {
                vm.abandon_stream(id);
                result.logs.push(LogRecord {
                    level: crate::state::LogLevel::Info,
                    message:
                        "host-test: the stream stayed paused with nothing pending to resume it"
                            .to_string(),
                });
                break ClientResponse::default();
            }
        }
    };
    result.status = Some(response.status);
    result.forwarded = forwarded.is_some() && !response.local;
    result.upstream_request = forwarded.map(|f| UpstreamSeen {
        headers: pairs_json(&f.headers),
        body: BytesJson(f.body),
    });
    result.response_headers = pairs_json(&response.headers);
    result.response_body = BytesJson(response.body);
    result.http_calls = seen;
    result.logs.extend(vm.take_logs());
    result.vm_failure = vm.failure().map(str::to_string);
    check_request(&step.expect, &mut result);
    result
}

/// Quotes bytes for a failure message, with each byte outside printable ASCII
/// escaped (`\xe9`), so that values that differ only in such bytes read differently.
fn show(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}

fn header_values(headers: &[(BytesJson, BytesJson)], name: &str) -> Vec<Vec<u8>> {
    headers
        .iter()
        .filter(|(k, _)| k.0.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v.0.clone())
        .collect()
}

fn check_headers(
    result: &mut StepResult,
    side: &str,
    headers: &[(BytesJson, BytesJson)],
    exact: &BTreeMap<String, HeaderExpect>,
    absent: &[String],
    present: &[String],
) {
    for (name, expected) in exact {
        let values = header_values(headers, name);
        let expected: Vec<Vec<u8>> = match expected {
            HeaderExpect::One(value) => vec![value.0.clone()],
            HeaderExpect::Many(values) => values.iter().map(|v| v.0.clone()).collect(),
        };
        if values != expected {
            let got: Vec<String> = values.iter().map(|v| show(v)).collect();
            let want: Vec<String> = expected.iter().map(|v| show(v)).collect();
            result.failures.push(format!(
                "{side} header {name}: got [{}], expected [{}]",
                got.join(", "),
                want.join(", ")
            ));
        }
    }
    for name in absent {
        let values = header_values(headers, name);
        if !values.is_empty() {
            result.failures.push(format!(
                "{side} header {name} present ({}), expected absent",
                show(&values[0])
            ));
        }
    }
    for name in present {
        if header_values(headers, name).is_empty() {
            result
                .failures
                .push(format!("{side} header {name} absent, expected present"));
        }
    }
}

/// Checks what a request produced, except the metrics (shared, so racy in concurrent steps).
pub(super) fn check_request(expect: &Expect, result: &mut StepResult) {
    if let Some(status) = expect.status {
        if result.status != Some(status) {
            let got = result
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "none".to_string());
            result
                .failures
                .push(format!("status {got}, expected {status}"));
        }
    }
    if let Some(forwarded) = expect.forwarded {
        if result.forwarded != forwarded {
            result.failures.push(format!(
                "forwarded {}, expected {forwarded}",
                result.forwarded
            ));
        }
    }
    let upstream_headers = result
        .upstream_request
        .as_ref()
        .map(|u| u.headers.clone())
        .unwrap_or_default();
    if !expect.upstream_headers.is_empty() || !expect.upstream_headers_absent.is_empty() {
        if result.upstream_request.is_none() && !expect.upstream_headers.is_empty() {
            result
                .failures
                .push("upstream headers expected, but the request was not forwarded".to_string());
        } else {
            check_headers(
                result,
                "upstream",
                &upstream_headers,
                &expect.upstream_headers,
                &expect.upstream_headers_absent,
                &[],
            );
        }
    }
    if let Some(body) = &expect.upstream_body {
        let got = result.upstream_request.as_ref().map(|u| u.body.0.clone());
        if got.as_deref() != Some(body.0.as_slice()) {
            result.failures.push(format!(
                "upstream body {}, expected {}",
                got.map(|g| show(&g)).unwrap_or("none".into()),
                show(&body.0)
            ));
        }
    }
    let response_headers = result.response_headers.clone();
    check_headers(
        result,
        "response",
        &response_headers,
        &expect.response_headers,
        &expect.response_headers_absent,
        &expect.response_headers_present,
    );
    if let Some(body) = &expect.body {
        if result.response_body.0 != body.0 {
            result.failures.push(format!(
                "body {}, expected {}",
                show(&result.response_body.0),
                show(&body.0)
            ));
        }
    }
    if let Some(needles) = &expect.body_contains {
        for needle in needles.to_vec() {
            if !String::from_utf8_lossy(&result.response_body.0).contains(&needle) {
                result.failures.push(format!(
                    "body {} does not contain {needle:?}",
                    show(&result.response_body.0)
                ));
            }
        }
    }
    if let Some(needles) = &expect.log_contains {
        check_logs_contain(result, &needles.to_vec());
    }
    if let Some(needles) = &expect.log_absent {
        for needle in needles.to_vec() {
            if let Some(line) = result.logs.iter().find(|l| l.message.contains(&needle)) {
                result.failures.push(format!(
                    "log line {:?} contains {needle:?}, expected none to",
                    line.message
                ));
            }
        }
    }
    if let Some(expected) = expect.vm_failed {
        if result.vm_failure.is_some() != expected {
            result.failures.push(match &result.vm_failure {
                Some(failure) => format!("the VM failed ({failure}), expected it not to"),
                None => "the VM did not fail, expected it to".to_string(),
            });
        }
    }
}

fn check_metrics(expected: &BTreeMap<String, i64>, result: &mut StepResult) {
    for (name, value) in expected {
        match result.metrics.get(name) {
            Some(got) if got == value => {}
            Some(got) => result
                .failures
                .push(format!("metric {name} is {got}, expected {value}")),
            None => result
                .failures
                .push(format!("metric {name} is not defined, expected {value}")),
        }
    }
}

fn check_calls(expect: &Expect, result: &mut StepResult) {
    for call in &expect.http_calls {
        let made = result
            .http_calls
            .iter()
            .any(|c| c.cluster == call.cluster && call.path.as_ref().is_none_or(|p| *p == c.path));
        if !made {
            result.failures.push(format!(
                "no http call to cluster {} path {}",
                call.cluster,
                call.path.as_deref().unwrap_or("(any)")
            ));
        }
    }
}

/// Checks an `advance`, `set_time`, `http_calls` or `concurrent` step: its logs, metrics,
/// calls and VM state. Expectations about a response have nothing to check there, so they
/// are reported rather than passed silently.
fn check_other_step(expect: &Expect, result: &mut StepResult) {
    let response_only = [
        ("status", expect.status.is_some()),
        ("forwarded", expect.forwarded.is_some()),
        ("upstream_headers", !expect.upstream_headers.is_empty()),
        (
            "upstream_headers_absent",
            !expect.upstream_headers_absent.is_empty(),
        ),
        ("upstream_body", expect.upstream_body.is_some()),
        ("response_headers", !expect.response_headers.is_empty()),
        (
            "response_headers_absent",
            !expect.response_headers_absent.is_empty(),
        ),
        (
            "response_headers_present",
            !expect.response_headers_present.is_empty(),
        ),
        ("body", expect.body.is_some()),
        ("body_contains", expect.body_contains.is_some()),
    ];
    for (field, set) in response_only {
        if set {
            result
                .failures
                .push(format!("expect.{field} applies to request steps only"));
        }
    }
    if let Some(needles) = &expect.log_contains {
        check_logs_contain(result, &needles.to_vec());
    }
    if let Some(needles) = &expect.log_absent {
        for needle in needles.to_vec() {
            if let Some(line) = result.logs.iter().find(|l| l.message.contains(&needle)) {
                result.failures.push(format!(
                    "log line {:?} contains {needle:?}, expected none to",
                    line.message
                ));
            }
        }
    }
    if let Some(expected) = expect.vm_failed {
        let failed = result.vm_failure.is_some();
        if failed != expected {
            result
                .failures
                .push(format!("VM failed: {failed}, expected {expected}"));
        }
    }
    check_metrics(&expect.metrics, result);
    check_calls(expect, result);
}

fn check(expect: &Expect, result: &mut StepResult) {
    check_request(expect, result);
    check_metrics(&expect.metrics, result);
    check_calls(expect, result);
}

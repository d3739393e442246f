//! Applies the per-key limits of `portcullis-core` to requests: counters in
//! the host's shared data, a salt that every worker shares, and a sweep of
//! expired entries on tick.
//!
//! The limits state of a request is kept per VM by context id rather than in
//! the stream, because a request that waited for remote JWKS is resumed from
//! the root context, which checks its limits before resuming it.

use crate::abi::HostStatus;
use crate::host;
use crate::stream::Shared;
use portcullis_core::headers::Exchange;
use portcullis_core::http::{parse_property_integer, HeaderPairs, RequestInfo};
use portcullis_core::limits::event::{LimitAction, LimitEvent, LimitMetric};
use portcullis_core::limits::key::KeyInputs;
use portcullis_core::limits::store::{Anchor, HostError, SetOutcome, SharedStore};
use portcullis_core::limits::{Context, LimitVerdict, Limits, Report, RequestLimits};
use portcullis_core::pipeline::SALT_BYTES;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

/// Buckets of each policy swept per tick.
const RECLAIM_BATCH: u32 = 64;

/// Shared data through the proxy-wasm host calls.
struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
        match crate::abi::shared_data(key) {
            Ok(Some((value, cas))) if cas != 0 => Ok(Some((value, cas))),
            Ok(_) => Ok(None),
            Err(status) => Err(HostError(format!(
                "reading {key} failed with status {status}"
            ))),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<SetOutcome, HostError> {
        match crate::abi::set_shared_data(key, value, cas) {
            Ok(()) => Ok(SetOutcome::Stored),
            Err(HostStatus::CAS_MISMATCH) => Ok(SetOutcome::CasMismatch),
            Err(status) => Err(HostError(format!(
                "writing {key} failed with status {status}"
            ))),
        }
    }
}

/// Limits state of one request, kept between callbacks.
struct RequestState {
    limits: RequestLimits,
    headers: Vec<(String, Vec<u8>)>,
    client: Option<IpAddr>,
    claims: Option<Rc<Map<String, Value>>>,
    request: RequestInfo,
    /// Request-side facts for the security headers of a reject response.
    exchange: Exchange,
    /// Size of the buffered body at the last body callback.
    buffered: usize,
}

/// Per-VM limits state, created with each applied configuration.
pub struct LimitsRuntime {
    anchor: Anchor,
    salt: Vec<u8>,
    cursor: RefCell<Vec<u32>>,
    metric_ids: Vec<Option<u32>>,
    /// Ids of `portcullis.limits.policy.<name>.<outcome>`, by policy name.
    policy_metric_ids: HashMap<String, [Option<u32>; POLICY_OUTCOMES.len()]>,
    requests: RefCell<HashMap<u32, RequestState>>,
}

/// Outcomes counted per policy, by the event action that reports them.
const POLICY_OUTCOMES: [(LimitAction, &str); 3] = [
    (LimitAction::RateLimited, "rejected"),
    (LimitAction::KeyLockedOut, "locked_out"),
    (LimitAction::KeyReleased, "released"),
];

impl LimitsRuntime {
    /// Creates the state for a configuration. With no policy nothing is read
    /// or defined.
    pub fn new(limits: &Limits) -> Self {
        let (salt, metric_ids) = if limits.enabled() {
            (load_salt(), define_metrics())
        } else {
            (Vec::new(), Vec::new())
        };
        let policy_metric_ids = limits
            .policies()
            .iter()
            .map(|policy| {
                let ids = POLICY_OUTCOMES.map(|(_, outcome)| {
                    let name = format!("portcullis.limits.policy.{}.{outcome}", policy.name);
                    host::define_counter(&name)
                });
                (policy.name.clone(), ids)
            })
            .collect();
        LimitsRuntime {
            anchor: Anchor::default(),
            salt,
            cursor: RefCell::new(Vec::new()),
            metric_ids,
            policy_metric_ids,
            requests: RefCell::new(HashMap::new()),
        }
    }

    /// Counts an event in its policy's counter, if its action has one. A
    /// monitor-mode rejection is counted under `flagged` overall only.
    fn count_policy_event(&self, event: &LimitEvent) {
        if event.action == LimitAction::RateLimited && event.monitor {
            return;
        }
        let Some(ids) = self.policy_metric_ids.get(&event.policy) else {
            return;
        };
        let position = POLICY_OUTCOMES
            .iter()
            .position(|(action, _)| *action == event.action);
        if let Some(Some(id)) = position.map(|position| ids[position]) {
            let _ = crate::abi::increment_metric(id, 1);
        }
    }

    fn context(&self) -> Context<'_, HostStore> {
        Context {
            store: &HostStore,
            anchor: &self.anchor,
            salt: &self.salt,
            now: host::current_time(),
        }
    }
}

/// Reads the salt that every worker shares, creating it when it is missing.
fn load_salt() -> Vec<u8> {
    portcullis_core::pipeline::load_salt(&HostStore, || random_bytes(SALT_BYTES)).unwrap_or_else(|| {
        log::error!(
            "portcullis: the limits salt could not be stored in shared data, keys are hashed without it"
        );
        Vec::new()
    })
}

/// Returns bytes from the standard library's randomly keyed hasher, which
/// takes its keys from WASI `random_get`, mixed with the host clock.
fn random_bytes(count: usize) -> Vec<u8> {
    let nanos = host::current_time()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or(0);
    let mut bytes = Vec::with_capacity(count);
    let mut counter = 0u64;
    while bytes.len() < count {
        let word = RandomState::new().hash_one((nanos, counter));
        bytes.extend_from_slice(&word.to_le_bytes());
        counter += 1;
    }
    bytes.truncate(count);
    bytes
}

fn define_metrics() -> Vec<Option<u32>> {
    LimitMetric::ALL
        .iter()
        .map(|metric| host::define_counter(metric.name()))
        .collect()
}

/// Writes the events of a report to the host log and counts its metrics.
/// Events of a request carry its method, path, client and token subject.
fn publish(shared: &Shared, report: Report, request: Option<&RequestState>) {
    let runtime = &shared.limits;
    for metric in report.metrics {
        let index = LimitMetric::ALL.iter().position(|m| *m == metric);
        if let Some(Some(id)) = index.and_then(|index| runtime.metric_ids.get(index)) {
            let _ = crate::abi::increment_metric(*id, 1);
        }
    }
    for event in report.events {
        runtime.count_policy_event(&event);
        let mut event = event.with_observer(shared.plugin_name.as_deref());
        if let Some(state) = request {
            let subject = state
                .claims
                .as_ref()
                .and_then(|claims| claims.get("sub"))
                .and_then(Value::as_str);
            event = event
                .with_request(&state.request)
                .with_source(host::event_source(state.client))
                .with_user(subject);
        }
        crate::events::write(shared, event.action.name(), event.level, || event.to_json());
    }
}

/// The stream's next step after a limits check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Go on with the request.
    Continue,
    /// Buffer the body and call [`on_request_body`] for each chunk.
    Body,
    /// A reject response was sent: stop the request.
    Rejected,
}

/// Starts the limits of a request once its headers passed every other
/// control, and checks the policies whose key needs no body. `claims` are
/// those of the verified token, if any. A request without a body
/// (`end_of_stream`) gets no body callback, so policies that key on a body
/// field are checked at once with an empty body.
pub fn on_request_headers(
    context_id: u32,
    shared: &Shared,
    headers: &HeaderPairs,
    exchange: &Exchange,
    claims: Option<Rc<Map<String, Value>>>,
    end_of_stream: bool,
) -> Next {
    let limits = &shared.config.limits;
    if !limits.enabled() {
        return Next::Continue;
    }

    let request = RequestInfo::from_headers(headers);
    let raw_path = portcullis_core::http::first_value(headers, ":path").unwrap_or_default();
    let client = exchange
        .client
        .or_else(|| host::source_address().map(|source| source.ip));
    let mut state = RequestState {
        limits: limits.start_request(&request.method, raw_path, client),
        headers: headers.to_vec(),
        client,
        claims,
        request,
        exchange: exchange.clone(),
        buffered: 0,
    };
    if !state.limits.is_active() {
        return Next::Continue;
    }

    let runtime = &shared.limits;
    let mut report = Report::default();
    let inputs = KeyInputs {
        headers: &state.headers,
        client_ip: state.client,
        claims: state.claims.as_deref(),
        body: None,
    };
    let verdict = state
        .limits
        .on_request_headers(limits, &inputs, &runtime.context(), &mut report);
    publish(shared, report, Some(&state));

    let next = apply(context_id, shared, &state.exchange, verdict);
    if next == Next::Body && end_of_stream {
        return check_body(context_id, shared, state, Some(&[]));
    }
    if next != Next::Rejected {
        runtime.requests.borrow_mut().insert(context_id, state);
    }
    next
}

/// Handles a request body callback for policies that key on a body field.
/// Returns `Some(action)` while the limits still need the body (`true` to
/// keep buffering) or after a rejection, and `None` once they are done.
pub fn on_request_body(
    context_id: u32,
    shared: &Shared,
    buffered: usize,
    end_of_stream: bool,
) -> Option<Next> {
    let limits = &shared.config.limits;
    let mut state = take_waiting(shared, context_id)?;
    state.buffered = buffered;
    let too_large = buffered > limits.max_body_bytes();
    if !end_of_stream && !too_large {
        shared
            .limits
            .requests
            .borrow_mut()
            .insert(context_id, state);
        return Some(Next::Body);
    }
    let body = if too_large {
        None
    } else {
        host::request_body(context_id, buffered)
    };
    Some(check_body(context_id, shared, state, body.as_deref()))
}

/// Ends the body at request trailers for policies still waiting for it.
pub fn on_request_trailers(context_id: u32, shared: &Shared) -> Option<Next> {
    let state = take_waiting(shared, context_id)?;
    let body = if state.buffered > shared.config.limits.max_body_bytes() {
        None
    } else {
        host::request_body(context_id, state.buffered)
    };
    Some(check_body(context_id, shared, state, body.as_deref()))
}

/// Removes the state of a request whose policies wait for the body. The
/// state is out of the map while host calls run, so that no callback the host
/// makes meanwhile finds it borrowed.
fn take_waiting(shared: &Shared, context_id: u32) -> Option<RequestState> {
    let mut requests = shared.limits.requests.borrow_mut();
    if !requests.get(&context_id)?.limits.waits_for_body() {
        return None;
    }
    requests.remove(&context_id)
}

fn check_body(
    context_id: u32,
    shared: &Shared,
    mut state: RequestState,
    body: Option<&[u8]>,
) -> Next {
    let mut report = Report::default();
    let inputs = KeyInputs {
        headers: &state.headers,
        client_ip: state.client,
        claims: state.claims.as_deref(),
        body,
    };
    let verdict = state.limits.on_request_body(
        &shared.config.limits,
        &inputs,
        &shared.limits.context(),
        &mut report,
    );
    publish(shared, report, Some(&state));
    let next = apply(context_id, shared, &state.exchange, verdict);
    if next != Next::Rejected {
        shared
            .limits
            .requests
            .borrow_mut()
            .insert(context_id, state);
    }
    next
}

fn apply(context_id: u32, shared: &Shared, exchange: &Exchange, verdict: LimitVerdict) -> Next {
    match verdict {
        LimitVerdict::Continue => Next::Continue,
        LimitVerdict::NeedBody => Next::Body,
        LimitVerdict::Reject(response) => {
            let headers: Vec<(&str, &str)> = response
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            crate::headers::send_response(
                context_id,
                &shared.config,
                exchange,
                response.status,
                &headers,
                &response.body,
            );
            Next::Rejected
        }
    }
}

/// Counts a failure status and returns the `RateLimit` headers to add to
/// the response. The request is settled then, so it is forgotten.
pub fn on_response_headers(
    context_id: u32,
    shared: &Shared,
    status: Option<u32>,
) -> Vec<(String, String)> {
    let runtime = &shared.limits;
    let Some(mut state) = runtime.requests.borrow_mut().remove(&context_id) else {
        return Vec::new();
    };
    let mut report = Report::default();
    let headers = state.limits.on_response_headers(
        &shared.config.limits,
        status,
        &runtime.context(),
        &mut report,
    );
    publish(shared, report, Some(&state));
    headers
}

/// Counts a stream that ended without response headers and lowers its
/// in-flight counts, then removes the request's state.
pub fn on_log(context_id: u32, shared: &Shared) {
    let runtime = &shared.limits;
    let Some(mut state) = runtime.requests.borrow_mut().remove(&context_id) else {
        return;
    };
    let response_code = host::property(&["response", "code"])
        .and_then(|raw| parse_property_integer(&raw))
        .and_then(|code| u32::try_from(code).ok());
    let mut report = Report::default();
    state.limits.on_log(
        &shared.config.limits,
        response_code,
        &runtime.context(),
        &mut report,
    );
    publish(shared, report, Some(&state));
}

/// Forgets a request, for streams that end without `on_log`, and lowers the
/// in-flight counts it still holds.
pub fn forget(shared: &Shared, context_id: u32) {
    let runtime = &shared.limits;
    let Some(mut state) = runtime.requests.borrow_mut().remove(&context_id) else {
        return;
    };
    let mut report = Report::default();
    state
        .limits
        .release(&shared.config.limits, &runtime.context(), &mut report);
    publish(shared, report, Some(&state));
}

/// Sweeps a batch of buckets: drops expired entries and reports lockouts
/// that ended.
pub fn on_tick(shared: &Shared) {
    let limits = &shared.config.limits;
    if !limits.enabled() {
        return;
    }
    let runtime = &shared.limits;
    let report = limits.reclaim(
        &runtime.context(),
        &mut runtime.cursor.borrow_mut(),
        RECLAIM_BATCH,
    );
    publish(shared, report, None);
}

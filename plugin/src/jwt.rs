//! Token validation in the proxy: remote JWKS fetches with http calls and
//! shared data, the verified-token cache in shared data, paused requests
//! that wait for keys, and applying decisions of `portcullis_core::jwt`.

use crate::host;
use crate::stream::Shared;
use portcullis_core::event::{EventAction, SecurityEvent};
use portcullis_core::headers::Exchange;
use portcullis_core::http::RequestInfo;
use portcullis_core::jwt::cache::{
    decode_slot, encode_slot, shared_slot_key, token_digest, LocalCache, Reach, Verified,
    VerifiedStore,
};
use portcullis_core::jwt::check::{evaluate, Decision, KeyLookup, KeyState, Request, RequestEdit};
use portcullis_core::jwt::keys::{parse_document, Key};
use portcullis_core::jwt::policy::{JwtPolicy, KeySource, RemoteJwks};
use portcullis_core::jwt::remote::{lease_key, record_key, Lease, Record};
use portcullis_core::jwt::response::Rejection;
use portcullis_core::jwt::token::ParsedToken;
use portcullis_core::pipeline::{
    rejection_kind, reports_acceptance, token_accepted_event, token_rejected_event, RejectionKind,
    TOKEN_ACCEPTED_LEVEL,
};
use proxy_wasm::types::{Action, BufferType, MapType};
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

/// Tick period while any provider has a remote JWKS.
const TICK_PERIOD: Duration = Duration::from_millis(500);
/// Extra time a paused request waits past the fetch timeout for keys.
const WAIT_MARGIN_MS: u64 = 1_000;

/// Counters of token validation.
#[derive(Debug, Clone, Copy)]
enum JwtMetric {
    Accepted,
    Rejected,
    Missing,
    Forbidden,
    CacheHit,
    Waited,
    JwksFetched,
    JwksFetchFailed,
}

impl JwtMetric {
    const ALL: [JwtMetric; 8] = [
        JwtMetric::Accepted,
        JwtMetric::Rejected,
        JwtMetric::Missing,
        JwtMetric::Forbidden,
        JwtMetric::CacheHit,
        JwtMetric::Waited,
        JwtMetric::JwksFetched,
        JwtMetric::JwksFetchFailed,
    ];

    const fn name(self) -> &'static str {
        match self {
            JwtMetric::Accepted => "portcullis.jwt.accepted",
            JwtMetric::Rejected => "portcullis.jwt.rejected",
            JwtMetric::Missing => "portcullis.jwt.missing",
            JwtMetric::Forbidden => "portcullis.jwt.forbidden",
            JwtMetric::CacheHit => "portcullis.jwt.cache_hit",
            JwtMetric::Waited => "portcullis.jwt.waited",
            JwtMetric::JwksFetched => "portcullis.jwt.jwks_fetched",
            JwtMetric::JwksFetchFailed => "portcullis.jwt.jwks_fetch_failed",
        }
    }
}

/// The keys a VM holds for one provider.
#[derive(Default)]
struct ProviderKeys {
    /// Keys in use; for a local JWKS they never change.
    keys: Option<Vec<Key>>,
    /// `fetched_ms` of the shared record the keys came from.
    loaded_ms: Option<u64>,
    /// A fetch failed while no keys were loaded.
    failed: bool,
    /// An http call of this VM is in flight.
    in_flight: bool,
}

/// A request paused until its provider's keys arrive.
struct PendingRequest {
    headers: Vec<(String, Vec<u8>)>,
    exchange: Exchange,
    end_of_stream: bool,
    deadline_ms: u64,
    /// Whether the request, rejected with out-of-date keys on a host
    /// without ticks, waits for the refresh it started before it is decided
    /// again.
    awaits_refresh: bool,
}

/// Per-VM token validation state, created with each applied configuration.
pub struct JwtRuntime {
    owner: u64,
    metric_ids: Vec<Option<u32>>,
    providers: RefCell<Vec<ProviderKeys>>,
    cache: RefCell<LocalCache>,
    pending: RefCell<BTreeMap<u32, PendingRequest>>,
    /// In-flight JWKS fetches by token: the provider's index, and the
    /// stream that dispatched the fetch, if a stream did.
    calls: RefCell<HashMap<u32, (usize, Option<u32>)>>,
    /// Whether the host delivers ticks, on which a worker loads the keys
    /// another worker fetched.
    ticks: Cell<bool>,
    /// On a host without ticks, a shared queue of this VM's root context. A
    /// request enqueues a value to have the root context start a refresh
    /// that the request does not wait for, because the host would cancel a
    /// fetch that the request dispatched when the request ends.
    wake_queue: Cell<Option<u32>>,
}

impl JwtRuntime {
    /// Creates the state for a policy; local keys are in place at once.
    pub fn new(policy: &JwtPolicy) -> Self {
        let providers = policy
            .providers
            .iter()
            .map(|provider| match &provider.keys {
                KeySource::Local(set) => ProviderKeys {
                    keys: Some(set.keys.clone()),
                    ..ProviderKeys::default()
                },
                KeySource::Remote(_) => ProviderKeys::default(),
            })
            .collect();
        let metric_ids = if policy.enabled() {
            JwtMetric::ALL
                .iter()
                .map(|metric| host::define_counter(metric.name()))
                .collect()
        } else {
            Vec::new()
        };
        JwtRuntime {
            // `RandomState` seeds itself from WASI `random_get`, which gives
            // each worker VM a distinct id for the fetch lease.
            owner: RandomState::new().hash_one(0u8),
            metric_ids,
            providers: RefCell::new(providers),
            cache: RefCell::new(LocalCache::new(policy.cache_entries)),
            pending: RefCell::new(BTreeMap::new()),
            calls: RefCell::new(HashMap::new()),
            ticks: Cell::new(true),
            wake_queue: Cell::new(None),
        }
    }

    fn increment(&self, metric: JwtMetric) {
        if let Some(Some(id)) = self.metric_ids.get(metric as usize) {
            // A failing counter is not worth a log line per request.
            let _ = crate::abi::increment_metric(*id, 1);
        }
    }
}

fn now_ms() -> u64 {
    host::current_time()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

fn remotes(policy: &JwtPolicy) -> impl Iterator<Item = (usize, &str, &RemoteJwks)> {
    policy
        .providers
        .iter()
        .enumerate()
        .filter_map(|(index, provider)| match &provider.keys {
            KeySource::Remote(remote) => Some((index, provider.name.as_str(), remote)),
            KeySource::Local(_) => None,
        })
}

/// Starts ticks and the first fetches after a configuration is applied.
/// Returns whether it set the tick period.
pub fn start(shared: &Shared) -> bool {
    let policy = &shared.config.jwt;
    if remotes(policy).next().is_none() {
        return false;
    }
    if let Err(status) = crate::abi::set_tick_period(TICK_PERIOD) {
        log::error!("portcullis: setting the tick period failed with status {status}, remote JWKS will not refresh");
        shared.jwt.ticks.set(false);
        let name = format!("portcullis.jwt.wake.{:016x}", shared.jwt.owner);
        match crate::abi::register_shared_queue(&name) {
            Ok(id) => shared.jwt.wake_queue.set(Some(id)),
            Err(status) => log::warn!("portcullis: registering shared queue {name} failed with status {status}, refreshes that requests start may be lost"),
        }
    }
    on_tick(shared);
    if !shared.jwt.ticks.get() {
        fetch_without_ticks(shared, None);
    }
    true
}

/// Starts this worker's own fetch of every remote JWKS it has no keys for
/// and is not fetching, on a host without ticks, regardless of the fetch
/// lease. A waiting request needs a fetch whose response reaches this worker,
/// because no tick resumes it when another worker's fetch ends. `origin` is
/// the stream that dispatches, or `None` for the root context.
fn fetch_without_ticks(shared: &Shared, origin: Option<u32>) {
    for (index, name, remote) in remotes(&shared.config.jwt) {
        let (has_keys, in_flight) = {
            let providers = shared.jwt.providers.borrow();
            (providers[index].keys.is_some(), providers[index].in_flight)
        };
        if has_keys || in_flight {
            continue;
        }
        let failures = read_lease(name, remote).map_or(0, |lease| lease.failures);
        dispatch(shared, origin, index, name, remote, failures);
    }
}

/// Loads keys other workers fetched, starts due fetches and settles paused
/// requests.
pub fn on_tick(shared: &Shared) {
    poll(shared, None);
}

/// Does a tick's work when a request woke the root context through the
/// wake queue, after taking every value off it.
pub fn on_queue_ready(shared: &Shared, queue_id: u32) {
    if shared.jwt.wake_queue.get() != Some(queue_id) {
        return;
    }
    while let Ok(Some(_)) = crate::abi::dequeue_shared_queue(queue_id) {}
    poll(shared, None);
}

/// Does the work of a tick. `origin` is the stream that runs it on a host
/// without ticks, which then dispatches the fetches, or `None` for the root
/// context.
fn poll(shared: &Shared, origin: Option<u32>) {
    let policy = &shared.config.jwt;
    let runtime = &shared.jwt;
    let now = now_ms();
    let mut wake = None;
    for (index, name, remote) in remotes(policy) {
        let record =
            read_shared(&record_key(name, remote)).and_then(|(value, _)| Record::decode(&value));
        if let Some(record) = &record {
            load_record(runtime, index, name, record);
        }
        let due = record
            .as_ref()
            .is_none_or(|record| record.refresh_due(remote, now));
        let lease = read_shared(&lease_key(name, remote));
        let parsed = lease.as_ref().and_then(|(value, _)| Lease::decode(value));
        if record.is_none() && parsed.is_some_and(|lease| lease.failures > 0) {
            runtime.providers.borrow_mut()[index].failed = true;
        }
        if !due || runtime.providers.borrow()[index].in_flight {
            continue;
        }
        if parsed.is_some_and(|lease| !lease.expired(now)) {
            continue;
        }
        let has_keys = runtime.providers.borrow()[index].keys.is_some();
        if origin.is_some() && has_keys {
            if let Some(queue) = runtime.wake_queue.get() {
                // The request goes on with the current keys, so the root
                // context takes the lease and fetches.
                wake.get_or_insert(queue);
                continue;
            }
        }
        let failures = parsed.map_or(0, |lease| lease.failures);
        let cas = lease.map_or(host::CAS_CREATE, |(_, cas)| cas);
        let claim = Lease::start(runtime.owner, failures, remote, now);
        if crate::abi::set_shared_data(&lease_key(name, remote), &claim.encode(), cas).is_err() {
            // Another worker took the lease first and fetches for everyone.
            continue;
        }
        dispatch(shared, origin, index, name, remote, failures);
    }
    if let Some(queue) = wake {
        if let Err(status) = crate::abi::enqueue_shared_queue(queue, &[]) {
            log::warn!("portcullis: enqueueing a JWKS refresh failed with status {status}");
        }
    }
    settle_pending(shared, now);
}

fn read_shared(key: &str) -> Option<(Vec<u8>, u32)> {
    match crate::abi::shared_data(key) {
        Ok(Some((value, cas))) if cas != 0 && !value.is_empty() => Some((value, cas)),
        _ => None,
    }
}

/// Reads a provider's fetch lease, if it has a valid one.
fn read_lease(name: &str, remote: &RemoteJwks) -> Option<Lease> {
    read_shared(&lease_key(name, remote)).and_then(|(value, _)| Lease::decode(&value))
}

fn load_record(runtime: &JwtRuntime, index: usize, name: &str, record: &Record) {
    let mut providers = runtime.providers.borrow_mut();
    let state = &mut providers[index];
    if state.loaded_ms == Some(record.fetched_ms) {
        return;
    }
    match parse_document(&record.body) {
        Ok(set) => {
            log::info!(
                "portcullis: provider {name}: loaded {} keys fetched at {} ms ({} skipped)",
                set.keys.len(),
                record.fetched_ms,
                set.skipped.len()
            );
            state.keys = Some(set.keys);
            state.failed = false;
        }
        Err(error) => log::warn!("portcullis: provider {name}: shared JWKS is unusable: {error}"),
    }
    state.loaded_ms = Some(record.fetched_ms);
}

fn dispatch(
    shared: &Shared,
    origin: Option<u32>,
    index: usize,
    name: &str,
    remote: &RemoteJwks,
    failures: u32,
) {
    let headers = vec![
        (":method", "GET"),
        (":path", remote.path.as_str()),
        (":authority", remote.authority.as_str()),
        ("accept", "application/json"),
    ];
    let timeout = Duration::from_millis(remote.timeout_ms);
    match crate::host::dispatch_http_call(&remote.cluster, headers, None, timeout) {
        Ok(token) => {
            shared.jwt.calls.borrow_mut().insert(token, (index, origin));
            let mut providers = shared.jwt.providers.borrow_mut();
            providers[index].in_flight = true;
            if origin.is_some() {
                // On a host without ticks, the stream that dispatched waits
                // for this fetch instead of failing at once: the host would
                // cancel the fetch when the stream ends.
                providers[index].failed = false;
            }
            drop(providers);
            log::debug!(
                "portcullis: provider {name}: fetching JWKS from cluster {}",
                remote.cluster
            );
        }
        Err(status) => {
            log::warn!(
                "portcullis: provider {name}: JWKS http call to cluster {} failed with status {status:?}",
                remote.cluster
            );
            fetch_failed(
                shared,
                index,
                name,
                remote,
                failures,
                &format!("http call failed with status {status:?}"),
            );
        }
    }
}

/// Handles the answer to a JWKS fetch. Returns false when the call is not
/// one of this module's.
pub fn on_http_call_response(
    shared: &Shared,
    token: u32,
    num_headers: usize,
    body_size: usize,
) -> bool {
    let Some((index, _)) = shared.jwt.calls.borrow_mut().remove(&token) else {
        return false;
    };
    shared.jwt.providers.borrow_mut()[index].in_flight = false;
    let provider = &shared.config.jwt.providers[index];
    let KeySource::Remote(remote) = &provider.keys else {
        return true;
    };
    let name = provider.name.as_str();
    let failures = read_lease(name, remote).map_or(0, |lease| lease.failures);
    let result = fetched_body(num_headers, body_size).and_then(|body| {
        parse_document(&body)
            .map(|set| (body, set))
            .map_err(|error| format!("the JWKS is unusable: {error}"))
    });
    let now = now_ms();
    match result {
        Ok((body, set)) => {
            let record = Record {
                fetched_ms: now,
                body,
            };
            if let Err(status) = host::overwrite_shared(&record_key(name, remote), &record.encode())
            {
                log::warn!("portcullis: provider {name}: storing the JWKS in shared data failed with status {status}");
            }
            let lease = Lease::succeeded(shared.jwt.owner, now);
            if let Err(status) = host::overwrite_shared(&lease_key(name, remote), &lease.encode()) {
                log::warn!("portcullis: provider {name}: releasing the fetch lease failed with status {status}");
            }
            shared.jwt.increment(JwtMetric::JwksFetched);
            emit_jwks_event(shared, name, EventAction::JwksFetched, None);
            {
                let mut providers = shared.jwt.providers.borrow_mut();
                providers[index].keys = Some(set.keys);
                providers[index].loaded_ms = Some(now);
                providers[index].failed = false;
            }
            log::info!(
                "portcullis: provider {name}: JWKS fetched from cluster {}",
                remote.cluster
            );
        }
        Err(reason) => fetch_failed(shared, index, name, remote, failures, &reason),
    }
    settle_pending(shared, now);
    true
}

fn fetched_body(num_headers: usize, body_size: usize) -> Result<String, String> {
    if num_headers == 0 {
        return Err("the call failed or timed out".to_string());
    }
    let status =
        crate::host::header_value(MapType::HttpCallResponseHeaders, ":status").unwrap_or_default();
    if status != b"200" {
        return Err(format!(
            "the answer has status {}",
            String::from_utf8_lossy(&status)
        ));
    }
    let body = crate::abi::buffer(BufferType::HttpCallResponseBody, 0, body_size)
        .map_err(|status| format!("reading the body failed with status {status}"))?
        .unwrap_or_default();
    String::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())
}

fn fetch_failed(
    shared: &Shared,
    index: usize,
    name: &str,
    remote: &RemoteJwks,
    failures: u32,
    reason: &str,
) {
    let now = now_ms();
    let lease = Lease::failed(shared.jwt.owner, failures, remote, now);
    if let Err(status) = host::overwrite_shared(&lease_key(name, remote), &lease.encode()) {
        log::warn!(
            "portcullis: provider {name}: recording the failed fetch failed with status {status}"
        );
    }
    shared.jwt.increment(JwtMetric::JwksFetchFailed);
    {
        let mut providers = shared.jwt.providers.borrow_mut();
        if providers[index].keys.is_none() {
            providers[index].failed = true;
        }
    }
    log::warn!(
        "portcullis: provider {name}: JWKS fetch failed ({reason}), failure {} in a row, next attempt in {} ms",
        lease.failures,
        lease.until_ms - now
    );
    emit_jwks_event(shared, name, EventAction::JwksFetchFailed, Some(reason));
}

fn emit_jwks_event(shared: &Shared, provider: &str, action: EventAction, reason: Option<&str>) {
    let event = SecurityEvent::token(
        host::current_time(),
        action,
        Some(format!("jwt.{provider}")),
        reason.map(str::to_string),
    )
    .with_observer(shared.plugin_name.as_deref());
    write_event(shared, &event);
}

fn write_event(shared: &Shared, event: &SecurityEvent) {
    crate::events::write(shared, event.action.name(), event.level, || event.to_json());
}

/// Keys of every provider as this VM has them.
struct Lookup<'a> {
    policy: &'a JwtPolicy,
    providers: std::cell::Ref<'a, Vec<ProviderKeys>>,
    may_wait: bool,
}

impl KeyLookup for Lookup<'_> {
    fn keys(&self, index: usize) -> KeyState<'_> {
        let state = &self.providers[index];
        if let Some(keys) = &state.keys {
            return KeyState::Ready(keys);
        }
        let fail_at_once = match &self.policy.providers[index].keys {
            KeySource::Remote(remote) => remote.fail_before_keys,
            KeySource::Local(_) => true,
        };
        if state.failed || fail_at_once || !self.may_wait {
            KeyState::Unavailable
        } else {
            KeyState::Pending
        }
    }
}

/// The per-VM cache backed by shared-data slots.
struct Store<'a> {
    runtime: &'a JwtRuntime,
    now: u64,
    hit: bool,
    /// The last token whose slot digest was computed, with that digest: a
    /// miss computes it to read the slot and the store after the
    /// verification needs it again.
    digest: Option<(Vec<u8>, [u8; 32])>,
}

impl Store<'_> {
    fn digest(&mut self, token: &[u8]) -> [u8; 32] {
        if let Some((last, digest)) = &self.digest {
            if last.as_slice() == token {
                return *digest;
            }
        }
        let digest = token_digest(token);
        self.digest = Some((token.to_vec(), digest));
        digest
    }
}

impl VerifiedStore for Store<'_> {
    fn get(&mut self, token: &[u8], reach: Reach) -> Option<Verified> {
        if let Some(hit) = self.runtime.cache.borrow().get(token, self.now) {
            return Some(hit);
        }
        if reach == Reach::Local {
            return None;
        }
        let digest = self.digest(token);
        let (value, _) = read_shared(&shared_slot_key(&digest))?;
        let hit = decode_slot(&value, &digest).filter(|hit| hit.exp >= self.now)?;
        self.runtime.cache.borrow_mut().put(token, hit);
        Some(hit)
    }

    fn parsed(&mut self, token: &[u8]) -> Option<(Verified, Rc<ParsedToken>)> {
        self.runtime.cache.borrow().parsed(token, self.now)
    }

    fn keep_parsed(&mut self, token: &[u8], parsed: Rc<ParsedToken>) {
        self.runtime.cache.borrow_mut().keep_parsed(token, parsed);
    }

    fn record_hit(&mut self) {
        self.hit = true;
    }

    fn put(&mut self, token: &[u8], verified: Verified, reach: Reach) {
        self.runtime.cache.borrow_mut().put(token, verified);
        if reach == Reach::Local {
            return;
        }
        let digest = self.digest(token);
        // Slots are a cache: a plain write replaces whatever token had the
        // slot, and a lost race only costs a later verification.
        let _ = host::overwrite_shared(&shared_slot_key(&digest), &encode_slot(&digest, &verified));
    }
}

fn decide(shared: &Shared, headers: &[(String, Vec<u8>)], may_wait: bool) -> (Decision, bool) {
    let now = now_ms();
    let request = Request {
        headers,
        now: now / 1000,
    };
    let lookup = Lookup {
        policy: &shared.config.jwt,
        providers: shared.jwt.providers.borrow(),
        may_wait,
    };
    let mut store = Store {
        runtime: &shared.jwt,
        now: now / 1000,
        hit: false,
        digest: None,
    };
    let decision = evaluate(&shared.config.jwt, &request, &lookup, &mut store);
    (decision, store.hit)
}

/// Checks the request's tokens. Returns the claims of the accepted token, if
/// any, to go on with the request, or the action to return from
/// `on_http_request_headers` when the request was rejected or waits for keys.
pub fn on_request_headers(
    context_id: u32,
    shared: &Shared,
    headers: &[(String, Vec<u8>)],
    exchange: &Exchange,
    end_of_stream: bool,
) -> Result<Option<Rc<Map<String, Value>>>, Action> {
    if !shared.config.jwt.enabled() {
        return Ok(None);
    }
    let ticks = shared.jwt.ticks.get();
    if !ticks {
        // Requests take the place of ticks: they load keys another worker
        // stored, and start refreshes and retries when they are due.
        poll(shared, Some(context_id));
    }
    let (mut decision, mut hit) = decide(shared, headers, true);
    if decision == Decision::Wait && !ticks {
        // No tick would resume the request when another worker's fetch
        // ends, so it waits for a fetch of this worker.
        fetch_without_ticks(shared, Some(context_id));
        (decision, hit) = decide(shared, headers, true);
    }
    // Without ticks nothing refreshes keys before they go out of date, so a
    // token they reject may be signed with a key the JWKS has gained since.
    let awaits_refresh = !ticks
        && matches!(decision, Decision::Reject(_))
        && refresh_out_of_date(shared, context_id);
    if hit {
        shared.jwt.increment(JwtMetric::CacheHit);
    }
    if decision == Decision::Wait || awaits_refresh {
        shared.jwt.increment(JwtMetric::Waited);
        let deadline_ms = now_ms() + max_wait_ms(&shared.config.jwt);
        shared.jwt.pending.borrow_mut().insert(
            context_id,
            PendingRequest {
                headers: headers.to_vec(),
                exchange: exchange.clone(),
                end_of_stream,
                deadline_ms,
                awaits_refresh,
            },
        );
        log::debug!("portcullis: context {context_id}: waiting for JWKS");
        return Err(Action::Pause);
    }
    apply(context_id, shared, headers, exchange, decision)
}

fn max_wait_ms(policy: &JwtPolicy) -> u64 {
    remotes(policy)
        .map(|(_, _, remote)| remote.timeout_ms)
        .max()
        .unwrap_or(0)
        + WAIT_MARGIN_MS
}

/// Forgets a request that ended while it waited. Envoy cancels the http
/// calls of a stream that ends, so a fetch that the stream dispatched no
/// longer counts as in flight, and the next request that needs the keys
/// starts another.
pub fn forget(shared: &Shared, context_id: u32) {
    shared.jwt.pending.borrow_mut().remove(&context_id);
    let mut calls = shared.jwt.calls.borrow_mut();
    let mut providers = shared.jwt.providers.borrow_mut();
    calls.retain(|_, (index, origin)| {
        if *origin != Some(context_id) {
            return true;
        }
        if let Some(provider) = providers.get_mut(*index) {
            provider.in_flight = false;
        }
        false
    });
}

/// Starts a fetch from the request `context_id` of every remote JWKS whose
/// keys are older than `cache_duration`, unless a fetch is in flight or the
/// fetch lease is held. Returns whether any out-of-date JWKS is being
/// fetched by this VM now.
fn refresh_out_of_date(shared: &Shared, context_id: u32) -> bool {
    let now = now_ms();
    let mut refreshing = false;
    for (index, name, remote) in remotes(&shared.config.jwt) {
        let (out_of_date, in_flight) = {
            let providers = shared.jwt.providers.borrow();
            let provider = &providers[index];
            let out_of_date = provider.keys.is_some()
                && provider
                    .loaded_ms
                    .is_some_and(|loaded| now >= loaded.saturating_add(remote.cache_duration_ms));
            (out_of_date, provider.in_flight)
        };
        if !out_of_date {
            continue;
        }
        // The lease keeps the backoff after a failed fetch, so that rejected
        // requests cannot make a fetch each while the endpoint fails.
        let lease = read_lease(name, remote);
        if !in_flight && lease.is_none_or(|lease| lease.expired(now)) {
            let failures = lease.map_or(0, |lease| lease.failures);
            dispatch(shared, Some(context_id), index, name, remote, failures);
        }
        refreshing |= shared.jwt.providers.borrow()[index].in_flight;
    }
    refreshing
}

/// Tells whether any remote JWKS is being fetched by this VM.
fn any_in_flight(shared: &Shared) -> bool {
    shared
        .jwt
        .providers
        .borrow()
        .iter()
        .any(|provider| provider.in_flight)
}

/// Decides paused requests whose keys arrived or whose wait ran out.
fn settle_pending(shared: &Shared, now: u64) {
    let ids: Vec<u32> = shared.jwt.pending.borrow().keys().copied().collect();
    for context_id in ids {
        let Some(pending) = shared.jwt.pending.borrow_mut().remove(&context_id) else {
            continue;
        };
        if pending.awaits_refresh && now < pending.deadline_ms && any_in_flight(shared) {
            shared.jwt.pending.borrow_mut().insert(context_id, pending);
            continue;
        }
        let (decision, hit) = decide(shared, &pending.headers, now < pending.deadline_ms);
        if decision == Decision::Wait {
            shared.jwt.pending.borrow_mut().insert(context_id, pending);
            continue;
        }
        if hit {
            shared.jwt.increment(JwtMetric::CacheHit);
        }
        if let Err(status) = crate::abi::set_effective_context(context_id) {
            log::warn!("portcullis: context {context_id}: switching to the paused request failed with status {status}");
            continue;
        }
        let Ok(claims) = apply(
            context_id,
            shared,
            &pending.headers,
            &pending.exchange,
            decision,
        ) else {
            continue;
        };
        let next = crate::limits::on_request_headers(
            context_id,
            shared,
            &pending.headers,
            &pending.exchange,
            claims,
            pending.end_of_stream,
        );
        if next == crate::limits::Next::Rejected {
            continue;
        }
        if let Err(status) = crate::abi::resume_request() {
            log::warn!("portcullis: context {context_id}: resuming the request failed with status {status}");
        }
    }
}

/// Applies a decision to the current request: edits and an event for an
/// accepted token, or the 401/403 response.
fn apply(
    context_id: u32,
    shared: &Shared,
    headers: &[(String, Vec<u8>)],
    exchange: &Exchange,
    decision: Decision,
) -> Result<Option<Rc<Map<String, Value>>>, Action> {
    match decision {
        Decision::Allow {
            edits,
            accepted,
            checked,
        } => {
            for edit in &edits {
                if !apply_edit(context_id, edit) {
                    crate::headers::reject_unchecked(
                        context_id,
                        &shared.config,
                        exchange,
                        "a client copy of a forwarded token header could not be removed",
                    );
                    return Err(Action::Pause);
                }
            }
            if reports_acceptance(&accepted, checked) {
                shared.jwt.increment(JwtMetric::Accepted);
                // Building the event reads the client address from the host,
                // so it is built only when the log or the export takes it.
                crate::events::write(
                    shared,
                    EventAction::TokenAccepted.name(),
                    TOKEN_ACCEPTED_LEVEL,
                    || {
                        let event = token_accepted_event(host::current_time(), &accepted);
                        with_request(shared, headers, exchange, event).to_json()
                    },
                );
            }
            Ok(accepted.into_iter().next().map(|token| token.claims))
        }
        Decision::Reject(rejection) => {
            reject(context_id, shared, headers, exchange, &rejection);
            Err(Action::Pause)
        }
        // `decide` callers handle waiting before applying.
        Decision::Wait => Err(Action::Pause),
    }
}

/// Applies one edit. Returns false when a header could not be removed,
/// because a client's copy of a header the module forwards would then reach
/// the upstream.
fn apply_edit(context_id: u32, edit: &RequestEdit) -> bool {
    match edit {
        RequestEdit::Remove(name) => {
            return host::remove_header(context_id, MapType::HttpRequestHeaders, name);
        }
        RequestEdit::Add(name, value) => {
            host::add_header(context_id, MapType::HttpRequestHeaders, name, value)
        }
        RequestEdit::SetPath(path) => {
            host::replace_header(context_id, MapType::HttpRequestHeaders, ":path", path)
        }
    }
    true
}

fn reject(
    context_id: u32,
    shared: &Shared,
    headers: &[(String, Vec<u8>)],
    exchange: &Exchange,
    rejection: &Rejection,
) {
    let metric = match rejection_kind(rejection) {
        RejectionKind::Missing => JwtMetric::Missing,
        RejectionKind::Forbidden => JwtMetric::Forbidden,
        RejectionKind::Invalid => JwtMetric::Rejected,
    };
    shared.jwt.increment(metric);
    let event = token_rejected_event(host::current_time(), rejection);
    let event = with_request(shared, headers, exchange, event);
    write_event(shared, &event);
    let response_headers: Vec<(&str, &str)> = rejection
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    crate::headers::send_response(
        context_id,
        &shared.config,
        exchange,
        rejection.status,
        &response_headers,
        &rejection.body,
    );
}

/// Adds the request's method, path, client and the plugin name to a token
/// event.
fn with_request(
    shared: &Shared,
    headers: &[(String, Vec<u8>)],
    exchange: &Exchange,
    event: SecurityEvent,
) -> SecurityEvent {
    event
        .with_request(&RequestInfo::from_headers(headers))
        .with_source(host::event_source(exchange.client))
        .with_observer(shared.plugin_name.as_deref())
}

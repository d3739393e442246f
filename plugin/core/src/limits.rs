//! Per-key attempt counting: brute-force lockouts and rate limits that hold
//! across every worker of the proxy.
//!
//! Each worker runs its own VM, so counters live in shared data. A policy's
//! keys are spread over a fixed number of buckets, the shared-data keys
//! `portcullis.limits.<policy>.<bucket>`, each holding up to
//! [`entry::WAYS`] keys (a set-associative table). Memory is therefore
//! bounded by `max_keys` whatever the number of distinct keys: a new key
//! takes a free way of its bucket, else an expired entry, else the unlocked
//! entry seen longest ago. An active lockout is never evicted; when all ways
//! of a bucket hold one, the new key is not tracked and the policy's
//! `on_store_failure` choice applies. Evicting an entry forgets its counts
//! and its escalation level.
//!
//! A whole bucket is one value, read and written with compare-and-swap (see
//! [`store`]), so an update of one key never loses a concurrent update of
//! another. Time comes from the host clock, and each entry clamps it to the
//! latest time it has seen, so a clock that moves backwards neither ends a
//! lockout nor counts a window twice. Expired entries are dropped and ended
//! lockouts reported by [`Limits::reclaim`], which the adapter runs on each
//! tick.
//!
//! A failure-counting policy learns of a failure only from the response, so
//! it also counts the requests of a key still in flight. A request is let
//! through while failures in the window plus requests in flight stay under
//! the limit, and the same compare-and-swap update raises the in-flight
//! count. Settling the request (its response, [`RequestLimits::on_log`],
//! [`RequestLimits::release`], or a rejection by a later policy) lowers it.
//! Counts last raised [`policy::IN_FLIGHT_MAX_AGE_MS`] or more ago read as
//! 0, so a worker that stopped mid-request holds a key for that long at
//! most.
//!
//! ```json
//! {"limits": {
//!   "allowlist": ["10.0.0.0/8"],
//!   "policies": [{
//!     "name": "login",
//!     "match": {"path": {"exact": "/login"}, "methods": ["POST"]},
//!     "key": [{"address": {}}, {"body_field": "username", "lowercase": true}],
//!     "count": "failures",
//!     "failure_statuses": [401, 403],
//!     "limit": 5,
//!     "window_seconds": 300,
//!     "lockout_seconds": 1800,
//!     "escalation": {"factor": 2, "max_seconds": 86400, "forget_after_seconds": 86400}
//!   }]
//! }}
//! ```

pub mod entry;
pub mod event;
pub mod key;
pub mod policy;
pub(crate) mod section;
pub mod store;

#[cfg(test)]
mod tests;

use crate::error::Error;
use entry::Bucket;
use event::{LimitAction, LimitEvent, LimitMetric};
use key::{Cidr, KeyHash, KeyInputs};
use policy::{Decision, Mode, Policy, Quota, StoreFailure, Transition, IN_FLIGHT_MAX_AGE_MS};
use section::{compile_allowlist, LimitsSection, MAX_BODY_BYTES_LIMIT, MAX_POLICIES};
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};
use store::{Anchor, SharedStore, StoreError, Update};

/// The compiled `limits` section.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    policies: Vec<Policy>,
    allowlist: Vec<Cidr>,
    max_body_bytes: usize,
}

/// Shared data and time for one limits operation.
pub struct Context<'a, S: SharedStore + ?Sized> {
    /// The shared store.
    pub store: &'a S,
    /// This worker's cached anchor token.
    pub anchor: &'a Anchor,
    /// Secret mixed into every key hash, shared by all workers.
    pub salt: &'a [u8],
    /// Host time.
    pub now: SystemTime,
}

impl<S: SharedStore + ?Sized> Context<'_, S> {
    fn now_ms(&self) -> u64 {
        self.now
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// Events and metric increments produced by a limits operation, for the
/// adapter to log and count.
#[derive(Debug, Default)]
pub struct Report {
    /// Events, in order.
    pub events: Vec<LimitEvent>,
    /// Counters to increment by one each.
    pub metrics: Vec<LimitMetric>,
}

/// A local response that rejects a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitResponse {
    /// HTTP status code.
    pub status: u32,
    /// Headers, including `Retry-After` and the `RateLimit` fields.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// What the adapter does with a request after a limits check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitVerdict {
    /// Let the request through.
    Continue,
    /// A policy's key is read from the body: buffer it and call
    /// [`RequestLimits::on_request_body`] once it is complete.
    NeedBody,
    /// Send this response and stop the request.
    Reject(LimitResponse),
}

impl Limits {
    /// Checks and compiles the `limits` section.
    pub(crate) fn compile(section: &LimitsSection) -> Result<Self, Error> {
        if section.policies.len() > MAX_POLICIES {
            return Err(Error::invalid(
                "limits.policies",
                format!(
                    "at most {MAX_POLICIES} policies are allowed, got {}",
                    section.policies.len()
                ),
            ));
        }
        let mut policies: Vec<Policy> = Vec::new();
        for (index, policy) in section.policies.iter().enumerate() {
            let path = format!("limits.policies[{index}]");
            let compiled = policy.0.compile(&path)?;
            if policies.iter().any(|other| other.name == compiled.name) {
                return Err(Error::invalid(
                    format!("{path}.name"),
                    format!("duplicate policy name {:?}", compiled.name),
                ));
            }
            policies.push(compiled);
        }
        if section.max_body_bytes > MAX_BODY_BYTES_LIMIT {
            return Err(Error::invalid(
                "limits.max_body_bytes",
                format!(
                    "must be at most {MAX_BODY_BYTES_LIMIT}, got {}",
                    section.max_body_bytes
                ),
            ));
        }
        Ok(Limits {
            policies,
            allowlist: compile_allowlist(&section.allowlist)?,
            max_body_bytes: section.max_body_bytes as usize,
        })
    }

    /// The compiled policies, in configuration order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// Tells whether any policy is configured.
    pub fn enabled(&self) -> bool {
        !self.policies.is_empty()
    }

    /// Largest body buffered to read a key from; a larger body leaves the
    /// key's body part missing.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Tells whether an address is on the allowlist.
    pub fn is_allowlisted(&self, ip: Option<IpAddr>) -> bool {
        ip.is_some_and(|ip| self.allowlist.iter().any(|cidr| cidr.contains(ip)))
    }

    /// Starts the limits of one request. `raw_path` is the `:path` as sent.
    /// A policy applies when it matches any route the path can mean (see
    /// [`crate::http::route_paths`]).
    pub fn start_request(
        &self,
        method: &str,
        raw_path: &[u8],
        client_ip: Option<IpAddr>,
    ) -> RequestLimits {
        let matched = if self.is_allowlisted(client_ip) {
            Vec::new()
        } else {
            let routes = crate::http::route_paths(raw_path);
            (0..self.policies.len())
                .filter(|&index| {
                    routes
                        .iter()
                        .any(|route| self.policies[index].matches(method, route))
                })
                .collect()
        };
        RequestLimits {
            matched,
            ..RequestLimits::default()
        }
    }

    /// Sweeps up to `batch` buckets of every policy, starting at `cursor`
    /// (one position per policy, advanced in place): reports lockouts that
    /// ended and drops expired entries. Buckets never written are not
    /// created.
    pub fn reclaim<S: SharedStore + ?Sized>(
        &self,
        context: &Context<'_, S>,
        cursor: &mut Vec<u32>,
        batch: u32,
    ) -> Report {
        cursor.resize(self.policies.len(), 0);
        let mut report = Report::default();
        let now_ms = context.now_ms();
        for (policy, position) in self.policies.iter().zip(cursor.iter_mut()) {
            for _ in 0..batch.min(policy.buckets) {
                let index = *position % policy.buckets;
                *position = (index + 1) % policy.buckets;
                let result = store::update(
                    context.store,
                    context.anchor,
                    &policy.bucket_key(index),
                    |raw| {
                        let Some(raw) = raw else {
                            return Ok(Update {
                                value: None,
                                output: Vec::new(),
                            });
                        };
                        let step = policy.reclaim(&Bucket::decode(raw), now_ms);
                        Ok(Update {
                            value: step.bucket.map(|bucket| bucket.encode()),
                            output: step.transitions,
                        })
                    },
                );
                match result {
                    Ok(transitions) => {
                        report_transitions(policy, &transitions, context.now, &mut report)
                    }
                    Err(error) => {
                        let mut event = LimitEvent::new(
                            context.now,
                            LimitAction::LimitStoreFailed,
                            &policy.name,
                            None,
                        );
                        event.error_message = Some(format!("reclaiming bucket {index}: {error}"));
                        report.events.push(event);
                        report.metrics.push(LimitMetric::StoreFailed);
                    }
                }
            }
        }
        report
    }
}

/// A failure-counting policy that let a request through and counts its
/// response.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    policy: usize,
    key: KeyHash,
    /// Whether the check raised the key's in-flight count, which settling
    /// the request lowers again.
    in_flight: bool,
}

/// A `RateLimit` item for the forwarded response.
#[derive(Debug, Clone, Copy)]
struct QuotaItem {
    policy: usize,
    quota: Quota,
}

/// The limits state of one request.
#[derive(Debug, Clone, Default)]
pub struct RequestLimits {
    /// Policies that match the request, in configuration order.
    matched: Vec<usize>,
    /// Matched policies whose key waits for the body.
    waiting_for_body: Vec<usize>,
    tracked: Vec<Tracked>,
    quotas: Vec<QuotaItem>,
    /// Set once the response status was seen or the request was rejected,
    /// so that a stream is counted at most once.
    settled: bool,
}

impl RequestLimits {
    /// Tells whether any policy applies to the request.
    pub fn is_active(&self) -> bool {
        !self.matched.is_empty()
    }

    /// Checks the policies whose key needs no body; returns
    /// [`LimitVerdict::NeedBody`] when others wait for the body.
    pub fn on_request_headers<S: SharedStore + ?Sized>(
        &mut self,
        limits: &Limits,
        inputs: &KeyInputs<'_>,
        context: &Context<'_, S>,
        report: &mut Report,
    ) -> LimitVerdict {
        let (body, now): (Vec<usize>, Vec<usize>) = self
            .matched
            .iter()
            .partition(|&&index| limits.policies[index].key.needs_body());
        self.waiting_for_body = body;
        let verdict = self.check(limits, &now, inputs, context, report);
        if verdict == LimitVerdict::Continue && !self.waiting_for_body.is_empty() {
            return LimitVerdict::NeedBody;
        }
        verdict
    }

    /// Tells whether a check waits for the body.
    pub fn waits_for_body(&self) -> bool {
        !self.waiting_for_body.is_empty()
    }

    /// Checks the policies that waited for the body. `inputs.body` is the
    /// complete body, or `None` when it was larger than
    /// [`Limits::max_body_bytes`].
    pub fn on_request_body<S: SharedStore + ?Sized>(
        &mut self,
        limits: &Limits,
        inputs: &KeyInputs<'_>,
        context: &Context<'_, S>,
        report: &mut Report,
    ) -> LimitVerdict {
        let waiting = std::mem::take(&mut self.waiting_for_body);
        self.check(limits, &waiting, inputs, context, report)
    }

    fn check<S: SharedStore + ?Sized>(
        &mut self,
        limits: &Limits,
        policies: &[usize],
        inputs: &KeyInputs<'_>,
        context: &Context<'_, S>,
        report: &mut Report,
    ) -> LimitVerdict {
        let now_ms = context.now_ms();
        for &index in policies {
            let policy = &limits.policies[index];
            let Some(key) = policy.key.derive(context.salt, &policy.name, inputs) else {
                continue;
            };
            let result = store::update(
                context.store,
                context.anchor,
                &policy.bucket_key(policy.bucket_of(&key)),
                |raw| {
                    let bucket = raw.map(Bucket::decode).unwrap_or_default();
                    let step = policy
                        .check(&bucket, &key, now_ms)
                        .map_err(|_| StoreError::BucketFull)?;
                    Ok(Update {
                        value: step.bucket.map(|bucket| bucket.encode()),
                        output: (step.output, step.transitions),
                    })
                },
            );
            let (decision, transitions) = match result {
                Ok(done) => done,
                Err(error) => {
                    let reject =
                        store_failure(policy, key, &error, context.now, Phase::Request, report);
                    if reject {
                        self.reject(limits, context, report);
                        return LimitVerdict::Reject(fail_closed_response(policy));
                    }
                    continue;
                }
            };
            report_transitions(policy, &transitions, context.now, report);
            match decision {
                Decision::Allow {
                    remaining,
                    reset_seconds,
                    in_flight,
                } => {
                    report.metrics.push(LimitMetric::Allowed);
                    if policy.counts_failures() {
                        self.tracked.push(Tracked {
                            policy: index,
                            key,
                            in_flight,
                        });
                    }
                    if policy.response_headers && policy.mode == Mode::Block {
                        self.quotas.push(QuotaItem {
                            policy: index,
                            quota: Quota {
                                remaining,
                                reset_seconds,
                            },
                        });
                    }
                }
                Decision::Reject {
                    retry_after_seconds,
                    ..
                }
                | Decision::Busy {
                    retry_after_seconds,
                    ..
                } => {
                    let mut event = LimitEvent::new(
                        context.now,
                        LimitAction::RateLimited,
                        &policy.name,
                        Some(key),
                    );
                    event.retry_after_seconds = Some(retry_after_seconds);
                    if let Decision::Busy { in_flight, .. } = decision {
                        event.in_flight = Some(in_flight);
                    }
                    if policy.mode == Mode::Monitor {
                        event.monitor = true;
                        event.success = true;
                        report.events.push(event);
                        report.metrics.push(LimitMetric::Flagged);
                        if policy.counts_failures() {
                            // Let through without raising the in-flight count,
                            // as block mode would have rejected it.
                            self.tracked.push(Tracked {
                                policy: index,
                                key,
                                in_flight: false,
                            });
                        }
                        continue;
                    }
                    event.status_code = Some(policy.status);
                    report.events.push(event);
                    report.metrics.push(LimitMetric::Rejected);
                    self.reject(limits, context, report);
                    return LimitVerdict::Reject(reject_response(policy, retry_after_seconds));
                }
            }
        }
        LimitVerdict::Continue
    }

    /// Settles a request that a policy rejects: the in-flight counts that
    /// earlier policies raised for it are lowered, and nothing is counted.
    fn reject<S: SharedStore + ?Sized>(
        &mut self,
        limits: &Limits,
        context: &Context<'_, S>,
        report: &mut Report,
    ) {
        self.settled = true;
        self.settle_tracked(limits, &[], context, report);
    }

    /// Lowers the in-flight counts of a request that ends with neither
    /// response headers nor [`RequestLimits::on_log`], and counts nothing.
    /// Does nothing once the request is settled.
    pub fn release<S: SharedStore + ?Sized>(
        &mut self,
        limits: &Limits,
        context: &Context<'_, S>,
        report: &mut Report,
    ) {
        if self.settled {
            return;
        }
        self.settled = true;
        self.settle_tracked(limits, &[], context, report);
    }

    /// Lowers the in-flight counts that the request raised, counts a failure
    /// status for every failure-counting policy that let the request
    /// through, and returns the `RateLimit` headers to add to the response.
    pub fn on_response_headers<S: SharedStore + ?Sized>(
        &mut self,
        limits: &Limits,
        status: Option<u32>,
        context: &Context<'_, S>,
        report: &mut Report,
    ) -> Vec<(String, String)> {
        if self.settled {
            return Vec::new();
        }
        self.settled = true;
        let failed: Vec<usize> = match status {
            Some(status) => self
                .tracked
                .iter()
                .filter(|tracked| limits.policies[tracked.policy].is_failure_status(status))
                .map(|tracked| tracked.policy)
                .collect(),
            None => Vec::new(),
        };
        let counted = self.settle_tracked(limits, &failed, context, report);
        rate_limit_headers(limits, &self.quotas, &counted)
    }

    /// Lowers the in-flight counts that the request raised, and counts the
    /// stream as a failure when it ended without response headers or with a
    /// failure status that no response callback saw. Does nothing after
    /// [`RequestLimits::on_response_headers`] or a rejection.
    pub fn on_log<S: SharedStore + ?Sized>(
        &mut self,
        limits: &Limits,
        response_code: Option<u32>,
        context: &Context<'_, S>,
        report: &mut Report,
    ) {
        if self.settled {
            return;
        }
        self.settled = true;
        let failed: Vec<usize> = self
            .tracked
            .iter()
            .filter(|tracked| match response_code {
                None | Some(0) => true,
                Some(code) => limits.policies[tracked.policy].is_failure_status(code),
            })
            .map(|tracked| tracked.policy)
            .collect();
        self.settle_tracked(limits, &failed, context, report);
    }

    /// Lowers each in-flight count the request raised and counts a failure
    /// for each policy in `failed`, one compare-and-swap update per policy.
    /// Returns the quota left after each failure whose count was stored.
    fn settle_tracked<S: SharedStore + ?Sized>(
        &self,
        limits: &Limits,
        failed: &[usize],
        context: &Context<'_, S>,
        report: &mut Report,
    ) -> Vec<QuotaItem> {
        let mut counted = Vec::new();
        let now_ms = context.now_ms();
        for tracked in &self.tracked {
            let policy = &limits.policies[tracked.policy];
            let key = tracked.key;
            let is_failure = failed.contains(&tracked.policy);
            if !is_failure && !tracked.in_flight {
                continue;
            }
            let result = store::update(
                context.store,
                context.anchor,
                &policy.bucket_key(policy.bucket_of(&key)),
                |raw| {
                    let bucket = raw.map(Bucket::decode).unwrap_or_default();
                    let step = policy
                        .settle(&bucket, &key, now_ms, tracked.in_flight, is_failure)
                        .map_err(|_| StoreError::BucketFull)?;
                    Ok(Update {
                        value: step.bucket.map(|bucket| bucket.encode()),
                        output: (step.output, step.transitions),
                    })
                },
            );
            match result {
                Ok((quota, transitions)) => {
                    if let Some(quota) = quota {
                        report.metrics.push(LimitMetric::Failures);
                        counted.push(QuotaItem {
                            policy: tracked.policy,
                            quota,
                        });
                    }
                    report_transitions(policy, &transitions, context.now, report);
                }
                Err(error) => {
                    let phase = if is_failure {
                        Phase::Response
                    } else {
                        Phase::Release
                    };
                    store_failure(policy, key, &error, context.now, phase, report);
                }
            }
        }
        counted
    }
}

fn report_transitions(
    policy: &Policy,
    transitions: &[Transition],
    now: SystemTime,
    report: &mut Report,
) {
    for transition in transitions {
        let event = match *transition {
            Transition::LockedOut {
                key,
                duration_ms,
                level,
            } => {
                let mut event =
                    LimitEvent::new(now, LimitAction::KeyLockedOut, &policy.name, Some(key));
                event.lockout_seconds = Some(duration_ms.div_ceil(1000));
                event.lockout_level = Some(level);
                report.metrics.push(LimitMetric::LockedOut);
                event
            }
            Transition::Released { key } => {
                report.metrics.push(LimitMetric::Released);
                LimitEvent::new(now, LimitAction::KeyReleased, &policy.name, Some(key))
            }
        };
        let mut event = event;
        event.monitor = policy.mode == Mode::Monitor;
        report.events.push(event);
    }
}

/// Logs a store failure and returns whether the request is rejected.
/// When a counter update failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the request went upstream, so it can still be rejected.
    Request,
    /// While counting a response that has already gone to the client.
    Response,
    /// While lowering the in-flight count of a request that is no failure.
    Release,
}

fn store_failure(
    policy: &Policy,
    key: KeyHash,
    error: &StoreError,
    now: SystemTime,
    phase: Phase,
    report: &mut Report,
) -> bool {
    let mut event = LimitEvent::new(now, LimitAction::LimitStoreFailed, &policy.name, Some(key));
    event.monitor = policy.mode == Mode::Monitor;
    report.metrics.push(LimitMetric::StoreFailed);
    match phase {
        Phase::Request => {}
        Phase::Response => {
            event.error_message = Some(format!("{error}; the failure was not counted"));
            report.events.push(event);
            return false;
        }
        Phase::Release => {
            event.error_message = Some(format!(
                "{error}; the in-flight count was not lowered and lapses after {} s",
                IN_FLIGHT_MAX_AGE_MS / 1000
            ));
            report.events.push(event);
            return false;
        }
    }
    let reject = policy.mode == Mode::Block && policy.on_store_failure == StoreFailure::Reject;
    event.success = !reject;
    event.error_message = Some(format!(
        "{error}; the request is {}",
        if reject { "rejected" } else { "let through" }
    ));
    if reject {
        event.status_code = Some(policy.status);
        report.metrics.push(LimitMetric::Rejected);
    }
    report.events.push(event);
    reject
}

fn content_type(policy: &Policy) -> &'static str {
    if policy.body.first() == Some(&b'{') {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    }
}

/// Builds the reject response: the policy's status and body with
/// `Retry-After` and the `RateLimit-Policy` and `RateLimit` fields of
/// draft-ietf-httpapi-ratelimit-headers.
pub fn reject_response(policy: &Policy, retry_after_seconds: u64) -> LimitResponse {
    LimitResponse {
        status: policy.status,
        headers: vec![
            ("content-type".to_string(), content_type(policy).to_string()),
            ("retry-after".to_string(), retry_after_seconds.to_string()),
            ("ratelimit-policy".to_string(), policy.policy_item.clone()),
            (
                "ratelimit".to_string(),
                format!("\"{}\";r=0;t={retry_after_seconds}", policy.name),
            ),
        ],
        body: policy.body.clone(),
    }
}

/// Builds the response sent when a counter failed and the policy fails
/// closed: the policy's status and body, and a `Retry-After` of one second.
fn fail_closed_response(policy: &Policy) -> LimitResponse {
    LimitResponse {
        status: policy.status,
        headers: vec![
            ("content-type".to_string(), content_type(policy).to_string()),
            ("retry-after".to_string(), "1".to_string()),
        ],
        body: policy.body.clone(),
    }
}

/// Renders the `RateLimit-Policy` and `RateLimit` fields for a forwarded
/// response, one list item per policy. A policy that just counted a failure
/// reports its quota after that failure, the others their quota at request
/// time.
fn rate_limit_headers(
    limits: &Limits,
    quotas: &[QuotaItem],
    counted: &[QuotaItem],
) -> Vec<(String, String)> {
    if quotas.is_empty() {
        return Vec::new();
    }
    let mut policies = Vec::new();
    let mut items = Vec::new();
    for item in quotas {
        let policy = &limits.policies[item.policy];
        let quota = counted
            .iter()
            .find(|after| after.policy == item.policy)
            .map_or(item.quota, |after| after.quota);
        policies.push(policy.policy_item.clone());
        items.push(format!(
            "\"{}\";r={};t={}",
            policy.name, quota.remaining, quota.reset_seconds
        ));
    }
    vec![
        ("ratelimit-policy".to_string(), policies.join(", ")),
        ("ratelimit".to_string(), items.join(", ")),
    ]
}

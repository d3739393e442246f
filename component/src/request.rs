//! `check-request`: the request side of the pipeline, in the order of the
//! proxy module's `on_http_request_headers` and `on_http_request_body`.

use crate::bindings::exports::portcullis::filter::checks::{
    Allowed, Decision, Exchange as ExchangeHandle, Request, RequestEdit, Response,
};
use crate::exchange::{self, RequestLimitsState};
use crate::host;
use crate::State;
use portcullis_core::body::{BodyStep, BodyTracker};
use portcullis_core::event::{SecurityEvent, SourceAddress};
use portcullis_core::filter::{Assessment, BodyTooLarge, Verdict};
use portcullis_core::headers::{plan_request, Exchange as ExchangeFacts};
use portcullis_core::http::{first_value, RequestInfo};
use portcullis_core::jwt::cache::{LocalCache, Reach, Verified, VerifiedStore};
use portcullis_core::jwt::check::{evaluate, Decision as TokenDecision, InlineKeys};
use portcullis_core::jwt::check::{Request as TokenRequest, RequestEdit as TokenEdit};
use portcullis_core::limits::key::KeyInputs;
use portcullis_core::limits::{LimitVerdict, Report};
use portcullis_core::pipeline::{
    local_response_headers, reports_acceptance, take_verdict, token_accepted_event,
    token_rejected_event,
};
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The facts of one request that every step reads.
pub(crate) struct Facts<'a> {
    /// The configuration in force.
    pub state: &'a State,
    /// Every header, pseudo-headers first, as the core reads them.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Method and path for events.
    pub info: RequestInfo,
    /// The connection's peer.
    pub peer: Option<SourceAddress>,
    /// The request's arrival time.
    pub now: SystemTime,
}

impl Facts<'_> {
    /// Adds the request, its client and the user to an event and writes it.
    fn emit(&self, exchange: &ExchangeFacts, event: SecurityEvent) {
        let event =
            event
                .with_request(&self.info)
                .with_source(portcullis_core::pipeline::event_source(
                    exchange.client,
                    self.peer.clone(),
                ));
        host::write_limited(
            self.state,
            event.action.name(),
            event.level,
            &event.to_json(),
            self.now,
        );
    }
}

/// Returns the header pairs the core reads: the pseudo-headers of the
/// request's fields, as a proxy's HTTP codec hands them over, then every
/// other header with its name in lower case.
fn header_pairs(request: &mut Request) -> Vec<(String, Vec<u8>)> {
    let mut headers = vec![
        (
            ":authority".to_string(),
            request.authority.as_bytes().to_vec(),
        ),
        (":path".to_string(), request.path.as_bytes().to_vec()),
        (":method".to_string(), request.method.as_bytes().to_vec()),
        (":scheme".to_string(), request.scheme.as_bytes().to_vec()),
    ];
    for (name, value) in std::mem::take(&mut request.headers) {
        if !name.starts_with(':') {
            headers.push((name.to_ascii_lowercase(), value));
        }
    }
    headers
}

/// Returns the decision for a request when no configuration could be
/// compiled: forward it unchanged.
pub(crate) fn pass() -> Decision {
    Decision::Allow(Allowed {
        edits: Vec::new(),
        exchange: ExchangeHandle::new(exchange::Exchange::pass()),
    })
}

fn respond(status: u32, headers: Vec<(String, String)>, body: Vec<u8>) -> Decision {
    Decision::Respond(Response {
        // Statuses come from the configuration, which keeps them in 100..=599.
        status: u16::try_from(status).unwrap_or(500),
        headers: headers
            .into_iter()
            .map(|(name, value)| (name, value.into_bytes()))
            .collect(),
        body,
    })
}

/// Sends a local response of a control with the security headers added.
fn respond_with_security_headers(
    state: &State,
    exchange: &ExchangeFacts,
    status: u32,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Decision {
    let headers = local_response_headers(&state.config, exchange, headers);
    respond(status, headers, body)
}

/// Logs and applies the verdict of the assessment so far; returns the block
/// response, if any.
fn apply_assessment(
    state: &State,
    facts: &Facts,
    exchange: &ExchangeFacts,
    assessment: &mut Assessment,
) -> Option<Decision> {
    let verdict = take_verdict(&state.config, assessment)?.verdict;
    match verdict {
        Verdict::Block(response) => {
            let event = SecurityEvent::assessment(facts.now, assessment, Some(response.status));
            facts.emit(exchange, event);
            Some(respond_with_security_headers(
                state,
                exchange,
                response.status,
                &response.headers,
                response.body,
            ))
        }
        Verdict::Flag => {
            facts.emit(
                exchange,
                SecurityEvent::assessment(facts.now, assessment, None),
            );
            None
        }
    }
}

/// The verified-token cache of this instance.
struct Cache<'a> {
    cache: &'a mut LocalCache,
    now: u64,
}

impl VerifiedStore for Cache<'_> {
    fn get(&mut self, token: &[u8], _reach: Reach) -> Option<Verified> {
        self.cache.get(token, self.now)
    }

    fn put(&mut self, token: &[u8], verified: Verified, _reach: Reach) {
        self.cache.put(token, verified);
    }
}

/// Validates the request's tokens. Returns the claims of the accepted
/// token, if any, or the rejection.
fn check_tokens(
    state: &State,
    facts: &Facts,
    exchange: &ExchangeFacts,
    edits: &mut Vec<RequestEdit>,
) -> Result<Option<Rc<Map<String, Value>>>, Decision> {
    let policy = &state.config.jwt;
    if !policy.enabled() {
        return Ok(None);
    }
    let now = facts
        .now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let request = TokenRequest {
        headers: &facts.headers,
        now,
    };
    let decision = match state.verified.try_borrow_mut() {
        Ok(mut cache) => {
            let mut store = Cache {
                cache: &mut cache,
                now,
            };
            evaluate(policy, &request, &InlineKeys(policy), &mut store)
        }
        Err(_) => evaluate(
            policy,
            &request,
            &InlineKeys(policy),
            &mut portcullis_core::jwt::cache::NoStore,
        ),
    };
    match decision {
        TokenDecision::Allow {
            edits: token_edits,
            accepted,
            checked,
        } => {
            edits.extend(token_edits.into_iter().map(|edit| match edit {
                TokenEdit::Remove(name) => RequestEdit::Remove(name),
                TokenEdit::Add(name, value) => RequestEdit::Append((name, value)),
                TokenEdit::SetPath(path) => RequestEdit::Set((":path".to_string(), path)),
            }));
            if reports_acceptance(&accepted, checked) {
                facts.emit(exchange, token_accepted_event(facts.now, &accepted));
            }
            Ok(accepted.into_iter().next().map(|token| token.claims))
        }
        TokenDecision::Reject(rejection) => {
            facts.emit(exchange, token_rejected_event(facts.now, &rejection));
            let headers: Vec<(&str, &str)> = rejection
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            Err(respond_with_security_headers(
                state,
                exchange,
                rejection.status,
                &headers,
                rejection.body,
            ))
        }
        // `InlineKeys` never returns `Pending`, so the evaluation never
        // waits; a wait is treated as keys that are unavailable.
        TokenDecision::Wait => Err(respond(
            503,
            vec![("content-type".to_string(), "application/json".to_string())],
            br#"{"error":"jwks_unavailable"}"#.to_vec(),
        )),
    }
}

/// Applies a limits verdict: the reject response, or whether the request
/// goes on.
fn apply_limits(
    state: &State,
    exchange: &ExchangeFacts,
    verdict: LimitVerdict,
) -> Result<(), Decision> {
    match verdict {
        LimitVerdict::Continue | LimitVerdict::NeedBody => Ok(()),
        LimitVerdict::Reject(response) => {
            let headers: Vec<(&str, &str)> = response
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            Err(respond_with_security_headers(
                state,
                exchange,
                response.status,
                &headers,
                response.body,
            ))
        }
    }
}

/// Starts the limits of a request that passed every other header check,
/// and checks the policies whose key needs no body. Returns the request's
/// limits state, if any policy applies, and whether policies wait for the
/// body.
fn start_limits(
    state: &Rc<State>,
    facts: &Facts,
    exchange: &ExchangeFacts,
    claims: Option<Rc<Map<String, Value>>>,
) -> Result<Option<(RequestLimitsState, bool)>, Decision> {
    let limits = &state.config.limits;
    if !limits.enabled() {
        return Ok(None);
    }
    let raw_path = first_value(&facts.headers, ":path").unwrap_or_default();
    let client: Option<IpAddr> = exchange
        .client
        .or_else(|| facts.peer.as_ref().map(|peer| peer.ip));
    let mut request = RequestLimitsState {
        limits: limits.start_request(&facts.info.method, raw_path, client),
        client,
        claims,
        info: facts.info.clone(),
        peer: facts.peer.clone(),
    };
    if !request.limits.is_active() {
        return Ok(None);
    }
    let context = exchange::limits_context(state, facts.now);
    let mut report = Report::default();
    let inputs = KeyInputs {
        headers: &facts.headers,
        client_ip: client,
        claims: request.claims.as_deref(),
        body: None,
    };
    let verdict = request
        .limits
        .on_request_headers(limits, &inputs, &context, &mut report);
    request.publish(state, report, facts.now);
    let needs_body = verdict == LimitVerdict::NeedBody;
    apply_limits(state, exchange, verdict)?;
    Ok(Some((request, needs_body)))
}

/// Checks the limits policies whose key is read from the body. A request
/// without a body is checked with an empty one, and a body over the
/// limits' maximum as a missing one, as the proxy module does.
fn check_limits_body(
    state: &Rc<State>,
    facts: &Facts,
    exchange: &ExchangeFacts,
    request: &mut RequestLimitsState,
    body: Option<&[u8]>,
) -> Result<(), Decision> {
    let limits = &state.config.limits;
    let body = match body {
        None => Some(&[][..]),
        Some(body) if body.len() > limits.max_body_bytes() => None,
        Some(body) => Some(body),
    };
    let context = exchange::limits_context(state, facts.now);
    let mut report = Report::default();
    let inputs = KeyInputs {
        headers: &facts.headers,
        client_ip: request.client,
        claims: request.claims.as_deref(),
        body,
    };
    let verdict = request
        .limits
        .on_request_body(limits, &inputs, &context, &mut report);
    request.publish(state, report, facts.now);
    apply_limits(state, exchange, verdict)
}

/// Inspects the body with the request filter; returns the response that
/// ends the request, if any.
fn inspect_body(
    state: &State,
    facts: &Facts,
    exchange: &ExchangeFacts,
    assessment: &mut Assessment,
    body: &[u8],
) -> Option<Decision> {
    let filter = &state.config.filter;
    match BodyTracker::new(filter).on_body(body.len(), true) {
        BodyStep::Inspect { .. } => {
            filter.inspect_body(assessment, &facts.headers, body);
            apply_assessment(state, facts, exchange, assessment)
        }
        BodyStep::TooLarge { size } => match filter.on_body_too_large() {
            BodyTooLarge::Reject => {
                let response = filter.body_too_large_response();
                let event = SecurityEvent::body_too_large(facts.now, size, Some(response.status));
                facts.emit(exchange, event);
                Some(respond_with_security_headers(
                    state,
                    exchange,
                    response.status,
                    &response.headers,
                    response.body,
                ))
            }
            BodyTooLarge::Pass => {
                facts.emit(
                    exchange,
                    SecurityEvent::body_too_large(facts.now, size, None),
                );
                None
            }
        },
        BodyStep::Buffer | BodyStep::Continue => None,
    }
}

/// Runs every request check of the configuration on one request.
pub(crate) fn check(state: &Rc<State>, mut request: Request) -> Decision {
    let headers = header_pairs(&mut request);
    let body = request.body.take();
    let peer = request
        .client_address
        .as_deref()
        .and_then(|address| SourceAddress::parse(address.as_bytes()));
    let facts = Facts {
        state,
        info: RequestInfo::from_headers(&headers),
        headers,
        peer,
        now: UNIX_EPOCH + Duration::from_millis(request.time_ms),
    };
    let config = &state.config;

    let source = facts.peer.as_ref().map(|peer| peer.ip);
    let plan = plan_request(&config.headers, &config.cors, &facts.headers, source);
    let exchange = plan.exchange;
    if let Some(reply) = plan.reply {
        return respond(reply.status, reply.headers, reply.body);
    }
    let mut assessment = Assessment::default();
    if config.filter.enabled() {
        assessment = config.filter.inspect_headers(&facts.headers);
        if let Some(block) = apply_assessment(state, &facts, &exchange, &mut assessment) {
            return block;
        }
    }

    let mut edits: Vec<RequestEdit> = plan.strip.into_iter().map(RequestEdit::Remove).collect();
    edits.extend(
        plan.add
            .into_iter()
            .map(|(name, value)| RequestEdit::Append((name, value.into_bytes()))),
    );
    let claims = match check_tokens(state, &facts, &exchange, &mut edits) {
        Ok(claims) => claims,
        Err(rejection) => return rejection,
    };
    let mut limits = match start_limits(state, &facts, &exchange, claims) {
        Ok(limits) => limits,
        Err(rejection) => return rejection,
    };
    if let Some(body) = body.as_deref().filter(|_| config.filter.enabled()) {
        if let Some(block) = inspect_body(state, &facts, &exchange, &mut assessment, body) {
            // The limits let the request through, and its stream now ends
            // with this local response, which the limits count as the
            // proxy module's `on_log` does.
            if let (Some((mut limits, _)), Decision::Respond(response)) = (limits.take(), &block) {
                limits.settle(state, Some(u32::from(response.status)), facts.now);
            }
            return block;
        }
    }
    if let Some((request_limits, true)) = &mut limits {
        if let Err(rejection) =
            check_limits_body(state, &facts, &exchange, request_limits, body.as_deref())
        {
            return rejection;
        }
    }
    Decision::Allow(Allowed {
        edits,
        exchange: ExchangeHandle::new(exchange::Exchange::new(
            state.clone(),
            exchange,
            limits.map(|(limits, _)| limits),
        )),
    })
}

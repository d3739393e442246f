//! HTTP contexts: one per request.

use crate::host;
use crate::metrics::{Metric, Metrics};
use portcullis_core::body::{BodyStep, BodyTracker};
use portcullis_core::config::Config;
use portcullis_core::event::SecurityEvent;
use portcullis_core::filter::{Assessment, BodyTooLarge, Verdict};
use portcullis_core::headers::Exchange;
use portcullis_core::http::{first_value, RequestInfo};
use portcullis_core::pipeline::{take_verdict, NewVerdict};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};
use std::rc::Rc;

/// State that the root context shares with every HTTP context.
pub struct Shared {
    /// The applied configuration.
    pub config: Config,
    /// Counter ids.
    pub metrics: Rc<Metrics>,
    /// Value of the `plugin_name` property, reported as `observer.name`.
    pub plugin_name: Option<String>,
    /// Token validation state of this VM.
    pub jwt: crate::jwt::JwtRuntime,
    /// Per-key limits state of this VM.
    pub limits: crate::limits::LimitsRuntime,
    /// Log rate limit and export queue of this VM.
    pub events: crate::events::EventsRuntime,
}

/// The HTTP context that applies the configuration to one request.
pub struct Stream {
    context_id: u32,
    shared: Rc<Shared>,
    body: BodyTracker,
    request: RequestInfo,
    content_type: Option<Vec<u8>>,
    /// Value of the request's `content-length`, when valid.
    declared_length: Option<usize>,
    /// Whether the request body is sent chunked.
    chunked: bool,
    /// Request headers as inspected, kept for the body phase.
    request_headers: Vec<(String, Vec<u8>)>,
    /// Rule matches of the request so far.
    assessment: Assessment,
    /// Request-side facts that the response hardening needs.
    exchange: Exchange,
    /// Whether a local response ended the request.
    replied: bool,
}

impl Stream {
    /// Creates the context for one request.
    pub fn new(context_id: u32, shared: Rc<Shared>) -> Self {
        Stream {
            context_id,
            body: BodyTracker::new(&shared.config.filter),
            shared,
            request: RequestInfo::default(),
            content_type: None,
            declared_length: None,
            chunked: false,
            request_headers: Vec::new(),
            assessment: Assessment::default(),
            exchange: Exchange::default(),
            replied: false,
        }
    }

    /// Applies the verdict of the assessment so far: logs one event with
    /// every matched rule once the score reaches the threshold, counts each
    /// rule, and blocks in block mode. Returns `true` when a block response
    /// was sent and the request must stop. In monitor mode a later phase
    /// logs again only when it found new matches.
    fn handle_assessment(&mut self) -> bool {
        let Some(NewVerdict {
            verdict,
            new_detections,
        }) = take_verdict(&self.shared.config, &mut self.assessment)
        else {
            return false;
        };
        for detection in new_detections {
            self.shared.metrics.increment_rule(detection.rule.id);
        }
        match verdict {
            Verdict::Block(response) => {
                self.shared.metrics.increment(Metric::FilterBlocked);
                self.emit(SecurityEvent::assessment(
                    host::current_time(),
                    &self.assessment,
                    Some(response.status),
                ));
                self.body.finish();
                self.replied = true;
                crate::headers::send_local_response(
                    self.context_id,
                    &self.shared.config,
                    &self.exchange,
                    &response,
                );
                true
            }
            Verdict::Flag => {
                self.shared.metrics.increment(Metric::FilterFlagged);
                self.emit(SecurityEvent::assessment(
                    host::current_time(),
                    &self.assessment,
                    None,
                ));
                false
            }
        }
    }

    fn inspect_body(&mut self, size: usize) -> Action {
        // A failed read, logged by `request_body`, leaves nothing to inspect.
        let body = host::request_body(self.context_id, size).unwrap_or_default();
        // Kong's ngx_wasm_module hands over an empty body when nginx has
        // spooled it to a file. A body shorter than the host reported or than
        // its content-length, or an empty chunked body, was not inspected, so
        // it is handled as one over the limit.
        let expected = self.declared_length.unwrap_or(0).max(size);
        let unread = if body.len() < expected {
            Some(expected)
        } else {
            (self.declared_length.is_none() && self.chunked && body.is_empty()).then_some(0)
        };
        // NOTE: a body the host failed to return gets the over-the-limit
        // response (413 under `reject`), although its size is not the cause.
        if let Some(expected) = unread {
            log::warn!(
                "portcullis: context {}: the host returned {} of {expected} body bytes, the body cannot be inspected",
                self.context_id,
                body.len()
            );
            return self.reject_or_pass_large_body(expected);
        }
        let shared = self.shared.clone();
        shared
            .config
            .filter
            .inspect_body(&mut self.assessment, &self.request_headers, &body);
        if self.handle_assessment() {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn reject_or_pass_large_body(&mut self, size: usize) -> Action {
        self.shared.metrics.increment(Metric::FilterBodyTooLarge);
        let filter = &self.shared.config.filter;
        match filter.on_body_too_large() {
            BodyTooLarge::Reject => {
                let response = filter.body_too_large_response();
                self.emit(SecurityEvent::body_too_large(
                    host::current_time(),
                    size,
                    Some(response.status),
                ));
                self.replied = true;
                crate::headers::send_local_response(
                    self.context_id,
                    &self.shared.config,
                    &self.exchange,
                    &response,
                );
                Action::Pause
            }
            BodyTooLarge::Pass => {
                self.emit(SecurityEvent::body_too_large(
                    host::current_time(),
                    size,
                    None,
                ));
                Action::Continue
            }
        }
    }

    fn apply_body_step(&mut self, step: BodyStep) -> Action {
        match step {
            BodyStep::Buffer => Action::Pause,
            BodyStep::Continue => Action::Continue,
            BodyStep::Inspect { size } => self.inspect_body(size),
            BodyStep::TooLarge { size } => self.reject_or_pass_large_body(size),
        }
    }

    /// Merges the filter's body action with the limits' verdict for the same
    /// callback. The body is held while either still needs it.
    fn combine_limits(&mut self, filter: Action, limits: Option<crate::limits::Next>) -> Action {
        match limits {
            None => filter,
            Some(crate::limits::Next::Body) => Action::Pause,
            Some(crate::limits::Next::Rejected) => {
                self.replied = true;
                self.body.finish();
                Action::Pause
            }
            Some(crate::limits::Next::Continue) => filter,
        }
    }

    /// Counts a failure status for the limits and adds their `RateLimit`
    /// headers to the response.
    fn add_rate_limit_headers(&self) {
        // NOTE: when the host cannot return `:status`, the response counts as
        // no failure, so a failure-counting policy misses it.
        let status = host::header_value(MapType::HttpResponseHeaders, ":status")
            .and_then(|value| std::str::from_utf8(&value).ok()?.parse().ok());
        let shared = self.shared.clone();
        for (name, value) in crate::limits::on_response_headers(self.context_id, &shared, status) {
            host::replace_header(
                self.context_id,
                MapType::HttpResponseHeaders,
                &name,
                value.as_bytes(),
            );
        }
    }

    /// Adds request details, client address and plugin name to an event and
    /// writes it to the host log.
    fn emit(&self, event: SecurityEvent) {
        let event = event
            .with_request(&self.request)
            .with_source(host::event_source(self.exchange.client))
            .with_observer(self.shared.plugin_name.as_deref());
        crate::events::write(&self.shared, event.action.name(), event.level, || {
            event.to_json()
        });
    }
}

impl Context for Stream {
    /// Handles the response to a JWKS fetch that this request dispatched on
    /// a host without ticks.
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        crate::jwt::on_http_call_response(&self.shared, token_id, num_headers, body_size);
    }

    fn on_done(&mut self) -> bool {
        crate::jwt::forget(&self.shared, self.context_id);
        crate::limits::forget(&self.shared, self.context_id);
        true
    }
}

impl HttpContext for Stream {
    /// Inspects path, query, headers and cookies, then strips internal request
    /// headers. The body, if any, is paused in `on_http_request_body`, so this
    /// callback ignores `end_of_stream`.
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let headers = match crate::abi::header_pairs(MapType::HttpRequestHeaders) {
            Ok(headers) => headers,
            Err(status) => {
                self.replied = true;
                crate::headers::reject_unchecked(
                    self.context_id,
                    &self.shared.config,
                    &self.exchange,
                    &format!("reading the request headers failed with status {status}"),
                );
                return Action::Pause;
            }
        };
        self.request = RequestInfo::from_headers(&headers);
        self.content_type = first_value(&headers, "content-type").map(<[u8]>::to_vec);
        self.declared_length = first_value(&headers, "content-length")
            .and_then(|value| std::str::from_utf8(value).ok()?.trim().parse().ok());
        self.chunked = first_value(&headers, "transfer-encoding")
            .is_some_and(|value| value.to_ascii_lowercase().ends_with(b"chunked"));

        let shared = self.shared.clone();
        let mut plan = crate::headers::plan(&shared.config, &headers);
        self.exchange = std::mem::take(&mut plan.exchange);
        if let Some(reply) = &plan.reply {
            crate::headers::send_reply(self.context_id, reply);
            return Action::Pause;
        }
        let filtered = shared.config.filter.enabled();
        if filtered {
            shared.metrics.increment(Metric::RequestsInspected);
            self.assessment = shared.config.filter.inspect_headers(&headers);
        }
        // Kept for the body phase, which inspects the body by its headers.
        self.request_headers = headers;
        if filtered && self.handle_assessment() {
            return Action::Pause;
        }

        if !crate::headers::apply_request_edits(self.context_id, &plan) {
            self.replied = true;
            crate::headers::reject_unchecked(
                self.context_id,
                &shared.config,
                &self.exchange,
                "a spoofable request header could not be removed",
            );
            return Action::Pause;
        }
        let headers = &self.request_headers;
        let claims = match crate::jwt::on_request_headers(
            self.context_id,
            &shared,
            headers,
            &self.exchange,
            end_of_stream,
        ) {
            Ok(claims) => claims,
            Err(action) => return action,
        };
        match crate::limits::on_request_headers(
            self.context_id,
            &shared,
            headers,
            &self.exchange,
            claims,
            end_of_stream,
        ) {
            crate::limits::Next::Continue => Action::Continue,
            crate::limits::Next::Body => Action::Continue,
            crate::limits::Next::Rejected => {
                self.replied = true;
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let step = self.body.on_body(body_size, end_of_stream);
        let action = self.apply_body_step(step);
        if self.replied {
            return Action::Pause;
        }
        let shared = self.shared.clone();
        let limits =
            crate::limits::on_request_body(self.context_id, &shared, body_size, end_of_stream);
        self.combine_limits(action, limits)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let step = self.body.on_trailers();
        let action = self.apply_body_step(step);
        if self.replied {
            return Action::Pause;
        }
        let shared = self.shared.clone();
        let limits = crate::limits::on_request_trailers(self.context_id, &shared);
        self.combine_limits(action, limits)
    }

    fn on_log(&mut self) {
        crate::limits::on_log(self.context_id, &self.shared);
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.shared.config.limits.enabled() {
            self.add_rate_limit_headers();
        }
        let config = &self.shared.config;
        if !config.headers.enabled() && !config.cors.enabled() {
            return Action::Continue;
        }
        if crate::headers::harden_response(self.context_id, config, &self.exchange) {
            self.shared.metrics.increment(Metric::HeadersHardened);
        }
        Action::Continue
    }
}

/// The HTTP context used when no configuration could be compiled: it lets
/// every request and response through unchanged.
pub struct PassThrough;

impl Context for PassThrough {}

impl HttpContext for PassThrough {}

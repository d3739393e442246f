//! HTTP contexts: one per request.

use crate::host;
use crate::metrics::{Metric, Metrics};
use portcullis_core::body::{BodyStep, BodyTracker};
use portcullis_core::config::Config;
use portcullis_core::event::{EventLevel, SecurityEvent};
use portcullis_core::filter::{BodyTooLarge, Detection, Verdict};
use portcullis_core::headers::HeaderEdit;
use portcullis_core::http::{first_value, RequestInfo};
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
}

/// The HTTP context that applies the configuration to one request.
pub struct Stream {
    context_id: u32,
    shared: Rc<Shared>,
    body: BodyTracker,
    request: RequestInfo,
    content_type: Option<Vec<u8>>,
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
        }
    }

    /// Logs a detection and applies its verdict. Returns `true` when a block
    /// response was sent and the request must stop.
    fn handle_detection(&mut self, detection: &Detection) -> bool {
        match self.shared.config.filter.verdict(detection) {
            Verdict::Block(response) => {
                self.shared.metrics.increment(Metric::FilterBlocked);
                self.emit(SecurityEvent::detection(
                    host::current_time(),
                    detection,
                    Some(response.status),
                ));
                self.body.finish();
                host::send_local_response(self.context_id, &response);
                true
            }
            Verdict::Flag => {
                self.shared.metrics.increment(Metric::FilterFlagged);
                self.emit(SecurityEvent::detection(
                    host::current_time(),
                    detection,
                    None,
                ));
                false
            }
        }
    }

    fn inspect_body(&mut self, size: usize) -> Action {
        let Some(body) = host::request_body(self.context_id, size) else {
            return Action::Continue;
        };
        let filter = &self.shared.config.filter;
        let Some(detection) = filter.inspect_body(&body, self.content_type.as_deref()) else {
            return Action::Continue;
        };
        if self.handle_detection(&detection) {
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
                host::send_local_response(self.context_id, &response);
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

    /// Adds request details, client address and plugin name to an event and
    /// writes it to the host log.
    fn emit(&self, event: SecurityEvent) {
        let event = event
            .with_request(&self.request)
            .with_source(host::source_address())
            .with_observer(self.shared.plugin_name.as_deref());
        let line = event.to_json();
        match event.level {
            EventLevel::Info => log::info!("{line}"),
            EventLevel::Warn => log::warn!("{line}"),
            EventLevel::Error => log::error!("{line}"),
        }
    }
}

impl Context for Stream {
    fn on_done(&mut self) -> bool {
        crate::jwt::forget(&self.shared, self.context_id);
        true
    }
}

impl HttpContext for Stream {
    /// Inspects path, query, headers and cookies, then strips internal request
    /// headers. The body, if any, is paused in `on_http_request_body`, so this
    /// callback ignores `end_of_stream`.
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let headers = host::header_pairs(self.context_id, MapType::HttpRequestHeaders);
        self.request = RequestInfo::from_headers(&headers);
        self.content_type = first_value(&headers, "content-type").map(<[u8]>::to_vec);

        let shared = self.shared.clone();
        if shared.config.filter.enabled() {
            shared.metrics.increment(Metric::RequestsInspected);
            if let Some(detection) = shared.config.filter.inspect_headers(&headers) {
                if self.handle_detection(&detection) {
                    return Action::Pause;
                }
            }
        }

        for name in shared.config.headers.request_headers_to_strip(&headers) {
            host::remove_header(self.context_id, MapType::HttpRequestHeaders, &name);
        }
        if let Some(action) = crate::jwt::on_request_headers(self.context_id, &shared, &headers) {
            return action;
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let step = self.body.on_body(body_size, end_of_stream);
        self.apply_body_step(step)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let step = self.body.on_trailers();
        self.apply_body_step(step)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let policy = &self.shared.config.headers;
        if !policy.enabled() {
            return Action::Continue;
        }
        let headers = host::header_pairs(self.context_id, MapType::HttpResponseHeaders);
        let edits = policy.response_edits(&headers);
        if edits.is_empty() {
            return Action::Continue;
        }
        for edit in &edits {
            match edit {
                HeaderEdit::Remove(name) => {
                    host::remove_header(self.context_id, MapType::HttpResponseHeaders, name)
                }
                HeaderEdit::Add(name, value) => {
                    host::add_header(self.context_id, MapType::HttpResponseHeaders, name, value)
                }
            }
        }
        self.shared.metrics.increment(Metric::HeadersHardened);
        Action::Continue
    }
}

/// The HTTP context used when no configuration could be compiled: it lets
/// every request and response through unchanged.
pub struct PassThrough;

impl Context for PassThrough {}

impl HttpContext for PassThrough {}

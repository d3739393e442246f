//! The `exchange` resource: what the request side of one request leaves
//! for its response, and the request's limits until they are settled.

use crate::bindings::exports::portcullis::filter::checks::{GuestExchange, Header, ResponseEdit};
use crate::host::{self, HostStore};
use crate::State;
use portcullis_core::event::SourceAddress;
use portcullis_core::headers::{Exchange as ExchangeFacts, HeaderEdit};
use portcullis_core::http::RequestInfo;
use portcullis_core::limits::{Context, Report, RequestLimits};
use portcullis_core::pipeline::event_source;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::SystemTime;

/// Returns the limits' view of the store at `now`.
pub(crate) fn limits_context(state: &State, now: SystemTime) -> Context<'_, HostStore> {
    Context {
        store: &HostStore,
        anchor: &state.anchor,
        salt: &state.salt,
        now,
    }
}

/// The limits of one request that the policies let through.
pub(crate) struct RequestLimitsState {
    /// The core's per-request limits.
    pub limits: RequestLimits,
    /// The client address the keys use.
    pub client: Option<IpAddr>,
    /// Claims of the verified token, if any.
    pub claims: Option<Rc<Map<String, Value>>>,
    /// Method and path, for events.
    pub info: RequestInfo,
    /// The connection's peer, for events.
    pub peer: Option<SourceAddress>,
}

impl RequestLimitsState {
    /// Writes the events of a report with the request's details. The
    /// component has no metrics, so the report's counters are dropped.
    pub fn publish(&self, state: &State, report: Report, now: SystemTime) {
        let subject = self
            .claims
            .as_ref()
            .and_then(|claims| claims.get("sub"))
            .and_then(Value::as_str);
        for event in report.events {
            let event = event
                .with_request(&self.info)
                .with_source(event_source(self.client, self.peer.clone()))
                .with_user(subject);
            host::write_limit_event(state, &event, now);
        }
    }

    /// Counts a request that ended without upstream response headers, with
    /// the status of the response the client got, if any.
    pub fn settle(&mut self, state: &State, status: Option<u32>, now: SystemTime) {
        let mut report = Report::default();
        self.limits.on_log(
            &state.config.limits,
            status,
            &limits_context(state, now),
            &mut report,
        );
        self.publish(state, report, now);
    }
}

/// The state behind one `exchange` handle.
pub struct Exchange {
    /// The configuration the request was checked with; `None` when no
    /// configuration compiled and the request passed unchecked.
    state: Option<Rc<State>>,
    facts: ExchangeFacts,
    limits: RefCell<Option<RequestLimitsState>>,
}

impl Exchange {
    /// Creates the exchange of a checked request.
    pub(crate) fn new(
        state: Rc<State>,
        facts: ExchangeFacts,
        limits: Option<RequestLimitsState>,
    ) -> Self {
        Exchange {
            state: Some(state),
            facts,
            limits: RefCell::new(limits),
        }
    }

    /// Creates the exchange of a request that passed unchecked.
    pub(crate) fn pass() -> Self {
        Exchange {
            state: None,
            facts: ExchangeFacts::default(),
            limits: RefCell::new(None),
        }
    }

    /// Counts the failure status for the limits and returns their
    /// `RateLimit` headers. Returns nothing after the first call.
    fn settle_limits(&self, state: &State, status: u16) -> Vec<(String, String)> {
        let Ok(mut limits) = self.limits.try_borrow_mut() else {
            return Vec::new();
        };
        let Some(mut request) = limits.take() else {
            return Vec::new();
        };
        let now = host::now();
        let mut report = Report::default();
        let headers = request.limits.on_response_headers(
            &state.config.limits,
            Some(u32::from(status)),
            &limits_context(state, now),
            &mut report,
        );
        request.publish(state, report, now);
        headers
    }
}

impl GuestExchange for Exchange {
    /// Adds the `RateLimit` headers first, as the proxy module does, then
    /// hardens the headers as they are after that.
    fn harden_response(&self, status: u16, headers: Vec<Header>) -> Vec<ResponseEdit> {
        let Some(state) = &self.state else {
            return Vec::new();
        };
        let mut headers: Vec<(String, Vec<u8>)> = headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        let mut edits = Vec::new();
        if state.config.limits.enabled() {
            for (name, value) in self.settle_limits(state, status) {
                headers.retain(|(existing, _)| *existing != name);
                headers.push((name.clone(), value.clone().into_bytes()));
                edits.push(ResponseEdit::Set((name, value.into_bytes())));
            }
        }
        let config = &state.config;
        if !config.headers.enabled() && !config.cors.enabled() {
            return edits;
        }
        let hardening = config.headers.response_edits(&headers, &self.facts);
        // The core lists every removal before any addition.
        edits.extend(hardening.into_iter().map(|edit| match edit {
            HeaderEdit::Remove(name) => ResponseEdit::Remove(name.into_owned()),
            HeaderEdit::Add(name, value) => {
                ResponseEdit::Append((name.into_owned(), value.into_owned()))
            }
        }));
        edits
    }
}

impl Drop for Exchange {
    /// Counts a request whose response the host never hardened as one that
    /// ended without response headers.
    fn drop(&mut self) {
        let (Some(state), Some(mut request)) = (&self.state, self.limits.get_mut().take()) else {
            return;
        };
        request.settle(state, None, host::now());
    }
}

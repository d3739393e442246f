//! Applies the header policy of `portcullis-core` to host header maps and
//! sends the module's local replies with the security headers.

use crate::host;
use portcullis_core::config::Config;
use portcullis_core::headers::{plan_request, Exchange, HeaderEdit, Reply, RequestPlan};
use portcullis_core::http::{HeaderPairs, LocalResponse};
use portcullis_core::pipeline::local_response_headers;
use proxy_wasm::types::MapType;

/// Plans the request side of one request, reading the client's connection
/// address from the host.
pub fn plan(config: &Config, headers: &HeaderPairs) -> RequestPlan {
    let source = host::source_address().map(|address| address.ip);
    plan_request(&config.headers, &config.cors, headers, source)
}

/// Removes and adds the request headers that the plan lists. Returns false
/// when the host failed to remove one, so that the caller rejects the
/// request instead of forwarding a header the policy strips as spoofable.
pub fn apply_request_edits(context_id: u32, plan: &RequestPlan) -> bool {
    for name in &plan.strip {
        if !host::remove_header(context_id, MapType::HttpRequestHeaders, name) {
            return false;
        }
    }
    for (name, value) in &plan.add {
        host::add_header(
            context_id,
            MapType::HttpRequestHeaders,
            name,
            value.as_bytes(),
        );
    }
    true
}

/// Responds with a 503 and the security headers to a request that the
/// module could not read or clean up, so that it never reaches the upstream
/// unchecked. Used when the host fails a call on which a control depends.
pub fn reject_unchecked(context_id: u32, config: &Config, exchange: &Exchange, reason: &str) {
    log::error!("portcullis: context {context_id}: {reason}, responding 503");
    send_response(
        context_id,
        config,
        exchange,
        503,
        &[("content-type", "application/json")],
        br#"{"error":"request_not_checked"}"#,
    );
}

/// Sends a reply that the request side decided, and logs why.
pub fn send_reply(context_id: u32, reply: &Reply) {
    log::info!(
        "portcullis: context {context_id}: answered {:?} with {}",
        reply.reason,
        reply.status
    );
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    host::send_http_response(context_id, reply.status, headers, &reply.body);
}

/// Sends a local response of another control (a block, a rejected body) with
/// the security headers added.
pub fn send_local_response(
    context_id: u32,
    config: &Config,
    exchange: &Exchange,
    response: &LocalResponse,
) {
    send_response(
        context_id,
        config,
        exchange,
        response.status,
        &response.headers,
        &response.body,
    );
}

/// Sends a local response with the given headers and the security headers
/// that the response does not set itself.
pub fn send_response(
    context_id: u32,
    config: &Config,
    exchange: &Exchange,
    status: u32,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    let all = local_response_headers(config, exchange, headers);
    let all: Vec<(&str, &str)> = all
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    host::send_http_response(context_id, status, all, body);
}

/// Applies the response edits; returns whether any header changed.
pub fn harden_response(context_id: u32, config: &Config, exchange: &Exchange) -> bool {
    let headers = host::header_pairs(context_id, MapType::HttpResponseHeaders);
    let edits = config.headers.response_edits(&headers, exchange);
    for edit in &edits {
        match edit {
            // A leaking header that stays is logged by `remove_header`. The
            // response is still sent, because the upstream has responded.
            HeaderEdit::Remove(name) => {
                host::remove_header(context_id, MapType::HttpResponseHeaders, name);
            }
            HeaderEdit::Add(name, value) => {
                host::add_header(context_id, MapType::HttpResponseHeaders, name, value)
            }
        }
    }
    !edits.is_empty()
}

//! HTTP streams through one VM, with the iteration rules of Envoy's filter manager for a
//! single filter before the router.
//!
//! A stream runs until it must wait: for `proxy_continue_stream` after a PAUSE, or for the
//! upstream's answer. The caller supplies those and polls again.

use std::net::SocketAddr;

use crate::abi::{Pairs, ACTION_CONTINUE};
use crate::state::{Callback, Connection, FailurePolicy, LocalResponse, ServerHeader, StreamMaps};
use crate::vm::Vm;

/// Request and response body buffering limit of nginx under ngx_wasm_module, in bytes.
const NGX_BODY_BUFFER: usize = 16 * 1024;

/// A request as the client sent it.
#[derive(Clone, Debug)]
pub struct ClientRequest {
    pub method: Vec<u8>,
    /// Path with query string.
    pub path: Vec<u8>,
    pub authority: Vec<u8>,
    pub scheme: Vec<u8>,
    /// Regular headers, in order, names as the client sent them.
    pub headers: Pairs,
    /// Body data frames; empty for a bodyless request.
    pub body_chunks: Vec<Vec<u8>>,
    pub trailers: Option<Pairs>,
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub mtls: bool,
    pub connection_id: u64,
    /// Whether the client ends the stream; a client that does not keeps it open until it
    /// gives up.
    pub ends: bool,
}

/// The upstream's answer.
#[derive(Clone, Debug, Default)]
pub struct UpstreamResponse {
    pub status: u16,
    pub headers: Pairs,
    pub body_chunks: Vec<Vec<u8>>,
    pub trailers: Option<Pairs>,
}

/// The request as the upstream receives it, after the filter.
#[derive(Clone, Debug, Default)]
pub struct ForwardedRequest {
    /// Headers including the `:method`, `:path`, `:authority` and `:scheme` pseudo-headers.
    pub headers: Pairs,
    pub body: Vec<u8>,
    pub trailers: Option<Pairs>,
}

impl ForwardedRequest {
    /// Returns the first value of a header.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        first_header(&self.headers, name)
    }
}

/// What the client receives.
#[derive(Clone, Debug, Default)]
pub struct ClientResponse {
    /// 0 when the stream was reset.
    pub status: u16,
    /// Headers without the `:status` pseudo-header.
    pub headers: Pairs,
    pub body: Vec<u8>,
    pub trailers: Option<Pairs>,
    /// Whether the response was made by the host or the plugin rather than the upstream.
    pub local: bool,
    /// The response code details Envoy would log (`via_upstream`, the plugin's details...).
    pub details: String,
}

/// Where a stream stands after a poll.
#[derive(Debug)]
pub enum StreamPoll {
    /// Paused by the plugin, waiting for `proxy_continue_stream` (after an http call answer).
    Waiting,
    /// The request is ready for the upstream; answer with [`Vm::set_upstream_response`].
    NeedUpstream(ForwardedRequest),
    /// The stream is over.
    Done(ClientResponse),
}

fn first_header<'a>(headers: &'a Pairs, name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v.as_slice())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Start,
    RequestHeadersPaused,
    RequestBody,
    RequestTrailers,
    RequestTrailersPaused,
    SendUpstream,
    AwaitUpstream,
    ResponseHeaders,
    ResponseHeadersPaused,
    ResponseBody,
    ResponseTrailers,
    ResponseTrailersPaused,
    Complete,
    Finished,
}

/// Host-side progress of one stream.
#[derive(Debug)]
pub(crate) struct StreamDriver {
    client: ClientRequest,
    stage: Stage,
    next_chunk: usize,
    buffering: bool,
    /// Data that arrived while the headers were paused is delivered in one callback.
    coalesce: bool,
    forwarded: ForwardedRequest,
    upstream: Option<UpstreamResponse>,
    response_headers: Pairs,
    response_body: Vec<u8>,
    response_trailers: Option<Pairs>,
    /// The VM failed open during this stream: the rest goes past the plugin.
    bypass: bool,
    context_created: bool,
    /// The response headers reached the module (a local response now replaces less in ngx).
    response_started: bool,
    bypass_response_body: bool,
}

/// The request headers Envoy's HTTP/1 codec and connection manager hand the filter chain:
/// pseudo-headers first, names lower-cased, `host` folded into `:authority`, then
/// `x-forwarded-proto` and `x-request-id` added when absent.
pub(crate) fn request_header_map(request: &ClientRequest, request_id: u64) -> Pairs {
    let mut authority = request.authority.clone();
    let mut regular: Pairs = Vec::new();
    for (name, value) in &request.headers {
        let name = name.to_ascii_lowercase();
        if name == b"host" {
            if authority.is_empty() {
                authority = value.clone();
            }
            continue;
        }
        regular.push((name, value.clone()));
    }
    let mut map: Pairs = vec![
        (b":authority".to_vec(), authority),
        (b":path".to_vec(), request.path.clone()),
        (b":method".to_vec(), request.method.clone()),
        (b":scheme".to_vec(), request.scheme.clone()),
    ];
    map.extend(regular);
    if first_header(&map, "x-forwarded-proto").is_none() {
        map.push((b"x-forwarded-proto".to_vec(), request.scheme.clone()));
    }
    if first_header(&map, "x-request-id").is_none() {
        let id = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            request.connection_id as u32, request_id
        );
        map.push((b"x-request-id".to_vec(), id.into_bytes()));
    }
    map
}

/// The request headers nginx hands ngx_wasm_module: names as the client sent them, `host`
/// kept beside `:authority`, and `:authority` made of the server name and listening port.
fn ngx_request_header_map(request: &ClientRequest, server_name: &str) -> Pairs {
    let authority = format!("{server_name}:{}", request.destination.port());
    let mut map: Pairs = vec![
        (b":authority".to_vec(), authority.into_bytes()),
        (b":path".to_vec(), request.path.clone()),
        (b":method".to_vec(), request.method.clone()),
        (b":scheme".to_vec(), request.scheme.clone()),
    ];
    let has_host = request
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case(b"host"));
    if !has_host && !request.authority.is_empty() {
        map.push((b"Host".to_vec(), request.authority.clone()));
    }
    map.extend(request.headers.iter().cloned());
    map
}

fn response_header_map(response: &UpstreamResponse, keep_case: bool) -> Pairs {
    let mut map: Pairs = vec![(
        b":status".to_vec(),
        response.status.to_string().into_bytes(),
    )];
    if keep_case {
        map.extend(response.headers.iter().cloned());
        return map;
    }
    map.extend(
        response
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
    );
    map
}

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// What Envoy's HTTP/1 codec rejects with 400 before any filter runs: an empty or invalid
/// method, an empty path, header names that are empty, pseudo-headers or not tokens, and
/// header values with NUL, CR or LF.
fn codec_error(request: &ClientRequest) -> Option<&'static str> {
    if request.method.is_empty() || !request.method.iter().all(|b| is_token_byte(*b)) {
        return Some("http1.invalid_method");
    }
    if request.path.is_empty() || request.path.iter().any(|b| *b <= b' ' || *b == 0x7f) {
        return Some("http1.invalid_url");
    }
    for (name, value) in &request.headers {
        if name.is_empty() || !name.iter().all(|b| is_token_byte(*b)) {
            return Some("http1.invalid_characters");
        }
        if value.iter().any(|b| matches!(b, 0 | b'\r' | b'\n')) {
            return Some("http1.invalid_characters");
        }
    }
    None
}

fn headers_too_large(request: &ClientRequest, limits: &crate::state::Limits) -> bool {
    let size: usize = request
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>()
        + request.path.len()
        + request.authority.len()
        + request.method.len();
    size > limits.max_request_headers_kb * 1024
}

/// Returns the response Envoy's codec sends before any filter runs: 400 for a request it
/// cannot parse, 431 for one over the header count or size limit.
pub(crate) fn codec_rejection(
    request: &ClientRequest,
    limits: &crate::state::Limits,
) -> Option<ClientResponse> {
    if let Some(reason) = codec_error(request) {
        return Some(host_response(400, reason, ""));
    }
    if request.headers.len() > limits.max_headers_count {
        return Some(host_response(431, "too_many_headers", ""));
    }
    if headers_too_large(request, limits) {
        return Some(host_response(431, "headers_too_large", ""));
    }
    None
}

fn host_response(status: u16, details: &str, body: &str) -> ClientResponse {
    let mut headers: Pairs = Vec::new();
    if !body.is_empty() {
        headers.push((b"content-type".to_vec(), b"text/plain".to_vec()));
    }
    headers.push((
        b"content-length".to_vec(),
        body.len().to_string().into_bytes(),
    ));
    ClientResponse {
        status,
        headers,
        body: body.as_bytes().to_vec(),
        trailers: None,
        local: true,
        details: details.to_string(),
    }
}

/// A local response under ngx_wasm_module: a non-empty body gets a trailing newline, and once
/// the response headers reached the module only the status changes: the upstream's headers
/// stay and the body is cut to the upstream's Content-Length.
fn ngx_local_response(mut local: LocalResponse, driver: Option<&StreamDriver>) -> ClientResponse {
    if !local.body.is_empty() {
        local.body.push(b'\n');
    }
    let Some(upstream) = driver
        .filter(|d| d.response_started)
        .and_then(|d| d.upstream.as_ref())
    else {
        return local_client_response(local);
    };
    let mut body = local.body;
    let length = first_header(&upstream.headers, "content-length")
        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok());
    if let Some(length) = length {
        body.truncate(length);
    }
    ClientResponse {
        status: u16::try_from(local.status).unwrap_or(500),
        headers: upstream.headers.clone(),
        body,
        trailers: None,
        local: true,
        details: local.details,
    }
}

pub(crate) fn local_client_response(local: LocalResponse) -> ClientResponse {
    let mut headers = local.headers;
    headers.retain(|(k, _)| k != b":status" && k != b"content-length");
    if !local.body.is_empty() && first_header(&headers, "content-type").is_none() {
        headers.push((b"content-type".to_vec(), b"text/plain".to_vec()));
    }
    headers.push((
        b"content-length".to_vec(),
        local.body.len().to_string().into_bytes(),
    ));
    ClientResponse {
        status: u16::try_from(local.status).unwrap_or(500),
        headers,
        body: local.body,
        trailers: None,
        local: true,
        details: local.details,
    }
}

impl Vm {
    /// Starts a stream for a client request and returns its context id. Nothing runs until
    /// the first [`Vm::poll_stream`].
    pub fn start_stream(&mut self, client: ClientRequest) -> u32 {
        let id = self.new_context_id();
        let connection = Connection {
            id: client.connection_id,
            source: client.source,
            destination: client.destination,
            mtls: client.mtls,
            tls: client.scheme == b"https",
        };
        let now = self.shared().clock.now_nanos();
        self.store
            .data_mut()
            .streams
            .insert(id, StreamMaps::new(connection, now));
        let driver = StreamDriver {
            client,
            stage: Stage::Start,
            next_chunk: 0,
            buffering: false,
            coalesce: false,
            forwarded: ForwardedRequest::default(),
            upstream: None,
            response_headers: Vec::new(),
            response_body: Vec::new(),
            response_trailers: None,
            bypass: false,
            context_created: false,
            response_started: false,
            bypass_response_body: false,
        };
        self.streams.insert(id, driver);
        id
    }

    /// Hands the upstream's answer to a stream that returned [`StreamPoll::NeedUpstream`].
    pub fn set_upstream_response(&mut self, id: u32, response: UpstreamResponse) {
        if let Some(driver) = self.streams.get_mut(&id) {
            driver.upstream = Some(response);
        }
    }

    /// Whether the stream has not finished.
    pub fn stream_open(&self, id: u32) -> bool {
        self.streams.contains_key(&id)
    }

    /// Ends a stream the client gave up on (a timeout or a closed connection), running the
    /// end-of-stream callbacks. Returns false when the stream had already finished.
    pub fn abandon_stream(&mut self, id: u32) -> bool {
        if !self.streams.contains_key(&id) {
            return false;
        }
        self.finish(id, false);
        true
    }

    /// Runs a stream as far as it can go.
    pub fn poll_stream(&mut self, id: u32) -> StreamPoll {
        loop {
            let Some(driver) = self.streams.get(&id) else {
                return StreamPoll::Done(host_response(500, "stream_not_found", ""));
            };
            if self.failed.is_some() && !driver.bypass {
                if let Some(done) = self.fail_stream(id) {
                    return done;
                }
                continue;
            }
            if let Some(done) = self.finish_if_ended(id) {
                return done;
            }
            let stage = self
                .streams
                .get(&id)
                .map(|d| d.stage)
                .unwrap_or(Stage::Finished);
            match stage {
                Stage::Start => {
                    if let Some(done) = self.request_headers(id) {
                        return done;
                    }
                }
                Stage::RequestHeadersPaused => {
                    if !self.take_continue(id, true) {
                        return StreamPoll::Waiting;
                    }
                    self.forward_request_headers(id);
                    self.set(id, |d| {
                        d.coalesce = true;
                        d.stage = Stage::RequestBody;
                    });
                }
                Stage::RequestBody => {
                    if !self.request_body(id) {
                        return StreamPoll::Waiting;
                    }
                }
                Stage::RequestTrailers => self.request_trailers(id),
                Stage::RequestTrailersPaused => {
                    if !self.take_continue(id, true) {
                        return StreamPoll::Waiting;
                    }
                    self.forward_request_rest(id);
                }
                Stage::SendUpstream => {
                    self.set(id, |d| d.stage = Stage::AwaitUpstream);
                    let forwarded = self
                        .streams
                        .get(&id)
                        .map(|d| d.forwarded.clone())
                        .unwrap_or_default();
                    return StreamPoll::NeedUpstream(forwarded);
                }
                Stage::AwaitUpstream => {
                    let ready = self.streams.get(&id).is_some_and(|d| d.upstream.is_some());
                    if !ready {
                        return StreamPoll::Waiting;
                    }
                    self.set(id, |d| d.stage = Stage::ResponseHeaders);
                }
                Stage::ResponseHeaders => self.response_headers(id),
                Stage::ResponseHeadersPaused => {
                    if !self.take_continue(id, false) {
                        return StreamPoll::Waiting;
                    }
                    self.forward_response_headers(id);
                    self.set(id, |d| {
                        d.coalesce = true;
                        d.stage = Stage::ResponseBody;
                    });
                }
                Stage::ResponseBody => {
                    if !self.response_body(id) {
                        return StreamPoll::Waiting;
                    }
                }
                Stage::ResponseTrailers => self.response_trailers(id),
                Stage::ResponseTrailersPaused => {
                    if !self.take_continue(id, false) {
                        return StreamPoll::Waiting;
                    }
                    self.forward_response_rest(id);
                }
                Stage::Complete => return StreamPoll::Done(self.finish(id, true)),
                Stage::Finished => {
                    return StreamPoll::Done(host_response(500, "stream_finished", ""))
                }
            }
        }
    }

    fn set(&mut self, id: u32, change: impl FnOnce(&mut StreamDriver)) {
        if let Some(driver) = self.streams.get_mut(&id) {
            change(driver);
        }
    }

    fn maps(&mut self, id: u32) -> Option<&mut StreamMaps> {
        self.store.data_mut().streams.get_mut(&id)
    }

    fn take_continue(&mut self, id: u32, request: bool) -> bool {
        let Some(maps) = self.maps(id) else {
            return false;
        };
        let flag = if request {
            &mut maps.continue_request
        } else {
            &mut maps.continue_response
        };
        std::mem::take(flag)
    }

    fn bypassing(&self, id: u32) -> bool {
        self.streams.get(&id).is_some_and(|d| d.bypass)
    }

    /// A local response or a reset made by the last callback ends the stream.
    fn finish_if_ended(&mut self, id: u32) -> Option<StreamPoll> {
        let maps = self.store.data().streams.get(&id)?;
        if maps.local_response.is_some() || maps.reset {
            return Some(StreamPoll::Done(self.finish(id, true)));
        }
        None
    }

    /// Applies the failure policy to a stream whose VM trapped.
    fn fail_stream(&mut self, id: u32) -> Option<StreamPoll> {
        if self.options().ngx() {
            // ngx_wasm_module answers 500 and recreates the instance for the next request.
            self.streams.remove(&id);
            self.store.data_mut().streams.remove(&id);
            return Some(StreamPoll::Done(host_response(500, "wasm_trap", "")));
        }
        match self.failure_policy() {
            FailurePolicy::FailOpen => {
                self.set(id, |d| d.bypass = true);
                None
            }
            FailurePolicy::FailClosed | FailurePolicy::FailReload => {
                self.streams.remove(&id);
                self.store.data_mut().streams.remove(&id);
                Some(StreamPoll::Done(host_response(503, "wasm_fail_stream", "")))
            }
        }
    }

    fn ensure_context(&mut self, id: u32) {
        let created = self.streams.get(&id).is_some_and(|d| d.context_created);
        if created {
            return;
        }
        self.set(id, |d| d.context_created = true);
        let root = self.store.data().root_context_id;
        if let Some(create) = self.exports.context_create.clone() {
            self.invoke("proxy_on_context_create", id, Callback::Other, |s| {
                create.call(s, (id as i32, root as i32))
            });
        }
    }

    fn request_headers(&mut self, id: u32) -> Option<StreamPoll> {
        let driver = self.streams.get(&id)?;
        let limits = self.options().limits;
        let client = &driver.client;
        if let Some(response) = codec_rejection(client, &limits) {
            self.streams.remove(&id);
            self.store.data_mut().streams.remove(&id);
            return Some(StreamPoll::Done(response));
        }
        let map = if self.options().ngx() {
            ngx_request_header_map(client, "localhost")
        } else {
            request_header_map(client, u64::from(id))
        };
        let end_of_stream =
            client.body_chunks.is_empty() && client.trailers.is_none() && client.ends;
        let count = map.len() as i32;
        if let Some(maps) = self.maps(id) {
            maps.request_headers = Some(map);
        }
        self.ensure_context(id);
        let action = match self.exports.request_headers.clone() {
            Some(callback) if !self.bypassing(id) => {
                self.invoke("proxy_on_request_headers", id, Callback::Other, |s| {
                    callback.call(s, (id as i32, count, i32::from(end_of_stream)))
                })
            }
            _ => Some(ACTION_CONTINUE),
        };
        match action {
            Some(ACTION_CONTINUE) | None => {
                self.forward_request_headers(id);
                self.set(id, |d| d.stage = Stage::RequestBody);
            }
            Some(_) => self.set(id, |d| d.stage = Stage::RequestHeadersPaused),
        }
        None
    }

    /// Passes the request headers on. Envoy then drops its pointer to them, so later
    /// callbacks find no request header map until the access-log phase.
    fn forward_request_headers(&mut self, id: u32) {
        let headers = match self.maps(id) {
            Some(maps) => {
                let headers = maps.request_headers.take();
                maps.access_log_request_headers.clone_from(&headers);
                headers.unwrap_or_default()
            }
            None => Vec::new(),
        };
        self.set(id, |d| d.forwarded.headers = headers);
    }

    /// Delivers the next request data; returns false when the stream must wait.
    fn request_body(&mut self, id: u32) -> bool {
        let Some(driver) = self.streams.get_mut(&id) else {
            return false;
        };
        if driver.buffering
            && self
                .store
                .data_mut()
                .streams
                .get_mut(&id)
                .is_some_and(|m| std::mem::take(&mut m.continue_request))
        {
            let buffered = self
                .maps(id)
                .and_then(|m| m.request_body.take())
                .unwrap_or_default();
            self.set(id, |d| {
                d.forwarded.body.extend_from_slice(&buffered);
                d.buffering = false;
            });
        }
        let ngx = self.options().ngx();
        let Some(driver) = self.streams.get_mut(&id) else {
            return false;
        };
        let total = driver.client.body_chunks.len();
        if driver.next_chunk >= total {
            let incomplete = !driver.client.ends && driver.client.trailers.is_none();
            if incomplete || (driver.buffering && driver.client.trailers.is_none()) {
                return false;
            }
            driver.stage = Stage::RequestTrailers;
            return true;
        }
        let chunk: Vec<u8> = if driver.coalesce {
            let rest = driver.client.body_chunks[driver.next_chunk..].concat();
            driver.next_chunk = total;
            rest
        } else {
            driver.next_chunk += 1;
            driver.client.body_chunks[driver.next_chunk - 1].clone()
        };
        driver.coalesce = false;
        // nginx reads a trailer section itself and ends the body before it, so
        // ngx_wasm_module marks the last chunk as the end whether trailers follow.
        let trailers_follow = driver.client.trailers.is_some() && !ngx;
        let end_of_stream = driver.next_chunk == total && !trailers_follow && driver.client.ends;
        let buffering = driver.buffering;
        // nginx writes a request body larger than client_body_buffer_size (16 KiB on 64-bit
        // machines) to a temporary file, and ngx_wasm_module then hands the module nothing.
        let body_size: usize = driver.client.body_chunks.iter().map(Vec::len).sum();
        let spooled = ngx && body_size > NGX_BODY_BUFFER;
        let Some(maps) = self.maps(id) else {
            return false;
        };
        let mut buffer = if buffering {
            maps.request_body.take().unwrap_or_default()
        } else {
            Vec::new()
        };
        if spooled {
            // The module sees an empty body; the real data still goes upstream.
            self.set(id, |d| d.forwarded.body.extend_from_slice(&chunk));
        } else {
            buffer.extend_from_slice(&chunk);
        }
        let Some(maps) = self.maps(id) else {
            return false;
        };
        let size = buffer.len() as i32;
        maps.request_body = Some(buffer);
        let action = match self.exports.request_body.clone() {
            Some(callback) if !self.bypassing(id) => {
                self.invoke("proxy_on_request_body", id, Callback::Other, |s| {
                    callback.call(s, (id as i32, size, i32::from(end_of_stream)))
                })
            }
            _ => Some(ACTION_CONTINUE),
        };
        match action {
            Some(ACTION_CONTINUE) | None => {
                let buffer = self
                    .maps(id)
                    .and_then(|m| m.request_body.take())
                    .unwrap_or_default();
                self.set(id, |d| {
                    d.forwarded.body.extend_from_slice(&buffer);
                    d.buffering = false;
                });
            }
            Some(_) => self.set(id, |d| d.buffering = true),
        }
        true
    }

    fn request_trailers(&mut self, id: u32) {
        let Some(trailers) = self
            .streams
            .get(&id)
            .and_then(|d| d.client.trailers.clone())
        else {
            self.forward_request_rest(id);
            return;
        };
        let trailers: Pairs = trailers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let count = trailers.len() as i32;
        if let Some(maps) = self.maps(id) {
            maps.request_trailers = Some(trailers);
        }
        // ngx_wasm_module does not call the trailer callbacks.
        let action = match self.exports.request_trailers.clone() {
            Some(callback) if !self.bypassing(id) && !self.options().ngx() => {
                self.invoke("proxy_on_request_trailers", id, Callback::Other, |s| {
                    callback.call(s, (id as i32, count))
                })
            }
            _ => Some(ACTION_CONTINUE),
        };
        match action {
            Some(ACTION_CONTINUE) | None => self.forward_request_rest(id),
            Some(_) => self.set(id, |d| d.stage = Stage::RequestTrailersPaused),
        }
    }

    /// Passes any buffered body and the trailers on and sends the request upstream.
    fn forward_request_rest(&mut self, id: u32) {
        let maps = self.maps(id);
        let (buffered, trailers) = match maps {
            Some(m) => (m.request_body.take(), m.request_trailers.take()),
            None => (None, None),
        };
        self.set(id, |d| {
            if d.buffering {
                d.forwarded
                    .body
                    .extend_from_slice(&buffered.unwrap_or_default());
                d.buffering = false;
            }
            d.forwarded.trailers = trailers;
            d.stage = Stage::SendUpstream;
        });
    }

    fn response_headers(&mut self, id: u32) {
        let Some(upstream) = self.streams.get(&id).and_then(|d| d.upstream.clone()) else {
            return;
        };
        let map = response_header_map(&upstream, self.options().ngx());
        self.set(id, |d| d.response_started = true);
        let end_of_stream = upstream.body_chunks.is_empty() && upstream.trailers.is_none();
        let count = map.len() as i32;
        if let Some(maps) = self.maps(id) {
            maps.response_headers = Some(map);
        }
        let action = match self.exports.response_headers.clone() {
            Some(callback) if !self.bypassing(id) => {
                self.invoke("proxy_on_response_headers", id, Callback::Other, |s| {
                    callback.call(s, (id as i32, count, i32::from(end_of_stream)))
                })
            }
            _ => Some(ACTION_CONTINUE),
        };
        match action {
            Some(ACTION_CONTINUE) | None => {
                self.forward_response_headers(id);
                self.set(id, |d| {
                    d.next_chunk = 0;
                    d.buffering = false;
                    d.coalesce = false;
                    d.stage = Stage::ResponseBody;
                });
            }
            Some(_) => self.set(id, |d| {
                d.next_chunk = 0;
                d.buffering = false;
                d.stage = Stage::ResponseHeadersPaused;
            }),
        }
    }

    fn forward_response_headers(&mut self, id: u32) {
        let headers = match self.maps(id) {
            Some(maps) => {
                let headers = maps.response_headers.take();
                maps.access_log_response_headers.clone_from(&headers);
                headers.unwrap_or_default()
            }
            None => Vec::new(),
        };
        self.set(id, |d| d.response_headers = headers);
    }

    fn response_body(&mut self, id: u32) -> bool {
        let Some(driver) = self.streams.get_mut(&id) else {
            return false;
        };
        if driver.buffering
            && self
                .store
                .data_mut()
                .streams
                .get_mut(&id)
                .is_some_and(|m| std::mem::take(&mut m.continue_response))
        {
            let buffered = self
                .maps(id)
                .and_then(|m| m.response_body.take())
                .unwrap_or_default();
            self.set(id, |d| {
                d.response_body.extend_from_slice(&buffered);
                d.buffering = false;
            });
        }
        let ngx = self.options().ngx();
        let Some(driver) = self.streams.get_mut(&id) else {
            return false;
        };
        let Some(upstream) = driver.upstream.as_ref() else {
            return false;
        };
        let total = upstream.body_chunks.len();
        let has_trailers = upstream.trailers.is_some();
        if driver.next_chunk >= total {
            if driver.buffering && !has_trailers {
                return false;
            }
            driver.stage = Stage::ResponseTrailers;
            return true;
        }
        let chunk: Vec<u8> = if driver.coalesce {
            let rest = upstream.body_chunks[driver.next_chunk..].concat();
            driver.next_chunk = total;
            rest
        } else {
            driver.next_chunk += 1;
            upstream.body_chunks[driver.next_chunk - 1].clone()
        };
        driver.coalesce = false;
        let end_of_stream = driver.next_chunk == total && (!has_trailers || ngx);
        let buffering = driver.buffering;
        let Some(maps) = self.maps(id) else {
            return false;
        };
        let mut buffer = if buffering {
            maps.response_body.take().unwrap_or_default()
        } else {
            Vec::new()
        };
        buffer.extend_from_slice(&chunk);
        if ngx && buffering && buffer.len() > NGX_BODY_BUFFER {
            // Past ngx_wasm_module's response buffering cap the body passes unmodified and
            // the module sees no more of it.
            self.set(id, |d| {
                d.response_body.extend_from_slice(&buffer);
                d.buffering = false;
                d.bypass_response_body = true;
            });
            return true;
        }
        let size = buffer.len() as i32;
        if let Some(maps) = self.maps(id) {
            maps.response_body = Some(buffer);
        }
        let skip = self
            .streams
            .get(&id)
            .is_some_and(|d| d.bypass_response_body);
        let action = match self.exports.response_body.clone() {
            Some(callback) if !self.bypassing(id) && !skip => {
                self.invoke("proxy_on_response_body", id, Callback::Other, |s| {
                    callback.call(s, (id as i32, size, i32::from(end_of_stream)))
                })
            }
            _ => Some(ACTION_CONTINUE),
        };
        match action {
            Some(ACTION_CONTINUE) | None => {
                let buffer = self
                    .maps(id)
                    .and_then(|m| m.response_body.take())
                    .unwrap_or_default();
                self.set(id, |d| {
                    d.response_body.extend_from_slice(&buffer);
                    d.buffering = false;
                });
            }
            Some(_) => self.set(id, |d| d.buffering = true),
        }
        true
    }

    fn response_trailers(&mut self, id: u32) {
        let Some(trailers) = self
            .streams
            .get(&id)
            .and_then(|d| d.upstream.as_ref().and_then(|u| u.trailers.clone()))
        else {
            self.forward_response_rest(id);
            return;
        };
        let trailers: Pairs = trailers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let count = trailers.len() as i32;
        if let Some(maps) = self.maps(id) {
            maps.response_trailers = Some(trailers);
        }
        let action = match self.exports.response_trailers.clone() {
            Some(callback) if !self.bypassing(id) && !self.options().ngx() => {
                self.invoke("proxy_on_response_trailers", id, Callback::Other, |s| {
                    callback.call(s, (id as i32, count))
                })
            }
            _ => Some(ACTION_CONTINUE),
        };
        match action {
            Some(ACTION_CONTINUE) | None => self.forward_response_rest(id),
            Some(_) => self.set(id, |d| d.stage = Stage::ResponseTrailersPaused),
        }
    }

    fn forward_response_rest(&mut self, id: u32) {
        let (buffered, trailers) = match self.maps(id) {
            Some(m) => (m.response_body.take(), m.response_trailers.take()),
            None => (None, None),
        };
        self.set(id, |d| {
            if d.buffering {
                d.response_body
                    .extend_from_slice(&buffered.unwrap_or_default());
                d.buffering = false;
            }
            d.response_trailers = trailers;
            d.stage = Stage::Complete;
        });
    }

    /// Builds the client's response, then runs `proxy_on_log`, `proxy_on_done` and
    /// `proxy_on_delete` (Envoy's order: the access log phase precedes the stream's
    /// destruction) and forgets the stream.
    fn finish(&mut self, id: u32, run_callbacks: bool) -> ClientResponse {
        let driver = self.streams.remove(&id);
        let maps = self.maps(id);
        let local = maps.as_ref().and_then(|m| m.local_response.clone());
        let reset = maps.as_ref().is_some_and(|m| m.reset);
        let mut response = if reset {
            ClientResponse {
                status: 0,
                details: "reset_by_filter".to_string(),
                ..ClientResponse::default()
            }
        } else if let Some(local) = local {
            if self.options().ngx() {
                ngx_local_response(local, driver.as_ref())
            } else {
                local_client_response(local)
            }
        } else if let Some(driver) = driver {
            let status = first_header(&driver.response_headers, ":status")
                .and_then(|s| std::str::from_utf8(s).ok()?.parse().ok())
                .unwrap_or(0);
            let mut headers = driver.response_headers;
            headers.retain(|(k, _)| !k.starts_with(b":"));
            ClientResponse {
                status,
                headers,
                body: driver.response_body,
                trailers: driver.response_trailers,
                local: false,
                details: "via_upstream".to_string(),
            }
        } else {
            host_response(500, "stream_not_found", "")
        };
        match self.options().server_header {
            ServerHeader::PassThrough => {}
            ServerHeader::Overwrite => {
                response.headers.retain(|(k, _)| k != b"server");
                response
                    .headers
                    .push((b"server".to_vec(), b"envoy".to_vec()));
            }
            ServerHeader::AppendIfAbsent => {
                if first_header(&response.headers, "server").is_none() {
                    response
                        .headers
                        .push((b"server".to_vec(), b"envoy".to_vec()));
                }
            }
        }
        if run_callbacks && self.failed.is_none() {
            self.end_callbacks(id);
        }
        self.store.data_mut().streams.remove(&id);
        response
    }

    fn end_callbacks(&mut self, id: u32) {
        if let Some(maps) = self.maps(id) {
            if maps.request_headers.is_none() {
                maps.request_headers = maps.access_log_request_headers.take();
            }
            if maps.response_headers.is_none() {
                maps.response_headers = maps.access_log_response_headers.take();
            }
        }
        if let Some(log) = self.exports.log.clone() {
            self.invoke("proxy_on_log", id, Callback::Other, |s| {
                log.call(s, id as i32)
            });
        }
        if let Some(done) = self.exports.done.clone() {
            if self.invoke("proxy_on_done", id, Callback::Other, |s| {
                done.call(s, id as i32)
            }) == Some(0)
            {
                self.store.data_mut().pending_done.push(id);
            }
        }
        if let Some(delete) = self.exports.delete.clone() {
            self.invoke("proxy_on_delete", id, Callback::Other, |s| {
                delete.call(s, id as i32)
            });
        }
    }
}

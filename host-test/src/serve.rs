//! `host-test serve`: a loopback reverse proxy that runs every exchange through the module
//! on worker threads, one VM each, as Envoy's workers do; and `host-test bench`.
//!
//! As in Envoy, a connection belongs to one worker, and that worker's thread reads it,
//! runs the module's callbacks for its requests and writes the responses, so no
//! request crosses threads. Without a module the same workers forward requests as they are.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::{mpsc, Notify};

use crate::abi::Pairs;
use crate::module::{self, Plugin};
use crate::shared::{Clock, HostShared};
use crate::state::{CallResponse, FailurePolicy, OutgoingCall, VmOptions};
use crate::stream::{
    ClientRequest, ClientResponse, ForwardedRequest, StreamPoll, UpstreamResponse,
};
use crate::vm::Vm;

/// Arguments of `host-test serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The module; without it requests are proxied with no module, as a baseline.
    #[arg(long)]
    pub plugin: Option<PathBuf>,
    /// File holding the plugin configuration (JSON text, passed to the module unchanged).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// File holding the VM configuration.
    #[arg(long)]
    pub vm_config: Option<PathBuf>,
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Upstream base URL (http://127.0.0.1:PORT) or `builtin` for the demo application.
    #[arg(long, default_value = "builtin")]
    pub upstream: String,
    /// Number of worker threads, each with its own VM.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// A cluster for the module's http calls, as NAME=URL (repeatable).
    #[arg(long = "cluster", value_parser = parse_cluster)]
    pub clusters: Vec<(String, String)>,
    /// What happens to requests after the module traps.
    #[arg(long, value_enum, default_value = "fail-closed")]
    pub failure_policy: PolicyArg,
    /// Host to reproduce: Envoy's or Kong's ngx_wasm_module.
    #[arg(long, value_enum, default_value = "envoy")]
    pub host: crate::state::HostProfile,
    /// Plugin name reported to the module as the `plugin_name` property.
    #[arg(long, default_value = "portcullis")]
    pub plugin_name: String,
}

/// Failure policy names on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum PolicyArg {
    FailOpen,
    FailClosed,
    FailReload,
}

fn parse_cluster(text: &str) -> Result<(String, String), String> {
    let (name, url) = text.split_once('=').ok_or("expected NAME=URL")?;
    if name.is_empty() || !url.starts_with("http://") {
        return Err("expected NAME=http://HOST:PORT".to_string());
    }
    Ok((name.to_string(), url.trim_end_matches('/').to_string()))
}

/// Where forwarded requests go.
#[derive(Clone)]
enum Upstream {
    Builtin,
    Url(String),
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A connection the listener accepted, handed to the worker that will own it.
struct Accepted {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    connection: u64,
}

fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Runs the proxy until interrupted.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if !is_loopback(&args.listen) {
        bail!(
            "--listen {}: only loopback addresses are allowed",
            args.listen
        );
    }
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    let upstream = match args.upstream.as_str() {
        "builtin" => Upstream::Builtin,
        url if url.starts_with("http://") => Upstream::Url(url.trim_end_matches('/').to_string()),
        other => bail!("--upstream {other:?}: expected http://HOST:PORT or builtin"),
    };
    let plugin = match &args.plugin {
        Some(path) => Some(Plugin::load(&module::engine()?, path)?),
        None => None,
    };
    let read = |path: &Option<PathBuf>| -> anyhow::Result<Vec<u8>> {
        match path {
            Some(p) => std::fs::read(p).with_context(|| format!("failed to read {}", p.display())),
            None => Ok(Vec::new()),
        }
    };
    let options = Arc::new(VmOptions {
        plugin_name: args.plugin_name.clone(),
        plugin_configuration: read(&args.config)?,
        vm_configuration: read(&args.vm_config)?,
        clusters: args.clusters.iter().map(|(name, _)| name.clone()).collect(),
        failure_policy: match args.failure_policy {
            PolicyArg::FailOpen => FailurePolicy::FailOpen,
            PolicyArg::FailClosed => FailurePolicy::FailClosed,
            PolicyArg::FailReload => FailurePolicy::FailReload,
        },
        log_level: crate::state::LogLevel::Info,
        host: args.host,
        ..VmOptions::default()
    });
    let clusters: Arc<HashMap<String, String>> = Arc::new(args.clusters.iter().cloned().collect());
    let shared = HostShared::new(Clock::system());
    let mut workers = Vec::new();
    for index in 0..args.workers {
        let vm = match &plugin {
            Some(plugin) => {
                let mut vm = Vm::start(plugin, options.clone(), shared.clone(), index)
                    .map_err(|e| anyhow::anyhow!("worker {index}: {e}"))?;
                print_logs(index, &mut vm);
                Some(vm)
            }
            None => None,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let (upstream, clusters) = (upstream.clone(), clusters.clone());
        std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || run_worker(index, vm, upstream, clusters, rx))
            .context("failed to start a worker thread")?;
        workers.push(tx);
    }
    let module_note = match &args.plugin {
        Some(path) => format!("module {}", path.display()),
        None => "no module".to_string(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("failed to install the SIGTERM handler")?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("failed to listen on {}", args.listen))?;
        eprintln!(
            "host-test serve: listening on http://{} ({module_note}, {} workers, upstream {})",
            args.listen, args.workers, args.upstream
        );
        let mut connections: u64 = 0;
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("host-test serve: interrupted, stopping");
                    return Ok(());
                }
                _ = terminate.recv() => {
                    eprintln!("host-test serve: terminated, stopping");
                    return Ok(());
                }
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("host-test serve: accept failed: {error}");
                    continue;
                }
            };
            let local = stream.local_addr().unwrap_or(args.listen);
            let stream = match stream.into_std() {
                Ok(stream) => stream,
                Err(error) => {
                    eprintln!("host-test serve: connection from {peer} failed: {error}");
                    continue;
                }
            };
            let connection = connections;
            connections += 1;
            let worker = (connection % workers.len() as u64) as usize;
            let accepted = Accepted {
                stream,
                peer,
                local,
                connection,
            };
            if workers[worker].send(accepted).is_err() {
                eprintln!("host-test serve: worker {worker} has stopped, dropping the connection from {peer}");
            }
        }
    })
}

fn print_logs(worker: usize, vm: &mut Vm) {
    for line in vm.take_logs() {
        eprintln!("[worker {worker}] [{:?}] {}", line.level, line.message);
    }
}

/// Runs one worker thread: an event loop that serves the connections handed to it.
fn run_worker(
    index: usize,
    vm: Option<Vm>,
    upstream: Upstream,
    clusters: Arc<HashMap<String, String>>,
    mut connections: mpsc::UnboundedReceiver<Accepted>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("[worker {index}] failed to start its event loop: {error}");
            return;
        }
    };
    let tasks = tokio::task::LocalSet::new();
    tasks.block_on(&runtime, async move {
        let worker = Rc::new(Worker {
            index,
            vm: vm.map(RefCell::new),
            resumed: Notify::new(),
            retick: Notify::new(),
            tick_due: Cell::new(None),
            client: Client::builder(TokioExecutor::new()).build_http(),
            upstream,
            clusters,
        });
        if let Some(vm) = &worker.vm {
            worker.after_callbacks(&mut vm.borrow_mut());
            tokio::task::spawn_local(worker.clone().run_ticks());
        }
        while let Some(accepted) = connections.recv().await {
            tokio::task::spawn_local(worker.clone().serve_connection(accepted));
        }
    });
}

/// State of one worker thread. Its fields are used from that thread only, and the VM is
/// never borrowed across an await.
struct Worker {
    index: usize,
    vm: Option<RefCell<Vm>>,
    /// Woken when an http-call response or a tick may let a paused stream go on.
    resumed: Notify,
    /// Woken when a callback set a tick earlier than the one the tick task waits for.
    retick: Notify,
    /// The tick the tick task waits for.
    tick_due: Cell<Option<u64>>,
    client: HttpClient,
    upstream: Upstream,
    clusters: Arc<HashMap<String, String>>,
}

/// Maximum sleep of the tick task, so that queue notifications from other workers and a
/// failed VM's reload are not left waiting on an idle worker.
const IDLE_POLL: Duration = Duration::from_millis(200);

impl Worker {
    async fn serve_connection(self: Rc<Self>, accepted: Accepted) {
        let Accepted {
            stream,
            peer,
            local,
            connection,
        } = accepted;
        let stream = match tokio::net::TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(error) => {
                eprintln!("host-test serve: connection from {peer} failed: {error}");
                return;
            }
        };
        let service = hyper::service::service_fn(move |request| {
            let worker = self.clone();
            async move { Ok::<_, Infallible>(worker.handle(request, peer, local, connection).await) }
        });
        if let Err(error) = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await
        {
            if !error.is_incomplete_message() {
                eprintln!("host-test serve: connection from {peer} failed: {error}");
            }
        }
    }

    async fn handle(
        self: Rc<Self>,
        request: hyper::Request<Incoming>,
        peer: SocketAddr,
        local: SocketAddr,
        connection: u64,
    ) -> hyper::Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                eprintln!("host-test serve: reading the request body from {peer} failed: {error}");
                return plain(400, "failed to read the request body\n");
            }
        };
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".to_string());
        let headers: Pairs = parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        let client_request = ClientRequest {
            method: parts.method.as_str().as_bytes().to_vec(),
            path: path.into_bytes(),
            authority: Vec::new(),
            scheme: b"http".to_vec(),
            headers,
            body_chunks: body_chunks(&body),
            trailers: None,
            source: peer,
            destination: local,
            mtls: false,
            connection_id: connection,
            ends: true,
        };
        let Some(vm) = &self.vm else {
            let forwarded = forward_as_is(&client_request);
            return to_hyper(
                upstream_exchange(&self.client, &self.upstream, forwarded)
                    .await
                    .into_client(),
            );
        };
        let id = {
            let mut vm = vm.borrow_mut();
            self.recover(&mut vm);
            vm.start_stream(client_request)
        };
        loop {
            let poll = self.poll(vm, id);
            match poll {
                // No other task runs between the poll and this registration, so no
                // wake-up is missed.
                StreamPoll::Waiting => self.resumed.notified().await,
                StreamPoll::NeedUpstream(forwarded) => {
                    let response = upstream_exchange(&self.client, &self.upstream, forwarded).await;
                    vm.borrow_mut().set_upstream_response(id, response);
                }
                StreamPoll::Done(response) if response.status == 0 => {
                    return plain(502, "stream reset by the filter\n")
                }
                StreamPoll::Done(response) => return to_hyper(response),
            }
        }
    }

    /// Runs a stream's pending callbacks. The in-process application responds at once, on
    /// this thread, as it does when no module is loaded.
    fn poll(self: &Rc<Self>, vm: &RefCell<Vm>, id: u32) -> StreamPoll {
        let mut vm = vm.borrow_mut();
        let mut poll = vm.poll_stream(id);
        if let (StreamPoll::NeedUpstream(forwarded), Upstream::Builtin) = (&poll, &self.upstream) {
            let response = builtin_app(forwarded);
            vm.set_upstream_response(id, response);
            poll = vm.poll_stream(id);
        }
        vm.deliver_queue_ready();
        self.after_callbacks(&mut vm);
        poll
    }

    /// Reloads a failed VM when the failure policy or the host profile requires it.
    fn recover(&self, vm: &mut Vm) {
        let reload = vm.failure_policy() == FailurePolicy::FailReload || vm.options().ngx();
        if vm.failure().is_some() && reload {
            match vm.reload() {
                Ok(()) => eprintln!("[worker {}] reloaded the VM after a failure", self.index),
                Err(error) => {
                    eprintln!("[worker {}] reloading the VM failed: {error}", self.index)
                }
            }
        }
    }

    /// Starts the http calls the module requested, prints its logs, and wakes the tick task
    /// when a callback set a tick sooner than the one it waits for.
    fn after_callbacks(self: &Rc<Self>, vm: &mut Vm) {
        for call in vm.take_outgoing_calls() {
            tokio::task::spawn_local(self.clone().http_call(call));
        }
        print_logs(self.index, vm);
        if let Some(due) = vm.next_tick_nanos() {
            if self.tick_due.get().is_none_or(|waited| due < waited) {
                self.retick.notify_one();
            }
        }
    }

    /// Sends one of the module's http calls and delivers its response, or its failure.
    async fn http_call(self: Rc<Self>, call: OutgoingCall) {
        // A timeout of 0 means none in Envoy, but the harness still bounds the wait.
        let timeout = match call.timeout_ms {
            0 => Duration::from_secs(60),
            ms => Duration::from_millis(ms.into()),
        };
        let result = match self.clusters.get(&call.cluster) {
            Some(base) => {
                send(
                    &self.client,
                    base,
                    &call.headers,
                    call.body.clone(),
                    timeout,
                )
                .await
            }
            None => Err(anyhow::anyhow!(
                "cluster not found (add it with --cluster NAME=URL)"
            )),
        };
        let response = match result {
            Ok(response) => {
                let mut headers: Pairs = vec![(
                    b":status".to_vec(),
                    response.status.to_string().into_bytes(),
                )];
                headers.extend(response.headers);
                Some(CallResponse {
                    headers,
                    body: response.body_chunks.concat(),
                    trailers: Vec::new(),
                })
            }
            Err(error) => {
                eprintln!(
                    "host-test serve: http call to cluster {} failed: {error:#}",
                    call.cluster
                );
                None
            }
        };
        let Some(vm) = &self.vm else {
            return;
        };
        {
            let mut vm = vm.borrow_mut();
            vm.deliver_call_response(&call, response);
            vm.deliver_queue_ready();
            self.after_callbacks(&mut vm);
        }
        self.resumed.notify_waiters();
    }

    /// Fires the VM's ticks when they are due and delivers queue notifications.
    async fn run_ticks(self: Rc<Self>) {
        let Some(vm) = &self.vm else {
            return;
        };
        loop {
            let wait = {
                let vm = vm.borrow();
                let due = vm.next_tick_nanos();
                self.tick_due.set(due);
                let now = vm.shared().clock.monotonic_nanos();
                due.map_or(IDLE_POLL, |due| {
                    Duration::from_nanos(due.saturating_sub(now)).min(IDLE_POLL)
                })
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.retick.notified() => continue,
            }
            let fired = {
                let mut vm = vm.borrow_mut();
                self.recover(&mut vm);
                let now = vm.shared().clock.monotonic_nanos();
                let due = vm.next_tick_nanos().is_some_and(|due| due <= now);
                if due {
                    vm.fire_tick();
                }
                vm.deliver_queue_ready();
                self.after_callbacks(&mut vm);
                due
            };
            if fired {
                self.resumed.notify_waiters();
            }
        }
    }
}

fn plain(status: u16, text: &'static str) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    response
        .headers_mut()
        .insert("content-type", http::HeaderValue::from_static("text/plain"));
    response
}

/// Headers that belong to one connection and are not copied between client and upstream.
fn is_hop_by_hop(name: &[u8]) -> bool {
    matches!(
        name.to_ascii_lowercase().as_slice(),
        b"connection"
            | b"keep-alive"
            | b"transfer-encoding"
            | b"te"
            | b"upgrade"
            | b"proxy-connection"
            | b"content-length"
    )
}

fn to_hyper(response: ClientResponse) -> hyper::Response<Full<Bytes>> {
    let mut out = hyper::Response::new(Full::new(Bytes::from(response.body)));
    *out.status_mut() =
        hyper::StatusCode::from_u16(response.status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    for (name, value) in response.headers {
        if is_hop_by_hop(&name) {
            continue;
        }
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(&name),
            http::HeaderValue::from_bytes(&value),
        ) else {
            eprintln!("host-test serve: dropped a response header that HTTP/1 cannot carry");
            continue;
        };
        out.headers_mut().append(name, value);
    }
    out
}

fn forward_as_is(request: &ClientRequest) -> ForwardedRequest {
    let mut headers: Pairs = vec![
        (b":method".to_vec(), request.method.clone()),
        (b":path".to_vec(), request.path.clone()),
    ];
    for (name, value) in &request.headers {
        if name.eq_ignore_ascii_case(b"host") {
            headers.push((b":authority".to_vec(), value.clone()));
        } else {
            headers.push((name.clone(), value.clone()));
        }
    }
    ForwardedRequest {
        headers,
        body: request.body_chunks.concat(),
        trailers: None,
    }
}

impl UpstreamResponse {
    fn into_client(self) -> ClientResponse {
        ClientResponse {
            status: self.status,
            headers: self.headers,
            body: self.body_chunks.concat(),
            trailers: self.trailers,
            local: false,
            details: "via_upstream".to_string(),
        }
    }
}

fn error_response(status: u16, text: &str) -> UpstreamResponse {
    UpstreamResponse {
        status,
        headers: vec![(b"content-type".to_vec(), b"text/plain".to_vec())],
        body_chunks: vec![text.as_bytes().to_vec()],
        trailers: None,
    }
}

/// Sends a forwarded request to the upstream and returns its answer (502 when it fails).
async fn upstream_exchange(
    client: &HttpClient,
    upstream: &Upstream,
    request: ForwardedRequest,
) -> UpstreamResponse {
    match upstream {
        Upstream::Builtin => builtin_app(&request),
        Upstream::Url(base) => match send(
            client,
            base,
            &request.headers,
            request.body,
            Duration::from_secs(30),
        )
        .await
        {
            Ok(response) => response,
            Err(error) => {
                eprintln!("host-test serve: upstream {base} failed: {error:#}");
                error_response(502, "upstream request failed\n")
            }
        },
    }
}

async fn send(
    client: &HttpClient,
    base: &str,
    headers: &Pairs,
    body: Vec<u8>,
    timeout: Duration,
) -> anyhow::Result<UpstreamResponse> {
    let get = |name: &[u8]| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let path = get(b":path").unwrap_or_else(|| "/".to_string());
    let method = get(b":method").unwrap_or_else(|| "GET".to_string());
    let mut builder = hyper::Request::builder()
        .method(method.as_str())
        .uri(format!("{base}{path}"));
    let authority = get(b":authority");
    for (name, value) in headers {
        if name.starts_with(b":") || is_hop_by_hop(name) || name == b"host" {
            continue;
        }
        builder = builder.header(name.as_slice(), value.as_slice());
    }
    if let Some(authority) = authority {
        builder = builder.header("host", authority);
    }
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .context("invalid request")?;
    let response = tokio::time::timeout(timeout, client.request(request))
        .await
        .context("timed out")??;
    let status = response.status().as_u16();
    let headers: Pairs = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    let body = tokio::time::timeout(timeout, response.into_body().collect())
        .await
        .context("timed out reading the body")??
        .to_bytes();
    Ok(UpstreamResponse {
        status,
        headers,
        body_chunks: body_chunks(&body),
        trailers: None,
    })
}

/// Returns a received body as the harness's chunk list, with no chunk for an
/// empty body.
fn body_chunks(body: &Bytes) -> Vec<Vec<u8>> {
    if body.is_empty() {
        Vec::new()
    } else {
        vec![body.to_vec()]
    }
}

/// The demo application: echoes the request as JSON and leaks its stack in headers, as
/// many real applications do.
fn builtin_app(request: &ForwardedRequest) -> UpstreamResponse {
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (text(k), text(v)))
        .collect();
    let echo = serde_json::json!({
        "app": "portcullis demo upstream",
        "method": request.header(":method").map(text),
        "path": request.header(":path").map(text),
        "headers": headers,
        "body": text(&request.body),
    });
    let body = format!("{echo:#}\n").into_bytes();
    UpstreamResponse {
        status: 200,
        headers: vec![
            (b"content-type".to_vec(), b"application/json".to_vec()),
            (b"server".to_vec(), b"Apache/2.4.41 (Ubuntu)".to_vec()),
            (b"x-powered-by".to_vec(), b"PHP/7.4.3".to_vec()),
            (b"set-cookie".to_vec(), b"session=demo123; Path=/".to_vec()),
        ],
        body_chunks: vec![body],
        trailers: None,
    }
}

/// Arguments of `host-test bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Requests to time.
    #[arg(long, default_value_t = 20000)]
    pub requests: usize,
    /// Also time this module (with `--config`) beside the module that only continues.
    #[arg(long)]
    pub plugin: Option<PathBuf>,
    /// Plugin configuration file for `--plugin`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A second configuration of `--plugin`, run in a second VM. Requests alternate
    /// between the two VMs, so that both see the same spells of a busy machine, and a
    /// last row gives the first configuration's figures less the second's.
    #[arg(long, requires = "plugin")]
    pub baseline_config: Option<PathBuf>,
    /// File of bearer tokens, one a line, for `--plugin`: request i carries token i (modulo
    /// their number) in `authorization`, so as many distinct tokens as requests defeat the
    /// module's verified-token cache, and a single token hits it every time.
    #[arg(long)]
    pub tokens: Option<PathBuf>,
}

/// Per-request timing of one module over a fixed request profile.
#[derive(Debug, serde::Serialize)]
pub struct Timing {
    pub module: String,
    pub requests: usize,
    pub mean_ns: u64,
    pub median_ns: u64,
    pub p99_ns: u64,
}

impl Timing {
    /// Sorts the samples of one VM and summarises them.
    fn of(label: &str, samples: &mut [u64]) -> Self {
        samples.sort_unstable();
        let mean = samples.iter().sum::<u64>() / samples.len().max(1) as u64;
        let at = |q: f64| {
            samples
                .get(((samples.len() as f64 - 1.0) * q) as usize)
                .copied()
                .unwrap_or(0)
        };
        Timing {
            module: label.to_string(),
            requests: samples.len(),
            mean_ns: mean,
            median_ns: at(0.5),
            p99_ns: at(0.99),
        }
    }
}

/// One VM of a benchmark with the samples taken so far.
struct BenchVm {
    vm: Vm,
    samples: Vec<u64>,
}

impl BenchVm {
    fn start(plugin: &Plugin, configuration: Vec<u8>, count: usize) -> anyhow::Result<Self> {
        let shared = HostShared::new(Clock::system());
        let options = Arc::new(VmOptions {
            plugin_configuration: configuration,
            log_level: crate::state::LogLevel::Error,
            ..VmOptions::default()
        });
        let vm = Vm::start(plugin, options, shared, 0).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(BenchVm {
            vm,
            samples: Vec::with_capacity(count),
        })
    }

    /// Runs request `i` of the profile through the VM and keeps its time unless it is
    /// part of the warm-up.
    fn run(&mut self, profile: &Profile, tokens: &[String], i: usize) -> anyhow::Result<()> {
        let mut request = profile.request.clone();
        if !tokens.is_empty() {
            let bearer = format!("Bearer {}", tokens[i % tokens.len()]);
            request
                .headers
                .push((b"authorization".to_vec(), bearer.into_bytes()));
        }
        let started = Instant::now();
        let id = self.vm.start_stream(request);
        loop {
            match self.vm.poll_stream(id) {
                StreamPoll::NeedUpstream(_) => {
                    self.vm.set_upstream_response(id, profile.upstream.clone())
                }
                StreamPoll::Done(_) => break,
                StreamPoll::Waiting => bail!("the module paused a plain GET request"),
            }
        }
        if i >= profile.warm_up {
            self.samples.push(started.elapsed().as_nanos() as u64);
        }
        self.vm.take_logs();
        Ok(())
    }

    fn finish(mut self, label: &str) -> anyhow::Result<Timing> {
        if let Some(failure) = self.vm.failure() {
            bail!("the module failed during the benchmark: {failure}");
        }
        Ok(Timing::of(label, &mut self.samples))
    }
}

/// The request and upstream response of `host-test bench`, and the number of requests
/// of the warm-up, which are not timed.
struct Profile {
    request: ClientRequest,
    upstream: UpstreamResponse,
    warm_up: usize,
}

impl Profile {
    /// Builds a GET with a few headers and a small upstream response. A warm-up of a
    /// tenth of `count` requests comes before the timed ones.
    fn new(count: usize) -> Self {
        Profile {
            request: profile_request(1),
            upstream: profile_response(),
            warm_up: count / 10,
        }
    }
}

/// Returns the GET of `host-test bench`: a path with a query string, three headers and a
/// cookie, on connection `connection_id`.
pub fn profile_request(connection_id: u64) -> ClientRequest {
    ClientRequest {
        method: b"GET".to_vec(),
        path: b"/api/items?page=2&sort=name".to_vec(),
        authority: b"example.com".to_vec(),
        scheme: b"https".to_vec(),
        headers: vec![
            (
                b"user-agent".to_vec(),
                b"Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0".to_vec(),
            ),
            (b"accept".to_vec(), b"application/json".to_vec()),
            (b"cookie".to_vec(), b"session=abc123; theme=dark".to_vec()),
        ],
        body_chunks: Vec::new(),
        trailers: None,
        source: SocketAddr::from(([127, 0, 0, 1], 40000)),
        destination: SocketAddr::from(([127, 0, 0, 1], 8080)),
        mtls: false,
        connection_id,
        ends: true,
    }
}

/// Returns the upstream response of `host-test bench`: a 200 with a small JSON body.
pub fn profile_response() -> UpstreamResponse {
    UpstreamResponse {
        status: 200,
        headers: vec![
            (b"content-type".to_vec(), b"application/json".to_vec()),
            (b"server".to_vec(), b"nginx".to_vec()),
        ],
        body_chunks: vec![b"{\"items\":[]}".to_vec()],
        trailers: None,
    }
}

/// Times `count` GET requests with a few headers and a small upstream response. With `tokens`,
/// request i also carries `authorization: Bearer` and token i modulo their number.
pub fn time_requests(
    plugin: &Plugin,
    configuration: Vec<u8>,
    label: &str,
    count: usize,
    tokens: &[String],
) -> anyhow::Result<Timing> {
    let profile = Profile::new(count);
    let mut vm = BenchVm::start(plugin, configuration, count)?;
    for i in 0..count + profile.warm_up {
        vm.run(&profile, tokens, i)?;
    }
    vm.finish(label)
}

/// Times the requests of [`time_requests`] in two VMs of one module, each with its own
/// configuration. Request i goes to both VMs, first to the first on even i and first to
/// the second on odd i, so neither always runs on caches the other just warmed.
pub fn time_request_pairs(
    plugin: &Plugin,
    configurations: [Vec<u8>; 2],
    labels: [&str; 2],
    count: usize,
    tokens: &[String],
) -> anyhow::Result<[Timing; 2]> {
    let profile = Profile::new(count);
    let [first, second] = configurations;
    let mut vms = [
        BenchVm::start(plugin, first, count)?,
        BenchVm::start(plugin, second, count)?,
    ];
    for i in 0..count + profile.warm_up {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            vms[k].run(&profile, tokens, i)?;
        }
    }
    let [first, second] = vms;
    Ok([first.finish(labels[0])?, second.finish(labels[1])?])
}

fn read_config(path: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    match path {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))
        }
        None => Ok(Vec::new()),
    }
}

/// Prints the harness's own cost per request, and the given module's beside it.
pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let engine = module::engine()?;
    let noop = Plugin::from_bytes(&engine, include_str!("noop.wat").as_bytes())?;
    let mut timings = vec![time_requests(
        &noop,
        Vec::new(),
        "continue-only module (harness cost)",
        args.requests,
        &[],
    )?];
    let mut difference = None;
    if let Some(path) = &args.plugin {
        let plugin = Plugin::load(&engine, path)?;
        let config = read_config(args.config.as_deref())?;
        let tokens = match &args.tokens {
            Some(file) => read_tokens(file)?,
            None => Vec::new(),
        };
        let label = path.display().to_string();
        match &args.baseline_config {
            None => timings.push(time_requests(
                &plugin,
                config,
                &label,
                args.requests,
                &tokens,
            )?),
            Some(baseline) => {
                let baseline_label = format!("{label}, {}", baseline.display());
                let pair = time_request_pairs(
                    &plugin,
                    [config, read_config(Some(baseline))?],
                    [&label, &baseline_label],
                    args.requests,
                    &tokens,
                )?;
                let ns = |t: &Timing| [t.mean_ns, t.median_ns, t.p99_ns].map(|v| v as f64);
                let (first, second) = (ns(&pair[0]), ns(&pair[1]));
                difference = Some((pair[0].requests, [0, 1, 2].map(|k| first[k] - second[k])));
                timings.extend(pair);
            }
        }
    }
    println!("| module | requests | mean µs | median µs | p99 µs |");
    println!("|---|---|---|---|---|");
    for t in &timings {
        let us = |ns: u64| format!("{:.1}", ns as f64 / 1000.0);
        println!(
            "| {} | {} | {} | {} | {} |",
            t.module,
            t.requests,
            us(t.mean_ns),
            us(t.median_ns),
            us(t.p99_ns)
        );
    }
    if let Some((requests, [mean, median, p99])) = difference {
        println!(
            "| difference | {requests} | {:.2} | {:.2} | {:.2} |",
            mean / 1000.0,
            median / 1000.0,
            p99 / 1000.0
        );
    }
    Ok(())
}

/// Reads the non-empty lines of a token file.
fn read_tokens(file: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("failed to read {}", file.display()))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect();
    if tokens.is_empty() {
        bail!("{} contains no token", file.display());
    }
    Ok(tokens)
}

/// Arguments of `host-test load`.
#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// URL on a loopback address to send GET requests to.
    pub url: String,
    /// Requests to send in all.
    #[arg(long, default_value_t = 20000)]
    pub requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

/// Sends GET requests to a loopback URL and prints the throughput, for measuring `serve`.
pub fn load(args: LoadArgs) -> anyhow::Result<()> {
    let uri: hyper::Uri = args.url.parse().context("invalid URL")?;
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_matches(|c| c == '[' || c == ']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("{}: only loopback addresses are allowed", args.url);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let remaining = Arc::new(AtomicU64::new(args.requests as u64));
        let failures = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency.max(1) {
            let (client, uri, remaining, failures) = (
                client.clone(),
                uri.clone(),
                remaining.clone(),
                failures.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let request = hyper::Request::get(uri.clone()).body(Full::new(Bytes::new()));
                    let ok = match request {
                        Ok(request) => match client.request(request).await {
                            Ok(response) => response.into_body().collect().await.is_ok(),
                            Err(_) => false,
                        },
                        Err(_) => false,
                    };
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for task in tasks {
            task.await.context("a load task failed")?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let failed = failures.load(Ordering::Relaxed);
        println!(
            "{} requests in {seconds:.2} s: {:.0} requests/s, {failed} failed",
            args.requests,
            args.requests as f64 / seconds
        );
        Ok(())
    })
}

//! Per-VM host state, stored in the wasmtime `Store` so that VMs share nothing by accident.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime::{Memory, TypedFunc};

use crate::abi::Pairs;
use crate::shared::{HostShared, MetricKind};

/// A map keyed by the context and metric ids that the host hands out.
pub type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

/// Hasher of [`IdMap`]. The keys are small integers that the host assigns
/// itself, so one multiply mixes them well enough. The maps are read on
/// every host call, and SipHash cost more there than the lookup itself.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Log levels of `proxy_log`, in the ABI's numbering.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    /// Maps an ABI level number to a level.
    pub fn from_abi(level: i32) -> Option<LogLevel> {
        Some(match level {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }
}

/// One line the plugin (or the host, about the plugin) logged.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LogRecord {
    pub level: LogLevel,
    pub message: String,
}

/// What happens to requests once the VM has trapped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailurePolicy {
    /// Requests bypass the filter.
    FailOpen,
    /// Requests are answered with 503 at once (Envoy's default).
    #[default]
    FailClosed,
    /// A new VM is created for the next request; if that fails, requests fail closed.
    FailReload,
}

/// What Envoy's connection manager does with the `server` response header after the filters
/// ran (`server_header_transformation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerHeader {
    /// Replace it with `server: envoy` (Envoy's default).
    Overwrite,
    /// Add `server: envoy` only when the response has none.
    AppendIfAbsent,
    /// Leave it as the filters left it (what the shipped Envoy configuration uses).
    #[default]
    PassThrough,
}

/// Which proxy's host the harness reproduces.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum HostProfile {
    /// Envoy's host (proxy-wasm-cpp-host inside Envoy).
    #[default]
    Envoy,
    /// Kong's ngx_wasm_module: header names keep their case, properties are strings, a
    /// cas-0 set on an existing key mismatches, several host functions trap, and a trap
    /// answers 500 and recreates the VM.
    Ngx,
}

/// Limits the host applies to client requests, as Envoy's connection manager does.
#[derive(Clone, Copy, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest total size of request headers, in KiB (`max_request_headers_kb`, default 60).
    pub max_request_headers_kb: usize,
    /// Largest number of request headers (`max_headers_count`, default 100).
    pub max_headers_count: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_headers_kb: 60,
            max_headers_count: 100,
        }
    }
}

/// How a VM is set up: what Envoy's `PluginConfig` and `VmConfig` carry.
#[derive(Clone, Debug)]
pub struct VmOptions {
    pub plugin_name: String,
    pub root_id: String,
    pub vm_id: String,
    pub vm_configuration: Vec<u8>,
    pub plugin_configuration: Vec<u8>,
    pub environment: Vec<(String, String)>,
    pub failure_policy: FailurePolicy,
    /// Lines below this level are dropped, as Envoy's logger drops them.
    pub log_level: LogLevel,
    /// Cluster names that `proxy_http_call` accepts.
    pub clusters: Vec<String>,
    pub limits: Limits,
    pub server_header: ServerHeader,
    pub host: HostProfile,
    /// Host functions that return this status and do nothing else, to show how the
    /// module handles a host that fails a call: (import name, status code).
    pub failing_calls: Vec<(String, u32)>,
}

impl VmOptions {
    /// Whether the host reproduces Kong's ngx_wasm_module.
    pub fn ngx(&self) -> bool {
        self.host == HostProfile::Ngx
    }
}

impl Default for VmOptions {
    fn default() -> Self {
        VmOptions {
            plugin_name: "portcullis".to_string(),
            root_id: String::new(),
            vm_id: String::new(),
            vm_configuration: Vec::new(),
            plugin_configuration: Vec::new(),
            environment: Vec::new(),
            failure_policy: FailurePolicy::default(),
            log_level: LogLevel::Trace,
            clusters: Vec::new(),
            limits: Limits::default(),
            server_header: ServerHeader::default(),
            host: HostProfile::default(),
            failing_calls: Vec::new(),
        }
    }
}

/// A response the plugin asked the host to send with `proxy_send_local_response`.
#[derive(Clone, Debug)]
pub struct LocalResponse {
    pub status: u32,
    pub details: String,
    pub headers: Pairs,
    pub body: Vec<u8>,
}

/// Connection facts behind the `source.*`, `destination.*` and `connection.*` properties.
#[derive(Clone, Debug)]
pub struct Connection {
    pub id: u64,
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub mtls: bool,
    pub tls: bool,
}

/// The header maps, bodies and flags of one HTTP stream, as host functions see them.
#[derive(Debug)]
pub struct StreamMaps {
    pub connection: Connection,
    /// Request headers while the module may read them: from `proxy_on_request_headers`
    /// until the headers continue, as Envoy keeps its pointer to them.
    pub request_headers: Option<Pairs>,
    pub request_trailers: Option<Pairs>,
    /// Copies Envoy hands the access-log phase (`proxy_on_log`) after the live maps are gone.
    pub access_log_request_headers: Option<Pairs>,
    pub access_log_response_headers: Option<Pairs>,
    pub response_headers: Option<Pairs>,
    pub response_trailers: Option<Pairs>,
    /// The body buffer of the current or buffering request body callback.
    pub request_body: Option<Vec<u8>>,
    pub response_body: Option<Vec<u8>>,
    pub local_response: Option<LocalResponse>,
    pub continue_request: bool,
    pub continue_response: bool,
    pub reset: bool,
    /// Properties the plugin stored with `proxy_set_property`.
    pub filter_state: HashMap<Vec<u8>, Vec<u8>>,
    pub request_time_nanos: u64,
    pub protocol: String,
}

impl StreamMaps {
    /// Creates the state of a stream that has seen nothing yet.
    pub fn new(connection: Connection, request_time_nanos: u64) -> StreamMaps {
        StreamMaps {
            connection,
            request_headers: None,
            request_trailers: None,
            access_log_request_headers: None,
            access_log_response_headers: None,
            response_headers: None,
            response_trailers: None,
            request_body: None,
            response_body: None,
            local_response: None,
            continue_request: false,
            continue_response: false,
            reset: false,
            filter_state: HashMap::new(),
            request_time_nanos,
            protocol: "HTTP/1.1".to_string(),
        }
    }
}

/// An `proxy_http_call` the plugin made and the host has yet to send.
#[derive(Clone, Debug)]
pub struct OutgoingCall {
    pub token: u32,
    /// The root or stream context that made the call, which receives the response.
    pub context_id: u32,
    pub cluster: String,
    pub headers: Pairs,
    pub body: Vec<u8>,
    pub trailers: Pairs,
    pub timeout_ms: u32,
}

impl OutgoingCall {
    /// Returns the first value of a header of the call.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }
}

/// Response to an http call; a failed call (reset or timeout) has none.
#[derive(Clone, Debug, Default)]
pub struct CallResponse {
    pub headers: Pairs,
    pub body: Vec<u8>,
    pub trailers: Pairs,
}

/// Which callback the VM is in, deciding which buffers exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callback {
    None,
    VmStart,
    Configure,
    Other,
}

/// Everything a VM's host functions read and write.
pub struct HostState {
    pub options: Arc<VmOptions>,
    pub shared: HostShared,
    pub vm_index: usize,
    pub logs: Vec<LogRecord>,
    pub memory: Option<Memory>,
    pub allocate: Option<TypedFunc<i32, i32>>,
    pub callback: Callback,
    pub effective_context: u32,
    pub root_context_id: u32,
    pub streams: IdMap<StreamMaps>,
    pub tick_period_ms: u32,
    pub outgoing_calls: Vec<OutgoingCall>,
    pub next_call_token: u32,
    /// The response being delivered by `proxy_on_http_call_response`.
    pub call_response: Option<CallResponse>,
    /// Metric ids to names; ids encode the kind in their low two bits as Envoy's do.
    pub metric_ids: IdMap<(MetricKind, String)>,
    pub next_metric_serial: u32,
    /// Root-context properties set with `proxy_set_property`.
    pub root_filter_state: HashMap<Vec<u8>, Vec<u8>>,
    /// Contexts whose `proxy_on_done` returned false and that have not called `proxy_done`.
    pub pending_done: Vec<u32>,
    /// Random state for `random_get`; seeded per VM.
    pub random: rand::rngs::StdRng,
}

impl HostState {
    /// Creates the state of a VM before its module is instantiated.
    pub fn new(options: Arc<VmOptions>, shared: HostShared, vm_index: usize) -> HostState {
        use rand::SeedableRng;
        let ngx = options.ngx();
        HostState {
            options,
            shared,
            vm_index,
            logs: Vec::new(),
            memory: None,
            allocate: None,
            callback: Callback::None,
            effective_context: 0,
            root_context_id: 0,
            streams: IdMap::default(),
            tick_period_ms: 0,
            outgoing_calls: Vec::new(),
            // ngx_wasm_module numbers calls from 0, Envoy from 1.
            next_call_token: u32::from(!ngx),
            call_response: None,
            metric_ids: IdMap::default(),
            next_metric_serial: 0,
            root_filter_state: HashMap::new(),
            pending_done: Vec::new(),
            random: rand::rngs::StdRng::from_entropy(),
        }
    }

    /// Records a log line unless it is below the configured level.
    pub fn log(&mut self, level: LogLevel, message: String) {
        if level >= self.options.log_level {
            self.logs.push(LogRecord { level, message });
        }
    }

    /// The stream of the effective context, when that context is a stream.
    pub fn stream(&mut self) -> Option<&mut StreamMaps> {
        self.streams.get_mut(&self.effective_context)
    }
}

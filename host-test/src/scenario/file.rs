//! The scenario file format: YAML (or JSON, which is YAML), checked strictly so that a
//! misspelled field is an error with its line rather than a silently skipped check.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_yaml_ng::Value;

use crate::abi::Pairs;
use crate::state::{FailurePolicy, HostProfile, Limits, LogLevel, ServerHeader};

/// Bytes written as a string, a number, `{base64: ...}`, or `{repeat: TEXT, count: N}` (with
/// optional `prefix` and `suffix`) for large values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    fn from_value(value: &Value) -> Result<Bytes, String> {
        match value {
            Value::String(s) => Ok(Bytes(s.as_bytes().to_vec())),
            Value::Number(n) => Ok(Bytes(n.to_string().into_bytes())),
            Value::Bool(b) => Ok(Bytes(b.to_string().into_bytes())),
            Value::Mapping(map) if map.contains_key("repeat") => {
                let text = |key: &str| map.get(key).and_then(Value::as_str).unwrap_or_default();
                let count = map
                    .get("count")
                    .and_then(Value::as_u64)
                    .ok_or("repeat: expected a count")?;
                let known = ["repeat", "count", "prefix", "suffix"];
                if map
                    .keys()
                    .any(|k| !k.as_str().is_some_and(|k| known.contains(&k)))
                    || count > 64 << 20
                {
                    return Err("expected {repeat: TEXT, count: N (up to 64 Mi), prefix: TEXT, suffix: TEXT}".to_string());
                }
                let mut bytes = text("prefix").as_bytes().to_vec();
                bytes.extend(text("repeat").repeat(count as usize).into_bytes());
                bytes.extend_from_slice(text("suffix").as_bytes());
                Ok(Bytes(bytes))
            }
            Value::Mapping(map) if map.len() == 1 => {
                let encoded = map
                    .get("base64")
                    .and_then(Value::as_str)
                    .ok_or("expected a string, {base64: ...} or {repeat: ..., count: N}")?;
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map(Bytes)
                    .map_err(|e| format!("invalid base64: {e}"))
            }
            _ => Err("expected a string, {base64: ...} or {repeat: ..., count: N}".to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Bytes::from_value(&value).map_err(D::Error::custom)
    }
}

/// Headers as `[name, value]` pairs, or a map whose values may be lists for repeated headers.
#[derive(Clone, Debug, Default)]
pub struct Headers(pub Pairs);

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let mut pairs = Vec::new();
        match &value {
            Value::Sequence(items) => {
                for item in items {
                    let pair = item.as_sequence().filter(|p| p.len() == 2).ok_or_else(|| {
                        D::Error::custom("each header must be a [name, value] pair")
                    })?;
                    let name = Bytes::from_value(&pair[0]).map_err(D::Error::custom)?;
                    let value = Bytes::from_value(&pair[1]).map_err(D::Error::custom)?;
                    pairs.push((name.0, value.0));
                }
            }
            Value::Mapping(map) => {
                for (name, value) in map {
                    let name = Bytes::from_value(name).map_err(D::Error::custom)?;
                    match value {
                        Value::Sequence(values) => {
                            for value in values {
                                pairs.push((
                                    name.0.clone(),
                                    Bytes::from_value(value).map_err(D::Error::custom)?.0,
                                ));
                            }
                        }
                        value => pairs.push((
                            name.0,
                            Bytes::from_value(value).map_err(D::Error::custom)?.0,
                        )),
                    }
                }
            }
            Value::Null => {}
            _ => {
                return Err(D::Error::custom(
                    "headers must be a list of [name, value] pairs or a map",
                ))
            }
        }
        Ok(Headers(pairs))
    }
}

/// One value or a list of them.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    /// Returns the values as a list.
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(value) => vec![value.clone()],
            OneOrMany::Many(values) => values.clone(),
        }
    }
}

/// A duration such as `90s`, `5m` or `250ms`.
#[derive(Clone, Copy, Debug)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text)
            .map(HumanDuration)
            .map_err(|e| D::Error::custom(format!("invalid duration {text:?}: {e}")))
    }
}

/// A whole scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Path of the `.wasm` (or `.wat`) module, relative to the scenario file.
    pub plugin: Option<String>,
    /// Plugin configuration: any value, handed to the plugin as its JSON text.
    #[serde(default)]
    pub configuration: Option<serde_json::Value>,
    /// Plugin configuration as raw text, for malformed configurations.
    pub configuration_raw: Option<Bytes>,
    /// VM configuration: any value, handed over as its JSON text (a string is passed as is).
    pub vm_configuration: Option<serde_json::Value>,
    /// Number of VMs sharing shared data, as Envoy's worker threads.
    #[serde(default = "one")]
    pub workers: usize,
    /// RFC 3339 start time of the harness clock.
    pub time: Option<String>,
    #[serde(default)]
    pub upstream: Option<UpstreamSpec>,
    #[serde(default)]
    pub http_calls: Vec<CallAnswer>,
    /// Clusters that exist besides those named in `http_calls`.
    #[serde(default)]
    pub clusters: Vec<String>,
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    pub plugin_name: Option<String>,
    pub root_id: Option<String>,
    pub vm_id: Option<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    pub log_level: Option<LogLevel>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub server_header_transformation: ServerHeader,
    /// The host to reproduce: `envoy` or `ngx`; when absent, the `--host` of the run.
    pub host: Option<HostProfile>,
    /// `accepted` (default) or `rejected`: what `proxy_on_configure` must return.
    #[serde(default)]
    pub expect_configure: ConfigureOutcome,
    /// Lines the plugin must log while starting.
    pub configure_log_contains: Option<OneOrMany<String>>,
    /// Host functions that fail: each returns the given status and does nothing
    /// else, as in `proxy_set_shared_data: 10`.
    #[serde(default)]
    pub failing_host_calls: BTreeMap<String, u32>,
    /// How long a client waits for a paused stream before giving up (default 60s).
    pub client_timeout: Option<HumanDuration>,
    #[serde(default)]
    pub steps: Vec<Step>,
}

fn one() -> usize {
    1
}

/// What `proxy_on_configure` is expected to return.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigureOutcome {
    #[default]
    Accepted,
    Rejected,
}

/// The upstream's answer to a forwarded request.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSpec {
    #[serde(default = "ok_status")]
    pub status: u16,
    #[serde(default)]
    pub headers: Headers,
    pub body: Option<Bytes>,
    pub body_chunks: Option<Vec<Bytes>>,
    pub trailers: Option<Headers>,
    /// Real time the upstream takes to respond: the worker's thread sleeps
    /// between forwarding the request and delivering the response, so that in
    /// a `concurrent` step the requests of other workers overlap it. The
    /// harness clock does not move.
    pub delay: Option<HumanDuration>,
}

fn ok_status() -> u16 {
    200
}

impl Default for UpstreamSpec {
    /// A 200 with no headers and no body.
    fn default() -> Self {
        UpstreamSpec {
            status: ok_status(),
            headers: Headers::default(),
            body: None,
            body_chunks: None,
            trailers: None,
            delay: None,
        }
    }
}

/// The answer to http calls made to a cluster and path.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallAnswer {
    pub cluster: String,
    /// The call's `:path`; without it the answer serves every path of the cluster.
    pub path: Option<String>,
    #[serde(default = "ok_status")]
    pub status: u16,
    #[serde(default)]
    pub headers: Headers,
    pub body: Option<Bytes>,
    /// How long the answer takes; past the call's timeout the call fails.
    pub delay: Option<HumanDuration>,
    /// `reset` (the connection fails) or `timeout` (no answer before the call's timeout).
    pub failure: Option<CallFailure>,
}

/// Ways an http call fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallFailure {
    Reset,
    Timeout,
}

/// One step of a scenario: exactly one of `advance`, `set_time`, `concurrent`, `http_calls`
/// or `request`. A flat struct rather than an enum, so that a misspelled field is reported
/// with its line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: Option<String>,
    /// Moves the clock, firing ticks and delayed call answers on the way.
    pub advance: Option<HumanDuration>,
    /// Steps the wall clock to an RFC 3339 time, also backwards; no tick fires.
    pub set_time: Option<String>,
    /// Request steps sent at once, spread over the workers.
    pub concurrent: Option<Vec<Step>>,
    /// Replaces the http-call answers for the rest of the scenario.
    pub http_calls: Option<Vec<CallAnswer>>,
    /// Which VM serves the request (default 0, or spread in a concurrent step).
    pub worker: Option<usize>,
    pub request: Option<RequestSpec>,
    /// This step's upstream answer, instead of the scenario's.
    pub upstream: Option<UpstreamSpec>,
    /// Sends the same request this many times (default 1); checks apply to the last.
    pub repeat: Option<usize>,
    #[serde(default)]
    pub expect: Expect,
}

/// What a step is, once checked.
pub enum StepKind<'a> {
    Advance(std::time::Duration),
    SetTime(&'a str),
    Concurrent(&'a [Step]),
    Calls(&'a [CallAnswer]),
    Request(&'a RequestSpec),
}

impl Step {
    /// Returns what the step does, or why it is malformed.
    pub fn kind(&self) -> Result<StepKind<'_>, String> {
        let mut kinds = Vec::new();
        if let Some(d) = self.advance {
            kinds.push(StepKind::Advance(d.0));
        }
        if let Some(t) = &self.set_time {
            kinds.push(StepKind::SetTime(t));
        }
        if let Some(c) = &self.concurrent {
            kinds.push(StepKind::Concurrent(c));
        }
        if let Some(c) = &self.http_calls {
            kinds.push(StepKind::Calls(c));
        }
        if let Some(r) = &self.request {
            kinds.push(StepKind::Request(r));
        }
        match kinds.len() {
            1 => Ok(kinds.remove(0)),
            0 => Err(
                "a step needs one of advance, set_time, concurrent, http_calls or request"
                    .to_string(),
            ),
            _ => Err(
                "a step may have only one of advance, set_time, concurrent, http_calls and request"
                    .to_string(),
            ),
        }
    }
}

/// The client's request.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    #[serde(default = "get")]
    pub method: Bytes,
    #[serde(default = "root_path")]
    pub path: Bytes,
    pub authority: Option<Bytes>,
    pub scheme: Option<Bytes>,
    #[serde(default)]
    pub headers: Headers,
    pub body: Option<Bytes>,
    pub body_chunks: Option<Vec<Bytes>>,
    pub trailers: Option<Headers>,
    /// The client's `ip:port`.
    pub source: Option<String>,
    /// Whether the client presented a verified certificate.
    #[serde(default)]
    pub mtls: bool,
    /// Whether the client ends the request (default true); with false the last body chunk
    /// has no end of stream and the client gives up waiting.
    #[serde(default = "yes")]
    pub end_of_stream: bool,
}

fn yes() -> bool {
    true
}

fn get() -> Bytes {
    Bytes(b"GET".to_vec())
}

fn root_path() -> Bytes {
    Bytes(b"/".to_vec())
}

/// A header expectation: one exact value, or the exact list of a repeated header.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum HeaderExpect {
    One(Bytes),
    Many(Vec<Bytes>),
}

/// What a request step must produce.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Status the client receives; 0 for a reset or abandoned stream.
    pub status: Option<u16>,
    /// Whether the upstream received the request.
    pub forwarded: Option<bool>,
    #[serde(default)]
    pub upstream_headers: BTreeMap<String, HeaderExpect>,
    #[serde(default)]
    pub upstream_headers_absent: Vec<String>,
    pub upstream_body: Option<Bytes>,
    #[serde(default)]
    pub response_headers: BTreeMap<String, HeaderExpect>,
    #[serde(default)]
    pub response_headers_absent: Vec<String>,
    #[serde(default)]
    pub response_headers_present: Vec<String>,
    pub body: Option<Bytes>,
    pub body_contains: Option<OneOrMany<String>>,
    pub log_contains: Option<OneOrMany<String>>,
    pub log_absent: Option<OneOrMany<String>>,
    #[serde(default)]
    pub metrics: BTreeMap<String, i64>,
    /// Whether the VM has failed (trapped) by the end of the step.
    pub vm_failed: Option<bool>,
    /// Http calls the step must have made, as `cluster` and `path`.
    #[serde(default)]
    pub http_calls: Vec<CallExpect>,
    /// For a concurrent step: how many of its requests got each status.
    #[serde(default)]
    pub status_counts: BTreeMap<u16, usize>,
}

/// An http call a step must make.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallExpect {
    pub cluster: String,
    pub path: Option<String>,
}

//! What a step produced, for checking and for `--json`.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Serialize;

use crate::abi::Pairs;
use crate::state::LogRecord;

/// Bytes shown as text when they are UTF-8, else as `{"base64": ...}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BytesJson(pub Vec<u8>);

impl Serialize for BytesJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(
                    "base64",
                    &base64::engine::general_purpose::STANDARD.encode(&self.0),
                )?;
                map.end()
            }
        }
    }
}

/// Converts header pairs to their JSON form.
pub fn pairs_json(pairs: &Pairs) -> Vec<(BytesJson, BytesJson)> {
    pairs
        .iter()
        .map(|(k, v)| (BytesJson(k.clone()), BytesJson(v.clone())))
        .collect()
}

/// The request as the upstream received it.
#[derive(Clone, Debug, Serialize)]
pub struct UpstreamSeen {
    pub headers: Vec<(BytesJson, BytesJson)>,
    pub body: BytesJson,
}

/// An http call the plugin made during the step.
#[derive(Clone, Debug, Serialize)]
pub struct CallSeen {
    pub cluster: String,
    pub path: String,
}

/// Everything one step produced and every expectation it failed.
#[derive(Clone, Debug, Serialize)]
pub struct StepResult {
    pub name: String,
    pub worker: Option<usize>,
    /// Status the client received: `None` for steps without a request.
    pub status: Option<u16>,
    pub forwarded: bool,
    pub upstream_request: Option<UpstreamSeen>,
    pub response_headers: Vec<(BytesJson, BytesJson)>,
    pub response_body: BytesJson,
    pub logs: Vec<LogRecord>,
    pub metrics: BTreeMap<String, i64>,
    pub http_calls: Vec<CallSeen>,
    pub vm_failure: Option<String>,
    pub failures: Vec<String>,
}

impl StepResult {
    /// A result with nothing in it yet.
    pub fn empty(name: String) -> StepResult {
        StepResult {
            name,
            worker: None,
            status: None,
            forwarded: false,
            upstream_request: None,
            response_headers: Vec::new(),
            response_body: BytesJson::default(),
            logs: Vec::new(),
            metrics: BTreeMap::new(),
            http_calls: Vec::new(),
            vm_failure: None,
            failures: Vec::new(),
        }
    }

    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

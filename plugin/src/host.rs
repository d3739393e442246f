//! Host calls that return errors as values, with the logging that each
//! failure needs, built on [`crate::abi`].

use crate::abi::{self, HostStatus};
use portcullis_core::event::SourceAddress;
use proxy_wasm::types::{BufferType, MapType};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Reads every pair of a header map, values as raw bytes and names that are
/// not UTF-8 lossily. On a host error the map reads as empty.
pub fn header_pairs(context_id: u32, map: MapType) -> Vec<(String, Vec<u8>)> {
    abi::header_pairs(map).unwrap_or_else(|status| {
        log::warn!("portcullis: context {context_id}: reading {map:?} failed with status {status}");
        Vec::new()
    })
}

/// Reads the first value of a header; `None` when it is absent or the host
/// fails.
pub fn header_value(map: MapType, name: &str) -> Option<Vec<u8>> {
    abi::header_value(map, name).unwrap_or_else(|status| {
        log::debug!("portcullis: reading header {name} of {map:?} failed with status {status}");
        None
    })
}

/// Removes every copy of a header; returns whether the host did.
pub fn remove_header(context_id: u32, map: MapType, name: &str) -> bool {
    match abi::remove_header(map, name) {
        Ok(()) => true,
        Err(status) => {
            log::warn!("portcullis: context {context_id}: removing header {name} from {map:?} failed with status {status}");
            false
        }
    }
}

/// Sets a header, replacing every copy it had.
pub fn replace_header(context_id: u32, map: MapType, name: &str, value: &[u8]) {
    if let Err(status) = abi::replace_header(map, name, value) {
        log::warn!("portcullis: context {context_id}: setting header {name} in {map:?} failed with status {status}");
    }
}

/// Adds one copy of a header. A value the host rejects, for example one with
/// a CR or LF byte, is logged and left out.
pub fn add_header(context_id: u32, map: MapType, name: &str, value: &[u8]) {
    if let Err(status) = abi::add_header(map, name, value) {
        log::warn!("portcullis: context {context_id}: adding header {name} to {map:?} failed with status {status}");
    }
}

/// Reads `size` bytes of the buffered request body from offset 0, or `None`
/// when the host fails.
pub fn request_body(context_id: u32, size: usize) -> Option<Vec<u8>> {
    match abi::buffer(BufferType::HttpRequestBody, 0, size) {
        Ok(body) => Some(body.unwrap_or_default()),
        Err(status) => {
            log::warn!("portcullis: context {context_id}: reading the request body failed with status {status}");
            None
        }
    }
}

/// Reads the plugin configuration of `size` bytes, the size the host passed
/// to `proxy_on_configure`. An absent buffer reads as empty when the size is
/// 0. A configuration that the host announced but does not return is an
/// error, because applying the defaults in its place would drop the
/// operator's controls.
pub fn plugin_configuration(size: usize) -> Result<Vec<u8>, String> {
    let max_size = if size == 0 { usize::MAX } else { size };
    let document = abi::buffer(BufferType::PluginConfiguration, 0, max_size)
        .map_err(|status| format!("reading the plugin configuration failed with status {status}"))?
        .unwrap_or_default();
    if document.len() < size {
        return Err(format!(
            "the host announced {size} bytes of plugin configuration but returned {}",
            document.len()
        ));
    }
    Ok(document)
}

/// Reads a property as bytes; `None` when it is not found or the host fails.
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    match abi::property(path) {
        Ok(value) => value,
        Err(status) => {
            log::debug!(
                "portcullis: reading property {} failed with status {status}",
                path.join(".")
            );
            None
        }
    }
}

/// Reads the `plugin_name` property as text.
pub fn plugin_name() -> Option<String> {
    property(&["plugin_name"]).map(|name| String::from_utf8_lossy(&name).into_owned())
}

/// Reads and parses the `source.address` property.
pub fn source_address() -> Option<SourceAddress> {
    property(&["source", "address"]).and_then(|raw| SourceAddress::parse(&raw))
}

/// Returns the client address that events report as `source`: the client
/// that the header policy found (the trusted `X-Forwarded-For` hop) when it
/// differs from the connection's peer, else the peer with its port.
pub fn event_source(client: Option<std::net::IpAddr>) -> Option<SourceAddress> {
    portcullis_core::pipeline::event_source(client, source_address())
}

/// Returns the host's clock.
pub fn current_time() -> SystemTime {
    match abi::current_time_nanos() {
        Ok(nanos) => UNIX_EPOCH + Duration::from_nanos(nanos),
        Err(status) => {
            log::warn!("portcullis: reading the host clock failed with status {status}");
            UNIX_EPOCH
        }
    }
}

/// Sends a local response in place of the upstream one. When the host
/// rejects it, the request is reset so that it never reaches the upstream.
/// Controls send through `crate::headers`, which adds the security headers.
pub fn send_http_response(context_id: u32, status: u32, headers: Vec<(&str, &str)>, body: &[u8]) {
    if let Err(error) = abi::send_local_response(status, &headers, body) {
        log::error!(
            "portcullis: context {context_id}: sending the {status} response failed with status {error:?}, resetting the request"
        );
        if let Err(error) = abi::reset_request() {
            log::error!("portcullis: context {context_id}: resetting the request failed with status {error}");
        }
    }
}

/// Sends an HTTP request to a cluster and returns the token of its response.
///
/// This goes through the SDK, which records the token so that its dispatcher
/// can route the response, and which panics on a status other than OK,
/// BAD_ARGUMENT and INTERNAL_FAILURE. Envoy returns BAD_ARGUMENT for an
/// unknown cluster.
pub fn dispatch_http_call(
    cluster: &str,
    headers: Vec<(&str, &str)>,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<u32, proxy_wasm::types::Status> {
    proxy_wasm::hostcalls::dispatch_http_call(cluster, headers, body, vec![], timeout)
}

/// CAS used to create a shared-data key that must not exist yet. Envoy
/// writes a missing key whatever the CAS is, but rejects a CAS that differs
/// from an existing key's, so a writer that lost the race to create the key
/// gets CAS_MISMATCH instead of overwriting the winner. Envoy's CAS counter
/// would need about four billion writes to reach this value.
pub const CAS_CREATE: u32 = u32::MAX;

/// Defines a counter; `None` when the host fails, which is logged once here
/// because the counter will then never be reported.
pub fn define_counter(name: &str) -> Option<u32> {
    match abi::define_counter(name) {
        Ok(id) => Some(id),
        Err(status) => {
            log::error!(
                "portcullis: defining metric {name} failed with status {status}, it will not be reported"
            );
            None
        }
    }
}

/// Attempts of [`overwrite_shared`] before it reports the last mismatch.
const OVERWRITE_ATTEMPTS: u32 = 8;

/// Replaces a shared-data value whatever it holds.
///
/// Envoy writes unconditionally with CAS 0, but Kong's ngx_wasm_module
/// answers CAS_MISMATCH to a CAS-0 write of an existing key. The write
/// therefore carries the CAS that a fresh read returned, and reads again when
/// another worker wrote in between. A missing key is written with CAS 0,
/// which both hosts accept.
pub fn overwrite_shared(key: &str, value: &[u8]) -> Result<(), HostStatus> {
    let mut outcome = Err(HostStatus::CAS_MISMATCH);
    for _ in 0..OVERWRITE_ATTEMPTS {
        let cas = match abi::shared_data(key)? {
            Some((_, cas)) => cas,
            None => 0,
        };
        outcome = abi::set_shared_data(key, value, cas);
        if outcome != Err(HostStatus::CAS_MISMATCH) {
            return outcome;
        }
    }
    outcome
}

//! Envoy's request attributes, encoded as Envoy's `proxy_get_property` returns them: strings
//! raw, integers as 8 bytes little-endian, booleans as one byte, timestamps as int64
//! nanoseconds and maps in the header-map pairs encoding.

use crate::abi::{encode_pairs, Pairs};
use crate::state::{HostState, StreamMaps};

fn int(value: i64) -> Vec<u8> {
    value.to_le_bytes().to_vec()
}

fn header<'a>(headers: &'a Pairs, name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v.as_slice())
}

/// Looks up a property for the effective context. `None` is `NOT_FOUND`.
pub fn get(state: &HostState, path: &[&[u8]]) -> Option<Vec<u8>> {
    if state.options.ngx() {
        return ngx_property(state, path);
    }
    envoy_property(state, path)
}

/// Properties as Kong's ngx_wasm_module returns them: every value a string, some names
/// with other values than Envoy's and some not provided at all.
fn ngx_property(state: &HostState, path: &[&[u8]]) -> Option<Vec<u8>> {
    match path {
        [b"plugin_root_id"] => return Some(b"0".to_vec()),
        [b"plugin_vm_id"] | [b"node", ..] | [b"cluster_name"] | [b"route_name"] => return None,
        [b"request", b"host"] => return Some(machine_host_name()),
        _ => {}
    }
    let value = envoy_property(state, path)?;
    let integer = matches!(
        path,
        [b"source", b"port"]
            | [b"destination", b"port"]
            | [b"connection", b"id"]
            | [b"request", b"time"]
            | [b"response", b"code"]
    );
    if integer && value.len() == 8 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&value);
        return Some(i64::from_le_bytes(word).to_string().into_bytes());
    }
    if matches!(path, [b"connection", b"mtls"]) {
        return Some(if value.first() == Some(&1) {
            b"true".to_vec()
        } else {
            b"false".to_vec()
        });
    }
    Some(value)
}

fn machine_host_name() -> Vec<u8> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().as_bytes().to_vec())
        .unwrap_or_else(|_| b"localhost".to_vec())
}

fn envoy_property(state: &HostState, path: &[&[u8]]) -> Option<Vec<u8>> {
    let options = &state.options;
    let joined = path.join(&0u8);
    match path {
        [b"plugin_name"] => return Some(options.plugin_name.as_bytes().to_vec()),
        [b"plugin_root_id"] => return Some(options.root_id.as_bytes().to_vec()),
        [b"plugin_vm_id"] => return Some(options.vm_id.as_bytes().to_vec()),
        _ => {}
    }
    let Some(stream) = state.streams.get(&state.effective_context) else {
        return state.root_filter_state.get(&joined).cloned();
    };
    if let Some(value) = stream.filter_state.get(&joined) {
        return Some(value.clone());
    }
    stream_property(stream, path)
}

fn stream_property(stream: &StreamMaps, path: &[&[u8]]) -> Option<Vec<u8>> {
    let connection = &stream.connection;
    match path {
        [b"source", b"address"] => Some(connection.source.to_string().into_bytes()),
        [b"source", b"port"] => Some(int(connection.source.port().into())),
        [b"destination", b"address"] => Some(connection.destination.to_string().into_bytes()),
        [b"destination", b"port"] => Some(int(connection.destination.port().into())),
        [b"connection", b"mtls"] => Some(vec![u8::from(connection.mtls)]),
        [b"connection", b"id"] => Some(int(connection.id as i64)),
        [b"connection", b"tls_version"] if connection.tls => Some(b"TLSv1.3".to_vec()),
        [b"request", rest @ ..] => request_property(stream, rest),
        [b"response", rest @ ..] => response_property(stream, rest),
        _ => None,
    }
}

fn request_property(stream: &StreamMaps, path: &[&[u8]]) -> Option<Vec<u8>> {
    let headers = stream.request_headers.as_ref();
    let get = |name: &str| headers.and_then(|h| header(h, name)).map(<[u8]>::to_vec);
    match path {
        [b"path"] => get(":path"),
        [b"url_path"] => {
            get(":path").map(|p| p.split(|b| *b == b'?').next().unwrap_or(&[]).to_vec())
        }
        [b"query"] => get(":path").map(|p| match p.iter().position(|b| *b == b'?') {
            Some(at) => p[at + 1..].to_vec(),
            None => Vec::new(),
        }),
        [b"host"] => get(":authority"),
        [b"scheme"] => get(":scheme"),
        [b"method"] => get(":method"),
        [b"referer"] => get("referer"),
        [b"useragent"] => get("user-agent"),
        [b"id"] => get("x-request-id"),
        [b"protocol"] => Some(stream.protocol.as_bytes().to_vec()),
        [b"time"] => Some(int(stream.request_time_nanos as i64)),
        [b"headers"] => headers.map(|h| encode_pairs(h)),
        [b"headers", name] => headers.and_then(|h| {
            let name = std::str::from_utf8(name).ok()?;
            header(h, name).map(<[u8]>::to_vec)
        }),
        _ => None,
    }
}

fn response_property(stream: &StreamMaps, path: &[&[u8]]) -> Option<Vec<u8>> {
    if let Some(local) = &stream.local_response {
        match path {
            [b"code"] => return Some(int(local.status.into())),
            [b"code_details"] => return Some(local.details.as_bytes().to_vec()),
            _ => {}
        }
    }
    let headers = stream.response_headers.as_ref()?;
    match path {
        [b"code"] => {
            let status = header(headers, ":status")?;
            let code: i64 = std::str::from_utf8(status).ok()?.parse().ok()?;
            Some(int(code))
        }
        [b"code_details"] => Some(b"via_upstream".to_vec()),
        [b"headers"] => Some(encode_pairs(headers)),
        [b"headers", name] => {
            let name = std::str::from_utf8(name).ok()?;
            header(headers, name).map(<[u8]>::to_vec)
        }
        _ => None,
    }
}

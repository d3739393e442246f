//! Host calls that change header maps or send a local response, with every
//! status returned as a value.
//!
//! The SDK's wrappers for these calls panic on any status but OK, and a panic
//! in the module is a trap that fails the VM. Hosts do return other statuses
//! here: Envoy answers BAD_ARGUMENT to a change of a map that is not
//! available in the current callback, host-test and Envoy reject header
//! values with CR, LF or NUL, and other hosts differ again. These wrappers
//! call the same ABI functions and hand the status back.
#![allow(unsafe_code)] // Calls of host imports; each pointer and length pair comes from one live slice.

use proxy_wasm::types::MapType;

/// A status other than OK returned by a host call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostStatus(pub u32);

impl std::fmt::Display for HostStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names of the proxy-wasm ABI 0.2.1 status codes.
        let name = match self.0 {
            1 => "NOT_FOUND",
            2 => "BAD_ARGUMENT",
            3 => "SERIALIZATION_FAILURE",
            4 => "PARSE_FAILURE",
            6 => "EMPTY",
            7 => "CAS_MISMATCH",
            8 => "RESULT_MISMATCH",
            10 => "INTERNAL_FAILURE",
            12 => "UNIMPLEMENTED",
            _ => return write!(f, "status {}", self.0),
        };
        f.write_str(name)
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
}

fn result(status: u32) -> Result<(), HostStatus> {
    match status {
        0 => Ok(()),
        other => Err(HostStatus(other)),
    }
}

/// Adds one copy of a header.
pub fn add_header(map: MapType, name: &str, value: &[u8]) -> Result<(), HostStatus> {
    // SAFETY: both slices outlive the call, which only reads them.
    result(unsafe {
        proxy_add_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Replaces every copy of a header with one value.
pub fn replace_header(map: MapType, name: &str, value: &[u8]) -> Result<(), HostStatus> {
    // SAFETY: both slices outlive the call, which only reads them.
    result(unsafe {
        proxy_replace_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Removes every copy of a header.
pub fn remove_header(map: MapType, name: &str) -> Result<(), HostStatus> {
    // SAFETY: the slice outlives the call, which only reads it.
    result(unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) })
}

/// Sends a local response in place of the upstream one.
pub fn send_local_response(
    status: u32,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), HostStatus> {
    let serialized = serialize_pairs(headers);
    // SAFETY: the body and the serialized headers outlive the call, which
    // only reads them. The empty details string is a null pointer with size
    // 0, which the ABI allows.
    result(unsafe {
        proxy_send_local_response(
            status,
            std::ptr::null(),
            0,
            body.as_ptr(),
            body.len(),
            serialized.as_ptr(),
            serialized.len(),
            -1,
        )
    })
}

/// Encodes header pairs in the ABI's map format: the pair count, each
/// name's and value's length as u32 little-endian, then each name and value
/// followed by a NUL byte.
fn serialize_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(name, value)| 10 + name.len() + value.len())
        .sum::<usize>();
    let mut bytes = Vec::with_capacity(size);
    bytes.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (name, value) in pairs {
        bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (name, value) in pairs {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
    }
    bytes
}

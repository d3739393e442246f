//! Host calls with every status returned as a value.
//!
//! The SDK's wrappers panic on a status they do not expect, and a panic in
//! the module is a trap that fails the VM. Hosts do return other statuses.
//! Envoy returns BAD_ARGUMENT to a change of a map that is not available in
//! the current callback, and host-test and Envoy reject header values with
//! CR, LF or NUL. Other hosts differ in which calls they implement and in
//! what a full shared-data store returns. The SDK's map reader also panics on
//! a header name that is not UTF-8, which nginx passes on from an upstream.
//! These wrappers call the same ABI functions and hand the status back.
#![allow(unsafe_code)] // Calls of host imports; each pointer and length pair comes from one live slice.

use proxy_wasm::types::{BufferType, MapType};
use std::time::Duration;

/// A status other than OK returned by a host call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostStatus(pub u32);

impl HostStatus {
    /// The key, header or property does not exist.
    pub const NOT_FOUND: HostStatus = HostStatus(1);
    /// A shared queue with no value left.
    pub const EMPTY: HostStatus = HostStatus(7);
    /// A shared-data write whose CAS no longer matches the stored value.
    pub const CAS_MISMATCH: HostStatus = HostStatus(8);
}

impl std::fmt::Display for HostStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names of the proxy-wasm status codes, as Envoy's host numbers them.
        let name = match self.0 {
            1 => "NOT_FOUND",
            2 => "BAD_ARGUMENT",
            3 => "SERIALIZATION_FAILURE",
            4 => "PARSE_FAILURE",
            5 => "BAD_EXPRESSION",
            6 => "INVALID_MEMORY_ACCESS",
            7 => "EMPTY",
            8 => "CAS_MISMATCH",
            9 => "RESULT_MISMATCH",
            10 => "INTERNAL_FAILURE",
            11 => "BROKEN_CONNECTION",
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
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_close_stream(stream_type: u32) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_register_shared_queue(
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_enqueue_shared_queue(queue_id: u32, value_data: *const u8, value_size: usize) -> u32;
    fn proxy_dequeue_shared_queue(
        queue_id: u32,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
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

/// The NOT_FOUND status.
const NOT_FOUND: u32 = HostStatus::NOT_FOUND.0;

fn result(status: u32) -> Result<(), HostStatus> {
    match status {
        0 => Ok(()),
        other => Err(HostStatus(other)),
    }
}

/// Runs a host call that returns bytes through a pointer and size pair,
/// and takes ownership of them. `Ok(None)` is NOT_FOUND; an empty result
/// (a null pointer) reads as no bytes.
fn returned_bytes(
    call: impl FnOnce(*mut *mut u8, *mut usize) -> u32,
) -> Result<Option<Vec<u8>>, HostStatus> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    match call(&mut data, &mut size) {
        0 if data.is_null() || size == 0 => Ok(Some(Vec::new())),
        // SAFETY: the host wrote `data` and `size` from a call of the SDK's
        // `proxy_on_memory_allocate`, which releases a boxed slice of exactly
        // `size` bytes with `Box::into_raw`. This takes ownership back once.
        0 => Ok(Some(unsafe { Vec::from_raw_parts(data, size, size) })),
        NOT_FOUND => Ok(None),
        other => Err(HostStatus(other)),
    }
}

/// Reads every pair of a header map. Names that are not UTF-8 are read
/// lossily, values as bytes.
pub fn header_pairs(map: MapType) -> Result<Vec<(String, Vec<u8>)>, HostStatus> {
    // SAFETY: both out-pointers are live locals for the whole call.
    let bytes =
        returned_bytes(|data, size| unsafe { proxy_get_header_map_pairs(map as u32, data, size) })?
            .unwrap_or_default();
    deserialize_pairs(&bytes).ok_or(HostStatus(SERIALIZATION_FAILURE))
}

/// The SERIALIZATION_FAILURE status, for a map the host encoded wrongly.
const SERIALIZATION_FAILURE: u32 = 3;

/// Reads the first value of a header, `None` when it is absent.
pub fn header_value(map: MapType, name: &str) -> Result<Option<Vec<u8>>, HostStatus> {
    // SAFETY: the name outlives the call, which only reads it, and both
    // out-pointers are live locals.
    returned_bytes(|data, size| unsafe {
        proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), data, size)
    })
}

/// Reads up to `max_size` bytes of a buffer from `start`, `None` when the
/// buffer does not exist.
pub fn buffer(
    buffer: BufferType,
    start: usize,
    max_size: usize,
) -> Result<Option<Vec<u8>>, HostStatus> {
    // SAFETY: both out-pointers are live locals for the whole call.
    returned_bytes(|data, size| unsafe {
        proxy_get_buffer_bytes(buffer as u32, start, max_size, data, size)
    })
}

/// Reads a property given as path segments, `None` when it is not found.
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, HostStatus> {
    // Segments are joined by NUL bytes.
    let serialized = path.join("\0");
    // SAFETY: the path outlives the call, which only reads it, and both
    // out-pointers are live locals.
    returned_bytes(|data, size| unsafe {
        proxy_get_property(serialized.as_ptr(), serialized.len(), data, size)
    })
}

/// Decodes header pairs from the ABI's map format (see [`serialize_pairs`]),
/// or `None` when the bytes are shorter than their counts and lengths need.
fn deserialize_pairs(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let word = |at: usize| -> Option<usize> {
        let raw = bytes.get(at..at.checked_add(4)?)?;
        usize::try_from(u32::from_le_bytes(raw.try_into().ok()?)).ok()
    };
    let count = word(0)?;
    let mut data = 4usize.checked_add(count.checked_mul(8)?)?;
    if data > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    for index in 0..count {
        let name_size = word(4 + 8 * index)?;
        let value_size = word(8 + 8 * index)?;
        let name = bytes.get(data..data.checked_add(name_size)?)?;
        data = data.checked_add(name_size + 1)?;
        let value = bytes.get(data..data.checked_add(value_size)?)?;
        data = data.checked_add(value_size + 1)?;
        let name = String::from_utf8(name.to_vec())
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
        pairs.push((name, value.to_vec()));
    }
    Some(pairs)
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

/// Writes one line to the host's log at `level` (0 trace to 5 critical).
pub fn log(level: u32, message: &str) -> Result<(), HostStatus> {
    // SAFETY: the message outlives the call, which only reads it.
    result(unsafe { proxy_log(level, message.as_ptr(), message.len()) })
}

/// Reads the host's wall clock, in nanoseconds since the Unix epoch.
pub fn current_time_nanos() -> Result<u64, HostStatus> {
    let mut nanos: u64 = 0;
    // SAFETY: the out-pointer is a live local for the whole call.
    result(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) }).map(|()| nanos)
}

/// Sets the period of the root context's ticks; a period over `u32::MAX`
/// milliseconds is cut to it.
pub fn set_tick_period(period: Duration) -> Result<(), HostStatus> {
    let millis = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
    // SAFETY: the call takes no pointers.
    result(unsafe { proxy_set_tick_period_milliseconds(millis) })
}

/// Makes `context_id` the context that the next stream calls act on.
pub fn set_effective_context(context_id: u32) -> Result<(), HostStatus> {
    // SAFETY: the call takes no pointers.
    result(unsafe { proxy_set_effective_context(context_id) })
}

/// The ABI's stream type of the request half of an HTTP stream.
const HTTP_REQUEST_STREAM: u32 = 0;

/// Resumes the paused request of the effective context.
pub fn resume_request() -> Result<(), HostStatus> {
    // SAFETY: the call takes no pointers.
    result(unsafe { proxy_continue_stream(HTTP_REQUEST_STREAM) })
}

/// Resets the request of the effective context.
pub fn reset_request() -> Result<(), HostStatus> {
    // SAFETY: the call takes no pointers.
    result(unsafe { proxy_close_stream(HTTP_REQUEST_STREAM) })
}

/// Reads a shared-data value and its CAS: `Ok(None)` when the key does not
/// exist. A value the host returns as a null pointer reads as empty.
pub fn shared_data(key: &str) -> Result<Option<(Vec<u8>, u32)>, HostStatus> {
    let mut cas: u32 = 0;
    // SAFETY: the key outlives the call, which only reads it, and every
    // out-pointer is a live local.
    let value = returned_bytes(|data, size| unsafe {
        proxy_get_shared_data(key.as_ptr(), key.len(), data, size, &mut cas)
    })?;
    Ok(value.map(|value| (value, cas)))
}

/// Writes a shared-data value if its CAS still matches (0 writes whatever
/// the key holds on Envoy); CAS_MISMATCH when another writer came first.
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), HostStatus> {
    // SAFETY: both slices outlive the call, which only reads them.
    result(unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

/// Registers a shared queue of this VM's root context under `name` and
/// returns its id. The host calls `on_queue_ready` on that root context
/// when a value is enqueued.
pub fn register_shared_queue(name: &str) -> Result<u32, HostStatus> {
    let mut id: u32 = 0;
    // SAFETY: the name outlives the call, which only reads it, and the
    // out-pointer is a live local.
    result(unsafe { proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) }).map(|()| id)
}

/// Appends a value to a shared queue.
pub fn enqueue_shared_queue(id: u32, value: &[u8]) -> Result<(), HostStatus> {
    // SAFETY: the value outlives the call, which only reads it.
    result(unsafe { proxy_enqueue_shared_queue(id, value.as_ptr(), value.len()) })
}

/// Takes the oldest value off a shared queue: `Ok(None)` when it is empty.
pub fn dequeue_shared_queue(id: u32) -> Result<Option<Vec<u8>>, HostStatus> {
    // SAFETY: every out-pointer is a live local.
    match returned_bytes(|data, size| unsafe { proxy_dequeue_shared_queue(id, data, size) }) {
        Err(HostStatus::EMPTY) => Ok(None),
        other => other,
    }
}

/// The ABI's metric type of a counter.
const COUNTER: u32 = 0;

/// Defines a counter and returns its id.
pub fn define_counter(name: &str) -> Result<u32, HostStatus> {
    let mut id: u32 = 0;
    // SAFETY: the name outlives the call, which only reads it, and the
    // out-pointer is a live local.
    result(unsafe { proxy_define_metric(COUNTER, name.as_ptr(), name.len(), &mut id) }).map(|()| id)
}

/// Adds `offset` to a metric.
pub fn increment_metric(id: u32, offset: i64) -> Result<(), HostStatus> {
    // SAFETY: the call takes no pointers.
    result(unsafe { proxy_increment_metric(id, offset) })
}

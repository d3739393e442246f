//! Host functions called directly, so that the probe gets the raw status. The SDK's
//! wrappers panic on statuses they do not expect (BAD_ARGUMENT from `set_buffer`) or fold
//! statuses together (`dequeue_shared_queue` returns None for both EMPTY and an empty item).
// Calling imported host functions is unsafe by nature; each call passes pointers to live
// locals or slices, and every buffer the host returns was allocated by the SDK's
// `proxy_on_memory_allocate` (a forgotten `Vec<u8>` of exactly that size).
#![allow(unsafe_code)]

use std::ptr::null_mut;

// Statuses are declared as u32, not as the SDK's `Status` enum, because the host may return
// codes the enum lacks (6, 12) and turning those into the enum would be undefined behaviour.
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buffer_type: u32,
        start: usize,
        size: usize,
        data: *const u8,
        len: usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key: *const u8,
        key_len: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_size(map_type: u32, size: *mut usize) -> u32;
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> u32;
    fn proxy_dequeue_shared_queue(queue_id: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_define_metric(metric_type: u32, name: *const u8, name_len: usize, id: *mut u32)
        -> u32;
    fn proxy_set_property(
        path: *const u8,
        path_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> u32;
}

/// Takes ownership of a buffer the host returned. A null pointer means no data.
fn take(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        return None;
    }
    // SAFETY: the host wrote `size` bytes into an allocation of `size` bytes made by the
    // SDK's allocator, as the module comment explains.
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}

/// Returns the status and bytes of `proxy_get_buffer_bytes`.
pub fn get_buffer(buffer_type: u32, start: usize, max_size: usize) -> (u32, Option<Vec<u8>>) {
    let (mut data, mut size) = (null_mut(), 0);
    let status =
        unsafe { proxy_get_buffer_bytes(buffer_type, start, max_size, &mut data, &mut size) };
    (status, take(data, size))
}

/// Returns the status of `proxy_set_buffer_bytes`.
pub fn set_buffer(buffer_type: u32, start: usize, size: usize, value: &[u8]) -> u32 {
    unsafe { proxy_set_buffer_bytes(buffer_type, start, size, value.as_ptr(), value.len()) }
}

/// Returns the status and value of `proxy_get_header_map_value`.
pub fn get_map_value(map_type: u32, key: &str) -> (u32, Option<Vec<u8>>) {
    let (mut data, mut size) = (null_mut(), 0);
    let status = unsafe {
        proxy_get_header_map_value(map_type, key.as_ptr(), key.len(), &mut data, &mut size)
    };
    (status, take(data, size))
}

/// Returns the status and size of `proxy_get_header_map_size`.
pub fn get_map_size(map_type: u32) -> (u32, usize) {
    let mut size = 0;
    let status = unsafe { proxy_get_header_map_size(map_type, &mut size) };
    (status, size)
}

/// Returns the status of `proxy_get_header_map_pairs` and the number of pairs returned.
pub fn get_map_pair_count(map_type: u32) -> (u32, u32) {
    let (mut data, mut size) = (null_mut(), 0);
    let status = unsafe { proxy_get_header_map_pairs(map_type, &mut data, &mut size) };
    let count = take(data, size)
        .and_then(|bytes| {
            bytes
                .get(0..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        })
        .unwrap_or(0);
    (status, count)
}

/// Returns the status of `proxy_add_header_map_value`.
pub fn add_map_value(map_type: u32, key: &str, value: &[u8]) -> u32 {
    unsafe {
        proxy_add_header_map_value(
            map_type,
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
        )
    }
}

/// Returns the status and item of `proxy_dequeue_shared_queue`.
pub fn dequeue(queue_id: u32) -> (u32, Option<Vec<u8>>) {
    let (mut data, mut size) = (null_mut(), 0);
    let status = unsafe { proxy_dequeue_shared_queue(queue_id, &mut data, &mut size) };
    (status, take(data, size))
}

/// Returns the status and id of `proxy_define_metric`.
pub fn define_metric(metric_type: u32, name: &str) -> (u32, u32) {
    let mut id = 0;
    let status = unsafe { proxy_define_metric(metric_type, name.as_ptr(), name.len(), &mut id) };
    (status, id)
}

/// Returns the status of `proxy_set_property` for a one-segment path.
pub fn set_property(name: &str, value: &[u8]) -> u32 {
    unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) }
}

/// The ABI name of a status code.
pub fn status_name(code: u32) -> &'static str {
    match code {
        0 => "OK",
        1 => "NOT_FOUND",
        2 => "BAD_ARGUMENT",
        3 => "SERIALIZATION_FAILURE",
        4 => "PARSE_FAILURE",
        6 => "INVALID_MEMORY_ACCESS",
        7 => "EMPTY",
        8 => "CAS_MISMATCH",
        10 => "INTERNAL_FAILURE",
        12 => "UNIMPLEMENTED",
        _ => "UNKNOWN_STATUS",
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_property(
        path: *const u8,
        path_len: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
}

/// Returns the status and value of `proxy_get_property` for a NUL-joined path.
pub fn get_property(path: &[u8]) -> (u32, Option<Vec<u8>>) {
    let (mut data, mut size) = (null_mut(), 0);
    let status = unsafe { proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut size) };
    (status, take(data, size))
}

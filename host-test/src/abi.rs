//! Constants and encodings of the proxy-wasm ABI 0.2.1, with the numeric values Envoy uses.

/// Status codes returned by host functions (`proxy_status_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    SerializationFailure = 3,
    ParseFailure = 4,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
    Unimplemented = 12,
}

impl Status {
    /// Returns the value a host function hands back to the guest.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Buffer types (`proxy_buffer_type_t`).
pub mod buffer {
    pub const HTTP_REQUEST_BODY: u32 = 0;
    pub const HTTP_RESPONSE_BODY: u32 = 1;
    pub const DOWNSTREAM_DATA: u32 = 2;
    pub const UPSTREAM_DATA: u32 = 3;
    pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
    pub const GRPC_RECEIVE_BUFFER: u32 = 5;
    pub const VM_CONFIGURATION: u32 = 6;
    pub const PLUGIN_CONFIGURATION: u32 = 7;
    pub const CALL_DATA: u32 = 8;
}

/// Header map types (`proxy_map_type_t`).
pub mod map {
    pub const HTTP_REQUEST_HEADERS: u32 = 0;
    pub const HTTP_REQUEST_TRAILERS: u32 = 1;
    pub const HTTP_RESPONSE_HEADERS: u32 = 2;
    pub const HTTP_RESPONSE_TRAILERS: u32 = 3;
    pub const GRPC_RECEIVE_INITIAL_METADATA: u32 = 4;
    pub const GRPC_RECEIVE_TRAILING_METADATA: u32 = 5;
    pub const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
    pub const HTTP_CALL_RESPONSE_TRAILERS: u32 = 7;
}

/// Stream types for `proxy_continue_stream` and `proxy_close_stream`.
pub mod stream {
    pub const HTTP_REQUEST: u32 = 0;
    pub const HTTP_RESPONSE: u32 = 1;
    pub const DOWNSTREAM: u32 = 2;
    pub const UPSTREAM: u32 = 3;
}

/// Actions returned by stream callbacks (`proxy_action_t`).
pub const ACTION_CONTINUE: i32 = 0;
pub const ACTION_PAUSE: i32 = 1;

/// Metric types as the plugin names them in `proxy_define_metric`.
pub mod metric {
    pub const COUNTER: u32 = 0;
    pub const GAUGE: u32 = 1;
    pub const HISTOGRAM: u32 = 2;
}

/// Largest serialized header map a plugin may hand the host.
pub const MAX_MAP_BYTES: usize = 1 << 20;
/// Largest number of pairs in a header map a plugin may hand the host.
pub const MAX_MAP_PAIRS: usize = 1024;

/// Largest `random_get` request, in bytes.
pub const MAX_RANDOM_BYTES: usize = 64 * 1024;

/// WASI errno values the host returns.
pub mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const INVAL: i32 = 28;
    pub const NOSYS: i32 = 52;
}

/// A header map as the host stores it: ordered pairs, values as raw bytes.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Encodes pairs in the ABI's map format: a u32 count, a (key length, value length) u32 pair
/// for each entry, then each key and value followed by a NUL byte. All integers little-endian.
pub fn encode_pairs(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let data_len: usize = pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut out = Vec::with_capacity(4 + pairs.len() * 8 + data_len);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

/// Decodes the ABI's map format, rejecting truncated data, missing NUL terminators and maps
/// over the pair limit. An empty input is an empty map.
pub fn decode_pairs(data: &[u8]) -> Result<Pairs, Status> {
    if data.is_empty() {
        return Ok(Vec::new());
    }
    if data.len() > MAX_MAP_BYTES {
        return Err(Status::BadArgument);
    }
    let read_u32 = |at: usize| -> Result<usize, Status> {
        let bytes = data.get(at..at + 4).ok_or(Status::BadArgument)?;
        let mut word = [0u8; 4];
        word.copy_from_slice(bytes);
        Ok(u32::from_le_bytes(word) as usize)
    };
    let count = read_u32(0)?;
    if count > MAX_MAP_PAIRS {
        return Err(Status::BadArgument);
    }
    let mut sizes = Vec::with_capacity(count);
    for i in 0..count {
        sizes.push((read_u32(4 + i * 8)?, read_u32(8 + i * 8)?));
    }
    let mut at = 4 + count * 8;
    let mut take = |len: usize| -> Result<Vec<u8>, Status> {
        let end = at.checked_add(len).ok_or(Status::BadArgument)?;
        let bytes = data.get(at..end).ok_or(Status::BadArgument)?.to_vec();
        if data.get(end) != Some(&0) {
            return Err(Status::BadArgument);
        }
        at = end + 1;
        Ok(bytes)
    };
    let mut pairs = Vec::with_capacity(count);
    for (key_len, value_len) in sizes {
        let key = take(key_len)?;
        let value = take(value_len)?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// Splits a property path on NUL bytes, the separator of `proxy_get_property` paths.
pub fn split_property_path(path: &[u8]) -> Vec<&[u8]> {
    let path = path.strip_suffix(&[0]).unwrap_or(path);
    path.split(|b| *b == 0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip() {
        let pairs = vec![
            (b":path".to_vec(), b"/a".to_vec()),
            (b"x".to_vec(), vec![0xff, 0x00, 0x80]),
            (b"empty".to_vec(), Vec::new()),
        ];
        assert_eq!(decode_pairs(&encode_pairs(&pairs)), Ok(pairs));
    }

    #[test]
    fn pairs_encoding_matches_spec_example() {
        let encoded = encode_pairs(&[(b"1".to_vec(), b"22".to_vec())]);
        assert_eq!(
            encoded,
            [1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'1', 0, b'2', b'2', 0]
        );
    }

    #[test]
    fn truncated_pairs_rejected() {
        let encoded = encode_pairs(&[(b"key".to_vec(), b"value".to_vec())]);
        for cut in 1..encoded.len() {
            assert_eq!(
                decode_pairs(&encoded[..cut]),
                Err(Status::BadArgument),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn missing_terminator_rejected() {
        let mut encoded = encode_pairs(&[(b"k".to_vec(), b"v".to_vec())]);
        let last = encoded.len() - 1;
        encoded[last] = b'x';
        assert_eq!(decode_pairs(&encoded), Err(Status::BadArgument));
    }

    #[test]
    fn too_many_pairs_rejected() {
        let pairs: Pairs = (0..=MAX_MAP_PAIRS)
            .map(|i| (i.to_string().into_bytes(), Vec::new()))
            .collect();
        assert_eq!(
            decode_pairs(&encode_pairs(&pairs)),
            Err(Status::BadArgument)
        );
    }

    #[test]
    fn property_path_split() {
        assert_eq!(
            split_property_path(b"source\0address"),
            vec![&b"source"[..], &b"address"[..]]
        );
        assert_eq!(
            split_property_path(b"plugin_name\0"),
            vec![&b"plugin_name"[..]]
        );
    }
}

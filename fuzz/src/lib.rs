//! Helpers shared by the fuzz targets.
//!
//! Requests and responses are written as text close to HTTP/1.1, so that
//! seed inputs can be read and edited by hand:
//!
//! ```text
//! POST /login?next=%2F example.com
//! content-type: application/x-www-form-urlencoded
//! cookie: session=abc
//!
//! username=admin&password=x
//! ```
//!
//! Lines end at `\n` only, so a `\r` stays in the value before it. Names and
//! values are split at the first `:` after the first byte, so a line may
//! name a pseudo-header such as `:authority: example.com`. Invalid UTF-8 in
//! a name becomes U+FFFD because the host API gives names as strings, while
//! values stay bytes.

/// Header pairs in the form the core crate takes them.
pub type Headers = Vec<(String, Vec<u8>)>;

/// One message: its first line, its header lines, and what follows the
/// first empty line.
pub struct Message<'a> {
    /// The first line, without its `\n`.
    pub start: &'a [u8],
    /// Header lines in order.
    pub headers: Headers,
    /// Everything after the empty line that ends the headers.
    pub rest: &'a [u8],
}

/// Splits `data` into a start line, header lines and the rest.
pub fn parse_message(data: &[u8]) -> Message<'_> {
    let (head, rest) = match find(data, b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &data[data.len()..]),
    };
    let mut lines = head.split(|&byte| byte == b'\n');
    let start = lines.next().unwrap_or_default();
    let headers = lines.map(header_line).collect();
    Message {
        start,
        headers,
        rest,
    }
}

fn header_line(line: &[u8]) -> (String, Vec<u8>) {
    let colon = line
        .iter()
        .skip(1)
        .position(|&byte| byte == b':')
        .map(|at| at + 1);
    let (name, value) = match colon {
        Some(at) => (&line[..at], &line[at + 1..]),
        None => (line, &line[line.len()..]),
    };
    let value = value.strip_prefix(b" ").unwrap_or(value);
    (String::from_utf8_lossy(name).into_owned(), value.to_vec())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Builds request headers from a message whose start line is
/// `METHOD PATH [AUTHORITY]`. The pseudo-headers come first, as proxies send
/// them, and the authority is `example.com` when the line leaves it out.
pub fn request_headers(message: &Message<'_>) -> Headers {
    let mut words = message.start.splitn(3, |&byte| byte == b' ');
    let method = words.next().unwrap_or_default();
    let path = words.next().unwrap_or(b"/");
    let authority = words.next().unwrap_or(b"example.com");
    let mut headers = vec![
        (":method".to_string(), method.to_vec()),
        (":path".to_string(), path.to_vec()),
        (":authority".to_string(), authority.to_vec()),
        (":scheme".to_string(), b"https".to_vec()),
    ];
    headers.extend(message.headers.iter().cloned());
    headers
}

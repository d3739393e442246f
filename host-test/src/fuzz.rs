//! `host-test fuzz`: feeds generated requests and responses (valid, malformed and hostile)
//! to the built module and fails on any trap, on linear memory that keeps growing, or on a
//! stream callback after a local response. A failing case is written out as a scenario
//! file, ready to become a regression test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::abi::Pairs;
use crate::module::{self, Plugin};
use crate::shared::{Clock, HostShared};
use crate::state::{HostProfile, LogLevel, VmOptions};
use crate::stream::{ClientRequest, StreamPoll, UpstreamResponse};
use crate::vm::Vm;

/// Arguments of `host-test fuzz`.
#[derive(clap::Args, Debug)]
pub struct FuzzArgs {
    /// The module to feed.
    #[arg(long, default_value = "dist/portcullis.wasm")]
    pub plugin: PathBuf,
    /// Plugin configuration file (default: `{}`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Number of generated exchanges.
    #[arg(long, default_value_t = 2000)]
    pub iterations: usize,
    /// Seed of the generator; the same seed generates the same exchanges.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Host to reproduce.
    #[arg(long, value_enum, default_value = "envoy")]
    pub host: HostProfile,
    /// Largest growth of linear memory allowed between the end of the warm-up (a tenth of
    /// the iterations) and the end, in MiB.
    #[arg(long, default_value_t = 16)]
    pub max_growth_mib: usize,
    /// Where a failing exchange is written as a scenario file.
    #[arg(long, default_value = "target/fuzz-failure.yaml")]
    pub failure_file: PathBuf,
}

/// Fragments that hostile requests are built from: encodings, attack payloads, and bytes
/// that are not valid UTF-8.
const FRAGMENTS: &[&[u8]] = &[
    b"../",
    b"..%2f",
    b"%2e%2e%2f",
    b"%252e%252e%252f",
    b"%c0%af",
    b"%c0%ae%c0%ae/",
    b"%00",
    b"%",
    b"%%",
    b"%u0027",
    b"%uFF1C",
    b"'",
    b"\"",
    b"' OR 1=1--",
    b"UNION/**/SELECT",
    b"<script>",
    b"<svg/onload=alert(1)>",
    b"javascript:",
    b"${jndi:ldap://x/a}",
    b"${${lower:j}ndi:",
    b";cat /etc/passwd",
    b"$(id)",
    b"`id`",
    b"c'a't",
    b"\\x41",
    b"&#x3c;",
    b"&lt;",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xe2\x82",
    b"\xf0\x9f\x98\x80",
    b"\xed\xa0\x80",
    b"+",
    b"=",
    b"&",
    b"?",
    b"#",
    b";",
    b"//",
    b"/./",
    b"\\",
    b"admin",
    b"select a plan",
    b"O'Reilly",
    b"caf\xc3\xa9",
    b"\xe6\x97\xa5\xe6\x9c\xac",
    b"a",
];

const HEADER_NAMES: &[&str] = &[
    "authorization",
    "cookie",
    "content-type",
    "content-length",
    "transfer-encoding",
    "x-forwarded-for",
    "x-real-ip",
    "user-agent",
    "referer",
    "origin",
    "accept",
    "x-portcullis-client-ip",
    "host",
    "x-a",
    "te",
    "access-control-request-method",
    "x-http-method-override",
];

const CONTENT_TYPES: &[&str] = &[
    "application/x-www-form-urlencoded",
    "application/json",
    "multipart/form-data; boundary=XyZ",
    "text/plain",
    "application/xml",
    "application/json; charset=utf-8",
    "",
    "garbage/\u{0}",
];

/// Joins a number of fragments in `parts` (half-open), with random bytes between some.
fn fragments(rng: &mut StdRng, parts: std::ops::Range<usize>) -> Vec<u8> {
    let parts = if parts.is_empty() {
        parts.start
    } else {
        rng.gen_range(parts)
    };
    let mut out = Vec::new();
    for _ in 0..parts {
        out.extend_from_slice(FRAGMENTS[rng.gen_range(0..FRAGMENTS.len())]);
        if rng.gen_bool(0.3) {
            let random: Vec<u8> = (0..rng.gen_range(0..8)).map(|_| rng.gen()).collect();
            out.extend_from_slice(&random);
        }
    }
    out
}

/// A header value: mostly printable fragments, sometimes raw bytes, rarely very long.
fn header_value(rng: &mut StdRng) -> Vec<u8> {
    match rng.gen_range(0..20) {
        0 => vec![b'a'; rng.gen_range(1000..100_000)],
        1 => (0..rng.gen_range(0..64))
            .map(|_| rng.gen_range(0x80..=0xff))
            .collect(),
        2 => Vec::new(),
        3 => b"Bearer "
            .iter()
            .copied()
            .chain(fragments(rng, 3..4))
            .collect(),
        _ => fragments(rng, 1..6),
    }
}

/// Percent-encodes the bytes a request line cannot carry, as clients do.
fn encode_for_path(bytes: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for byte in bytes {
        if byte <= b' ' || byte == 0x7f {
            out.extend_from_slice(format!("%{byte:02X}").as_bytes());
        } else {
            out.push(byte);
        }
    }
    out
}

/// Most generated exchanges should reach the module, so only some keep what the HTTP/1
/// codec rejects before any filter runs.
fn make_valid(rng: &mut StdRng, request: &mut ClientRequest) {
    if rng.gen_range(0..10) == 0 {
        return;
    }
    request.path = encode_for_path(std::mem::take(&mut request.path));
    if request.method.is_empty() {
        request.method = b"GET".to_vec();
    }
    for (name, value) in &mut request.headers {
        name.retain(|b| b.is_ascii_alphanumeric() || *b == b'-');
        if name.is_empty() {
            name.extend_from_slice(b"x-empty");
        }
        for byte in value.iter_mut() {
            if matches!(*byte, 0 | b'\r' | b'\n') {
                *byte = b' ';
            }
        }
    }
}

/// Words of ordinary requests.
const WORDS: &[&str] = &[
    "products", "api", "v2", "users", "42", "search", "q", "shoes", "page", "2", "sort", "price",
    "en-US", "login", "static", "app.js",
];

fn ordinary_request(rng: &mut StdRng, index: u64) -> ClientRequest {
    let mut word = || WORDS[rng.gen_range(0..WORDS.len())];
    let path = format!(
        "/{}/{}?{}={}&{}={}",
        word(),
        word(),
        word(),
        word(),
        word(),
        word()
    );
    let mut request = generate_raw_request(rng, index);
    request.path = path.into_bytes();
    request
        .headers
        .retain(|(name, _)| name.iter().all(|b| b.is_ascii_lowercase() || *b == b'-'));
    for (_, value) in &mut request.headers {
        *value = b"text/html, application/json;q=0.9".to_vec();
    }
    request.body_chunks = if request.body_chunks.is_empty() {
        Vec::new()
    } else {
        vec![b"name=Ada&lang=en".to_vec()]
    };
    request
}

fn generate_request(rng: &mut StdRng, index: u64) -> ClientRequest {
    if rng.gen_range(0..3) == 0 {
        return ordinary_request(rng, index);
    }
    let mut request = generate_raw_request(rng, index);
    make_valid(rng, &mut request);
    request
}

fn generate_raw_request(rng: &mut StdRng, index: u64) -> ClientRequest {
    let methods: &[&[u8]] = &[
        b"GET",
        b"POST",
        b"PUT",
        b"PATCH",
        b"DELETE",
        b"OPTIONS",
        b"HEAD",
        b"TRACE",
        b"PROPFIND",
        b"",
    ];
    let method = methods[rng.gen_range(0..methods.len())].to_vec();
    let mut path = b"/".to_vec();
    for _ in 0..rng.gen_range(0..5) {
        path.extend(fragments(rng, 1..3));
        path.push(b'/');
    }
    if rng.gen_bool(0.6) {
        path.push(b'?');
        for i in 0..rng.gen_range(0..6) {
            if i > 0 {
                path.push(b'&');
            }
            path.extend(fragments(rng, 1..2));
            path.push(b'=');
            path.extend(fragments(rng, 0..4));
        }
    }
    let mut headers: Pairs = Vec::new();
    let count = if rng.gen_range(0..30) == 0 {
        rng.gen_range(100..1100)
    } else {
        rng.gen_range(0..12)
    };
    for _ in 0..count {
        let name = if rng.gen_range(0..8) == 0 {
            fragments(rng, 1..2)
        } else {
            HEADER_NAMES[rng.gen_range(0..HEADER_NAMES.len())]
                .as_bytes()
                .to_vec()
        };
        headers.push((name, header_value(rng)));
    }
    let content_type = CONTENT_TYPES[rng.gen_range(0..CONTENT_TYPES.len())];
    let body_chunks: Vec<Vec<u8>> = match rng.gen_range(0..4) {
        0 => Vec::new(),
        1 => fragments(rng, 1..40)
            .chunks(1)
            .map(<[u8]>::to_vec)
            .collect(),
        2 => {
            let body = format!(
                "{{\"q\":\"{}\",\"n\":[1,{{\"x\":\"y\"}}]}}",
                String::from_utf8_lossy(&fragments(rng, 4..5))
            );
            vec![body.into_bytes()]
        }
        _ => (0..rng.gen_range(1..5))
            .map(|_| fragments(rng, 1..20))
            .collect(),
    };
    if !body_chunks.is_empty() {
        headers.push((b"content-type".to_vec(), content_type.as_bytes().to_vec()));
    }
    let trailers = rng
        .gen_bool(0.05)
        .then(|| vec![(b"x-trailer".to_vec(), header_value(rng))]);
    ClientRequest {
        method,
        path,
        authority: if rng.gen_bool(0.1) {
            Vec::new()
        } else {
            b"app.test".to_vec()
        },
        scheme: if rng.gen_bool(0.5) {
            b"https".to_vec()
        } else {
            b"http".to_vec()
        },
        headers,
        body_chunks,
        trailers,
        source: SocketAddr::from((
            [198, 51, 100, rng.gen_range(1..255)],
            rng.gen_range(1024..65535),
        )),
        destination: SocketAddr::from(([127, 0, 0, 1], 10000)),
        mtls: rng.gen_bool(0.1),
        connection_id: index,
        ends: rng.gen_range(0..40) != 0,
    }
}

fn generate_response(rng: &mut StdRng) -> UpstreamResponse {
    let statuses = [200, 201, 204, 301, 302, 400, 401, 403, 404, 429, 500, 503];
    let mut headers: Pairs = vec![(b"content-type".to_vec(), b"text/html".to_vec())];
    for _ in 0..rng.gen_range(0..8) {
        // Names of arbitrary bytes too: nginx passes an upstream's header
        // names on even when they are not tokens or not UTF-8.
        if rng.gen_range(0..8) == 0 {
            headers.push((fragments(rng, 1..2), header_value(rng)));
            continue;
        }
        let header: (&[u8], Vec<u8>) = match rng.gen_range(0..7) {
            0 => (
                b"set-cookie",
                [
                    b"sid=".as_slice(),
                    &header_value(rng),
                    b"; Path=/; HttpOnly",
                ]
                .concat(),
            ),
            1 => (b"set-cookie", header_value(rng)),
            2 => (b"server", header_value(rng)),
            3 => (b"strict-transport-security", header_value(rng)),
            4 => (b"content-security-policy", header_value(rng)),
            5 => (b"x-powered-by", b"PHP/8".to_vec()),
            _ => (b"x-envoy-upstream-service-time", b"3".to_vec()),
        };
        headers.push((header.0.to_vec(), header.1));
    }
    let body_chunks = (0..rng.gen_range(0..3))
        .map(|_| fragments(rng, 1..10))
        .collect();
    UpstreamResponse {
        status: statuses[rng.gen_range(0..statuses.len())],
        headers,
        body_chunks,
        trailers: None,
    }
}

fn yaml_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.contains(['\r', '\n', '\0']) => {
            serde_json::to_string(text).unwrap_or_default()
        }
        _ => format!(
            "{{base64: \"{}\"}}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
    }
}

fn yaml_pairs(pairs: &Pairs, indent: &str) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{indent}- [{}, {}]\n", yaml_bytes(k), yaml_bytes(v)))
        .collect()
}

fn yaml_list(items: &[Vec<u8>], indent: &str) -> String {
    items
        .iter()
        .map(|item| format!("{indent}- {}\n", yaml_bytes(item)))
        .collect()
}

/// Writes an exchange as a scenario that replays it.
fn scenario_text(
    config: &str,
    request: &ClientRequest,
    response: &UpstreamResponse,
    reason: &str,
) -> String {
    let mut text = format!("# Found by host-test fuzz: {reason}\n");
    text += &format!("configuration_raw: {}\n", yaml_bytes(config.as_bytes()));
    text += "limits: {max_request_headers_kb: 8192, max_headers_count: 2000}\n";
    text += "steps:\n  - name: replay\n    request:\n";
    text += &format!("      method: {}\n", yaml_bytes(&request.method));
    text += &format!("      path: {}\n", yaml_bytes(&request.path));
    text += &format!("      authority: {}\n", yaml_bytes(&request.authority));
    text += &format!("      scheme: {}\n", yaml_bytes(&request.scheme));
    text += &format!("      source: \"{}\"\n", request.source);
    text += &format!("      end_of_stream: {}\n", request.ends);
    text += &format!(
        "      headers:\n{}",
        yaml_pairs(&request.headers, "        ")
    );
    text += &format!(
        "      body_chunks:\n{}",
        yaml_list(&request.body_chunks, "        ")
    );
    if let Some(trailers) = &request.trailers {
        text += &format!("      trailers:\n{}", yaml_pairs(trailers, "        "));
    }
    text += &format!("    upstream:\n      status: {}\n", response.status);
    text += &format!(
        "      headers:\n{}",
        yaml_pairs(&response.headers, "        ")
    );
    text += &format!(
        "      body_chunks:\n{}",
        yaml_list(&response.body_chunks, "        ")
    );
    text += "    expect:\n      vm_failed: false\n";
    text
}

/// Runs the generated exchanges.
pub fn run(args: FuzzArgs) -> anyhow::Result<()> {
    let engine = module::engine()?;
    let plugin = Plugin::load(&engine, &args.plugin)?;
    let config = match &args.config {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("failed to read {}", path.display()))?,
        None => "{}".to_string(),
    };
    let seed = args.seed.unwrap_or_else(|| rand::thread_rng().gen());
    let options = Arc::new(VmOptions {
        plugin_configuration: config.as_bytes().to_vec(),
        log_level: LogLevel::Critical,
        host: args.host,
        limits: crate::state::Limits {
            max_request_headers_kb: 8192,
            max_headers_count: 2000,
        },
        ..VmOptions::default()
    });
    let mut vm = Vm::start(&plugin, options, HostShared::new(Clock::system()), 0)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut rng = StdRng::seed_from_u64(seed);
    let warm_up = args.iterations / 10;
    let mut warm_memory = vm.memory_bytes();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for index in 0..args.iterations {
        let request = generate_request(&mut rng, index as u64);
        let response = generate_response(&mut rng);
        let id = vm.start_stream(request.clone());
        let status = loop {
            match vm.poll_stream(id) {
                StreamPoll::NeedUpstream(_) => vm.set_upstream_response(id, response.clone()),
                StreamPoll::Done(done) => break done.status,
                StreamPoll::Waiting => {
                    // Nothing answers the module's calls here: the client gives up.
                    vm.take_outgoing_calls();
                    vm.abandon_stream(id);
                    break 0;
                }
            }
        };
        *statuses.entry(status).or_default() += 1;
        let logs = vm.take_logs();
        let violation = vm.callback_after_local_response();
        let failure = vm.failure().map(str::to_string).or(violation);
        if let Some(failure) = failure {
            let reason = format!("seed {seed}, exchange {index}: {failure}");
            let text = scenario_text(&config, &request, &response, &reason);
            if let Some(dir) = args.failure_file.parent() {
                std::fs::create_dir_all(dir).ok();
            }
            std::fs::write(&args.failure_file, text)?;
            for line in logs.iter().rev().take(5) {
                eprintln!("  plugin log [{:?}] {}", line.level, line.message);
            }
            bail!(
                "{reason}; the exchange is written to {}",
                args.failure_file.display()
            );
        }
        if index + 1 == warm_up {
            warm_memory = vm.memory_bytes();
        }
    }
    let end_memory = vm.memory_bytes();
    let growth = end_memory.saturating_sub(warm_memory);
    println!(
        "fuzz: {} exchanges, seed {seed}, statuses {statuses:?}, linear memory {} KiB after warm-up, {} KiB at the end",
        args.iterations,
        warm_memory / 1024,
        end_memory / 1024
    );
    if growth > args.max_growth_mib << 20 {
        bail!(
            "linear memory grew by {} KiB after the warm-up (limit {} MiB); seed {seed}",
            growth / 1024,
            args.max_growth_mib
        );
    }
    Ok(())
}

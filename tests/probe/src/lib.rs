//! portcullis-probe: a proxy-wasm module that calls host functions and logs what it
//! observed, one `probe: ` line per fact, so that host-test scenarios can check the host
//! against Envoy's behaviour. The request path chooses what it exercises (see
//! `route_request_headers`).

// Test code: a failed unwrap or a panic traps the VM, which the scenario reports with the
// panic message, and `/trap` panics on purpose to test the failure policies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod raw;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use log::info;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType, Status};

/// Requests this VM has received. A reloaded VM starts again at 1.
static VM_REQUESTS: AtomicU32 = AtomicU32::new(0);
/// Ticks this VM's root context has received.
static TICKS: AtomicU32 = AtomicU32::new(0);

/// Buffer and map type numbers of ABI 0.2.1.
const REQUEST_BODY: u32 = 0;
const VM_CONFIGURATION: u32 = 6;
const PLUGIN_CONFIGURATION: u32 = 7;
const REQUEST_HEADERS: u32 = 0;
const REQUEST_TRAILERS: u32 = 1;
const RESPONSE_HEADERS: u32 = 2;
const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
const INVALID_MAP: u32 = 8;

/// The cas used to insert a missing shared-data key. A set on a missing key succeeds
/// whatever the cas, but on an existing key only when the cas matches, so an insert with a
/// cas that no entry holds fails once another worker has inserted first. CAS tokens count up
/// from 1, so an entry holds u32::MAX only after 2^32 - 2 earlier writes.
const INSERT_CAS: u32 = u32::MAX;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ProbeRoot) });
}}

fn status_name(status: Status) -> &'static str {
    raw::status_name(status as u32)
}

fn result_name<T>(result: &Result<T, Status>) -> &'static str {
    match result {
        Ok(_) => "OK",
        Err(status) => status_name(*status),
    }
}

/// Renders bytes for a log line: quoted and escaped when UTF-8, else `hex:`. Long values
/// are cut to their first 48 bytes, followed by `...`.
fn render(bytes: &[u8]) -> String {
    const SHOWN: usize = 48;
    let (prefix, cut) = if bytes.len() > SHOWN {
        (&bytes[..SHOWN], "...")
    } else {
        (bytes, "")
    };
    match std::str::from_utf8(prefix) {
        Ok(text) => format!("{:?}{cut}", text),
        Err(_) => {
            let hex: String = prefix.iter().map(|b| format!("{b:02x}")).collect();
            format!("hex:{hex}{cut}")
        }
    }
}

fn now_nanos() -> u128 {
    hostcalls::get_current_time()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

struct ProbeRoot;

impl Context for ProbeRoot {}

impl RootContext for ProbeRoot {
    fn on_vm_start(&mut self, vm_configuration_size: usize) -> bool {
        let (status, data) = raw::get_buffer(VM_CONFIGURATION, 0, usize::MAX);
        info!(
            "probe: vm_start size={vm_configuration_size} vm_configuration={} value={}",
            raw::status_name(status),
            render(&data.unwrap_or_default())
        );
        true
    }

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let (status, data) = raw::get_buffer(PLUGIN_CONFIGURATION, 0, usize::MAX);
        info!(
            "probe: configure size={plugin_configuration_size} plugin_configuration={} value={}",
            raw::status_name(status),
            render(&data.unwrap_or_default())
        );
        let (status, data) = raw::get_buffer(VM_CONFIGURATION, 0, usize::MAX);
        info!(
            "probe: configure vm_configuration={} len={}",
            raw::status_name(status),
            data.map_or(0, |d| d.len())
        );
        let status = raw::set_property("probe_root", b"x");
        info!("probe: configure set_property={}", raw::status_name(status));
        true
    }

    fn on_tick(&mut self) {
        let n = TICKS.fetch_add(1, Ordering::Relaxed) + 1;
        info!("probe: tick n={n} now={}", now_nanos());
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        info!("probe: queue_ready id={queue_id}");
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe {
            context_id,
            route: String::new(),
            query: Vec::new(),
            events: Vec::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One HTTP stream. `events` lists the callbacks received, logged in order when the SDK
/// drops the context in `proxy_on_delete`.
struct Probe {
    context_id: u32,
    route: String,
    query: Vec<(String, String)>,
    events: Vec<&'static str>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.events.push("delete");
        info!(
            "probe: delete context={} order={}",
            self.context_id,
            self.events.join(",")
        );
    }
}

impl Probe {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn parse_path(&mut self) {
        let path = self
            .get_http_request_header_bytes(":path")
            .unwrap_or_default();
        let path = String::from_utf8_lossy(&path).into_owned();
        let (route, query) = path.split_once('?').unwrap_or((&path, ""));
        self.route = route.to_string();
        self.query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
    }

    fn route_request_headers(&mut self) -> Action {
        match self.route.as_str() {
            "/local" => self.local_response(),
            "/trap" => panic!("probe: trap requested"),
            "/headers" => self.log_headers(),
            "/shared/get" => self.shared_get(),
            "/shared/set" => self.shared_set(),
            "/shared/incr" => self.shared_incr(),
            "/call" => return self.http_call(),
            "/property" => self.property(),
            "/setprop" => self.set_property(),
            "/metric" => self.metrics(),
            "/tick" => self.tick_period(),
            "/ticks" => info!("probe: ticks={}", TICKS.load(Ordering::Relaxed)),
            "/time" => info!("probe: time nanos={}", now_nanos()),
            "/queue" => self.queue(),
            "/maps" => self.maps(),
            "/config" => self.config(),
            _ => return Action::Continue,
        }
        if self.route == "/local" && self.param("action") != Some("continue") {
            return Action::Pause;
        }
        Action::Continue
    }

    fn local_response(&mut self) {
        self.send_http_response(403, vec![("x-probe", "local")], Some(b"denied by probe"));
        info!("probe: local_response sent");
    }

    fn log_headers(&mut self) {
        let pairs = self.get_http_request_headers_bytes();
        info!("probe: header_count={}", pairs.len());
        for (name, value) in &pairs {
            info!(
                "probe: header {name} len={} value={}",
                value.len(),
                render(value)
            );
        }
        let authorization = pairs
            .iter()
            .filter(|(name, _)| name == "authorization")
            .count();
        info!("probe: authorization count={authorization}");
        if let Some(first) = self.get_http_request_header_bytes("authorization") {
            info!("probe: authorization first={}", render(&first));
        }
    }

    fn shared_get(&mut self) {
        let key = self.param("key").unwrap_or("probe").to_string();
        match hostcalls::get_shared_data(&key) {
            Ok((None, None)) => info!("probe: shared get key={key} status=NOT_FOUND"),
            Ok((value, cas)) => info!(
                "probe: shared get key={key} status=OK value={} cas={}",
                render(&value.unwrap_or_default()),
                cas.unwrap_or(0)
            ),
            Err(status) => info!("probe: shared get key={key} status={}", status_name(status)),
        }
    }

    fn shared_set(&mut self) {
        let key = self.param("key").unwrap_or("probe").to_string();
        let value = self.param("value").unwrap_or("").to_string();
        let cas: u32 = self.param("cas").and_then(|c| c.parse().ok()).unwrap_or(0);
        let result = hostcalls::set_shared_data(&key, Some(value.as_bytes()), Some(cas));
        info!(
            "probe: shared set key={key} cas={cas} status={}",
            result_name(&result)
        );
    }

    /// Increments a decimal counter with a CAS retry loop. A missing key is inserted with
    /// `INSERT_CAS`, so that of two workers that both read NOT_FOUND only one insert wins.
    fn shared_incr(&mut self) {
        let key = self.param("key").unwrap_or("probe").to_string();
        let mut retries = 0;
        loop {
            let (value, cas) = hostcalls::get_shared_data(&key).unwrap();
            let current: u64 = value
                .map(|v| String::from_utf8_lossy(&v).parse().unwrap())
                .unwrap_or(0);
            let next = (current + 1).to_string();
            match hostcalls::set_shared_data(
                &key,
                Some(next.as_bytes()),
                Some(cas.unwrap_or(INSERT_CAS)),
            ) {
                Ok(()) => {
                    info!("probe: shared incr key={key} value={next} retries={retries}");
                    return;
                }
                Err(status) => {
                    retries += 1;
                    info!(
                        "probe: shared incr retry key={key} status={} retries={retries}",
                        status_name(status)
                    );
                    assert!(
                        retries < 100,
                        "probe: shared incr gave up after {retries} retries"
                    );
                }
            }
        }
    }

    fn http_call(&mut self) -> Action {
        let cluster = self.param("cluster").unwrap_or("auth").to_string();
        let path = self.param("path").unwrap_or("/").to_string();
        let timeout_ms: u64 = self
            .param("timeout_ms")
            .and_then(|t| t.parse().ok())
            .unwrap_or(1000);
        let mut headers = vec![(":method", "GET"), (":path", path.as_str())];
        match self.param("authority") {
            Some("none") => {}
            Some("empty") => headers.push((":authority", "")),
            _ => headers.push((":authority", "probe.internal")),
        }
        match self.dispatch_http_call(
            &cluster,
            headers,
            None,
            vec![],
            Duration::from_millis(timeout_ms),
        ) {
            Ok(token) => {
                info!("probe: http_call status=OK token={token}");
                Action::Pause
            }
            Err(status) => {
                info!("probe: http_call status={}", status_name(status));
                Action::Continue
            }
        }
    }

    fn property(&mut self) {
        let name = self.param("path").unwrap_or("").to_string();
        let path = name.replace('.', "\0");
        let (status, value) = raw::get_property(path.as_bytes());
        let value = value.unwrap_or_default();
        let shown = match self.param("type") {
            Some("int") if value.len() == 8 => {
                let mut word = [0u8; 8];
                word.copy_from_slice(&value);
                format!("int:{}", i64::from_le_bytes(word))
            }
            Some("bool") if value.len() == 1 => format!("bool:{}", value[0] != 0),
            Some("pairs") => format!(
                "pairs:{}",
                value
                    .get(0..4)
                    .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            ),
            _ => render(&value),
        };
        info!(
            "probe: property {name} status={} len={} value={shown}",
            raw::status_name(status),
            value.len()
        );
    }

    fn set_property(&mut self) {
        let status = raw::set_property("probe_key", b"probe-value");
        let (get_status, value) = raw::get_property(b"probe_key");
        info!(
            "probe: set_property status={} get={} value={}",
            raw::status_name(status),
            raw::status_name(get_status),
            render(&value.unwrap_or_default())
        );
    }

    fn metrics(&mut self) {
        let counter = hostcalls::define_metric(MetricType::Counter, "probe_counter").unwrap();
        let gauge = hostcalls::define_metric(MetricType::Gauge, "probe_gauge").unwrap();
        let histogram = hostcalls::define_metric(MetricType::Histogram, "probe_histogram").unwrap();
        info!("probe: metric ids counter={counter} gauge={gauge} histogram={histogram}");
        info!(
            "probe: metric type_bits counter={} gauge={} histogram={}",
            counter & 3,
            gauge & 3,
            histogram & 3
        );
        let got = |id: u32| match hostcalls::get_metric(id) {
            Ok(value) => format!("OK value={value}"),
            Err(status) => status_name(status).to_string(),
        };
        info!(
            "probe: metric counter increment(5)={}",
            result_name(&hostcalls::increment_metric(counter, 5))
        );
        info!(
            "probe: metric counter increment(-1)={}",
            result_name(&hostcalls::increment_metric(counter, -1))
        );
        info!(
            "probe: metric counter increment(0)={}",
            result_name(&hostcalls::increment_metric(counter, 0))
        );
        info!(
            "probe: metric counter record(2)={}",
            result_name(&hostcalls::record_metric(counter, 2))
        );
        info!("probe: metric counter get={}", got(counter));
        info!(
            "probe: metric gauge increment(10)={}",
            result_name(&hostcalls::increment_metric(gauge, 10))
        );
        info!(
            "probe: metric gauge increment(-3)={}",
            result_name(&hostcalls::increment_metric(gauge, -3))
        );
        info!("probe: metric gauge get={}", got(gauge));
        info!(
            "probe: metric gauge record(42)={}",
            result_name(&hostcalls::record_metric(gauge, 42))
        );
        info!("probe: metric gauge get={}", got(gauge));
        info!(
            "probe: metric histogram record(100)={}",
            result_name(&hostcalls::record_metric(histogram, 100))
        );
        info!(
            "probe: metric histogram increment(1)={}",
            result_name(&hostcalls::increment_metric(histogram, 1))
        );
        info!("probe: metric histogram get={}", got(histogram));
        // An id with a counter's type bits that was never defined.
        info!("probe: metric unknown get={}", got(counter + 4000));
        let (status, _) = raw::define_metric(3, "probe_bad_type");
        info!("probe: metric define(type=3)={}", raw::status_name(status));
    }

    fn tick_period(&mut self) {
        let ms: u64 = self.param("ms").and_then(|m| m.parse().ok()).unwrap_or(0);
        let result = hostcalls::set_tick_period(Duration::from_millis(ms));
        info!("probe: tick period ms={ms} status={}", result_name(&result));
    }

    fn queue(&mut self) {
        let vm_id = self.param("vm_id").unwrap_or("").to_string();
        let id = hostcalls::register_shared_queue("probe_q").unwrap();
        info!("probe: queue register id={id}");
        match hostcalls::resolve_shared_queue(&vm_id, "probe_q") {
            Ok(Some(resolved)) => info!("probe: queue resolve status=OK same={}", resolved == id),
            Ok(None) => info!("probe: queue resolve status=NOT_FOUND"),
            Err(status) => info!("probe: queue resolve status={}", status_name(status)),
        }
        match hostcalls::resolve_shared_queue(&vm_id, "probe_missing_q") {
            Ok(Some(_)) => info!("probe: queue resolve_missing status=OK"),
            Ok(None) => info!("probe: queue resolve_missing status=NOT_FOUND"),
            Err(status) => info!(
                "probe: queue resolve_missing status={}",
                status_name(status)
            ),
        }
        let dequeue = |label: &str| {
            let (status, item) = raw::dequeue(id);
            info!(
                "probe: queue {label} status={} item={}",
                raw::status_name(status),
                render(&item.unwrap_or_default())
            );
        };
        dequeue("dequeue_empty");
        for item in ["first", "second"] {
            let result = hostcalls::enqueue_shared_queue(id, Some(item.as_bytes()));
            info!("probe: queue enqueue {item}={}", result_name(&result));
        }
        dequeue("dequeue_1");
        dequeue("dequeue_2");
        dequeue("dequeue_3");
        let unknown = hostcalls::enqueue_shared_queue(id + 1000, Some(b"lost"));
        info!("probe: queue enqueue_unknown={}", result_name(&unknown));
    }

    /// Map calls during on_request_headers, including maps that do not exist yet.
    fn maps(&mut self) {
        let value = |map: u32, key: &str| raw::status_name(raw::get_map_value(map, key).0);
        info!(
            "probe: maps response_value={}",
            value(RESPONSE_HEADERS, ":status")
        );
        let (status, size) = raw::get_map_size(RESPONSE_HEADERS);
        info!(
            "probe: maps response_size={} size={size}",
            raw::status_name(status)
        );
        let (status, count) = raw::get_map_pair_count(RESPONSE_HEADERS);
        info!(
            "probe: maps response_pairs={} count={count}",
            raw::status_name(status)
        );
        info!(
            "probe: maps response_add={}",
            raw::status_name(raw::add_map_value(RESPONSE_HEADERS, "x-a", b"b"))
        );
        info!(
            "probe: maps request_trailers_value={}",
            value(REQUEST_TRAILERS, "x")
        );
        info!(
            "probe: maps call_response_value={}",
            value(HTTP_CALL_RESPONSE_HEADERS, ":status")
        );
        info!("probe: maps invalid_type_value={}", value(INVALID_MAP, "x"));
        info!(
            "probe: maps request_missing_value={}",
            value(REQUEST_HEADERS, "x-missing")
        );
        info!(
            "probe: maps request_add={}",
            raw::status_name(raw::add_map_value(REQUEST_HEADERS, "X-Probe-Added", b"yes"))
        );
        let (status, added) = raw::get_map_value(REQUEST_HEADERS, "X-PROBE-ADDED");
        info!(
            "probe: maps request_mixed_case_value={} value={}",
            raw::status_name(status),
            render(&added.unwrap_or_default())
        );
    }

    /// Configuration buffers outside their own callbacks.
    fn config(&mut self) {
        for (label, buffer) in [
            ("vm_configuration", VM_CONFIGURATION),
            ("plugin_configuration", PLUGIN_CONFIGURATION),
        ] {
            let (status, data) = raw::get_buffer(buffer, 0, usize::MAX);
            info!(
                "probe: config {label}={} len={}",
                raw::status_name(status),
                data.map_or(0, |d| d.len())
            );
        }
    }

    /// Request headers read after on_request_headers continued them.
    fn late_request_headers(&mut self, phase: &str) {
        let (status, _) = raw::get_map_value(REQUEST_HEADERS, ":path");
        let (pairs_status, count) = raw::get_map_pair_count(REQUEST_HEADERS);
        info!(
            "probe: late {phase} request_value={} request_pairs={} count={count}",
            raw::status_name(status),
            raw::status_name(pairs_status)
        );
    }

    fn body(&self) -> Vec<u8> {
        raw::get_buffer(REQUEST_BODY, 0, usize::MAX)
            .1
            .unwrap_or_default()
    }

    fn edit_body(&self, label: &str, start: usize, length: usize, value: &[u8]) {
        let status = raw::set_buffer(REQUEST_BODY, start, length, value);
        info!(
            "probe: buffer {label}={} body={}",
            raw::status_name(status),
            render(&self.body())
        );
    }

    /// Each `set_buffer_bytes` edit on the request body, then `get_buffer_bytes` clamping.
    fn buffer_edits(&mut self) {
        let len = self.body().len();
        self.edit_body("prepend", 0, 0, b"<");
        self.edit_body("append", len + 1, 0, b">");
        self.edit_body("middle", 3, 2, b"x");
        let len = self.body().len();
        self.edit_body("replace_all", 0, len, b"ALL");
        for (label, start, max_size) in [("tail", 1, 1000), ("head", 0, 2), ("past_end", 100, 10)] {
            let (status, data) = raw::get_buffer(REQUEST_BODY, start, max_size);
            info!(
                "probe: buffer get_{label}={} value={}",
                raw::status_name(status),
                render(&data.unwrap_or_default())
            );
        }
    }
}

impl Context for Probe {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    ) {
        self.events.push("http_call_response");
        info!("probe: http_call_response headers={num_headers} body={body_size} trailers={num_trailers} token={token_id}");
        if num_headers > 0 {
            let status = self
                .get_http_call_response_header_bytes(":status")
                .unwrap_or_default();
            let body = self
                .get_http_call_response_body(0, body_size)
                .unwrap_or_default();
            info!(
                "probe: http_call_response status={} body_len={}",
                render(&status),
                body.len()
            );
        } else if self.param("read") == Some("always") {
            // A failed call has no response headers map; the SDK's getter would panic on
            // anything but OK and NOT_FOUND, so the status is read directly.
            let (status, _) = raw::get_map_value(HTTP_CALL_RESPONSE_HEADERS, ":status");
            info!(
                "probe: http_call_response failed_read={}",
                raw::status_name(status)
            );
        }
        self.resume_http_request();
    }

    fn on_done(&mut self) -> bool {
        self.events.push("done");
        info!("probe: done");
        true
    }
}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        self.events.push("request_headers");
        self.parse_path();
        let requests = VM_REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;
        info!("probe: request_headers count={num_headers} eos={end_of_stream}");
        info!("probe: vm_requests={requests} route={}", self.route);
        self.route_request_headers()
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.events.push("request_body");
        info!("probe: request_body size={body_size} eos={end_of_stream}");
        match self.route.as_str() {
            "/buffer" if end_of_stream => self.buffer_edits(),
            "/buffer/prefix" if end_of_stream => self.edit_body("replace_prefix", 0, 2, b"XY"),
            "/accumulate" if !end_of_stream => return Action::Pause,
            "/late" => self.late_request_headers("request_body"),
            _ => {}
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, num_trailers: usize) -> Action {
        self.events.push("request_trailers");
        info!("probe: request_trailers count={num_trailers}");
        Action::Continue
    }

    fn on_http_response_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        self.events.push("response_headers");
        info!("probe: response_headers count={num_headers} eos={end_of_stream}");
        if self.route == "/late" {
            self.late_request_headers("response_headers");
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.events.push("response_body");
        info!("probe: response_body size={body_size} eos={end_of_stream}");
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, num_trailers: usize) -> Action {
        self.events.push("response_trailers");
        info!("probe: response_trailers count={num_trailers}");
        Action::Continue
    }

    fn on_log(&mut self) {
        self.events.push("log");
        info!("probe: log");
        if self.route == "/late" {
            self.late_request_headers("log");
        }
    }
}

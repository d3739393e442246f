use super::*;
use crate::config::Config;

fn filter_from(json: &str) -> Filter {
    match Config::from_json(json.as_bytes()) {
        Ok(config) => config.filter,
        Err(error) => panic!("{error}"),
    }
}

fn filter() -> Filter {
    filter_from("{}")
}

fn request(path: &str) -> Vec<(String, Vec<u8>)> {
    [
        (":method", "GET"),
        (":path", path),
        (":authority", "example.com"),
        ("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
        ("accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
    .collect()
}

fn with_body(method: &str, content_type: &str, body: &str) -> Vec<(String, Vec<u8>)> {
    let mut headers = request("/api/items");
    headers[0].1 = method.as_bytes().to_vec();
    headers.push(("content-type".to_string(), content_type.as_bytes().to_vec()));
    headers.push((
        "content-length".to_string(),
        body.len().to_string().into_bytes(),
    ));
    headers
}

fn assess(filter: &Filter, headers: &[(String, Vec<u8>)], body: &str) -> Assessment {
    let mut assessment = filter.inspect_headers(headers);
    if !body.is_empty() {
        filter.inspect_body(&mut assessment, headers, body.as_bytes());
    }
    assessment
}

fn blocked(headers: &[(String, Vec<u8>)], body: &str) -> bool {
    let filter = filter();
    filter.verdict(&assess(&filter, headers, body)).is_some()
}

#[test]
fn ordinary_requests_pass() {
    let paths = [
        "/",
        "/search?q=select+a+plan",
        "/books?author=O%27Reilly&q=wget+vs+curl",
        "/r?next=https%3A%2F%2Fexample.com%2Fa%3Fb%3D1",
        "/contact?email=jane.doe%2Btag%40example.com",
        "/search?q=%E6%9D%B1%E4%BA%AC%E9%83%BD",
        "/search?q=don%27t+stop+me+now",
    ];
    for path in paths {
        let assessment = assess(&filter(), &request(path), "");
        assert_eq!(assessment.detections, vec![], "path {path:?}");
    }
}

#[test]
fn ordinary_bodies_pass() {
    let cases = [
        (
            "PUT",
            "application/json",
            r#"{"title":"Learning SQL: select a plan","publisher":"O'Reilly"}"#,
        ),
        (
            "PATCH",
            "application/json",
            r#"{"note":"wget vs curl","email":"a.b@example.org"}"#,
        ),
        (
            "POST",
            "application/json",
            "{\"body\":\"```js\\nconst add = (a, b) => a + b;\\n```\"}",
        ),
        (
            "POST",
            "application/x-www-form-urlencoded",
            "message=Use+%60git+rebase+-i+HEAD~3%60+to+squash",
        ),
        (
            "POST",
            "application/json",
            r#"{"text":"Ça va? Très bien, merci!"}"#,
        ),
    ];
    for (method, content_type, body) in cases {
        assert!(
            !blocked(&with_body(method, content_type, body), body),
            "{body}"
        );
    }
}

#[test]
fn attack_in_query_is_blocked_with_label() {
    let filter = filter();
    let assessment = assess(&filter, &request("/s?page=2&q=1%27%20or%201%3D1--"), "");
    assert!(filter.verdict(&assessment).is_some());
    let labels: Vec<&str> = assessment
        .detections
        .iter()
        .map(|d| d.target.as_str())
        .collect();
    assert!(labels.contains(&"query.q"), "{labels:?}");
}

#[test]
fn score_sums_distinct_rules() {
    let filter = filter();
    let assessment = assess(
        &filter,
        &request("/s?q=1%27%20union%20select%20password%20from%20users--"),
        "",
    );
    let ids = assessment.rule_ids();
    assert!(ids.len() >= 2, "{ids:?}");
    let expected: u32 = assessment
        .detections
        .iter()
        .map(|d| d.rule.severity.anomaly_points())
        .sum();
    assert_eq!(assessment.score, expected);
}

#[test]
fn query_is_not_joined() {
    let assessment = assess(&filter(), &request("/s?a=1+union&b=select+2"), "");
    assert_eq!(assessment.detections, vec![]);
}

#[test]
fn json_body_values_are_inspected() {
    let body = r#"{"user":{"bio":"<script>alert(1)</script>"}}"#;
    let filter = filter();
    let assessment = assess(&filter, &with_body("POST", "application/json", body), body);
    assert!(filter.verdict(&assessment).is_some());
    assert_eq!(
        assessment.primary().map(|d| d.target.as_str()),
        Some("json.user.bio")
    );
}

#[test]
fn multipart_file_name_is_inspected() {
    let body = "--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"shell.php\"\r\n\r\nx\r\n--B--\r\n";
    assert!(blocked(
        &with_body("POST", "multipart/form-data; boundary=B", body),
        body
    ));
}

#[test]
fn sensitive_values_are_redacted() {
    let mut headers = request("/login?password=%27%20or%201%3D1--");
    headers.push(("cookie".to_string(), b"pref=%3Cscript%3Ealert(1)".to_vec()));
    let assessment = assess(&filter(), &headers, "");
    for detection in &assessment.detections {
        if detection.target.starts_with("query.password") || detection.target.starts_with("cookie.")
        {
            assert_eq!(detection.excerpt, REDACTED);
        }
    }
    assert!(assessment
        .detections
        .iter()
        .any(|d| d.target == "cookie.pref"));
}

#[test]
fn evasions_are_decoded() {
    let paths = [
        "/files?name=..%252f..%252f..%252fetc%252fpasswd",
        "/files?name=%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afetc%c0%afpasswd",
        "/s?q=1%20UnIoN%20SeLeCt%201,2",
        "/s?q=1%20un/**/ion%20sel/**/ect%201",
        "/run?cmd=;c%27a%27t%20/et%5Cc/pa%22ss%22wd",
        "/run?cmd=;cat$IFS/etc/passwd",
    ];
    for path in paths {
        assert!(blocked(&request(path), ""), "{path}");
    }
}

#[test]
fn paranoia_level_selects_rules() {
    let level1 = filter();
    let level2 = filter_from(r#"{"filter": {"paranoia_level": 2}}"#);
    let above = level1
        .rules()
        .iter()
        .filter(|rule| rule.paranoia > 1)
        .count();
    assert!(above > 0);
    let path = "/s?x=http://2852039166/";
    let count = |filter: &Filter| assess(filter, &request(path), "").detections.len();
    assert!(count(&level2) >= count(&level1));
}

#[test]
fn threshold_and_monitor_mode() {
    let lenient = filter_from(r#"{"filter": {"anomaly_threshold": 1000}}"#);
    let assessment = assess(
        &lenient,
        &request("/s?q=%3Cscript%3Ealert(1)%3C/script%3E"),
        "",
    );
    assert!(assessment.score > 0);
    assert_eq!(lenient.verdict(&assessment), None);
    let monitor = filter_from(r#"{"filter": {"mode": "monitor"}}"#);
    let assessment = assess(
        &monitor,
        &request("/s?q=%3Cscript%3Ealert(1)%3C/script%3E"),
        "",
    );
    assert_eq!(monitor.verdict(&assessment), Some(Verdict::Flag));
}

#[test]
fn exclusion_by_rule_target_and_path() {
    let path = "/cms/save?html=%3Cscript%3Ealert(1)%3C/script%3E";
    let excluded = filter_from(
        r#"{"filter": {"exclusions": [{"rules": ["xss-*"], "targets": ["query.html"], "paths": ["/cms/*"]}]}}"#,
    );
    let ids = assess(&excluded, &request(path), "").rule_ids();
    assert!(ids.iter().all(|id| !id.starts_with("xss-")), "{ids:?}");
    let other_path = assess(&excluded, &request("/blog/save?html=%3Cscript%3E"), "").rule_ids();
    assert!(
        other_path.iter().any(|id| id.starts_with("xss-")),
        "{other_path:?}"
    );
}

#[test]
fn custom_rule_matches() {
    let filter = filter_from(
        r#"{"filter": {"rules": [{"id": "custom-internal", "targets": ["path"], "transforms": ["url_decode", "lowercase"], "regex": "^/internal/"}]}}"#,
    );
    let assessment = assess(&filter, &request("/%49nternal/admin"), "");
    assert_eq!(assessment.rule_ids(), vec!["custom-internal"]);
    assert!(filter.verdict(&assessment).is_some());
}

#[test]
fn invalid_settings_are_rejected() {
    let cases = [
        (
            r#"{"filter": {"paranoia_level": 5}}"#,
            "filter.paranoia_level: ",
        ),
        (
            r#"{"filter": {"anomaly_threshold": 0}}"#,
            "filter.anomaly_threshold: ",
        ),
        (
            r#"{"filter": {"rules": [{"id": "x", "targets": ["path"], "regex": "("}]}}"#,
            "filter.rules[0].regex: ",
        ),
        (
            r#"{"filter": {"rules": [{"id": "x", "targets": ["path"]}]}}"#,
            "filter.rules[0]: ",
        ),
        (
            r#"{"filter": {"rules": [{"id": "sqli-union-select", "targets": ["path"], "regex": "a"}]}}"#,
            "filter.rules: ",
        ),
    ];
    for (json, expected) in cases {
        let message = match Config::from_json(json.as_bytes()) {
            Ok(_) => panic!("{json} was accepted"),
            Err(error) => error.to_string(),
        };
        assert!(message.starts_with(expected), "{json}: {message}");
    }
}

#[test]
fn request_limits() {
    let mut headers = request("/");
    headers[0].1 = b"TRACE".to_vec();
    assert!(assess(&filter(), &headers, "")
        .rule_ids()
        .contains(&"protocol-method-not-allowed"));
    let long = format!("/{}", "a".repeat(5000));
    assert!(assess(&filter(), &request(&long), "")
        .rule_ids()
        .contains(&"limit-uri-length"));
    let mut smuggled = with_body("POST", "application/json", "{}");
    smuggled.push(("transfer-encoding".to_string(), b"chunked".to_vec()));
    assert!(assess(&filter(), &smuggled, "")
        .rule_ids()
        .contains(&"protocol-smuggling-cl-te"));
}

#[test]
fn non_utf8_values_do_not_panic() {
    let mut headers = request("/\u{0}");
    headers[1].1 = b"/\xff\xfe?\xc3=\x80%".to_vec();
    headers.push(("x-binary".to_string(), b"\x00\xff<script\xff>".to_vec()));
    assert!(blocked(&headers, ""));
}

/// Times every rule over a value of `size` bytes that passes all prefilters.
fn time_rules(filter: &Filter, size: usize) -> std::time::Duration {
    let unit = "select 'a' from x where a=1 or <script> ${jndi ../etc; cat /bin/ ";
    let value: String = unit
        .repeat(size / unit.len() + 1)
        .chars()
        .take(size)
        .collect();
    let target = Target {
        kind: crate::rules::TargetKind::ArgValue,
        name: "q".to_string(),
        label: "query.q".to_string(),
        value: value.into_bytes(),
        sensitive: false,
    };
    let started = std::time::Instant::now();
    let texts: Vec<String> = filter
        .chains
        .iter()
        .map(|chain| to_text(&apply(chain, &target.value)))
        .collect();
    for rule in filter.rules() {
        let _ = rule.find(&texts[rule.chain]);
    }
    started.elapsed()
}

#[test]
fn rules_run_in_linear_time() {
    let filter = filter_from(r#"{"filter": {"paranoia_level": 4}}"#);
    let small = (0..2)
        .map(|_| time_rules(&filter, 64 * 1024))
        .min()
        .unwrap_or_default();
    let large = time_rules(&filter, 1024 * 1024);
    // 16 times the input; linear time gives a ratio near 16, so 64 leaves
    // room for noise while catching quadratic behavior (a ratio near 256).
    let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-9);
    assert!(
        ratio < 64.0,
        "1 MiB took {large:?}, 64 KiB took {small:?}, ratio {ratio:.1}"
    );
}

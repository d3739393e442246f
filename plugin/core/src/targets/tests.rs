use super::*;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect()
}

fn labels(targets: &[Target]) -> Vec<(TargetKind, String, String)> {
    targets
        .iter()
        .map(|t| {
            (
                t.kind,
                t.label.to_string(),
                String::from_utf8_lossy(&t.value).into_owned(),
            )
        })
        .collect()
}

#[test]
fn query_arguments_are_separate() {
    let headers = pairs(&[(":method", "GET"), (":path", "/s?a=1+union&b=select%202")]);
    let targets = labels(&header_targets(&headers));
    assert!(targets.contains(&(TargetKind::ArgValue, "query.a".into(), "1 union".into())));
    assert!(targets.contains(&(TargetKind::ArgValue, "query.b".into(), "select 2".into())));
    assert!(targets.contains(&(TargetKind::Path, "path".into(), "/s".into())));
    assert!(targets.contains(&(TargetKind::Method, "method".into(), "GET".into())));
}

#[test]
fn headers_and_cookies_are_separate() {
    let headers = pairs(&[("referer", "x"), ("cookie", "a=1; b=%3Cx")]);
    let targets = header_targets(&headers);
    let found = labels(&targets);
    assert!(found.contains(&(
        TargetKind::HeaderName,
        "header_name".into(),
        "referer".into()
    )));
    assert!(found.contains(&(TargetKind::HeaderValue, "header.referer".into(), "x".into())));
    assert!(found.contains(&(TargetKind::CookieValue, "cookie.b".into(), "<x".into())));
    assert!(targets
        .iter()
        .filter(|t| t.kind == TargetKind::CookieValue)
        .all(|t| t.sensitive));
}

#[test]
fn json_values_carry_key_paths() {
    let body = br#"{"user":{"name":"x","tags":["a","b"]},"n":1}"#;
    let targets = labels(&body_targets(body, Some(b"application/json"), &[]));
    assert!(targets.contains(&(TargetKind::ArgValue, "json.user.name".into(), "x".into())));
    assert!(targets.contains(&(TargetKind::ArgValue, "json.user.tags[1]".into(), "b".into())));
    assert!(targets.contains(&(TargetKind::ArgName, "json_name".into(), "tags".into())));
    assert!(!targets.iter().any(|(_, label, _)| label == "json.n"));
}

#[test]
fn invalid_json_is_raw_body() {
    let targets = labels(&body_targets(b"{not json", Some(b"application/json"), &[]));
    assert_eq!(
        targets,
        vec![(TargetKind::Body, "body".into(), "{not json".into())]
    );
}

#[test]
fn form_shaped_bodies_add_fields() {
    for content_type in [
        &b"application/json"[..],
        b"text/plain",
        b"application/octet-stream",
    ] {
        let targets = labels(&body_targets(
            b"q=1%27+or+1%3D1&x=2\n",
            Some(content_type),
            &[],
        ));
        assert!(
            targets.contains(&(TargetKind::ArgValue, "form.q".into(), "1' or 1=1".into())),
            "{targets:?}"
        );
        assert!(targets.contains(&(TargetKind::ArgName, "form_name".into(), "x".into())));
    }
}

#[test]
fn non_form_bodies_stay_raw() {
    for body in [
        &b"a = b && c"[..],
        b"see https://example.com/?a=1&b=2 for details",
        b"{\"q\":1",
        b"x=1&&y<2",
        b"x=1&y z=2",
        b"just text",
        b"=value",
    ] {
        let targets = labels(&body_targets(body, Some(b"text/plain"), &[]));
        assert!(
            targets
                .iter()
                .all(|(kind, _, _)| *kind != TargetKind::ArgValue),
            "{:?}: {targets:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn form_fields_are_decoded() {
    let targets = labels(&body_targets(
        b"c=%3Cb%3E+x",
        Some(b"application/x-www-form-urlencoded"),
        &[],
    ));
    assert!(targets.contains(&(TargetKind::ArgValue, "form.c".into(), "<b> x".into())));
}

#[test]
fn multipart_parts_and_file_names() {
    let body = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.php\"\r\nContent-Type: text/plain\r\n\r\n<?php\r\n--XX--\r\n";
    let Some(boundary) = multipart_boundary(b"multipart/form-data; boundary=\"XX\"") else {
        panic!("no boundary");
    };
    let Some(parts) = parse_multipart(body, &boundary) else {
        panic!("not parsed");
    };
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[1].filename.as_deref(), Some(&b"x.php"[..]));
    let targets = labels(&body_targets(
        body,
        Some(b"multipart/form-data; boundary=XX"),
        &parts,
    ));
    assert!(targets.contains(&(TargetKind::ArgValue, "multipart.a".into(), "hello".into())));
    assert!(targets.contains(&(
        TargetKind::FileName,
        "multipart_file.f".into(),
        "x.php".into()
    )));
    assert!(targets.contains(&(
        TargetKind::Body,
        "multipart_content.f".into(),
        "<?php".into()
    )));
}

/// Times `parse_multipart` on a body of `size` bytes in which the boundary
/// occurs in mid-line every four bytes, with no line end anywhere.
fn time_mid_line_delimiters(size: usize) -> std::time::Duration {
    let mut body = b"a".to_vec();
    while body.len() < size {
        body.extend_from_slice(b"--bx");
    }
    (0..3)
        .map(|_| {
            let started = std::time::Instant::now();
            assert_eq!(parse_multipart(&body, b"b"), None);
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
}

#[test]
fn mid_line_delimiters_scale_linearly() {
    let one = time_mid_line_delimiters(512 * 1024);
    let two = time_mid_line_delimiters(1024 * 1024);
    // Linear time gives a ratio near 2, quadratic time one near 4.
    let ratio = two.as_secs_f64() / one.as_secs_f64().max(1e-9);
    assert!(
        ratio < 3.2,
        "1 MiB took {two:?}, 512 KiB took {one:?}, ratio {ratio:.2}"
    );
}

#[test]
fn multipart_without_delimiter_fails() {
    assert_eq!(parse_multipart(b"no parts here", b"XX"), None);
}

#[test]
fn xml_attributes_and_text() {
    let body = br#"<?xml version="1.0"?><root><a probe="&lt;x&gt;">text here</a></root>"#;
    let targets = labels(&body_targets(body, Some(b"application/xml"), &[]));
    assert!(targets.contains(&(
        TargetKind::ArgValue,
        "xml.@probe".into(),
        "&lt;x&gt;".into()
    )));
    assert!(targets.contains(&(TargetKind::ArgValue, "xml.a".into(), "text here".into())));
}

#[test]
fn sensitive_names() {
    assert!(is_sensitive_name(b"X-Api-Key"));
    assert!(is_sensitive_name(b"password"));
    assert!(!is_sensitive_name(b"q"));
    for name in [
        "X-Auth-User",
        "set_cookie_id",
        "aws_credentials",
        "x-csrf",
        "myJWT",
        "apikey",
        "OTP",
        "user_pass",
        "pwd",
        "client_secret",
        "sessionid",
        "Signature",
        "refresh-token",
        "X-XSRF-TOKEN",
        "CODE",
        "cvc",
        "cvv",
        "pin",
        "pw",
        "sid",
        "sig",
        "ssn",
    ] {
        assert!(is_sensitive_name(name.as_bytes()), "{name}");
    }
    for name in [
        "zipcode",
        "shipping",
        "pwn",
        "sidebar",
        "signal",
        "page",
        "",
        "user-agent",
    ] {
        assert!(!is_sensitive_name(name.as_bytes()), "{name}");
    }
    assert!(SENSITIVE_NAMES
        .iter()
        .all(|name| name.len() <= MAX_SENSITIVE_NAME_BYTES));
}

fn nested_json(depth: usize, value: &str) -> String {
    format!(
        r#"{{"q":{}"{value}"{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

fn json_values(body: &[u8]) -> Vec<String> {
    body_targets(body, Some(b"application/json"), &[])
        .iter()
        .filter(|target| target.kind == TargetKind::ArgValue)
        .map(|target| String::from_utf8_lossy(&target.value).into_owned())
        .collect()
}

#[test]
fn deep_json_values_are_scanned() {
    for depth in [40, 200, 5000] {
        let body = nested_json(depth, "deep");
        let targets = body_targets(body.as_bytes(), Some(b"application/json"), &[]);
        let value = targets
            .iter()
            .find(|target| target.kind == TargetKind::ArgValue);
        assert_eq!(
            value.map(|target| target.value.as_slice()),
            Some(&b"deep"[..]),
            "depth {depth}"
        );
        assert_eq!(value.map(|target| target.name.as_str()), Some("q"));
        assert!(value.is_some_and(|target| target.label.len() < 300));
    }
}

#[test]
fn json_depth_counts_brackets_outside_strings() {
    assert_eq!(json_depth(br#"{"a":[{"b":"[[[{{{"}]}"#), 3);
    assert_eq!(json_depth(nested_json(40, "x").as_bytes()), 41);
    assert_eq!(json_depth(br#""plain""#), 0);
}

#[test]
fn json_with_byte_order_mark_is_parsed() {
    let targets = labels(&body_targets(
        b"\xef\xbb\xbf{\"q\":\"x\"}",
        Some(b"application/json"),
        &[],
    ));
    assert_eq!(
        targets,
        vec![
            (TargetKind::ArgName, "json_name".into(), "q".into()),
            (TargetKind::ArgValue, "json.q".into(), "x".into()),
        ]
    );
}

#[test]
fn json_lone_surrogate_is_replaced() {
    let body = br#"{"x":"\ud800","q":"after"}"#;
    let targets = labels(&body_targets(body, Some(b"application/json"), &[]));
    assert!(targets.contains(&(TargetKind::ArgValue, "json.x".into(), "\u{fffd}".into())));
    assert!(targets.contains(&(TargetKind::ArgValue, "json.q".into(), "after".into())));
}

#[test]
fn json_escapes_are_decoded() {
    let values = json_values(br#"{"a":"caf\u00e9 \ud83d\ude00","b":"x\"y\\z\/\n","c":"\q"}"#);
    assert_eq!(values, vec!["café 😀", "x\"y\\z/\n", "\\q"]);
}

#[test]
fn json_duplicate_members_are_all_kept() {
    let values = json_values(br#"{"q":"first","q":"second"}"#);
    assert_eq!(values, vec!["first", "second"]);
}

#[test]
fn valid_json_has_no_raw_body() {
    let targets = body_targets(
        br#"{"a":[1,true,null,"x"]}"#,
        Some(b"application/json"),
        &[],
    );
    assert!(!targets.iter().any(|target| target.kind == TargetKind::Body));
    assert!(labels(&targets).contains(&(TargetKind::ArgValue, "json.a[3]".into(), "x".into())));
}

#[test]
fn xml_cdata_is_text() {
    let body = b"<a><q><![CDATA[1' <b>x</b>]]></q></a>";
    let targets = labels(&body_targets(body, Some(b"application/xml"), &[]));
    assert!(targets.contains(&(TargetKind::ArgValue, "xml.q".into(), "1' <b>x</b>".into())));
}

#[test]
fn xml_comment_joins_text() {
    let body = b"<a><q>UNI<!-- x -->ON <!-- <b> -->all</q><?pi x?></a>";
    let targets = labels(&body_targets(body, Some(b"application/xml"), &[]));
    assert!(targets.contains(&(TargetKind::ArgValue, "xml.q".into(), "UNION all".into())));
    assert_eq!(targets.len(), 1);
}

#[test]
fn xml_doctype_with_internal_subset_is_one_target() {
    let body = br#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "x>y"> <!ENTITY b SYSTEM "file:///etc/hosts"> ] ><r>&b;</r>"#;
    let targets = labels(&body_targets(body, Some(b"application/xml"), &[]));
    assert!(targets.contains(&(
        TargetKind::Body,
        "xml.doctype".into(),
        r#"<!DOCTYPE r [<!ENTITY a "x>y"> <!ENTITY b SYSTEM "file:///etc/hosts"> ] >"#.into()
    )));
    assert!(targets.contains(&(TargetKind::ArgValue, "xml.r".into(), "&b;".into())));
}

#[test]
fn xml_doctype_without_subset_or_end() {
    let external = br#"<!doctype html SYSTEM "http://x/a.dtd"><p>hi</p>"#;
    let targets = labels(&body_targets(external, Some(b"text/xml"), &[]));
    assert!(targets.contains(&(
        TargetKind::Body,
        "xml.doctype".into(),
        r#"<!doctype html SYSTEM "http://x/a.dtd">"#.into()
    )));
    assert!(targets.contains(&(TargetKind::ArgValue, "xml.p".into(), "hi".into())));
    // An unclosed declaration runs to the end of the body.
    let unclosed = b"<!DOCTYPE r [<!ENTITY a SYSTEM 'x'>";
    let targets = labels(&body_targets(unclosed, Some(b"application/xml"), &[]));
    assert_eq!(
        targets,
        vec![(
            TargetKind::Body,
            "xml.doctype".into(),
            "<!DOCTYPE r [<!ENTITY a SYSTEM 'x'>".into()
        )]
    );
}

#[test]
fn multipart_empty_file_name_is_a_field() {
    let body = b"--XX\r\nContent-Disposition: form-data; name=\"q\"; filename=\"\"\r\n\r\n1' or '1'='1\r\n--XX--\r\n";
    let Some(parts) = parse_multipart(body, b"XX") else {
        panic!("not parsed");
    };
    let targets = labels(&body_targets(
        body,
        Some(b"multipart/form-data; boundary=XX"),
        &parts,
    ));
    assert!(targets.contains(&(
        TargetKind::ArgValue,
        "multipart.q".into(),
        "1' or '1'='1".into()
    )));
    assert!(!targets.iter().any(|(kind, _, _)| *kind == TargetKind::Body));
}

#[test]
fn label_names_are_printable_and_short() {
    assert_eq!(label_name(b"user-agent"), "user-agent");
    assert_eq!(label_name(b"a\x01b\x7fc"), "a?b?c");
    assert_eq!(label_name(b"caf\xc3\xa9"), "café");
    assert_eq!(label_name(b"bad\xff"), "bad\u{fffd}");
    assert_eq!(label_name(&[b'n'; 70]), "n".repeat(MAX_TARGET_NAME_CHARS));
    assert_eq!(
        label_name(&"é".repeat(70).into_bytes()),
        "é".repeat(MAX_TARGET_NAME_CHARS)
    );
    assert_eq!(label("header", b"x\nid"), "header.x?id");
    assert_eq!(label("query", b""), "query.");
}

#[test]
fn graphql_string_literals() {
    let body = br#"mutation { ping(host: "8.8.8.8; id", note: "say \"hi\"") # c: "x"
  comment(body: """<b>x</b>""") }"#;
    let targets = labels(&body_targets(body, Some(b"application/graphql"), &[]));
    assert!(targets.contains(&(
        TargetKind::ArgValue,
        "graphql.host".into(),
        "8.8.8.8; id".into()
    )));
    assert!(targets.contains(&(
        TargetKind::ArgValue,
        "graphql.note".into(),
        "say \"hi\"".into()
    )));
    assert!(targets.contains(&(
        TargetKind::ArgValue,
        "graphql.body".into(),
        "<b>x</b>".into()
    )));
    assert_eq!(
        targets
            .iter()
            .filter(|(kind, _, _)| *kind == TargetKind::ArgValue)
            .count(),
        3
    );
}

#[test]
fn long_json_name_stored_once() {
    // A name of 60,000 bytes over 20,000 values, and over 20,000 nested
    // arrays: names carried by the values are cut, so the targets grow with
    // the body (a name and a label of bounded length per value) rather than
    // with the name's length times the count.
    let name = "k".repeat(60_000);
    let values = vec!["\"\""; 20_000].join(",");
    let nested = "[".repeat(20_000);
    for body in [
        format!("{{\"{name}\":[{values}]}}"),
        format!("{{\"{name}\":{nested}\"x\""),
    ] {
        let targets = body_targets(body.as_bytes(), Some(b"application/json"), &[]);
        let stored_bytes: usize = targets
            .iter()
            .map(|target| target.name.len() + target.label.len() + target.value.len())
            .sum();
        assert!(
            stored_bytes < 64 * body.len(),
            "{stored_bytes} bytes for a body of {}",
            body.len()
        );
        assert!(targets
            .iter()
            .any(|target| target.kind == TargetKind::ArgName && target.value.len() == 60_000));
    }
}

#[test]
fn xml_entity_expansion_is_bounded_per_document() {
    // One entity of 32 KB referenced 3,600 times from attributes and text.
    let value = "x".repeat(32_000);
    let references = "<a v=\"&e;\">&e;</a>".repeat(1_800);
    let body = format!("<!DOCTYPE r [<!ENTITY e \"{value}\">]><r>{references}</r>");
    let targets = body_targets(body.as_bytes(), Some(b"application/xml"), &[]);
    let stored_bytes: usize = targets.iter().map(|target| target.value.len()).sum();
    assert!(
        stored_bytes < 2 * body.len() + 65_536,
        "{stored_bytes} bytes for a body of {}",
        body.len()
    );
}

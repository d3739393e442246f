//! `host-test replay` on a small labelled corpus through the built module
//! (`make build`): attacks that the default rules block count as blocked,
//! ordinary requests do not, and each line lands in its category's row.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use host_test::replay::tally;

const CORPUS: &str = r#"
{"id":"a1","method":"GET","uri":"/s?q=1%27%20or%20%271%27%3D%271","headers":[["Host","example.com"]],"label":"attack","category":"sqli"}
{"id":"a2","method":"POST","uri":"/c","headers":[["Host","example.com"],["Content-Type","application/x-www-form-urlencoded"]],"body":"c=%3Cscript%3Ealert(1)%3C%2Fscript%3E","label":"attack","category":"xss"}
{"id":"a3","method":"GET","uri":"/s?q=hello","headers":[["Host","example.com"]],"label":"attack","category":"sqli","crs_pl":4}
{"id":"b1","method":"GET","uri":"/search?q=select+a+plan","headers":[["Host","example.com"]],"label":"benign","category":"benign-search"}
{"id":"b2","method":"PUT","uri":"/api/items/1","headers":[["Host","example.com"],["Content-Type","application/json"]],"body":"{\"title\":\"O'Reilly\"}","label":"benign","category":"benign-json-api"}
"#;

#[test]
fn replay_counts_blocks_per_category() {
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/portcullis.wasm");
    assert!(
        plugin.exists(),
        "{} is missing: run `make build`",
        plugin.display()
    );
    let result = tally(&plugin, "{}", CORPUS).unwrap();
    assert_eq!(result.row("sqli"), Some((1, 1)));
    assert_eq!(result.row("xss"), Some((1, 1)));
    assert_eq!(
        result.row("CRS tests for PL3 and PL4 (apart)"),
        Some((1, 0))
    );
    assert_eq!(result.row("benign-search"), Some((1, 0)));
    assert_eq!(result.row("benign-json-api"), Some((1, 0)));
}

#[test]
fn replay_rejects_a_malformed_line() {
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/portcullis.wasm");
    let error = tally(&plugin, "{}", "{\"id\": 1}\n").err().unwrap();
    assert!(
        format!("{error:#}").contains("invalid corpus line 1"),
        "{error:#}"
    );
}

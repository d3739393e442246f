//! The whole request filter over requests built from fuzz bytes (see the
//! crate documentation for the text form): headers, then the body parsed by
//! its content type (JSON, form, multipart, XML, or anything else), under
//! the default configuration and under paranoia level 4.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::config::Config;
use portcullis_core::filter::Filter;
use portcullis_fuzz::{parse_message, request_headers};
use std::sync::OnceLock;

fn filters() -> &'static [Filter] {
    static FILTERS: OnceLock<Vec<Filter>> = OnceLock::new();
    FILTERS.get_or_init(|| {
        [
            "{}",
            r#"{"filter": {"mode": "monitor", "paranoia_level": 4, "anomaly_threshold": 1}}"#,
        ]
        .iter()
        .map(|document| match Config::from_json(document.as_bytes()) {
            Ok(config) => config.filter,
            Err(error) => panic!("fuzz target configuration {document} is invalid: {error}"),
        })
        .collect()
    })
}

// The configurations are compiled before the first input, so that their
// cost does not count against the time limit of one input.
fuzz_target!(init: { filters(); }, |data: &[u8]| {
    let message = parse_message(data);
    let headers = request_headers(&message);
    for filter in filters() {
        let mut assessment = filter.inspect_headers(&headers);
        filter.inspect_body(&mut assessment, &headers, message.rest);
        let _ = filter.verdict(&assessment);
    }
});

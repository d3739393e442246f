//! Arbitrary bytes as the whole plugin configuration document.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::config::Config;

fuzz_target!(|data: &[u8]| {
    // A rejected document is a valid outcome. Only a panic, a hang or memory
    // growth fails the target.
    let _ = Config::from_json(data);
});

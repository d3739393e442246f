//! `Bucket::decode` over arbitrary bytes: shared data written by another
//! module version, or damaged, must read as some bucket without a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::limits::entry::{Bucket, WAYS};

fuzz_target!(|data: &[u8]| {
    let bucket = Bucket::decode(data);
    assert!(bucket.entries.len() <= WAYS, "{} entries", bucket.entries.len());
    // A decoded bucket encodes back to bytes that decode to the same bucket.
    let encoded = bucket.encode();
    assert_eq!(Bucket::decode(&encoded), bucket);
});

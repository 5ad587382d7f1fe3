//! Arbitrary bytes as a bearer token, and as a Basic payload.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::send("authorization", &[b"Bearer ".as_slice(), data].concat());
    common::send("authorization", &[b"Basic ".as_slice(), data].concat());
});

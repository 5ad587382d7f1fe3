//! Arbitrary `Authorization` header bytes through Basic, bearer and session auth.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::send("authorization", data);
});

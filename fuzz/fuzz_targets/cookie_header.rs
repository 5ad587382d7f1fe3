//! Arbitrary `Cookie` header bytes, raw and behind the session cookie name.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::send("cookie", data);
    common::send("cookie", &[b"__Host-session=".as_slice(), data].concat());
});

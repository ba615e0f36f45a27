#![no_main]

#[path = "../bodies/sigv4_authorization.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));

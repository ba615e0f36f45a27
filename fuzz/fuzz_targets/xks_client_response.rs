#![no_main]

#[path = "../bodies/xks_client_response.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));

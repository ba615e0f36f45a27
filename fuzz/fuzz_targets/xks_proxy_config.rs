#![no_main]

#[path = "../bodies/xks_proxy_config.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));

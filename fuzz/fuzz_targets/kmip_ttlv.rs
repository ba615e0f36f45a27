#![no_main]

#[path = "../bodies/kmip_ttlv.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));

//! Replays the seed corpora (and every input that once crashed) of this
//! crate's fuzz targets on stable: `fuzz/corpus/<target>/*` through the
//! same body `cargo +nightly fuzz run <target>` uses (docs/testing.md).

#[path = "../../../fuzz/bodies/replay.rs"]
mod replay;

#[path = "../../../fuzz/bodies/xks_proxy_config.rs"]
mod xks_proxy_config;

#[path = "../../../fuzz/bodies/xks_proxy_request.rs"]
mod xks_proxy_request;

#[test]
fn xks_proxy_config() {
    let n = replay::replay("xks_proxy_config", xks_proxy_config::run);
    eprintln!("xks_proxy_config: {n} inputs");
}

#[test]
fn xks_proxy_request() {
    let n = replay::replay("xks_proxy_request", xks_proxy_request::run);
    eprintln!("xks_proxy_request: {n} inputs");
}

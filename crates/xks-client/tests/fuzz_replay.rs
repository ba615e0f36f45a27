//! Replays the seed corpora (and every input that once crashed) of this
//! crate's fuzz targets on stable: `fuzz/corpus/<target>/*` through the
//! same body `cargo +nightly fuzz run <target>` uses (docs/testing.md).

#[path = "../../../fuzz/bodies/replay.rs"]
mod replay;

#[path = "../../../fuzz/bodies/xks_client_response.rs"]
mod xks_client_response;

#[test]
fn xks_client_response() {
    let n = replay::replay("xks_client_response", xks_client_response::run);
    eprintln!("xks_client_response: {n} inputs");
}

//! Replays the seed corpora (and every input that once crashed) of this
//! crate's fuzz targets on stable: `fuzz/corpus/<target>/*` through the
//! same body `cargo +nightly fuzz run <target>` uses (docs/testing.md).

#[path = "../../../fuzz/bodies/replay.rs"]
mod replay;

#[path = "../../../fuzz/bodies/sigv4_authorization.rs"]
mod sigv4_authorization;

#[test]
fn sigv4_authorization() {
    let n = replay::replay("sigv4_authorization", sigv4_authorization::run);
    eprintln!("sigv4_authorization: {n} inputs");
}

//! Replays the seed corpora (and every input that once crashed) of this
//! crate's fuzz targets on stable: `fuzz/corpus/<target>/*` through the
//! same body `cargo +nightly fuzz run <target>` uses (docs/testing.md).

#[path = "../../../fuzz/bodies/replay.rs"]
mod replay;

#[path = "../../../fuzz/bodies/kms_request.rs"]
mod kms_request;

#[path = "../../../fuzz/bodies/kms_ciphertext.rs"]
mod kms_ciphertext;

#[path = "../../../fuzz/bodies/kms_config.rs"]
mod kms_config;

#[test]
fn kms_request() {
    let n = replay::replay("kms_request", kms_request::run);
    eprintln!("kms_request: {n} inputs");
}

#[test]
fn kms_ciphertext() {
    let n = replay::replay("kms_ciphertext", kms_ciphertext::run);
    eprintln!("kms_ciphertext: {n} inputs");
}

#[test]
fn kms_config() {
    let n = replay::replay("kms_config", kms_config::run);
    eprintln!("kms_config: {n} inputs");
}

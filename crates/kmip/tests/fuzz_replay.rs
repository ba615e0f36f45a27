//! Replays the seed corpora (and every input that once crashed) of this
//! crate's fuzz targets on stable: `fuzz/corpus/<target>/*` through the
//! same body `cargo +nightly fuzz run <target>` uses (docs/testing.md).

#[path = "../../../fuzz/bodies/replay.rs"]
mod replay;

#[path = "../../../fuzz/bodies/kmip_ttlv.rs"]
mod kmip_ttlv;

#[test]
fn kmip_ttlv() {
    let n = replay::replay("kmip_ttlv", kmip_ttlv::run);
    eprintln!("kmip_ttlv: {n} inputs");
}

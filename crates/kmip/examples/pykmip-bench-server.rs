//! Runs a PyKMIP server (the test harness) with the keys the KMIP
//! benchmark needs, prints where it is, and stops it on SIGTERM/SIGINT.
//! Used by bench/xks-proxy-kmip-load.sh:
//!
//!   cargo run --release -p kmip --features testing --example pykmip-bench-server
//!
//! Output: `KMIP_ADDRESS=...`, `KMIP_CA=...`, `KMIP_CERT=...`, `KMIP_KEY=...`
//! lines, then `READY`.

use kmip::spec::usage;
use kmip::testing::PyKmip;
use tokio::signal::unix::{signal, SignalKind};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let server = PyKmip::start();
    let c = server.client();
    for name in ["bench-key", "xks-health"] {
        let uid = c
            .create_aes_key(name, 256, usage::ENCRYPT | usage::DECRYPT)
            .await
            .expect("create key");
        c.activate(&uid).await.expect("activate key");
    }
    let (ca, cert, key) = server.pem_files();
    println!("KMIP_ADDRESS={}", server.address());
    println!("KMIP_CA={}", ca.display());
    println!("KMIP_CERT={}", cert.display());
    println!("KMIP_KEY={}", key.display());
    println!("READY");
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    drop(server);
}

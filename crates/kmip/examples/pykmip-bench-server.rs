//! Runs a PyKMIP server (the test harness) with the keys the KMIP
//! benchmark needs, prints where it is, and stops it on SIGTERM/SIGINT.
//! Used by bench/xks-proxy-kmip-load.sh:
//!
//!   cargo run --release -p kmip --features testing --example pykmip-bench-server
//!
//! Output: `KMIP_ADDRESS=...`, `KMIP_CA=...`, `KMIP_CERT=...`, `KMIP_KEY=...`
//! lines, then `READY`.
//!
//! With `--direct SECONDS CONCURRENCY` it instead measures the server alone
//! through our client (AES-GCM Encrypt of 32 bytes with AAD, closed loop)
//! and prints requests/s and latency percentiles, to tell the key manager's
//! share from the proxy's.

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
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--direct") {
        let secs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
        let conc: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1);
        direct(&server, secs, conc).await;
        return;
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

async fn direct(server: &PyKmip, secs: u64, concurrency: usize) {
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let mut settings = server.settings();
    settings.pool_size = concurrency;
    settings.request_timeout = Duration::from_secs(30);
    let c = Arc::new(kmip::Client::new(settings).expect("client"));
    let uid = c
        .locate_by_name("bench-key")
        .await
        .expect("locate")
        .remove(0);
    // Warm-up: negotiation and connections.
    for _ in 0..concurrency {
        c.encrypt_gcm(&uid, &[0; 32], &[1; 12], b"aad")
            .await
            .expect("encrypt");
    }
    let end = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (c, uid) = (Arc::clone(&c), uid.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < end {
                let t = Instant::now();
                c.encrypt_gcm(&uid, &[0; 32], &[1; 12], b"aad")
                    .await
                    .expect("encrypt");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("task"));
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "PyKMIP direct, Encrypt 32 B + AAD, concurrency {concurrency}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        lat.len() as f64 / secs as f64,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
}

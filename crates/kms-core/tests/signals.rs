//! The real binary under signals: SIGTERM under load stops accepting,
//! finishes what it accepted and flushes the audit log (every answered
//! request is audited and nothing audited went unanswered), then exits 0.

mod common;

use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::primitives::Blob;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An SDK client that never retries: an answer lost in a shutdown must
/// show as an error, not be hidden by a second attempt.
fn no_retry_client(port: u16) -> aws_sdk_kms::Client {
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let base = common::client(addr, "111122223333", "x", "us-east-1");
    let conf = base
        .config()
        .to_builder()
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_cuts_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let (data, audit) = (dir.path().join("data"), dir.path().join("audit.log"));
    let (mut child, port) = common::spawn_binary(
        &[
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--audit-log".as_ref(),
            audit.as_os_str(),
        ],
        &[],
    );
    let c = no_retry_client(port);
    let key = c.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let ok = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (c, key_id, ok) = (no_retry_client(port), key_id.clone(), Arc::clone(&ok));
            tokio::spawn(async move {
                // Until kms-core stops answering.
                loop {
                    let r = c
                        .encrypt()
                        .key_id(&key_id)
                        .plaintext(Blob::new(b"load".to_vec()))
                        .send()
                        .await;
                    if r.is_err() {
                        break;
                    }
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for _ in 0..500 {
        if ok.load(Ordering::Relaxed) >= 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(20), t)
            .await
            .expect("a client hung after SIGTERM")
            .unwrap();
    }
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "kms-core exited with {status}");
    let answered = ok.load(Ordering::Relaxed);
    assert!(answered >= 200, "{answered}");
    let text = std::fs::read_to_string(&audit).unwrap();
    let encrypts = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["eventName"] == "Encrypt")
        .inspect(|r| assert!(r.get("errorCode").is_none(), "{r}"))
        .count();
    assert_eq!(encrypts, answered, "audit records vs answered requests");
}

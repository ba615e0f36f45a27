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

const AK_1: &str = "AKIASIGNALTEST000001";
const AK_2: &str = "AKIASIGNALTEST000002";
const SECRET: &str = "signal-test-secret-signal-test-secret-xyz";

fn credentials(keys: &[&str]) -> String {
    keys.iter()
        .map(|ak| {
            format!("[[credentials]]\naccess_key_id = \"{ak}\"\nsecret_access_key = \"{SECRET}\"\naccount_id = \"111122223333\"\n")
        })
        .collect()
}

fn signed_client(port: u16, ak: &str) -> aws_sdk_kms::Client {
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let base = common::client(addr, ak, SECRET, "us-east-1");
    let conf = base
        .config()
        .to_builder()
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

fn signal(child: &std::process::Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits until `ok` holds (a reload is asynchronous to the signal).
async fn eventually(mut ok: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..100 {
        if ok().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// SIGHUP re-reads the credentials file; a file that does not parse is
/// refused and the credentials in force stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_credentials_and_keeps_them_on_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials.toml");
    std::fs::write(&creds, credentials(&[AK_1])).unwrap();
    let data = dir.path().join("data");
    let (mut child, port, log) = common::spawn_binary_logged(
        &[
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--credentials".as_ref(),
            creds.as_os_str(),
        ],
        &[],
    );
    let (one, two) = (signed_client(port, AK_1), signed_client(port, AK_2));
    one.list_keys().send().await.unwrap();
    assert!(two.list_keys().send().await.is_err());

    std::fs::write(&creds, credentials(&[AK_1, AK_2])).unwrap();
    signal(&child, "-HUP");
    assert!(eventually(async || two.list_keys().send().await.is_ok()).await);

    std::fs::write(&creds, "[[credentials]]\naccess_key_id = 42\n").unwrap();
    signal(&child, "-HUP");
    assert!(
        eventually(async || log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("credentials reload failed")))
        .await
    );
    one.list_keys().send().await.unwrap();
    two.list_keys().send().await.unwrap();
    signal(&child, "-TERM");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
}

/// The service log (JSON, at debug) of requests carrying known secrets
/// holds none of them: no plaintext, data key or secret access key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_log_holds_no_secrets() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials.toml");
    std::fs::write(&creds, credentials(&[AK_1])).unwrap();
    let data = dir.path().join("data");
    let (mut child, port, log) = common::spawn_binary_logged(
        &[
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--credentials".as_ref(),
            creds.as_os_str(),
            "--log-format".as_ref(),
            "json".as_ref(),
        ],
        &[("RUST_LOG", "debug")],
    );
    let c = signed_client(port, AK_1);
    let plaintext = b"PLAINTEXT-CANARY-4242-do-not-log";
    let key = c.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let ct = c
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(plaintext.to_vec()))
        .send()
        .await
        .unwrap();
    c.decrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    let dk = c
        .generate_data_key()
        .key_id(&key_id)
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    let data_key = dk.plaintext().unwrap().as_ref().to_vec();
    // A failed request too (wrong encryption context).
    assert!(c
        .decrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .encryption_context("k", "v")
        .send()
        .await
        .is_err());
    signal(&child, "-TERM");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
    let b64 = base64::engine::general_purpose::STANDARD;
    let text = log.lock().unwrap().join("\n");
    assert!(text.contains("request_id"), "JSON lines with request ids");
    for (what, needle) in [
        ("plaintext", String::from_utf8_lossy(plaintext).into_owned()),
        ("plaintext (Base64)", b64.encode(plaintext)),
        ("data key (Base64)", b64.encode(&data_key)),
        ("data key (hex)", hex::encode(&data_key)),
        ("secret access key", SECRET.to_owned()),
    ] {
        assert!(!text.contains(&needle), "the service log holds the {what}");
    }
}

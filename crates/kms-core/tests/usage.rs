//! GetKeyLastUsage through aws-sdk-kms: the last successful cryptographic
//! operation of each key (both keys of a ReEncrypt), failures and dry runs
//! not counted, TrackingStartDate and KeyCreationDate; and on the real
//! binary over SQLite, usage written in batches by the sweeper survives
//! `kill -9`.

mod common;

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::KeyLastUsageTrackingOperation as Op;
use common::{client, code, start_dev};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_successful_operation_per_key() {
    let h = start_dev().await;
    let c = client(h.addr, "111122223333", "x", "us-east-1");
    let a = c.create_key().send().await.unwrap();
    let a = a.key_metadata().unwrap();
    let (id, created) = (
        a.key_id().to_owned(),
        a.creation_date().unwrap().as_secs_f64(),
    );
    let b = c
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned();

    // Never used: an empty KeyLastUsage; tracking started with the key.
    let u = c.get_key_last_usage().key_id(&id).send().await.unwrap();
    assert_eq!(u.key_id(), Some(id.as_str()));
    assert_eq!(u.key_creation_date().unwrap().as_secs_f64(), created);
    assert_eq!(u.tracking_start_date().unwrap().as_secs_f64(), created);
    let last = u.key_last_usage().expect("an empty object");
    assert_eq!(last.operation(), None);
    assert_eq!(last.timestamp(), None);

    let enc = c
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new(b"x".to_vec()))
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap();
    let u = c.get_key_last_usage().key_id(&id).send().await.unwrap();
    let last = u.key_last_usage().unwrap();
    assert_eq!(last.operation(), Some(&Op::Encrypt));
    assert_eq!(last.kms_request_id(), enc.request_id());
    let t = last.timestamp().unwrap().as_secs_f64();
    assert!(t >= created, "{t} {created}");

    // A failed Decrypt and a dry run are not uses.
    let e = c
        .decrypt()
        .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "InvalidCiphertextException");
    let e = c
        .generate_data_key()
        .key_id(&id)
        .number_of_bytes(16)
        .dry_run(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "DryRunOperationException");
    let u = c.get_key_last_usage().key_id(&id).send().await.unwrap();
    assert_eq!(u.key_last_usage().unwrap().operation(), Some(&Op::Encrypt));

    // ReEncrypt counts for both keys.
    let re = c
        .re_encrypt()
        .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
        .source_encryption_context("k", "v")
        .destination_key_id(&b)
        .send()
        .await
        .unwrap();
    for k in [&id, &b] {
        let u = c.get_key_last_usage().key_id(k).send().await.unwrap();
        let last = u.key_last_usage().unwrap();
        assert_eq!(last.operation(), Some(&Op::ReEncrypt));
        assert_eq!(last.kms_request_id(), re.request_id());
    }
    // Management operations are not uses.
    c.describe_key().key_id(&b).send().await.unwrap();
    let u = c.get_key_last_usage().key_id(&b).send().await.unwrap();
    assert_eq!(
        u.key_last_usage().unwrap().operation(),
        Some(&Op::ReEncrypt)
    );

    // Key id or ARN only; unknown keys.
    c.create_alias()
        .alias_name("alias/used")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    let e = c
        .get_key_last_usage()
        .key_id("alias/used")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "NotFoundException");
    let e = c
        .get_key_last_usage()
        .key_id("11111111-2222-3333-4444-555555555555")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "NotFoundException");
    h.shutdown().await;
}

const BIN: &str = env!("CARGO_BIN_EXE_kms-core");

fn spawn(data: &std::path::Path) -> (Child, u16) {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "info")
        .env("KMS_CORE_SWEEP_INTERVAL_MS", "200")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("kms-core listening") {
                let port = line
                    .split("addr=")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| p.parse::<u16>().ok());
                if let Some(p) = port {
                    let _ = tx.send(p);
                }
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("kms-core did not start");
    (child, port)
}

fn sdk(port: u16) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("111122223333", "x", None, None, "test"))
            .build(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_flushed_in_batches_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = spawn(dir.path());
    let c = sdk(port);
    let id = c
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::Hmac256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::GenerateVerifyMac)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned();
    let mac = c
        .generate_mac()
        .key_id(&id)
        .mac_algorithm(aws_sdk_kms::types::MacAlgorithmSpec::HmacSha256)
        .message(Blob::new(b"m".to_vec()))
        .send()
        .await
        .unwrap();
    // A few sweeps write it; then an abrupt kill.
    tokio::time::sleep(Duration::from_millis(800)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, port) = spawn(dir.path());
    let c = sdk(port);
    let u = c.get_key_last_usage().key_id(&id).send().await.unwrap();
    let last = u.key_last_usage().unwrap();
    assert_eq!(last.operation(), Some(&Op::GenerateMac));
    assert_eq!(last.kms_request_id(), mac.request_id());
    child.kill().unwrap();
    child.wait().unwrap();
}

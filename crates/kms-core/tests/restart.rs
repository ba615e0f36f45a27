//! Durability: keys, aliases and ciphertexts survive `kill -9` of the
//! real binary and a restart on the same data directory.

mod common;

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::primitives::Blob;
use std::process::Child;

fn spawn(data: &std::path::Path) -> (Child, u16) {
    common::spawn_binary(&["--data-dir".as_ref(), data.as_os_str()], &[])
}

fn client(port: u16) -> aws_sdk_kms::Client {
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
async fn survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = spawn(dir.path());
    let c = client(port);
    let key = c.create_key().description("durable").send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    c.create_alias()
        .alias_name("alias/durable")
        .target_key_id(&key_id)
        .send()
        .await
        .unwrap();
    let enc = c
        .encrypt()
        .key_id("alias/durable")
        .plaintext(Blob::new(b"still here".to_vec()))
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap();
    // The acknowledged writes must survive an abrupt kill.
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, port) = spawn(dir.path());
    let c = client(port);
    let d = c
        .describe_key()
        .key_id("alias/durable")
        .send()
        .await
        .unwrap();
    assert_eq!(d.key_metadata().unwrap().key_id(), key_id);
    assert_eq!(d.key_metadata().unwrap().description(), Some("durable"));
    let dec = c
        .decrypt()
        .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"still here");
    // The root key file was created private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("root.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    child.kill().unwrap();
    child.wait().unwrap();
}

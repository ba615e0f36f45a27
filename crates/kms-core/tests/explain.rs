//! `kms-core authz explain` over a data directory written by a running
//! kms-core: the same evaluation as requests, with the deciding statement.

mod common;

use aws_sdk_kms::primitives::Blob;
use kms_core::auth::AuthMode;
use std::process::Command;
use std::sync::Arc;

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
  {"Sid":"NoRed","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:Decrypt","Resource":"*",
   "Condition":{"StringEquals":{"kms:EncryptionContext:team":"red"}}}]}"#;

fn explain(dir: &std::path::Path, key: &str, context: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kms-core"))
        .args([
            "authz",
            "explain",
            "--principal",
            "arn:aws:iam::111122223333:user/bob",
            "--action",
            "kms:Decrypt",
            "--key",
            key,
            "--context",
            context,
            "--data-dir",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_reads_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = kms_core::store::SqliteStore::open(
        &data,
        &local_key::MasterKeySource::File(data.join("root.key")),
    )
    .unwrap();
    let kms = common::start_with(AuthMode::Development, Arc::new(store)).await;
    let c = common::client(kms.addr, "111122223333", "any", "us-east-1");
    let key = c.create_key().policy(POLICY).send().await.unwrap();
    let arn = key.key_metadata().unwrap().arn().unwrap().to_owned();
    c.encrypt()
        .key_id(&arn)
        .plaintext(Blob::new("x"))
        .send()
        .await
        .unwrap();
    kms.shutdown().await;

    let red = explain(&data, &arn, "team=red");
    assert!(red.starts_with("DENY kms:Decrypt"), "{red}");
    assert!(red.contains("Sid \"NoRed\""), "{red}");
    assert!(
        red.contains("with an explicit deny in a resource-based policy"),
        "{red}"
    );
    let blue = explain(&data, &arn, "team=blue");
    assert!(blue.starts_with("ALLOW kms:Decrypt"), "{blue}");
    assert!(blue.contains("does not apply: condition"), "{blue}");
}

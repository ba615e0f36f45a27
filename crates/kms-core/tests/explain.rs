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
    explain_with(dir, key, context, &[])
}

fn explain_with(dir: &std::path::Path, key: &str, context: &str, extra: &[&str]) -> String {
    let out = run_explain(dir, key, context, extra);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn run_explain(
    dir: &std::path::Path,
    key: &str,
    context: &str,
    extra: &[&str],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kms-core"))
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
        .args(extra)
        .output()
        .unwrap()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_sees_the_principal_and_the_request_as_requests_do() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = kms_core::store::SqliteStore::open(
        &data,
        &local_key::MasterKeySource::File(data.join("root.key")),
    )
    .unwrap();
    let kms = common::start_with(AuthMode::Development, Arc::new(store)).await;
    let c = common::client(kms.addr, "111122223333", "any", "us-east-1");
    let policy = r#"{"Statement":[
      {"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
      {"Sid":"BobFromOffice","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:Decrypt","Resource":"*",
       "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"StringEquals":{"aws:PrincipalTag/team":"blue"}}}]}"#;
    let key = c.create_key().policy(policy).send().await.unwrap();
    let arn = key.key_metadata().unwrap().arn().unwrap().to_owned();
    kms.shutdown().await;
    let creds = dir.path().join("credentials.toml");
    std::fs::write(
        &creds,
        "strict_identity_policies = true\n[[credentials]]\naccess_key_id = \"AKIABOB00000000001\"\nsecret_access_key = \"explain-test-secret-explain-test\"\naccount_id = \"111122223333\"\nprincipal_arn = \"arn:aws:iam::111122223333:user/bob\"\n[credentials.tags]\nteam = \"blue\"\n",
    )
    .unwrap();
    let creds = creds.to_str().unwrap();
    let from = |ip: &str| {
        explain_with(
            &data,
            &arn,
            "a=b",
            &["--credentials", creds, "--source-ip", ip],
        )
    };
    let office = from("10.1.2.3");
    assert!(office.starts_with("ALLOW kms:Decrypt"), "{office}");
    assert!(office.contains("BobFromOffice"), "{office}");
    let home = from("192.0.2.1");
    assert!(home.starts_with("DENY kms:Decrypt"), "{home}");
    // Without the credentials file Bob has no tags and no identity
    // policies (development mode): the account delegation decides.
    let untagged = explain_with(&data, &arn, "a=b", &["--source-ip", "10.1.2.3"]);
    assert!(untagged.starts_with("ALLOW kms:Decrypt"), "{untagged}");
    assert!(untagged.contains("(Sid \"Root\") allows"), "{untagged}");
    // A principal the file does not name is an error, not an administrator.
    let out = Command::new(env!("CARGO_BIN_EXE_kms-core"))
        .args([
            "authz",
            "explain",
            "--principal",
            "arn:aws:iam::111122223333:user/mallory",
            "--action",
            "kms:Decrypt",
            "--key",
            &arn,
            "--credentials",
            creds,
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no credentials entry"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

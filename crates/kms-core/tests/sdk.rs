//! kms-core driven by the official AWS SDK for Rust over a real socket.

mod common;

use aws_sdk_kms::error::ProvideErrorMetadata;
use kms_core::auth::AuthMode;
use kms_core::service::Kms;

async fn start(auth: AuthMode) -> kms_core::server::KmsHandle {
    common::start_with(
        auth,
        std::sync::Arc::new(kms_core::store::MemoryStore::in_memory()),
    )
    .await
}

fn client(addr: std::net::SocketAddr, ak: &str, sk: &str) -> aws_sdk_kms::Client {
    common::client(addr, ak, sk, "eu-central-1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_random_through_the_sdk() {
    let kms = start(AuthMode::Development).await;
    let c = client(kms.addr, "111122223333", "anything");
    let a = c
        .generate_random()
        .number_of_bytes(1024)
        .send()
        .await
        .unwrap();
    let a = a.plaintext().unwrap().as_ref().to_vec();
    assert_eq!(a.len(), 1024);
    let b = c.generate_random().number_of_bytes(1).send().await.unwrap();
    assert_eq!(b.plaintext().unwrap().as_ref().len(), 1);
    let again = c
        .generate_random()
        .number_of_bytes(1024)
        .send()
        .await
        .unwrap();
    assert_ne!(again.plaintext().unwrap().as_ref(), &a[..]);

    // Out of range: the model's constraint, AWS's message.
    let e = c
        .generate_random()
        .number_of_bytes(1025)
        .send()
        .await
        .unwrap_err();
    let e = e.into_service_error();
    assert_eq!(e.code(), Some("ValidationException"));
    assert_eq!(
        e.message(),
        Some("1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024")
    );
    let e = c
        .generate_random()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(e.code(), Some("ValidationException"));
    kms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_credentials_are_verified() {
    let auth = AuthMode::configured_from_toml(
        "[[credentials]]\naccess_key_id = \"AKIAIOSFODNN7EXAMPLE\"\nsecret_access_key = \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"\naccount_id = \"111122223333\"\n",
    )
    .unwrap();
    let kms = start(auth).await;
    let good = client(
        kms.addr,
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    good.generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    let wrong_secret = client(
        kms.addr,
        "AKIAIOSFODNN7EXAMPLE",
        "not-the-secret-not-the-secret",
    );
    let e = wrong_secret
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        e.into_service_error().code(),
        Some("InvalidSignatureException")
    );
    let unknown = client(
        kms.addr,
        "AKIAUNKNOWNUNKNOWN12",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    let e = unknown
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        e.into_service_error().code(),
        Some("UnrecognizedClientException")
    );
    kms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_protocol_errors() {
    let kms = start(AuthMode::Development).await;
    let post = |target: Option<&str>, body: &str| {
        let mut cmd = std::process::Command::new("curl");
        cmd.args([
            "-s",
            "-i",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/x-amz-json-1.1",
        ]);
        cmd.args(["-H", "Authorization: AWS4-HMAC-SHA256 Credential=123456789012/20240101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000"]);
        cmd.args(["-H", "X-Amz-Date: 20240101T000000Z"]);
        if let Some(t) = target {
            cmd.args(["-H", &format!("X-Amz-Target: {t}")]);
        }
        cmd.args(["--data-binary", body, &format!("http://{}/", kms.addr)]);
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    };
    let r = post(Some("TrentService.NoSuchOperation"), "{}");
    assert!(
        r.contains("\"__type\":\"UnknownOperationException\""),
        "{r}"
    );
    assert!(r.to_ascii_lowercase().contains("x-amzn-requestid: "), "{r}");
    let r = post(None, "{}");
    assert!(r.contains("UnknownOperationException"), "{r}");
    let r = post(Some("TrentService.GenerateRandom"), "{not json");
    assert!(r.contains("SerializationException"), "{r}");
    let r = post(
        Some("TrentService.GenerateRandom"),
        "{\"NumberOfBytes\": \"12\"}",
    );
    assert!(r.contains("SerializationException"), "{r}");
    let r = post(Some("TrentService.DescribeKey"), "{\"KeyId\": \"\"}");
    assert!(
        r.contains("ValidationException") && r.contains("'keyId'"),
        "{r}"
    );
    kms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https() {
    let dir = tempfile::tempdir().unwrap();
    // The workspace's one test PKI.
    let ca = xks_proxy::pki::Ca::new("kms-core test CA").unwrap();
    let cert = ca.server(&["localhost"]).unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.path().join("cert.pem"), &cert.cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), &cert.key_pem).unwrap();
    let tls = http_shell::tls::simple_server_config(
        &dir.path().join("cert.pem"),
        &dir.path().join("key.pem"),
    )
    .unwrap();
    let kms = kms_core::server::start(
        "127.0.0.1:0".parse().unwrap(),
        Kms::new(
            AuthMode::Development,
            std::sync::Arc::new(kms_core::store::MemoryStore::in_memory()),
        )
        .unwrap(),
        Some(tls),
    )
    .await
    .unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(dir.path().join("ca.pem"))
        .args(["-H", "Content-Type: application/x-amz-json-1.1", "-H", "X-Amz-Target: TrentService.GenerateRandom"])
        .args(["-H", "Authorization: AWS4-HMAC-SHA256 Credential=123456789012/20240101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000"])
        .args(["-H", "X-Amz-Date: 20240101T000000Z", "--data-binary", "{\"NumberOfBytes\": 16}"])
        .arg(format!("https://localhost:{}/", kms.addr.port()))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(
        v["Plaintext"].as_str().map(str::len),
        Some(24),
        "{} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    kms.shutdown().await;
}

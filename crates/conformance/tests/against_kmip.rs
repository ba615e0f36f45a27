//! The whole suite against our proxy on the KMIP backend, in front of a
//! real PyKMIP server (TLS 1.2, client certificates) whose keys are made
//! with our own KMIP client. Then the life-cycle and failure paths: a
//! revoked key is InvalidState, a wedged or stopped key manager is 503
//! within the proxy's backend budget, and service resumes when it is back.

use conformance::cases::{catalogue, Keys};
use conformance::mtls::Ca;
use conformance::report::Verdict;
use conformance::{MtlsSettings, ServerTrust, Settings};
use kmip::spec::usage;
use kmip::testing::PyKmip;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use xks_client::{XksClient, XksClientConfig};
use xks_proxy::config::Config;
use xks_wire::{ErrorName, ExternalKeyId, RequestMetadata};

const REGION: &str = "us-east-1";
const PATH: &str = "/kmip-a/kms/xks/v1";
const OTHER_PATH: &str = "/kmip-b/kms/xks/v1";
const AK: &str = "AKIAXKSCONFORMANCEAAAA22";
const SK: &str = "Xk5CoNfOrMaNcEsEcReTaAaAaAaAaAaAaAaAaAaAaAa=";
const AK_B: &str = "AKIAXKSCONFORMANCEBBBB33";
const SK_B: &str = "Xk5CoNfOrMaNcEsEcReTbBbBbBbBbBbBbBbBbBbBbBb=";
/// The proxy's per-backend-call budget in this test (a debug build on a
/// busy 2-core machine; PyKMIP serialises requests under one lock).
const BACKEND_BUDGET_MS: u64 = 3000;

/// Cases that fail on this backend because of the backend (none known).
const KNOWN_FAILURES: &[(&str, &str)] = &[];

struct Env {
    _dir: tempfile::TempDir,
    kmip: PyKmip,
    handle: xks_proxy::ProxyHandle,
    server_ca_pem: String,
    client_ca: Ca,
}

async fn create_keys(server: &PyKmip) {
    let c = server.client();
    let both = usage::ENCRYPT | usage::DECRYPT;
    for (name, mask, activate) in [
        ("xks-health", both, true),
        ("conf-main", both, true),
        ("conf-other", both, true),
        ("conf-enc-only", usage::ENCRYPT, true),
        ("conf-dec-only", usage::DECRYPT, true),
        // Real attributes decide: wrap/unwrap only is "no XKS usage".
        ("conf-no-usage", usage::WRAP_KEY | usage::UNWRAP_KEY, true),
        // Created but never activated: Pre-Active is DISABLED.
        ("conf-disabled", both, false),
        ("to-revoke", both, true),
    ] {
        let uid = c.create_aes_key(name, 256, mask).await.unwrap();
        if activate {
            c.activate(&uid).await.unwrap();
        }
    }
    // Not AES-256: refused rather than reported as AES_256.
    let uid = c.create_aes_key("aes-128", 128, both).await.unwrap();
    c.activate(&uid).await.unwrap();
}

async fn start() -> Env {
    let kmip = PyKmip::start();
    create_keys(&kmip).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server_ca = xks_proxy::pki::Ca::new("KMIP conformance server CA").unwrap();
    server_ca
        .server(&["localhost", "127.0.0.1"])
        .unwrap()
        .write(d, "server")
        .unwrap();
    let client_ca = Ca::generate("KMIP conformance client CA").unwrap();
    std::fs::write(d.join("client-ca.pem"), client_ca.cert_pem()).unwrap();
    let (ca, cert, key) = kmip.pem_files();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
backend_timeout_ms = {BACKEND_BUDGET_MS}

[server.tls]
cert_file = "{dir}/server.pem"
key_file = "{dir}/server.key"
client_ca_file = "{dir}/client-ca.pem"
client_subject_names = ["cks.kms.{REGION}.amazonaws.com"]

[health]
vendor = "xks-conformance test"
model = "xks-proxy on PyKMIP"

[backends.hsm]
type = "kmip"
server = "{addr}"
ca_file = "{ca}"
client_cert_file = "{cert}"
client_key_file = "{key}"
health_key = "xks-health"
request_timeout_ms = 2500
pool_size = 8
# PyKMIP reports a failed GCM tag check as General Failure.
tag_mismatch_reasons = ["cryptographic_failure", "general_failure"]

[[key_stores]]
name = "a"
uri_path = "{PATH}"
region = "{REGION}"
backend = "hsm"
[[key_stores.credentials]]
access_key_id = "{AK}"
secret_access_key = "{SK}"

[[key_stores]]
name = "b"
uri_path = "{OTHER_PATH}"
region = "{REGION}"
backend = "hsm"
[[key_stores.credentials]]
access_key_id = "{AK_B}"
secret_access_key = "{SK_B}"
"#,
        dir = d.display(),
        addr = kmip.address(),
        ca = ca.display(),
        cert = cert.display(),
        key = key.display(),
    );
    let config = Config::parse(&text).unwrap();
    config.validate().unwrap();
    let handle = xks_proxy::start(&config).await.unwrap();
    Env {
        _dir: dir,
        kmip,
        handle,
        server_ca_pem: server_ca.cert_pem(),
        client_ca,
    }
}

fn settings(e: &Env) -> Settings {
    let mut s = Settings::new(
        format!("https://localhost:{}", e.handle.addr.port()),
        PATH,
        REGION,
        AK,
        SK,
        ServerTrust::CaPem(e.server_ca_pem.clone().into_bytes()),
        "conf-main",
    );
    s.keys = Keys {
        main: "conf-main".into(),
        encrypt_only: Some("conf-enc-only".into()),
        decrypt_only: Some("conf-dec-only".into()),
        no_usage: Some("conf-no-usage".into()),
        disabled: Some("conf-disabled".into()),
    };
    s.second_uri_path = Some(OTHER_PATH.into());
    s.mtls = MtlsSettings {
        expect: true,
        ca: Some(e.client_ca.identity()),
        subject: None,
    };
    s.kms_attempt_timeout = Duration::from_secs(4);
    s
}

/// An XKS client as KMS would use it, with a generous budget.
fn xks(e: &Env) -> XksClient {
    let id = e
        .client_ca
        .client("cks.kms.us-east-1.amazonaws.com", false)
        .unwrap();
    let cfg = XksClientConfig::new(
        format!("https://localhost:{}", e.handle.addr.port()),
        PATH,
        REGION,
        AK,
        SK,
        e.server_ca_pem.clone().into_bytes(),
    )
    .with_client_identity(id.cert_pem.into_bytes(), id.key_pem.as_bytes().to_vec())
    .with_budget(Duration::from_secs(5), Duration::from_secs(5));
    XksClient::new(&cfg).unwrap()
}

fn md(op: &str) -> RequestMetadata {
    RequestMetadata {
        aws_principal_arn: Some("arn:aws:iam::111122223333:user/Alice".into()),
        kms_key_arn: Some(
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(),
        ),
        kms_operation: Some(op.into()),
        kms_request_id: Some("4112f4d6-db54-4af4-ae30-c55a22a8dfae".into()),
        ..Default::default()
    }
}

fn key(id: &str) -> ExternalKeyId {
    id.parse().unwrap()
}

async fn encrypt(c: &XksClient, id: &str) -> Result<xks_wire::EncryptResponse, xks_client::Error> {
    let req = xks_client::encrypt_request(md("Encrypt"), b"kmip plaintext", Some(b"ctx"), false);
    c.encrypt(&key(id), &req).await
}

fn decrypt_request(r: &xks_wire::EncryptResponse) -> xks_wire::DecryptRequest {
    xks_client::decrypt_request(
        md("Decrypt"),
        &r.ciphertext.0,
        r.ciphertext_metadata.as_ref().map(|m| m.0.as_slice()),
        &r.initialization_vector.0,
        &r.authentication_tag.0,
        Some(b"ctx"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_passes_on_the_kmip_backend() {
    let env = start().await;
    let started = Instant::now();
    let report = conformance::run(settings(&env)).await.unwrap();
    let elapsed = started.elapsed();
    let table = report.to_table();
    println!("{table}\nsuite took {elapsed:?}");
    let known: BTreeSet<&str> = KNOWN_FAILURES.iter().map(|(id, _)| *id).collect();
    let failed: BTreeSet<&str> = report
        .cases
        .iter()
        .filter(|c| c.result == Verdict::Fail)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        failed,
        known,
        "unexpected failures:\n{table}\nPyKMIP log tail:\n{}",
        tail(&env.kmip.log())
    );
    let skipped: Vec<&str> = report
        .cases
        .iter()
        .filter(|c| c.result == Verdict::Skip)
        .map(|c| c.id.as_str())
        .collect();
    assert!(skipped.is_empty(), "unexpected skips {skipped:?}:\n{table}");
    let ran: Vec<&str> = report.cases.iter().map(|c| c.id.as_str()).collect();
    let all: Vec<String> = catalogue().into_iter().map(|c| c.id).collect();
    assert_eq!(ran, all);
    env.handle.shutdown().await;
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_keys_are_invalid_state_and_outages_are_503_within_budget() {
    let mut env = start().await;
    let c = xks(&env);

    // Metadata from real attributes.
    let m = c
        .get_key_metadata(&key("conf-main"), &md("DescribeKey"))
        .await
        .unwrap();
    assert_eq!(m.key_spec, "AES_256");
    assert_eq!(m.key_status, "ENABLED");
    assert_eq!(m.key_usage, vec!["ENCRYPT", "DECRYPT"]);
    let m = c
        .get_key_metadata(&key("conf-disabled"), &md("DescribeKey"))
        .await
        .unwrap();
    assert_eq!(m.key_status, "DISABLED");
    let e = c
        .get_key_metadata(&key("aes-128"), &md("DescribeKey"))
        .await
        .unwrap_err();
    assert_eq!(
        e.proxy_error_name(),
        Some(ErrorName::InvalidStateException),
        "{e}"
    );
    let e = c
        .get_key_metadata(&key("no-such-key"), &md("DescribeKey"))
        .await
        .unwrap_err();
    assert_eq!(
        e.proxy_error_name(),
        Some(ErrorName::KeyNotFoundException),
        "{e}"
    );

    // Revoke a key behind the proxy's back: the next use is InvalidState
    // (the server refuses, whatever the proxy cached), and its metadata
    // then shows DISABLED.
    let before = encrypt(&c, "to-revoke").await.unwrap();
    let admin = env.kmip.client();
    let uid = admin.locate_by_name("to-revoke").await.unwrap().remove(0);
    admin.revoke(&uid).await.unwrap();
    let e = encrypt(&c, "to-revoke").await.unwrap_err();
    assert_eq!(
        e.proxy_error_name(),
        Some(ErrorName::InvalidStateException),
        "{e}"
    );
    let dreq = decrypt_request(&before);
    let e = c.decrypt(&key("to-revoke"), &dreq).await.unwrap_err();
    assert_eq!(
        e.proxy_error_name(),
        Some(ErrorName::InvalidStateException),
        "{e}"
    );
    let m = c
        .get_key_metadata(&key("to-revoke"), &md("DescribeKey"))
        .await
        .unwrap();
    assert_eq!(m.key_status, "DISABLED");
    // Destroyed: not found (once the proxy's attribute cache, 1 s here,
    // has let go of the DISABLED state it just read).
    admin.destroy(&uid).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let e = encrypt(&c, "to-revoke").await.unwrap_err();
    assert_eq!(
        e.proxy_error_name(),
        Some(ErrorName::KeyNotFoundException),
        "{e}"
    );

    // Health is a real round trip through the health key.
    let h = c.get_health_status(&md("KmsHealthCheck")).await.unwrap();
    assert_eq!(h.ekm_fleet_details[0].health_status, "ACTIVE");

    // A wedged key manager (SIGSTOP): 503 within the backend budget.
    let budget = Duration::from_millis(BACKEND_BUDGET_MS);
    env.kmip.pause();
    let t = Instant::now();
    let e = encrypt(&c, "conf-main").await.unwrap_err();
    let took = t.elapsed();
    assert_eq!(
        e.proxy_error_name(),
        Some(ErrorName::DependencyTimeoutException),
        "{e}"
    );
    assert!(took < budget + Duration::from_millis(500), "took {took:?}");
    env.kmip.resume();

    // A stopped key manager: 503 at once.
    env.kmip.stop();
    let t = Instant::now();
    let e = encrypt(&c, "conf-main").await.unwrap_err();
    let took = t.elapsed();
    assert_eq!(
        e.proxy_error_name(),
        Some(ErrorName::DependencyTimeoutException),
        "{e}"
    );
    assert!(took < budget, "took {took:?}");

    // Back: service resumes without restarting the proxy.
    env.kmip.restart();
    let r = encrypt(&c, "conf-main").await.unwrap();
    let dreq = decrypt_request(&r);
    let p = c.decrypt(&key("conf-main"), &dreq).await.unwrap();
    assert_eq!(p.plaintext.0.as_slice(), b"kmip plaintext");
    env.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_the_kmip_pool() {
    let env = start().await;
    let c = std::sync::Arc::new(xks(&env));
    // 32 callers against a pool of 8 KMIP connections: all wait their turn
    // within the budget, none gets another caller's result.
    let mut tasks = Vec::new();
    for i in 0..32u8 {
        let c = std::sync::Arc::clone(&c);
        tasks.push(tokio::spawn(async move {
            for round in 0..3u8 {
                let plaintext = vec![i ^ round; 1 + usize::from(i) * 7];
                let aad = [i, round];
                let req = xks_client::encrypt_request(md("Encrypt"), &plaintext, Some(&aad), true);
                let r = c.encrypt(&key("conf-main"), &req).await.unwrap();
                let dreq = xks_client::decrypt_request(
                    md("Decrypt"),
                    &r.ciphertext.0,
                    r.ciphertext_metadata.as_ref().map(|m| m.0.as_slice()),
                    &r.initialization_vector.0,
                    &r.authentication_tag.0,
                    Some(&aad),
                );
                let p = c.decrypt(&key("conf-main"), &dreq).await.unwrap();
                assert_eq!(p.plaintext.0.as_slice(), plaintext.as_slice());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    env.handle.shutdown().await;
}

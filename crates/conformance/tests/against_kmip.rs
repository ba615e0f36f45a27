//! The whole suite against our proxy on the KMIP backend, in front of a
//! real PyKMIP server (TLS 1.2, client certificates) whose keys are made
//! with our own KMIP client. Then the life-cycle and failure paths: a
//! revoked key is InvalidState, a wedged or stopped key manager is 503
//! within the proxy's backend budget, and service resumes when it is back.

mod support;

use kmip::spec::usage;
use kmip::testing::PyKmip;
use std::time::{Duration, Instant};
use support::{Proxy, ProxySpec, Stores, REGION};
use xks_client::{XksClient, XksClientConfig};
use xks_wire::{ErrorName, ExternalKeyId, RequestMetadata};

const PATH: &str = "/kmip-a/kms/xks/v1";
const AK: &str = "AKIAXKSCONFORMANCEAAAA22";
const SK: &str = "Xk5CoNfOrMaNcEsEcReTaAaAaAaAaAaAaAaAaAaAaAa=";
const STORES: Stores = Stores {
    path: PATH,
    other_path: "/kmip-b/kms/xks/v1",
    ak: AK,
    sk: SK,
    ak_b: "AKIAXKSCONFORMANCEBBBB33",
    sk_b: "Xk5CoNfOrMaNcEsEcReTbBbBbBbBbBbBbBbBbBbBbBb=",
};
/// The proxy's per-backend-call budget in this test (a debug build on a
/// busy 2-core machine; PyKMIP serialises requests under one lock).
const BACKEND_BUDGET_MS: u64 = 3000;

/// Cases that fail on this backend because of the backend (none known).
const KNOWN_FAILURES: &[(&str, &str)] = &[];

struct Env {
    proxy: Proxy,
    kmip: PyKmip,
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
        ("conf-destroyed", both, true),
    ] {
        let uid = c.create_aes_key(name, 256, mask).await.unwrap();
        if activate {
            c.activate(&uid).await.unwrap();
        }
    }
    // Destroyed before the run: the suite's keys.destroyed cases.
    let uid = c.locate_by_name("conf-destroyed").await.unwrap().remove(0);
    c.revoke(&uid).await.unwrap();
    c.destroy(&uid).await.unwrap();
    // Not AES-256: refused rather than reported as AES_256.
    let uid = c.create_aes_key("aes-128", 128, both).await.unwrap();
    c.activate(&uid).await.unwrap();
}

async fn start() -> Env {
    let kmip = PyKmip::start();
    create_keys(&kmip).await;
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = kmip.pem_files();
    let backend_toml = format!(
        r#"type = "kmip"
server = "{addr}"
ca_file = "{ca}"
client_cert_file = "{cert}"
client_key_file = "{key}"
health_key = "xks-health"
request_timeout_ms = 2500
pool_size = 8
# PyKMIP reports a failed GCM tag check as General Failure.
tag_mismatch_reasons = ["cryptographic_failure", "general_failure"]"#,
        addr = kmip.address(),
        ca = ca.display(),
        cert = cert.display(),
        key = key.display(),
    );
    let server_extra = format!("backend_timeout_ms = {BACKEND_BUDGET_MS}");
    let spec = ProxySpec {
        ca_name: "KMIP conformance",
        server_extra: &server_extra,
        model: "xks-proxy on PyKMIP",
        backend: "hsm",
        backend_toml: &backend_toml,
        store_a_extra: support::THROTTLED_STORE,
        stores: STORES,
        mtls: true,
    };
    let proxy = support::start_proxy(dir, &spec).await;
    Env { proxy, kmip }
}

/// An XKS client as KMS would use it, with a generous budget.
fn xks(e: &Env) -> XksClient {
    let id = e
        .proxy
        .client_ca
        .client("cks.kms.us-east-1.amazonaws.com", false)
        .unwrap();
    let cfg = XksClientConfig::new(
        format!("https://localhost:{}", e.proxy.handle.addr.port()),
        PATH,
        REGION,
        AK,
        SK,
        e.proxy.server_ca_pem.clone().into_bytes(),
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

fn decrypt_request(r: &xks_wire::EncryptResponse, aad: &[u8]) -> xks_wire::DecryptRequest {
    xks_client::decrypt_request(
        md("Decrypt"),
        &r.ciphertext.0,
        r.ciphertext_metadata.as_ref().map(|m| m.0.as_slice()),
        &r.initialization_vector.0,
        &r.authentication_tag.0,
        Some(aad),
    )
}

/// The proxy refused with the XKS error `want`.
#[track_caller]
fn assert_refused(e: &xks_client::Error, want: ErrorName) {
    assert_eq!(e.proxy_error_name(), Some(want), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_passes_on_the_kmip_backend() {
    let env = start().await;
    let started = Instant::now();
    // The backend-fault group freezes PyKMIP with the commands a vendor
    // would give for their key manager.
    let mut settings = env.proxy.settings(Duration::from_secs(4));
    let pid = env.kmip.pid();
    settings.backend_stop_cmd = Some(format!("kill -STOP {pid}"));
    settings.backend_resume_cmd = Some(format!("kill -CONT {pid}"));
    settings.backend_deadline = Duration::from_millis(BACKEND_BUDGET_MS + 1000);
    let report = conformance::run(settings).await.unwrap();
    let elapsed = started.elapsed();
    let table = report.to_table();
    println!("{table}\nsuite took {elapsed:?}");
    support::assert_whole_catalogue(&report, KNOWN_FAILURES, &[], || {
        format!("\nPyKMIP log tail:\n{}", tail(&env.kmip.log()))
    });
    env.proxy.handle.shutdown().await;
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
    assert_refused(&e, ErrorName::InvalidStateException);
    let e = c
        .get_key_metadata(&key("no-such-key"), &md("DescribeKey"))
        .await
        .unwrap_err();
    assert_refused(&e, ErrorName::KeyNotFoundException);

    // Revoke a key behind the proxy's back: the next use is InvalidState
    // (the server refuses, whatever the proxy cached), and its metadata
    // then shows DISABLED.
    let before = encrypt(&c, "to-revoke").await.unwrap();
    let admin = env.kmip.client();
    let uid = admin.locate_by_name("to-revoke").await.unwrap().remove(0);
    admin.revoke(&uid).await.unwrap();
    let e = encrypt(&c, "to-revoke").await.unwrap_err();
    assert_refused(&e, ErrorName::InvalidStateException);
    let dreq = decrypt_request(&before, b"ctx");
    let e = c.decrypt(&key("to-revoke"), &dreq).await.unwrap_err();
    assert_refused(&e, ErrorName::InvalidStateException);
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
    assert_refused(&e, ErrorName::KeyNotFoundException);

    // Health is a real round trip through the health key.
    let h = c.get_health_status(&md("KmsHealthCheck")).await.unwrap();
    assert_eq!(h.ekm_fleet_details[0].health_status, "ACTIVE");

    // A wedged key manager (SIGSTOP): 503 within the backend budget.
    let budget = Duration::from_millis(BACKEND_BUDGET_MS);
    env.kmip.pause();
    let t = Instant::now();
    let e = encrypt(&c, "conf-main").await.unwrap_err();
    let took = t.elapsed();
    assert_refused(&e, ErrorName::DependencyTimeoutException);
    assert!(took < budget + Duration::from_millis(500), "took {took:?}");
    env.kmip.resume();

    // A stopped key manager: 503 at once.
    env.kmip.stop();
    let t = Instant::now();
    let e = encrypt(&c, "conf-main").await.unwrap_err();
    let took = t.elapsed();
    assert_refused(&e, ErrorName::DependencyTimeoutException);
    assert!(took < budget, "took {took:?}");

    // Back: service resumes without restarting the proxy.
    env.kmip.restart();
    let r = encrypt(&c, "conf-main").await.unwrap();
    let dreq = decrypt_request(&r, b"ctx");
    let p = c.decrypt(&key("conf-main"), &dreq).await.unwrap();
    assert_eq!(p.plaintext.0.as_slice(), b"kmip plaintext");
    env.proxy.handle.shutdown().await;
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
                let dreq = decrypt_request(&r, &aad);
                let p = c.decrypt(&key("conf-main"), &dreq).await.unwrap();
                assert_eq!(p.plaintext.0.as_slice(), plaintext.as_slice());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    env.proxy.handle.shutdown().await;
}

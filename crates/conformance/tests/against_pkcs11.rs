//! The whole suite against our xks-proxy on the PKCS#11 backend: a
//! SoftHSM2 token initialised at test time, keys of every kind generated
//! through cryptoki, TLS with mTLS, two key stores. Every case must run and
//! pass; then the load mode drives it with many concurrent connections
//! (SoftHSM with concurrent sessions must neither crash nor fail a call).

mod support;

use conformance::load::{self, LoadSettings, Mix};
use conformance::mtls;
use conformance::ServerTrust;
use std::time::Duration;
use support::{Proxy, ProxySpec, Stores, REGION};
use xks_proxy::backend::pkcs11::provision::{softhsm, NewKey};

const PATH: &str = "/hsm-a/kms/xks/v1";
const AK: &str = "AKIAXKSCONFORMANCEPKCS22";
const SK: &str = "Xk5CoNfOrMaNcEsEcReTpKcS11PkCs11PkCs11PkCsA=";
const STORES: Stores = Stores {
    path: PATH,
    other_path: "/hsm-b/kms/xks/v1",
    ak: AK,
    sk: SK,
    ak_b: "AKIAXKSCONFORMANCEPKCS33",
    sk_b: "Xk5CoNfOrMaNcEsEcReTpKcS11PkCs11PkCs11PkCsB=",
};

async fn start_proxy() -> Proxy {
    let hsm = softhsm::shared().unwrap();
    let token = hsm.new_token("conformance").unwrap();
    for key in [
        NewKey::aes256("xks-health"),
        NewKey::aes256("conf-main"),
        NewKey::aes256("conf-other"),
        NewKey::aes256("conf-enc-only").usage(true, false),
        NewKey::aes256("conf-dec-only").usage(false, true),
        NewKey::aes256("conf-no-usage").usage(false, false),
        NewKey::aes256("conf-disabled"),
    ] {
        hsm.key(&token, &key).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pin"), &token.user_pin).unwrap();
    // Status from an allow-list, so that a key with neither CKA_ENCRYPT nor
    // CKA_DECRYPT (no usage, ENABLED) and a disabled key can both exist.
    let backend_toml = format!(
        r#"type = "pkcs11"
module = "{module}"
token_label = "{label}"
user_pin_file = "{dir}/pin"
health_key_label = "xks-health"
key_status = "allow_list"
enabled_keys = ["conf-main", "conf-other", "conf-enc-only", "conf-dec-only", "conf-no-usage"]
max_sessions = 8
session_wait_ms = 1500"#,
        dir = dir.path().display(),
        module = hsm.module.display(),
        label = token.label,
    );
    let spec = ProxySpec {
        ca_name: "conformance test",
        // Below the suite's 2 s KMS attempt timeout; roomy for a busy CI machine.
        server_extra: "backend_timeout_ms = 1500",
        model: "xks-proxy under test (PKCS#11)",
        backend: "hsm",
        backend_toml: &backend_toml,
        store_a_extra: "rate_limit = { requests_per_second = 0 }",
        stores: STORES,
        mtls: true,
    };
    support::start_proxy(dir, &spec).await
}

fn settings(p: &Proxy) -> conformance::Settings {
    let mut s = p.settings(Duration::from_secs(2));
    s.throttling_burst = None;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_passes_against_the_pkcs11_backend() {
    let proxy = start_proxy().await;
    let report = conformance::run(settings(&proxy)).await.unwrap();
    println!("{}", report.to_table());
    // Rate limits and key-manager outages are covered on the embedded and
    // KMIP backends; this store runs without a limit (the load below).
    support::assert_whole_catalogue(
        &report,
        &[],
        &["throttling.", "backend-fault."],
        String::new,
    );

    // Concurrency: 32 keep-alive connections of mixed encrypt/decrypt (with
    // CDIV, so each encrypt is two HSM calls) for 3 s; not one error.
    let client = proxy
        .client_ca
        .client(&mtls::kms_subject(REGION), false)
        .unwrap();
    let tls = conformance::tls::client_config_pem(
        &ServerTrust::CaPem(proxy.server_ca_pem.clone().into_bytes()),
        Some((client.cert_pem.as_bytes(), client.key_pem.as_bytes())),
    )
    .unwrap();
    let port = proxy.handle.addr.port();
    let load = load::run(LoadSettings {
        addr: proxy.handle.addr,
        host: format!("localhost:{port}"),
        uri_path: PATH.into(),
        region: REGION.into(),
        access_key_id: AK.into(),
        secret_access_key: SK.into(),
        key_id: "conf-main".into(),
        tls: Some(tls),
        server_name: "localhost".into(),
        concurrency: 32,
        rate: None,
        duration: Duration::from_secs(3),
        warmup: Duration::from_millis(300),
        sizes: vec![32, 4096],
        mix: Mix::Mixed,
        cdiv: true,
    })
    .await
    .unwrap();
    println!("{}", load.to_table());
    assert!(
        load.errors.is_empty(),
        "errors under load: {:?}",
        load.errors
    );
    assert!(load.requests > 100, "only {} requests", load.requests);

    // Still healthy after the load.
    let mut s = settings(&proxy);
    s.only = vec!["health".into(), "crypto".into()];
    let again = conformance::run(s).await.unwrap();
    assert!(!again.has_failures(), "{}", again.to_table());
    proxy.handle.shutdown().await;
}

//! The whole suite against our xks-proxy on the PKCS#11 backend: a
//! SoftHSM2 token initialised at test time, keys of every kind generated
//! through cryptoki, TLS with mTLS, two key stores. Every case must run and
//! pass; then the load mode drives it with many concurrent connections
//! (SoftHSM with concurrent sessions must neither crash nor fail a call).

use conformance::cases::{catalogue, Keys};
use conformance::load::{self, LoadSettings, Mix};
use conformance::mtls::{self, Ca};
use conformance::report::Verdict;
use conformance::{MtlsSettings, ServerTrust, Settings};
use std::time::Duration;
use xks_proxy::backend::pkcs11::provision::{softhsm, NewKey};
use xks_proxy::config::Config;

const REGION: &str = "us-east-1";
const PATH: &str = "/hsm-a/kms/xks/v1";
const OTHER_PATH: &str = "/hsm-b/kms/xks/v1";
const AK: &str = "AKIAXKSCONFORMANCEPKCS22";
const SK: &str = "Xk5CoNfOrMaNcEsEcReTpKcS11PkCs11PkCs11PkCsA=";
const AK_B: &str = "AKIAXKSCONFORMANCEPKCS33";
const SK_B: &str = "Xk5CoNfOrMaNcEsEcReTpKcS11PkCs11PkCs11PkCsB=";

struct Proxy {
    _dir: tempfile::TempDir,
    handle: xks_proxy::ProxyHandle,
    server_ca_pem: String,
    client_ca: Ca,
}

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
    let d = dir.path();
    let server_ca = xks_proxy::pki::Ca::new("conformance test server CA").unwrap();
    server_ca
        .server(&["localhost", "127.0.0.1"])
        .unwrap()
        .write(d, "server")
        .unwrap();
    let client_ca = Ca::generate("conformance test client CA").unwrap();
    std::fs::write(d.join("client-ca.pem"), client_ca.cert_pem()).unwrap();
    std::fs::write(d.join("pin"), &token.user_pin).unwrap();
    // Status from an allow-list, so that a key with neither CKA_ENCRYPT nor
    // CKA_DECRYPT (no usage, ENABLED) and a disabled key can both exist.
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
# Below the suite's 2 s KMS attempt timeout; roomy for a busy CI machine.
backend_timeout_ms = 1500

[server.tls]
cert_file = "{dir}/server.pem"
key_file = "{dir}/server.key"
client_ca_file = "{dir}/client-ca.pem"
client_subject_names = ["cks.kms.{REGION}.amazonaws.com"]

[health]
vendor = "xks-conformance test"
model = "xks-proxy under test (PKCS#11)"

[backends.hsm]
type = "pkcs11"
module = "{module}"
token_label = "{label}"
user_pin_file = "{dir}/pin"
health_key_label = "xks-health"
key_status = "allow_list"
enabled_keys = ["conf-main", "conf-other", "conf-enc-only", "conf-dec-only", "conf-no-usage"]
max_sessions = 8
session_wait_ms = 1500

[[key_stores]]
name = "a"
uri_path = "{PATH}"
region = "{REGION}"
backend = "hsm"
rate_limit = {{ requests_per_second = 0 }}
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
        module = hsm.module.display(),
        label = token.label,
    );
    let config = Config::parse(&text).unwrap();
    config.validate().unwrap();
    let handle = xks_proxy::start(&config).await.unwrap();
    Proxy {
        server_ca_pem: server_ca.cert_pem(),
        _dir: dir,
        handle,
        client_ca,
    }
}

fn settings(p: &Proxy) -> Settings {
    let mut s = Settings::new(
        format!("https://localhost:{}", p.handle.addr.port()),
        PATH,
        REGION,
        AK,
        SK,
        ServerTrust::CaPem(p.server_ca_pem.clone().into_bytes()),
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
        ca: Some(p.client_ca.identity()),
        subject: None,
    };
    s.kms_attempt_timeout = Duration::from_secs(2);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_passes_against_the_pkcs11_backend() {
    let proxy = start_proxy().await;
    let report = conformance::run(settings(&proxy)).await.unwrap();
    let table = report.to_table();
    println!("{table}");
    let failed: Vec<&str> = report
        .cases
        .iter()
        .filter(|c| c.result != Verdict::Pass)
        .map(|c| c.id.as_str())
        .collect();
    assert!(failed.is_empty(), "not passed: {failed:?}\n{table}");
    let ran: Vec<&str> = report.cases.iter().map(|c| c.id.as_str()).collect();
    let all: Vec<String> = catalogue().into_iter().map(|c| c.id).collect();
    assert_eq!(ran, all);

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

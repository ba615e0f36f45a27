//! The whole suite against our own xks-proxy, in-process: TLS with mTLS,
//! two key stores, a key of every kind. Every case must run and pass.

use conformance::cases::{catalogue, Keys};
use conformance::mtls::{self, Ca};
use conformance::report::Verdict;
use conformance::{MtlsSettings, ServerTrust, Settings};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};
use xks_proxy::admin::{self, Action, Target};
use xks_proxy::backend::software::master::MasterKeySource;
use xks_proxy::backend::software::store::StoredUsage;
use xks_proxy::config::Config;

const REGION: &str = "us-east-1";
const PATH: &str = "/tenant-a/kms/xks/v1";
const OTHER_PATH: &str = "/tenant-b/kms/xks/v1";
const AK: &str = "AKIAXKSCONFORMANCEAAAA22";
const SK: &str = "Xk5CoNfOrMaNcEsEcReTaAaAaAaAaAaAaAaAaAaAaAa=";
const AK_B: &str = "AKIAXKSCONFORMANCEBBBB33";
const SK_B: &str = "Xk5CoNfOrMaNcEsEcReTbBbBbBbBbBbBbBbBbBbBbBb=";

/// Cases that fail against our proxy because the proxy is wrong (none
/// known today). Each entry: (case id, why the spec requires it).
const KNOWN_PROXY_FAILURES: &[(&str, &str)] = &[];

struct Proxy {
    _dir: tempfile::TempDir,
    handle: xks_proxy::ProxyHandle,
    server_ca_pem: String,
    client_ca: Ca,
}

fn create_keys(data: &Path) {
    let target = Target {
        data_dir: data.to_path_buf(),
        master_key: MasterKeySource::File(data.join("master.key")),
    };
    for (id, usage) in [
        ("conf-main", StoredUsage::EncryptDecrypt),
        ("conf-other", StoredUsage::EncryptDecrypt),
        ("conf-enc-only", StoredUsage::EncryptOnly),
        ("conf-dec-only", StoredUsage::DecryptOnly),
        ("conf-no-usage", StoredUsage::None),
        ("conf-disabled", StoredUsage::EncryptDecrypt),
    ] {
        admin::run(
            &target,
            Action::Create {
                id: id.into(),
                usage,
            },
        )
        .unwrap();
    }
    admin::run(
        &target,
        Action::Disable {
            id: "conf-disabled".into(),
        },
    )
    .unwrap();
}

async fn start_proxy() -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server_ca = xks_proxy::pki::Ca::new("conformance test server CA").unwrap();
    server_ca
        .server(&["localhost", "127.0.0.1"])
        .unwrap()
        .write(d, "server")
        .unwrap();
    // The client CA's key is needed by the suite to mint expired and
    // wrong-subject certificates, so it is made here rather than by pki::Ca.
    let client_ca = Ca::generate("conformance test client CA").unwrap();
    std::fs::write(d.join("client-ca.pem"), client_ca.cert_pem()).unwrap();
    create_keys(&d.join("data"));
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[server.tls]
cert_file = "{dir}/server.pem"
key_file = "{dir}/server.key"
client_ca_file = "{dir}/client-ca.pem"
client_subject_names = ["cks.kms.{REGION}.amazonaws.com"]

[health]
vendor = "xks-conformance test"
model = "xks-proxy under test"

[backends.embedded]
type = "software"
data_dir = "{dir}/data"

[[key_stores]]
name = "a"
uri_path = "{PATH}"
region = "{REGION}"
backend = "embedded"
[[key_stores.credentials]]
access_key_id = "{AK}"
secret_access_key = "{SK}"

[[key_stores]]
name = "b"
uri_path = "{OTHER_PATH}"
region = "{REGION}"
backend = "embedded"
[[key_stores.credentials]]
access_key_id = "{AK_B}"
secret_access_key = "{SK_B}"
"#,
        dir = d.display()
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
    // KMS's 250 ms per attempt is the CLI default; a debug build on a busy
    // 2-core CI machine gets more room (latency is the load mode's job).
    s.kms_attempt_timeout = Duration::from_secs(2);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_passes_against_our_proxy() {
    let proxy = start_proxy().await;
    let started = Instant::now();
    let report = conformance::run(settings(&proxy)).await.unwrap();
    let elapsed = started.elapsed();
    let table = report.to_table();
    println!("{table}");

    let known: BTreeSet<&str> = KNOWN_PROXY_FAILURES.iter().map(|(id, _)| *id).collect();
    let failed: BTreeSet<&str> = report
        .cases
        .iter()
        .filter(|c| c.result == Verdict::Fail)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(failed, known, "unexpected failures:\n{table}");
    let skipped: Vec<&str> = report
        .cases
        .iter()
        .filter(|c| c.result == Verdict::Skip)
        .map(|c| c.id.as_str())
        .collect();
    assert!(skipped.is_empty(), "unexpected skips {skipped:?}:\n{table}");
    // Every case of the catalogue ran, once.
    let ran: Vec<&str> = report.cases.iter().map(|c| c.id.as_str()).collect();
    let all: Vec<String> = catalogue().into_iter().map(|c| c.id).collect();
    assert_eq!(ran, all);
    assert!(report.cases.len() >= 120);
    assert!(elapsed < Duration::from_secs(20), "suite took {elapsed:?}");

    // The JUnit and JSON renderings agree with the table.
    let junit = report.to_junit();
    assert!(junit.contains(&format!(
        "tests=\"{}\" failures=\"{}\"",
        all.len(),
        known.len()
    )));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["summary"]["passed"], all.len() - known.len());
    proxy.handle.shutdown().await;
}

/// The suite notices a broken setup: the wrong secret makes every signed
/// case fail (not pass, not skip), and the verdicts say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_loudly() {
    let proxy = start_proxy().await;
    let mut s = settings(&proxy);
    s.secret_access_key = zeroize::Zeroizing::new(SK_B.into());
    s.only = vec![
        "metadata.key".into(),
        "health".into(),
        "sigv4.wrong-secret".into(),
    ];
    let report = conformance::run(s).await.unwrap();
    let by_id = |id: &str| report.cases.iter().find(|c| c.id == id).unwrap();
    let meta = by_id("metadata.key");
    assert_eq!(meta.result, Verdict::Fail);
    assert!(meta.mismatches[0]
        .observed
        .contains("401 AuthenticationFailedException"));
    assert_eq!(by_id("health.kms-health-check").result, Verdict::Fail);
    // A request that must be refused is refused either way.
    assert_eq!(by_id("sigv4.wrong-secret").result, Verdict::Pass);
    assert!(report.has_failures());
    proxy.handle.shutdown().await;
}

/// Without mTLS inputs and optional keys, the dependent cases are skipped
/// with the reason, never passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_inputs_are_skipped_not_passed() {
    let proxy = start_proxy().await;
    let mut s = settings(&proxy);
    s.keys = Keys {
        main: "conf-main".into(),
        ..Default::default()
    };
    s.second_uri_path = None;
    // The proxy demands a client certificate: present one, but tell the
    // suite nothing about mTLS.
    let id = proxy
        .client_ca
        .client(&mtls::kms_subject(REGION), false)
        .unwrap();
    s.client_identity = Some(id);
    s.mtls = MtlsSettings::default();
    s.only = vec![
        "keys".into(),
        "mtls".into(),
        "sigv4.other-key-store-credential".into(),
    ];
    let report = conformance::run(s).await.unwrap();
    for c in &report.cases {
        let needs_input = !c.id.starts_with("keys.unknown");
        if needs_input {
            assert_eq!(c.result, Verdict::Skip, "{}", c.id);
            assert!(c.reason.as_deref().unwrap_or("").contains("--"), "{}", c.id);
        } else {
            assert_eq!(c.result, Verdict::Pass, "{}: {:?}", c.id, c.mismatches);
        }
    }
    proxy.handle.shutdown().await;
}

/// The binary: `list`, and `run` with files, --json and --junit, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_runs_against_the_proxy() {
    let bin = env!("CARGO_BIN_EXE_xks-conformance");
    let out = std::process::Command::new(bin)
        .args(["list", "--markdown"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("\n| `").count(), catalogue().len());

    let proxy = start_proxy().await;
    let files = tempfile::tempdir().unwrap();
    let f = |name: &str| files.path().join(name);
    std::fs::write(f("ca.pem"), &proxy.server_ca_pem).unwrap();
    std::fs::write(f("secret"), format!("{SK}\n")).unwrap();
    let ca = proxy.client_ca.identity();
    std::fs::write(f("client-ca.pem"), &ca.cert_pem).unwrap();
    std::fs::write(f("client-ca.key"), ca.key_pem.as_bytes()).unwrap();
    let port = proxy.handle.addr.port().to_string();
    let run = |secret: &str| {
        let mut cmd = std::process::Command::new(bin);
        cmd.args([
            "run",
            "--endpoint",
            &format!("https://localhost:{port}"),
            "--uri-path",
            PATH,
            "--access-key-id",
            AK,
            "--secret-access-key-file",
            secret,
            "--ca-file",
            f("ca.pem").to_str().unwrap(),
            "--mtls-ca-file",
            f("client-ca.pem").to_str().unwrap(),
            "--mtls-ca-key",
            f("client-ca.key").to_str().unwrap(),
            "--key-id",
            "conf-main",
            "--kms-timeout-ms",
            "2000",
            "--only",
            "routing,health,mtls,kms-client.health",
            "--json",
            "--junit",
            f("junit.xml").to_str().unwrap(),
        ])
        .env_remove("XKS_SECRET_ACCESS_KEY");
        cmd
    };
    let output = |mut cmd: std::process::Command| async move {
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    };
    let out = output(run(f("secret").to_str().unwrap())).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["summary"]["failed"], 0);
    assert_eq!(json["summary"]["skipped"], 0);
    let junit = std::fs::read_to_string(f("junit.xml")).unwrap();
    assert!(junit.contains("<testsuite name=\"mtls\""));

    // A wrong secret: failures, exit status 1.
    std::fs::write(f("bad-secret"), SK_B).unwrap();
    let out = output(run(f("bad-secret").to_str().unwrap())).await;
    assert_eq!(out.status.code(), Some(1));
    proxy.handle.shutdown().await;
}

//! The whole suite against our own xks-proxy, in-process: TLS with mTLS,
//! two key stores, a key of every kind. Every case must run and pass.

mod support;

use conformance::cases::{catalogue, Keys};
use conformance::mtls;
use conformance::report::Verdict;
use conformance::MtlsSettings;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{Proxy, ProxySpec, Stores, REGION};
use xks_proxy::admin::{self, Target};
use xks_proxy::backend::software::master::MasterKeySource;
use xks_proxy::backend::software::store::StoredUsage;

const PATH: &str = "/tenant-a/kms/xks/v1";
const AK: &str = "AKIAXKSCONFORMANCEAAAA22";
const SK: &str = "Xk5CoNfOrMaNcEsEcReTaAaAaAaAaAaAaAaAaAaAaAa=";
const SK_B: &str = "Xk5CoNfOrMaNcEsEcReTbBbBbBbBbBbBbBbBbBbBbBb=";
const STORES: Stores = Stores {
    path: PATH,
    other_path: "/tenant-b/kms/xks/v1",
    ak: AK,
    sk: SK,
    ak_b: "AKIAXKSCONFORMANCEBBBB33",
    sk_b: SK_B,
};

/// Cases that fail against our proxy because the proxy is wrong (none
/// known today). Each entry: (case id, why the spec requires it).
const KNOWN_PROXY_FAILURES: &[(&str, &str)] = &[];

fn create_keys(data: &Path) {
    let target = Target {
        data_dir: data.to_path_buf(),
        master_key: MasterKeySource::File(data.join("master.key")),
    };
    admin::provision(
        &target,
        &[
            ("conf-main", StoredUsage::EncryptDecrypt),
            ("conf-other", StoredUsage::EncryptDecrypt),
            ("conf-enc-only", StoredUsage::EncryptOnly),
            ("conf-dec-only", StoredUsage::DecryptOnly),
            ("conf-no-usage", StoredUsage::None),
            ("conf-disabled", StoredUsage::EncryptDecrypt),
            ("conf-destroyed", StoredUsage::EncryptDecrypt),
        ],
        &["conf-disabled"],
    )
    .unwrap();
    admin::run(
        &target,
        admin::Action::Delete {
            id: "conf-destroyed".into(),
            confirmed: true,
        },
    )
    .unwrap();
}

async fn start_proxy() -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    create_keys(&dir.path().join("data"));
    let backend_toml = format!(
        "type = \"software\"\ndata_dir = \"{}/data\"",
        dir.path().display()
    );
    let spec = ProxySpec {
        ca_name: "conformance test",
        server_extra: "",
        model: "xks-proxy under test",
        backend: "embedded",
        backend_toml: &backend_toml,
        store_a_extra: support::THROTTLED_STORE,
        stores: STORES,
    };
    support::start_proxy(dir, &spec).await
}

fn settings(p: &Proxy) -> conformance::Settings {
    p.settings(Duration::from_secs(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_passes_against_our_proxy() {
    let proxy = start_proxy().await;
    let started = Instant::now();
    let report = conformance::run(settings(&proxy)).await.unwrap();
    let elapsed = started.elapsed();
    let table = report.to_table();
    println!("{table}");

    // The embedded key manager lives inside the proxy: nothing to stop
    // (backend faults run on the KMIP backend, tests/against_kmip.rs).
    let (known, all) = support::assert_whole_catalogue(
        &report,
        KNOWN_PROXY_FAILURES,
        &["backend-fault."],
        String::new,
    );
    assert!(report.cases.len() >= 150);
    assert!(elapsed < Duration::from_secs(20), "suite took {elapsed:?}");

    // The JUnit and JSON renderings agree with the table.
    let junit = report.to_junit();
    assert!(junit.contains(&format!(
        "tests=\"{}\" failures=\"{}\"",
        all.len(),
        known.len()
    )));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(report.summary.skipped, 4, "only the backend-fault group skips");
    assert_eq!(
        json["summary"]["passed"],
        all.len() - known.len() - report.summary.skipped
    );
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

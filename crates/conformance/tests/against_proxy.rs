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
    start_proxy_with(support::THROTTLED_STORE, true).await
}

/// Our proxy with key store "a" configured by `store_a_extra`, with or
/// without client certificates required.
async fn start_proxy_with(store_a_extra: &str, mtls: bool) -> Proxy {
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
        store_a_extra,
        stores: STORES,
        mtls,
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
    assert_eq!(
        report.summary.skipped, 4,
        "only the backend-fault group skips"
    );
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
            "--html",
            f("report.html").to_str().unwrap(),
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
    let html = std::fs::read_to_string(f("report.html")).unwrap();
    assert!(html.contains(">CONFORMS</span>"), "{html}");

    // A wrong secret: failures, exit status 1, and the page says so.
    std::fs::write(f("bad-secret"), SK_B).unwrap();
    let out = output(run(f("bad-secret").to_str().unwrap())).await;
    assert_eq!(out.status.code(), Some(1));
    let html = std::fs::read_to_string(f("report.html")).unwrap();
    assert!(html.contains(">DOES NOT CONFORM</span>"));
    assert!(html.contains("401 AuthenticationFailedException"));
    proxy.handle.shutdown().await;
}

/// Every failing case of a run shows what was expected and observed.
fn assert_fails_with_detail(report: &conformance::Report, ids: &[&str]) {
    assert!(report.has_failures(), "{}", report.to_table());
    for id in ids {
        let c = report
            .cases
            .iter()
            .find(|c| c.id == *id)
            .unwrap_or_else(|| panic!("{id} did not run"));
        assert_eq!(c.result, Verdict::Fail, "{id}:\n{}", report.to_table());
        assert!(
            c.mismatches
                .iter()
                .all(|m| !m.expected.is_empty() && !m.observed.is_empty()),
            "{id}: {:?}",
            c.mismatches
        );
    }
}

/// A proxy configured wrongly fails the suite, with expected vs observed:
/// a wrong URI prefix, mTLS not required, no rate limit when the
/// throttling group is asked for (the wrong secret: above and below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrongly_configured_proxies_fail() {
    // Wrong URI prefix: every request is 404 InvalidUriPathException.
    let proxy = start_proxy().await;
    let mut s = settings(&proxy);
    s.uri_path = "/tenant-x/kms/xks/v1".into();
    s.only = vec!["health.kms-health-check".into(), "metadata.key".into()];
    let report = conformance::run(s).await.unwrap();
    assert_fails_with_detail(&report, &["health.kms-health-check", "metadata.key"]);
    let m = &report.cases[0].mismatches[0];
    assert_eq!(m.expected, "200");
    assert_eq!(m.observed, "404 InvalidUriPathException");

    // The suite's own certificate refused (another subject than the proxy
    // expects): reported as a refused handshake, not a closed channel.
    let mut s = settings(&proxy);
    s.mtls.subject = Some("cks.kms.eu-west-1.amazonaws.com".into());
    s.only = vec!["health.kms-health-check".into()];
    let report = conformance::run(s).await.unwrap();
    assert_fails_with_detail(&report, &["health.kms-health-check"]);
    let observed = &report.cases[0].mismatches[0].observed;
    println!("{observed}");
    assert!(
        observed.contains("TLS handshake refused by the proxy: fatal alert BadCertificate after the client's Finished (TLS 1.3)"),
        "{observed}"
    );
    proxy.handle.shutdown().await;

    // Client certificates not required: the refusals are answered.
    let proxy = start_proxy_with(support::THROTTLED_STORE, false).await;
    let mut s = settings(&proxy);
    s.only = vec!["mtls".into()];
    let report = conformance::run(s).await.unwrap();
    assert_fails_with_detail(
        &report,
        &[
            "mtls.no-client-cert",
            "mtls.self-signed",
            "mtls.untrusted-ca",
            "mtls.expired",
            "mtls.wrong-subject",
        ],
    );
    assert!(report.cases[0].mismatches[0]
        .observed
        .starts_with("completed; HTTP 200"));
    proxy.handle.shutdown().await;

    // No rate limit, throttling group asked for: no 429 comes back.
    let proxy = start_proxy_with("rate_limit = { requests_per_second = 0 }", true).await;
    let mut s = settings(&proxy);
    s.throttling_burst = Some(300);
    s.only = vec!["throttling".into()];
    let report = conformance::run(s).await.unwrap();
    assert_fails_with_detail(&report, &["throttling.burst"]);
    assert!(report.cases[0].mismatches[0]
        .observed
        .contains("none throttled"));
    proxy.handle.shutdown().await;
}

/// The HTML report of a run with failures (a proxy that does not require
/// client certificates) and a short load run: one well-formed page, every
/// case present, failures expanded with expected vs observed, the SVG
/// charts present, nothing fetched from anywhere. With
/// XKS_CONFORMANCE_HTML_OUT set, the page is also written there (the e2e
/// script opens it in a headless browser).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_report_of_a_failing_run() {
    // No rate limit (the load run follows), so no throttling group either.
    let proxy = start_proxy_with("rate_limit = { requests_per_second = 0 }", false).await;
    let mut s = settings(&proxy);
    s.throttling_burst = None;
    let report = conformance::run(s).await.unwrap();
    assert!(report.has_failures());
    let client = proxy
        .client_ca
        .client(&mtls::kms_subject(REGION), false)
        .unwrap();
    let tls = conformance::tls::client_config_pem(
        &conformance::ServerTrust::CaPem(proxy.server_ca_pem.clone().into_bytes()),
        Some((client.cert_pem.as_bytes(), client.key_pem.as_bytes())),
    )
    .unwrap();
    let load = conformance::load::run(conformance::load::LoadSettings {
        addr: proxy.handle.addr,
        host: format!("localhost:{}", proxy.handle.addr.port()),
        uri_path: PATH.into(),
        region: REGION.into(),
        access_key_id: AK.into(),
        secret_access_key: SK.into(),
        key_id: "conf-main".into(),
        tls: Some(tls),
        server_name: "localhost".into(),
        concurrency: 2,
        rate: Some(50.0),
        duration: Duration::from_millis(800),
        warmup: Duration::from_millis(100),
        sizes: vec![32],
        mix: conformance::load::Mix::Mixed,
        cdiv: true,
    })
    .await
    .unwrap();
    let port = proxy.handle.addr.port();
    let page = conformance::html::render(&report, Some(&load));
    if let Ok(out) = std::env::var("XKS_CONFORMANCE_HTML_OUT") {
        std::fs::write(out, &page).unwrap();
    }
    proxy.handle.shutdown().await;

    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc =
        roxmltree::Document::parse_with_options(&page, options).expect("the page is well-formed");
    let by_id = |id: &str| doc.descendants().find(|n| n.attribute("id") == Some(id));
    assert_eq!(
        by_id("verdict").and_then(|n| n.text()),
        Some("DOES NOT CONFORM")
    );
    let identity = by_id("identity").unwrap();
    let text: String = identity
        .descendants()
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains(&format!("https://localhost:{port}")),
        "{text}"
    );
    assert!(
        text.contains("TLSv1_3") || text.contains("TLSv1_2"),
        "{text}"
    );
    assert!(text.contains("CN=localhost"), "{text}");
    // Every case, once, with its result; every failure expanded.
    let rows: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("case"))
        .collect();
    let ids: Vec<&str> = rows.iter().filter_map(|n| n.attribute("data-id")).collect();
    let all: Vec<String> = catalogue().into_iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), all.len());
    for id in &all {
        assert!(ids.contains(&id.as_str()), "{id} missing");
    }
    let failed: Vec<&roxmltree::Node> = rows
        .iter()
        .filter(|n| n.attribute("data-result") == Some("FAIL"))
        .collect();
    assert_eq!(failed.len(), report.summary.failed);
    // ... and listed first, one line each.
    let listed = by_id("attention")
        .unwrap()
        .children()
        .filter(|n| n.has_tag_name("li"))
        .count();
    assert_eq!(listed, report.summary.failed + report.summary.warned);
    assert!(failed.len() >= 5);
    for row in failed {
        let details = row
            .descendants()
            .find(|n| n.has_tag_name("details"))
            .unwrap_or_else(|| panic!("{:?} not expanded", row.attribute("data-id")));
        assert_eq!(details.attribute("open"), Some("open"));
        let items = details
            .descendants()
            .filter(|n| n.has_tag_name("li"))
            .count();
        assert!(items >= 1);
        let text: String = details.descendants().filter_map(|n| n.text()).collect();
        assert!(
            text.contains("expected") && text.contains("observed"),
            "{text}"
        );
    }
    // The charts: inline SVG, with the 250 ms budget.
    const SVG: &str = "http://www.w3.org/2000/svg";
    for id in ["latency-histogram", "latency-percentiles"] {
        let svg = by_id(id).unwrap_or_else(|| panic!("no #{id}"));
        assert_eq!(svg.tag_name().namespace(), Some(SVG));
        assert!(svg
            .descendants()
            .any(|n| n.text().is_some_and(|t| t.contains("KMS budget 250 ms"))));
    }
    let bars = by_id("latency-histogram")
        .unwrap()
        .descendants()
        .filter(|n| n.attribute("class") == Some("bucket"))
        .count();
    assert_eq!(bars, 11);
    assert!(by_id("percentiles").is_some());
    // Self-contained: no script, no external resource.
    for n in doc.descendants() {
        assert!(!n.has_tag_name("script") && !n.has_tag_name("link") && !n.has_tag_name("img"));
        for a in ["src", "href"] {
            assert!(n.attribute(a).is_none(), "{a} on {:?}", n.tag_name());
        }
    }
}

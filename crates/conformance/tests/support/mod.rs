//! What the suites against our own proxy share: starting the proxy with
//! mTLS and two key stores in front of some backend, the suite's settings
//! for it, and the verdict checks of a whole-catalogue run.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use conformance::cases::{catalogue, Keys};
use conformance::mtls::Ca;
use conformance::report::{Report, Verdict};
use conformance::{MtlsSettings, ServerTrust, Settings};
use std::collections::BTreeSet;
use std::time::Duration;
use xks_proxy::config::Config;

pub const REGION: &str = "us-east-1";

/// The two key stores' URI paths and credentials.
#[derive(Clone, Copy)]
pub struct Stores {
    pub path: &'static str,
    pub other_path: &'static str,
    pub ak: &'static str,
    pub sk: &'static str,
    pub ak_b: &'static str,
    pub sk_b: &'static str,
}

/// How the proxy under test differs from one test file to the next.
pub struct ProxySpec<'a> {
    /// Prefix of the test CAs' names ("<name> server CA").
    pub ca_name: &'a str,
    /// Extra lines of the `[server]` table.
    pub server_extra: &'a str,
    /// `[health] model`.
    pub model: &'a str,
    /// Name of the backend both key stores use.
    pub backend: &'a str,
    /// Body of `[backends.<backend>]`.
    pub backend_toml: &'a str,
    /// Extra lines of key store "a".
    pub store_a_extra: &'a str,
    pub stores: Stores,
    /// Require client certificates (false: a wrongly configured proxy).
    pub mtls: bool,
}

pub struct Proxy {
    pub _dir: tempfile::TempDir,
    pub handle: xks_proxy::ProxyHandle,
    pub server_ca_pem: String,
    pub client_ca: Ca,
    pub stores: Stores,
}

/// Starts the proxy on 127.0.0.1:0 with a fresh server certificate in
/// `dir` and client certificates required from a fresh client CA (whose key
/// the suite needs, to mint expired and wrong-subject certificates).
pub async fn start_proxy(dir: tempfile::TempDir, spec: &ProxySpec<'_>) -> Proxy {
    let d = dir.path();
    let server_ca = xks_proxy::pki::Ca::new(&format!("{} server CA", spec.ca_name)).unwrap();
    server_ca
        .server(&["localhost", "127.0.0.1"])
        .unwrap()
        .write(d, "server")
        .unwrap();
    let client_ca = Ca::generate(&format!("{} client CA", spec.ca_name)).unwrap();
    std::fs::write(d.join("client-ca.pem"), client_ca.cert_pem()).unwrap();
    let Stores {
        path,
        other_path,
        ak,
        sk,
        ak_b,
        sk_b,
    } = spec.stores;
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
{server_extra}

[server.tls]
cert_file = "{dir}/server.pem"
key_file = "{dir}/server.key"
{client_auth}

[health]
vendor = "xks-conformance test"
model = "{model}"

[backends.{backend}]
{backend_toml}

[[key_stores]]
name = "a"
uri_path = "{path}"
region = "{REGION}"
backend = "{backend}"
{store_a_extra}
[[key_stores.credentials]]
access_key_id = "{ak}"
secret_access_key = "{sk}"

[[key_stores]]
name = "b"
uri_path = "{other_path}"
region = "{REGION}"
backend = "{backend}"
[[key_stores.credentials]]
access_key_id = "{ak_b}"
secret_access_key = "{sk_b}"
"#,
        dir = d.display(),
        server_extra = spec.server_extra,
        model = spec.model,
        backend = spec.backend,
        backend_toml = spec.backend_toml,
        store_a_extra = spec.store_a_extra,
        client_auth = if spec.mtls {
            format!(
                "client_ca_file = \"{}/client-ca.pem\"\nclient_subject_names = [\"cks.kms.{REGION}.amazonaws.com\"]",
                d.display()
            )
        } else {
            String::new()
        },
    );
    let config = Config::parse(&text).unwrap();
    config.validate().unwrap();
    let handle = xks_proxy::start(&config).await.unwrap();
    Proxy {
        server_ca_pem: server_ca.cert_pem(),
        _dir: dir,
        handle,
        client_ca,
        stores: spec.stores,
    }
}

impl Proxy {
    /// The suite's settings for every case: all optional keys, the second
    /// key store, mTLS; `kms_attempt_timeout` instead of KMS's 250 ms (a
    /// debug build on a busy 2-core CI machine; latency is the load mode's
    /// job).
    pub fn settings(&self, kms_attempt_timeout: Duration) -> Settings {
        let mut s = Settings::new(
            format!("https://localhost:{}", self.handle.addr.port()),
            self.stores.path,
            REGION,
            self.stores.ak,
            self.stores.sk,
            ServerTrust::CaPem(self.server_ca_pem.clone().into_bytes()),
            "conf-main",
        );
        s.keys = Keys {
            main: "conf-main".into(),
            encrypt_only: Some("conf-enc-only".into()),
            decrypt_only: Some("conf-dec-only".into()),
            no_usage: Some("conf-no-usage".into()),
            disabled: Some("conf-disabled".into()),
            destroyed: Some("conf-destroyed".into()),
        };
        // Store "a" admits 100 requests/s with a burst of 400 (see
        // THROTTLED_STORE): a whole run stays under it, this burst does not.
        s.throttling_burst = Some(1200);
        s.recovery_timeout = Duration::from_secs(20);
        s.second_uri_path = Some(self.stores.other_path.into());
        s.mtls = MtlsSettings {
            expect: true,
            ca: Some(self.client_ca.identity()),
            subject: None,
        };
        s.kms_attempt_timeout = kms_attempt_timeout;
        s
    }
}

/// The rate limit of key store "a" in every whole-suite test.
pub const THROTTLED_STORE: &str = "rate_limit = { requests_per_second = 100, burst = 400 }";

/// Checks a whole-catalogue run: exactly the `known` cases fail, none is
/// skipped but those under the `may_skip` prefixes, no case warns, and
/// every case of the catalogue ran, once, in order. `more` is added to the
/// message of an unexpected failure. Returns the known failures and the
/// catalogue's ids.
pub fn assert_whole_catalogue(
    report: &Report,
    known: &[(&str, &str)],
    may_skip: &[&str],
    more: impl FnOnce() -> String,
) -> (BTreeSet<String>, Vec<String>) {
    let table = report.to_table();
    let known: BTreeSet<String> = known.iter().map(|(id, _)| id.to_string()).collect();
    let failed: BTreeSet<String> = report
        .cases
        .iter()
        .filter(|c| c.result == Verdict::Fail)
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(failed, known, "unexpected failures:\n{table}{}", more());
    let skipped: Vec<&str> = report
        .cases
        .iter()
        .filter(|c| c.result == Verdict::Skip)
        .filter(|c| !may_skip.iter().any(|p| c.id.starts_with(p)))
        .map(|c| c.id.as_str())
        .collect();
    let warned: Vec<&str> = report
        .cases
        .iter()
        .filter(|c| c.result == Verdict::Warn)
        .map(|c| c.id.as_str())
        .collect();
    assert!(
        warned.is_empty(),
        "unexpected warnings {warned:?}:\n{table}"
    );
    assert!(skipped.is_empty(), "unexpected skips {skipped:?}:\n{table}");
    let ran: Vec<&str> = report.cases.iter().map(|c| c.id.as_str()).collect();
    let all: Vec<String> = catalogue().into_iter().map(|c| c.id).collect();
    assert_eq!(ran, all);
    (known, all)
}

//! The real `xks-proxy`, in-process: TLS with mandatory client certificates
//! on 127.0.0.1:0, the embedded key manager in a temp dir, and client
//! configurations for it. Shared by `tests/against_proxy.rs` and
//! `benches/round_trip.rs`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use xks_client::XksClientConfig;
use xks_proxy::admin::{self, Target};
use xks_proxy::backend::software::master::MasterKeySource;
use xks_proxy::backend::software::store::StoredUsage;
use xks_proxy::config::Config;
use xks_proxy::keystore::BackendHandle;
use xks_proxy::pki::{Ca, Issued};
use xks_proxy::ProxyHandle;
use xks_wire::RequestMetadata;

pub const REGION: &str = "us-east-1";
/// One credential, valid in every key store.
pub const AKID: &str = "AKIAXKSCLIENTTESTQQ22";
pub const SECRET: &str = "TestSecret0123456789abcdefghijklmnopqrstuvwxyzABC";
/// Well-formed, but not the proxy's.
pub const WRONG_SECRET: &str = "WrongSecret0123456789abcdefghijklmnopqrstuvwxyzAB";

/// No authorization rules, no practical rate limit.
pub const PATH_MAIN: &str = "/main/kms/xks/v1";
/// Authorization rules: Alice is denied, every other principal allowed.
pub const PATH_GUARDED: &str = "/guarded/kms/xks/v1";
/// `rate_limit = { requests_per_second = 1, burst = 1 }`.
pub const PATH_LIMITED: &str = "/limited/kms/xks/v1";
/// A well-formed path no key store serves.
pub const PATH_UNSERVED: &str = "/elsewhere/kms/xks/v1";

/// The name KMS presents in its client certificate (us-east-1).
pub const KMS_CLIENT_CN: &str = "cks.kms.us-east-1.amazonaws.com";
pub const ALICE: &str = "arn:aws:iam::111122223333:user/Alice";
pub const BOB: &str = "arn:aws:iam::111122223333:user/Bob";
pub const KEY_ARN: &str =
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// Keys of the embedded key manager.
pub const KEY: &str = "key-1";
pub const ENCRYPT_ONLY: &str = "enc-only";
pub const DECRYPT_ONLY: &str = "dec-only";
pub const DISABLED: &str = "disabled-key";
/// Not in the key manager at all.
pub const UNKNOWN: &str = "no-such-key";

/// The proxy's plaintext limit (also its default).
pub const MAX_PLAINTEXT: usize = 8192;
/// The proxy's AAD limit (also its default).
pub const MAX_AAD: usize = 16384;

pub struct Options {
    pub backend_timeout_ms: u64,
    /// Rate limit of the "main" key store; 0 disables it (the benchmark
    /// runs faster than the default 2000 requests/s).
    pub main_requests_per_second: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backend_timeout_ms: 200,
            main_requests_per_second: 2000,
        }
    }
}

/// Everything on disk and the PKI, before the proxy starts.
pub struct Prepared {
    pub dir: tempfile::TempDir,
    pub ca: Ca,
    /// Issued by `ca` with CN `cks.kms.us-east-1.amazonaws.com`.
    pub kms_client: Issued,
    pub config: Config,
}

fn config_text(dir: &Path, opts: &Options) -> String {
    let d = dir.display();
    let rps = opts.main_requests_per_second;
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
backend_timeout_ms = {timeout}
max_plaintext_bytes = {MAX_PLAINTEXT}
max_aad_bytes = {MAX_AAD}

[server.tls]
cert_file = "{d}/server.pem"
key_file = "{d}/server.key"
client_ca_file = "{d}/ca.pem"
client_subject_names = ["{KMS_CLIENT_CN}"]

[health]
vendor = "xks-client tests"
model = "in-process proxy"

[backends.embedded]
type = "software"
data_dir = "{d}/data"
reload_interval_ms = 50

[[key_stores]]
name = "main"
uri_path = "{PATH_MAIN}"
region = "{REGION}"
backend = "embedded"
rate_limit = {{ requests_per_second = {rps}, burst = {burst} }}
[[key_stores.credentials]]
access_key_id = "{AKID}"
secret_access_key = "{SECRET}"

[[key_stores]]
name = "guarded"
uri_path = "{PATH_GUARDED}"
region = "{REGION}"
backend = "embedded"
[[key_stores.credentials]]
access_key_id = "{AKID}"
secret_access_key = "{SECRET}"
[[key_stores.authorization_rules]]
name = "no-alice"
effect = "deny"
principals = ["arn:aws:iam::*:user/Alice"]
[[key_stores.authorization_rules]]
name = "everyone-else"
effect = "allow"
principals = ["*"]

[[key_stores]]
name = "limited"
uri_path = "{PATH_LIMITED}"
region = "{REGION}"
backend = "embedded"
rate_limit = {{ requests_per_second = 1, burst = 1 }}
[[key_stores.credentials]]
access_key_id = "{AKID}"
secret_access_key = "{SECRET}"
"#,
        timeout = opts.backend_timeout_ms,
        burst = rps.max(1),
    )
}

/// Writes the PKI, creates the keys and parses the configuration.
pub fn prepare(opts: &Options) -> Prepared {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("xks-client test CA").unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    ca.server(&["127.0.0.1"])
        .unwrap()
        .write(dir.path(), "server")
        .unwrap();
    let kms_client = ca.client(KMS_CLIENT_CN, &[], None).unwrap();

    let target = Target {
        data_dir: dir.path().join("data"),
        master_key: MasterKeySource::File(dir.path().join("data/master.key")),
    };
    admin::provision(
        &target,
        &[
            (KEY, StoredUsage::EncryptDecrypt),
            (ENCRYPT_ONLY, StoredUsage::EncryptOnly),
            (DECRYPT_ONLY, StoredUsage::DecryptOnly),
            (DISABLED, StoredUsage::EncryptDecrypt),
        ],
        &[DISABLED],
    )
    .unwrap();

    let config = Config::parse(&config_text(dir.path(), opts)).unwrap();
    config.validate().unwrap();
    Prepared {
        dir,
        ca,
        kms_client,
        config,
    }
}

/// Prepares and starts a proxy with its own backends.
pub async fn start(opts: &Options) -> (Prepared, ProxyHandle) {
    let env = prepare(opts);
    let handle = xks_proxy::start(&env.config).await.unwrap();
    (env, handle)
}

/// Prepares and starts a proxy over backends the caller opened.
pub async fn start_with(
    env: Prepared,
    backends: HashMap<String, BackendHandle>,
) -> (Prepared, ProxyHandle) {
    let handle = xks_proxy::start_with_backends(&env.config, backends)
        .await
        .unwrap();
    (env, handle)
}

impl Prepared {
    /// A client configuration as KMS would hold it: endpoint, URI path,
    /// credential, the test CA, and the KMS client certificate.
    pub fn client_config(&self, addr: SocketAddr, uri_path: &str, secret: &str) -> XksClientConfig {
        self.client_config_without_identity(addr, uri_path, secret)
            .with_client_identity(
                self.kms_client.cert_pem.as_bytes().to_vec(),
                self.kms_client.key_pem.as_bytes().to_vec(),
            )
    }

    /// The same without a client certificate.
    pub fn client_config_without_identity(
        &self,
        addr: SocketAddr,
        uri_path: &str,
        secret: &str,
    ) -> XksClientConfig {
        XksClientConfig::new(
            format!("https://{addr}"),
            uri_path,
            REGION,
            AKID,
            secret,
            self.ca.cert_pem().into_bytes(),
        )
    }
}

/// `requestMetadata` as KMS sends it.
pub fn metadata(principal: &str, kms_operation: &str) -> RequestMetadata {
    RequestMetadata {
        aws_principal_arn: Some(principal.to_owned()),
        kms_key_arn: Some(KEY_ARN.to_owned()),
        kms_operation: Some(kms_operation.to_owned()),
        kms_request_id: Some("4112f4d6-db54-4af4-ae30-c55a22a8dfae".to_owned()),
        kms_via_service: Some("ebs".to_owned()),
        ..Default::default()
    }
}

/// Deterministic, non-constant test data.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

//! The external key store test bed: a real xks-proxy in-process (mutual
//! TLS on 127.0.0.1:0, embedded key manager in a temp dir, optionally a
//! slow or failing key manager in front of it), kms-core on 127.0.0.1:0
//! trusting the test CA with a client certificate, and an aws-sdk-kms
//! client.
#![allow(dead_code)]

use async_trait::async_trait;
use aws_sdk_kms::operation::create_custom_key_store::CreateCustomKeyStoreError;
use aws_sdk_kms::types::{XksProxyAuthenticationCredentialType, XksProxyConnectivityType};
use kms_core::auth::AuthMode;
use kms_core::service::Kms;
use kms_core::store::{MemoryStore, Store};
use kms_core::xks::settings::{ClientCert, XksSettings};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use xks_proxy::admin::{self, Action, Target};
use xks_proxy::backend::software::master::MasterKeySource;
use xks_proxy::backend::software::store::StoredUsage;
use xks_proxy::backend::{BackendError, InstanceHealth, KeyInfo, KeyManager, Sealed};
use xks_proxy::config::Config;
use xks_proxy::keystore::{open_backends, BackendHandle};
use xks_proxy::pki::{Ca, Issued};
use xks_proxy::ProxyHandle;
use xks_wire::ExternalKeyId;
use zeroize::Zeroizing;

#[path = "../common/mod.rs"]
mod common;
pub use common::code;

pub const ACCOUNT: &str = "111122223333";
pub const REGION: &str = "us-east-1";
pub const PATH_MAIN: &str = "/main/kms/xks/v1";
/// Another key store on the same key manager.
pub const PATH_SECOND: &str = "/second/kms/xks/v1";
/// Authorization rules: Mallory and ReEncrypt are denied.
pub const PATH_GUARDED: &str = "/guarded/kms/xks/v1";
/// Rate limited to 1 request/s.
pub const PATH_LIMITED: &str = "/limited/kms/xks/v1";
pub const AKID_A: &str = "AKIAXKSTESTAAAAAAAAA";
pub const SECRET_A: &str = "SecretA0123456789abcdefghijklmnopqrstuvwxyzABC";
pub const AKID_B: &str = "AKIAXKSTESTBBBBBBBBB";
pub const SECRET_B: &str = "SecretB0123456789abcdefghijklmnopqrstuvwxyzABC";
pub const CLIENT_CN: &str = "cks.kms.us-east-1.amazonaws.com";

/// External keys of the embedded key manager.
pub const KEY_1: &str = "ext-key-1";
pub const KEY_2: &str = "ext-key-2";
pub const ENCRYPT_ONLY: &str = "ext-enc-only";
pub const DISABLED: &str = "ext-disabled";

/// What the fault-injecting key manager does.
pub const FAULT_NONE: u8 = 0;
/// Every encrypt/decrypt waits `delay_ms` first.
pub const FAULT_SLOW: u8 = 1;
/// Every encrypt/decrypt fails (InternalException at the proxy).
pub const FAULT_FAIL: u8 = 2;

/// A key manager wrapper that can be made slow or failing at run time.
pub struct Faulty {
    inner: Arc<dyn KeyManager>,
    pub mode: AtomicU8,
    pub delay_ms: AtomicU64,
}

impl Faulty {
    async fn fault(&self) -> Result<(), BackendError> {
        match self.mode.load(Ordering::SeqCst) {
            FAULT_SLOW => {
                tokio::time::sleep(Duration::from_millis(self.delay_ms.load(Ordering::SeqCst)))
                    .await;
                Ok(())
            }
            FAULT_FAIL => Err(BackendError::Internal("injected failure".into())),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl KeyManager for Faulty {
    fn vendor(&self) -> &str {
        self.inner.vendor()
    }
    async fn key_info(&self, key: &ExternalKeyId) -> Result<KeyInfo, BackendError> {
        self.inner.key_info(key).await
    }
    async fn encrypt(
        &self,
        key: &ExternalKeyId,
        version: &[u8],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Sealed, BackendError> {
        self.fault().await?;
        self.inner.encrypt(key, version, plaintext, aad).await
    }
    async fn decrypt(
        &self,
        key: &ExternalKeyId,
        version: &[u8],
        ciphertext: &[u8],
        iv: &[u8],
        tag: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.fault().await?;
        self.inner
            .decrypt(key, version, ciphertext, iv, tag, aad)
            .await
    }
    async fn health(&self) -> Vec<InstanceHealth> {
        self.inner.health().await
    }
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub ca: Ca,
    pub kms_client_cert: Issued,
    pub proxy: Option<ProxyHandle>,
    pub proxy_addr: SocketAddr,
    pub faulty: Arc<Faulty>,
    pub store: Arc<dyn Store>,
    pub kms: kms_core::server::KmsHandle,
    pub sdk: aws_sdk_kms::Client,
}

/// The proxy configuration, with these credentials valid in every key store.
pub fn proxy_config(dir: &Path, listen: SocketAddr, creds: &[(&str, &str)]) -> Config {
    let d = dir.display();
    let creds_toml: String = creds
        .iter()
        .map(|(a, s)| {
            format!("[[key_stores.credentials]]\naccess_key_id = \"{a}\"\nsecret_access_key = \"{s}\"\n")
        })
        .collect();
    let text = format!(
        r#"
[server]
listen = "{listen}"
backend_timeout_ms = 5000

[server.tls]
cert_file = "{d}/server.pem"
key_file = "{d}/server.key"
client_ca_file = "{d}/ca.pem"
client_subject_names = ["{CLIENT_CN}"]

[backends.embedded]
type = "software"
data_dir = "{d}/data"
reload_interval_ms = 50

[[key_stores]]
name = "main"
uri_path = "{PATH_MAIN}"
region = "{REGION}"
backend = "embedded"
rate_limit = {{ requests_per_second = 100000, burst = 100000 }}
{creds_toml}
[[key_stores]]
name = "second"
uri_path = "{PATH_SECOND}"
region = "{REGION}"
backend = "embedded"
rate_limit = {{ requests_per_second = 100000, burst = 100000 }}
{creds_toml}
[[key_stores]]
name = "guarded"
uri_path = "{PATH_GUARDED}"
region = "{REGION}"
backend = "embedded"
{creds_toml}
[[key_stores.authorization_rules]]
name = "no-mallory"
effect = "deny"
principals = ["arn:aws:iam::*:user/Mallory"]
[[key_stores.authorization_rules]]
name = "no-reencrypt"
effect = "deny"
kms_operations = ["ReEncrypt"]
[[key_stores.authorization_rules]]
name = "others"
effect = "allow"
principals = ["arn:aws:iam::111122223333:*"]

[[key_stores]]
name = "limited"
uri_path = "{PATH_LIMITED}"
region = "{REGION}"
backend = "embedded"
rate_limit = {{ requests_per_second = 1, burst = 1 }}
{creds_toml}
"#
    );
    let c = Config::parse(&text).unwrap();
    c.validate().unwrap();
    c
}

pub fn admin_target(dir: &Path) -> Target {
    Target {
        data_dir: dir.join("data"),
        master_key: MasterKeySource::File(dir.join("data/master.key")),
    }
}

pub struct Options {
    pub settings: Option<XksSettings>,
    pub health_interval: Duration,
    pub auth: AuthMode,
    /// The SDK client's access key id and secret.
    pub credentials: (&'static str, &'static str),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            settings: None,
            health_interval: Duration::from_secs(300),
            auth: AuthMode::Development,
            credentials: (ACCOUNT, "anything"),
        }
    }
}

impl Env {
    pub async fn start() -> Env {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("kms-core xks test CA").unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
        ca.server(&["localhost", "127.0.0.1"])
            .unwrap()
            .write(dir.path(), "server")
            .unwrap();
        let kms_client_cert = ca.client(CLIENT_CN, &[], None).unwrap();
        let target = admin_target(dir.path());
        admin::provision(
            &target,
            &[
                (KEY_1, StoredUsage::EncryptDecrypt),
                (KEY_2, StoredUsage::EncryptDecrypt),
                (ENCRYPT_ONLY, StoredUsage::EncryptOnly),
                (DISABLED, StoredUsage::EncryptDecrypt),
            ],
            &[DISABLED],
        )
        .unwrap();
        let config = proxy_config(
            dir.path(),
            "127.0.0.1:0".parse().unwrap(),
            &[(AKID_A, SECRET_A)],
        );
        let real = open_backends(&config).unwrap();
        let faulty = Arc::new(Faulty {
            inner: Arc::clone(&real["embedded"].backend),
            mode: AtomicU8::new(FAULT_NONE),
            delay_ms: AtomicU64::new(0),
        });
        let proxy = start_proxy(&config, &faulty, &real["embedded"]).await;
        let proxy_addr = proxy.addr;
        let settings = opts.settings.unwrap_or_else(|| {
            let mut s = XksSettings::default().with_default_trust(
                ca.cert_pem().into_bytes(),
                Some(ClientCert {
                    cert_pem: kms_client_cert.cert_pem.as_bytes().to_vec(),
                    key_pem: Zeroizing::new(kms_client_cert.key_pem.as_bytes().to_vec()),
                }),
            );
            s.health_interval = opts.health_interval;
            s
        });
        let store: Arc<dyn Store> = Arc::new(MemoryStore::in_memory());
        let kms = kms_core::server::start(
            "127.0.0.1:0".parse().unwrap(),
            Kms::new(opts.auth, Arc::clone(&store))
                .unwrap()
                .with_xks_settings(settings),
            None,
        )
        .await
        .unwrap();
        let sdk = common::client(kms.addr, opts.credentials.0, opts.credentials.1, REGION);
        Env {
            dir,
            ca,
            kms_client_cert,
            proxy: Some(proxy),
            proxy_addr,
            faulty,
            store,
            kms,
            sdk,
        }
    }

    /// kms-core's settings trusting `ca`, with kms-core's client certificate.
    pub fn settings_trusting(&self, ca: &Ca) -> XksSettings {
        XksSettings::default().with_default_trust(
            ca.cert_pem().into_bytes(),
            Some(ClientCert {
                cert_pem: self.kms_client_cert.cert_pem.as_bytes().to_vec(),
                key_pem: Zeroizing::new(self.kms_client_cert.key_pem.as_bytes().to_vec()),
            }),
        )
    }

    /// `https://localhost:<proxy port>`.
    pub fn endpoint(&self) -> String {
        format!("https://localhost:{}", self.proxy_addr.port())
    }

    /// Stops the proxy (connections refused from now on).
    pub async fn stop_proxy(&mut self) {
        if let Some(p) = self.proxy.take() {
            p.shutdown().await;
        }
    }

    /// Restarts a stopped proxy on the same address.
    pub async fn restart_proxy(&mut self) {
        let config = proxy_config(self.dir.path(), self.proxy_addr, &[(AKID_A, SECRET_A)]);
        let real = open_backends(&config).unwrap();
        self.proxy = Some(start_proxy(&config, &self.faulty, &real["embedded"]).await);
    }

    /// Applies these credentials to the running proxy (SIGHUP-style reload).
    pub fn proxy_credentials(&self, creds: &[(&str, &str)]) {
        let config = proxy_config(self.dir.path(), self.proxy_addr, creds);
        self.proxy.as_ref().unwrap().reload(&config).unwrap();
    }

    pub fn admin(&self, action: Action) {
        admin::run(&admin_target(self.dir.path()), action).unwrap();
    }

    pub fn credential(akid: &str, secret: &str) -> XksProxyAuthenticationCredentialType {
        XksProxyAuthenticationCredentialType::builder()
            .access_key_id(akid)
            .raw_secret_access_key(secret)
            .build()
            .unwrap()
    }

    /// A CreateCustomKeyStore request for the proxy at `path` (see StoreSpec).
    pub fn spec(&self, name: &str, path: &str) -> StoreSpec {
        StoreSpec {
            name: name.to_owned(),
            endpoint: self.endpoint(),
            path: path.to_owned(),
            connectivity: XksProxyConnectivityType::PublicEndpoint,
            credential: (AKID_A, SECRET_A),
        }
    }

    /// CreateCustomKeyStore for the proxy at `path` with credential A.
    pub async fn create_store(&self, name: &str, path: &str) -> String {
        self.spec(name, path).create(&self.sdk).await.unwrap()
    }

    /// The AWS error code CreateCustomKeyStore fails with for `spec`.
    pub async fn create_store_error(&self, spec: StoreSpec) -> String {
        code(spec.create(&self.sdk).await.unwrap_err())
    }

    /// UpdateCustomKeyStore of `id`, to be completed and sent.
    pub fn update_store(
        &self,
        id: &str,
    ) -> aws_sdk_kms::operation::update_custom_key_store::builders::UpdateCustomKeyStoreFluentBuilder
    {
        self.sdk.update_custom_key_store().custom_key_store_id(id)
    }

    /// DisconnectCustomKeyStore, which must succeed.
    pub async fn disconnect(&self, id: &str) {
        self.sdk
            .disconnect_custom_key_store()
            .custom_key_store_id(id)
            .send()
            .await
            .unwrap();
    }

    /// (ConnectionState, ConnectionErrorCode) as DescribeCustomKeyStores shows.
    pub async fn state(&self, id: &str) -> (String, Option<String>) {
        state_of(&self.sdk, id).await
    }

    /// Waits until the state is not CONNECTING and returns it.
    pub async fn settled_state(&self, id: &str) -> (String, Option<String>) {
        settled_state_of(&self.sdk, id).await
    }

    pub async fn connect(&self, id: &str) -> (String, Option<String>) {
        self.sdk
            .connect_custom_key_store()
            .custom_key_store_id(id)
            .send()
            .await
            .unwrap();
        self.settled_state(id).await
    }

    /// A connected store at PATH_MAIN and a KMS key on `external_key`.
    pub async fn connected_key(&self, store_name: &str, external_key: &str) -> (String, String) {
        let id = self.create_store(store_name, PATH_MAIN).await;
        assert_eq!(self.connect(&id).await, ("CONNECTED".into(), None));
        let key = self.create_key(&id, external_key).await;
        (id, key)
    }

    pub async fn create_key(&self, store_id: &str, external_key: &str) -> String {
        xks_key_request(&self.sdk, store_id, external_key)
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .arn()
            .unwrap()
            .to_owned()
    }
}

async fn start_proxy(config: &Config, faulty: &Arc<Faulty>, real: &BackendHandle) -> ProxyHandle {
    let backend: Arc<dyn KeyManager> = faulty.clone();
    let backends = HashMap::from([(
        "embedded".to_owned(),
        BackendHandle {
            health: xks_proxy::health::HealthMonitor::new(Arc::clone(&backend)),
            backend,
            config: real.config.clone(),
        },
    )]);
    xks_proxy::start_with_backends(config, backends)
        .await
        .unwrap()
}

/// An external key store as CreateCustomKeyStore describes it; `Env::spec`
/// gives the usual one (the test proxy, credential A, public endpoint).
pub struct StoreSpec {
    pub name: String,
    pub endpoint: String,
    pub path: String,
    pub connectivity: XksProxyConnectivityType,
    pub credential: (&'static str, &'static str),
}

impl StoreSpec {
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    pub fn connectivity(mut self, connectivity: XksProxyConnectivityType) -> Self {
        self.connectivity = connectivity;
        self
    }

    pub fn credential(mut self, akid: &'static str, secret: &'static str) -> Self {
        self.credential = (akid, secret);
        self
    }

    /// Sends CreateCustomKeyStore through `c`; the new store's id.
    pub async fn create(
        &self,
        c: &aws_sdk_kms::Client,
    ) -> Result<String, aws_sdk_kms::error::SdkError<CreateCustomKeyStoreError>> {
        let out = c
            .create_custom_key_store()
            .custom_key_store_name(&self.name)
            .custom_key_store_type(aws_sdk_kms::types::CustomKeyStoreType::ExternalKeyStore)
            .xks_proxy_uri_endpoint(&self.endpoint)
            .xks_proxy_uri_path(&self.path)
            .xks_proxy_connectivity(self.connectivity.clone())
            .xks_proxy_authentication_credential(Env::credential(
                self.credential.0,
                self.credential.1,
            ))
            .send()
            .await?;
        Ok(out.custom_key_store_id().unwrap().to_owned())
    }
}

/// CreateKey of an EXTERNAL_KEY_STORE key in `store_id` on `external_key`,
/// to be completed and sent.
pub fn xks_key_request(
    c: &aws_sdk_kms::Client,
    store_id: &str,
    external_key: &str,
) -> aws_sdk_kms::operation::create_key::builders::CreateKeyFluentBuilder {
    c.create_key()
        .origin(aws_sdk_kms::types::OriginType::ExternalKeyStore)
        .custom_key_store_id(store_id)
        .xks_key_id(external_key)
}

/// (ConnectionState, ConnectionErrorCode) of `id` as `c` describes it.
pub async fn state_of(c: &aws_sdk_kms::Client, id: &str) -> (String, Option<String>) {
    let out = c
        .describe_custom_key_stores()
        .custom_key_store_id(id)
        .send()
        .await
        .unwrap();
    let s = &out.custom_key_stores()[0];
    (
        s.connection_state().unwrap().as_str().to_owned(),
        s.connection_error_code().map(|c| c.as_str().to_owned()),
    )
}

/// Waits until `c` sees `id` not CONNECTING and returns the state.
pub async fn settled_state_of(c: &aws_sdk_kms::Client, id: &str) -> (String, Option<String>) {
    for _ in 0..300 {
        let s = state_of(c, id).await;
        if s.0 != "CONNECTING" {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{id} stays CONNECTING");
}

/// Asserts that sending the request `$req` fails with the AWS error code
/// `$code` (`#[macro_use] mod xks_env;`).
#[allow(unused_macros)]
macro_rules! assert_fails {
    ($req:expr, $code:expr $(,)?) => {
        assert_eq!($crate::xks_env::code($req.send().await.unwrap_err()), $code)
    };
}

/// An aws-sdk-kms client for another kms-core.
pub fn client_for(addr: SocketAddr) -> aws_sdk_kms::Client {
    common::client(addr, ACCOUNT, "anything", REGION)
}

/// An aws-sdk-kms client with these credentials.
pub fn common_client(addr: SocketAddr, ak: &str, sk: &str) -> aws_sdk_kms::Client {
    common::client(addr, ak, sk, REGION)
}

impl Env {
    /// DescribeCustomKeyStores as raw JSON (curl; development-mode auth
    /// accepts any well-formed signature), to see members the SDK drops.
    pub fn raw_describe(&self) -> serde_json::Value {
        let out = std::process::Command::new("curl")
            .args(["-s", "-X", "POST"])
            .args(["-H", "Content-Type: application/x-amz-json-1.1"])
            .args(["-H", "X-Amz-Target: TrentService.DescribeCustomKeyStores"])
            .args(["-H", &format!("Authorization: AWS4-HMAC-SHA256 Credential={ACCOUNT}/20240101/{REGION}/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000")])
            .args(["-H", "X-Amz-Date: 20240101T000000Z"])
            .args(["--data-binary", "{}", &format!("http://{}/", self.kms.addr)])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

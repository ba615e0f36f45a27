//! The KMIP backend: keys live in a KMIP 1.4 key manager (Thales
//! CipherTrust, Entrust KeyControl, Fortanix, Vault Enterprise, PyKMIP...)
//! and never leave it. The proxy talks to it through our own client (the
//! `kmip` crate): TLS with a client certificate, a connection pool, bounded
//! deadlines.
//!
//! - An XKS `externalKeyId` is the KMIP **Name** of the key; Locate finds
//!   its Unique Identifier (cached: a Name → UID binding is stable, and a
//!   stale one shows up as Item Not Found, which drops it).
//! - Metadata comes from Get Attributes: Object Type, Cryptographic
//!   Algorithm and Length (must be a 256-bit AES symmetric key, or the key
//!   is refused with InvalidStateException rather than reported as
//!   something it is not), Cryptographic Usage Mask (Encrypt / Decrypt bits
//!   → keyUsage) and State (only Active is ENABLED). Attributes are cached
//!   for `cache_ttl_ms`; whatever the cache says, the server enforces state
//!   and usage on every Encrypt/Decrypt, and a refusal drops the entry.
//! - Encrypt/Decrypt are KMIP Encrypt/Decrypt with AES-GCM, a 12-byte IV
//!   made by the proxy (OS randomness), the proxy's AAD as Authenticated
//!   Encryption Additional Data and a 16-byte tag (KMIP 1.4).
//! - Result reasons map to XKS errors in [`KmipKeyManager::map_error`].

use super::{BackendError, HealthStatus, InstanceHealth, KeyInfo, KeyManager, KeyUsage, Sealed};
use anyhow::{bail, Context};
use async_trait::async_trait;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use kmip::spec::{usage, CryptographicAlgorithm, ObjectType, ResultReason, State};
use kmip::{
    Client, ClientSettings, Error as KmipError, KeyAttributes, ProtocolVersion, TlsIdentity,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use xks_wire::ExternalKeyId;
use zeroize::Zeroizing;

/// `[backends.<name>]` with `type = "kmip"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmipConfig {
    /// `host:port` of the KMIP server (5696 is KMIP's registered port).
    pub server: String,
    /// Name the server certificate must carry; defaults to the host of `server`.
    pub server_name: Option<String>,
    /// CA certificate(s) that signed the server's certificate (PEM).
    pub ca_file: PathBuf,
    /// The proxy's client certificate chain (PEM).
    pub client_cert_file: PathBuf,
    /// Its private key (PEM, PKCS#8 / SEC1 / PKCS#1).
    pub client_key_file: PathBuf,
    /// The Name of an Active AES-256 key with Encrypt and Decrypt usage,
    /// used only by the deep health check.
    pub health_key: String,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// Budget of one KMIP call (pool wait + connect + exchange).
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    /// Most connections to the server (= most KMIP requests in flight).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Idle pooled connections older than this are not reused.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_ms: u64,
    /// Ask the server with Discover Versions (otherwise assume KMIP 1.4).
    #[serde(default = "yes")]
    pub discover_versions: bool,
    /// How long key attributes (state, usage) are cached; 0 = ask every time.
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl_ms: u64,
    /// Result reasons the server uses on Decrypt for an authentication tag
    /// that does not verify. KMIP says Cryptographic Failure; PyKMIP answers
    /// General Failure (add "general_failure" for it).
    #[serde(default = "default_tag_mismatch")]
    pub tag_mismatch_reasons: Vec<TagMismatchReason>,
    /// `ekmVendor` in GetHealthStatus.
    #[serde(default = "default_vendor")]
    pub vendor: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagMismatchReason {
    CryptographicFailure,
    GeneralFailure,
}

impl TagMismatchReason {
    fn reason(self) -> ResultReason {
        match self {
            TagMismatchReason::CryptographicFailure => ResultReason::CryptographicFailure,
            TagMismatchReason::GeneralFailure => ResultReason::GeneralFailure,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_connect_timeout() -> u64 {
    1000
}
fn default_request_timeout() -> u64 {
    2000
}
fn default_pool_size() -> usize {
    16
}
fn default_idle_timeout() -> u64 {
    5000
}
fn default_cache_ttl() -> u64 {
    1000
}
fn default_tag_mismatch() -> Vec<TagMismatchReason> {
    vec![TagMismatchReason::CryptographicFailure]
}
fn default_vendor() -> String {
    "KMIP key manager".into()
}

impl KmipConfig {
    /// Makes relative paths relative to the configuration file.
    pub fn resolve_paths(&mut self, fix: impl Fn(&mut PathBuf)) {
        fix(&mut self.ca_file);
        fix(&mut self.client_cert_file);
        fix(&mut self.client_key_file);
    }

    fn host(&self) -> Option<&str> {
        let (host, port) = self.server.rsplit_once(':')?;
        port.parse::<u16>().ok().filter(|p| *p != 0)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        (!host.is_empty()).then_some(host)
    }

    fn tls_name(&self) -> Option<String> {
        self.server_name
            .clone()
            .or_else(|| self.host().map(str::to_owned))
    }

    /// Checks what can be checked without the network or files.
    pub fn validate(&self, name: &str) -> anyhow::Result<()> {
        let at = format!("[backends.{name}]");
        if self.host().is_none() {
            bail!(
                "{at} server {:?} must be HOST:PORT (e.g. \"kmip.example.com:5696\")",
                self.server
            );
        }
        if let Some(n) = self.tls_name() {
            if rustls::pki_types::ServerName::try_from(n.clone()).is_err() {
                bail!("{at} server_name {n:?} is not a valid DNS name or IP address");
            }
        }
        for (what, v) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
        ] {
            if v == 0 {
                bail!("{at} {what} must be positive");
            }
        }
        if !(1..=1024).contains(&self.pool_size) {
            bail!("{at} pool_size must be between 1 and 1024");
        }
        if self.cache_ttl_ms > 60_000 {
            bail!("{at} cache_ttl_ms must be at most 60000 (a disabled key must show within a minute)");
        }
        if self.health_key.is_empty() {
            bail!("{at} health_key must name a KMIP key (an Active AES-256 key used only for health checks)");
        }
        if self.tag_mismatch_reasons.is_empty() {
            bail!("{at} tag_mismatch_reasons must not be empty (KMIP servers use \"cryptographic_failure\")");
        }
        Ok(())
    }
}

struct Cached {
    uid: Arc<str>,
    info: Option<(KeyInfo, Instant)>,
}

/// A KMIP key manager.
pub struct KmipKeyManager {
    client: Client,
    vendor: String,
    health_key: String,
    cache_ttl: Duration,
    tag_mismatch: Vec<ResultReason>,
    cache: RwLock<HashMap<String, Cached>>,
    rng: SystemRandom,
}

/// Which backend call failed (for the error mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Lookup,
    Encrypt,
    Decrypt,
}

impl KmipKeyManager {
    /// Builds the client (reads the certificate files); connects on demand.
    pub fn open(cfg: &KmipConfig) -> anyhow::Result<Arc<dyn KeyManager>> {
        Ok(Arc::new(Self::new(cfg)?))
    }

    pub fn new(cfg: &KmipConfig) -> anyhow::Result<KmipKeyManager> {
        let tls =
            TlsIdentity::from_files(&cfg.ca_file, &cfg.client_cert_file, &cfg.client_key_file)?;
        let name = cfg
            .tls_name()
            .with_context(|| format!("server {:?} has no host", cfg.server))?;
        let mut settings = ClientSettings::new(&cfg.server, &name, tls);
        settings.connect_timeout = Duration::from_millis(cfg.connect_timeout_ms);
        settings.request_timeout = Duration::from_millis(cfg.request_timeout_ms);
        settings.pool_size = cfg.pool_size;
        settings.idle_timeout = Duration::from_millis(cfg.idle_timeout_ms);
        settings.negotiate = cfg.discover_versions;
        settings.versions = vec![ProtocolVersion::V1_4];
        let client = Client::new(settings).context("KMIP client")?;
        Ok(KmipKeyManager {
            client,
            vendor: cfg.vendor.clone(),
            health_key: cfg.health_key.clone(),
            cache_ttl: Duration::from_millis(cfg.cache_ttl_ms),
            tag_mismatch: cfg
                .tag_mismatch_reasons
                .iter()
                .map(|r| r.reason())
                .collect(),
            cache: RwLock::new(HashMap::new()),
            rng: SystemRandom::new(),
        })
    }

    fn forget(&self, key: &str) {
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    fn cached(&self, key: &str) -> (Option<Arc<str>>, Option<KeyInfo>) {
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        match cache.get(key) {
            None => (None, None),
            Some(c) => (
                Some(Arc::clone(&c.uid)),
                c.info
                    .as_ref()
                    .filter(|(_, at)| at.elapsed() < self.cache_ttl)
                    .map(|(i, _)| i.clone()),
            ),
        }
    }

    /// Maps a KMIP failure to the XKS error the caller sees.
    fn map_error(&self, key: &str, call: Call, e: KmipError) -> BackendError {
        let detail = e.to_string();
        match e {
            KmipError::Timeout(_) => BackendError::Timeout,
            KmipError::Unreachable(m) | KmipError::Io(m) => BackendError::Unavailable(m),
            KmipError::Failed { reason, .. } => match reason {
                Some(ResultReason::ItemNotFound) => {
                    self.forget(key);
                    BackendError::KeyNotFound
                }
                // Wrong state (not Active), usage mask without the bit,
                // access refused, archived: the key is not usable now.
                Some(
                    ResultReason::PermissionDenied
                    | ResultReason::IllegalOperation
                    | ResultReason::ObjectArchived,
                ) => {
                    self.forget(key);
                    BackendError::InvalidState(detail)
                }
                Some(r) if call == Call::Decrypt && self.tag_mismatch.contains(&r) => {
                    BackendError::InvalidCiphertext("authentication failed")
                }
                _ => BackendError::Internal(detail),
            },
            KmipError::Config(_) | KmipError::Malformed(_) | KmipError::NoCommonVersion { .. } => {
                BackendError::Internal(detail)
            }
        }
    }

    /// The key's UID: cached, or found by Locate on its Name.
    async fn uid(&self, key: &str) -> Result<Arc<str>, BackendError> {
        if let (Some(uid), _) = self.cached(key) {
            return Ok(uid);
        }
        let found = self
            .client
            .locate_by_name(key)
            .await
            .map_err(|e| self.map_error(key, Call::Lookup, e))?;
        match found.as_slice() {
            [] => Err(BackendError::KeyNotFound),
            [one] => {
                let uid: Arc<str> = Arc::from(one.as_str());
                self.cache
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(
                        key.to_owned(),
                        Cached {
                            uid: Arc::clone(&uid),
                            info: None,
                        },
                    );
                Ok(uid)
            }
            _ => Err(BackendError::Internal(format!(
                "several KMIP objects are named {key:?}; names of XKS keys must be unique"
            ))),
        }
    }

    async fn lookup(&self, key: &str) -> Result<KeyInfo, BackendError> {
        if let (_, Some(info)) = self.cached(key) {
            return Ok(info);
        }
        let uid = self.uid(key).await?;
        let attrs = match self.client.key_attributes(&uid).await {
            Ok(a) => a,
            // A cached UID of a destroyed key: look the name up afresh once.
            Err(e) if e.reason() == Some(ResultReason::ItemNotFound) => {
                self.forget(key);
                let uid = self.uid(key).await?;
                self.client
                    .key_attributes(&uid)
                    .await
                    .map_err(|e| self.map_error(key, Call::Lookup, e))?
            }
            Err(e) => return Err(self.map_error(key, Call::Lookup, e)),
        };
        let info = key_info(&attrs)?;
        if let Some(c) = self
            .cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(key)
        {
            c.info = Some((info.clone(), Instant::now()));
        }
        Ok(info)
    }

    async fn seal(&self, key: &str, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, BackendError> {
        let uid = self.uid(key).await?;
        let mut iv = vec![0u8; 12];
        self.rng
            .fill(&mut iv)
            .map_err(|_| BackendError::Internal("no randomness for the IV".into()))?;
        let (ciphertext, tag) = self
            .client
            .encrypt_gcm(&uid, plaintext, &iv, aad)
            .await
            .map_err(|e| self.map_error(key, Call::Encrypt, e))?;
        if ciphertext.len() != plaintext.len() {
            return Err(BackendError::Internal(format!(
                "KMIP server returned {} bytes of ciphertext for {} of plaintext",
                ciphertext.len(),
                plaintext.len()
            )));
        }
        let tag: [u8; 16] = tag.as_slice().try_into().map_err(|_| {
            BackendError::Internal(format!("KMIP server returned a {}-byte tag", tag.len()))
        })?;
        Ok(Sealed {
            ciphertext,
            iv,
            tag,
        })
    }

    async fn open_sealed(
        &self,
        key: &str,
        ciphertext: &[u8],
        iv: &[u8],
        tag: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let uid = self.uid(key).await?;
        let plaintext = self
            .client
            .decrypt_gcm(&uid, ciphertext, iv, aad, tag)
            .await
            .map_err(|e| self.map_error(key, Call::Decrypt, e))?;
        if plaintext.len() != ciphertext.len() {
            return Err(BackendError::Internal(format!(
                "KMIP server returned {} bytes of plaintext for {} of ciphertext",
                plaintext.len(),
                ciphertext.len()
            )));
        }
        Ok(plaintext)
    }

    async fn health_check(&self) -> Result<(), BackendError> {
        let mut probe = [0u8; 32];
        self.rng
            .fill(&mut probe)
            .map_err(|_| BackendError::Internal("no randomness".into()))?;
        let aad = b"xks-proxy KMIP health check";
        let sealed = self.seal(&self.health_key, &probe, aad).await?;
        let back = self
            .open_sealed(
                &self.health_key,
                &sealed.ciphertext,
                &sealed.iv,
                &sealed.tag,
                aad,
            )
            .await?;
        if back.as_slice() != probe {
            return Err(BackendError::Internal(
                "health check decrypted to other bytes".into(),
            ));
        }
        Ok(())
    }
}

/// keySpec / keyUsage / keyStatus from real attributes.
fn key_info(a: &KeyAttributes) -> Result<KeyInfo, BackendError> {
    let aes256 = a.object_type == Some(ObjectType::SymmetricKey)
        && a.algorithm == Some(CryptographicAlgorithm::Aes)
        && a.length == Some(256);
    if !aes256 {
        return Err(BackendError::InvalidState(format!(
            "not an AES-256 symmetric key (object type {:?}, algorithm {:?}, length {:?})",
            a.object_type, a.algorithm, a.length
        )));
    }
    let mask = a.usage_mask.unwrap_or(0);
    Ok(KeyInfo {
        enabled: a.state == Some(State::Active),
        usage: KeyUsage {
            encrypt: mask & usage::ENCRYPT != 0,
            decrypt: mask & usage::DECRYPT != 0,
        },
        current_version: Vec::new(),
    })
}

#[async_trait]
impl KeyManager for KmipKeyManager {
    fn vendor(&self) -> &str {
        &self.vendor
    }

    fn pool_usage(&self) -> Option<crate::backend::PoolUsage> {
        let (size, in_use) = self.client.pool_usage();
        Some(crate::backend::PoolUsage {
            size,
            in_use,
            waiting: 0,
        })
    }

    async fn key_info(&self, key: &ExternalKeyId) -> Result<KeyInfo, BackendError> {
        self.lookup(key.as_str()).await
    }

    async fn encrypt(
        &self,
        key: &ExternalKeyId,
        version: &[u8],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Sealed, BackendError> {
        if !version.is_empty() {
            return Err(BackendError::Internal(
                "KMIP keys have no material versions".into(),
            ));
        }
        self.seal(key.as_str(), plaintext, aad).await
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
        if !version.is_empty() {
            return Err(BackendError::InvalidCiphertext(
                "unknown key material version",
            ));
        }
        self.open_sealed(key.as_str(), ciphertext, iv, tag, aad)
            .await
    }

    async fn health(&self) -> Vec<InstanceHealth> {
        let result = self.health_check().await;
        let model = match self.client.negotiated_version() {
            Some(v) => format!("KMIP {v} server"),
            None => "KMIP server".into(),
        };
        vec![InstanceHealth::from_check(
            self.client.address().to_owned(),
            model,
            result,
            |e| match e {
                BackendError::Timeout | BackendError::Unavailable(_) => HealthStatus::Unavailable,
                _ => HealthStatus::Degraded,
            },
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> KmipConfig {
        toml::from_str(
            r#"
server = "kmip.example.com:5696"
ca_file = "ca.pem"
client_cert_file = "client.pem"
client_key_file = "client.key"
health_key = "xks-health"
"#,
        )
        .unwrap()
    }

    #[test]
    fn defaults_and_validation() {
        let c = cfg();
        c.validate("k").unwrap();
        assert_eq!(c.pool_size, 16);
        assert_eq!(c.tls_name().as_deref(), Some("kmip.example.com"));
        assert_eq!(
            c.tag_mismatch_reasons,
            vec![TagMismatchReason::CryptographicFailure]
        );

        let bad = |f: &dyn Fn(&mut KmipConfig), needle: &str| {
            let mut c = cfg();
            f(&mut c);
            let e = c.validate("k").unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
            assert!(e.contains("[backends.k]"), "{e}");
        };
        bad(&|c| c.server = "kmip.example.com".into(), "HOST:PORT");
        bad(&|c| c.server = "kmip.example.com:0".into(), "HOST:PORT");
        bad(&|c| c.server = ":5696".into(), "HOST:PORT");
        bad(
            &|c| c.server_name = Some("not a name!".into()),
            "server_name",
        );
        bad(&|c| c.request_timeout_ms = 0, "request_timeout_ms");
        bad(&|c| c.pool_size = 0, "pool_size");
        bad(&|c| c.cache_ttl_ms = 120_000, "cache_ttl_ms");
        bad(&|c| c.health_key.clear(), "health_key");
        bad(&|c| c.tag_mismatch_reasons.clear(), "tag_mismatch_reasons");

        let mut c = cfg();
        c.server = "[::1]:5696".into();
        c.validate("k").unwrap();
        assert_eq!(c.tls_name().as_deref(), Some("::1"));

        // Unknown keys and reasons are refused by the parser.
        assert!(toml::from_str::<KmipConfig>("server = \"a:1\"\nbogus = 1").is_err());
        assert!(toml::from_str::<TagMismatchReason>("\"bad_tag\"").is_err());
    }

    #[test]
    fn whole_configuration_with_a_kmip_backend() {
        use crate::config::{BackendConfig, Config};
        let text = |server: &str| {
            format!(
                r#"
[server]
listen = "127.0.0.1:0"
plain_http = true

[backends.hsm]
type = "kmip"
server = "{server}"
ca_file = "kmip/ca.pem"
client_cert_file = "kmip/client.pem"
client_key_file = "/etc/xks/client.key"
health_key = "xks-health"
tag_mismatch_reasons = ["cryptographic_failure", "general_failure"]

[[key_stores]]
name = "a"
uri_path = "/a/kms/xks/v1"
region = "us-east-1"
backend = "hsm"
[[key_stores.credentials]]
access_key_id = "AKIAXKSCONFORMANCEAAAA22"
secret_access_key = "Xk5CoNfOrMaNcEsEcReTaAaAaAaAaAaAaAaAaAaAaAa="
"#
            )
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy.toml");
        std::fs::write(&path, text("kmip.example.com:5696")).unwrap();
        let cfg = Config::load(&path).unwrap();
        let BackendConfig::Kmip(k) = &cfg.backends["hsm"] else {
            panic!("not kmip")
        };
        // Relative paths are relative to the configuration file.
        assert_eq!(k.ca_file, dir.path().join("kmip/ca.pem"));
        assert_eq!(k.client_key_file, PathBuf::from("/etc/xks/client.key"));
        assert_eq!(k.tag_mismatch_reasons.len(), 2);
        // Mistakes are reported with the backend they belong to.
        std::fs::write(&path, text("kmip.example.com")).unwrap();
        let e = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(e.contains("[backends.hsm] server"), "{e}");
        std::fs::write(
            &path,
            text("kmip.example.com:5696").replace("health_key", "helth_key"),
        )
        .unwrap();
        assert!(Config::load(&path).is_err());
        // Missing certificate files are reported when the backend opens.
        std::fs::write(&path, text("kmip.example.com:5696")).unwrap();
        let cfg = Config::load(&path).unwrap();
        let e = format!("{:#}", crate::keystore::open_backends(&cfg).err().unwrap());
        assert!(
            e.contains("opening backend \"hsm\"") && e.contains("ca.pem"),
            "{e}"
        );
    }

    #[test]
    fn metadata_comes_from_attributes() {
        let a = |state, mask, len| KeyAttributes {
            object_type: Some(ObjectType::SymmetricKey),
            algorithm: Some(CryptographicAlgorithm::Aes),
            length: Some(len),
            usage_mask: Some(mask),
            state: Some(state),
        };
        let i = key_info(&a(State::Active, 12, 256)).unwrap();
        assert!(i.enabled);
        assert_eq!(i.usage, KeyUsage::BOTH);
        let i = key_info(&a(State::Active, usage::ENCRYPT, 256)).unwrap();
        assert_eq!(
            i.usage,
            KeyUsage {
                encrypt: true,
                decrypt: false
            }
        );
        let i = key_info(&a(State::Active, usage::WRAP_KEY, 256)).unwrap();
        assert_eq!(
            i.usage,
            KeyUsage {
                encrypt: false,
                decrypt: false
            }
        );
        for s in [State::PreActive, State::Deactivated, State::Compromised] {
            assert!(!key_info(&a(s, 12, 256)).unwrap().enabled, "{s:?}");
        }
        assert!(matches!(
            key_info(&a(State::Active, 12, 128)),
            Err(BackendError::InvalidState(_))
        ));
        let mut rsa = a(State::Active, 12, 256);
        rsa.algorithm = Some(CryptographicAlgorithm::Rsa);
        assert!(key_info(&rsa).is_err());
    }
}

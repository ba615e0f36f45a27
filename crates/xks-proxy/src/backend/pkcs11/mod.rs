//! PKCS#11 HSMs as key managers (Thales Luna, Entrust nShield, Utimaco,
//! AWS CloudHSM, SoftHSM...) through the `cryptoki` crate. All `unsafe`
//! stays inside cryptoki; this module is safe Rust.
//!
//! - [`config`]: the `type = "pkcs11"` backend settings.
//! - [`module`]: one loaded library per path, re-initialisation after
//!   device errors, CKR → XKS error mapping.
//! - [`pool`]: sessions, login, bounded waits, retry after recovery.
//! - [`gcm`]: the IV modes HSMs use, as pure functions.
//! - [`provision`]: token and key creation (tests and operators).
//!
//! Keys are CKO_SECRET_KEY objects of type CKK_AES with CKA_VALUE_LEN 32,
//! found by CKA_LABEL (or CKA_ID). Their usage comes from CKA_ENCRYPT and
//! CKA_DECRYPT as the token reports them, their status from those
//! attributes or an allow-list. Handles and attributes are cached for
//! `key_cache_ms`; the hot path then costs one C_Encrypt/C_Decrypt.

pub mod config;
pub mod gcm;
pub mod module;
pub mod pool;
pub mod provision;

use super::{BackendError, HealthStatus, InstanceHealth, KeyInfo, KeyManager, KeyUsage, Sealed};
use async_trait::async_trait;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use config::{IvMode, KeyLookup, KeyStatusSource, Pkcs11Config};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use gcm::TAG_BITS;
use module::{classify, Fault, Module, Op};
use pool::{PoolSettings, Token};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};
use xks_wire::ExternalKeyId;
use zeroize::Zeroizing;

const HEALTH_SESSION_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct CachedKey {
    generation: u64,
    handle: ObjectHandle,
    info: KeyInfo,
    at: Instant,
}

struct Inner {
    token: Token,
    lookup: KeyLookup,
    status: KeyStatusSource,
    enabled: HashSet<String>,
    iv_mode: IvMode,
    iv_len: usize,
    health_key_label: String,
    cache_ttl: Duration,
    cache: RwLock<HashMap<String, CachedKey>>,
}

/// A PKCS#11 token behind the proxy.
pub struct Pkcs11KeyManager {
    inner: Arc<Inner>,
    vendor: String,
    instance_id: String,
    model: String,
}

/// A secret key object's attributes, as the token reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAttributes {
    pub aes: bool,
    pub value_len: Option<usize>,
    pub encrypt: bool,
    pub decrypt: bool,
}

impl KeyAttributes {
    fn read(s: &Session, h: ObjectHandle) -> Result<KeyAttributes, Fault> {
        let attrs = s
            .get_attributes(
                h,
                &[
                    AttributeType::KeyType,
                    AttributeType::ValueLen,
                    AttributeType::Encrypt,
                    AttributeType::Decrypt,
                ],
            )
            .map_err(|e| classify(Op::Find, &e))?;
        let mut out = KeyAttributes {
            aes: false,
            value_len: None,
            encrypt: false,
            decrypt: false,
        };
        for a in attrs {
            match a {
                Attribute::KeyType(t) => out.aes = t == KeyType::AES,
                Attribute::ValueLen(l) => out.value_len = Some(usize::from(l)),
                Attribute::Encrypt(b) => out.encrypt = b,
                Attribute::Decrypt(b) => out.decrypt = b,
                _ => {}
            }
        }
        Ok(out)
    }

    /// Only AES-256 keys are XKS keys.
    fn check_aes_256(&self) -> Result<(), String> {
        if !self.aes {
            return Err("is not a CKK_AES key".into());
        }
        match self.value_len {
            Some(32) => Ok(()),
            Some(n) => Err(format!("has CKA_VALUE_LEN {n}, not 32 (AES-256)")),
            None => Err("does not report CKA_VALUE_LEN".into()),
        }
    }
}

/// The XKS view of a key: usage from CKA_ENCRYPT/CKA_DECRYPT, status from
/// the configured source. Pure, for unit tests.
pub fn key_info(attrs: &KeyAttributes, status: KeyStatusSource, listed: bool) -> KeyInfo {
    let enabled = match status {
        KeyStatusSource::Attributes => attrs.encrypt || attrs.decrypt,
        KeyStatusSource::AllowList => listed,
    };
    KeyInfo {
        enabled,
        usage: KeyUsage {
            encrypt: attrs.encrypt,
            decrypt: attrs.decrypt,
        },
        // HSM keys have no material versions of ours.
        current_version: Vec::new(),
    }
}

fn find_one(s: &Session, by: Attribute, what: &str) -> Result<ObjectHandle, Fault> {
    let template = [Attribute::Class(ObjectClass::SECRET_KEY), by];
    let found = s
        .find_objects(&template)
        .map_err(|e| classify(Op::Find, &e))?;
    match found.as_slice() {
        [h] => Ok(*h),
        [] => Err(Fault::Request(BackendError::KeyNotFound)),
        more => Err(Fault::Request(BackendError::Internal(format!(
            "{} secret keys match {what}; a key id must name exactly one object",
            more.len()
        )))),
    }
}

impl Inner {
    fn find(&self, s: &Session, generation: u64, key: &str) -> Result<CachedKey, Fault> {
        if self.lookup == KeyLookup::Label && key == self.health_key_label {
            // The health key is the health check's alone.
            return Err(Fault::Request(BackendError::KeyNotFound));
        }
        let id = self
            .lookup
            .object_id(key)
            .map_err(|_| Fault::Request(BackendError::KeyNotFound))?;
        let by = match self.lookup {
            KeyLookup::Label => Attribute::Label(id),
            KeyLookup::Id | KeyLookup::IdHex => Attribute::Id(id),
        };
        let handle = find_one(s, by, &format!("key id {key:?}"))?;
        let attrs = KeyAttributes::read(s, handle)?;
        if let Err(why) = attrs.check_aes_256() {
            tracing::warn!(token = %self.token.label, key, "PKCS#11 object {why}; not served as an XKS key");
            return Err(Fault::Request(BackendError::KeyNotFound));
        }
        let info = key_info(&attrs, self.status, self.enabled.contains(key));
        let entry = CachedKey {
            generation,
            handle,
            info,
            at: Instant::now(),
        };
        self.cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), entry.clone());
        Ok(entry)
    }

    fn cached(&self, key: &str) -> Option<CachedKey> {
        self.cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    fn forget(&self, key: &str) {
        self.cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// Runs `op` with the key's handle; a stale handle (key deleted and
    /// maybe re-created) gets one fresh lookup.
    fn with_key<T>(
        &self,
        s: &Session,
        generation: u64,
        key: &str,
        mut op: impl FnMut(ObjectHandle) -> Result<T, Fault>,
    ) -> Result<T, Fault> {
        let k = match self.cached(key) {
            Some(k) if k.generation == generation => k,
            _ => self.find(s, generation, key)?,
        };
        match op(k.handle) {
            Err(Fault::Request(BackendError::KeyNotFound)) => {
                self.forget(key);
                let k = self.find(s, generation, key)?;
                op(k.handle)
            }
            r => r,
        }
    }

    fn encrypt(
        &self,
        s: &Session,
        handle: ObjectHandle,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Sealed, Fault> {
        let mut iv = vec![0u8; self.iv_len];
        match self.iv_mode {
            IvMode::ProxyOsRng => SystemRandom::new().fill(&mut iv).map_err(|_| {
                Fault::Request(BackendError::Internal("OS random generator failed".into()))
            })?,
            IvMode::ProxyHsmRng => s
                .generate_random_slice(&mut iv)
                .map_err(|e| classify(Op::Other, &e))?,
            IvMode::HsmParams | IvMode::HsmAppended => {}
        }
        let supplied = iv.clone();
        let out = {
            let params = GcmParams::new(&mut iv, aad, TAG_BITS.into())
                .map_err(|e| classify(Op::Encrypt, &e))?;
            s.encrypt(&Mechanism::AesGcm(params), handle, plaintext)
                .map_err(|e| classify(Op::Encrypt, &e))?
        };
        gcm::split_output(self.iv_mode, plaintext.len(), out, &supplied, &iv)
            .map_err(Fault::Request)
    }

    fn decrypt(
        &self,
        s: &Session,
        handle: ObjectHandle,
        input: &[u8],
        iv: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Fault> {
        let mut iv = iv.to_vec();
        let params =
            GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(|e| classify(Op::Decrypt, &e))?;
        s.decrypt(&Mechanism::AesGcm(params), handle, input)
            .map(Zeroizing::new)
            .map_err(|e| match e {
                // Some modules (SoftHSM2 among them) report a failed tag
                // check as CKR_GENERAL_ERROR or CKR_FUNCTION_FAILED. If the
                // session is still alive afterwards, the ciphertext was at
                // fault, not the device.
                CkError::Pkcs11(RvError::GeneralError | RvError::FunctionFailed, _)
                    if s.get_session_info().is_ok() =>
                {
                    tracing::debug!(error = %module::describe(&e), "C_Decrypt failed with a live session: treated as a bad tag");
                    Fault::Request(BackendError::InvalidCiphertext(
                        "authentication failed (the module reported a generic failure on a live session)",
                    ))
                }
                e => classify(Op::Decrypt, &e),
            })
    }

    fn health_round_trip(&self, s: &Session) -> Result<(), Fault> {
        let by = Attribute::Label(self.health_key_label.as_bytes().to_vec());
        let handle = find_one(s, by, "the health key label").map_err(|f| match f {
            Fault::Request(BackendError::KeyNotFound) => {
                Fault::Request(BackendError::Internal(format!(
                    "health key {:?} not found on the token",
                    self.health_key_label
                )))
            }
            other => other,
        })?;
        let attrs = KeyAttributes::read(s, handle)?;
        attrs.check_aes_256().map_err(|why| {
            Fault::Request(BackendError::Internal(format!("the health key {why}")))
        })?;
        let probe = b"xks-proxy PKCS#11 health probe";
        let sealed = self.encrypt(s, handle, probe, b"health")?;
        let input = gcm::decrypt_input(&sealed.ciphertext, &sealed.tag).map_err(Fault::Request)?;
        let plain = self.decrypt(s, handle, &input, &sealed.iv, b"health")?;
        if plain.as_slice() != probe {
            return Err(Fault::Request(BackendError::Internal(
                "health round trip returned other bytes".into(),
            )));
        }
        Ok(())
    }
}

impl Pkcs11KeyManager {
    /// Loads the module, finds the token, logs in. Fails (with the CKR
    /// name) when any of that is impossible.
    pub fn open(cfg: &Pkcs11Config) -> anyhow::Result<Arc<Self>> {
        let pin = cfg.user_pin()?;
        let module = Module::load(&cfg.module)?;
        let (token, d) = Token::open(
            module,
            &cfg.token_label,
            pin,
            PoolSettings {
                max_sessions: cfg.max_sessions,
                wait: Duration::from_millis(cfg.session_wait_ms),
                max_waiting: cfg.max_waiting,
                reinit_backoff: Duration::from_millis(cfg.reinit_backoff_ms),
            },
        )?;
        tracing::info!(module = %cfg.module.display(), token = %cfg.token_label, manufacturer = %d.manufacturer, model = %d.model, iv_mode = ?cfg.iv_mode, "PKCS#11 token ready");
        Ok(Arc::new(Pkcs11KeyManager {
            vendor: if d.manufacturer.is_empty() {
                "PKCS#11".to_owned()
            } else {
                format!("{} (PKCS#11)", d.manufacturer)
            },
            instance_id: format!("pkcs11:{}:{}", cfg.token_label, d.serial),
            model: format!("{} {}", d.manufacturer, d.model).trim().to_owned(),
            inner: Arc::new(Inner {
                token,
                lookup: cfg.key_lookup,
                status: cfg.key_status,
                enabled: cfg.enabled_keys.iter().flatten().cloned().collect(),
                iv_mode: cfg.iv_mode,
                iv_len: cfg.iv_len,
                health_key_label: cfg.health_key_label.clone(),
                cache_ttl: Duration::from_millis(cfg.key_cache_ms),
                cache: RwLock::new(HashMap::new()),
            }),
        }))
    }

    /// Runs `f` on a pooled session in a blocking thread, within the
    /// pool's bounds.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnMut(&Inner, &Session, u64) -> Result<T, Fault> + Send + 'static,
    ) -> Result<T, BackendError> {
        let permit = self.inner.token.acquire().await?;
        self.call_with(permit, f).await
    }

    async fn call_with<T: Send + 'static>(
        &self,
        permit: tokio::sync::OwnedSemaphorePermit,
        f: impl FnMut(&Inner, &Session, u64) -> Result<T, Fault> + Send + 'static,
    ) -> Result<T, BackendError> {
        let inner = Arc::clone(&self.inner);
        let mut f = f;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            inner.token.run(|s, g| f(&inner, s, g))
        })
        .await
        .map_err(|e| BackendError::Internal(format!("PKCS#11 task failed: {e}")))?
    }

    /// Test support: holds every session, as a hung HSM would.
    #[doc(hidden)]
    pub async fn occupy_all_sessions(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.inner.token.occupy_all().await
    }

    /// Test support: the shared module (to simulate a device reset).
    #[doc(hidden)]
    pub fn module(&self) -> Arc<Module> {
        Arc::clone(&self.inner.token.module)
    }
}

fn log_failure(op: &str, key: &str, e: &BackendError) {
    match e {
        BackendError::Internal(_) | BackendError::Unavailable(_) | BackendError::Timeout => {
            tracing::warn!(op, key, error = %e, "PKCS#11 operation failed")
        }
        _ => tracing::debug!(op, key, error = %e, "PKCS#11 operation refused"),
    }
}

#[async_trait]
impl KeyManager for Pkcs11KeyManager {
    fn vendor(&self) -> &str {
        &self.vendor
    }

    fn pool_usage(&self) -> Option<crate::backend::PoolUsage> {
        let (size, in_use, waiting) = self.inner.token.usage();
        Some(crate::backend::PoolUsage {
            size,
            in_use,
            waiting,
        })
    }

    async fn key_info(&self, key: &ExternalKeyId) -> Result<KeyInfo, BackendError> {
        if let Some(k) = self.inner.cached(key.as_str()) {
            if k.generation == self.inner.token.module.generation()
                && k.at.elapsed() < self.inner.cache_ttl
            {
                return Ok(k.info);
            }
        }
        let id = key.as_str().to_owned();
        let r = self
            .call(move |inner, s, g| inner.find(s, g, &id).map(|k| k.info))
            .await;
        if let Err(e) = &r {
            if *e == BackendError::KeyNotFound {
                self.inner.forget(key.as_str());
            }
            log_failure("key_info", key.as_str(), e);
        }
        r
    }

    async fn encrypt(
        &self,
        key: &ExternalKeyId,
        _version: &[u8],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Sealed, BackendError> {
        let id = key.as_str().to_owned();
        let plaintext = Zeroizing::new(plaintext.to_vec());
        let aad = aad.to_vec();
        let r = self
            .call(move |inner, s, g| {
                inner.with_key(s, g, &id, |h| inner.encrypt(s, h, &plaintext, &aad))
            })
            .await;
        if let Err(e) = &r {
            log_failure("encrypt", key.as_str(), e);
        }
        r
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
                "ciphertext metadata names a key version this key manager never issued",
            ));
        }
        let input = gcm::decrypt_input(ciphertext, tag)?;
        let id = key.as_str().to_owned();
        let iv = iv.to_vec();
        let aad = aad.to_vec();
        let r = self
            .call(move |inner, s, g| {
                inner.with_key(s, g, &id, |h| inner.decrypt(s, h, &input, &iv, &aad))
            })
            .await;
        if let Err(e) = &r {
            log_failure("decrypt", key.as_str(), e);
        }
        r
    }

    async fn health(&self) -> Vec<InstanceHealth> {
        // Off the request path: a busy pool is not an unhealthy token, so
        // the health check waits longer for a session (the health
        // monitor's own budget still bounds it).
        let r = match self.inner.token.acquire_within(HEALTH_SESSION_WAIT).await {
            Ok(permit) => {
                self.call_with(permit, |inner, s, _| inner.health_round_trip(s))
                    .await
            }
            Err(e) => Err(e),
        };
        vec![InstanceHealth::from_check(
            self.instance_id.clone(),
            self.model.clone(),
            r,
            |_| HealthStatus::Unavailable,
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_usage_come_from_attributes() {
        let a = |encrypt, decrypt| KeyAttributes {
            aes: true,
            value_len: Some(32),
            encrypt,
            decrypt,
        };
        let attr = KeyStatusSource::Attributes;
        assert!(key_info(&a(true, true), attr, false).enabled);
        let enc_only = key_info(&a(true, false), attr, false);
        assert!(enc_only.enabled);
        assert_eq!(enc_only.usage.wire_names(), vec!["ENCRYPT"]);
        let off = key_info(&a(false, false), attr, true);
        assert!(!off.enabled);
        assert!(off.usage.wire_names().is_empty());

        let list = KeyStatusSource::AllowList;
        assert!(!key_info(&a(true, true), list, false).enabled);
        let no_usage = key_info(&a(false, false), list, true);
        assert!(no_usage.enabled && no_usage.usage.wire_names().is_empty());
    }

    #[test]
    fn only_aes_256() {
        let mut a = KeyAttributes {
            aes: true,
            value_len: Some(32),
            encrypt: true,
            decrypt: true,
        };
        assert!(a.check_aes_256().is_ok());
        a.value_len = Some(16);
        assert!(a.check_aes_256().unwrap_err().contains("CKA_VALUE_LEN 16"));
        a.value_len = None;
        assert!(a.check_aes_256().is_err());
        a.value_len = Some(32);
        a.aes = false;
        assert!(a.check_aes_256().unwrap_err().contains("CKK_AES"));
    }
}

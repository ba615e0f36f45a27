//! The interface every key manager backend implements.
//!
//! The proxy core owns the XKS rules (validation, AAD binding, ciphertext
//! metadata, CDIV, authorization); a backend only looks keys up and runs
//! AES-256-GCM with the AAD it is given. That split lets an HSM that makes
//! its own IVs (PKCS#11), a remote KMIP server with a connection pool, or the
//! embedded software key manager plug in behind the same four calls.

pub mod kmip;
pub mod pkcs11;
pub mod software;

use async_trait::async_trait;
use std::fmt;
use xks_wire::ExternalKeyId;
use zeroize::Zeroizing;

/// What a key may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsage {
    pub encrypt: bool,
    pub decrypt: bool,
}

impl KeyUsage {
    pub const BOTH: KeyUsage = KeyUsage {
        encrypt: true,
        decrypt: true,
    };

    /// The spec's uppercase `keyUsage` strings.
    pub fn wire_names(self) -> Vec<String> {
        let mut out = Vec::with_capacity(2);
        if self.encrypt {
            out.push(xks_wire::key_usage::ENCRYPT.to_owned());
        }
        if self.decrypt {
            out.push(xks_wire::key_usage::DECRYPT.to_owned());
        }
        out
    }
}

/// Metadata of one key, as the backend knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub enabled: bool,
    pub usage: KeyUsage,
    /// Opaque version of the key material new encryptions use (at most
    /// [`MAX_MATERIAL_VERSION`] bytes; empty for backends without versions).
    /// It travels in `ciphertextMetadata` and comes back on decrypt.
    pub current_version: Vec<u8>,
}

/// Longest material version: ciphertextMetadata is 20 bytes and the proxy
/// spends one on its format byte.
pub const MAX_MATERIAL_VERSION: usize = xks_wire::MAX_CIPHERTEXT_METADATA - 1;

/// Output of an AES-GCM encryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub iv: Vec<u8>,
    pub tag: [u8; 16],
}

/// Health of one key manager instance (an `ekmFleetDetails` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceHealth {
    pub id: String,
    pub model: String,
    pub status: HealthStatus,
    /// Why it is not ACTIVE (for the log only).
    pub detail: Option<String>,
}

impl InstanceHealth {
    /// The health of an instance from the result of its check: ACTIVE if
    /// it passed, else the status `failed` picks, with the error as detail.
    pub fn from_check<E: fmt::Display>(
        id: String,
        model: String,
        check: Result<(), E>,
        failed: impl FnOnce(&E) -> HealthStatus,
    ) -> InstanceHealth {
        let (status, detail) = match check {
            Ok(()) => (HealthStatus::Active, None),
            Err(e) => (failed(&e), Some(e.to_string())),
        };
        InstanceHealth {
            id,
            model,
            status,
            detail,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    Active,
    Degraded,
    Unavailable,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Active => xks_wire::health_status::ACTIVE,
            HealthStatus::Degraded => xks_wire::health_status::DEGRADED,
            HealthStatus::Unavailable => xks_wire::health_status::UNAVAILABLE,
        }
    }
}

/// Failures a backend reports. Mapped to XKS errors in one place
/// (`crate::error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("key not found")]
    KeyNotFound,
    #[error("key is not usable in its current state: {0}")]
    InvalidState(String),
    #[error("key does not permit this operation")]
    InvalidKeyUsage,
    /// Authentication failed, unknown material version, wrong IV length...
    #[error("ciphertext cannot be decrypted: {0}")]
    InvalidCiphertext(&'static str),
    #[error("key manager did not answer in time")]
    Timeout,
    #[error("key manager unavailable: {0}")]
    Unavailable(String),
    #[error("key manager failure: {0}")]
    Internal(String),
}

/// A key manager behind the proxy.
#[async_trait]
pub trait KeyManager: Send + Sync + 'static {
    /// `ekmVendor` for GetHealthStatus.
    fn vendor(&self) -> &str;

    /// Looks a key up. Must be cheap (cached) for hot-path use.
    async fn key_info(&self, key: &ExternalKeyId) -> Result<KeyInfo, BackendError>;

    /// AES-256-GCM encryption under material `version` with `aad` (already
    /// bound by the proxy). The backend chooses the IV (12 bytes unless the
    /// device insists on 16).
    async fn encrypt(
        &self,
        key: &ExternalKeyId,
        version: &[u8],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Sealed, BackendError>;

    /// AES-256-GCM decryption. A tag mismatch is
    /// `BackendError::InvalidCiphertext`.
    #[allow(clippy::too_many_arguments)]
    async fn decrypt(
        &self,
        key: &ExternalKeyId,
        version: &[u8],
        ciphertext: &[u8],
        iv: &[u8],
        tag: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError>;

    /// A deep check of every instance: a real encrypt/decrypt with a
    /// dedicated health-check key, never with a customer key.
    async fn health(&self) -> Vec<InstanceHealth>;

    /// Connection or session pool use, for backends that have a pool
    /// (metrics only; must be cheap).
    fn pool_usage(&self) -> Option<PoolUsage> {
        None
    }
}

/// A backend pool's use at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUsage {
    pub size: usize,
    pub in_use: usize,
    /// Calls waiting for a slot (0 when the backend does not track it).
    pub waiting: usize,
}

impl fmt::Debug for dyn KeyManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyManager({})", self.vendor())
    }
}

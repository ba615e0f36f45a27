//! A locally held AES-256-GCM root ("master") key that wraps key material at
//! rest, shared by xks-proxy's embedded key manager and kms-core's store.
//!
//! The key is 32 random bytes, kept as Base64 either in a file (created with
//! mode 0600 on first use; refused when group/other can read it) or in an
//! environment variable. [`RootKeySource`] is the pluggable seam: an HSM or
//! another provider can hand out a [`MasterKey`] the same way later.
#![forbid(unsafe_code)]

use anyhow::{bail, Context};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where the master key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// A file holding the Base64 of 32 random bytes; created 0600 on first
    /// use when absent.
    File(PathBuf),
    /// An environment variable holding the Base64 of 32 bytes.
    Env(String),
}

/// Anything that can provide the root key, e.g. a file, an environment
/// variable or (later) an HSM.
pub trait RootKeySource: Send + Sync {
    /// Loads (creating when the source supports it) the root key.
    fn load_key(&self) -> anyhow::Result<MasterKey>;
    /// Where the key comes from, for messages (never the key itself).
    fn describe(&self) -> String;
}

impl RootKeySource for MasterKeySource {
    fn load_key(&self) -> anyhow::Result<MasterKey> {
        MasterKey::load(self)
    }

    fn describe(&self) -> String {
        match self {
            MasterKeySource::File(p) => format!("key file {}", p.display()),
            MasterKeySource::Env(v) => format!("environment variable {v}"),
        }
    }
}

/// AES-256-GCM key used only to wrap and unwrap key material.
pub struct MasterKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    pub fn load(source: &MasterKeySource) -> anyhow::Result<Self> {
        let text = match source {
            MasterKeySource::Env(var) => Zeroizing::new(
                std::env::var(var)
                    .with_context(|| format!("master key environment variable {var} is not set"))?,
            ),
            MasterKeySource::File(path) => {
                if !path.exists() {
                    create_key_file(path)?;
                }
                check_permissions(path)?;
                Zeroizing::new(
                    fs::read_to_string(path)
                        .with_context(|| format!("reading master key file {}", path.display()))?,
                )
            }
        };
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .context("master key is not valid Base64")?,
        );
        if bytes.len() != 32 {
            bail!(
                "master key must be 32 bytes (Base64 of 32 random bytes), found {}",
                bytes.len()
            );
        }
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| anyhow::anyhow!("master key has the wrong length"))?;
        Ok(MasterKey {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Wraps `material` bound to `context` (key id and version), so that a
    /// wrapped blob cannot be moved to another key or version in the store.
    pub fn wrap(&self, context: &[u8], material: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| anyhow::anyhow!("system random generator failed"))?;
        let mut buf = material.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut buf,
            )
            .map_err(|_| anyhow::anyhow!("wrapping key material failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn unwrap(&self, context: &[u8], wrapped: &[u8]) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        if wrapped.len() < NONCE_LEN + 16 {
            bail!("wrapped key material is truncated");
        }
        let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("bad nonce"))?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let len = self
            .key
            .open_in_place(nonce, Aad::from(context), &mut buf)
            .map_err(|_| anyhow::anyhow!("key material does not decrypt under this master key"))?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

fn create_key_file(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut raw = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(raw.as_mut())
        .map_err(|_| anyhow::anyhow!("system random generator failed"))?;
    let text = Zeroizing::new(STANDARD.encode(raw.as_ref()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating master key file {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    if let Some(dir) = path.parent() {
        // Make the new directory entry durable too.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    tracing::info!(path = %path.display(), "created a new master key file (mode 0600)");
    Ok(())
}

fn check_permissions(path: &Path) -> anyhow::Result<()> {
    let mode = fs::metadata(path)
        .with_context(|| format!("reading metadata of {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "master key file {} is accessible by group or others (mode {:o}); run chmod 600 on it",
            path.display(),
            mode & 0o777
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_is_created_0600_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let src = MasterKeySource::File(path.clone());
        let a = MasterKey::load(&src).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = MasterKey::load(&src).unwrap();
        let wrapped = a.wrap(b"ctx", b"material").unwrap();
        assert_eq!(&b.unwrap(b"ctx", &wrapped).unwrap()[..], b"material");
        assert!(b.unwrap(b"other", &wrapped).is_err());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(MasterKey::load(&src).is_err());
    }

    #[test]
    fn env_source_and_trait() {
        let var = "LOCAL_KEY_TEST_ENV_SOURCE";
        let src = MasterKeySource::Env(var.to_owned());
        assert!(src.load_key().is_err(), "unset variable is an error");
        std::env::set_var(var, STANDARD.encode([9u8; 32]));
        let a = src.load_key().unwrap();
        let b = MasterKey::from_bytes(&[9; 32]).unwrap();
        assert_eq!(
            &b.unwrap(b"c", &a.wrap(b"c", b"m").unwrap()).unwrap()[..],
            b"m"
        );
        std::env::set_var(var, STANDARD.encode([9u8; 16]));
        let err = src.load_key().unwrap_err().to_string();
        assert!(err.contains("32 bytes"), "{err}");
        std::env::set_var(var, "not base64!");
        assert!(src.load_key().is_err());
        std::env::remove_var(var);
        assert!(src.describe().contains(var));
        assert_eq!(format!("{a:?}"), "MasterKey(<redacted>)");
    }

    #[test]
    fn wrong_key_fails() {
        let a = MasterKey::from_bytes(&[1; 32]).unwrap();
        let b = MasterKey::from_bytes(&[2; 32]).unwrap();
        let w = a.wrap(b"c", b"m").unwrap();
        assert!(b.unwrap(b"c", &w).is_err());
        assert!(a.unwrap(b"c", &w[..10]).is_err());
    }
}

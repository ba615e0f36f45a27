//! The embedded software key manager: the default backend.
//!
//! Keys live in SQLite (see [`store`]) wrapped under a master key. At run
//! time every key version is held unwrapped inside aws-lc AES-GCM key
//! objects in an immutable map behind an `ArcSwap`, so the hot path takes no
//! lock and touches no disk. A background task watches the database and
//! swaps in a new map when the admin CLI changes something.

pub mod master;
pub mod store;

use super::{BackendError, HealthStatus, InstanceHealth, KeyInfo, KeyManager, KeyUsage, Sealed};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use master::{MasterKey, MasterKeySource};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use store::{Db, LoadedKey};
use xks_wire::ExternalKeyId;
use zeroize::Zeroizing;

/// Settings of one embedded key manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftwareSettings {
    pub data_dir: PathBuf,
    pub master_key: MasterKeySource,
    /// How often the database is checked for changes made by the admin CLI.
    pub reload_interval: Duration,
}

struct CachedKey {
    enabled: bool,
    usage: KeyUsage,
    current: u32,
    versions: HashMap<u32, LessSafeKey>,
}

type KeyMap = HashMap<String, Arc<CachedKey>>;

pub struct SoftwareKeyManager {
    keys: ArcSwap<KeyMap>,
    db: Arc<Mutex<Db>>,
    master: MasterKey,
    health_key: LessSafeKey,
    seen_version: AtomicI64,
    instance_id: String,
}

const MODEL: &str = concat!(
    "xks-proxy embedded key manager ",
    env!("CARGO_PKG_VERSION"),
    " (SQLite, AES-256-GCM)"
);

fn gcm_key(material: &[u8]) -> Result<LessSafeKey, BackendError> {
    UnboundKey::new(&AES_256_GCM, material)
        .map(LessSafeKey::new)
        .map_err(|_| BackendError::Internal("stored key material has the wrong length".into()))
}

fn build_map(loaded: Vec<LoadedKey>) -> Result<KeyMap, BackendError> {
    let mut map = HashMap::with_capacity(loaded.len());
    for key in loaded {
        let mut versions = HashMap::with_capacity(key.versions.len());
        for (v, material) in &key.versions {
            versions.insert(*v, gcm_key(material)?);
        }
        map.insert(
            key.id,
            Arc::new(CachedKey {
                enabled: key.enabled,
                usage: key.usage.usage(),
                current: key.current_version,
                versions,
            }),
        );
    }
    Ok(map)
}

fn parse_version(v: &[u8]) -> Result<u32, BackendError> {
    <[u8; 4]>::try_from(v)
        .map(u32::from_be_bytes)
        .map_err(|_| BackendError::InvalidCiphertext("unknown key material version"))
}

impl SoftwareKeyManager {
    /// Opens the store (creating it and the master key file when absent),
    /// loads every key, and starts the change watcher.
    pub fn open(settings: &SoftwareSettings) -> anyhow::Result<Arc<Self>> {
        let master = MasterKey::load(&settings.master_key)?;
        let db = Db::open(&settings.data_dir, &master)?;
        let health_material = db.health_key(&master)?;
        let health_key = gcm_key(&health_material).map_err(|e| anyhow::anyhow!("{e}"))?;
        let version = db.data_version()?;
        let map = build_map(db.load_all(&master)?).map_err(|e| anyhow::anyhow!("{e}"))?;
        let this = Arc::new(SoftwareKeyManager {
            keys: ArcSwap::from_pointee(map),
            db: Arc::new(Mutex::new(db)),
            master,
            health_key,
            seen_version: AtomicI64::new(version),
            instance_id: format!("embedded:{}", settings.data_dir.display()),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            spawn_watcher(Arc::downgrade(&this), settings.reload_interval);
        }
        Ok(this)
    }

    /// Reloads keys if another connection changed the database.
    /// Returns whether a reload happened.
    pub fn reload_if_changed(&self) -> anyhow::Result<bool> {
        let db = self
            .db
            .lock()
            .map_err(|_| anyhow::anyhow!("key store lock poisoned"))?;
        let version = db.data_version()?;
        if version == self.seen_version.load(Ordering::Acquire) {
            return Ok(false);
        }
        let map = build_map(db.load_all(&self.master)?).map_err(|e| anyhow::anyhow!("{e}"))?;
        self.keys.store(Arc::new(map));
        self.seen_version.store(version, Ordering::Release);
        Ok(true)
    }

    fn lookup(&self, key: &ExternalKeyId) -> Result<Arc<CachedKey>, BackendError> {
        self.keys
            .load()
            .get(key.as_str())
            .cloned()
            .ok_or(BackendError::KeyNotFound)
    }

    fn health_round_trip(&self) -> Result<(), String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "random generator failed".to_owned())?;
        let probe = *b"xks-proxy health probe 32 bytes!";
        let mut buf = probe.to_vec();
        self.health_key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&b"health"[..]),
                &mut buf,
            )
            .map_err(|_| "health encrypt failed".to_owned())?;
        let plain = self
            .health_key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&b"health"[..]),
                &mut buf,
            )
            .map_err(|_| "health decrypt failed".to_owned())?;
        if plain != probe {
            return Err("health round trip returned other bytes".into());
        }
        Ok(())
    }
}

fn spawn_watcher(this: Weak<SoftwareKeyManager>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(km) = this.upgrade() else { break };
            match tokio::task::spawn_blocking(move || km.reload_if_changed()).await {
                Ok(Ok(true)) => tracing::info!("embedded key store changed; keys reloaded"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "reloading the embedded key store failed"),
                Err(e) => tracing::warn!(error = %e, "key store watcher task failed"),
            }
        }
    });
}

#[async_trait]
impl KeyManager for SoftwareKeyManager {
    fn vendor(&self) -> &str {
        "xks-proxy project"
    }

    async fn key_info(&self, key: &ExternalKeyId) -> Result<KeyInfo, BackendError> {
        let k = self.lookup(key)?;
        Ok(KeyInfo {
            enabled: k.enabled,
            usage: k.usage,
            current_version: k.current.to_be_bytes().to_vec(),
        })
    }

    async fn encrypt(
        &self,
        key: &ExternalKeyId,
        version: &[u8],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Sealed, BackendError> {
        let k = self.lookup(key)?;
        let v = parse_version(version)?;
        let gcm = k
            .versions
            .get(&v)
            .ok_or(BackendError::Internal("current key version missing".into()))?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| BackendError::Internal("random generator failed".into()))?;
        let mut buf = plaintext.to_vec();
        let tag = gcm
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| BackendError::Internal("AES-GCM encryption failed".into()))?;
        let mut tag_bytes = [0u8; 16];
        tag_bytes.copy_from_slice(tag.as_ref());
        Ok(Sealed {
            ciphertext: buf,
            iv: nonce.to_vec(),
            tag: tag_bytes,
        })
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
        let k = self.lookup(key)?;
        let v = parse_version(version)?;
        let gcm = k.versions.get(&v).ok_or(BackendError::InvalidCiphertext(
            "unknown key material version",
        ))?;
        // This backend only ever issues 96-bit IVs.
        let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| {
            BackendError::InvalidCiphertext("IV length not issued by this key manager")
        })?;
        if tag.len() != 16 {
            return Err(BackendError::InvalidCiphertext(
                "authentication tag must be 16 bytes",
            ));
        }
        let mut buf = Zeroizing::new(Vec::with_capacity(ciphertext.len() + 16));
        buf.extend_from_slice(ciphertext);
        buf.extend_from_slice(tag);
        let len = gcm
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| BackendError::InvalidCiphertext("authentication failed"))?
            .len();
        buf.truncate(len);
        Ok(buf)
    }

    async fn health(&self) -> Vec<InstanceHealth> {
        // SQLite is blocking I/O: keep it off the async workers.
        let db = Arc::clone(&self.db);
        let db_check = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let db = db
                .lock()
                .map_err(|_| "key store lock poisoned".to_owned())?;
            db.count_keys().map(|_| ()).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("health task failed: {e}")));
        let result = db_check.and_then(|()| self.health_round_trip());
        vec![InstanceHealth::from_check(
            self.instance_id.clone(),
            MODEL.to_owned(),
            result,
            |_| HealthStatus::Unavailable,
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::StoredUsage;

    fn settings(dir: &std::path::Path) -> SoftwareSettings {
        SoftwareSettings {
            data_dir: dir.to_path_buf(),
            master_key: MasterKeySource::File(dir.join("master.key")),
            reload_interval: Duration::from_millis(50),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trip_rotation_and_cli_changes() {
        let dir = tempfile::tempdir().unwrap();
        let km = SoftwareKeyManager::open(&settings(dir.path())).unwrap();
        let id: ExternalKeyId = "k".parse().unwrap();
        assert_eq!(km.key_info(&id).await, Err(BackendError::KeyNotFound));

        // The admin CLI is another connection to the same database.
        let master =
            MasterKey::load(&MasterKeySource::File(dir.path().join("master.key"))).unwrap();
        let mut cli = Db::open(dir.path(), &master).unwrap();
        cli.create_key(&id, StoredUsage::EncryptDecrypt, &master)
            .unwrap();
        assert!(km.reload_if_changed().unwrap());
        let info = km.key_info(&id).await.unwrap();
        assert_eq!(info.current_version, 1u32.to_be_bytes());

        let sealed = km
            .encrypt(&id, &info.current_version, b"secret", b"aad")
            .await
            .unwrap();
        assert_eq!(sealed.ciphertext.len(), 6);
        assert_eq!(sealed.iv.len(), 12);

        cli.rotate("k", &master).unwrap();
        km.reload_if_changed().unwrap();
        let info2 = km.key_info(&id).await.unwrap();
        assert_eq!(info2.current_version, 2u32.to_be_bytes());
        // Old ciphertext still decrypts under version 1.
        let plain = km
            .decrypt(
                &id,
                &info.current_version,
                &sealed.ciphertext,
                &sealed.iv,
                &sealed.tag,
                b"aad",
            )
            .await
            .unwrap();
        assert_eq!(&plain[..], b"secret");
        // ...but not under version 2, nor with other AAD.
        assert!(matches!(
            km.decrypt(
                &id,
                &info2.current_version,
                &sealed.ciphertext,
                &sealed.iv,
                &sealed.tag,
                b"aad"
            )
            .await,
            Err(BackendError::InvalidCiphertext(_))
        ));
        assert!(km
            .decrypt(
                &id,
                &info.current_version,
                &sealed.ciphertext,
                &sealed.iv,
                &sealed.tag,
                b"aaD"
            )
            .await
            .is_err());
        assert!(km
            .decrypt(
                &id,
                &[0, 0, 0, 9],
                &sealed.ciphertext,
                &sealed.iv,
                &sealed.tag,
                b"aad"
            )
            .await
            .is_err());

        // The watcher picks up changes by itself.
        cli.set_enabled("k", false).unwrap();
        let mut disabled = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if !km.key_info(&id).await.unwrap().enabled {
                disabled = true;
                break;
            }
        }
        assert!(disabled, "watcher did not reload");

        let h = km.health().await;
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].status, HealthStatus::Active);
    }
}

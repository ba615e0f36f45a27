//! SQLite persistence of the embedded key manager.
//!
//! Key material is stored only wrapped under the master key, bound to its
//! key id and version. WAL journal with `synchronous=FULL`: a key whose
//! creation returned has been fsynced and survives `kill -9`. The running
//! proxy and the admin CLI are separate connections; the proxy notices CLI
//! changes through `PRAGMA data_version`.

use super::master::MasterKey;
use anyhow::{bail, Context};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rusqlite::{params, Connection, OptionalExtension};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// Usage restriction of a stored key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredUsage {
    EncryptDecrypt,
    EncryptOnly,
    DecryptOnly,
    None,
}

impl StoredUsage {
    pub fn as_str(self) -> &'static str {
        match self {
            StoredUsage::EncryptDecrypt => "encrypt-decrypt",
            StoredUsage::EncryptOnly => "encrypt-only",
            StoredUsage::DecryptOnly => "decrypt-only",
            StoredUsage::None => "none",
        }
    }

    pub fn usage(self) -> crate::backend::KeyUsage {
        crate::backend::KeyUsage {
            encrypt: matches!(self, StoredUsage::EncryptDecrypt | StoredUsage::EncryptOnly),
            decrypt: matches!(self, StoredUsage::EncryptDecrypt | StoredUsage::DecryptOnly),
        }
    }
}

impl FromStr for StoredUsage {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "encrypt-decrypt" => StoredUsage::EncryptDecrypt,
            "encrypt-only" => StoredUsage::EncryptOnly,
            "decrypt-only" => StoredUsage::DecryptOnly,
            "none" => StoredUsage::None,
            other => bail!(
                "unknown key usage {other:?}: use encrypt-decrypt, encrypt-only, decrypt-only or none"
            ),
        })
    }
}

impl fmt::Display for StoredUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key as listed by the admin CLI (no material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySummary {
    pub id: String,
    pub enabled: bool,
    pub usage: StoredUsage,
    pub current_version: u32,
    pub versions: u32,
    pub created_at: u64,
}

/// A key with its unwrapped material versions.
pub struct LoadedKey {
    pub id: String,
    pub enabled: bool,
    pub usage: StoredUsage,
    pub current_version: u32,
    pub versions: Vec<(u32, Zeroizing<Vec<u8>>)>,
}

pub struct Db {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY NOT NULL,
    enabled INTEGER NOT NULL,
    usage TEXT NOT NULL,
    current_version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS key_versions (
    key_id TEXT NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    wrapped BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (key_id, version)
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
);
";

const MASTER_CHECK: &[u8] = b"xks-proxy master key check";
const HEALTH_KEY: &str = "health_key";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn material_context(id: &str, version: u32) -> Vec<u8> {
    let mut c = b"xks-proxy/key-material/v1\0".to_vec();
    c.extend_from_slice(id.as_bytes());
    c.push(0);
    c.extend_from_slice(&version.to_be_bytes());
    c
}

fn random_key() -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut k = Zeroizing::new(vec![0u8; 32]);
    SystemRandom::new()
        .fill(&mut k)
        .map_err(|_| anyhow::anyhow!("system random generator failed"))?;
    Ok(k)
}

impl Db {
    /// Opens (creating if needed) `<dir>/keys.db` and checks that `master`
    /// is the key this store was created with.
    pub fn open(dir: &Path, master: &MasterKey) -> anyhow::Result<Db> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("keys.db");
        let conn =
            Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        let db = Db { conn };
        db.check_master(master)?;
        Ok(db)
    }

    fn check_master(&self, master: &MasterKey) -> anyhow::Result<()> {
        let existing: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE name = 'master_check'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match existing {
            Some(blob) => {
                let plain = master.unwrap(b"master-check", &blob).map_err(|_| {
                    anyhow::anyhow!(
                        "the master key does not match this key store (it was created with another master key)"
                    )
                })?;
                if &plain[..] != MASTER_CHECK {
                    bail!("master key check value is corrupt");
                }
            }
            None => {
                let blob = master.wrap(b"master-check", MASTER_CHECK)?;
                self.conn.execute(
                    "INSERT OR IGNORE INTO meta (name, value) VALUES ('master_check', ?1)",
                    params![blob],
                )?;
            }
        }
        Ok(())
    }

    /// Changes whenever another connection commits (the admin CLI).
    pub fn data_version(&self) -> anyhow::Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    pub fn count_keys(&self) -> anyhow::Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM keys", [], |r| r.get::<_, i64>(0))? as u64)
    }

    pub fn create_key(
        &mut self,
        id: &xks_wire::ExternalKeyId,
        usage: StoredUsage,
        master: &MasterKey,
    ) -> anyhow::Result<()> {
        let material = random_key()?;
        let wrapped = master.wrap(&material_context(id.as_str(), 1), &material)?;
        let t = now();
        let tx = self.conn.transaction()?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO keys (id, enabled, usage, current_version, created_at, updated_at)
             VALUES (?1, 1, ?2, 1, ?3, ?3)",
            params![id.as_str(), usage.as_str(), t],
        )?;
        if inserted == 0 {
            bail!("key {id} already exists");
        }
        tx.execute(
            "INSERT INTO key_versions (key_id, version, wrapped, created_at) VALUES (?1, 1, ?2, ?3)",
            params![id.as_str(), wrapped, t],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn set_enabled(&mut self, id: &str, enabled: bool) -> anyhow::Result<()> {
        let n = self.conn.execute(
            "UPDATE keys SET enabled = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, enabled, now()],
        )?;
        if n == 0 {
            bail!("no key {id}");
        }
        Ok(())
    }

    pub fn set_usage(&mut self, id: &str, usage: StoredUsage) -> anyhow::Result<()> {
        let n = self.conn.execute(
            "UPDATE keys SET usage = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, usage.as_str(), now()],
        )?;
        if n == 0 {
            bail!("no key {id}");
        }
        Ok(())
    }

    /// Adds a new material version and makes it current. Older versions
    /// stay, so existing ciphertexts still decrypt.
    pub fn rotate(&mut self, id: &str, master: &MasterKey) -> anyhow::Result<u32> {
        let tx = self.conn.transaction()?;
        let current: Option<u32> = tx
            .query_row(
                "SELECT current_version FROM keys WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(current) = current else {
            bail!("no key {id}");
        };
        let next = current
            .checked_add(1)
            .context("key version counter overflow")?;
        let material = random_key()?;
        let wrapped = master.wrap(&material_context(id, next), &material)?;
        let t = now();
        tx.execute(
            "INSERT INTO key_versions (key_id, version, wrapped, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, next, wrapped, t],
        )?;
        tx.execute(
            "UPDATE keys SET current_version = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, next, t],
        )?;
        tx.commit()?;
        Ok(next)
    }

    /// Deletes a key and all its material: ciphertexts under it become
    /// undecryptable for good.
    pub fn delete(&mut self, id: &str) -> anyhow::Result<()> {
        let n = self
            .conn
            .execute("DELETE FROM keys WHERE id = ?1", params![id])?;
        if n == 0 {
            bail!("no key {id}");
        }
        Ok(())
    }

    pub fn list(&self) -> anyhow::Result<Vec<KeySummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT k.id, k.enabled, k.usage, k.current_version, k.created_at,
                    (SELECT count(*) FROM key_versions v WHERE v.key_id = k.id)
             FROM keys k ORDER BY k.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, u64>(4)?,
                r.get::<_, u32>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, enabled, usage, current_version, created_at, versions) = row?;
            out.push(KeySummary {
                id,
                enabled,
                usage: usage.parse()?,
                current_version,
                versions,
                created_at,
            });
        }
        Ok(out)
    }

    /// Loads every key with its material unwrapped.
    pub fn load_all(&self, master: &MasterKey) -> anyhow::Result<Vec<LoadedKey>> {
        let mut keys: Vec<LoadedKey> = Vec::new();
        let mut stmt = self
            .conn
            .prepare("SELECT id, enabled, usage, current_version FROM keys ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u32>(3)?,
            ))
        })?;
        for row in rows {
            let (id, enabled, usage, current_version) = row?;
            keys.push(LoadedKey {
                id,
                enabled,
                usage: usage.parse()?,
                current_version,
                versions: Vec::new(),
            });
        }
        let mut vstmt = self
            .conn
            .prepare("SELECT version, wrapped FROM key_versions WHERE key_id = ?1")?;
        for key in &mut keys {
            let rows = vstmt.query_map(params![key.id], |r| {
                Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            for row in rows {
                let (version, wrapped) = row?;
                let material = master
                    .unwrap(&material_context(&key.id, version), &wrapped)
                    .with_context(|| format!("key {} version {version}", key.id))?;
                key.versions.push((version, material));
            }
        }
        Ok(keys)
    }

    /// The dedicated health-check key, created on first use. It lives in
    /// `meta`, outside the key namespace, so no request can address it.
    pub fn health_key(&self, master: &MasterKey) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        let existing: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE name = ?1",
                params![HEALTH_KEY],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(w) = existing {
            return master.unwrap(b"health-key", &w);
        }
        let material = random_key()?;
        let wrapped = master.wrap(b"health-key", &material)?;
        self.conn.execute(
            "INSERT OR IGNORE INTO meta (name, value) VALUES (?1, ?2)",
            params![HEALTH_KEY, wrapped],
        )?;
        // Another process may have won the race: read back what is stored.
        let stored: Vec<u8> = self.conn.query_row(
            "SELECT value FROM meta WHERE name = ?1",
            params![HEALTH_KEY],
            |r| r.get(0),
        )?;
        master.unwrap(b"health-key", &stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::from_bytes(&[7; 32]).unwrap();
        let mut db = Db::open(dir.path(), &master).unwrap();
        let id: xks_wire::ExternalKeyId = "k1".parse().unwrap();
        db.create_key(&id, StoredUsage::EncryptDecrypt, &master)
            .unwrap();
        assert!(db
            .create_key(&id, StoredUsage::EncryptOnly, &master)
            .is_err());
        assert_eq!(db.rotate("k1", &master).unwrap(), 2);
        db.set_enabled("k1", false).unwrap();
        db.set_usage("k1", StoredUsage::DecryptOnly).unwrap();
        let list = db.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(
            (
                list[0].enabled,
                list[0].usage,
                list[0].current_version,
                list[0].versions
            ),
            (false, StoredUsage::DecryptOnly, 2, 2)
        );
        let loaded = db.load_all(&master).unwrap();
        assert_eq!(loaded[0].versions.len(), 2);
        assert_ne!(loaded[0].versions[0].1, loaded[0].versions[1].1);
        let h1 = db.health_key(&master).unwrap();
        let h2 = db.health_key(&master).unwrap();
        assert_eq!(h1, h2);
        db.delete("k1").unwrap();
        assert!(db.list().unwrap().is_empty());
        assert!(db.delete("k1").is_err());
        drop(db);
        // Another master key is refused with a precise message.
        let other = MasterKey::from_bytes(&[8; 32]).unwrap();
        let err = Db::open(dir.path(), &other).err().unwrap().to_string();
        assert!(err.contains("does not match"), "{err}");
    }

    #[test]
    fn material_cannot_move_between_keys() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::from_bytes(&[7; 32]).unwrap();
        let mut db = Db::open(dir.path(), &master).unwrap();
        for id in ["a", "b"] {
            db.create_key(&id.parse().unwrap(), StoredUsage::EncryptDecrypt, &master)
                .unwrap();
        }
        // Swap b's wrapped material for a's: loading must fail, not serve a's key as b.
        db.conn
            .execute(
                "UPDATE key_versions SET wrapped = (SELECT wrapped FROM key_versions WHERE key_id = 'a') WHERE key_id = 'b'",
                [],
            )
            .unwrap();
        assert!(db.load_all(&master).is_err());
    }
}

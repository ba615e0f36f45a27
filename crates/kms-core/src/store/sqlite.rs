//! The durable store: SQLite (bundled) in `<data dir>/kms.db`, WAL journal
//! with `synchronous=FULL`, one transaction per write — a write that
//! returned `Ok` survives a crash or `kill -9`.
//!
//! Key records (including tags and the key policy) are stored as JSON; key
//! material only wrapped under the root key ([`local_key::MasterKey`],
//! AES-256-GCM) bound to key id and version. Opening checks the root key
//! against a check value written on first open, so a wrong root key is
//! refused with a clear message instead of failing later per key. All rows
//! are loaded into the cache at open.

use super::cache::{materialize, Cached, Persist};
use super::{AliasRecord, KeyEntry, StoreError, StoreResult};
use crate::crypto::Secret;
use crate::keys::KeyRecord;
use local_key::{MasterKey, RootKeySource};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY NOT NULL,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS key_material (
    key_id TEXT NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    wrapped BLOB NOT NULL,
    PRIMARY KEY (key_id, version)
);
CREATE TABLE IF NOT EXISTS aliases (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    key_id TEXT NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (account, region, name)
);
CREATE TABLE IF NOT EXISTS key_last_usage (
    key_id TEXT PRIMARY KEY NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
    usage TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
);
";

const ROOT_CHECK_CONTEXT: &[u8] = b"kms-core/root-key-check/v1";
const ROOT_CHECK_VALUE: &[u8] = b"kms-core root key check";
pub const DB_FILE: &str = "kms.db";

/// The AAD binding wrapped material to its key id and version.
fn material_context(key_id: &str, version: u32) -> Vec<u8> {
    let mut c = b"kms-core/key-material/v1\0".to_vec();
    c.extend_from_slice(key_id.as_bytes());
    c.push(0);
    c.extend_from_slice(&version.to_be_bytes());
    c
}

/// SQLite persistence; the connection and the root key.
pub struct SqlitePersist {
    conn: Connection,
    root: MasterKey,
}

impl std::fmt::Debug for SqlitePersist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqlitePersist")
    }
}

fn to_json(record: &KeyRecord) -> StoreResult<String> {
    serde_json::to_string(record)
        .map_err(|e| StoreError::Corrupt(format!("serializing key record: {e}")))
}

impl SqlitePersist {
    fn tx<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let tx = self.conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    fn wrap(&self, key_id: &str, version: u32, material: &Secret) -> StoreResult<Vec<u8>> {
        self.root
            .wrap(&material_context(key_id, version), material.expose())
            .map_err(|e| StoreError::RootKey(e.to_string()))
    }
}

impl Persist for SqlitePersist {
    fn create_key(&mut self, record: &KeyRecord, material: &Secret) -> StoreResult<()> {
        let json = to_json(record)?;
        let wrapped = self.wrap(&record.key_id, record.current_version, material)?;
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO keys (id, account, region, record) VALUES (?1, ?2, ?3, ?4)",
                params![record.key_id, record.account, record.region, json],
            )?;
            tx.execute(
                "INSERT INTO key_material (key_id, version, wrapped) VALUES (?1, ?2, ?3)",
                params![record.key_id, record.current_version, wrapped],
            )?;
            Ok(())
        })
    }

    fn update_key(&mut self, record: &KeyRecord) -> StoreResult<()> {
        let json = to_json(record)?;
        let n = self.conn.execute(
            "UPDATE keys SET record = ?2 WHERE id = ?1",
            params![record.key_id, json],
        )?;
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    fn add_version(
        &mut self,
        record: &KeyRecord,
        version: u32,
        material: &Secret,
    ) -> StoreResult<()> {
        let json = to_json(record)?;
        let wrapped = self.wrap(&record.key_id, version, material)?;
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO key_material (key_id, version, wrapped) VALUES (?1, ?2, ?3)",
                params![record.key_id, version, wrapped],
            )?;
            tx.execute(
                "UPDATE keys SET record = ?2 WHERE id = ?1",
                params![record.key_id, json],
            )?;
            Ok(())
        })
    }

    fn delete_key(&mut self, key_id: &str) -> StoreResult<()> {
        self.tx(|tx| {
            tx.execute("DELETE FROM aliases WHERE key_id = ?1", params![key_id])?;
            tx.execute(
                "DELETE FROM key_material WHERE key_id = ?1",
                params![key_id],
            )?;
            tx.execute("DELETE FROM keys WHERE id = ?1", params![key_id])?;
            Ok(())
        })
    }

    fn put_alias(&mut self, a: &AliasRecord) -> StoreResult<()> {
        self.conn.execute(
            "INSERT INTO aliases (account, region, name, key_id, created, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (account, region, name) DO UPDATE
             SET key_id = excluded.key_id, updated = excluded.updated",
            params![
                a.account,
                a.region,
                a.name,
                a.target_key_id,
                a.creation_date,
                a.last_updated_date
            ],
        )?;
        Ok(())
    }

    fn delete_alias(&mut self, account: &str, region: &str, name: &str) -> StoreResult<()> {
        self.conn.execute(
            "DELETE FROM aliases WHERE account = ?1 AND region = ?2 AND name = ?3",
            params![account, region, name],
        )?;
        Ok(())
    }

    fn put_usage(&mut self, batch: &[(String, super::Usage)]) -> StoreResult<()> {
        let rows = batch
            .iter()
            .map(|(id, u)| {
                serde_json::to_string(u)
                    .map(|json| (id, json))
                    .map_err(|e| StoreError::Corrupt(format!("serializing key usage: {e}")))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.tx(|tx| {
            let mut stmt = tx.prepare(
                "INSERT INTO key_last_usage (key_id, usage)
                 SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM keys WHERE id = ?1)
                 ON CONFLICT (key_id) DO UPDATE SET usage = excluded.usage",
            )?;
            for (id, json) in &rows {
                stmt.execute(params![id, json])?;
            }
            Ok(())
        })
    }

    fn put_custom_key_store(&mut self, record: &super::CustomKeyStoreRecord) -> StoreResult<()> {
        super::custom_key_stores::put(&self.conn, &self.root, record)
    }

    fn delete_custom_key_store(&mut self, id: &str) -> StoreResult<()> {
        super::custom_key_stores::delete(&self.conn, id)
    }

    fn put_grant(
        &mut self,
        grant: &crate::authz::grants::Grant,
        new: bool,
        token_digest: &str,
    ) -> StoreResult<()> {
        super::grants::put(&mut self.conn, grant, new, token_digest)
    }

    fn delete_grant(&mut self, key_id: &str, grant_id: &str) -> StoreResult<()> {
        super::grants::delete(&self.conn, key_id, grant_id)
    }

    fn delete_grants_of_key(&mut self, key_id: &str) -> StoreResult<()> {
        super::grants::delete_of_key(&self.conn, key_id)
    }
}

/// The SQLite-backed [`super::Store`].
pub type SqliteStore = Cached<SqlitePersist>;

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`, loading the root key
    /// from `root`. Refuses a root key other than the one the store was
    /// created with.
    pub fn open(dir: &Path, root: &dyn RootKeySource) -> StoreResult<SqliteStore> {
        let key = root.load_key().map_err(|e| {
            StoreError::RootKey(format!(
                "cannot load the root key from {}: {e:#}",
                root.describe()
            ))
        })?;
        Self::open_with_key(dir, key).map_err(|e| match e {
            StoreError::RootKey(m) => {
                StoreError::RootKey(format!("{m} (root key from {})", root.describe()))
            }
            other => other,
        })
    }

    /// [`SqliteStore::open`] with an already loaded root key.
    pub fn open_with_key(dir: &Path, root: MasterKey) -> StoreResult<SqliteStore> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Storage(format!("creating {}: {e}", dir.display())))?;
        let path: PathBuf = dir.join(DB_FILE);
        let conn = Connection::open(&path)
            .map_err(|e| StoreError::Storage(format!("opening {}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(super::custom_key_stores::SCHEMA)?;
        conn.execute_batch(super::grants::SCHEMA)?;
        check_root(&conn, &root, &path)?;
        let (keys, aliases, unreadable) = load_all(&conn, &root)?;
        let custom_key_stores = super::custom_key_stores::load(&conn, &root)?;
        let (grants, grant_tokens) = super::grants::load(&conn)?;
        let tracking_start = tracking_start(&conn)?;
        let store = Cached::new(SqlitePersist { conn, root }).with_tracking_start(tracking_start);
        for k in keys {
            store.load_key(k);
        }
        for (account, region, id, cause) in unreadable {
            store.load_unreadable(&account, &region, &id, cause);
        }
        for a in aliases {
            store.load_alias(a);
        }
        for c in custom_key_stores {
            store.load_custom_key_store(c);
        }
        store.load_grants(grants, grant_tokens);
        Ok(store)
    }
}

fn check_root(conn: &Connection, root: &MasterKey, path: &Path) -> StoreResult<()> {
    let existing: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'root_check'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    match existing {
        Some(blob) => {
            let plain = root.unwrap(ROOT_CHECK_CONTEXT, &blob).map_err(|_| {
                StoreError::RootKey(format!(
                    "the root key does not match the key store {} (it was created with another root key)",
                    path.display()
                ))
            })?;
            if &plain[..] != ROOT_CHECK_VALUE {
                return Err(StoreError::Corrupt(
                    "root key check value is corrupt".into(),
                ));
            }
        }
        None => {
            let blob = root
                .wrap(ROOT_CHECK_CONTEXT, ROOT_CHECK_VALUE)
                .map_err(|e| StoreError::RootKey(e.to_string()))?;
            conn.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('root_check', ?1)",
                params![blob],
            )?;
        }
    }
    Ok(())
}

/// When this store began recording key usage: written on the first open
/// by a release that tracks usage (a store of an earlier release gets the
/// date it was first opened by this one).
fn tracking_start(conn: &Connection) -> StoreResult<f64> {
    let now = crate::clock::now().to_be_bytes().to_vec();
    conn.execute(
        "INSERT OR IGNORE INTO meta (name, value) VALUES ('usage_tracking_start', ?1)",
        params![now],
    )?;
    let v: Vec<u8> = conn.query_row(
        "SELECT value FROM meta WHERE name = 'usage_tracking_start'",
        [],
        |r| r.get(0),
    )?;
    let b: [u8; 8] = v
        .try_into()
        .map_err(|_| StoreError::Corrupt("usage tracking start is corrupt".into()))?;
    Ok(f64::from_be_bytes(b))
}

/// A key whose record does not parse: (account, region, id, why).
type Unreadable = (String, String, String, String);

#[allow(clippy::type_complexity)]
fn load_all(
    conn: &Connection,
    root: &MasterKey,
) -> StoreResult<(Vec<KeyEntry>, Vec<AliasRecord>, Vec<Unreadable>)> {
    let mut records: BTreeMap<String, KeyRecord> = BTreeMap::new();
    let mut unreadable = Vec::new();
    {
        let mut stmt = conn.prepare("SELECT id, account, region, record FROM keys")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        for row in rows {
            let (id, account, region, json) = row?;
            let rec: KeyRecord = match serde_json::from_str(&json) {
                Ok(r) => r,
                Err(e) => {
                    // One damaged or future-format record must not take the
                    // whole service down, nor be read as something else:
                    // requests naming the key fail with an internal error.
                    tracing::error!(key_id = %id, error = %e, "stored key record cannot be read");
                    unreadable.push((account, region, id, e.to_string()));
                    continue;
                }
            };
            if rec.key_id != id {
                return Err(StoreError::Corrupt(format!(
                    "key {id}: record names another key"
                )));
            }
            records.insert(id, rec);
        }
    }
    let mut versions: BTreeMap<String, BTreeMap<u32, _>> = BTreeMap::new();
    {
        let mut stmt = conn.prepare("SELECT key_id, version, wrapped FROM key_material")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        for row in rows {
            let (id, version, wrapped) = row?;
            if unreadable.iter().any(|u| u.2 == id) {
                continue;
            }
            let material = root
                .unwrap(&material_context(&id, version), &wrapped)
                .map_err(|_| {
                    StoreError::Corrupt(format!(
                        "key {id} version {version}: key material does not unwrap under the root key"
                    ))
                })?;
            let material = Secret::from_slice(&material);
            let rec = records
                .get(&id)
                .ok_or_else(|| StoreError::Corrupt(format!("key material of unknown key {id}")))?;
            versions
                .entry(id.clone())
                .or_default()
                .insert(version, materialize(rec, version, &material)?);
        }
    }
    let mut usage: BTreeMap<String, super::Usage> = BTreeMap::new();
    {
        let mut stmt = conn.prepare("SELECT key_id, usage FROM key_last_usage")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (id, json) = row?;
            match serde_json::from_str(&json) {
                Ok(u) => {
                    usage.insert(id, u);
                }
                // Usage is informational: a row this release cannot read
                // starts the key's record afresh.
                Err(e) => {
                    tracing::warn!(key_id = %id, error = %e, "stored key usage cannot be read")
                }
            }
        }
    }
    let mut keys = Vec::with_capacity(records.len());
    for (id, rec) in records {
        let v = versions.remove(&id).unwrap_or_default();
        if !v.contains_key(&rec.current_version) {
            return Err(StoreError::Corrupt(format!(
                "key {id}: key material version {} is missing",
                rec.current_version
            )));
        }
        let mut entry = KeyEntry::new(rec, BTreeMap::new());
        for (version, m) in v {
            entry.insert_version(version, m);
        }
        if let Some(u) = usage.remove(&id) {
            entry.usage = std::sync::Arc::new(crate::keys::usage::UsageCell::loaded(Some(u)));
        }
        keys.push(entry);
    }
    let mut aliases = Vec::new();
    let mut stmt =
        conn.prepare("SELECT account, region, name, key_id, created, updated FROM aliases")?;
    let rows = stmt.query_map([], |r| {
        Ok(AliasRecord {
            account: r.get(0)?,
            region: r.get(1)?,
            name: r.get(2)?,
            target_key_id: r.get(3)?,
            creation_date: r.get(4)?,
            last_updated_date: r.get(5)?,
        })
    })?;
    for row in rows {
        aliases.push(row?);
    }
    Ok((keys, aliases, unreadable))
}

#[cfg(test)]
mod tests {
    use super::*;
    use local_key::MasterKeySource;

    #[test]
    fn contract() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open_with_key(dir.path(), MasterKey::from_bytes(&[3; 32]).unwrap())
            .unwrap();
        crate::store::tests::store_contract(&s);
    }

    #[test]
    fn grants_contract() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open_with_key(dir.path(), MasterKey::from_bytes(&[3; 32]).unwrap())
            .unwrap();
        crate::store::tests::grants_contract(&s);
    }

    /// Grants and their token digests survive a reopen (without a clean
    /// close); deleting the key later removes its grant rows.
    #[test]
    fn grants_are_durable() {
        use crate::store::tests::{grant, A, K1, R};
        use crate::store::Store;
        let dir = tempfile::tempdir().unwrap();
        let key = || MasterKey::from_bytes(&[7; 32]).unwrap();
        let s = SqliteStore::open_with_key(dir.path(), key()).unwrap();
        let rec = KeyRecord::new_symmetric(K1, A, R, "", 0.0, None);
        s.create_key(rec, &Secret::from_slice(&[1; 32])).unwrap();
        let alice = "arn:aws:iam::111122223333:user/alice";
        s.create_grant(grant(K1, 1, Some("n"), alice), "t1")
            .unwrap();
        s.create_grant(grant(K1, 1, Some("n"), alice), "t2")
            .unwrap();
        s.create_grant(grant(K1, 2, None, alice), "t3").unwrap();
        std::mem::forget(s);
        let s = SqliteStore::open_with_key(dir.path(), key()).unwrap();
        assert_eq!(s.grants_of_key(K1).len(), 2);
        let g = s.grant_by_token("t2").unwrap();
        assert_eq!(*g, grant(K1, 1, Some("n"), alice));
        assert_eq!(s.grant_by_token("t3").unwrap().grant_id, "02".repeat(32));
        s.delete_grant(A, R, K1, &"02".repeat(32)).unwrap();
        s.delete_key(A, R, K1).unwrap();
        let rows: i64 = s.with_persist(|p| {
            p.conn
                .query_row("SELECT COUNT(*) FROM grants", [], |r| r.get(0))
                .unwrap()
        });
        assert_eq!(rows, 0);
        let tokens: i64 = s.with_persist(|p| {
            p.conn
                .query_row("SELECT COUNT(*) FROM grant_tokens", [], |r| r.get(0))
                .unwrap()
        });
        assert_eq!(tokens, 0);
        drop(s);
        let s = SqliteStore::open_with_key(dir.path(), key()).unwrap();
        assert!(s.grants_of_key(K1).is_empty());
        assert!(s.grant_by_token("t1").is_none());
    }

    #[test]
    fn pragmas_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open_with_key(dir.path(), MasterKey::from_bytes(&[3; 32]).unwrap())
            .unwrap();
        let (mode, sync): (String, i64) = s.with_persist(|p| {
            let m = p
                .conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            let y = p
                .conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap();
            (m, y)
        });
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
    }

    /// Writes through the store, drops it without any shutdown step,
    /// reopens from disk and finds everything.
    #[test]
    fn durable_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let root = MasterKeySource::File(dir.path().join("root.key"));
        let data = dir.path().join("data");
        let (blob, ctx) = {
            let s = SqliteStore::open(&data, &root).unwrap();
            crate::store::tests::populate(&s)
        };
        // Key material is stored only wrapped.
        let raw = std::fs::read(data.join(DB_FILE)).unwrap();
        let wal = std::fs::read(data.join("kms.db-wal")).unwrap_or_default();
        for hay in [&raw, &wal] {
            assert!(
                !hay.windows(32).any(|w| w == [0x5a; 32]),
                "plain key material found on disk"
            );
        }
        let s = SqliteStore::open(&data, &root).unwrap();
        crate::store::tests::check_populated(&s, &blob, &ctx);
    }

    /// Like a crash: the store is leaked, so no destructor closes the
    /// connection or checkpoints the WAL; a second open still finds every
    /// acknowledged write.
    #[test]
    fn durable_without_close() {
        let dir = tempfile::tempdir().unwrap();
        let key = || MasterKey::from_bytes(&[6; 32]).unwrap();
        let s = SqliteStore::open_with_key(dir.path(), key()).unwrap();
        let (blob, ctx) = crate::store::tests::populate(&s);
        std::mem::forget(s);
        let s = SqliteStore::open_with_key(dir.path(), key()).unwrap();
        crate::store::tests::check_populated(&s, &blob, &ctx);
    }

    #[test]
    fn wrong_root_key_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        SqliteStore::open_with_key(dir.path(), MasterKey::from_bytes(&[1; 32]).unwrap()).unwrap();
        let err = SqliteStore::open_with_key(dir.path(), MasterKey::from_bytes(&[2; 32]).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("root key does not match"), "{err}");
        // Through a source, the message names the source.
        let var = "KMS_CORE_TEST_WRONG_ROOT";
        std::env::set_var(var, "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=");
        let err = SqliteStore::open(dir.path(), &MasterKeySource::Env(var.into()))
            .unwrap_err()
            .to_string();
        std::env::remove_var(var);
        assert!(
            err.contains("root key does not match") && err.contains(var),
            "{err}"
        );
        let err = SqliteStore::open(
            dir.path(),
            &MasterKeySource::Env("KMS_CORE_TEST_UNSET_ROOT".into()),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot load the root key"), "{err}");
    }

    #[test]
    fn tampered_wrapped_material_is_detected_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = || MasterKey::from_bytes(&[4; 32]).unwrap();
        {
            let s = SqliteStore::open_with_key(dir.path(), key()).unwrap();
            crate::store::tests::populate(&s);
            s.with_persist(|p| {
                p.conn
                    .execute("UPDATE key_material SET version = version + 100", [])
                    .unwrap();
            });
        }
        let err = SqliteStore::open_with_key(dir.path(), key())
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not unwrap"), "{err}");
    }
}

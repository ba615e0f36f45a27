//! Persistence of grants: the in-memory index both stores serve reads
//! from (sharded by key id, like the key cache, so the authorization path
//! takes no global lock), and the SQLite tables behind it.
//!
//! A grant belongs to its key: the `grants` rows reference `keys(id)` with
//! `ON DELETE CASCADE`, and deleting a key drops its grants from the index.
//! Grant tokens are stored only as digests
//! ([`crate::authz::grants::token_digest`]); one grant may have several
//! (each CreateGrant returns a new token, also when it is answered by an
//! existing grant through Name idempotency).

use super::{paginate, Page, StoreError, StoreResult};
use crate::authz::grants::Grant;
use rusqlite::{params, Connection};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};

const SHARDS: usize = 16;

/// The grants of one key, in creation order.
pub type KeyGrants = Arc<[Arc<Grant>]>;

/// One stored grant token: (digest, key id, grant id).
pub type TokenRow = (String, String, String);

/// What [`super::Store::create_grant`] did.
#[derive(Debug, Clone)]
pub struct CreatedGrant {
    pub grant: Arc<Grant>,
    /// An existing grant with the same Name and parameters answered the
    /// request (CreateGrant idempotency); nothing new was created.
    pub existed: bool,
}

/// The in-memory index of every grant.
pub struct GrantIndex {
    by_key: Vec<RwLock<HashMap<String, KeyGrants>>>,
    /// Token digest → (key id, grant id).
    tokens: RwLock<HashMap<String, (String, String)>>,
}

impl Default for GrantIndex {
    fn default() -> Self {
        GrantIndex {
            by_key: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            tokens: RwLock::new(HashMap::new()),
        }
    }
}

impl std::fmt::Debug for GrantIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrantIndex")
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // Each update is a single insert/remove: poisoning leaves no half state.
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl GrantIndex {
    fn shard(&self, key_id: &str) -> &RwLock<HashMap<String, KeyGrants>> {
        let mut h = DefaultHasher::new();
        key_id.hash(&mut h);
        &self.by_key[(h.finish() as usize) % SHARDS]
    }

    /// The key's grants (empty when none). Hot path: one shard read lock.
    pub fn of_key(&self, key_id: &str) -> KeyGrants {
        read(self.shard(key_id))
            .get(key_id)
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }

    /// The grant a token digest names, if it still exists.
    pub fn by_token(&self, digest: &str) -> Option<Arc<Grant>> {
        let (key_id, grant_id) = read(&self.tokens).get(digest).cloned()?;
        self.find(&key_id, &grant_id)
    }

    /// A grant by key and id.
    pub fn find(&self, key_id: &str, grant_id: &str) -> Option<Arc<Grant>> {
        self.of_key(key_id)
            .iter()
            .find(|g| g.grant_id == grant_id)
            .cloned()
    }

    /// Adds a grant (loading, or after it was persisted).
    pub fn insert(&self, grant: Arc<Grant>) {
        let mut shard = write(self.shard(&grant.key_id));
        let mut list: Vec<Arc<Grant>> = shard
            .get(&grant.key_id)
            .map(|l| l.to_vec())
            .unwrap_or_default();
        list.retain(|g| g.grant_id != grant.grant_id);
        let key_id = grant.key_id.clone();
        list.push(grant);
        shard.insert(key_id, Arc::from(list));
    }

    /// Registers a token digest for a grant.
    pub fn add_token(&self, digest: &str, key_id: &str, grant_id: &str) {
        write(&self.tokens).insert(digest.to_owned(), (key_id.to_owned(), grant_id.to_owned()));
    }

    /// Removes a grant and its tokens.
    pub fn remove(&self, key_id: &str, grant_id: &str) -> Option<Arc<Grant>> {
        let removed = {
            let mut shard = write(self.shard(key_id));
            let list = shard.get(key_id)?.clone();
            let removed = list.iter().find(|g| g.grant_id == grant_id).cloned()?;
            let rest: Vec<Arc<Grant>> = list
                .iter()
                .filter(|g| g.grant_id != grant_id)
                .cloned()
                .collect();
            if rest.is_empty() {
                shard.remove(key_id);
            } else {
                shard.insert(key_id.to_owned(), Arc::from(rest));
            }
            removed
        };
        write(&self.tokens).retain(|_, (k, g)| !(k == key_id && g == grant_id));
        Some(removed)
    }

    /// Removes every grant of a key; returns how many there were.
    pub fn remove_key(&self, key_id: &str) -> usize {
        let n = write(self.shard(key_id))
            .remove(key_id)
            .map_or(0, |l| l.len());
        if n > 0 {
            write(&self.tokens).retain(|_, (k, _)| k != key_id);
        }
        n
    }

    /// ListGrants: the key's grants ordered by grant id, optionally only
    /// one grant id or one grantee.
    pub fn list(
        &self,
        key_id: &str,
        grant_id: Option<&str>,
        grantee: Option<&str>,
        limit: usize,
        marker: Option<&str>,
    ) -> StoreResult<Page<Arc<Grant>>> {
        let mut all: Vec<Arc<Grant>> = self
            .of_key(key_id)
            .iter()
            .filter(|g| grant_id.is_none_or(|id| g.grant_id == id))
            .filter(|g| grantee.is_none_or(|p| g.grantee_principal == p))
            .cloned()
            .collect();
        all.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
        paginate(
            all.into_iter().map(|g| (g.grant_id.clone(), g)),
            limit,
            marker,
        )
    }

    /// ListRetirableGrants: grants of every key whose retiring principal
    /// is `principal`, ordered by (key id, grant id).
    pub fn retirable(
        &self,
        principal: &str,
        region: &str,
        limit: usize,
        marker: Option<&str>,
    ) -> StoreResult<Page<Arc<Grant>>> {
        let mut all: Vec<(String, Arc<Grant>)> = Vec::new();
        for shard in &self.by_key {
            for list in read(shard).values() {
                for g in list.iter() {
                    if g.retiring_principal.as_deref() == Some(principal) && g.region == region {
                        all.push((format!("{}/{}", g.key_id, g.grant_id), g.clone()));
                    }
                }
            }
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        paginate(all, limit, marker)
    }
}

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS grants (
    key_id TEXT NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
    grant_id TEXT NOT NULL,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT,
    grantee TEXT NOT NULL,
    retiring TEXT,
    created REAL NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (key_id, grant_id)
);
CREATE INDEX IF NOT EXISTS grants_by_retiring ON grants (retiring);
CREATE TABLE IF NOT EXISTS grant_tokens (
    digest TEXT PRIMARY KEY NOT NULL,
    key_id TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    FOREIGN KEY (key_id, grant_id) REFERENCES grants (key_id, grant_id) ON DELETE CASCADE
);
";

/// Inserts a new grant (if `new`) and registers a token digest, in one
/// transaction.
pub(super) fn put(conn: &mut Connection, g: &Grant, new: bool, digest: &str) -> StoreResult<()> {
    let tx = conn.transaction()?;
    if new {
        let json = serde_json::to_string(g)
            .map_err(|e| StoreError::Corrupt(format!("serializing grant: {e}")))?;
        tx.execute(
            "INSERT INTO grants (key_id, grant_id, account, region, name, grantee, retiring, created, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                g.key_id,
                g.grant_id,
                g.account,
                g.region,
                g.name,
                g.grantee_principal,
                g.retiring_principal,
                g.creation_date,
                json
            ],
        )?;
    }
    tx.execute(
        "INSERT OR REPLACE INTO grant_tokens (digest, key_id, grant_id) VALUES (?1, ?2, ?3)",
        params![digest, g.key_id, g.grant_id],
    )?;
    tx.commit()?;
    Ok(())
}

pub(super) fn delete(conn: &Connection, key_id: &str, grant_id: &str) -> StoreResult<()> {
    // The tokens go with the grant (ON DELETE CASCADE).
    conn.execute(
        "DELETE FROM grants WHERE key_id = ?1 AND grant_id = ?2",
        params![key_id, grant_id],
    )?;
    Ok(())
}

pub(super) fn delete_of_key(conn: &Connection, key_id: &str) -> StoreResult<()> {
    conn.execute("DELETE FROM grants WHERE key_id = ?1", params![key_id])?;
    Ok(())
}

/// Every grant (in creation order) and every token digest.
pub(super) fn load(conn: &Connection) -> StoreResult<(Vec<Grant>, Vec<TokenRow>)> {
    let mut grants = Vec::new();
    {
        let mut stmt =
            conn.prepare("SELECT key_id, grant_id, record FROM grants ORDER BY created, grant_id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (key_id, grant_id, json) = row?;
            let g: Grant = serde_json::from_str(&json).map_err(|e| {
                StoreError::Corrupt(format!(
                    "grant {grant_id} of key {key_id}: unreadable record: {e}"
                ))
            })?;
            if g.key_id != key_id || g.grant_id != grant_id {
                return Err(StoreError::Corrupt(format!(
                    "grant {grant_id} of key {key_id}: record names another grant"
                )));
            }
            grants.push(g);
        }
    }
    let mut tokens = Vec::new();
    let mut stmt = conn.prepare("SELECT digest, key_id, grant_id FROM grant_tokens")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    for row in rows {
        tokens.push(row?);
    }
    Ok((grants, tokens))
}

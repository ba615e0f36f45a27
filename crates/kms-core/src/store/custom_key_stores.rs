//! Persistence of custom key stores (external key stores): the record, and
//! the SQLite table behind it. The proxy credential's secret is stored only
//! wrapped under the root key, bound to the key store id.

use super::{Refusal, StoreError, StoreResult};
use local_key::MasterKey;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// One custom key store (`EXTERNAL_KEY_STORE`). The secret access key is
/// never serialized with the record (see [`wrap_secret`]).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomKeyStoreRecord {
    /// `cks-` and 17 hex digits.
    pub id: String,
    pub account: String,
    pub region: String,
    pub name: String,
    /// Epoch seconds.
    pub creation_date: f64,
    /// `EXTERNAL_KEY_STORE`.
    pub store_type: String,
    /// `https://host[:port]`.
    pub uri_endpoint: String,
    /// `[/prefix]/kms/xks/v1`.
    pub uri_path: String,
    /// `PUBLIC_ENDPOINT`.
    pub connectivity: String,
    pub access_key_id: String,
    /// Epoch seconds the current proxy credential was set (CreateCustomKeyStore,
    /// or UpdateCustomKeyStore changing it); 0 in records written before it
    /// was kept (the creation date counts then). CloudWatch's
    /// `XksProxyCredentialAge`.
    #[serde(default)]
    pub credential_date: f64,
    #[serde(skip)]
    pub secret_access_key: Zeroizing<String>,
    /// Set by ConnectCustomKeyStore, cleared by DisconnectCustomKeyStore:
    /// a restarted kms-core reconnects the stores that have it.
    pub connect_requested: bool,
}

impl CustomKeyStoreRecord {
    /// When the current proxy credential was set.
    pub fn credential_set_at(&self) -> f64 {
        if self.credential_date > 0.0 {
            self.credential_date
        } else {
            self.creation_date
        }
    }
}

impl std::fmt::Debug for CustomKeyStoreRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomKeyStoreRecord")
            .field("id", &self.id)
            .field("account", &self.account)
            .field("region", &self.region)
            .field("name", &self.name)
            .field("uri_endpoint", &self.uri_endpoint)
            .field("uri_path", &self.uri_path)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("connect_requested", &self.connect_requested)
            .finish()
    }
}

/// What a [`super::Store::change_custom_key_store`] closure decides.
#[derive(Debug)]
pub enum CksChange {
    /// Insert or replace the record.
    Put(Box<CustomKeyStoreRecord>),
    /// Delete the record.
    Delete,
}

/// The closure of [`super::Store::change_custom_key_store`]: sees the
/// current record (if any) and every record of the namespace, decides.
pub type CksDecision<'a> = &'a mut dyn FnMut(
    Option<&CustomKeyStoreRecord>,
    &[CustomKeyStoreRecord],
) -> Result<CksChange, Refusal>;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS custom_key_stores (
    id TEXT PRIMARY KEY NOT NULL,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    record TEXT NOT NULL,
    wrapped_secret BLOB NOT NULL
);
";

fn secret_context(id: &str) -> Vec<u8> {
    let mut c = b"kms-core/xks-credential/v1\0".to_vec();
    c.extend_from_slice(id.as_bytes());
    c
}

/// The secret wrapped under the root key, bound to the key store id.
pub(super) fn wrap_secret(root: &MasterKey, r: &CustomKeyStoreRecord) -> StoreResult<Vec<u8>> {
    root.wrap(&secret_context(&r.id), r.secret_access_key.as_bytes())
        .map_err(|e| StoreError::RootKey(e.to_string()))
}

pub(super) fn put(
    conn: &Connection,
    root: &MasterKey,
    r: &CustomKeyStoreRecord,
) -> StoreResult<()> {
    let json = serde_json::to_string(r)
        .map_err(|e| StoreError::Corrupt(format!("serializing custom key store: {e}")))?;
    let wrapped = wrap_secret(root, r)?;
    conn.execute(
        "INSERT INTO custom_key_stores (id, account, region, record, wrapped_secret)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET record = excluded.record, wrapped_secret = excluded.wrapped_secret",
        params![r.id, r.account, r.region, json, wrapped],
    )?;
    Ok(())
}

pub(super) fn delete(conn: &Connection, id: &str) -> StoreResult<()> {
    conn.execute("DELETE FROM custom_key_stores WHERE id = ?1", params![id])?;
    Ok(())
}

pub(super) fn load(conn: &Connection, root: &MasterKey) -> StoreResult<Vec<CustomKeyStoreRecord>> {
    let mut stmt = conn.prepare("SELECT id, record, wrapped_secret FROM custom_key_stores")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, json, wrapped) = row?;
        let mut rec: CustomKeyStoreRecord = serde_json::from_str(&json).map_err(|e| {
            StoreError::Corrupt(format!("custom key store {id}: unreadable record: {e}"))
        })?;
        let secret = root.unwrap(&secret_context(&id), &wrapped).map_err(|_| {
            StoreError::Corrupt(format!(
                "custom key store {id}: the credential does not unwrap under the root key"
            ))
        })?;
        rec.secret_access_key = Zeroizing::new(
            String::from_utf8(secret.to_vec())
                .map_err(|_| StoreError::Corrupt(format!("custom key store {id}: credential")))?,
        );
        if rec.id != id {
            return Err(StoreError::Corrupt(format!(
                "custom key store {id}: record names another store"
            )));
        }
        out.push(rec);
    }
    Ok(out)
}

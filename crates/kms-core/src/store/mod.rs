//! Persistence of keys, key material, aliases, tags and key policies.
//!
//! [`Store`] is the trait the service uses. Both implementations,
//! [`memory::MemoryStore`] (for `--in-memory`) and [`sqlite::SqliteStore`]
//! (the durable default), are the same cached core ([`cache::Cached`]) over
//! a different persistence layer:
//!
//! * every read — key lookup, alias resolution, lists — is served from an
//!   in-memory cache (a sharded map of immutable `Arc<KeyEntry>` snapshots,
//!   each holding the ready-to-use AES-GCM keys of every material version),
//!   so cryptographic operations never touch the disk and take no global
//!   lock;
//! * writes are serialized by one writer lock, persisted first (one SQLite
//!   transaction, `synchronous=FULL`), then published to the cache; a write
//!   that returned `Ok` is durable.
//!
//! Key material is persisted only wrapped (AES-256-GCM under the root key,
//! bound to key id and version); see [`sqlite`].
//!
//! Lists are paginated with an opaque marker (the Base64url of the last
//! returned item's sort key); a marker that does not decode is
//! [`StoreError::InvalidMarker`].

pub mod cache;
pub mod custom_key_stores;
pub mod grants;
pub mod memory;
pub mod sqlite;

use crate::authz::policy::{PolicyDocument, PolicyError, PolicyKind};
use crate::crypto::asymmetric::KeyMaterial;
use crate::crypto::{CryptoError, Secret, SymmetricKey};
use crate::keys::usage::{Usage, UsageCell};
use crate::keys::KeyRecord;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

pub use custom_key_stores::{CksChange, CksDecision, CustomKeyStoreRecord};
pub use grants::{CreatedGrant, KeyGrants};
pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

/// Errors of the store. `Rejected` carries the caller's own error out of a
/// [`Store::modify_key`] closure (downcast it back).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    #[error("invalid pagination marker")]
    InvalidMarker,
    #[error("{0}")]
    Rejected(Refusal),
    /// The root key cannot be loaded or does not match the data.
    #[error("{0}")]
    RootKey(String),
    /// Stored data cannot be read back (corruption, wrong format).
    #[error("{0}")]
    Corrupt(String),
    /// The database failed (I/O, SQLite error).
    #[error("storage failure: {0}")]
    Storage(String),
    #[error("cryptographic failure: {0}")]
    Crypto(#[from] crate::crypto::CryptoError),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Storage(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A caller's reason to refuse a [`Store::modify_key`] (e.g. a
/// [`crate::keys::StateError`]).
pub type Refusal = Box<dyn std::error::Error + Send + Sync>;

/// An alias in one (account, region).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub account: String,
    pub region: String,
    /// `alias/...`.
    pub name: String,
    pub target_key_id: String,
    /// Epoch seconds.
    pub creation_date: f64,
    pub last_updated_date: f64,
}

impl AliasRecord {
    /// `arn:aws:kms:<region>:<account>:alias/...`.
    pub fn arn(&self) -> String {
        format!("arn:aws:kms:{}:{}:{}", self.region, self.account, self.name)
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Set when more items follow (`Truncated: true`, `NextMarker`).
    pub next_marker: Option<String>,
}

/// A cached key: its record and the AES-GCM key of every material version
/// (symmetric encryption keys) or the parsed material of every version
/// (HMAC and asymmetric keys, [`KeyMaterial`]).
pub struct KeyEntry {
    pub record: KeyRecord,
    versions: BTreeMap<u32, Arc<SymmetricKey>>,
    material: BTreeMap<u32, Arc<KeyMaterial>>,
    /// The record's key policy, parsed on first use and kept with this
    /// snapshot (a policy change publishes a new snapshot): authorization
    /// never parses per request.
    parsed_policy: OnceLock<Result<Arc<PolicyDocument>, PolicyError>>,
    /// The key's last usage, shared by every snapshot of the key.
    pub usage: Arc<UsageCell>,
}

/// One parsed material version, of either kind.
#[derive(Debug, Clone)]
pub enum Versioned {
    Symmetric(Arc<SymmetricKey>),
    Other(Arc<KeyMaterial>),
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("record", &self.record)
            .field("versions", &self.version_numbers())
            .finish()
    }
}

impl KeyEntry {
    pub(crate) fn new(record: KeyRecord, versions: BTreeMap<u32, Arc<SymmetricKey>>) -> Self {
        KeyEntry {
            record,
            versions,
            material: BTreeMap::new(),
            parsed_policy: OnceLock::new(),
            usage: Arc::new(UsageCell::default()),
        }
    }

    /// The same material (and usage) under an updated record.
    pub(crate) fn with_record(&self, record: KeyRecord) -> Self {
        KeyEntry {
            record,
            versions: self.versions.clone(),
            material: self.material.clone(),
            parsed_policy: OnceLock::new(),
            usage: Arc::clone(&self.usage),
        }
    }

    /// The key policy, parsed once per snapshot. An error means the stored
    /// text is not a valid key policy (written before policies were
    /// checked); authorization then allows nothing through the policy.
    pub fn key_policy(&self) -> Result<&Arc<PolicyDocument>, &PolicyError> {
        self.parsed_policy
            .get_or_init(|| {
                PolicyDocument::parse(&self.record.policy, PolicyKind::Key).map(Arc::new)
            })
            .as_ref()
    }

    pub(crate) fn insert_version(&mut self, version: u32, v: Versioned) {
        match v {
            Versioned::Symmetric(k) => {
                self.versions.insert(version, k);
            }
            Versioned::Other(k) => {
                self.material.insert(version, k);
            }
        }
    }

    pub(crate) fn has_version(&self, version: u32) -> bool {
        self.versions.contains_key(&version) || self.material.contains_key(&version)
    }

    /// The current material of an HMAC or asymmetric key.
    pub fn current_material(&self) -> Option<&Arc<KeyMaterial>> {
        self.material.get(&self.record.current_version)
    }

    /// The key new ciphertexts are made with.
    pub fn current(&self) -> Option<&Arc<SymmetricKey>> {
        self.versions.get(&self.record.current_version)
    }

    /// The key of material `version` (for decrypting older ciphertexts).
    pub fn version(&self, version: u32) -> Option<&Arc<SymmetricKey>> {
        self.versions.get(&version)
    }

    /// Encrypts under the current material (symmetric encryption keys).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.current()
            .ok_or(CryptoError::InvalidKeyMaterial)?
            .encrypt(plaintext, context)
    }

    /// The material versions present.
    pub fn version_numbers(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.versions.keys().copied().collect();
        v.extend(self.material.keys().copied());
        v.sort_unstable();
        v
    }
}

/// The persistence and metadata-cache interface of the service.
///
/// Keys are found by id in the (account, region) that owns them; a key id
/// of another namespace is `NotFound`. Reads are cache-only.
pub trait Store: Send + Sync {
    /// Stores a new key with its first material version
    /// (`record.current_version`). `AlreadyExists` if the id is taken.
    fn create_key(&self, record: KeyRecord, material: &Secret) -> StoreResult<Arc<KeyEntry>>;

    /// The cached key, if it exists in this namespace. Hot path.
    fn key(&self, account: &str, region: &str, key_id: &str) -> Option<Arc<KeyEntry>>;

    /// The cached key of any account in `region` (the key of a ciphertext
    /// another account's key made, for Decrypt without KeyId).
    fn key_in_region(&self, region: &str, key_id: &str) -> Option<Arc<KeyEntry>>;

    /// Why the stored record of this key cannot be read, if the key exists
    /// but its record does not parse (an unknown key spec, a damaged
    /// row). Asked only when [`Store::key`] found nothing.
    fn unreadable(&self, _account: &str, _region: &str, _key_id: &str) -> Option<String> {
        None
    }

    /// Applies `f` to the key's record and stores the result atomically
    /// (other writers wait). `f` may refuse by returning an error, which
    /// comes back as [`StoreError::Rejected`]; nothing is written then.
    fn modify_key(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        f: &mut dyn FnMut(&mut KeyRecord) -> Result<(), Refusal>,
    ) -> StoreResult<Arc<KeyEntry>>;

    /// Adds material `version` and makes it current (rotation).
    fn add_key_version(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        version: u32,
        material: &Secret,
    ) -> StoreResult<Arc<KeyEntry>>;

    /// Rotation: adds a new material version (one above the highest so
    /// far) and makes it current. `f` records the rotation in the key's
    /// record (it gets the new version) or refuses
    /// ([`StoreError::Rejected`]); nothing is written then. Record and
    /// material are written in one transaction.
    fn rotate_key_material(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        material: &Secret,
        f: &mut dyn FnMut(&mut KeyRecord, u32) -> Result<(), Refusal>,
    ) -> StoreResult<Arc<KeyEntry>>;

    /// (account, region, key id) of every key with an automatic rotation
    /// due at `now` or an on-demand rotation in progress, for the
    /// background rotator.
    fn due_for_rotation(&self, now: f64) -> Vec<(String, String, String)>;

    /// Writes every key's last usage recorded since the previous flush, in
    /// one transaction; returns how many keys were written.
    fn flush_usage(&self) -> StoreResult<usize>;

    /// Epoch seconds since which this store records key usage (keys made
    /// earlier were used untracked before it).
    fn usage_tracking_start(&self) -> f64;

    /// Deletes the key, its material and the aliases pointing to it.
    fn delete_key(&self, account: &str, region: &str, key_id: &str) -> StoreResult<()>;

    /// Keys of the namespace ordered by key id.
    fn list_keys(
        &self,
        account: &str,
        region: &str,
        limit: usize,
        marker: Option<&str>,
    ) -> StoreResult<Page<KeyRecord>>;

    /// (account, region, key id) of every key whose deletion date is at or
    /// before `now` (epoch seconds), for the deletion sweeper.
    fn due_for_deletion(&self, now: f64) -> Vec<(String, String, String)>;

    /// Creates an alias; `AlreadyExists` if the name is taken in the
    /// namespace, `NotFound` if the target key is not in it.
    fn create_alias(&self, alias: AliasRecord) -> StoreResult<()>;

    /// Points an existing alias at another key of the namespace.
    fn update_alias(
        &self,
        account: &str,
        region: &str,
        name: &str,
        target_key_id: &str,
        now: f64,
    ) -> StoreResult<AliasRecord>;

    /// Deletes an alias; `NotFound` if absent.
    fn delete_alias(&self, account: &str, region: &str, name: &str) -> StoreResult<()>;

    /// The alias, from the cache. Hot path (alias key references).
    fn alias(&self, account: &str, region: &str, name: &str) -> Option<AliasRecord>;

    /// Aliases of the namespace ordered by name, optionally only those
    /// pointing to `key_id`.
    fn list_aliases(
        &self,
        account: &str,
        region: &str,
        key_id: Option<&str>,
        limit: usize,
        marker: Option<&str>,
    ) -> StoreResult<Page<AliasRecord>>;

    /// Custom key stores of the namespace, ordered by id.
    fn custom_key_stores(&self, account: &str, region: &str) -> Vec<CustomKeyStoreRecord>;

    /// Every custom key store (for reconnecting them at startup).
    fn all_custom_key_stores(&self) -> Vec<CustomKeyStoreRecord>;

    /// Creates, replaces or deletes custom key store `id` atomically (other
    /// writers wait): `decide` sees the current record (if any) and every
    /// record of the namespace, and returns the change or a refusal
    /// ([`StoreError::Rejected`]). Returns the record now stored.
    fn change_custom_key_store(
        &self,
        account: &str,
        region: &str,
        id: &str,
        decide: CksDecision<'_>,
    ) -> StoreResult<Option<CustomKeyStoreRecord>>;

    /// Creates a grant on its key (`grant.account`, `grant.region`,
    /// `grant.key_id`), or — when a grant of the key has the same Name and
    /// the same parameters — answers with that grant (CreateGrant's
    /// idempotency). `token_digest` is registered for the grant either
    /// way. `NotFound` if the key is not in the namespace;
    /// [`StoreError::Rejected`] with a
    /// [`crate::authz::grants::GrantError::LimitExceeded`] past
    /// [`crate::authz::grants::MAX_GRANTS_PER_KEY`].
    fn create_grant(
        &self,
        grant: crate::authz::grants::Grant,
        token_digest: &str,
    ) -> StoreResult<CreatedGrant>;

    /// The key's grants, from the cache. Hot path (authorization).
    fn grants_of_key(&self, key_id: &str) -> KeyGrants;

    /// The grant a grant token (by digest) names, if it still exists.
    fn grant_by_token(&self, token_digest: &str) -> Option<Arc<crate::authz::grants::Grant>>;

    /// ListGrants: the key's grants ordered by grant id, optionally only
    /// one grant id and/or one grantee principal. `NotFound` if the key is
    /// not in the namespace.
    #[allow(clippy::too_many_arguments)]
    fn list_grants(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        grant_id: Option<&str>,
        grantee_principal: Option<&str>,
        limit: usize,
        marker: Option<&str>,
    ) -> StoreResult<Page<Arc<crate::authz::grants::Grant>>>;

    /// ListRetirableGrants: grants of any key in `region` (of any account)
    /// whose retiring principal is `retiring_principal`, ordered by (key
    /// id, grant id).
    fn list_retirable_grants(
        &self,
        retiring_principal: &str,
        region: &str,
        limit: usize,
        marker: Option<&str>,
    ) -> StoreResult<Page<Arc<crate::authz::grants::Grant>>>;

    /// Deletes one grant (RetireGrant, RevokeGrant) with its tokens;
    /// `NotFound` if the key or the grant does not exist.
    fn delete_grant(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        grant_id: &str,
    ) -> StoreResult<Arc<crate::authz::grants::Grant>>;

    /// Deletes every grant of a key; returns how many there were.
    fn delete_grants_of_key(&self, account: &str, region: &str, key_id: &str)
        -> StoreResult<usize>;

    /// Adds or overwrites tags.
    fn tag_key(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        tags: &[(String, String)],
    ) -> StoreResult<()> {
        self.modify_key(account, region, key_id, &mut |r| {
            for (k, v) in tags {
                r.tags.insert(k.clone(), v.clone());
            }
            Ok(())
        })
        .map(|_| ())
    }

    /// Removes tags by key (absent keys are ignored, as in AWS).
    fn untag_key(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        tag_keys: &[String],
    ) -> StoreResult<()> {
        self.modify_key(account, region, key_id, &mut |r| {
            for k in tag_keys {
                r.tags.remove(k);
            }
            Ok(())
        })
        .map(|_| ())
    }

    /// Tags ordered by tag key.
    fn list_tags(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        limit: usize,
        marker: Option<&str>,
    ) -> StoreResult<Page<(String, String)>> {
        let entry = self
            .key(account, region, key_id)
            .ok_or(StoreError::NotFound)?;
        paginate(
            entry
                .record
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), (k.clone(), v.clone()))),
            limit,
            marker,
        )
    }

    /// The key policy by name (only `default` exists).
    fn key_policy(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        name: &str,
    ) -> StoreResult<Option<String>> {
        let entry = self
            .key(account, region, key_id)
            .ok_or(StoreError::NotFound)?;
        Ok((name == crate::keys::DEFAULT_POLICY_NAME).then(|| entry.record.policy.clone()))
    }

    /// Replaces the `default` key policy.
    fn put_key_policy(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        policy: &str,
    ) -> StoreResult<()> {
        self.modify_key(account, region, key_id, &mut |r| {
            r.policy = policy.to_owned();
            Ok(())
        })
        .map(|_| ())
    }

    /// Policy names of a key (`["default"]`), paginated.
    fn list_key_policies(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        limit: usize,
        marker: Option<&str>,
    ) -> StoreResult<Page<String>> {
        self.key(account, region, key_id)
            .ok_or(StoreError::NotFound)?;
        let name = crate::keys::DEFAULT_POLICY_NAME.to_owned();
        paginate(std::iter::once((name.clone(), name)), limit, marker)
    }
}

/// Encodes a sort key as an opaque marker.
pub fn encode_marker(sort_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(sort_key.as_bytes())
}

/// Decodes a marker made by [`encode_marker`].
pub fn decode_marker(marker: &str) -> StoreResult<String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(marker)
        .map_err(|_| StoreError::InvalidMarker)?;
    String::from_utf8(bytes).map_err(|_| StoreError::InvalidMarker)
}

/// One page of `items` (sorted by their sort key): those after the
/// marker's key, at most `limit` (at least 1).
pub fn paginate<T, I>(items: I, limit: usize, marker: Option<&str>) -> StoreResult<Page<T>>
where
    I: IntoIterator<Item = (String, T)>,
{
    let after = marker.map(decode_marker).transpose()?;
    let limit = limit.max(1);
    let mut out = Vec::new();
    let mut last_key = None;
    let mut more = false;
    for (k, v) in items {
        if after.as_ref().is_some_and(|a| k.as_str() <= a.as_str()) {
            continue;
        }
        if out.len() == limit {
            more = true;
            break;
        }
        last_key = Some(k);
        out.push(v);
    }
    Ok(Page {
        items: out,
        next_marker: if more {
            last_key.as_deref().map(encode_marker)
        } else {
            None
        },
    })
}

#[cfg(test)]
pub(crate) mod tests;

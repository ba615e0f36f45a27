//! The cached core shared by both stores: reads from memory, writes through
//! a [`Persist`] layer under one writer lock.

use super::{
    paginate, AliasRecord, KeyEntry, Page, Refusal, Store, StoreError, StoreResult, Versioned,
};
use crate::crypto::asymmetric::KeyMaterial;
use crate::crypto::{Secret, SymmetricKey};
use crate::keys::KeyRecord;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

const SHARDS: usize = 16;

/// Where writes go before they are published to the cache. Each method is
/// one atomic, durable unit.
pub trait Persist: Send {
    fn create_key(&mut self, record: &KeyRecord, material: &Secret) -> StoreResult<()>;
    fn update_key(&mut self, record: &KeyRecord) -> StoreResult<()>;
    fn add_version(
        &mut self,
        record: &KeyRecord,
        version: u32,
        material: &Secret,
    ) -> StoreResult<()>;
    /// Deletes the key with its material and aliases.
    fn delete_key(&mut self, key_id: &str) -> StoreResult<()>;
    /// Inserts or replaces an alias.
    fn put_alias(&mut self, alias: &AliasRecord) -> StoreResult<()>;
    fn delete_alias(&mut self, account: &str, region: &str, name: &str) -> StoreResult<()>;
    /// Writes the last usage of these keys (one transaction; keys deleted
    /// meanwhile are skipped).
    fn put_usage(&mut self, _batch: &[(String, super::Usage)]) -> StoreResult<()> {
        Ok(())
    }
    /// Inserts or replaces a custom key store.
    fn put_custom_key_store(&mut self, _record: &super::CustomKeyStoreRecord) -> StoreResult<()> {
        Ok(())
    }
    fn delete_custom_key_store(&mut self, _id: &str) -> StoreResult<()> {
        Ok(())
    }
    /// Inserts a grant (when `new`) and registers a token digest for it.
    fn put_grant(
        &mut self,
        _grant: &crate::authz::grants::Grant,
        _new: bool,
        _token_digest: &str,
    ) -> StoreResult<()> {
        Ok(())
    }
    /// Deletes a grant and its tokens.
    fn delete_grant(&mut self, _key_id: &str, _grant_id: &str) -> StoreResult<()> {
        Ok(())
    }
    /// Deletes every grant of a key.
    fn delete_grants_of_key(&mut self, _key_id: &str) -> StoreResult<()> {
        Ok(())
    }
}

#[derive(Default)]
struct Namespace {
    keys: BTreeSet<String>,
    aliases: BTreeMap<String, AliasRecord>,
}

type NsKey = (String, String);

/// The cache plus the persistence layer.
pub struct Cached<P: Persist> {
    shards: Vec<RwLock<HashMap<String, Arc<KeyEntry>>>>,
    namespaces: RwLock<HashMap<NsKey, Namespace>>,
    /// Custom key stores by id.
    custom_key_stores: RwLock<BTreeMap<String, super::CustomKeyStoreRecord>>,
    /// Keys whose stored record cannot be read, by (account, region, id):
    /// why. Requests naming them fail with an internal error.
    unreadable: RwLock<HashMap<(String, String, String), String>>,
    /// Grants by key, and grant token digests.
    grants: super::grants::GrantIndex,
    /// Epoch seconds since which usage is recorded.
    tracking_start: f64,
    writer: Mutex<P>,
}

impl<P: Persist> std::fmt::Debug for Cached<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: usize = self.shards.iter().map(|s| read(s).len()).sum();
        f.debug_struct("Cached").field("keys", &keys).finish()
    }
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // A panic while holding the lock cannot leave the maps half-updated
    // (each update is a single insert/remove), so poisoning is ignored.
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn ns(account: &str, region: &str) -> NsKey {
    (account.to_owned(), region.to_owned())
}

/// The ready AES-GCM key of one material version.
pub fn symmetric(key_id: &str, version: u32, material: &Secret) -> StoreResult<Arc<SymmetricKey>> {
    Ok(Arc::new(SymmetricKey::new(key_id, version, material)?))
}

/// The ready material of one version of `record`'s key, by its key spec:
/// an AES-GCM key for SYMMETRIC_DEFAULT, [`KeyMaterial`] otherwise.
pub fn materialize(record: &KeyRecord, version: u32, material: &Secret) -> StoreResult<Versioned> {
    let (spec, usage) = crate::keys::spec::of_record(record);
    if spec == crate::keys::spec::KeySpec::SymmetricDefault {
        return Ok(Versioned::Symmetric(symmetric(
            &record.key_id,
            version,
            material,
        )?));
    }
    KeyMaterial::load(spec, usage, material.expose())
        .map(|k| Versioned::Other(Arc::new(k)))
        .map_err(|e| StoreError::Corrupt(format!("key {} version {version}: {e}", record.key_id)))
}

impl<P: Persist> Cached<P> {
    pub fn new(persist: P) -> Self {
        Cached {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            namespaces: RwLock::new(HashMap::new()),
            custom_key_stores: RwLock::new(BTreeMap::new()),
            unreadable: RwLock::new(HashMap::new()),
            grants: super::grants::GrantIndex::default(),
            tracking_start: 0.0,
            writer: Mutex::new(persist),
        }
    }

    /// Sets when usage tracking began (the persisted date of a store).
    pub fn with_tracking_start(mut self, at: f64) -> Self {
        self.tracking_start = at;
        self
    }

    fn shard(&self, key_id: &str) -> &RwLock<HashMap<String, Arc<KeyEntry>>> {
        let mut h = DefaultHasher::new();
        key_id.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    fn lock_writer(&self) -> MutexGuard<'_, P> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads one key into the cache (used when opening a store).
    /// Records a key whose stored record cannot be read (at load).
    pub fn load_unreadable(&self, account: &str, region: &str, key_id: &str, cause: String) {
        write(&self.unreadable).insert(
            (account.to_owned(), region.to_owned(), key_id.to_owned()),
            cause,
        );
    }

    pub fn load_key(&self, entry: KeyEntry) {
        let r = &entry.record;
        write(&self.namespaces)
            .entry(ns(&r.account, &r.region))
            .or_default()
            .keys
            .insert(r.key_id.clone());
        write(self.shard(&r.key_id)).insert(r.key_id.clone(), Arc::new(entry));
    }

    /// Loads one alias into the cache (used when opening a store).
    pub fn load_alias(&self, alias: AliasRecord) {
        write(&self.namespaces)
            .entry(ns(&alias.account, &alias.region))
            .or_default()
            .aliases
            .insert(alias.name.clone(), alias);
    }

    fn publish(&self, entry: Arc<KeyEntry>) {
        write(self.shard(&entry.record.key_id)).insert(entry.record.key_id.clone(), entry);
    }

    /// Loads one custom key store into the cache (used when opening a store).
    pub fn load_custom_key_store(&self, record: super::CustomKeyStoreRecord) {
        write(&self.custom_key_stores).insert(record.id.clone(), record);
    }

    /// Loads grants and token digests (used when opening a store).
    pub fn load_grants(
        &self,
        grants: Vec<crate::authz::grants::Grant>,
        tokens: Vec<super::grants::TokenRow>,
    ) {
        for g in grants {
            self.grants.insert(Arc::new(g));
        }
        for (digest, key_id, grant_id) in tokens {
            self.grants.add_token(&digest, &key_id, &grant_id);
        }
    }

    /// Runs `f` on the persistence layer under the writer lock.
    pub fn with_persist<T>(&self, f: impl FnOnce(&mut P) -> T) -> T {
        f(&mut self.lock_writer())
    }
}

impl<P: Persist> Store for Cached<P> {
    fn create_key(&self, record: KeyRecord, material: &Secret) -> StoreResult<Arc<KeyEntry>> {
        let key = materialize(&record, record.current_version, material)?;
        let mut w = self.lock_writer();
        if read(self.shard(&record.key_id)).contains_key(&record.key_id) {
            return Err(StoreError::AlreadyExists);
        }
        w.create_key(&record, material)?;
        let version = record.current_version;
        let mut entry = KeyEntry::new(record, BTreeMap::new());
        entry.insert_version(version, key);
        let entry = Arc::new(entry);
        write(&self.namespaces)
            .entry(ns(&entry.record.account, &entry.record.region))
            .or_default()
            .keys
            .insert(entry.record.key_id.clone());
        self.publish(entry.clone());
        Ok(entry)
    }

    fn key(&self, account: &str, region: &str, key_id: &str) -> Option<Arc<KeyEntry>> {
        let e = read(self.shard(key_id)).get(key_id).cloned()?;
        (e.record.account == account && e.record.region == region).then_some(e)
    }

    fn key_in_region(&self, region: &str, key_id: &str) -> Option<Arc<KeyEntry>> {
        let e = read(self.shard(key_id)).get(key_id).cloned()?;
        (e.record.region == region).then_some(e)
    }

    fn unreadable(&self, account: &str, region: &str, key_id: &str) -> Option<String> {
        read(&self.unreadable)
            .get(&(account.to_owned(), region.to_owned(), key_id.to_owned()))
            .cloned()
    }

    fn modify_key(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        f: &mut dyn FnMut(&mut KeyRecord) -> Result<(), Refusal>,
    ) -> StoreResult<Arc<KeyEntry>> {
        let mut w = self.lock_writer();
        let old = self
            .key(account, region, key_id)
            .ok_or(StoreError::NotFound)?;
        let mut record = old.record.clone();
        f(&mut record).map_err(StoreError::Rejected)?;
        // Identity and material bookkeeping are not the closure's to change.
        record.key_id.clone_from(&old.record.key_id);
        record.account.clone_from(&old.record.account);
        record.region.clone_from(&old.record.region);
        record.arn.clone_from(&old.record.arn);
        record.current_version = old.record.current_version;
        if record == old.record {
            return Ok(old);
        }
        w.update_key(&record)?;
        let entry = Arc::new(old.with_record(record));
        self.publish(entry.clone());
        Ok(entry)
    }

    fn add_key_version(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        version: u32,
        material: &Secret,
    ) -> StoreResult<Arc<KeyEntry>> {
        let mut w = self.lock_writer();
        let old = self
            .key(account, region, key_id)
            .ok_or(StoreError::NotFound)?;
        if old.has_version(version) {
            return Err(StoreError::AlreadyExists);
        }
        let key = materialize(&old.record, version, material)?;
        let mut record = old.record.clone();
        record.current_version = version;
        w.add_version(&record, version, material)?;
        let mut entry = old.with_record(record);
        entry.insert_version(version, key);
        let entry = Arc::new(entry);
        self.publish(entry.clone());
        Ok(entry)
    }

    fn rotate_key_material(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        material: &Secret,
        f: &mut dyn FnMut(&mut KeyRecord, u32) -> Result<(), Refusal>,
    ) -> StoreResult<Arc<KeyEntry>> {
        let mut w = self.lock_writer();
        let old = self
            .key(account, region, key_id)
            .ok_or(StoreError::NotFound)?;
        let version = old
            .version_numbers()
            .last()
            .copied()
            .unwrap_or(old.record.current_version)
            .max(old.record.current_version)
            .checked_add(1)
            .ok_or_else(|| {
                StoreError::Corrupt(format!("key {key_id}: material versions exhausted"))
            })?;
        let mut record = old.record.clone();
        if record.materials.is_empty() {
            // A record of an earlier release: its list becomes explicit.
            record.materials = old.record.materials();
        }
        f(&mut record, version).map_err(StoreError::Rejected)?;
        record.key_id.clone_from(&old.record.key_id);
        record.account.clone_from(&old.record.account);
        record.region.clone_from(&old.record.region);
        record.arn.clone_from(&old.record.arn);
        record.current_version = version;
        let key = materialize(&record, version, material)?;
        w.add_version(&record, version, material)?;
        let mut entry = old.with_record(record);
        entry.insert_version(version, key);
        let entry = Arc::new(entry);
        self.publish(entry.clone());
        Ok(entry)
    }

    fn flush_usage(&self) -> StoreResult<usize> {
        let mut batch: Vec<(String, super::Usage)> = Vec::new();
        let mut cells = Vec::new();
        for shard in &self.shards {
            for e in read(shard).values() {
                if let Some(u) = e.usage.take_dirty() {
                    batch.push((e.record.key_id.clone(), u));
                    cells.push(Arc::clone(&e.usage));
                }
            }
        }
        if batch.is_empty() {
            return Ok(0);
        }
        let result = self.lock_writer().put_usage(&batch);
        if let Err(e) = result {
            for c in cells {
                c.mark_dirty();
            }
            return Err(e);
        }
        Ok(batch.len())
    }

    fn usage_tracking_start(&self) -> f64 {
        self.tracking_start
    }

    fn due_for_rotation(&self, now: f64) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            for e in read(shard).values() {
                let r = &e.record;
                if r.on_demand_started.is_some() || r.rotation.is_some_and(|s| s.due(now)) {
                    out.push((r.account.clone(), r.region.clone(), r.key_id.clone()));
                }
            }
        }
        out.sort();
        out
    }

    fn delete_key(&self, account: &str, region: &str, key_id: &str) -> StoreResult<()> {
        let mut w = self.lock_writer();
        self.key(account, region, key_id)
            .ok_or(StoreError::NotFound)?;
        w.delete_key(key_id)?;
        write(self.shard(key_id)).remove(key_id);
        // The rows went with the key (ON DELETE CASCADE).
        self.grants.remove_key(key_id);
        if let Some(n) = write(&self.namespaces).get_mut(&ns(account, region)) {
            n.keys.remove(key_id);
            n.aliases.retain(|_, a| a.target_key_id != key_id);
        }
        Ok(())
    }

    fn list_keys(
        &self,
        account: &str,
        region: &str,
        limit: usize,
        marker: Option<&str>,
    ) -> StoreResult<Page<KeyRecord>> {
        let ids: Vec<String> = read(&self.namespaces)
            .get(&ns(account, region))
            .map(|n| n.keys.iter().cloned().collect())
            .unwrap_or_default();
        let page = paginate(ids.into_iter().map(|id| (id.clone(), id)), limit, marker)?;
        Ok(Page {
            items: page
                .items
                .iter()
                .filter_map(|id| self.key(account, region, id))
                .map(|e| e.record.clone())
                .collect(),
            next_marker: page.next_marker,
        })
    }

    fn due_for_deletion(&self, now: f64) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            for e in read(shard).values() {
                let r = &e.record;
                if r.key_state == crate::keys::KeyState::PendingDeletion
                    && r.deletion_date.is_some_and(|d| d <= now)
                {
                    out.push((r.account.clone(), r.region.clone(), r.key_id.clone()));
                }
            }
        }
        out.sort();
        out
    }

    fn create_alias(&self, alias: AliasRecord) -> StoreResult<()> {
        let mut w = self.lock_writer();
        if self
            .alias(&alias.account, &alias.region, &alias.name)
            .is_some()
        {
            return Err(StoreError::AlreadyExists);
        }
        self.key(&alias.account, &alias.region, &alias.target_key_id)
            .ok_or(StoreError::NotFound)?;
        w.put_alias(&alias)?;
        self.load_alias(alias);
        Ok(())
    }

    fn update_alias(
        &self,
        account: &str,
        region: &str,
        name: &str,
        target_key_id: &str,
        now: f64,
    ) -> StoreResult<AliasRecord> {
        let mut w = self.lock_writer();
        let mut alias = self
            .alias(account, region, name)
            .ok_or(StoreError::NotFound)?;
        self.key(account, region, target_key_id)
            .ok_or(StoreError::NotFound)?;
        alias.target_key_id = target_key_id.to_owned();
        alias.last_updated_date = now;
        w.put_alias(&alias)?;
        self.load_alias(alias.clone());
        Ok(alias)
    }

    fn delete_alias(&self, account: &str, region: &str, name: &str) -> StoreResult<()> {
        let mut w = self.lock_writer();
        self.alias(account, region, name)
            .ok_or(StoreError::NotFound)?;
        w.delete_alias(account, region, name)?;
        if let Some(n) = write(&self.namespaces).get_mut(&ns(account, region)) {
            n.aliases.remove(name);
        }
        Ok(())
    }

    fn custom_key_stores(&self, account: &str, region: &str) -> Vec<super::CustomKeyStoreRecord> {
        read(&self.custom_key_stores)
            .values()
            .filter(|r| r.account == account && r.region == region)
            .cloned()
            .collect()
    }

    fn all_custom_key_stores(&self) -> Vec<super::CustomKeyStoreRecord> {
        read(&self.custom_key_stores).values().cloned().collect()
    }

    fn change_custom_key_store(
        &self,
        account: &str,
        region: &str,
        id: &str,
        decide: super::CksDecision<'_>,
    ) -> StoreResult<Option<super::CustomKeyStoreRecord>> {
        let mut w = self.lock_writer();
        let namespace = self.custom_key_stores(account, region);
        let current = namespace.iter().find(|r| r.id == id);
        match decide(current, &namespace).map_err(StoreError::Rejected)? {
            super::CksChange::Put(record) => {
                let record = *record;
                if record.id != id || record.account != account || record.region != region {
                    return Err(StoreError::Corrupt(
                        "a custom key store cannot change its id or namespace".into(),
                    ));
                }
                w.put_custom_key_store(&record)?;
                self.load_custom_key_store(record.clone());
                Ok(Some(record))
            }
            super::CksChange::Delete => {
                if current.is_none() {
                    return Err(StoreError::NotFound);
                }
                w.delete_custom_key_store(id)?;
                write(&self.custom_key_stores).remove(id);
                Ok(None)
            }
        }
    }

    fn create_grant(
        &self,
        grant: crate::authz::grants::Grant,
        token_digest: &str,
    ) -> StoreResult<super::CreatedGrant> {
        use crate::authz::grants::{GrantError, MAX_GRANTS_PER_KEY};
        let mut w = self.lock_writer();
        self.key(&grant.account, &grant.region, &grant.key_id)
            .ok_or(StoreError::NotFound)?;
        let existing = self.grants.of_key(&grant.key_id);
        if grant.name.is_some() {
            if let Some(same) = existing.iter().find(|g| g.same_parameters(&grant)) {
                w.put_grant(same, false, token_digest)?;
                self.grants
                    .add_token(token_digest, &same.key_id, &same.grant_id);
                return Ok(super::CreatedGrant {
                    grant: same.clone(),
                    existed: true,
                });
            }
        }
        if existing.len() >= MAX_GRANTS_PER_KEY {
            return Err(StoreError::Rejected(Box::new(GrantError::LimitExceeded(
                format!("The request was rejected because the KMS key already has {MAX_GRANTS_PER_KEY} grants."),
            ))));
        }
        if existing.iter().any(|g| g.grant_id == grant.grant_id) {
            return Err(StoreError::AlreadyExists);
        }
        w.put_grant(&grant, true, token_digest)?;
        let grant = Arc::new(grant);
        self.grants.insert(grant.clone());
        self.grants
            .add_token(token_digest, &grant.key_id, &grant.grant_id);
        Ok(super::CreatedGrant {
            grant,
            existed: false,
        })
    }

    fn grants_of_key(&self, key_id: &str) -> super::KeyGrants {
        self.grants.of_key(key_id)
    }

    fn grant_by_token(&self, token_digest: &str) -> Option<Arc<crate::authz::grants::Grant>> {
        self.grants.by_token(token_digest)
    }

    fn list_grants(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        grant_id: Option<&str>,
        grantee_principal: Option<&str>,
        limit: usize,
        marker: Option<&str>,
    ) -> StoreResult<Page<Arc<crate::authz::grants::Grant>>> {
        self.key(account, region, key_id)
            .ok_or(StoreError::NotFound)?;
        self.grants
            .list(key_id, grant_id, grantee_principal, limit, marker)
    }

    fn list_retirable_grants(
        &self,
        retiring_principal: &str,
        region: &str,
        limit: usize,
        marker: Option<&str>,
    ) -> StoreResult<Page<Arc<crate::authz::grants::Grant>>> {
        self.grants
            .retirable(retiring_principal, region, limit, marker)
    }

    fn delete_grant(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        grant_id: &str,
    ) -> StoreResult<Arc<crate::authz::grants::Grant>> {
        let mut w = self.lock_writer();
        self.key(account, region, key_id)
            .ok_or(StoreError::NotFound)?;
        self.grants
            .find(key_id, grant_id)
            .ok_or(StoreError::NotFound)?;
        w.delete_grant(key_id, grant_id)?;
        self.grants
            .remove(key_id, grant_id)
            .ok_or(StoreError::NotFound)
    }

    fn delete_grants_of_key(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
    ) -> StoreResult<usize> {
        let mut w = self.lock_writer();
        self.key(account, region, key_id)
            .ok_or(StoreError::NotFound)?;
        w.delete_grants_of_key(key_id)?;
        Ok(self.grants.remove_key(key_id))
    }

    fn alias(&self, account: &str, region: &str, name: &str) -> Option<AliasRecord> {
        read(&self.namespaces)
            .get(&ns(account, region))
            .and_then(|n| n.aliases.get(name).cloned())
    }

    fn list_aliases(
        &self,
        account: &str,
        region: &str,
        key_id: Option<&str>,
        limit: usize,
        marker: Option<&str>,
    ) -> StoreResult<Page<AliasRecord>> {
        let all: Vec<AliasRecord> = read(&self.namespaces)
            .get(&ns(account, region))
            .map(|n| {
                n.aliases
                    .values()
                    .filter(|a| key_id.is_none_or(|k| a.target_key_id == k))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        paginate(all.into_iter().map(|a| (a.name.clone(), a)), limit, marker)
    }
}

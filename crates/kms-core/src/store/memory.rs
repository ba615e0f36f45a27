//! The in-memory store (`--in-memory`): the cached core with nothing
//! behind it. Everything is lost when the process ends.

use super::cache::{Cached, Persist};
use super::{AliasRecord, StoreResult};
use crate::crypto::Secret;
use crate::keys::KeyRecord;

/// Persistence that persists nothing.
#[derive(Debug, Default)]
pub struct NoPersist;

impl Persist for NoPersist {
    fn create_key(&mut self, _: &KeyRecord, _: &Secret) -> StoreResult<()> {
        Ok(())
    }
    fn update_key(&mut self, _: &KeyRecord) -> StoreResult<()> {
        Ok(())
    }
    fn add_version(&mut self, _: &KeyRecord, _: u32, _: &Secret) -> StoreResult<()> {
        Ok(())
    }
    fn delete_key(&mut self, _: &str) -> StoreResult<()> {
        Ok(())
    }
    fn put_alias(&mut self, _: &AliasRecord) -> StoreResult<()> {
        Ok(())
    }
    fn delete_alias(&mut self, _: &str, _: &str, _: &str) -> StoreResult<()> {
        Ok(())
    }
}

/// The in-memory [`super::Store`].
pub type MemoryStore = Cached<NoPersist>;

impl MemoryStore {
    /// An empty in-memory store.
    pub fn in_memory() -> MemoryStore {
        Cached::new(NoPersist)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn contract() {
        super::super::tests::store_contract(&super::MemoryStore::in_memory());
    }
}

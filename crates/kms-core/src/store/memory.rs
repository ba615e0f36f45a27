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
        Cached::new(NoPersist).with_tracking_start(crate::clock::now())
    }
}

#[cfg(test)]
mod tests {
    use crate::crypto::Secret;
    use crate::keys::KeyRecord;
    use crate::store::Store;
    use std::sync::Arc;

    #[test]
    fn contract() {
        super::super::tests::store_contract(&super::MemoryStore::in_memory());
    }

    #[test]
    fn grants_contract() {
        super::super::tests::grants_contract(&super::MemoryStore::in_memory());
    }

    /// Readers keep encrypting from consistent snapshots while a writer
    /// changes the key's metadata.
    #[test]
    fn readers_and_a_writer() {
        use super::super::tests::{A, K1, R};
        let s = Arc::new(super::MemoryStore::in_memory());
        let rec = KeyRecord::new_symmetric(K1, A, R, "0", 0.0, None);
        s.create_key(rec, &Secret::from_slice(&[1; 32])).unwrap();
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        let e = s.key(A, R, K1).unwrap();
                        e.current().unwrap().encrypt(b"x", &[]).unwrap();
                    }
                })
            })
            .collect();
        for i in 1..=200 {
            s.modify_key(A, R, K1, &mut |r| {
                r.description = i.to_string();
                Ok(())
            })
            .unwrap();
        }
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(s.key(A, R, K1).unwrap().record.description, "200");
    }
}

//! The master key that wraps all key material of the embedded key manager.
//!
//! The implementation lives in the shared `local-key` crate (kms-core uses
//! the same code); this module re-exports it so existing paths keep working.

pub use local_key::{MasterKey, MasterKeySource, RootKeySource};

//! External key stores: KMS keys whose cryptography happens in an external
//! key manager behind an XKS proxy.
//!
//! * [`settings`] — kms-core's TLS trust, client certificate, budget and
//!   health interval toward proxies (`--xks-config`);
//! * [`registry`] — connection state per store, the connect task and the
//!   health poller;
//! * [`envelope`] — the double-encrypted blob (pure);
//! * [`keys`] — the cryptography of keys in external key stores (both
//!   layers), used by the one handler of each operation;
//! * [`errors`] — the custom key store exceptions and the one mapping of
//!   XKS client failures to AWS errors;
//! * [`stack`] — the all-in-one local stack (`kms-core --demo-xks`).
//!
//! The custom key store operations are in [`crate::ops::custom_key_stores`].

pub mod envelope;
pub mod errors;
pub mod keys;
pub mod registry;
pub mod settings;
pub mod stack;

pub use registry::Registry;
pub use settings::XksSettings;

//! Our own KMIP client.
//!
//! - [`ttlv`]: the sans-IO TTLV codec (every item type), tested against the
//!   KMIP specification's encoding examples.
//! - [`spec`]: the tags and enumerations used.
//! - [`message`]: typed requests and responses (Discover Versions, Locate,
//!   Get Attributes, AES-GCM Encrypt/Decrypt with KMIP 1.4 AAD and tag,
//!   Create, Activate, Revoke, Destroy) and result status/reason parsing,
//!   tested against the KMIP test cases' messages.
//! - [`client`]: the thin async transport (tokio-rustls with a client
//!   certificate, connection pool, deadlines, version negotiation).
//! - `testing` (feature `testing`): a real PyKMIP server for tests.
#![forbid(unsafe_code)]

pub mod client;
pub mod error;
pub mod message;
pub mod spec;
pub mod ttlv;

#[cfg(feature = "testing")]
pub mod testing;

pub use client::{Client, ClientSettings, TlsIdentity};
pub use error::Error;
pub use message::{KeyAttributes, ProtocolVersion, Request, Response};

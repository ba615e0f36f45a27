//! kms-core: an AWS KMS compatible service (JSON 1.1, `TrentService`).
//!
//! Built so far: the API model as data ([`model`]) and model-driven request
//! validation with AWS's error messages ([`validate`]). The service itself
//! (issue 5) builds on these.
#![forbid(unsafe_code)]

pub mod asymmetric;
pub mod asymops;
pub mod auth;
pub mod authz;
pub mod crypto;
pub mod custom_key_stores;
pub mod ed25519ph;
pub mod error;
pub mod ids;
pub mod keyops;
pub mod keys;
pub mod keyspec;
pub mod mldsa_mu;
pub mod model;
pub mod ops;
pub mod protocol;
pub mod resourceops;
pub mod server;
pub mod service;
pub mod store;
pub mod validate;
pub mod xks;

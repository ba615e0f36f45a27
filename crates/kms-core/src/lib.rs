//! kms-core: an AWS KMS compatible service (JSON 1.1, `TrentService`).
//!
//! Modules by domain (see docs/ARCHITECTURE.md for the request path):
//!
//! * [`api`] — the wire protocol: model, validation, typed requests and
//!   responses generated from the model, errors;
//! * [`pipeline`] — one request's steps (decode, authenticate, validate,
//!   resolve, authorize, dispatch, encode) over a [`context::RequestContext`];
//! * [`ops`] — the operations;
//! * [`keys`] — key records, states, specs and usages, identifiers;
//! * [`crypto`] — symmetric and asymmetric cryptography, ciphertext formats;
//! * [`store`] — persistence and the in-memory cache;
//! * [`xks`] — external key stores;
//! * [`auth`] — callers and SigV4; [`service`] and [`server`] — the service
//!   and its HTTP server.
#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod clock;
pub mod context;
pub mod crypto;
pub mod health;
pub mod keys;
pub mod metrics;
pub mod ops;
pub mod pipeline;
pub mod server;
pub mod service;
pub mod store;
pub mod xks;

// Paths kept for existing callers.
pub use crypto::{ed25519ph, mldsa_mu};
pub use keys::spec as keyspec;
pub use ops::keys as resourceops;

//! The KMS side of the XKS Proxy API v1: signed, mutually authenticated
//! calls on AWS KMS's time budget, with the response checks KMS applies.
//!
//! The wire types are those of [`xks_wire`]; signing is [`sigv4::sign`].
//! Everything that decides something is pure and unit-tested without
//! sockets: configuration ([`config`]), request building and signing
//! ([`request`]), the time budget ([`Budget`]) and response validation
//! ([`validate`]). [`XksClient`] is the thin I/O shell around them
//! (reqwest over rustls with the aws-lc-rs provider, pooled, HTTP/2 when the
//! proxy offers it).
//!
//! ```no_run
//! # async fn demo(ca_pem: Vec<u8>) -> Result<(), xks_client::Error> {
//! use xks_client::{XksClient, XksClientConfig, encrypt_request};
//! use xks_wire::RequestMetadata;
//! let config = XksClientConfig::new(
//!     "https://xks.example.com",
//!     "/kms/xks/v1",
//!     "us-east-1",
//!     "ABCDEFGHIJKLMNOPQRST",
//!     "K6pTUf2vJrcNFWcL2rH0a6xSrcqGsX8Lzv2wXv1Qd4I=",
//!     ca_pem,
//! );
//! let client = XksClient::new(&config)?;
//! let metadata = RequestMetadata {
//!     aws_principal_arn: Some("arn:aws:iam::111122223333:user/Alice".into()),
//!     kms_key_arn: Some("arn:aws:kms:us-east-1:111122223333:key/1".into()),
//!     kms_operation: Some("Encrypt".into()),
//!     kms_request_id: Some("4112f4d6-db54-4af4-ae30-c55a22a8dfae".into()),
//!     ..Default::default()
//! };
//! let key = "my-key".parse().map_err(|e: xks_wire::IdError| {
//!     xks_client::Error::InvalidRequest(e.to_string())
//! })?;
//! let sealed = client
//!     .encrypt(&key, &encrypt_request(metadata, b"data key", None, true))
//!     .await?;
//! # let _ = sealed; Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod client;
pub mod config;
pub mod error;
pub mod request;
pub mod tls;
pub mod validate;

pub use client::{CallStats, XksClient};
pub use config::{
    Budget, ClientIdentity, ConfigError, ValidConfig, XksClientConfig, DEFAULT_ATTEMPT_TIMEOUT,
    DEFAULT_DEADLINE, MAX_ATTEMPTS,
};
pub use error::{Error, ErrorKind, InvalidResponse, ProxyErrorName};
pub use request::{decrypt_request, encrypt_request, PreparedRequest};
pub use tls::rustls_config;
pub use validate::RawResponse;

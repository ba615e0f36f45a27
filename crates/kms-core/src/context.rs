//! The request context: everything the pipeline learns about one request,
//! built step by step ([`crate::pipeline`]) and read by the operations, the
//! authorization step, the access log (and later the audit log and
//! metrics) instead of re-deriving it.

use crate::api::Operation;
use crate::auth::Caller;
use crate::store::KeyEntry;
use std::net::SocketAddr;
use std::sync::Arc;

/// What a resolved key is to the operation (the IAM action differs per
/// role for ReEncrypt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// The key the operation uses or manages (`KeyId`, `TargetKeyId`).
    Key,
    /// ReEncrypt's source key (the ciphertext's key): `kms:ReEncryptFrom`.
    Source,
    /// ReEncrypt's destination key: `kms:ReEncryptTo`.
    Destination,
}

/// A key named by the request, resolved once by the pipeline (alias names
/// and ARNs followed, the ciphertext's key for Decrypt and ReEncrypt).
#[derive(Debug, Clone)]
pub struct ResolvedKey {
    pub role: KeyRole,
    pub entry: Arc<KeyEntry>,
}

/// An alias the request names (CreateAlias, UpdateAlias, DeleteAlias): the
/// alias is a resource of its own for authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedAlias {
    /// `alias/...`.
    pub name: String,
    /// `arn:aws:kms:<region>:<account>:alias/...`.
    pub arn: String,
}

/// The keys and aliases a request names.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub keys: Vec<ResolvedKey>,
    pub aliases: Vec<NamedAlias>,
}

impl Resolved {
    /// The key in `role`, if the request names one.
    pub fn get(&self, role: KeyRole) -> Option<&Arc<KeyEntry>> {
        self.keys.iter().find(|k| k.role == role).map(|k| &k.entry)
    }
}

/// How the request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not finished yet.
    Pending,
    Success,
    /// The AWS error type (`__type`) the caller received.
    Error(&'static str),
}

/// Who called, from where, and what the request is.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The `x-amzn-RequestId` of the reply.
    pub request_id: String,
    /// The peer's address, when the server knows it.
    pub source: Option<SocketAddr>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// Whether the request came over TLS.
    pub tls: bool,
    /// Set by the decode step.
    pub operation: Option<Operation>,
    /// Set by the authenticate step.
    pub caller: Option<Caller>,
    /// Set by the resolve step.
    pub resolved: Resolved,
    pub outcome: Outcome,
    /// The audit log's `requestParameters` (an allow-list of the body's
    /// fields, [`crate::audit::request_parameters`]); set after decoding.
    pub request_parameters: Option<serde_json::Value>,
    /// The message the caller received, on failure.
    pub error_message: Option<String>,
}

impl RequestContext {
    pub fn new(request_id: String) -> RequestContext {
        RequestContext {
            request_id,
            source: None,
            user_agent: None,
            tls: false,
            operation: None,
            caller: None,
            resolved: Resolved::default(),
            outcome: Outcome::Pending,
            request_parameters: None,
            error_message: None,
        }
    }
}

/// Where a request came from (what the server knows beyond the bytes).
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer {
    pub address: Option<SocketAddr>,
    pub tls: bool,
}

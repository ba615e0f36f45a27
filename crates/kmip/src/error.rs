//! The client's one error type.

use crate::message::ProtocolVersion;
use crate::spec::{Operation, ResultReason, ResultStatus};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Bad client configuration (certificates, addresses).
    #[error("KMIP client configuration: {0}")]
    Config(String),
    /// TCP connect or TLS handshake failed: the server is unreachable.
    #[error("cannot reach the KMIP server: {0}")]
    Unreachable(String),
    /// The connection broke during an exchange.
    #[error("KMIP connection failed: {0}")]
    Io(String),
    /// No answer within the configured time (connect, pool wait or request).
    #[error("KMIP server did not answer within {0} ms")]
    Timeout(u64),
    /// The server's bytes are not a well-formed response.
    #[error("malformed KMIP response: {0}")]
    Malformed(String),
    /// The server answered with a failure.
    #[error("KMIP {operation:?} failed: {status:?}, reason {reason:?}, message {message:?}")]
    Failed {
        operation: Operation,
        status: ResultStatus,
        reason: Option<ResultReason>,
        message: Option<String>,
    },
    /// Discover Versions found no version both sides speak.
    #[error("the KMIP server speaks none of {offered:?} (it offers {server:?})")]
    NoCommonVersion {
        offered: Vec<ProtocolVersion>,
        server: Vec<ProtocolVersion>,
    },
}

impl Error {
    /// The result reason of a server failure.
    pub fn reason(&self) -> Option<ResultReason> {
        match self {
            Error::Failed { reason, .. } => *reason,
            _ => None,
        }
    }
}

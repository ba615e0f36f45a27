//! The client's typed errors and the coarse classification kms-core maps
//! to AWS exceptions.

use crate::config::ConfigError;
use std::fmt;
use std::time::Duration;
use xks_wire::ErrorName;

/// The `errorName` of a proxy error response: one of the spec's, or a name
/// the spec does not define (kept verbatim, truncated to 128 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProxyErrorName {
    Known(ErrorName),
    Unknown(String),
}

impl ProxyErrorName {
    pub fn parse(name: &str) -> Self {
        match name.parse::<ErrorName>() {
            Ok(n) => ProxyErrorName::Known(n),
            Err(()) => ProxyErrorName::Unknown(
                xks_wire::error::sanitize_message(name)
                    .chars()
                    .take(128)
                    .collect(),
            ),
        }
    }

    pub fn known(&self) -> Option<ErrorName> {
        match self {
            ProxyErrorName::Known(n) => Some(*n),
            ProxyErrorName::Unknown(_) => None,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ProxyErrorName::Known(n) => n.as_str(),
            ProxyErrorName::Unknown(s) => s,
        }
    }
}

impl fmt::Display for ProxyErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a proxy response was refused. Carries lengths and names only, never
/// field contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidResponse {
    #[error("HTTP status {0} is neither 200 nor an error status")]
    UnexpectedStatus(u16),
    #[error("error response (HTTP {status}) without a valid XKS error body")]
    UnparseableErrorBody { status: u16 },
    #[error("content type is {0:?}, not application/json")]
    ContentType(Option<String>),
    #[error("response body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("response body is not a valid response: {0}")]
    Json(String),
    #[error("initializationVector is {0} bytes, not 12 or 16")]
    IvLength(usize),
    #[error("authenticationTag is {0} bytes, not 16")]
    TagLength(usize),
    #[error("ciphertext is {got} bytes, plaintext {expected}")]
    CiphertextLength { expected: usize, got: usize },
    #[error("plaintext is {got} bytes, ciphertext {expected}")]
    PlaintextLength { expected: usize, got: usize },
    #[error("ciphertextMetadata is {0} bytes, more than 20")]
    MetadataTooLong(usize),
    #[error("ciphertextDataIntegrityValue was requested but is missing")]
    CdivMissing,
    #[error("ciphertextDataIntegrityValue does not match the response")]
    CdivMismatch,
    #[error("xksProxyFleetSize is 0")]
    FleetSizeZero,
    #[error("ekmFleetDetails has {0} entries, not 1 to 10")]
    EkmFleetCount(usize),
    #[error("ekmFleetDetails healthStatus {0:?} is not ACTIVE, DEGRADED or UNAVAILABLE")]
    HealthStatus(String),
    #[error("keyUsage has {0} entries, more than 10")]
    KeyUsageCount(usize),
}

/// Everything a call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The configuration was refused (at construction).
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The caller's request is not a valid XKS request; nothing was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The proxy answered with an XKS error body. Never retried.
    #[error("proxy error {name} (HTTP {status}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Proxy {
        name: ProxyErrorName,
        status: u16,
        message: Option<String>,
    },
    /// No TCP connection: DNS failure, refused, unreachable. Retried once.
    #[error("cannot connect to the proxy after {attempts} attempt(s): {reason}")]
    Connect { attempts: u32, reason: String },
    /// TLS failed: untrusted or invalid server certificate, a client
    /// certificate the proxy refused or required, protocol failure.
    /// Not retried.
    #[error("TLS failure: {reason}")]
    Tls { reason: String },
    /// The budget ran out (per-attempt timeout and/or overall deadline).
    #[error("proxy did not answer in time ({attempts} attempt(s), {elapsed:?})")]
    Timeout { attempts: u32, elapsed: Duration },
    /// An established connection broke before a full response (reset,
    /// closed early, HTTP protocol error). Not retried: the proxy may have
    /// acted on the request.
    #[error("connection to the proxy failed mid-request: {reason}")]
    Disconnected { reason: String },
    /// The proxy answered something KMS refuses.
    #[error("invalid proxy response: {0}")]
    InvalidResponse(#[from] InvalidResponse),
}

/// A coarse classification for mapping to AWS exceptions (see README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Local configuration is wrong.
    Config,
    /// The caller built an invalid request.
    InvalidRequest,
    /// Proxy not reachable: connect failure, timeout, broken connection.
    Unreachable,
    /// TLS configuration problem on either side.
    Tls,
    /// The proxy broke the protocol.
    InvalidResponse,
    /// The proxy rejected the SigV4 credential (AuthenticationFailedException).
    Authentication,
    /// The proxy denied the request by policy (AccessDeniedException).
    AccessDenied,
    /// KeyNotFoundException.
    KeyNotFound,
    /// InvalidUriPathException: the key store's URI path is wrong.
    InvalidUriPath,
    /// InvalidCiphertextException (Decrypt).
    InvalidCiphertext,
    /// ThrottlingException.
    Throttled,
    /// Any other proxy error: the external key or its manager is not usable
    /// (InvalidState, InvalidKeyUsage, Validation, Internal, Unsupported,
    /// DependencyTimeout, unknown names).
    ProxyFailure,
}

impl Error {
    /// Coarse classification.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) => ErrorKind::Config,
            Error::InvalidRequest(_) => ErrorKind::InvalidRequest,
            Error::Connect { .. } | Error::Timeout { .. } | Error::Disconnected { .. } => {
                ErrorKind::Unreachable
            }
            Error::Tls { .. } => ErrorKind::Tls,
            Error::InvalidResponse(_) => ErrorKind::InvalidResponse,
            Error::Proxy { name, .. } => match name.known() {
                Some(ErrorName::AuthenticationFailedException) => ErrorKind::Authentication,
                Some(ErrorName::AccessDeniedException) => ErrorKind::AccessDenied,
                Some(ErrorName::KeyNotFoundException) => ErrorKind::KeyNotFound,
                Some(ErrorName::InvalidUriPathException) => ErrorKind::InvalidUriPath,
                Some(ErrorName::InvalidCiphertextException) => ErrorKind::InvalidCiphertext,
                Some(ErrorName::ThrottlingException) => ErrorKind::Throttled,
                _ => ErrorKind::ProxyFailure,
            },
        }
    }

    /// Whether this client retries an attempt that failed this way
    /// (within the budget): connect failures and timeouts only.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Connect { .. } | Error::Timeout { .. })
    }

    /// Whether the failure is on the path to the proxy rather than in what
    /// the proxy said.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::Tls { .. }
                | Error::Timeout { .. }
                | Error::Disconnected { .. }
        )
    }

    /// The spec error name, when the proxy sent one the spec defines.
    pub fn proxy_error_name(&self) -> Option<ErrorName> {
        match self {
            Error::Proxy { name, .. } => name.known(),
            _ => None,
        }
    }

    /// The number of attempts made, for transport failures that record it.
    pub fn attempts(&self) -> Option<u32> {
        match self {
            Error::Connect { attempts, .. } | Error::Timeout { attempts, .. } => Some(*attempts),
            _ => None,
        }
    }

    /// A short stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::InvalidRequest(_) => "invalid_request",
            Error::Proxy { .. } => "proxy_error",
            Error::Connect { .. } => "connect",
            Error::Tls { .. } => "tls",
            Error::Timeout { .. } => "timeout",
            Error::Disconnected { .. } => "disconnected",
            Error::InvalidResponse(_) => "invalid_response",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(name: &str) -> Error {
        Error::Proxy {
            name: ProxyErrorName::parse(name),
            status: 400,
            message: None,
        }
    }

    #[test]
    fn kinds_and_retry() {
        assert_eq!(
            proxy("AuthenticationFailedException").kind(),
            ErrorKind::Authentication
        );
        assert_eq!(proxy("KeyNotFoundException").kind(), ErrorKind::KeyNotFound);
        assert_eq!(
            proxy("InvalidUriPathException").kind(),
            ErrorKind::InvalidUriPath
        );
        assert_eq!(
            proxy("InvalidCiphertextException").kind(),
            ErrorKind::InvalidCiphertext
        );
        assert_eq!(proxy("ThrottlingException").kind(), ErrorKind::Throttled);
        assert_eq!(
            proxy("AccessDeniedException").kind(),
            ErrorKind::AccessDenied
        );
        assert_eq!(
            proxy("InvalidStateException").kind(),
            ErrorKind::ProxyFailure
        );
        assert_eq!(proxy("SomethingElse").kind(), ErrorKind::ProxyFailure);
        assert_eq!(proxy("SomethingElse").proxy_error_name(), None);
        assert_eq!(
            proxy("KeyNotFoundException").proxy_error_name(),
            Some(ErrorName::KeyNotFoundException)
        );
        for e in ErrorName::ALL {
            assert!(!proxy(e.as_str()).is_retryable());
            assert!(!proxy(e.as_str()).is_transport());
        }
        let t = Error::Timeout {
            attempts: 2,
            elapsed: Duration::from_millis(500),
        };
        assert!(t.is_retryable() && t.is_transport());
        assert_eq!(t.kind(), ErrorKind::Unreachable);
        assert_eq!(t.attempts(), Some(2));
        let c = Error::Connect {
            attempts: 1,
            reason: "refused".into(),
        };
        assert!(c.is_retryable());
        let tls = Error::Tls {
            reason: "bad cert".into(),
        };
        assert!(!tls.is_retryable() && tls.is_transport());
        assert_eq!(tls.kind(), ErrorKind::Tls);
        assert!(!Error::InvalidResponse(InvalidResponse::CdivMismatch).is_retryable());
    }

    #[test]
    fn unknown_names_are_sanitized() {
        let n = ProxyErrorName::parse("Bad\nName\u{1F600}");
        assert_eq!(n, ProxyErrorName::Unknown("Bad?Name?".into()));
        let long = ProxyErrorName::parse(&"x".repeat(1000));
        assert_eq!(long.as_str().len(), 128);
    }
}

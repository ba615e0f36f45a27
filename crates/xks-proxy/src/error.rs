//! The proxy's one error type and its mapping to the wire.

use crate::backend::BackendError;
use std::borrow::Cow;
use xks_wire::{ErrorBody, ErrorName};

/// An XKS error: the spec's name (which fixes the HTTP status) and a
/// message safe to show the caller. `detail` is for the log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XksError {
    pub name: ErrorName,
    pub message: Cow<'static, str>,
    pub detail: Option<String>,
}

impl XksError {
    pub fn new(name: ErrorName, message: impl Into<Cow<'static, str>>) -> Self {
        XksError {
            name,
            message: message.into(),
            detail: None,
        }
    }

    /// Adds a reason that goes to the log, never to the caller.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn validation(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorName::ValidationException, message)
    }

    pub fn status(&self) -> u16 {
        self.name.status()
    }

    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&ErrorBody::new(self.name, &self.message))
            .unwrap_or_else(|_| br#"{"errorName":"InternalException"}"#.to_vec())
    }
}

impl From<BackendError> for XksError {
    fn from(e: BackendError) -> Self {
        use ErrorName::*;
        let (name, message): (ErrorName, &'static str) = match &e {
            BackendError::KeyNotFound => (KeyNotFoundException, "The specified external key was not found."),
            BackendError::InvalidState(_) => (
                InvalidStateException,
                "The external key is disabled, deactivated or blocked.",
            ),
            BackendError::InvalidKeyUsage => (
                InvalidKeyUsageException,
                "The external key does not support the requested operation.",
            ),
            BackendError::InvalidCiphertext(_) => (
                InvalidCiphertextException,
                "The ciphertext, initialization vector, additional authenticated data, ciphertext metadata or authentication tag is corrupted, missing, or otherwise invalid.",
            ),
            BackendError::Timeout => (
                DependencyTimeoutException,
                "The external key manager did not respond in time.",
            ),
            BackendError::Unavailable(_) => (
                DependencyTimeoutException,
                "The external key manager is unavailable.",
            ),
            BackendError::Internal(_) => (
                InternalException,
                "The external key manager failed to process the request.",
            ),
        };
        XksError::new(name, message).with_detail(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_errors_map_to_spec_statuses() {
        let cases = [
            (BackendError::KeyNotFound, 404),
            (BackendError::InvalidState("x".into()), 400),
            (BackendError::InvalidKeyUsage, 400),
            (BackendError::InvalidCiphertext("x"), 400),
            (BackendError::Timeout, 503),
            (BackendError::Unavailable("x".into()), 503),
            (BackendError::Internal("x".into()), 500),
        ];
        for (e, status) in cases {
            let x = XksError::from(e);
            assert_eq!(x.status(), status);
            let body: ErrorBody = serde_json::from_slice(&x.body()).unwrap();
            assert!(body.message_is_valid());
            assert_eq!(body.error_name, x.name.as_str());
        }
    }

    #[test]
    fn a_huge_message_gives_a_small_body() {
        let x = XksError::validation(format!("bad value {}", "k".repeat(200_000)));
        let body = x.body();
        assert!(body.len() < 600, "{} bytes", body.len());
        let parsed: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert!(parsed.message_is_valid());
    }
}

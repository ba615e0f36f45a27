//! The spec's error table: names, HTTP statuses and the error body.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Every `errorName` of the spec's error table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorName {
    ValidationException,
    InvalidStateException,
    InvalidCiphertextException,
    InvalidKeyUsageException,
    AuthenticationFailedException,
    AccessDeniedException,
    KeyNotFoundException,
    InvalidUriPathException,
    ThrottlingException,
    UnsupportedOperationException,
    DependencyTimeoutException,
    InternalException,
}

impl ErrorName {
    pub const ALL: [ErrorName; 12] = [
        ErrorName::ValidationException,
        ErrorName::InvalidStateException,
        ErrorName::InvalidCiphertextException,
        ErrorName::InvalidKeyUsageException,
        ErrorName::AuthenticationFailedException,
        ErrorName::AccessDeniedException,
        ErrorName::KeyNotFoundException,
        ErrorName::InvalidUriPathException,
        ErrorName::ThrottlingException,
        ErrorName::UnsupportedOperationException,
        ErrorName::DependencyTimeoutException,
        ErrorName::InternalException,
    ];

    /// HTTP status code the spec assigns to this error.
    pub fn status(self) -> u16 {
        use ErrorName::*;
        match self {
            ValidationException
            | InvalidStateException
            | InvalidCiphertextException
            | InvalidKeyUsageException => 400,
            AuthenticationFailedException => 401,
            AccessDeniedException => 403,
            KeyNotFoundException | InvalidUriPathException => 404,
            ThrottlingException => 429,
            InternalException => 500,
            UnsupportedOperationException => 501,
            DependencyTimeoutException => 503,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorName::*;
        match self {
            ValidationException => "ValidationException",
            InvalidStateException => "InvalidStateException",
            InvalidCiphertextException => "InvalidCiphertextException",
            InvalidKeyUsageException => "InvalidKeyUsageException",
            AuthenticationFailedException => "AuthenticationFailedException",
            AccessDeniedException => "AccessDeniedException",
            KeyNotFoundException => "KeyNotFoundException",
            InvalidUriPathException => "InvalidUriPathException",
            ThrottlingException => "ThrottlingException",
            UnsupportedOperationException => "UnsupportedOperationException",
            DependencyTimeoutException => "DependencyTimeoutException",
            InternalException => "InternalException",
        }
    }
}

impl fmt::Display for ErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorName {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        ErrorName::ALL
            .iter()
            .copied()
            .find(|e| e.as_str() == s)
            .ok_or(())
    }
}

/// The error body `{"errorName": ..., "errorMessage": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// Longest `errorMessage` allowed: "less than 512 characters".
pub const MAX_ERROR_MESSAGE: usize = 511;

impl ErrorBody {
    /// Builds a body whose message satisfies the spec: printable ASCII
    /// (0x20..=0x7e) only, fewer than 512 characters.
    pub fn new(name: ErrorName, message: &str) -> Self {
        ErrorBody {
            error_name: name.as_str().to_owned(),
            error_message: Some(sanitize_message(message)),
        }
    }

    /// Whether the message obeys the spec's character and length rules.
    pub fn message_is_valid(&self) -> bool {
        self.error_message.as_deref().is_none_or(|m| {
            m.len() <= MAX_ERROR_MESSAGE && m.bytes().all(|b| (0x20..=0x7e).contains(&b))
        })
    }
}

/// Replaces non-printable or non-ASCII characters with `?` and truncates.
pub fn sanitize_message(message: &str) -> String {
    message
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(MAX_ERROR_MESSAGE)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_table() {
        assert_eq!(ErrorName::ValidationException.status(), 400);
        assert_eq!(ErrorName::AuthenticationFailedException.status(), 401);
        assert_eq!(ErrorName::AccessDeniedException.status(), 403);
        assert_eq!(ErrorName::InvalidUriPathException.status(), 404);
        assert_eq!(ErrorName::ThrottlingException.status(), 429);
        assert_eq!(ErrorName::InternalException.status(), 500);
        assert_eq!(ErrorName::UnsupportedOperationException.status(), 501);
        assert_eq!(ErrorName::DependencyTimeoutException.status(), 503);
        for e in ErrorName::ALL {
            assert_eq!(e.as_str().parse::<ErrorName>(), Ok(e));
        }
    }

    #[test]
    fn messages_are_sanitized() {
        let long = "é\n".repeat(600);
        let body = ErrorBody::new(ErrorName::InternalException, &long);
        assert!(body.message_is_valid());
        assert_eq!(body.error_message.as_deref().map(str::len), Some(511));
        let json = serde_json::to_string(&body).unwrap();
        assert!(json.starts_with("{\"errorName\":\"InternalException\",\"errorMessage\":\"??"));
    }
}

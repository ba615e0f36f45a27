//! External key store errors: the custom key store exceptions of the model,
//! and the one mapping of XKS client failures to what KMS reports —
//! management exceptions (Create/UpdateCustomKeyStore, CreateKey), the
//! `ConnectionErrorCode` of a failed connection, and the
//! `KMSInvalidStateException` messages of cryptographic operations.

use crate::api::error::KmsError;
use xks_client::{Error as XksError, ErrorKind};
use xks_wire::ErrorName;

pub use crate::api::error::{KeyStoreError, KeyStoreErrorKind};

/// Shorthand for a custom key store exception.
pub fn ks(kind: KeyStoreErrorKind, message: impl Into<String>) -> KmsError {
    KmsError::KeyStore(KeyStoreError {
        kind,
        message: message.into(),
    })
}

/// `ConnectionErrorCode` of a connection attempt that failed this way.
pub fn connection_error_code(e: &XksError) -> &'static str {
    match e {
        XksError::Timeout { .. } => "XKS_PROXY_TIMED_OUT",
        XksError::Connect { .. } | XksError::Disconnected { .. } => "XKS_PROXY_NOT_REACHABLE",
        XksError::Tls { .. } => "XKS_PROXY_INVALID_TLS_CONFIGURATION",
        XksError::Config(_) | XksError::InvalidRequest(_) => "INTERNAL_ERROR",
        XksError::InvalidResponse(_) => "XKS_PROXY_INVALID_RESPONSE",
        XksError::Proxy { .. } => match e.kind() {
            ErrorKind::Authentication => "INVALID_CREDENTIALS",
            ErrorKind::AccessDenied => "XKS_PROXY_ACCESS_DENIED",
            ErrorKind::InvalidUriPath => "XKS_PROXY_INVALID_CONFIGURATION",
            _ => "XKS_PROXY_INVALID_RESPONSE",
        },
    }
}

/// The exception of Create/UpdateCustomKeyStore when probing the proxy
/// (GetHealthStatus) fails.
pub fn management_error(e: &XksError) -> KmsError {
    use KeyStoreErrorKind as K;
    match e {
        XksError::Timeout { .. } => ks(
            K::XksProxyUriUnreachable,
            "KMS cannot reach the external key store proxy: it did not respond within the timeout period. Verify the XksProxyUriEndpoint and that the proxy is running.",
        ),
        XksError::Connect { .. } | XksError::Disconnected { .. } => ks(
            K::XksProxyUriUnreachable,
            "KMS cannot reach the external key store proxy. Verify the XksProxyUriEndpoint and that the proxy is running.",
        ),
        XksError::Tls { .. } => ks(
            K::XksProxyUriUnreachable,
            "KMS cannot establish a TLS connection with the external key store proxy. Verify the proxy's TLS certificate and the TLS trust kms-core is configured with for this endpoint.",
        ),
        XksError::InvalidResponse(_) => ks(
            K::XksProxyInvalidResponse,
            "KMS cannot interpret the response it received from the external key store proxy.",
        ),
        XksError::Config(c) => ks(
            K::XksProxyInvalidConfiguration,
            format!("The external key store proxy configuration is not valid: {c}"),
        ),
        XksError::InvalidRequest(m) => KmsError::Internal(format!("Invalid XKS request: {m}")),
        XksError::Proxy { .. } => match e.kind() {
            ErrorKind::Authentication => ks(
                K::XksProxyIncorrectAuthenticationCredential,
                "The external key store proxy rejected the request because the XksProxyAuthenticationCredential is not valid.",
            ),
            ErrorKind::InvalidUriPath => ks(
                K::XksProxyInvalidConfiguration,
                "The external key store proxy rejected the request because the XksProxyUriPath is not valid.",
            ),
            ErrorKind::AccessDenied => ks(
                K::XksProxyInvalidConfiguration,
                "The external key store proxy denied access to the operation.",
            ),
            _ => ks(
                K::XksProxyInvalidResponse,
                format!(
                    "The external key store proxy answered {}.",
                    e.proxy_error_name()
                        .map(ErrorName::as_str)
                        .unwrap_or("an unknown error")
                ),
            ),
        },
    }
}

/// The error of CreateKey (Origin EXTERNAL_KEY_STORE) when GetKeyMetadata
/// fails.
pub fn create_key_error(e: &XksError, xks_key_id: &str) -> KmsError {
    use KeyStoreErrorKind as K;
    match e.kind() {
        ErrorKind::KeyNotFound => ks(
            K::XksKeyNotFound,
            format!("The external key store proxy could not find the external key {xks_key_id}."),
        ),
        ErrorKind::ProxyFailure
            if matches!(
                e.proxy_error_name(),
                Some(ErrorName::InvalidStateException | ErrorName::InvalidKeyUsageException)
            ) =>
        {
            ks(
                K::XksKeyInvalidConfiguration,
                format!(
                    "The external key {xks_key_id} is not enabled or does not support encryption and decryption."
                ),
            )
        }
        ErrorKind::Unreachable if matches!(e, XksError::Timeout { .. }) => {
            KmsError::DependencyTimeout(
                "The external key store proxy did not respond within the timeout period.".into(),
            )
        }
        _ => ks(K::InvalidState, crypto_message(e)),
    }
}

/// The `KMSInvalidStateException` message of a cryptographic operation
/// that failed this way.
pub fn crypto_message(e: &XksError) -> String {
    let m = match e {
        XksError::Timeout { .. } => {
            "The external key store proxy did not respond to the request within the timeout period. Retry the request."
        }
        XksError::Connect { .. } | XksError::Disconnected { .. } => {
            "KMS cannot communicate with the external key store proxy. Verify that the external key store proxy is running and reachable."
        }
        XksError::Tls { .. } => {
            "KMS cannot establish a TLS connection with the external key store proxy. Verify the proxy's TLS configuration."
        }
        XksError::InvalidResponse(_) => {
            "KMS cannot interpret the response from the external key store proxy. If you see this error repeatedly, report it to your external key store proxy administrator."
        }
        XksError::Config(_) | XksError::InvalidRequest(_) => {
            "The external key store proxy configuration is not valid."
        }
        XksError::Proxy { .. } => match e.kind() {
            ErrorKind::Authentication => {
                "The external key store proxy rejected the request because the XksProxyAuthenticationCredential is not valid. Update the credential of the external key store."
            }
            ErrorKind::AccessDenied => {
                "The external key store proxy denied access to the operation. Verify that the user and the external key are both authorized for this operation, and try the request again."
            }
            ErrorKind::KeyNotFound => {
                "The external key store proxy rejected the request because it could not find the external key."
            }
            ErrorKind::InvalidUriPath => {
                "The external key store proxy rejected the request because of an invalid URI path. Verify the XksProxyUriPath of the external key store."
            }
            ErrorKind::Throttled => {
                "The external key store proxy rejected the request due to a very high request rate. Reduce the frequency of your calls using KMS keys in this external key store."
            }
            _ => match e.proxy_error_name() {
                Some(ErrorName::InvalidStateException) => {
                    "The external key store proxy rejected the request because the external key is disabled or not in a valid state for this operation."
                }
                Some(ErrorName::InvalidKeyUsageException) => {
                    "The external key store proxy rejected the request because the external key does not support the requested operation."
                }
                Some(ErrorName::DependencyTimeoutException) => {
                    "The external key manager did not respond to the external key store proxy within the timeout period. Retry the request."
                }
                _ => {
                    "The external key store proxy reported a failure of the external key manager. Retry the request."
                }
            },
        },
    };
    m.to_owned()
}

/// A cryptographic operation's error: `InvalidCiphertextException` when
/// the proxy says the ciphertext is invalid (Decrypt), otherwise
/// `KMSInvalidStateException` with the cause's message.
pub fn crypto_error(e: &XksError) -> KmsError {
    match e.kind() {
        ErrorKind::InvalidCiphertext => KmsError::InvalidCiphertext(String::new()),
        _ => KmsError::InvalidState(crypto_message(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use xks_client::ProxyErrorName;

    fn proxy(name: &str) -> XksError {
        XksError::Proxy {
            name: ProxyErrorName::parse(name),
            status: 400,
            message: None,
        }
    }

    #[test]
    fn connection_error_codes() {
        let t = XksError::Timeout {
            attempts: 2,
            elapsed: Duration::from_millis(500),
        };
        assert_eq!(connection_error_code(&t), "XKS_PROXY_TIMED_OUT");
        let c = XksError::Connect {
            attempts: 2,
            reason: "refused".into(),
        };
        assert_eq!(connection_error_code(&c), "XKS_PROXY_NOT_REACHABLE");
        let tls = XksError::Tls { reason: "x".into() };
        assert_eq!(
            connection_error_code(&tls),
            "XKS_PROXY_INVALID_TLS_CONFIGURATION"
        );
        assert_eq!(
            connection_error_code(&proxy("AuthenticationFailedException")),
            "INVALID_CREDENTIALS"
        );
        assert_eq!(
            connection_error_code(&proxy("AccessDeniedException")),
            "XKS_PROXY_ACCESS_DENIED"
        );
        assert_eq!(
            connection_error_code(&proxy("InvalidUriPathException")),
            "XKS_PROXY_INVALID_CONFIGURATION"
        );
        assert_eq!(
            connection_error_code(&proxy("InternalException")),
            "XKS_PROXY_INVALID_RESPONSE"
        );
    }

    #[test]
    fn crypto_errors_are_invalid_state_except_invalid_ciphertext() {
        assert_eq!(
            crypto_error(&proxy("InvalidCiphertextException")).type_name(),
            "InvalidCiphertextException"
        );
        for name in [
            "KeyNotFoundException",
            "InvalidStateException",
            "ThrottlingException",
            "AuthenticationFailedException",
            "InternalException",
            "Weird",
        ] {
            let e = crypto_error(&proxy(name));
            assert_eq!(e.type_name(), "KMSInvalidStateException", "{name}");
        }
        assert!(crypto_message(&proxy("InvalidStateException")).contains("disabled"));
        assert!(crypto_message(&proxy("ThrottlingException")).contains("request rate"));
    }

    /// Every failure a proxy call can have, one of each.
    fn every_failure() -> Vec<XksError> {
        let mut v = vec![
            XksError::Timeout {
                attempts: 2,
                elapsed: Duration::from_millis(500),
            },
            XksError::Connect {
                attempts: 2,
                reason: "r".into(),
            },
            XksError::Disconnected { reason: "r".into() },
            XksError::Tls { reason: "r".into() },
            XksError::InvalidResponse(xks_client::InvalidResponse::CdivMismatch),
            XksError::InvalidRequest("r".into()),
            XksError::Config(xks_client::ConfigError::Region),
            proxy("Weird"),
        ];
        v.extend(ErrorName::ALL.iter().map(|n| proxy(n.as_str())));
        v
    }

    /// Management and CreateKey errors are among the operation's modelled
    /// errors; crypto errors are KMSInvalidStateException or
    /// InvalidCiphertextException.
    #[test]
    fn every_mapping_stays_within_the_model() {
        let model = crate::api::model::Model::load().unwrap();
        let allowed = |op: &str| -> Vec<String> {
            model
                .operation(op)
                .unwrap()
                .errors
                .iter()
                .map(|e| e.shape.clone())
                .collect()
        };
        let create_store = allowed("CreateCustomKeyStore");
        let update_store = allowed("UpdateCustomKeyStore");
        let create_key = allowed("CreateKey");
        for e in every_failure() {
            let m = management_error(&e).type_name().to_owned();
            assert!(create_store.contains(&m), "{e}: {m}");
            assert!(update_store.contains(&m), "{e}: {m}");
            let k = create_key_error(&e, "k").type_name().to_owned();
            assert!(create_key.contains(&k), "{e}: {k}");
            let c = crypto_error(&e).type_name();
            assert!(
                c == "KMSInvalidStateException" || c == "InvalidCiphertextException",
                "{e}: {c}"
            );
            let code = connection_error_code(&e);
            let codes = model.shape("ConnectionErrorCodeType").unwrap();
            assert!(
                codes
                    .enum_values
                    .as_ref()
                    .is_some_and(|vals| vals.iter().any(|v| v == code)),
                "{e}: {code}"
            );
        }
    }

    #[test]
    fn create_key_errors() {
        assert_eq!(
            create_key_error(&proxy("KeyNotFoundException"), "k").type_name(),
            "XksKeyNotFoundException"
        );
        assert_eq!(
            create_key_error(&proxy("InvalidStateException"), "k").type_name(),
            "XksKeyInvalidConfigurationException"
        );
        assert_eq!(
            management_error(&proxy("AuthenticationFailedException")).type_name(),
            "XksProxyIncorrectAuthenticationCredentialException"
        );
    }
}

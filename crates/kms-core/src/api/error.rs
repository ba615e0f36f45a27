//! kms-core's one error type and its single mapping to the wire:
//! `{"__type": "<Name>", "message": "..."}` with AWS's HTTP status (400 for
//! every client error, including the ones the model marks 404/409; 500 for
//! server faults).

use std::fmt;

/// The message of every `KMSInternalException`: causes are logged, never
/// sent.
pub const INTERNAL_MESSAGE: &str = "An internal error occurred. Retry the request.";

/// Every error kms-core returns. The message is what the caller sees
/// (except for [`KmsError::Internal`], whose text is logged only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KmsError {
    // Protocol and authentication (not in the model's error shapes).
    Validation(String),
    Serialization(String),
    UnknownOperation(String),
    MissingAuthenticationToken,
    IncompleteSignature(String),
    InvalidSignature(String),
    UnrecognizedClient,
    AccessDenied(String),
    Throttling,
    // Modelled errors.
    NotFound(String),
    Disabled(String),
    InvalidState(String),
    InvalidKeyUsage(String),
    /// `KMSInvalidSignatureException` (Verify).
    KmsInvalidSignature(String),
    /// `KMSInvalidMacException` (VerifyMac).
    KmsInvalidMac(String),
    InvalidCiphertext(String),
    IncorrectKey(String),
    InvalidGrantToken(String),
    InvalidGrantId(String),
    AlreadyExists(String),
    InvalidAliasName(String),
    InvalidArn(String),
    InvalidMarker(String),
    LimitExceeded(String),
    /// `ConflictException` (an on-demand rotation in progress).
    Conflict(String),
    MalformedPolicyDocument(String),
    Tag(String),
    UnsupportedOperation(String),
    CustomKeyStoreNotFound(String),
    DryRunOperation,
    KeyUnavailable(String),
    DependencyTimeout(String),
    Internal(String),
    /// Custom key store and external key store exceptions.
    KeyStore(KeyStoreError),
}

impl KmsError {
    /// The `__type` value.
    pub fn type_name(&self) -> &'static str {
        use KmsError::*;
        match self {
            Validation(_) => "ValidationException",
            Serialization(_) => "SerializationException",
            UnknownOperation(_) => "UnknownOperationException",
            MissingAuthenticationToken => "MissingAuthenticationTokenException",
            IncompleteSignature(_) => "IncompleteSignatureException",
            InvalidSignature(_) => "InvalidSignatureException",
            UnrecognizedClient => "UnrecognizedClientException",
            AccessDenied(_) => "AccessDeniedException",
            Throttling => "ThrottlingException",
            NotFound(_) => "NotFoundException",
            Disabled(_) => "DisabledException",
            InvalidState(_) => "KMSInvalidStateException",
            InvalidKeyUsage(_) => "InvalidKeyUsageException",
            KmsInvalidSignature(_) => "KMSInvalidSignatureException",
            KmsInvalidMac(_) => "KMSInvalidMacException",
            InvalidCiphertext(_) => "InvalidCiphertextException",
            IncorrectKey(_) => "IncorrectKeyException",
            InvalidGrantToken(_) => "InvalidGrantTokenException",
            InvalidGrantId(_) => "InvalidGrantIdException",
            AlreadyExists(_) => "AlreadyExistsException",
            InvalidAliasName(_) => "InvalidAliasNameException",
            InvalidArn(_) => "InvalidArnException",
            InvalidMarker(_) => "InvalidMarkerException",
            LimitExceeded(_) => "LimitExceededException",
            Conflict(_) => "ConflictException",
            MalformedPolicyDocument(_) => "MalformedPolicyDocumentException",
            Tag(_) => "TagException",
            UnsupportedOperation(_) => "UnsupportedOperationException",
            CustomKeyStoreNotFound(_) => "CustomKeyStoreNotFoundException",
            DryRunOperation => "DryRunOperationException",
            KeyUnavailable(_) => "KeyUnavailableException",
            DependencyTimeout(_) => "DependencyTimeoutException",
            Internal(_) => "KMSInternalException",
            KeyStore(e) => e.type_name(),
        }
    }

    /// HTTP status, as AWS KMS sends it.
    pub fn status(&self) -> u16 {
        use KmsError::*;
        match self {
            MissingAuthenticationToken => 403,
            KeyUnavailable(_) | DependencyTimeout(_) | Internal(_) => 500,
            _ => 400,
        }
    }

    pub fn message(&self) -> String {
        use KmsError::*;
        match self {
            MissingAuthenticationToken => "Missing Authentication Token".into(),
            UnrecognizedClient => "The security token included in the request is invalid.".into(),
            Throttling => "Rate exceeded".into(),
            DryRunOperation => {
                "The request would have succeeded, but the DryRun option is set.".into()
            }
            Validation(m)
            | Serialization(m)
            | IncompleteSignature(m)
            | InvalidSignature(m)
            | AccessDenied(m)
            | NotFound(m)
            | Disabled(m)
            | InvalidState(m)
            | InvalidKeyUsage(m)
            | KmsInvalidSignature(m)
            | KmsInvalidMac(m)
            | InvalidCiphertext(m)
            | IncorrectKey(m)
            | InvalidGrantToken(m)
            | InvalidGrantId(m)
            | AlreadyExists(m)
            | InvalidAliasName(m)
            | InvalidArn(m)
            | InvalidMarker(m)
            | LimitExceeded(m)
            | Conflict(m)
            | MalformedPolicyDocument(m)
            | Tag(m)
            | UnsupportedOperation(m)
            | CustomKeyStoreNotFound(m)
            | KeyUnavailable(m)
            | DependencyTimeout(m)
            | Internal(m) => m.clone(),
            UnknownOperation(op) => format!("Unknown operation {op}"),
            KeyStore(e) => e.message().to_owned(),
        }
    }

    /// What the caller is told: the message, except for internal errors,
    /// whose details stay in the log ([`KmsError::details`]).
    pub fn public_message(&self) -> String {
        match self {
            KmsError::Internal(_) => INTERNAL_MESSAGE.to_owned(),
            other => other.message(),
        }
    }

    /// The internal cause of a `KMSInternalException`, for the log only.
    pub fn details(&self) -> Option<&str> {
        match self {
            KmsError::Internal(m) => Some(m),
            _ => None,
        }
    }

    /// The JSON body: `{"__type": ..., "message": ...}`, without `message`
    /// when there is none (as AWS sends KMSInvalidSignatureException,
    /// InvalidCiphertextException...).
    pub fn body(&self) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            #[serde(rename = "__type")]
            kind: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            message: &'a str,
        }
        let message = self.public_message();
        serde_json::to_vec(&Body {
            kind: self.type_name(),
            message: &message,
        })
        .unwrap_or_else(|_| br#"{"__type":"KMSInternalException"}"#.to_vec())
    }

    /// Server faults are retried by SDKs; client errors are not.
    pub fn is_fault(&self) -> bool {
        self.status() >= 500
    }
}

impl fmt::Display for KmsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name(), self.message())
    }
}

impl std::error::Error for KmsError {}

impl From<crate::api::validate::RequestError> for KmsError {
    fn from(e: crate::api::validate::RequestError) -> Self {
        match e {
            crate::api::validate::RequestError::Validation(m) => KmsError::Validation(m),
            crate::api::validate::RequestError::Serialization(m) => KmsError::Serialization(m),
        }
    }
}

/// A custom key store exception of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStoreErrorKind {
    NameInUse,
    InvalidState,
    HasCmks,
    XksProxyUriInUse,
    XksProxyUriEndpointInUse,
    XksProxyUriUnreachable,
    XksProxyIncorrectAuthenticationCredential,
    XksProxyInvalidResponse,
    XksProxyInvalidConfiguration,
    XksKeyNotFound,
    XksKeyInvalidConfiguration,
    XksKeyAlreadyInUse,
}

impl KeyStoreErrorKind {
    pub const ALL: [KeyStoreErrorKind; 12] = [
        KeyStoreErrorKind::NameInUse,
        KeyStoreErrorKind::InvalidState,
        KeyStoreErrorKind::HasCmks,
        KeyStoreErrorKind::XksProxyUriInUse,
        KeyStoreErrorKind::XksProxyUriEndpointInUse,
        KeyStoreErrorKind::XksProxyUriUnreachable,
        KeyStoreErrorKind::XksProxyIncorrectAuthenticationCredential,
        KeyStoreErrorKind::XksProxyInvalidResponse,
        KeyStoreErrorKind::XksProxyInvalidConfiguration,
        KeyStoreErrorKind::XksKeyNotFound,
        KeyStoreErrorKind::XksKeyInvalidConfiguration,
        KeyStoreErrorKind::XksKeyAlreadyInUse,
    ];

    pub fn type_name(self) -> &'static str {
        use KeyStoreErrorKind::*;
        match self {
            NameInUse => "CustomKeyStoreNameInUseException",
            InvalidState => "CustomKeyStoreInvalidStateException",
            HasCmks => "CustomKeyStoreHasCMKsException",
            XksProxyUriInUse => "XksProxyUriInUseException",
            XksProxyUriEndpointInUse => "XksProxyUriEndpointInUseException",
            XksProxyUriUnreachable => "XksProxyUriUnreachableException",
            XksProxyIncorrectAuthenticationCredential => {
                "XksProxyIncorrectAuthenticationCredentialException"
            }
            XksProxyInvalidResponse => "XksProxyInvalidResponseException",
            XksProxyInvalidConfiguration => "XksProxyInvalidConfigurationException",
            XksKeyNotFound => "XksKeyNotFoundException",
            XksKeyInvalidConfiguration => "XksKeyInvalidConfigurationException",
            XksKeyAlreadyInUse => "XksKeyAlreadyInUseException",
        }
    }
}

/// A custom key store exception with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStoreError {
    pub kind: KeyStoreErrorKind,
    pub message: String,
}

impl KeyStoreError {
    pub fn type_name(&self) -> &'static str {
        self.kind.type_name()
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// One of each kind (for the model check in `error.rs`).
    pub fn examples() -> impl Iterator<Item = KeyStoreError> {
        KeyStoreErrorKind::ALL
            .into_iter()
            .map(|kind| KeyStoreError {
                kind,
                message: "m".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::Model;

    fn all() -> Vec<KmsError> {
        use KmsError::*;
        let m = || "m".to_string();
        vec![
            Validation(m()),
            Serialization(m()),
            UnknownOperation("X".into()),
            MissingAuthenticationToken,
            IncompleteSignature(m()),
            InvalidSignature(m()),
            UnrecognizedClient,
            AccessDenied(m()),
            Throttling,
            NotFound(m()),
            Disabled(m()),
            InvalidState(m()),
            InvalidKeyUsage(m()),
            KmsInvalidSignature(m()),
            KmsInvalidMac(m()),
            InvalidCiphertext(m()),
            IncorrectKey(m()),
            InvalidGrantToken(m()),
            InvalidGrantId(m()),
            AlreadyExists(m()),
            InvalidAliasName(m()),
            InvalidArn(m()),
            InvalidMarker(m()),
            LimitExceeded(m()),
            Conflict(m()),
            MalformedPolicyDocument(m()),
            Tag(m()),
            UnsupportedOperation(m()),
            DryRunOperation,
            KeyUnavailable(m()),
            DependencyTimeout(m()),
            Internal(m()),
        ]
        .into_iter()
        .chain(KeyStoreError::examples().map(KeyStore))
        .collect()
    }

    #[test]
    fn modelled_names_exist_in_the_model_and_faults_are_500() {
        let model = Model::load().unwrap();
        let unmodelled = [
            "ValidationException",
            "SerializationException",
            "UnknownOperationException",
            "MissingAuthenticationTokenException",
            "IncompleteSignatureException",
            "InvalidSignatureException",
            "UnrecognizedClientException",
            "AccessDeniedException",
            "ThrottlingException",
        ];
        for e in all() {
            let name = e.type_name();
            if unmodelled.contains(&name) {
                continue;
            }
            let shape = model
                .shape(name)
                .unwrap_or_else(|| panic!("{name} is not in the model"));
            assert!(shape.exception, "{name}");
            assert_eq!(
                shape.fault,
                e.is_fault(),
                "{name}: fault flag differs from the model"
            );
        }
    }

    #[test]
    fn body_shape() {
        let e = KmsError::NotFound(
            "Key 'arn:aws:kms:us-east-1:000000000000:key/x' does not exist".into(),
        );
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["__type"], "NotFoundException");
        assert_eq!(
            v["message"],
            "Key 'arn:aws:kms:us-east-1:000000000000:key/x' does not exist"
        );
        assert_eq!(e.status(), 400);
        assert_eq!(KmsError::Internal("x".into()).status(), 500);
    }

    #[test]
    fn no_message_member_when_there_is_none() {
        for e in [
            KmsError::KmsInvalidSignature(String::new()),
            KmsError::KmsInvalidMac(String::new()),
            KmsError::InvalidCiphertext(String::new()),
            KmsError::Validation(String::new()),
        ] {
            let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
            assert_eq!(v, serde_json::json!({ "__type": e.type_name() }));
        }
    }

    #[test]
    fn internal_details_never_reach_the_caller() {
        let e = KmsError::Internal("The key store failed: disk I/O error at /var/lib".into());
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["__type"], "KMSInternalException");
        assert_eq!(v["message"], INTERNAL_MESSAGE);
        assert_eq!(
            e.details(),
            Some("The key store failed: disk I/O error at /var/lib")
        );
    }
}

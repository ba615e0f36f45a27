//! kms-core's one error type and its single mapping to the wire:
//! `{"__type": "<Name>", "message": "..."}` with AWS's HTTP status (400 for
//! every client error, including the ones the model marks 404/409; 500 for
//! server faults).

use std::fmt;

/// Every error kms-core returns. The message is what the caller sees.
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
    AlreadyExists(String),
    InvalidAliasName(String),
    InvalidArn(String),
    InvalidMarker(String),
    LimitExceeded(String),
    MalformedPolicyDocument(String),
    Tag(String),
    UnsupportedOperation(String),
    CustomKeyStoreNotFound(String),
    DryRunOperation,
    KeyUnavailable(String),
    DependencyTimeout(String),
    Internal(String),
    /// Custom key store and external key store exceptions.
    KeyStore(crate::xks::errors::KeyStoreError),
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
            AlreadyExists(_) => "AlreadyExistsException",
            InvalidAliasName(_) => "InvalidAliasNameException",
            InvalidArn(_) => "InvalidArnException",
            InvalidMarker(_) => "InvalidMarkerException",
            LimitExceeded(_) => "LimitExceededException",
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
            | AlreadyExists(m)
            | InvalidAliasName(m)
            | InvalidArn(m)
            | InvalidMarker(m)
            | LimitExceeded(m)
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

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "__type": self.type_name(),
            "message": self.message(),
        }))
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

impl From<crate::ids::IdError> for KmsError {
    fn from(e: crate::ids::IdError) -> Self {
        use crate::ids::IdError;
        match e {
            IdError::AliasPrefix | IdError::AliasName(_) | IdError::ReservedAlias(_) => {
                KmsError::InvalidAliasName(e.to_string())
            }
            IdError::Arn(_) => KmsError::InvalidArn(e.to_string()),
            IdError::KeyId(_) => KmsError::NotFound(e.to_string()),
            IdError::Account(_) => KmsError::Validation(e.to_string()),
        }
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
            AlreadyExists(m()),
            InvalidAliasName(m()),
            InvalidArn(m()),
            InvalidMarker(m()),
            LimitExceeded(m()),
            MalformedPolicyDocument(m()),
            Tag(m()),
            UnsupportedOperation(m()),
            DryRunOperation,
            KeyUnavailable(m()),
            DependencyTimeout(m()),
            Internal(m()),
        ]
        .into_iter()
        .chain(crate::xks::errors::KeyStoreError::examples().map(KeyStore))
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
}

//! Request and response bodies of the four operations.
//!
//! Request fields the spec marks REQUIRED are still `Option` here so that a
//! server can tell "missing" from "wrong type" and name the missing field in
//! its ValidationException; `validate_*` functions apply each operation's
//! rules. Unknown fields are ignored, as the spec requires of a proxy.

use crate::b64::{Bytes64, SecretBytes64};
use crate::route::Operation;
use serde::{Deserialize, Serialize};

/// `requestMetadata` as KMS sends it. Future fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_principal_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_source_vpc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_source_vpce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_via_service: Option<String>,
}

impl RequestMetadata {
    /// Checks the fields the spec marks REQUIRED for `op`.
    /// kmsRequestId is opaque: only its presence is checked.
    pub fn validate_for(&self, op: Operation) -> Result<(), String> {
        check_present(&[
            ("kmsRequestId", &self.kms_request_id),
            ("kmsOperation", &self.kms_operation),
        ])?;
        if op != Operation::GetHealthStatus {
            check_present(&[("awsPrincipalArn", &self.aws_principal_arn)])?;
        }
        if matches!(op, Operation::Encrypt | Operation::Decrypt) {
            check_present(&[("kmsKeyArn", &self.kms_key_arn)])?;
        }
        Ok(())
    }
}

impl RequestMetadata {
    /// Exactly the members the spec lists for `op`, as KMS sends them:
    /// GetHealthStatus carries kmsRequestId and kmsOperation only;
    /// GetKeyMetadata leaves kmsKeyArn out when kmsOperation is CreateKey
    /// (the key ARN does not exist yet); Encrypt and Decrypt carry all.
    pub fn for_wire(&self, op: Operation) -> RequestMetadata {
        match op {
            Operation::GetHealthStatus => RequestMetadata {
                kms_operation: self.kms_operation.clone(),
                kms_request_id: self.kms_request_id.clone(),
                ..Default::default()
            },
            Operation::GetKeyMetadata if self.kms_operation.as_deref() == Some("CreateKey") => {
                RequestMetadata {
                    kms_key_arn: None,
                    ..self.clone()
                }
            }
            _ => self.clone(),
        }
    }
}

fn check_present(fields: &[(&str, &Option<String>)]) -> Result<(), String> {
    for (name, value) in fields {
        if value.is_none() {
            return Err(format!("requestMetadata.{name} is required"));
        }
    }
    Ok(())
}

fn require<'a, T>(field: &'a Option<T>, name: &str) -> Result<&'a T, String> {
    field.as_ref().ok_or_else(|| format!("{name} is required"))
}

fn metadata_for(md: &Option<RequestMetadata>, op: Operation) -> Result<&RequestMetadata, String> {
    let md = require(md, "requestMetadata")?;
    md.validate_for(op)?;
    Ok(md)
}

/// GetKeyMetadata request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetKeyMetadataRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_metadata: Option<RequestMetadata>,
}

impl GetKeyMetadataRequest {
    pub fn validate(&self) -> Result<&RequestMetadata, String> {
        metadata_for(&self.request_metadata, Operation::GetKeyMetadata)
    }
}

/// GetKeyMetadata response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetKeyMetadataResponse {
    pub key_spec: String,
    pub key_usage: Vec<String>,
    pub key_status: String,
}

/// Encrypt request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_metadata: Option<RequestMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<Bytes64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<SecretBytes64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_algorithm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_data_integrity_value_algorithm: Option<String>,
}

/// An Encrypt request that passed validation.
#[derive(Debug)]
pub struct ValidEncrypt<'a> {
    pub metadata: &'a RequestMetadata,
    pub plaintext: &'a [u8],
    pub aad: &'a [u8],
    pub want_cdiv: bool,
}

impl EncryptRequest {
    pub fn validate(&self) -> Result<ValidEncrypt<'_>, String> {
        let metadata = metadata_for(&self.request_metadata, Operation::Encrypt)?;
        let plaintext = require(&self.plaintext, "plaintext")?;
        if plaintext.is_empty() {
            return Err("plaintext must not be empty".into());
        }
        check_algorithm(&self.encryption_algorithm)?;
        let want_cdiv = match self.ciphertext_data_integrity_value_algorithm.as_deref() {
            None => false,
            Some(crate::SHA_256) => true,
            Some(_) => {
                return Err("ciphertextDataIntegrityValueAlgorithm must be SHA_256".into());
            }
        };
        Ok(ValidEncrypt {
            metadata,
            plaintext: plaintext.as_ref(),
            aad: self
                .additional_authenticated_data
                .as_ref()
                .map_or(&[][..], |a| a.as_ref()),
            want_cdiv,
        })
    }
}

fn check_algorithm(alg: &Option<String>) -> Result<(), String> {
    match require(alg, "encryptionAlgorithm")?.as_str() {
        crate::AES_GCM => Ok(()),
        _ => Err("encryptionAlgorithm must be AES_GCM".into()),
    }
}

/// Encrypt response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptResponse {
    pub ciphertext: Bytes64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_metadata: Option<Bytes64>,
    pub initialization_vector: Bytes64,
    pub authentication_tag: Bytes64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_data_integrity_value: Option<Bytes64>,
}

/// Decrypt request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecryptRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_metadata: Option<RequestMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<Bytes64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_algorithm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext: Option<Bytes64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_metadata: Option<Bytes64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization_vector: Option<Bytes64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_tag: Option<Bytes64>,
}

/// A Decrypt request that passed validation. Lengths of IV, tag and
/// ciphertext are not checked here: a wrong length is an invalid
/// ciphertext (InvalidCiphertextException), not a malformed request.
#[derive(Debug)]
pub struct ValidDecrypt<'a> {
    pub metadata: &'a RequestMetadata,
    pub ciphertext: &'a [u8],
    pub ciphertext_metadata: Option<&'a [u8]>,
    pub iv: &'a [u8],
    pub tag: &'a [u8],
    pub aad: &'a [u8],
}

impl DecryptRequest {
    pub fn validate(&self) -> Result<ValidDecrypt<'_>, String> {
        let metadata = metadata_for(&self.request_metadata, Operation::Decrypt)?;
        let ciphertext = require(&self.ciphertext, "ciphertext")?;
        check_algorithm(&self.encryption_algorithm)?;
        let iv = require(&self.initialization_vector, "initializationVector")?;
        let tag = require(&self.authentication_tag, "authenticationTag")?;
        let ciphertext_metadata = self.ciphertext_metadata.as_ref().map(|m| m.0.as_slice());
        if ciphertext_metadata.is_some_and(|m| m.len() > crate::MAX_CIPHERTEXT_METADATA) {
            return Err(format!(
                "ciphertextMetadata must not exceed {} bytes",
                crate::MAX_CIPHERTEXT_METADATA
            ));
        }
        Ok(ValidDecrypt {
            metadata,
            ciphertext: &ciphertext.0,
            ciphertext_metadata,
            iv: &iv.0,
            tag: &tag.0,
            aad: self
                .additional_authenticated_data
                .as_ref()
                .map_or(&[][..], |a| a.as_ref()),
        })
    }
}

/// Decrypt response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecryptResponse {
    pub plaintext: SecretBytes64,
}

/// GetHealthStatus request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_metadata: Option<RequestMetadata>,
}

impl HealthRequest {
    /// The GetHealthStatus section marks `requestMetadata`, `kmsRequestId`
    /// and `kmsOperation` REQUIRED (AWS's test client and sample proxy
    /// answer ValidationException without them), although the error table
    /// lists ValidationException for "all except GetHealthStatus";
    /// docs/conformance.md explains why the section wins.
    pub fn validate(&self) -> Result<&RequestMetadata, String> {
        metadata_for(&self.request_metadata, Operation::GetHealthStatus)
    }
}

/// One external key manager in a GetHealthStatus response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EkmFleetDetail {
    pub id: String,
    pub model: String,
    pub health_status: String,
}

/// GetHealthStatus response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthResponse {
    pub xks_proxy_fleet_size: u32,
    pub xks_proxy_vendor: String,
    pub xks_proxy_model: String,
    pub ekm_vendor: String,
    pub ekm_fleet_details: Vec<EkmFleetDetail>,
}

/// `keyStatus` values.
pub mod key_status {
    pub const ENABLED: &str = "ENABLED";
    pub const DISABLED: &str = "DISABLED";
}

/// `keyUsage` values the spec names.
pub mod key_usage {
    pub const ENCRYPT: &str = "ENCRYPT";
    pub const DECRYPT: &str = "DECRYPT";
}

/// `healthStatus` values.
pub mod health_status {
    pub const ACTIVE: &str = "ACTIVE";
    pub const DEGRADED: &str = "DEGRADED";
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    pub const ALL: [&str; 3] = [ACTIVE, DEGRADED, UNAVAILABLE];
}

/// Key spec of every v1 key.
pub const KEY_SPEC_AES_256: &str = "AES_256";

#[cfg(test)]
mod tests {
    use super::*;

    fn md() -> RequestMetadata {
        RequestMetadata {
            aws_principal_arn: Some("arn:aws:iam::123456789012:user/Alice".into()),
            kms_key_arn: Some("arn:aws:kms:us-east-2:123456789012:key/1".into()),
            kms_operation: Some("Encrypt".into()),
            kms_request_id: Some("4112f4d6-db54-4af4-ae30-c55a22a8dfae".into()),
            ..Default::default()
        }
    }

    #[test]
    fn spec_encrypt_example_parses() {
        let body = r#"{
            "requestMetadata": {
                "awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
                "kmsKeyArn": "arn:aws:kms:us-east-2:123456789012:/key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "kmsOperation": "Encrypt",
                "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
                "kmsViaService": "ebs",
                "someFutureField": {"nested": true}
            },
            "additionalAuthenticatedData": "cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n",
            "plaintext": "SGVsbG8gV29ybGQh",
            "encryptionAlgorithm": "AES_GCM",
            "ciphertextDataIntegrityValueAlgorithm": "SHA_256"
        }"#;
        let req: EncryptRequest = serde_json::from_str(body).unwrap();
        let v = req.validate().unwrap();
        assert_eq!(v.plaintext, b"Hello World!");
        assert_eq!(v.aad, b"project=nile,department=marketing");
        assert!(v.want_cdiv);
    }

    #[test]
    fn encrypt_validation() {
        let base = EncryptRequest {
            request_metadata: Some(md()),
            plaintext: Some(SecretBytes64::new(b"x".to_vec())),
            encryption_algorithm: Some("AES_GCM".into()),
            ..Default::default()
        };
        assert!(base.validate().is_ok());
        let mut r = base.clone();
        r.request_metadata = None;
        assert_eq!(r.validate().unwrap_err(), "requestMetadata is required");
        let mut r = base.clone();
        r.request_metadata.as_mut().unwrap().kms_key_arn = None;
        assert_eq!(
            r.validate().unwrap_err(),
            "requestMetadata.kmsKeyArn is required"
        );
        let mut r = base.clone();
        r.encryption_algorithm = Some("AES_CBC".into());
        assert!(r.validate().is_err());
        let mut r = base.clone();
        r.ciphertext_data_integrity_value_algorithm = Some("SHA_512".into());
        assert!(r.validate().is_err());
        let mut r = base.clone();
        r.plaintext = Some(SecretBytes64::new(vec![]));
        assert!(r.validate().is_err());
        // Wrong JSON types are parse errors.
        assert!(serde_json::from_str::<EncryptRequest>(r#"{"plaintext": 5}"#).is_err());
        assert!(serde_json::from_str::<EncryptRequest>(r#"{"requestMetadata": "x"}"#).is_err());
    }

    #[test]
    fn metadata_key_arn_optional_for_get_key_metadata() {
        let mut m = md();
        m.kms_key_arn = None;
        assert!(m.validate_for(Operation::GetKeyMetadata).is_ok());
        assert!(m.validate_for(Operation::Encrypt).is_err());
        let health = RequestMetadata {
            kms_operation: Some("KmsHealthCheck".into()),
            kms_request_id: Some("x".into()),
            ..Default::default()
        };
        assert!(health.validate_for(Operation::GetHealthStatus).is_ok());
        assert!(health.validate_for(Operation::GetKeyMetadata).is_err());
    }

    #[test]
    fn health_request_needs_request_id_and_operation() {
        let parse = |s: &str| serde_json::from_str::<HealthRequest>(s).unwrap();
        assert_eq!(
            parse("{}").validate().unwrap_err(),
            "requestMetadata is required"
        );
        assert_eq!(
            parse(r#"{"requestMetadata":{"kmsOperation":"KmsHealthCheck"}}"#)
                .validate()
                .unwrap_err(),
            "requestMetadata.kmsRequestId is required"
        );
        assert_eq!(
            parse(r#"{"requestMetadata":{"kmsRequestId":"1"}}"#)
                .validate()
                .unwrap_err(),
            "requestMetadata.kmsOperation is required"
        );
        // No principal needed: health has no secondary authorization.
        assert!(
            parse(r#"{"requestMetadata":{"kmsRequestId":"1","kmsOperation":"X"}}"#)
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn wire_metadata_has_exactly_the_members_the_spec_lists() {
        let mut full = md();
        full.aws_source_vpc = Some("vpc-1".into());
        full.kms_via_service = Some("ebs".into());
        let health = full.for_wire(Operation::GetHealthStatus);
        assert_eq!(
            serde_json::to_value(&health).unwrap(),
            serde_json::json!({"kmsOperation": "Encrypt", "kmsRequestId": full.kms_request_id})
        );
        assert_eq!(full.for_wire(Operation::Encrypt), full);
        assert_eq!(full.for_wire(Operation::GetKeyMetadata), full);
        full.kms_operation = Some("CreateKey".into());
        let create = full.for_wire(Operation::GetKeyMetadata);
        assert_eq!(create.kms_key_arn, None);
        assert_eq!(create.aws_principal_arn, full.aws_principal_arn);
        assert_eq!(create.kms_via_service, full.kms_via_service);
    }

    #[test]
    fn decrypt_metadata_limit() {
        let mut r = DecryptRequest {
            request_metadata: Some(md()),
            ciphertext: Some(Bytes64(vec![1])),
            encryption_algorithm: Some("AES_GCM".into()),
            initialization_vector: Some(Bytes64(vec![0; 12])),
            authentication_tag: Some(Bytes64(vec![0; 16])),
            ciphertext_metadata: Some(Bytes64(vec![0; 20])),
            ..Default::default()
        };
        assert!(r.validate().is_ok());
        r.ciphertext_metadata = Some(Bytes64(vec![0; 21]));
        assert!(r.validate().is_err());
    }

    #[test]
    fn responses_serialize_with_spec_names() {
        let r = GetKeyMetadataResponse {
            key_spec: KEY_SPEC_AES_256.into(),
            key_usage: vec!["ENCRYPT".into(), "DECRYPT".into()],
            key_status: key_status::ENABLED.into(),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"keySpec":"AES_256","keyUsage":["ENCRYPT","DECRYPT"],"keyStatus":"ENABLED"}"#
        );
    }
}

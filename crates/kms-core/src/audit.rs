//! The audit log in CloudTrail's record format: one JSON object per line
//! (the durable sink is the shared `audit-sink` crate), for every request
//! — denied and failed ones included — and for background events (a key
//! deleted at the end of its waiting period). Built from the pipeline's
//! [`RequestContext`], never re-derived. docs/operations.md documents each
//! field and shows jq queries.
//!
//! `requestParameters` is an allow-list of the request's fields, as
//! CloudTrail shows them for KMS (camelCase): plaintext, ciphertext,
//! messages, signatures, MACs, imported key material, import tokens, grant
//! tokens and XKS credentials are never recorded.

use crate::context::{Outcome, RequestContext};
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::SystemTime;

/// CloudTrail's record format version.
pub const EVENT_VERSION: &str = "1.08";
pub const EVENT_SOURCE: &str = "kms.amazonaws.com";

/// Request fields recorded in `requestParameters` (AWS names).
const RECORDED: &[&str] = &[
    "KeyId",
    "EncryptionAlgorithm",
    "EncryptionContext",
    "KeySpec",
    "KeyUsage",
    "NumberOfBytes",
    "CustomerMasterKeySpec",
    "SigningAlgorithm",
    "MessageType",
    "MacAlgorithm",
    "KeyAgreementAlgorithm",
    "KeyPairSpec",
    "SourceKeyId",
    "SourceEncryptionAlgorithm",
    "SourceEncryptionContext",
    "DestinationKeyId",
    "DestinationEncryptionAlgorithm",
    "DestinationEncryptionContext",
    "AliasName",
    "TargetKeyId",
    "Description",
    "Origin",
    "MultiRegion",
    "Tags",
    "TagKeys",
    "Policy",
    "PolicyName",
    "BypassPolicyLockoutSafetyCheck",
    "PendingWindowInDays",
    "RotationPeriodInDays",
    "OnDemand",
    "GrantId",
    "GranteePrincipal",
    "RetiringPrincipal",
    "Operations",
    "Constraints",
    "Name",
    "Limit",
    "Marker",
    "WrappingAlgorithm",
    "WrappingKeySpec",
    "ExpirationModel",
    "ValidTo",
    "ReplicaRegion",
    "PrimaryRegion",
    "CustomKeyStoreId",
    "CustomKeyStoreName",
    "CustomKeyStoreType",
    "NewCustomKeyStoreName",
    "XksProxyConnectivity",
    "XksProxyUriEndpoint",
    "XksProxyUriPath",
    "XksProxyVpcEndpointServiceName",
    "CloudHsmClusterId",
    "DryRun",
];

/// `requestParameters` from a request body: the allow-listed fields, with
/// CloudTrail's camelCase names. `None` when the body is not an object.
pub fn request_parameters(body: &Value) -> Option<Value> {
    let obj = body.as_object()?;
    let mut out = Map::new();
    for (k, v) in obj {
        if RECORDED.contains(&k.as_str()) {
            out.insert(camel(k), v.clone());
        }
    }
    Some(Value::Object(out))
}

fn camel(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// Operations CloudTrail marks `readOnly`.
pub fn read_only(op: &str) -> bool {
    op.starts_with("Describe")
        || op.starts_with("List")
        || op.starts_with("Get")
        || matches!(
            op,
            "Encrypt"
                | "Decrypt"
                | "ReEncrypt"
                | "GenerateDataKey"
                | "GenerateDataKeyWithoutPlaintext"
                | "GenerateDataKeyPair"
                | "GenerateDataKeyPairWithoutPlaintext"
                | "GenerateRandom"
                | "GenerateMac"
                | "VerifyMac"
                | "Sign"
                | "Verify"
                | "DeriveSharedSecret"
        )
}

/// `userIdentity`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// `Root`, `IAMUser`, `AssumedRole`, `AWSService` or `Unknown`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub principal_id: Option<String>,
    pub arn: Option<String>,
    pub account_id: Option<String>,
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<&'static str>,
}

/// One entry of `resources`.
#[derive(Debug, Serialize)]
pub struct Resource {
    #[serde(rename = "accountId")]
    pub account_id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(rename = "ARN")]
    pub arn: String,
}

/// One CloudTrail record.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub event_version: &'static str,
    pub user_identity: UserIdentity,
    pub event_time: String,
    pub event_source: &'static str,
    pub event_name: String,
    pub aws_region: String,
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: String,
    pub user_agent: String,
    pub request_parameters: Option<Value>,
    pub response_elements: Option<Value>,
    #[serde(rename = "requestID")]
    pub request_id: String,
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub read_only: bool,
    pub resources: Vec<Resource>,
    /// `AwsApiCall` or `AwsServiceEvent`.
    pub event_type: &'static str,
    pub management_event: bool,
    pub recipient_account_id: Option<String>,
    pub event_category: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_event_details: Option<Value>,
}

fn identity_kind(arn: &str) -> &'static str {
    if arn.ends_with(":root") {
        "Root"
    } else if arn.contains(":assumed-role/") || arn.contains(":role/") {
        "AssumedRole"
    } else if arn.contains(":user/") {
        "IAMUser"
    } else {
        "Unknown"
    }
}

impl Record {
    /// The record of an API request, from its finished context.
    pub fn from_context(cx: &RequestContext, default_region: &str) -> Record {
        let (identity, account, region) = match &cx.caller {
            Some(c) => {
                let arn = c.principal_arn.clone();
                let account = c.scope.account.as_str().to_owned();
                (
                    UserIdentity {
                        kind: identity_kind(&arn),
                        principal_id: Some(
                            arn.rsplit_once('/')
                                .map_or_else(|| account.clone(), |(_, n)| n.to_owned()),
                        ),
                        arn: Some(arn),
                        account_id: Some(account.clone()),
                        access_key_id: Some(c.access_key_id.clone()),
                        invoked_by: None,
                    },
                    Some(account),
                    c.scope.region.clone(),
                )
            }
            None => (
                UserIdentity {
                    kind: "Unknown",
                    principal_id: None,
                    arn: None,
                    account_id: None,
                    access_key_id: None,
                    invoked_by: None,
                },
                None,
                default_region.to_owned(),
            ),
        };
        let event_name = cx
            .operation
            .map_or_else(|| "Unknown".to_owned(), |o| o.name().to_owned());
        let mut resources: Vec<Resource> = Vec::new();
        for k in &cx.resolved.keys {
            if !resources.iter().any(|r| r.arn == k.entry.record.arn) {
                resources.push(Resource {
                    account_id: k.entry.record.account.clone(),
                    kind: "AWS::KMS::Key",
                    arn: k.entry.record.arn.clone(),
                });
            }
        }
        let (error_code, error_message) = match &cx.outcome {
            Outcome::Error(code) => (Some(*code), cx.error_message.clone()),
            _ => (None, None),
        };
        Record {
            event_version: EVENT_VERSION,
            user_identity: identity,
            event_time: audit_sink::event_time(SystemTime::now()),
            event_source: EVENT_SOURCE,
            read_only: read_only(&event_name),
            event_name,
            aws_region: region,
            source_ip_address: cx
                .source
                .map_or_else(|| "-".to_owned(), |a| a.ip().to_string()),
            user_agent: cx.user_agent.clone().unwrap_or_default(),
            request_parameters: cx.request_parameters.clone(),
            response_elements: None,
            request_id: cx.request_id.clone(),
            event_id: crate::api::protocol::request_id(),
            resources,
            event_type: "AwsApiCall",
            management_event: true,
            recipient_account_id: account,
            event_category: "Management",
            error_code,
            error_message,
            service_event_details: None,
        }
    }

    /// A background event of KMS itself (e.g. `DeleteKey` at the end of a
    /// key's waiting period).
    pub fn service_event(
        event_name: &str,
        account: &str,
        region: &str,
        key_arn: &str,
        details: Value,
    ) -> Record {
        Record {
            event_version: EVENT_VERSION,
            user_identity: UserIdentity {
                kind: "AWSService",
                principal_id: None,
                arn: None,
                account_id: Some(account.to_owned()),
                access_key_id: None,
                invoked_by: Some(EVENT_SOURCE),
            },
            event_time: audit_sink::event_time(SystemTime::now()),
            event_source: EVENT_SOURCE,
            event_name: event_name.to_owned(),
            aws_region: region.to_owned(),
            source_ip_address: EVENT_SOURCE.to_owned(),
            user_agent: EVENT_SOURCE.to_owned(),
            request_parameters: None,
            response_elements: None,
            request_id: crate::api::protocol::request_id(),
            event_id: crate::api::protocol::request_id(),
            read_only: false,
            resources: vec![Resource {
                account_id: account.to_owned(),
                kind: "AWS::KMS::Key",
                arn: key_arn.to_owned(),
            }],
            event_type: "AwsServiceEvent",
            management_event: true,
            recipient_account_id: Some(account.to_owned()),
            event_category: "Management",
            error_code: None,
            error_message: None,
            service_event_details: Some(details),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_are_an_allow_list_in_camel_case() {
        let body = json!({
            "KeyId": "alias/x",
            "Plaintext": "c2VjcmV0",
            "EncryptionContext": {"dept": "a"},
            "GrantTokens": ["t"],
            "XksProxyAuthenticationCredential": {"AccessKeyId": "A", "RawSecretAccessKey": "S"},
            "CiphertextBlob": "Y3Q=",
            "Message": "bQ==",
            "Signature": "cw==",
        });
        let p = request_parameters(&body).unwrap();
        assert_eq!(
            p,
            json!({"keyId": "alias/x", "encryptionContext": {"dept": "a"}})
        );
        assert!(request_parameters(&json!([1])).is_none());
    }

    #[test]
    fn read_only_and_identity_kinds() {
        assert!(read_only("Encrypt") && read_only("DescribeKey") && read_only("ListKeys"));
        assert!(!read_only("CreateKey") && !read_only("ScheduleKeyDeletion"));
        assert_eq!(identity_kind("arn:aws:iam::111122223333:root"), "Root");
        assert_eq!(identity_kind("arn:aws:iam::1:user/Alice"), "IAMUser");
        assert_eq!(
            identity_kind("arn:aws:sts::1:assumed-role/R/s"),
            "AssumedRole"
        );
    }
}

//! Which spellings of a key each operation accepts, as data.
//!
//! AWS accepts four spellings of a KMS key (key id, key ARN, alias name,
//! alias ARN) in most operations, but the management operations whose
//! `KeyId` the model documents as "Specify the key ID or key ARN of the
//! KMS key" refuse alias names and alias ARNs. The table below is derived
//! from the documentation of AWS's model (`service-2.json`, which the
//! vendored copy strips); `key_ref_forms_follow_the_model_documentation`
//! re-derives it from that file when present.

use super::Operation;

/// The key spellings a key member accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForms {
    /// Key id, key ARN, alias name, alias ARN.
    Any,
    /// Key id or key ARN only.
    KeyOnly,
}

/// Operations (and member) whose key member accepts only a key id or key
/// ARN, per the model's documentation.
pub const KEY_ONLY: &[(Operation, &str)] = &[
    (Operation::CancelKeyDeletion, "KeyId"),
    (Operation::CreateAlias, "TargetKeyId"),
    (Operation::CreateGrant, "KeyId"),
    (Operation::DeleteImportedKeyMaterial, "KeyId"),
    (Operation::DisableKey, "KeyId"),
    (Operation::DisableKeyRotation, "KeyId"),
    (Operation::EnableKey, "KeyId"),
    (Operation::EnableKeyRotation, "KeyId"),
    (Operation::GetKeyLastUsage, "KeyId"),
    (Operation::GetKeyPolicy, "KeyId"),
    (Operation::GetKeyRotationStatus, "KeyId"),
    (Operation::GetParametersForImport, "KeyId"),
    (Operation::ImportKeyMaterial, "KeyId"),
    (Operation::ListAliases, "KeyId"),
    (Operation::ListGrants, "KeyId"),
    (Operation::ListKeyPolicies, "KeyId"),
    (Operation::ListKeyRotations, "KeyId"),
    (Operation::ListResourceTags, "KeyId"),
    (Operation::PutKeyPolicy, "KeyId"),
    (Operation::ReplicateKey, "KeyId"),
    (Operation::RevokeGrant, "KeyId"),
    (Operation::RotateKeyOnDemand, "KeyId"),
    (Operation::ScheduleKeyDeletion, "KeyId"),
    (Operation::TagResource, "KeyId"),
    (Operation::UntagResource, "KeyId"),
    (Operation::UpdateAlias, "TargetKeyId"),
    (Operation::UpdateKeyDescription, "KeyId"),
    (Operation::UpdatePrimaryRegion, "KeyId"),
];

/// The spellings `member` of `op` accepts.
pub fn forms(op: Operation, member: &str) -> KeyForms {
    if KEY_ONLY.iter().any(|(o, m)| *o == op && *m == member) {
        KeyForms::KeyOnly
    } else {
        KeyForms::Any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Re-derives [`KEY_ONLY`] from AWS's model with documentation: a
    /// `KeyIdType` member documented with "key ID or key ARN" and no
    /// mention of alias names or ARNs.
    #[test]
    fn key_ref_forms_follow_the_model_documentation() {
        let path = std::env::var("KMS_MODEL_WITH_DOCS")
            // shared/ stands beside the repository (checkouts and CI alike).
            .unwrap_or_else(|_| {
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../../shared/aws-models/kms/service-2.json"
                )
                .into()
            });
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("{path} is absent: the table is checked where it exists");
            return;
        };
        let m: serde_json::Value = serde_json::from_str(&text).unwrap();
        let shapes = &m["shapes"];
        let mut derived = Vec::new();
        for (name, op) in m["operations"].as_object().unwrap() {
            let input = op["input"]["shape"].as_str().unwrap();
            for (member, r) in shapes[input]["members"].as_object().unwrap() {
                if r["shape"] != "KeyIdType" {
                    continue;
                }
                let doc = r["documentation"].as_str().unwrap_or("");
                let key_only = doc.contains("key ID or key ARN")
                    && !doc.contains("alias name")
                    && !doc.contains("alias ARN");
                if key_only {
                    derived.push((name.clone(), member.clone()));
                }
            }
        }
        derived.sort();
        let mut ours: Vec<(String, String)> = KEY_ONLY
            .iter()
            .map(|(o, m)| (o.name().to_owned(), (*m).to_owned()))
            .collect();
        ours.sort();
        assert_eq!(ours, derived);
    }
}

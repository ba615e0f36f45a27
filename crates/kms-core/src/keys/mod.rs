//! The key domain: key states, the stored key record, and AWS's key state
//! table ("which operation does a key in which state allow") as a pure
//! function, [`check_state`].
//!
//! The table follows AWS's published key state table for the operations of
//! issue 5 on symmetric `AWS_KMS` keys:
//!
//! * cryptographic operations need `Enabled`; a `Disabled` key raises
//!   `DisabledException`, every other state `KMSInvalidStateException`;
//! * `EnableKey`/`DisableKey` work on `Enabled` and `Disabled` keys only;
//! * `CancelKeyDeletion` needs `PendingDeletion` (or
//!   `PendingReplicaDeletion`);
//! * `ScheduleKeyDeletion`, `UpdateKeyDescription`, `CreateAlias`,
//!   `UpdateAlias` (target key), `TagResource`, `UntagResource` are refused
//!   on a key pending deletion;
//! * describe, list, delete-alias, key-policy and rotation-status reads work
//!   in every state.
//!
//! `Creating` and `Updating` (transient multi-Region states, which keys of
//! this service never enter yet) are treated conservatively: reads work,
//! everything else is `KMSInvalidStateException`. `PendingReplicaDeletion`
//! behaves like `PendingDeletion`.

pub mod ids;
pub mod material;
pub mod spec;
pub mod usage;

pub use crate::api::types::{KeyManagerType, KeySpec, KeyState, KeyUsageType, OriginType};
use material::{KeyMaterialId, MaterialInfo, RotationSchedule};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

impl KeyState {
    /// The tail of AWS's message for a key in this state: "is disabled." etc.
    fn phrase(self) -> &'static str {
        match self {
            KeyState::Creating => "is creating.",
            KeyState::Enabled => "is enabled.",
            KeyState::Disabled => "is disabled.",
            KeyState::PendingDeletion => "is pending deletion.",
            KeyState::PendingImport => "is pending import.",
            KeyState::PendingReplicaDeletion => "is pending replica deletion.",
            KeyState::Unavailable => "is unavailable.",
            KeyState::Updating => "is updating.",
        }
    }

    fn is_pending_deletion(self) -> bool {
        matches!(
            self,
            KeyState::PendingDeletion | KeyState::PendingReplicaDeletion
        )
    }
}

pub use crate::api::Operation;

impl Operation {
    /// Operations that use the key material.
    pub fn is_cryptographic(self) -> bool {
        matches!(
            self,
            Operation::Encrypt
                | Operation::Decrypt
                | Operation::ReEncrypt
                | Operation::GenerateDataKey
                | Operation::GenerateDataKeyWithoutPlaintext
                | Operation::GetPublicKey
                | Operation::Sign
                | Operation::Verify
                | Operation::GenerateMac
                | Operation::VerifyMac
                | Operation::DeriveSharedSecret
                | Operation::Encapsulate
                | Operation::Decapsulate
                | Operation::GenerateDataKeyPair
                | Operation::GenerateDataKeyPairWithoutPlaintext
        )
    }
}

/// Which AWS exception a refused operation raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateErrorKind {
    /// `DisabledException`.
    Disabled,
    /// `KMSInvalidStateException`.
    InvalidState,
}

impl StateErrorKind {
    /// The `__type` AWS uses.
    pub fn type_name(self) -> &'static str {
        match self {
            StateErrorKind::Disabled => "DisabledException",
            StateErrorKind::InvalidState => "KMSInvalidStateException",
        }
    }
}

/// An operation refused because of the key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateError {
    pub kind: StateErrorKind,
    pub state: KeyState,
    /// True when the refusal is "the key is not pending deletion"
    /// (`CancelKeyDeletion`), false when it names the key's own state.
    pub not_pending_deletion: bool,
}

impl StateError {
    /// AWS's message form: `"<key ARN> is pending deletion."`.
    pub fn message(&self, key_arn: &str) -> String {
        if self.not_pending_deletion {
            format!("{key_arn} is not pending deletion.")
        } else {
            format!("{key_arn} {}", self.state.phrase())
        }
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.type_name(), self.message("key"))
    }
}

impl std::error::Error for StateError {}

fn invalid(state: KeyState) -> Result<(), StateError> {
    Err(StateError {
        kind: StateErrorKind::InvalidState,
        state,
        not_pending_deletion: false,
    })
}

/// AWS's key state table: may a key in `state` be used for `op`?
pub fn check_state(state: KeyState, op: Operation) -> Result<(), StateError> {
    use KeyState as S;
    use Operation as O;
    match op {
        // Reads and operations that do not depend on the key's state.
        O::CreateKey
        | O::DescribeKey
        | O::ListKeys
        | O::DeleteAlias
        | O::ListAliases
        | O::ListResourceTags
        | O::GetKeyPolicy
        | O::ListKeyPolicies
        | O::GetKeyRotationStatus
        | O::ListGrants
        | O::ListRetirableGrants
        | O::RetireGrant
        | O::RevokeGrant
        | O::ListKeyRotations
        | O::GetKeyLastUsage
        | O::GenerateRandom
        | O::CreateCustomKeyStore
        | O::DescribeCustomKeyStores
        | O::UpdateCustomKeyStore
        | O::ConnectCustomKeyStore
        | O::DisconnectCustomKeyStore
        | O::DeleteCustomKeyStore => Ok(()),
        _ if matches!(state, S::Creating | S::Updating) => invalid(state),
        O::Encrypt
        | O::Decrypt
        | O::ReEncrypt
        | O::GenerateDataKey
        | O::GenerateDataKeyWithoutPlaintext
        | O::GetPublicKey
        | O::Sign
        | O::Verify
        | O::GenerateMac
        | O::VerifyMac
        | O::DeriveSharedSecret
        | O::Encapsulate
        | O::Decapsulate
        | O::GenerateDataKeyPair
        | O::GenerateDataKeyPairWithoutPlaintext => match state {
            S::Enabled => Ok(()),
            S::Disabled => Err(StateError {
                kind: StateErrorKind::Disabled,
                state,
                not_pending_deletion: false,
            }),
            _ => invalid(state),
        },
        O::EnableKey | O::DisableKey => match state {
            S::Enabled | S::Disabled => Ok(()),
            _ => invalid(state),
        },
        O::CancelKeyDeletion => {
            if state.is_pending_deletion() {
                Ok(())
            } else {
                Err(StateError {
                    kind: StateErrorKind::InvalidState,
                    state,
                    not_pending_deletion: true,
                })
            }
        }
        O::ScheduleKeyDeletion
        | O::UpdateKeyDescription
        | O::CreateAlias
        | O::UpdateAlias
        | O::TagResource
        | O::UntagResource
        | O::CreateGrant
        | O::EnableKeyRotation
        | O::DisableKeyRotation
        | O::RotateKeyOnDemand
        | O::GetParametersForImport
        | O::ImportKeyMaterial
        | O::DeleteImportedKeyMaterial
        | O::ReplicateKey
        | O::UpdatePrimaryRegion
        | O::PutKeyPolicy => {
            // PutKeyPolicy works on keys pending deletion in AWS.
            if state.is_pending_deletion() && op != O::PutKeyPolicy {
                invalid(state)
            } else {
                Ok(())
            }
        }
    }
}

pub const DEFAULT_POLICY_NAME: &str = "default";

/// One stored KMS key: everything DescribeKey returns plus tags, the key
/// policy and the current key-material version. Contains no key material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The key id (a UUID, lowercase).
    pub key_id: String,
    pub account: String,
    pub region: String,
    /// `arn:aws:kms:<region>:<account>:key/<id>`.
    pub arn: String,
    pub description: String,
    /// Epoch seconds.
    pub creation_date: f64,
    pub enabled: bool,
    pub key_state: KeyState,
    /// Epoch seconds; set while pending deletion.
    pub deletion_date: Option<f64>,
    pub pending_deletion_window_days: Option<u32>,
    pub key_usage: KeyUsageType,
    pub key_spec: KeySpec,
    pub origin: OriginType,
    pub key_manager: KeyManagerType,
    pub multi_region: bool,
    /// The key policy document (JSON text) under the name `default`.
    pub policy: String,
    /// Tags by tag key.
    pub tags: BTreeMap<String, String>,
    /// The key-material version new ciphertexts use.
    pub current_version: u32,
    /// The custom key store holding the key (external key store keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_key_store_id: Option<String>,
    /// The external key (XksKeyId) backing an external key store key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xks_key_id: Option<String>,
    /// Every material of the key, oldest first. Empty in records written
    /// before versioned material (issue 18): see [`KeyRecord::materials`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub materials: Vec<MaterialInfo>,
    /// Automatic rotation, when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationSchedule>,
    /// On-demand rotations so far (a lifetime limit applies).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub on_demand_rotations: u32,
    /// Epoch seconds an on-demand rotation in progress was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_started: Option<f64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The ARN of a key.
pub fn key_arn(region: &str, account: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:key/{key_id}")
}

/// The default key policy AWS attaches when CreateKey has no Policy: the
/// account root may do everything.
pub fn default_policy(account: &str) -> String {
    format!(
        concat!(
            "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n",
            "  \"Statement\" : [ {{\n    \"Sid\" : \"Enable IAM User Permissions\",\n",
            "    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n",
            "      \"AWS\" : \"arn:aws:iam::{}:root\"\n    }},\n",
            "    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }} ]\n}}"
        ),
        account
    )
}

impl KeyRecord {
    /// A new symmetric `AWS_KMS` key in the `Enabled` state with material
    /// version 1.
    pub fn new_symmetric(
        key_id: &str,
        account: &str,
        region: &str,
        description: &str,
        creation_date: f64,
        policy: Option<String>,
    ) -> KeyRecord {
        KeyRecord {
            key_id: key_id.to_owned(),
            account: account.to_owned(),
            region: region.to_owned(),
            arn: key_arn(region, account, key_id),
            description: description.to_owned(),
            creation_date,
            enabled: true,
            key_state: KeyState::Enabled,
            deletion_date: None,
            pending_deletion_window_days: None,
            key_usage: KeyUsageType::EncryptDecrypt,
            key_spec: KeySpec::SymmetricDefault,
            origin: OriginType::AwsKms,
            key_manager: KeyManagerType::Customer,
            multi_region: false,
            policy: policy.unwrap_or_else(|| default_policy(account)),
            tags: BTreeMap::new(),
            current_version: 1,
            custom_key_store_id: None,
            xks_key_id: None,
            materials: vec![MaterialInfo::first(key_id, 1, creation_date)],
            rotation: None,
            on_demand_rotations: 0,
            on_demand_started: None,
        }
    }

    /// Whether the key has AWS key material identifiers (and so rotations):
    /// symmetric encryption keys with AWS_KMS or EXTERNAL origin.
    pub fn has_material_ids(&self) -> bool {
        self.key_spec == KeySpec::SymmetricDefault
            && matches!(self.origin, OriginType::AwsKms | OriginType::External)
    }

    /// The key's materials, oldest first. A record of an earlier release
    /// lists none; its materials are versions 1..=current, the first made
    /// with the key.
    pub fn materials(&self) -> Vec<MaterialInfo> {
        if !self.materials.is_empty() {
            return self.materials.clone();
        }
        (1..=self.current_version)
            .map(|v| MaterialInfo::first(&self.key_id, v, self.creation_date))
            .collect()
    }

    /// `CurrentKeyMaterialId`, for keys that have one.
    pub fn current_material_id(&self) -> Option<KeyMaterialId> {
        self.has_material_ids()
            .then(|| self.material_id(self.current_version))
    }

    /// The id of material `version` (recorded, or derived for records of
    /// earlier releases).
    pub fn material_id(&self, version: u32) -> KeyMaterialId {
        self.materials
            .iter()
            .find(|m| m.version == version)
            .map(|m| m.id.clone())
            .unwrap_or_else(|| KeyMaterialId::derive(&self.key_id, version))
    }

    /// [`check_state`] for this key.
    pub fn check(&self, op: Operation) -> Result<(), StateError> {
        check_state(self.key_state, op)
    }

    /// [`check_state`] with the message already formed for this key.
    pub fn check_message(&self, op: Operation) -> Result<(), (StateErrorKind, String)> {
        self.check(op).map_err(|e| (e.kind, e.message(&self.arn)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeyState as S;
    use Operation as O;

    /// Expected outcome per (operation, state).
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum X {
        Ok,
        Dis,
        Inv,
        NotPd,
    }

    // Columns: Creating, Enabled, Disabled, PendingDeletion, PendingImport,
    // PendingReplicaDeletion, Unavailable, Updating (KeyState::ALL order).
    fn table() -> Vec<(Operation, [X; 8])> {
        use X::*;
        let all_ok = [Ok; 8];
        let crypto = [Inv, Ok, Dis, Inv, Inv, Inv, Inv, Inv];
        let enable = [Inv, Ok, Ok, Inv, Inv, Inv, Inv, Inv];
        let not_pd = [Inv, Ok, Ok, Inv, Ok, Inv, Ok, Inv];
        vec![
            (O::CreateKey, all_ok),
            (O::DescribeKey, all_ok),
            (O::ListKeys, all_ok),
            (O::EnableKey, enable),
            (O::DisableKey, enable),
            (O::ScheduleKeyDeletion, not_pd),
            (
                O::CancelKeyDeletion,
                [Inv, NotPd, NotPd, Ok, NotPd, Ok, NotPd, Inv],
            ),
            (O::UpdateKeyDescription, not_pd),
            (O::CreateAlias, not_pd),
            (O::DeleteAlias, all_ok),
            (O::UpdateAlias, not_pd),
            (O::ListAliases, all_ok),
            (O::TagResource, not_pd),
            (O::UntagResource, not_pd),
            (O::ListResourceTags, all_ok),
            (O::Encrypt, crypto),
            (O::Decrypt, crypto),
            (O::ReEncrypt, crypto),
            (O::GenerateDataKey, crypto),
            (O::GenerateDataKeyWithoutPlaintext, crypto),
            (O::GetKeyPolicy, all_ok),
            (O::PutKeyPolicy, [Inv, Ok, Ok, Ok, Ok, Ok, Ok, Inv]),
            (O::ListKeyPolicies, all_ok),
            (O::GetKeyRotationStatus, all_ok),
            (O::GetPublicKey, crypto),
            (O::Sign, crypto),
            (O::Verify, crypto),
            (O::GenerateMac, crypto),
            (O::VerifyMac, crypto),
            (O::DeriveSharedSecret, crypto),
            (O::Encapsulate, crypto),
            (O::Decapsulate, crypto),
            (O::GenerateDataKeyPair, crypto),
            (O::GenerateDataKeyPairWithoutPlaintext, crypto),
        ]
    }

    #[test]
    fn every_row_of_the_state_table() {
        let t = table();
        for (op, row) in t {
            for (state, want) in KeyState::ALL.iter().copied().zip(row) {
                let got = check_state(state, op);
                let ok = match (want, got) {
                    (X::Ok, Ok(())) => true,
                    (X::Dis, Err(e)) => {
                        e.kind == StateErrorKind::Disabled && !e.not_pending_deletion
                    }
                    (X::Inv, Err(e)) => {
                        e.kind == StateErrorKind::InvalidState && !e.not_pending_deletion
                    }
                    (X::NotPd, Err(e)) => {
                        e.kind == StateErrorKind::InvalidState && e.not_pending_deletion
                    }
                    _ => false,
                };
                assert!(ok, "{op:?} in {state:?}: want {want:?}, got {got:?}");
            }
        }
    }

    #[test]
    fn messages_follow_aws_form() {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let e = check_state(S::PendingDeletion, O::Encrypt).unwrap_err();
        assert_eq!(e.kind.type_name(), "KMSInvalidStateException");
        assert_eq!(e.message(arn), format!("{arn} is pending deletion."));
        let e = check_state(S::Disabled, O::Decrypt).unwrap_err();
        assert_eq!(e.kind.type_name(), "DisabledException");
        assert_eq!(e.message(arn), format!("{arn} is disabled."));
        let e = check_state(S::Enabled, O::CancelKeyDeletion).unwrap_err();
        assert_eq!(e.message(arn), format!("{arn} is not pending deletion."));
        let e = check_state(S::PendingImport, O::EnableKey).unwrap_err();
        assert_eq!(e.message(arn), format!("{arn} is pending import."));
        let e = check_state(S::Unavailable, O::GenerateDataKey).unwrap_err();
        assert_eq!(e.message(arn), format!("{arn} is unavailable."));
        // A disabled key can still be managed.
        assert!(check_state(S::Disabled, O::ScheduleKeyDeletion).is_ok());
        assert!(check_state(S::Disabled, O::TagResource).is_ok());
    }

    #[test]
    fn names_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(op));
        }
        assert_eq!(Operation::from_name("Nope"), None);
        for &s in KeyState::ALL {
            assert_eq!(KeyState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!(O::Encrypt.is_cryptographic() && !O::DescribeKey.is_cryptographic());
    }

    #[test]
    fn model_key_states_match() {
        let text = include_str!("../../model/kms-2014-11-01.json");
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let values: Vec<&str> = v["shapes"]["KeyState"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        let ours: Vec<&str> = KeyState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(values, ours);
    }

    #[test]
    fn new_record() {
        let r = KeyRecord::new_symmetric(
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "111122223333",
            "eu-west-1",
            "d",
            1.5,
            None,
        );
        assert_eq!(
            r.arn,
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        );
        assert!(r.enabled && r.key_state == S::Enabled && r.current_version == 1);
        let p: serde_json::Value = serde_json::from_str(&r.policy).unwrap();
        assert_eq!(
            p["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::111122223333:root"
        );
        let back: KeyRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        assert_eq!(
            r.check_message(O::Encrypt),
            Ok(()),
            "an enabled key encrypts"
        );
    }
}

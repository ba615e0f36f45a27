//! Versioned key material: the ordered list of a key's materials, their
//! AWS identifiers (`KeyMaterialId`), states and rotation dates, and the
//! automatic rotation schedule — pure data and rules, no I/O.
//!
//! A material is identified inside kms-core by its version number (the
//! number every ciphertext blob carries) and outside by its
//! `KeyMaterialId`: 64 lowercase hex characters (the model's
//! `BackingKeyIdType`), derived from the key id and the version, so the
//! blobs of every earlier release name their material without any
//! migration, and the id of a blob's material is found in O(1).

use crate::api::types::{KeyMaterialState, RotationType};
use serde::{Deserialize, Serialize};

/// Rotation periods AWS accepts (EnableKeyRotation `RotationPeriodInDays`).
pub const MIN_ROTATION_PERIOD_DAYS: i32 = 90;
pub const MAX_ROTATION_PERIOD_DAYS: i32 = 2560;
/// The period when EnableKeyRotation gives none.
pub const DEFAULT_ROTATION_PERIOD_DAYS: i32 = 365;
/// On-demand rotations per key over its lifetime (AWS's developer guide).
pub const DEFAULT_ON_DEMAND_ROTATION_LIMIT: u32 = 25;
const DAY: f64 = 86_400.0;

/// AWS's identifier of one key material: 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyMaterialId(String);

impl KeyMaterialId {
    /// The id of material `version` of key `key_id` (SHA-256 of a
    /// domain-separated key id and version).
    pub fn derive(key_id: &str, version: u32) -> KeyMaterialId {
        let mut input = b"kms-core/key-material-id/v1\0".to_vec();
        input.extend_from_slice(key_id.as_bytes());
        input.push(0);
        input.extend_from_slice(&version.to_be_bytes());
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
        KeyMaterialId(hex::encode(d.as_ref()))
    }

    /// Parses a request's `KeyMaterialId` (64 lowercase hex characters).
    pub fn parse(s: &str) -> Option<KeyMaterialId> {
        (s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| KeyMaterialId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyMaterialId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One material of a key, as ListKeyRotations shows it (the key's current
/// version decides CURRENT / NON_CURRENT).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaterialInfo {
    /// The version ciphertexts carry.
    pub version: u32,
    pub id: KeyMaterialId,
    /// Epoch seconds the material was made.
    pub created: f64,
    /// When the rotation to this material completed and how it was asked
    /// for; absent for the key's first material.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
}

/// A completed rotation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rotation {
    /// Epoch seconds.
    pub date: f64,
    pub kind: RotationKind,
}

/// How a rotation was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RotationKind {
    Automatic,
    OnDemand,
}

impl RotationKind {
    pub fn wire(self) -> RotationType {
        match self {
            RotationKind::Automatic => RotationType::Automatic,
            RotationKind::OnDemand => RotationType::OnDemand,
        }
    }
}

impl MaterialInfo {
    /// The first material of a key made at `created`.
    pub fn first(key_id: &str, version: u32, created: f64) -> MaterialInfo {
        MaterialInfo {
            version,
            id: KeyMaterialId::derive(key_id, version),
            created,
            rotation: None,
        }
    }

    /// The state ListKeyRotations reports.
    pub fn state(&self, current_version: u32) -> KeyMaterialState {
        if self.version == current_version {
            KeyMaterialState::Current
        } else {
            KeyMaterialState::NonCurrent
        }
    }
}

/// Automatic rotation of a key: its period and the next due date.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RotationSchedule {
    pub period_days: i32,
    /// Epoch seconds.
    pub next: f64,
}

impl RotationSchedule {
    /// Rotation enabled (or its period changed) at `now`: due one period
    /// after `now`.
    pub fn starting(now: f64, period_days: i32) -> RotationSchedule {
        RotationSchedule {
            period_days,
            next: now + f64::from(period_days) * DAY,
        }
    }

    pub fn due(&self, now: f64) -> bool {
        self.next <= now
    }

    /// The schedule after an automatic rotation at `now`.
    pub fn after_rotation(&self, now: f64) -> RotationSchedule {
        RotationSchedule::starting(now, self.period_days)
    }
}

/// Why a key cannot rotate, as AWS words it (`UnsupportedOperationException`
/// unless noted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationRefusal {
    /// Not a symmetric encryption key (HMAC, asymmetric).
    NotSymmetric,
    /// A key in a custom key store.
    CustomKeyStore,
    /// Imported material: no automatic rotation.
    ImportedAutomatic,
    /// An AWS managed key.
    AwsManaged,
    /// The lifetime limit of on-demand rotations is used up
    /// (`LimitExceededException`).
    OnDemandLimit(u32),
    /// An on-demand rotation is already in progress (`ConflictException`).
    InProgress,
}

impl RotationRefusal {
    /// The message for the key `arn`.
    pub fn message(&self, arn: &str) -> String {
        match self {
            RotationRefusal::NotSymmetric => {
                format!("{arn} does not support key rotation: only symmetric encryption KMS keys can be rotated.")
            }
            RotationRefusal::CustomKeyStore => {
                format!("{arn} is in a custom key store; its key material cannot be rotated.")
            }
            RotationRefusal::ImportedAutomatic => format!(
                "{arn} has imported key material; automatic key rotation is not supported for such keys."
            ),
            RotationRefusal::AwsManaged => {
                format!("{arn} is an AWS managed key; its rotation is not configurable.")
            }
            RotationRefusal::OnDemandLimit(n) => format!(
                "{arn} has reached the limit of {n} on-demand rotations."
            ),
            RotationRefusal::InProgress => {
                format!("An on-demand rotation of {arn} is already in progress.")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_stable_and_distinct() {
        let k = "1234abcd-12ab-34cd-56ef-1234567890ab";
        let a = KeyMaterialId::derive(k, 1);
        assert_eq!(a.as_str().len(), 64);
        assert!(KeyMaterialId::parse(a.as_str()).is_some());
        assert_eq!(a, KeyMaterialId::derive(k, 1));
        assert_ne!(a, KeyMaterialId::derive(k, 2));
        assert_ne!(
            a,
            KeyMaterialId::derive("1234abcd-12ab-34cd-56ef-1234567890ac", 1)
        );
        // Fixed for all time: blobs of earlier releases name this id.
        assert_eq!(
            a.as_str(),
            "8ad40a6d7a8d76f7389114799d8b9d2e79c40f4ae9ab0b9b6de6b4c07a434dad"
        );
        assert!(KeyMaterialId::parse("ABC").is_none());
        assert!(KeyMaterialId::parse(&"A".repeat(64)).is_none());
    }

    #[test]
    fn schedule_is_one_period_after_enable_and_after_each_rotation() {
        let s = RotationSchedule::starting(1000.0, 90);
        assert_eq!(s.next, 1000.0 + 90.0 * DAY);
        assert!(!s.due(s.next - 1.0));
        assert!(s.due(s.next));
        let t = s.after_rotation(s.next + 5.0);
        assert_eq!(t.next, s.next + 5.0 + 90.0 * DAY);
        assert_eq!(t.period_days, 90);
    }

    #[test]
    fn states_follow_the_current_version() {
        let m = MaterialInfo::first("1234abcd-12ab-34cd-56ef-1234567890ab", 2, 0.0);
        assert_eq!(m.state(2), KeyMaterialState::Current);
        assert_eq!(m.state(3), KeyMaterialState::NonCurrent);
    }
}

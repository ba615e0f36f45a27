//! What a request is evaluated against: the caller, the key (resource),
//! the request's condition values, and the grants that may apply. Every
//! field is borrowed from what the pipeline already holds (the resolved
//! key record, the typed request), so building an input allocates nothing.

use super::condition::{ConditionKey, Found, KnownKey};
use super::grants::Grant;
use super::policy::PolicyDocument;
use std::collections::BTreeMap;
use std::sync::Arc;

/// An authenticated caller, built once per principal (from the principals
/// file) and shared across requests.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The caller's ARN (`arn:aws:iam::A:user/u`, `arn:aws:sts::A:assumed-role/R/s`, `arn:aws:iam::A:root`).
    pub arn: String,
    /// The caller's 12-digit account.
    pub account: String,
    /// For an assumed-role session, the role's ARN (what `aws:PrincipalArn`
    /// holds and what a role principal in a policy matches); else the ARN.
    pub principal_arn: String,
    /// `aws:PrincipalTag/<k>`, keys lowercased.
    pub tags: BTreeMap<String, String>,
    /// The caller's identity policies; `None` when none are configured
    /// (treated as "Allow kms:* on *" unless strict mode).
    pub identity_policies: Option<Vec<Arc<PolicyDocument>>>,
}

impl Caller {
    /// A caller without tags or identity policies.
    pub fn new(arn: &str, account: &str) -> Caller {
        Caller {
            arn: arn.to_owned(),
            account: account.to_owned(),
            principal_arn: role_of_session(arn).unwrap_or_else(|| arn.to_owned()),
            tags: BTreeMap::new(),
            identity_policies: None,
        }
    }

    /// Adds principal tags (keys are matched case-insensitively).
    pub fn with_tags<'a>(mut self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Caller {
        self.tags = tags
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect();
        self
    }

    /// Sets the identity policies (an empty list: no IAM permission at all).
    pub fn with_identity_policies(mut self, p: Vec<Arc<PolicyDocument>>) -> Caller {
        self.identity_policies = Some(p);
        self
    }

    /// The account root user (never limited by identity policies).
    pub fn is_account_root(&self) -> bool {
        self.arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|r| r.strip_suffix(":root"))
            == Some(self.account.as_str())
    }
}

/// `arn:aws:sts::A:assumed-role/R/s` → `arn:aws:iam::A:role/R`.
pub fn role_of_session(arn: &str) -> Option<String> {
    let rest = arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("sts::")?;
    let (account, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("assumed-role/")?;
    let (role, _session) = rest.split_once('/')?;
    Some(format!("arn:{partition}:iam::{account}:role/{role}"))
}

/// The key the request acts on, as its record holds it.
#[derive(Debug, Clone, Copy)]
pub struct KeyFacts<'a> {
    pub arn: &'a str,
    pub account: &'a str,
    /// `kms:KeySpec` (`SYMMETRIC_DEFAULT`, `RSA_2048`, ...).
    pub key_spec: &'a str,
    /// `kms:KeyUsage`.
    pub key_usage: &'a str,
    /// `kms:KeyOrigin` (`AWS_KMS`, `EXTERNAL`, `EXTERNAL_KEY_STORE`...).
    pub key_origin: &'a str,
    /// `kms:MultiRegion`.
    pub multi_region: bool,
    /// `aws:ResourceTag/<k>` (tag keys compared case-insensitively).
    pub tags: &'a BTreeMap<String, String>,
    /// `kms:ResourceAliases` (`alias/...`).
    pub aliases: &'a [String],
}

impl KeyFacts<'_> {
    /// The condition values of a key record.
    pub fn of_record(r: &crate::keys::KeyRecord) -> KeyFacts<'_> {
        KeyFacts {
            arn: &r.arn,
            account: &r.account,
            key_spec: r.key_spec.as_str(),
            key_usage: r.key_usage.as_str(),
            key_origin: r.origin.as_str(),
            multi_region: r.multi_region,
            tags: &r.tags,
            // kms:ResourceAliases is not tracked per key yet: always empty.
            aliases: &[],
        }
    }
}

/// `aws:CurrentTime` (ISO 8601, UTC) and `aws:EpochTime` for `now` (epoch
/// seconds, as the service clock gives it).
pub fn clock_values(now: f64) -> (String, String) {
    let secs = now.max(0.0) as u64;
    (
        audit_sink::event_time(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)),
        secs.to_string(),
    )
}

/// Request-specific condition values; everything optional, absent by
/// default.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts<'a> {
    pub encryption_context: Option<&'a BTreeMap<String, String>>,
    pub encryption_algorithm: Option<&'a str>,
    pub signing_algorithm: Option<&'a str>,
    pub mac_algorithm: Option<&'a str>,
    pub key_agreement_algorithm: Option<&'a str>,
    /// CreateGrant: `kms:GrantOperations`.
    pub grant_operations: Option<&'a [String]>,
    pub grantee_principal: Option<&'a str>,
    pub retiring_principal: Option<&'a str>,
    /// `EncryptionContextSubset` / `EncryptionContextEquals`.
    pub grant_constraint_type: Option<&'a str>,
    /// CreateGrant's constraints (EncryptionContextSubset,
    /// EncryptionContextEquals): a grant that allows CreateGrant passes on
    /// only constraints at least as strict as its own.
    pub grant_subset: Option<&'a BTreeMap<String, String>>,
    pub grant_equals: Option<&'a BTreeMap<String, String>>,
    pub grant_is_for_aws_resource: Option<bool>,
    /// The alias named in the request (`alias/...`).
    pub request_alias: Option<&'a str>,
    pub bypass_policy_lockout_safety_check: Option<bool>,
    /// ScheduleKeyDeletion's PendingWindowInDays, as text.
    pub pending_window_in_days: Option<&'a str>,
    /// `aws:RequestTag/<k>` (keys compared case-insensitively).
    pub request_tags: Option<&'a BTreeMap<String, String>>,
    /// `aws:TagKeys`.
    pub tag_keys: Option<&'a [String]>,
    /// `aws:SourceIp`, the peer address as text.
    pub source_ip: Option<&'a str>,
    pub secure_transport: bool,
    /// `aws:CurrentTime`, ISO 8601 (`2026-01-02T03:04:05Z`).
    pub current_time: &'a str,
    /// `aws:EpochTime`, seconds as text.
    pub epoch_time: &'a str,
}

/// Everything one authorization decision needs.
#[derive(Debug, Clone)]
pub struct AuthzInput<'a> {
    pub caller: &'a Caller,
    /// The IAM action, `kms:Decrypt`.
    pub action: &'a str,
    pub key: KeyFacts<'a>,
    /// The key's policy, parsed once by the caller and cached per key.
    pub key_policy: &'a PolicyDocument,
    pub request: RequestFacts<'a>,
    /// The key's grants (from the store).
    pub grants: &'a [Arc<Grant>],
    /// Grants named by the request's grant tokens (already resolved).
    pub token_grants: &'a [Arc<Grant>],
    /// Strict mode: a caller without identity policies has no IAM
    /// permission (instead of "Allow kms:* on *").
    pub strict: bool,
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// A tag by case-insensitive key (tags maps are small).
fn tag<'a>(tags: &'a BTreeMap<String, String>, lower_key: &str) -> Found<'a> {
    tags.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(lower_key))
        .map_or(Found::Absent, |(_, v)| Found::One(v))
}

impl<'a> AuthzInput<'a> {
    /// The request's values of a condition key.
    pub fn lookup(&self, key: &ConditionKey) -> Found<'a> {
        let r = &self.request;
        let opt = |o: Option<&'a str>| o.map_or(Found::Absent, Found::One);
        match key {
            ConditionKey::EncryptionContext(k) => r
                .encryption_context
                .and_then(|c| c.get(k))
                .map_or(Found::Absent, |v| Found::One(v)),
            ConditionKey::PrincipalTag(k) => tag(&self.caller.tags, k),
            ConditionKey::ResourceTag(k) => tag(self.key.tags, k),
            ConditionKey::RequestTag(k) => r.request_tags.map_or(Found::Absent, |t| tag(t, k)),
            ConditionKey::Other(_) => Found::Absent,
            ConditionKey::Known(k) => match k {
                KnownKey::CallerAccount | KnownKey::PrincipalAccount => {
                    Found::One(&self.caller.account)
                }
                KnownKey::PrincipalArn => Found::One(&self.caller.principal_arn),
                KnownKey::EncryptionContextKeys => r
                    .encryption_context
                    .map_or(Found::Absent, |c| Found::Keys(c.keys())),
                KnownKey::EncryptionAlgorithm => opt(r.encryption_algorithm),
                KnownKey::SigningAlgorithm => opt(r.signing_algorithm),
                KnownKey::MacAlgorithm => opt(r.mac_algorithm),
                KnownKey::KeyAgreementAlgorithm => opt(r.key_agreement_algorithm),
                KnownKey::GrantOperations => r.grant_operations.map_or(Found::Absent, Found::List),
                KnownKey::GranteePrincipal => opt(r.grantee_principal),
                KnownKey::RetiringPrincipal => opt(r.retiring_principal),
                KnownKey::GrantConstraintType => opt(r.grant_constraint_type),
                KnownKey::GrantIsForAwsResource => opt(r.grant_is_for_aws_resource.map(bool_str)),
                KnownKey::KeySpec => Found::One(self.key.key_spec),
                KnownKey::KeyUsage => Found::One(self.key.key_usage),
                KnownKey::KeyOrigin => Found::One(self.key.key_origin),
                KnownKey::MultiRegion => Found::One(bool_str(self.key.multi_region)),
                KnownKey::RequestAlias => opt(r.request_alias),
                KnownKey::ResourceAliases => Found::List(self.key.aliases),
                KnownKey::BypassPolicyLockoutSafetyCheck => {
                    opt(r.bypass_policy_lockout_safety_check.map(bool_str))
                }
                KnownKey::ScheduleKeyDeletionPendingWindowInDays => opt(r.pending_window_in_days),
                // No AWS service calls kms-core on a caller's behalf.
                KnownKey::ViaService => Found::Absent,
                KnownKey::SourceIp => opt(r.source_ip),
                KnownKey::SecureTransport => Found::One(bool_str(r.secure_transport)),
                KnownKey::CurrentTime => opt(Some(r.current_time).filter(|s| !s.is_empty())),
                KnownKey::EpochTime => opt(Some(r.epoch_time).filter(|s| !s.is_empty())),
                KnownKey::TagKeys => r.tag_keys.map_or(Found::Absent, Found::List),
            },
        }
    }
}

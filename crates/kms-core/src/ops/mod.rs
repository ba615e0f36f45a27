//! The operations. Each handler takes the operation context ([`Ctx`]: the
//! caller, the store, the keys the pipeline resolved) and its typed request,
//! and returns its typed response or a [`KmsError`].
//!
//! * [`keys`] — CreateKey, DescribeKey, ListKeys, Enable/DisableKey,
//!   UpdateKeyDescription, Schedule/CancelKeyDeletion;
//! * [`rotation`] — automatic and on-demand rotation, ListKeyRotations,
//!   the background rotator;
//! * [`crypto`] — every cryptographic operation, for every kind of key
//!   (the key provides its cryptography: local material or the external
//!   key store);
//! * [`aliases`], [`tags`], [`policies`];
//! * [`custom_key_stores`] — the external key store management operations;
//! * [`grants`] — the grant operations (not implemented yet);
//! * [`usage`] — GetKeyLastUsage and recording successful use;
//! * [`random`] — GenerateRandom.

pub mod aliases;
pub mod crypto;
pub mod custom_key_stores;
pub mod grants;
pub mod keys;
pub mod policies;
pub mod random;
pub mod rotation;
pub mod tags;
pub mod usage;

use crate::api::error::KmsError;
use crate::api::types::Tag;
use crate::auth::Caller;
use crate::context::{KeyRole, Resolved};
use crate::keys::{StateError, StateErrorKind};
use crate::store::{KeyEntry, Store, StoreError};
use crate::xks::Registry;
use std::sync::Arc;

/// What an operation works with.
pub struct Ctx<'a> {
    pub store: &'a dyn Store,
    pub caller: &'a Caller,
    /// External key store connections.
    pub registry: &'a Arc<Registry>,
    /// The KMS request id (sent to XKS proxies as kmsRequestId).
    pub request_id: &'a str,
    /// The keys the request names, resolved by the pipeline.
    pub resolved: &'a Resolved,
    /// The caller's address and whether it came over TLS (`aws:SourceIp`,
    /// `aws:SecureTransport` in the policy lockout check).
    pub source: Option<std::net::SocketAddr>,
    pub tls: bool,
}

impl Ctx<'_> {
    pub fn account(&self) -> &str {
        self.caller.scope.account.as_str()
    }

    pub fn region(&self) -> &str {
        &self.caller.scope.region
    }

    /// The resolved key in `role`. The pipeline resolves every key an
    /// operation names before it runs, so a missing one is a defect.
    pub fn key(&self, role: KeyRole) -> Result<&Arc<KeyEntry>, KmsError> {
        self.resolved
            .get(role)
            .ok_or_else(|| KmsError::Internal(format!("no resolved {role:?} key")))
    }
}

pub use crate::clock::now;

/// Maps a state refusal to AWS's exception for `arn`.
pub fn state_error(e: StateError, arn: &str) -> KmsError {
    let message = e.message(arn);
    match e.kind {
        StateErrorKind::Disabled => KmsError::Disabled(message),
        StateErrorKind::InvalidState => KmsError::InvalidState(message),
    }
}

/// The one mapping of store failures to AWS errors, for the key `arn`.
pub fn store_error(e: StoreError, arn: &str) -> KmsError {
    match e {
        StoreError::NotFound => KmsError::NotFound(format!("Key '{arn}' does not exist")),
        StoreError::AlreadyExists => KmsError::AlreadyExists(format!("Key '{arn}' already exists")),
        StoreError::InvalidMarker => KmsError::InvalidMarker("Invalid marker".into()),
        StoreError::Rejected(refusal) => match refusal.downcast::<StateError>() {
            Ok(state) => state_error(*state, arn),
            Err(other) => match other.downcast::<KmsError>() {
                Ok(kms) => *kms,
                Err(other) => KmsError::Internal(other.to_string()),
            },
        },
        other => KmsError::Internal(format!("The key store failed: {other}")),
    }
}

/// `DryRunOperationException` when the request asked for a dry run (after
/// every check, before any effect).
pub fn dry_run(flag: Option<bool>) -> Result<(), KmsError> {
    if flag == Some(true) {
        return Err(KmsError::DryRunOperation);
    }
    Ok(())
}

/// The Nitro Enclaves `Recipient` is not supported.
pub fn no_recipient<T>(recipient: &Option<T>) -> Result<(), KmsError> {
    if recipient.is_some() {
        return Err(KmsError::UnsupportedOperation(
            "Recipient (Nitro Enclaves attestation) is not supported by kms-core.".into(),
        ));
    }
    Ok(())
}

/// Most tags AWS allows on one key.
pub const MAX_TAGS: usize = 50;

/// Tags of CreateKey and TagResource, checked as AWS does: no reserved
/// `aws:` prefix (in any case), no duplicate tag keys.
pub fn checked_tags(tags: &[Tag]) -> Result<Vec<(String, String)>, KmsError> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(tags.len());
    for t in tags {
        if t.tag_key
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
        {
            return Err(KmsError::Tag(
                "Tags beginning with aws: are reserved".into(),
            ));
        }
        if out.iter().any(|(k, _)| *k == t.tag_key) {
            return Err(KmsError::Tag("Duplicate tag keys".into()));
        }
        out.push((t.tag_key.clone(), t.tag_value.clone()));
    }
    Ok(out)
}

/// A page of a list as the model's `Truncated`/`NextMarker` pair.
pub fn truncated(next: &Option<String>) -> Option<bool> {
    Some(next.is_some())
}

/// A `Limit` member (validated by the model: 1–1000) as a count.
pub fn limit(l: Option<i32>) -> usize {
    l.and_then(|n| usize::try_from(n).ok()).unwrap_or(100)
}

/// A dry run with `IGNORE_CIPHERTEXT`: only authorization (and the key's
/// state) is evaluated, the ciphertext is not read.
pub fn ignores_ciphertext(
    dry_run: Option<bool>,
    modifiers: &Option<Vec<crate::api::types::DryRunModifierType>>,
) -> bool {
    dry_run == Some(true)
        && modifiers
            .iter()
            .flatten()
            .any(|m| *m == crate::api::types::DryRunModifierType::IgnoreCiphertext)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str) -> Tag {
        Tag {
            tag_key: k.into(),
            tag_value: "v".into(),
        }
    }

    #[test]
    fn reserved_prefix_in_any_case_and_duplicates() {
        for k in ["aws:x", "AWS:x", "Aws:x"] {
            let e = checked_tags(&[tag(k)]).unwrap_err();
            assert_eq!(e.type_name(), "TagException");
            assert_eq!(e.message(), "Tags beginning with aws: are reserved");
        }
        let e = checked_tags(&[tag("a"), tag("a")]).unwrap_err();
        assert_eq!(e.message(), "Duplicate tag keys");
        assert_eq!(checked_tags(&[tag("a"), tag("awsx")]).unwrap().len(), 2);
    }
}

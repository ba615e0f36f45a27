//! Step 5: every key the request names, resolved once. Key references in
//! the four forms AWS accepts (key id, key ARN, alias name, alias ARN —
//! fewer where the model documents only key id and key ARN,
//! [`crate::api::key_refs`]); for Decrypt and ReEncrypt the key the
//! ciphertext names, checked against the request's KeyId first
//! (IncorrectKeyException), as AWS does.

use crate::api::error::KmsError;
use crate::api::key_refs::{self, KeyForms};
use crate::api::{Operation, Request};
use crate::auth::Caller;
use crate::context::{KeyRole, NamedAlias, Resolved, ResolvedKey};
use crate::crypto;
use crate::keys::ids::{AliasName, IdError, KeyRef, Scope};
use crate::keys::KeySpec;
use crate::store::{KeyEntry, Store};
use std::sync::Arc;

fn incorrect_key() -> KmsError {
    KmsError::IncorrectKey(
        "The key ID in the request does not identify a CMK that can perform this operation.".into(),
    )
}

fn invalid_ciphertext() -> KmsError {
    KmsError::InvalidCiphertext(String::new())
}

/// The key `key_id` names in the caller's namespace. A stored record that
/// cannot be read is an internal error naming the key (logged), never
/// "not found" or a default.
pub fn by_id(store: &dyn Store, caller: &Caller, key_id: &str) -> Result<Arc<KeyEntry>, KmsError> {
    by_id_in(store, &caller.scope, key_id)
}

/// The key `key_id` names in namespace `s`.
fn by_id_in(store: &dyn Store, s: &Scope, key_id: &str) -> Result<Arc<KeyEntry>, KmsError> {
    match store.key(s.account.as_str(), &s.region, key_id) {
        Some(e) => Ok(e),
        None => match store.unreadable(s.account.as_str(), &s.region, key_id) {
            Some(cause) => Err(KmsError::Internal(format!(
                "key {key_id}: the stored record cannot be read: {cause}"
            ))),
            None => Err(KmsError::NotFound(format!(
                "Key '{}' does not exist",
                s.key_arn_str(key_id)
            ))),
        },
    }
}

/// Whether AWS lets `op` use a key of another account (by key ARN or
/// alias ARN): "Cross-account use: Yes" in the API reference.
pub fn cross_account(op: Operation) -> bool {
    use Operation::*;
    matches!(
        op,
        CreateGrant
            | Decrypt
            | Decapsulate
            | DeriveSharedSecret
            | DescribeKey
            | Encapsulate
            | Encrypt
            | GenerateDataKey
            | GenerateDataKeyPair
            | GenerateDataKeyPairWithoutPlaintext
            | GenerateDataKeyWithoutPlaintext
            | GenerateMac
            | GetKeyRotationStatus
            | GetPublicKey
            | ListGrants
            | ReEncrypt
            | RetireGrant
            | RevokeGrant
            | Sign
            | Verify
            | VerifyMac
    )
}

/// Resolves a key reference accepted in `forms`, in the caller's
/// namespace (or, for `cross`, in the namespace its ARN names when it is
/// the caller's Region; authorization then decides).
pub fn key_ref(
    store: &dyn Store,
    caller: &Caller,
    reference: &str,
    forms: KeyForms,
) -> Result<Arc<KeyEntry>, KmsError> {
    key_ref_for(store, caller, reference, forms, false)
}

fn key_ref_for(
    store: &dyn Store,
    caller: &Caller,
    reference: &str,
    forms: KeyForms,
    cross: bool,
) -> Result<Arc<KeyEntry>, KmsError> {
    let parsed = KeyRef::parse(reference).map_err(|e| match e {
        IdError::Arn(_) => KmsError::NotFound(format!("Invalid arn {reference}")),
        _ => KmsError::NotFound(format!("Invalid keyId '{reference}'")),
    })?;
    let mut scope = &caller.scope;
    match &parsed {
        KeyRef::KeyArn { scope: s, .. } | KeyRef::AliasArn { scope: s, .. }
            if cross && s.region == scope.region =>
        {
            scope = s;
        }
        KeyRef::KeyArn { scope: s, .. } | KeyRef::AliasArn { scope: s, .. } if s != scope => {
            // AWS names the Region of an ARN from another Region.
            return Err(KmsError::NotFound(if s.region != scope.region {
                format!("Invalid arn {}", s.region)
            } else {
                format!("Invalid arn {reference}")
            }));
        }
        _ => {}
    }
    let is_alias = matches!(parsed, KeyRef::Alias(_) | KeyRef::AliasArn { .. });
    if is_alias && forms == KeyForms::KeyOnly {
        return Err(KmsError::NotFound(format!("Invalid keyId '{reference}'")));
    }
    let key_id = match &parsed {
        KeyRef::Id(id) | KeyRef::KeyArn { id, .. } => id.as_str().to_owned(),
        KeyRef::Alias(alias) | KeyRef::AliasArn { alias, .. } => {
            store
                .alias(scope.account.as_str(), &scope.region, alias.as_str())
                .ok_or_else(|| {
                    KmsError::NotFound(format!("Alias '{}' is not found.", scope.alias_arn(alias)))
                })?
                .target_key_id
        }
    };
    by_id_in(store, scope, &key_id)
}

/// The key a ciphertext names (symmetric or external key store format) in
/// namespace `s`.
fn named_by_blob(store: &dyn Store, s: &Scope, blob: &[u8]) -> Option<Arc<KeyEntry>> {
    let id = crate::xks::envelope::named_key_id(blob)?;
    store.key(
        s.account.as_str(),
        &s.region,
        &crypto::key_id_from_bytes(&id),
    )
}

/// Decrypt's and ReEncrypt's source key: the ciphertext's key; a KeyId in
/// the request must name that key (IncorrectKeyException otherwise), except
/// for asymmetric encryption keys, whose ciphertexts name no key.
fn ciphertext_key(
    store: &dyn Store,
    caller: &Caller,
    blob: &[u8],
    key_id: Option<&str>,
) -> Result<Arc<KeyEntry>, KmsError> {
    let Some(reference) = key_id else {
        // The caller's own key, else another account's key of the Region
        // (AWS: a cross-account ciphertext decrypts without KeyId when that
        // key's policy allows the caller; the authorize step decides).
        return named_by_blob(store, &caller.scope, blob)
            .or_else(|| {
                let id = crate::xks::envelope::named_key_id(blob)?;
                store.key_in_region(&caller.scope.region, &crypto::key_id_from_bytes(&id))
            })
            .ok_or_else(invalid_ciphertext);
    };
    let wanted = key_ref_for(store, caller, reference, KeyForms::Any, true)?;
    // The ciphertext's key in the namespace of the key the request names
    // (another account's, for cross-account Decrypt).
    let own = &caller.scope;
    let named =
        if wanted.record.account == own.account.as_str() && wanted.record.region == own.region {
            named_by_blob(store, own, blob)
        } else {
            let ns = Scope {
                account: crate::keys::ids::AccountId::parse(&wanted.record.account)
                    .map_err(|e| KmsError::Internal(format!("stored account: {e}")))?,
                region: wanted.record.region.clone(),
            };
            named_by_blob(store, &ns, blob)
        };
    match named {
        Some(n) if n.record.key_id != wanted.record.key_id => Err(incorrect_key()),
        Some(n) => Ok(n),
        None if wanted.record.key_spec != KeySpec::SymmetricDefault => Ok(wanted),
        None => Err(invalid_ciphertext()),
    }
}

/// The key a dry run with `IGNORE_CIPHERTEXT` names: the ciphertext does
/// not say, so the request must.
fn named_key(
    store: &dyn Store,
    caller: &Caller,
    reference: Option<&str>,
    member: &str,
) -> Result<Arc<KeyEntry>, KmsError> {
    let reference = reference.ok_or_else(|| {
        KmsError::Validation(format!(
            "{member} is required when DryRunModifiers contains IGNORE_CIPHERTEXT."
        ))
    })?;
    key_ref_for(store, caller, reference, KeyForms::Any, true)
}

/// CreateAlias/UpdateAlias target: a key id or key ARN; an alias is
/// ValidationException ("Aliases must refer to keys").
fn alias_target(
    store: &dyn Store,
    caller: &Caller,
    reference: &str,
) -> Result<Arc<KeyEntry>, KmsError> {
    if matches!(
        KeyRef::parse(reference),
        Ok(KeyRef::Alias(_) | KeyRef::AliasArn { .. })
    ) {
        return Err(KmsError::Validation(format!(
            "Aliases must refer to keys. Not aliases: {reference}"
        )));
    }
    key_ref(store, caller, reference, KeyForms::KeyOnly)
}

fn named_alias(caller: &Caller, alias: &AliasName) -> NamedAlias {
    NamedAlias {
        name: alias.as_str().to_owned(),
        arn: caller.scope.alias_arn(alias),
    }
}

/// The keys and aliases `request` names.
pub fn resolve(
    store: &dyn Store,
    caller: &Caller,
    request: &Request,
) -> Result<Resolved, KmsError> {
    let mut out = Resolved::default();
    let mut key = |role, entry| out.keys.push(ResolvedKey { role, entry });
    let op = request.operation();
    match request {
        Request::Decrypt(r) => {
            let blob = r.ciphertext_blob.as_ref().map_or(&[][..], |b| b.as_bytes());
            let entry = if crate::ops::ignores_ciphertext(r.dry_run, &r.dry_run_modifiers) {
                named_key(store, caller, r.key_id.as_deref(), "KeyId")?
            } else {
                ciphertext_key(store, caller, blob, r.key_id.as_deref())?
            };
            key(KeyRole::Key, entry);
        }
        Request::ReEncrypt(r) => {
            let blob = r.ciphertext_blob.as_ref().map_or(&[][..], |b| b.as_bytes());
            let source = if crate::ops::ignores_ciphertext(r.dry_run, &r.dry_run_modifiers) {
                named_key(store, caller, r.source_key_id.as_deref(), "SourceKeyId")?
            } else {
                ciphertext_key(store, caller, blob, r.source_key_id.as_deref())?
            };
            let destination =
                key_ref_for(store, caller, &r.destination_key_id, KeyForms::Any, true)?;
            key(KeyRole::Source, source);
            key(KeyRole::Destination, destination);
        }
        Request::CreateAlias(r) => {
            let alias = AliasName::parse_customer(&r.alias_name)?;
            let target = alias_target(store, caller, &r.target_key_id)?;
            key(KeyRole::Key, target);
            out.aliases.push(named_alias(caller, &alias));
        }
        Request::UpdateAlias(r) => {
            let alias = AliasName::parse_customer(&r.alias_name)?;
            let target = alias_target(store, caller, &r.target_key_id)?;
            key(KeyRole::Key, target);
            out.aliases.push(named_alias(caller, &alias));
        }
        Request::DeleteAlias(r) => {
            let alias = AliasName::parse(&r.alias_name)?;
            let s = &caller.scope;
            if let Some(target) = store
                .alias(s.account.as_str(), &s.region, alias.as_str())
                .and_then(|a| store.key(s.account.as_str(), &s.region, &a.target_key_id))
            {
                key(KeyRole::Key, target);
            }
            out.aliases.push(named_alias(caller, &alias));
        }
        // Operations that name no key, or whose key comes from elsewhere.
        Request::CreateKey(_) | Request::GenerateRandom(_) | Request::ListKeys(_) => {}
        other => {
            if let Some(reference) = other.key_id() {
                let forms = key_refs::forms(op, "KeyId");
                let entry = key_ref_for(store, caller, reference, forms, cross_account(op))?;
                key(KeyRole::Key, entry);
            }
        }
    }
    Ok(out)
}

/// The IAM action of `op` on a key in `role`.
pub fn action(op: Operation, role: KeyRole) -> &'static str {
    match (op, role) {
        (Operation::ReEncrypt, KeyRole::Source) => "kms:ReEncryptFrom",
        (Operation::ReEncrypt, _) => "kms:ReEncryptTo",
        _ => op.iam_action(),
    }
}

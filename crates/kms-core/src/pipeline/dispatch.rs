//! Step 7: the one dispatch, from the typed request to its handler
//! ([`crate::ops`]) and the serialized typed response. Every operation of
//! the model has an arm (the match is exhaustive over [`Request`]); the
//! ones not implemented yet answer UnsupportedOperationException.

use super::encode::response;
use crate::api::error::KmsError;
use crate::api::{Operation, Request};
use crate::context::KeyRole;
use crate::ops::{
    aliases, crypto, custom_key_stores as cks, grants, keys, policies, random, rotation, tags,
    usage, Ctx,
};
use crate::xks::keys as xks;

/// The body of an operation whose response has no members.
fn empty(r: Result<(), KmsError>) -> Result<Vec<u8>, KmsError> {
    r.map(|()| b"{}".to_vec())
}

/// The operations of the model kms-core does not implement yet.
pub const NOT_IMPLEMENTED: &[Operation] = &[
    Operation::DeleteImportedKeyMaterial,
    Operation::GetParametersForImport,
    Operation::ImportKeyMaterial,
    Operation::ReplicateKey,
    Operation::UpdatePrimaryRegion,
];

fn not_implemented(ctx: &Ctx<'_>, op: Operation) -> KmsError {
    if let Some(entry) = ctx.resolved.get(KeyRole::Key) {
        if xks::is_xks(&entry.record) && xks::UNSUPPORTED_ON_XKS_KEYS.contains(&op) {
            return xks::unsupported(&entry.record);
        }
    }
    KmsError::UnsupportedOperation(format!(
        "{op} is not implemented by this version of kms-core yet."
    ))
}

/// Runs the operation and serializes its response; a successful
/// cryptographic operation is recorded as its keys' last usage.
pub async fn dispatch(ctx: &Ctx<'_>, request: Request) -> Result<Vec<u8>, KmsError> {
    let op = request.operation();
    let out = run(ctx, request).await;
    if out.is_ok() {
        usage::record(ctx, op);
    }
    out
}

async fn run(ctx: &Ctx<'_>, request: Request) -> Result<Vec<u8>, KmsError> {
    use Request as R;
    match request {
        // Keys.
        R::CreateKey(r) => response(&keys::create_key(ctx, *r).await?),
        R::DescribeKey(r) => response(&keys::describe_key(ctx, *r)?),
        R::ListKeys(r) => response(&keys::list_keys(ctx, *r)?),
        R::EnableKey(r) => empty(keys::enable_key(ctx, *r)),
        R::DisableKey(r) => empty(keys::disable_key(ctx, *r)),
        R::UpdateKeyDescription(r) => empty(keys::update_key_description(ctx, *r)),
        R::ScheduleKeyDeletion(r) => response(&keys::schedule_key_deletion(ctx, *r)?),
        R::CancelKeyDeletion(r) => response(&keys::cancel_key_deletion(ctx, *r)?),
        R::GetKeyRotationStatus(r) => response(&rotation::get_key_rotation_status(ctx, *r)?),
        R::EnableKeyRotation(r) => empty(rotation::enable_key_rotation(ctx, *r)),
        R::DisableKeyRotation(r) => empty(rotation::disable_key_rotation(ctx, *r)),
        R::RotateKeyOnDemand(r) => response(&rotation::rotate_key_on_demand(ctx, *r)?),
        R::ListKeyRotations(r) => response(&rotation::list_key_rotations(ctx, *r)?),
        R::GetKeyLastUsage(r) => response(&usage::get_key_last_usage(ctx, *r)?),
        // Cryptographic operations.
        R::Encrypt(r) => response(&crypto::encrypt(ctx, *r).await?),
        R::Decrypt(r) => response(&crypto::decrypt(ctx, *r).await?),
        R::ReEncrypt(r) => response(&crypto::re_encrypt(ctx, *r).await?),
        R::GenerateDataKey(r) => response(&crypto::generate_data_key(ctx, *r).await?),
        R::GenerateDataKeyWithoutPlaintext(r) => {
            response(&crypto::generate_data_key_without_plaintext(ctx, *r).await?)
        }
        R::GenerateDataKeyPair(r) => response(&crypto::generate_data_key_pair(ctx, *r).await?),
        R::GenerateDataKeyPairWithoutPlaintext(r) => {
            response(&crypto::generate_data_key_pair_without_plaintext(ctx, *r).await?)
        }
        R::GetPublicKey(r) => response(&crypto::get_public_key(ctx, *r)?),
        R::Sign(r) => response(&crypto::sign(ctx, *r).await?),
        R::Verify(r) => response(&crypto::verify(ctx, *r)?),
        R::GenerateMac(r) => response(&crypto::generate_mac(ctx, *r)?),
        R::VerifyMac(r) => response(&crypto::verify_mac(ctx, *r)?),
        R::DeriveSharedSecret(r) => response(&crypto::derive_shared_secret(ctx, *r)?),
        R::Encapsulate(r) => response(&crypto::encapsulate(ctx, *r)?),
        R::Decapsulate(r) => response(&crypto::decapsulate(ctx, *r)?),
        R::GenerateRandom(r) => response(&random::generate_random(ctx, *r)?),
        // Aliases, tags, policies.
        R::CreateAlias(r) => empty(aliases::create_alias(ctx, *r)),
        R::UpdateAlias(r) => empty(aliases::update_alias(ctx, *r)),
        R::DeleteAlias(r) => empty(aliases::delete_alias(ctx, *r)),
        R::ListAliases(r) => response(&aliases::list_aliases(ctx, *r)?),
        R::TagResource(r) => empty(tags::tag_resource(ctx, *r)),
        R::UntagResource(r) => empty(tags::untag_resource(ctx, *r)),
        R::ListResourceTags(r) => response(&tags::list_resource_tags(ctx, *r)?),
        R::GetKeyPolicy(r) => response(&policies::get_key_policy(ctx, *r)?),
        R::PutKeyPolicy(r) => empty(policies::put_key_policy(ctx, *r)),
        R::ListKeyPolicies(r) => response(&policies::list_key_policies(ctx, *r)?),
        // Custom key stores.
        R::CreateCustomKeyStore(r) => response(&cks::create(ctx, *r).await?),
        R::DescribeCustomKeyStores(r) => response(&cks::describe(ctx, *r)?),
        R::UpdateCustomKeyStore(r) => empty(cks::update(ctx, *r).await),
        R::ConnectCustomKeyStore(r) => empty(cks::connect(ctx, *r)),
        R::DisconnectCustomKeyStore(r) => empty(cks::disconnect(ctx, *r)),
        R::DeleteCustomKeyStore(r) => empty(cks::delete(ctx, *r)),
        // Grants.
        R::CreateGrant(r) => response(&grants::create_grant(ctx, *r)?),
        R::ListGrants(r) => response(&grants::list_grants(ctx, *r)?),
        R::ListRetirableGrants(r) => response(&grants::list_retirable_grants(ctx, *r)?),
        R::RetireGrant(r) => empty(grants::retire_grant(ctx, *r)),
        R::RevokeGrant(r) => empty(grants::revoke_grant(ctx, *r)),
        // Not implemented yet (import, multi-Region).
        R::GetParametersForImport(_)
        | R::ImportKeyMaterial(_)
        | R::DeleteImportedKeyMaterial(_)
        | R::ReplicateKey(_)
        | R::UpdatePrimaryRegion(_) => Err(not_implemented(ctx, request.operation())),
    }
}

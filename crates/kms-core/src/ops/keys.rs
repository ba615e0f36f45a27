//! Key management: CreateKey (every key spec, and keys in external key
//! stores), DescribeKey, ListKeys, EnableKey/DisableKey,
//! UpdateKeyDescription, ScheduleKeyDeletion/CancelKeyDeletion, and the
//! deletion sweeper.

use super::crypto::{material_error, off_runtime};
use super::policies::check_new_policy;
use super::{checked_tags, limit, now, store_error, truncated, Ctx, MAX_TAGS};
use crate::api::error::KmsError;
use crate::api::types::*;
use crate::context::KeyRole;
use crate::crypto::{self, asymmetric, Secret};
use crate::keys::ids::KeyId;
use crate::keys::spec::{self, KeyUsage};
use crate::keys::{KeyRecord, KeyState, Operation};
use crate::store::{KeyEntry, Refusal, Store};
use crate::xks::errors::{self as xks_errors, ks, KeyStoreErrorKind as K};
use crate::xks::keys as xks;
use crate::xks::registry::ConnState;
use xks_wire::ExternalKeyId;

/// The per-key-type members of `KeyMetadata` and GetPublicKey's response.
#[derive(Debug, Default)]
pub struct TypeFields {
    pub customer_master_key_spec: Option<CustomerMasterKeySpec>,
    pub encryption_algorithms: Option<Vec<EncryptionAlgorithmSpec>>,
    pub signing_algorithms: Option<Vec<SigningAlgorithmSpec>>,
    pub mac_algorithms: Option<Vec<MacAlgorithmSpec>>,
    pub key_agreement_algorithms: Option<Vec<KeyAgreementAlgorithmSpec>>,
    pub encapsulation_algorithms: Option<Vec<EncapsulationAlgorithmSpec>>,
}

fn non_empty<T: Copy>(v: &[T]) -> Option<Vec<T>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// What the key's spec and usage allow, as AWS lists it.
pub fn type_fields(r: &KeyRecord) -> TypeFields {
    let (s, usage) = spec::of_record(r);
    TypeFields {
        customer_master_key_spec: if s.in_customer_master_key_spec() {
            CustomerMasterKeySpec::parse(s.as_str())
        } else {
            None
        },
        encryption_algorithms: non_empty(s.encryption_algorithms(usage)),
        signing_algorithms: non_empty(s.signing_algorithms(usage)),
        mac_algorithms: s.mac_algorithm().map(|m| vec![m]),
        key_agreement_algorithms: (usage == KeyUsage::KeyAgreement)
            .then(|| vec![KeyAgreementAlgorithmSpec::Ecdh]),
        encapsulation_algorithms: (usage == KeyUsage::EncapsulateDecapsulate)
            .then(|| vec![EncapsulationAlgorithmSpec::MlKem]),
    }
}

/// `KeyMetadata` as AWS returns it.
pub fn key_metadata(r: &KeyRecord) -> KeyMetadata {
    let t = type_fields(r);
    KeyMetadata {
        aws_account_id: Some(r.account.clone()),
        key_id: r.key_id.clone(),
        arn: Some(r.arn.clone()),
        creation_date: Some(r.creation_date),
        enabled: Some(r.enabled),
        description: Some(r.description.clone()),
        key_usage: Some(r.key_usage),
        key_state: Some(r.key_state),
        deletion_date: r.deletion_date,
        pending_deletion_window_in_days: r
            .pending_deletion_window_days
            .and_then(|d| i32::try_from(d).ok()),
        origin: Some(r.origin),
        custom_key_store_id: r.custom_key_store_id.clone(),
        xks_key_configuration: r.xks_key_id.as_ref().map(|id| XksKeyConfigurationType {
            id: Some(id.clone()),
        }),
        key_manager: Some(r.key_manager),
        key_spec: Some(r.key_spec),
        customer_master_key_spec: t.customer_master_key_spec,
        encryption_algorithms: t.encryption_algorithms,
        signing_algorithms: t.signing_algorithms,
        mac_algorithms: t.mac_algorithms,
        key_agreement_algorithms: t.key_agreement_algorithms,
        encapsulation_algorithms: t.encapsulation_algorithms,
        multi_region: Some(r.multi_region),
        cloud_hsm_cluster_id: None,
        current_key_material_id: r.current_material_id().map(|id| id.to_string()),
        expiration_model: None,
        multi_region_configuration: None,
        valid_to: None,
    }
}

/// The new key's record from the request's common members, completed by
/// `shape` (spec, usage, origin) before its policy's lockout check, whose
/// conditions may name them (`kms:KeySpec`, `kms:KeyOrigin`...).
fn new_record(
    ctx: &Ctx<'_>,
    req: &CreateKeyRequest,
    shape: impl FnOnce(&mut KeyRecord),
) -> Result<KeyRecord, KmsError> {
    let tags = checked_tags(req.tags.as_deref().unwrap_or_default())?;
    if tags.len() > MAX_TAGS {
        return Err(KmsError::Tag("Too many tags".into()));
    }
    let mut record = KeyRecord::new_symmetric(
        KeyId::random().as_str(),
        ctx.account(),
        ctx.region(),
        req.description.as_deref().unwrap_or(""),
        now(),
        req.policy.clone(),
    );
    record.tags = tags.into_iter().collect();
    shape(&mut record);
    if let Some(p) = &req.policy {
        let bypass = req.bypass_policy_lockout_safety_check == Some(true);
        check_new_policy(ctx, p, &record, bypass)?;
    }
    Ok(record)
}

/// CreateKey: keys of every spec in AWS KMS (RSA material generated on the
/// blocking pool), and keys in external key stores.
pub async fn create_key(
    ctx: &Ctx<'_>,
    req: CreateKeyRequest,
) -> Result<CreateKeyResponse, KmsError> {
    if req.origin == Some(OriginType::ExternalKeyStore) {
        return create_xks_key(ctx, req).await;
    }
    if req.xks_key_id.is_some() {
        return Err(KmsError::Validation(
            "XksKeyId is valid only when Origin is EXTERNAL_KEY_STORE.".into(),
        ));
    }
    if let Some(id) = &req.custom_key_store_id {
        let exists = ctx
            .store
            .custom_key_stores(ctx.account(), ctx.region())
            .iter()
            .any(|r| r.id == *id);
        return Err(if exists {
            KmsError::Validation(
                "To create a KMS key in an external key store, Origin must be EXTERNAL_KEY_STORE."
                    .into(),
            )
        } else {
            KmsError::CustomKeyStoreNotFound(format!("Custom key store {id} does not exist."))
        });
    }
    let (key_spec, usage) = spec::parse_create(&req)?;
    if let Some(origin) = req.origin.filter(|o| *o != OriginType::AwsKms) {
        return Err(KmsError::UnsupportedOperation(format!(
            "Origin {origin} is not supported by this version of kms-core yet."
        )));
    }
    if req.multi_region == Some(true) {
        return Err(KmsError::UnsupportedOperation(
            "Multi-Region keys are not supported by kms-core.".into(),
        ));
    }
    let record = new_record(ctx, &req, |r| {
        r.key_spec = key_spec;
        r.key_usage = usage;
    })?;
    let material = if key_spec.slow_to_generate() {
        off_runtime(move || asymmetric::generate(key_spec, usage))
            .await?
            .map_err(material_error)?
    } else {
        new_material(key_spec, usage)?
    };
    let arn = record.arn.clone();
    let entry = ctx
        .store
        .create_key(record, &material)
        .map_err(|e| store_error(e, &arn))?;
    Ok(CreateKeyResponse {
        key_metadata: Some(key_metadata(&entry.record)),
    })
}

/// Fresh material for a key of `spec`/`usage` (synchronously).
pub fn new_material(key_spec: KeySpec, usage: KeyUsage) -> Result<Secret, KmsError> {
    if key_spec == KeySpec::SymmetricDefault {
        return Ok(crypto::new_key_material()?);
    }
    asymmetric::generate(key_spec, usage).map_err(material_error)
}

/// CreateKey with Origin EXTERNAL_KEY_STORE: the store must be connected,
/// the external key unused by another KMS key of the store, and the
/// proxy's GetKeyMetadata must show an enabled AES_256 key that encrypts
/// and decrypts.
async fn create_xks_key(
    ctx: &Ctx<'_>,
    req: CreateKeyRequest,
) -> Result<CreateKeyResponse, KmsError> {
    let key_spec = req
        .key_spec
        .map(KeySpec::as_str)
        .or(req
            .customer_master_key_spec
            .map(CustomerMasterKeySpec::as_str))
        .unwrap_or("SYMMETRIC_DEFAULT");
    if key_spec != "SYMMETRIC_DEFAULT" {
        return Err(KmsError::UnsupportedOperation(format!(
            "KeySpec {key_spec} is not supported for KMS keys in a custom key store."
        )));
    }
    let usage = req.key_usage.unwrap_or(KeyUsageType::EncryptDecrypt);
    if usage != KeyUsageType::EncryptDecrypt {
        return Err(KmsError::UnsupportedOperation(format!(
            "KeyUsage {usage} is not supported for KMS keys in a custom key store."
        )));
    }
    if req.multi_region == Some(true) {
        return Err(KmsError::UnsupportedOperation(
            "Multi-Region keys are not supported in a custom key store.".into(),
        ));
    }
    let store_id = req.custom_key_store_id.as_deref().ok_or_else(|| {
        KmsError::Validation(
            "CustomKeyStoreId is required when Origin is EXTERNAL_KEY_STORE.".into(),
        )
    })?;
    let xks_key_id = req.xks_key_id.as_deref().ok_or_else(|| {
        KmsError::Validation("XksKeyId is required when Origin is EXTERNAL_KEY_STORE.".into())
    })?;
    let store = ctx
        .store
        .custom_key_stores(ctx.account(), ctx.region())
        .into_iter()
        .find(|s| s.id == store_id)
        .ok_or_else(|| {
            KmsError::CustomKeyStoreNotFound(format!("Custom key store {store_id} does not exist."))
        })?;
    let client = match ctx.registry.conn(store_id) {
        Some(c) if c.state == ConnState::Connected => c.client.clone(),
        _ => None,
    }
    .ok_or_else(|| {
        ks(
            K::InvalidState,
            format!("Custom key store {store_id} is not connected."),
        )
    })?;
    let xid: ExternalKeyId = xks_key_id.parse().map_err(|_| {
        ks(
            K::XksKeyInvalidConfiguration,
            format!("XksKeyId {xks_key_id} is not a valid external key id."),
        )
    })?;
    let record = new_record(ctx, &req, |r| {
        r.origin = OriginType::ExternalKeyStore;
        r.custom_key_store_id = Some(store.id.clone());
        r.xks_key_id = Some(xks_key_id.to_owned());
    })?;
    let lock = ctx.registry.create_lock(store_id);
    let _guard = lock.lock().await;
    if super::custom_key_stores::keys_of_store(ctx, store_id)?
        .iter()
        .any(|r| r.xks_key_id.as_deref() == Some(xks_key_id))
    {
        return Err(ks(
            K::XksKeyAlreadyInUse,
            format!(
                "The external key {xks_key_id} is already associated with another KMS key in custom key store {store_id}."
            ),
        ));
    }
    let metadata = xks::request_metadata(
        &ctx.caller.principal_arn,
        &record.arn,
        Operation::CreateKey.name(),
        ctx.request_id,
    );
    let meta = client
        .get_key_metadata(&xid, &metadata)
        .await
        .map_err(|e| xks_errors::create_key_error(&e, xks_key_id))?;
    let encrypts = meta.key_usage.iter().any(|u| u == "ENCRYPT");
    let decrypts = meta.key_usage.iter().any(|u| u == "DECRYPT");
    if meta.key_spec != "AES_256" || !encrypts || !decrypts {
        return Err(ks(
            K::XksKeyInvalidConfiguration,
            format!(
                "The external key {xks_key_id} must be an AES_256 key that supports ENCRYPT and DECRYPT (it is {} with {:?}).",
                meta.key_spec, meta.key_usage
            ),
        ));
    }
    if meta.key_status != "ENABLED" {
        return Err(ks(
            K::XksKeyInvalidConfiguration,
            format!(
                "The external key {xks_key_id} is not enabled (key status {}).",
                meta.key_status
            ),
        ));
    }
    let material = crypto::new_key_material()?;
    let arn = record.arn.clone();
    let entry = ctx
        .store
        .create_key(record, &material)
        .map_err(|e| store_error(e, &arn))?;
    Ok(CreateKeyResponse {
        key_metadata: Some(key_metadata(&entry.record)),
    })
}

/// DescribeKey. An external key store key is `Unavailable` while its
/// store is not connected (unless it is pending deletion), as in AWS.
pub fn describe_key(
    ctx: &Ctx<'_>,
    _req: DescribeKeyRequest,
) -> Result<DescribeKeyResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    let mut meta = key_metadata(&entry.record);
    if xks::is_xks(&entry.record)
        && !xks::connected(ctx.registry, &entry.record)
        && matches!(meta.key_state, Some(KeyState::Enabled | KeyState::Disabled))
    {
        meta.key_state = Some(KeyState::Unavailable);
    }
    Ok(DescribeKeyResponse {
        key_metadata: Some(meta),
    })
}

pub fn list_keys(ctx: &Ctx<'_>, req: ListKeysRequest) -> Result<ListKeysResponse, KmsError> {
    let page = ctx
        .store
        .list_keys(
            ctx.account(),
            ctx.region(),
            limit(req.limit),
            req.marker.as_deref(),
        )
        .map_err(|e| store_error(e, ""))?;
    Ok(ListKeysResponse {
        keys: Some(
            page.items
                .iter()
                .map(|r| KeyListEntry {
                    key_id: Some(r.key_id.clone()),
                    key_arn: Some(r.arn.clone()),
                })
                .collect(),
        ),
        truncated: truncated(&page.next_marker),
        next_marker: page.next_marker,
    })
}

/// Changes the resolved key's record after checking its state for `op`.
pub fn modify(
    ctx: &Ctx<'_>,
    op: Operation,
    change: &mut dyn FnMut(&mut KeyRecord) -> Result<(), KmsError>,
) -> Result<std::sync::Arc<KeyEntry>, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    let arn = entry.record.arn.clone();
    ctx.store
        .modify_key(
            ctx.account(),
            ctx.region(),
            &entry.record.key_id,
            &mut |r| {
                r.check(op).map_err(|e| Box::new(e) as Refusal)?;
                change(r).map_err(|e| Box::new(e) as Refusal)
            },
        )
        .map_err(|e| store_error(e, &arn))
}

fn set_enabled(ctx: &Ctx<'_>, enable: bool) -> Result<(), KmsError> {
    let op = if enable {
        Operation::EnableKey
    } else {
        Operation::DisableKey
    };
    modify(ctx, op, &mut |r| {
        r.enabled = enable;
        r.key_state = if enable {
            KeyState::Enabled
        } else {
            KeyState::Disabled
        };
        Ok(())
    })?;
    Ok(())
}

pub fn enable_key(ctx: &Ctx<'_>, _req: EnableKeyRequest) -> Result<(), KmsError> {
    set_enabled(ctx, true)
}

pub fn disable_key(ctx: &Ctx<'_>, _req: DisableKeyRequest) -> Result<(), KmsError> {
    set_enabled(ctx, false)
}

pub fn update_key_description(
    ctx: &Ctx<'_>,
    req: UpdateKeyDescriptionRequest,
) -> Result<(), KmsError> {
    modify(ctx, Operation::UpdateKeyDescription, &mut |r| {
        r.description.clone_from(&req.description);
        Ok(())
    })?;
    Ok(())
}

pub fn schedule_key_deletion(
    ctx: &Ctx<'_>,
    req: ScheduleKeyDeletionRequest,
) -> Result<ScheduleKeyDeletionResponse, KmsError> {
    let days = req.pending_window_in_days.unwrap_or(30);
    if !(7..=30).contains(&days) {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30"
        )));
    }
    let when = now() + f64::from(days) * 86_400.0;
    let entry = modify(ctx, Operation::ScheduleKeyDeletion, &mut |r| {
        r.key_state = KeyState::PendingDeletion;
        r.enabled = false;
        r.deletion_date = Some(when);
        r.pending_deletion_window_days = u32::try_from(days).ok();
        Ok(())
    })?;
    Ok(ScheduleKeyDeletionResponse {
        key_id: Some(entry.record.arn.clone()),
        deletion_date: Some(when),
        key_state: Some(KeyState::PendingDeletion),
        pending_window_in_days: Some(days),
    })
}

pub fn cancel_key_deletion(
    ctx: &Ctx<'_>,
    _req: CancelKeyDeletionRequest,
) -> Result<CancelKeyDeletionResponse, KmsError> {
    let entry = modify(ctx, Operation::CancelKeyDeletion, &mut |r| {
        r.key_state = KeyState::Disabled;
        r.enabled = false;
        r.deletion_date = None;
        r.pending_deletion_window_days = None;
        Ok(())
    })?;
    Ok(CancelKeyDeletionResponse {
        key_id: Some(entry.record.arn.clone()),
    })
}

/// Deletes every key whose waiting period is over; returns how many.
/// Run periodically by the server.
pub fn sweep(store: &dyn Store, now: f64) -> usize {
    sweep_with(store, now, |_, _, _| {})
}

/// [`sweep`], telling `deleted(account, region, key_id)` of each deletion
/// (the audit log's service events).
pub fn sweep_with(
    store: &dyn Store,
    now: f64,
    mut on_deleted: impl FnMut(&str, &str, &str),
) -> usize {
    let mut deleted = 0;
    for (account, region, key_id) in store.due_for_deletion(now) {
        match store.delete_key(&account, &region, &key_id) {
            Ok(()) => {
                deleted += 1;
                on_deleted(&account, &region, &key_id);
                tracing::info!(event = "DeleteKey", %account, %region, %key_id, "key deleted at the end of its waiting period");
            }
            Err(e) => {
                tracing::warn!(%key_id, error = %e, "scheduled key deletion failed; will retry")
            }
        }
    }
    deleted
}

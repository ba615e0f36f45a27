//! Key material rotation: EnableKeyRotation, DisableKeyRotation,
//! GetKeyRotationStatus, RotateKeyOnDemand, ListKeyRotations, and the
//! background rotator ([`rotate_due`]) that performs automatic rotations
//! when due and completes on-demand rotations.
//!
//! Which keys may rotate follows AWS: symmetric encryption keys in AWS KMS
//! (automatic and on demand); not HMAC, asymmetric or custom key store
//! keys; imported material never automatically; AWS managed keys are
//! rotated by the service only. On-demand rotation takes two durable
//! steps as in AWS: the request records its start
//! (`OnDemandRotationStartDate`), then the rotation completes (at once; or
//! by the rotator after a restart); a second request meanwhile is
//! `ConflictException`. A disabled or pending-deletion key is not rotated;
//! once enabled again an overdue rotation happens at once.

use super::{limit, now, state_error, store_error, truncated, Ctx};
use crate::api::error::KmsError;
use crate::api::types::*;
use crate::context::KeyRole;
use crate::crypto;
use crate::keys::material::{
    MaterialInfo, Rotation, RotationKind, RotationRefusal, RotationSchedule,
    DEFAULT_ON_DEMAND_ROTATION_LIMIT, DEFAULT_ROTATION_PERIOD_DAYS, MAX_ROTATION_PERIOD_DAYS,
    MIN_ROTATION_PERIOD_DAYS,
};
use crate::keys::{KeyRecord, KeyState, Operation};
use crate::store::{paginate, KeyEntry, Refusal, Store, StoreError};
use std::sync::atomic::{AtomicU32, Ordering};

/// The lifetime limit of on-demand rotations per key (configurable).
static ON_DEMAND_LIMIT: AtomicU32 = AtomicU32::new(DEFAULT_ON_DEMAND_ROTATION_LIMIT);

/// Sets the lifetime limit of on-demand rotations per key (default 25).
pub fn set_on_demand_limit(n: u32) {
    ON_DEMAND_LIMIT.store(n, Ordering::Relaxed);
}

pub fn on_demand_limit() -> u32 {
    ON_DEMAND_LIMIT.load(Ordering::Relaxed)
}

/// May `r` rotate (automatically when `automatic`, else on demand)?
pub fn may_rotate(r: &KeyRecord, automatic: bool) -> Result<(), RotationRefusal> {
    if r.custom_key_store_id.is_some() || r.origin == OriginType::ExternalKeyStore {
        return Err(RotationRefusal::CustomKeyStore);
    }
    if r.key_spec != KeySpec::SymmetricDefault {
        return Err(RotationRefusal::NotSymmetric);
    }
    if r.key_manager == KeyManagerType::Aws {
        return Err(RotationRefusal::AwsManaged);
    }
    if automatic && r.origin == OriginType::External {
        return Err(RotationRefusal::ImportedAutomatic);
    }
    Ok(())
}

/// May an on-demand rotation start on `r` now?
pub fn may_start_on_demand(r: &KeyRecord, limit: u32) -> Result<(), RotationRefusal> {
    may_rotate(r, false)?;
    if r.on_demand_started.is_some() {
        return Err(RotationRefusal::InProgress);
    }
    if r.on_demand_rotations >= limit {
        return Err(RotationRefusal::OnDemandLimit(limit));
    }
    Ok(())
}

/// AWS's refusal for the key `r` (keys in external key stores get AWS's
/// origin message).
fn refused(e: RotationRefusal, r: &KeyRecord) -> KmsError {
    if e == RotationRefusal::CustomKeyStore {
        return crate::xks::keys::unsupported(r);
    }
    refusal(e, &r.arn)
}

fn refusal(e: RotationRefusal, arn: &str) -> KmsError {
    let m = e.message(arn);
    match e {
        RotationRefusal::OnDemandLimit(_) => KmsError::LimitExceeded(m),
        RotationRefusal::InProgress => KmsError::Conflict(m),
        _ => KmsError::UnsupportedOperation(m),
    }
}

/// The key-state rule of the rotation operations: a disabled key is
/// `DisabledException`, a key pending import or deletion
/// `KMSInvalidStateException`.
fn rotation_state(r: &KeyRecord, op: Operation) -> Result<(), KmsError> {
    match r.key_state {
        KeyState::Disabled => Err(KmsError::Disabled(format!("{} is disabled.", r.arn))),
        KeyState::PendingImport => Err(KmsError::InvalidState(format!(
            "{} is pending import.",
            r.arn
        ))),
        _ => r.check(op).map_err(|e| state_error(e, &r.arn)),
    }
}

/// Changes the resolved key's record under the writer lock, after the
/// rotation state rule and `allowed`.
fn change(
    ctx: &Ctx<'_>,
    op: Operation,
    f: &mut dyn FnMut(&mut KeyRecord) -> Result<(), KmsError>,
) -> Result<std::sync::Arc<crate::store::KeyEntry>, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    let arn = entry.record.arn.clone();
    ctx.store
        .modify_key(
            ctx.account(),
            ctx.region(),
            &entry.record.key_id,
            &mut |r| {
                rotation_state(r, op).map_err(|e| Box::new(e) as Refusal)?;
                f(r).map_err(|e| Box::new(e) as Refusal)
            },
        )
        .map_err(|e| store_error(e, &arn))
}

pub fn enable_key_rotation(ctx: &Ctx<'_>, req: EnableKeyRotationRequest) -> Result<(), KmsError> {
    let period = req
        .rotation_period_in_days
        .unwrap_or(DEFAULT_ROTATION_PERIOD_DAYS);
    if !(MIN_ROTATION_PERIOD_DAYS..=MAX_ROTATION_PERIOD_DAYS).contains(&period) {
        // The model's range is checked before; this guards direct callers.
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{period}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value between {MIN_ROTATION_PERIOD_DAYS} and {MAX_ROTATION_PERIOD_DAYS}"
        )));
    }
    let at = now();
    change(ctx, Operation::EnableKeyRotation, &mut |r| {
        may_rotate(r, true).map_err(|e| refused(e, r))?;
        // Enabling again with the same period keeps the schedule; a new
        // period starts counting now.
        if r.rotation.is_none_or(|s| s.period_days != period) {
            r.rotation = Some(RotationSchedule::starting(at, period));
        }
        Ok(())
    })?;
    Ok(())
}

pub fn disable_key_rotation(
    ctx: &Ctx<'_>,
    _req: DisableKeyRotationRequest,
) -> Result<(), KmsError> {
    change(ctx, Operation::DisableKeyRotation, &mut |r| {
        may_rotate(r, true).map_err(|e| refused(e, r))?;
        r.rotation = None;
        Ok(())
    })?;
    Ok(())
}

pub fn get_key_rotation_status(
    ctx: &Ctx<'_>,
    _req: GetKeyRotationStatusRequest,
) -> Result<GetKeyRotationStatusResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    let r = &entry.record;
    r.check(Operation::GetKeyRotationStatus)
        .map_err(|e| state_error(e, &r.arn))?;
    if matches!(r.key_spec, KeySpec::SymmetricDefault) && r.custom_key_store_id.is_some() {
        return Err(refused(RotationRefusal::CustomKeyStore, r));
    }
    if r.key_spec != KeySpec::SymmetricDefault {
        return Err(refusal(RotationRefusal::NotSymmetric, &r.arn));
    }
    // While pending deletion the status is false (it returns if the
    // deletion is cancelled).
    let schedule = r
        .rotation
        .filter(|_| r.key_state != KeyState::PendingDeletion);
    Ok(GetKeyRotationStatusResponse {
        key_id: Some(r.arn.clone()),
        key_rotation_enabled: Some(schedule.is_some()),
        rotation_period_in_days: schedule.map(|s| s.period_days),
        next_rotation_date: schedule.map(|s| s.next),
        on_demand_rotation_start_date: r.on_demand_started,
    })
}

/// RotateKeyOnDemand: records the start, then rotates.
pub fn rotate_key_on_demand(
    ctx: &Ctx<'_>,
    _req: RotateKeyOnDemandRequest,
) -> Result<RotateKeyOnDemandResponse, KmsError> {
    let at = now();
    let limit = on_demand_limit();
    let entry = change(ctx, Operation::RotateKeyOnDemand, &mut |r| {
        may_start_on_demand(r, limit).map_err(|e| refused(e, r))?;
        r.on_demand_started = Some(at);
        Ok(())
    })?;
    // The rotation completes right after its start is durable; if the
    // process stops in between, the rotator completes it after restart.
    let r = &entry.record;
    if let Err(e) = rotate_one(ctx.store, &r.account, &r.region, &r.key_id, now()) {
        tracing::warn!(key_id = %r.key_id, error = %e, "on-demand rotation failed; the rotator retries");
    }
    Ok(RotateKeyOnDemandResponse {
        key_id: Some(entry.record.arn.clone()),
    })
}

pub fn list_key_rotations(
    ctx: &Ctx<'_>,
    req: ListKeyRotationsRequest,
) -> Result<ListKeyRotationsResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    let r = &entry.record;
    r.check(Operation::ListKeyRotations)
        .map_err(|e| state_error(e, &r.arn))?;
    if r.custom_key_store_id.is_some() {
        return Err(refused(RotationRefusal::CustomKeyStore, r));
    }
    if !r.has_material_ids() {
        return Err(refusal(RotationRefusal::NotSymmetric, &r.arn));
    }
    let all = req.include_key_material == Some(IncludeKeyMaterial::AllKeyMaterial);
    let items = r
        .materials()
        .into_iter()
        .filter(|m| all || m.rotation.is_some())
        .map(|m| {
            let entry = RotationsListEntry {
                key_id: Some(r.key_id.clone()),
                key_material_id: Some(m.id.to_string()),
                key_material_state: Some(m.state(r.current_version)),
                rotation_date: m.rotation.map(|x| x.date),
                rotation_type: m.rotation.map(|x| x.kind.wire()),
                ..Default::default()
            };
            (format!("{:010}", m.version), entry)
        });
    let page = paginate(items, limit(req.limit), req.marker.as_deref())
        .map_err(|e| store_error(e, &r.arn))?;
    Ok(ListKeyRotationsResponse {
        rotations: Some(page.items),
        truncated: truncated(&page.next_marker),
        next_marker: page.next_marker,
    })
}

/// What the rotator did with one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotated {
    /// New material made current.
    Yes(RotationKind),
    /// Nothing due, or the key may not rotate now (disabled, pending
    /// deletion).
    No,
}

/// Rotates the key if an on-demand rotation is in progress or automatic
/// rotation is due at `at`; records the rotation and the next schedule in
/// the same write as the new material.
pub fn rotate_one(
    store: &dyn Store,
    account: &str,
    region: &str,
    key_id: &str,
    at: f64,
) -> Result<Rotated, StoreError> {
    let material = crypto::new_key_material()?;
    let mut kind = None;
    let result =
        store.rotate_key_material(account, region, key_id, &material, &mut |r, version| {
            let on_demand = r.on_demand_started.is_some();
            let automatic = r.rotation.is_some_and(|s| s.due(at));
            if r.key_state != KeyState::Enabled || !(on_demand || automatic) {
                return Err(Box::new(NothingToDo) as Refusal);
            }
            let k = if on_demand {
                RotationKind::OnDemand
            } else {
                RotationKind::Automatic
            };
            if on_demand {
                r.on_demand_started = None;
                r.on_demand_rotations = r.on_demand_rotations.saturating_add(1);
            } else if let Some(s) = r.rotation {
                r.rotation = Some(s.after_rotation(at));
            }
            let mut m = MaterialInfo::first(&r.key_id, version, at);
            m.rotation = Some(Rotation { date: at, kind: k });
            r.materials.push(m);
            kind = Some(k);
            Ok(())
        });
    match result {
        Ok(entry) => {
            let k = kind.unwrap_or(RotationKind::Automatic);
            // CloudTrail's RotateKey event, for the audit log.
            tracing::info!(
                event = "RotateKey",
                key_arn = %entry.record.arn,
                rotation_type = k.wire().as_str(),
                key_material_id = %entry.record.material_id(entry.record.current_version),
                "key material rotated"
            );
            Ok(Rotated::Yes(k))
        }
        Err(StoreError::Rejected(e)) if e.is::<NothingToDo>() => Ok(Rotated::No),
        Err(e) => Err(e),
    }
}

#[derive(Debug)]
struct NothingToDo;

impl std::fmt::Display for NothingToDo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no rotation due")
    }
}

impl std::error::Error for NothingToDo {}

/// The background rotator: every due automatic rotation and every
/// on-demand rotation in progress; returns how many keys were rotated.
pub fn rotate_due(store: &dyn Store, at: f64) -> usize {
    rotate_due_with(store, at, |_, _| {})
}

/// [`rotate_due`], telling `rotated(key, kind)` of each rotation (the
/// audit log's `RotateKey` service events).
pub fn rotate_due_with(
    store: &dyn Store,
    at: f64,
    mut rotated: impl FnMut(&KeyEntry, RotationKind),
) -> usize {
    let mut n = 0;
    for (account, region, key_id) in store.due_for_rotation(at) {
        match rotate_one(store, &account, &region, &key_id, at) {
            Ok(Rotated::Yes(kind)) => {
                n += 1;
                if let Some(entry) = store.key(&account, &region, &key_id) {
                    rotated(&entry, kind);
                }
            }
            Ok(Rotated::No) => {}
            Err(e) => tracing::warn!(%key_id, error = %e, "key rotation failed; will retry"),
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const K: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    fn key() -> KeyRecord {
        KeyRecord::new_symmetric(K, "111122223333", "us-east-1", "", 1000.0, None)
    }

    #[test]
    fn which_keys_may_rotate() {
        let r = key();
        assert_eq!(may_rotate(&r, true), Ok(()));
        let mut hmac = key();
        hmac.key_spec = KeySpec::Hmac256;
        assert_eq!(may_rotate(&hmac, false), Err(RotationRefusal::NotSymmetric));
        let mut rsa = key();
        rsa.key_spec = KeySpec::Rsa2048;
        assert_eq!(may_rotate(&rsa, true), Err(RotationRefusal::NotSymmetric));
        let mut xks = key();
        xks.origin = OriginType::ExternalKeyStore;
        xks.custom_key_store_id = Some("cks-1".into());
        assert_eq!(
            may_rotate(&xks, false),
            Err(RotationRefusal::CustomKeyStore)
        );
        let mut imported = key();
        imported.origin = OriginType::External;
        assert_eq!(
            may_rotate(&imported, true),
            Err(RotationRefusal::ImportedAutomatic)
        );
        assert_eq!(may_rotate(&imported, false), Ok(()));
        let mut managed = key();
        managed.key_manager = KeyManagerType::Aws;
        assert_eq!(
            may_rotate(&managed, false),
            Err(RotationRefusal::AwsManaged)
        );
    }

    #[test]
    fn on_demand_limit_and_conflict() {
        let mut r = key();
        r.on_demand_rotations = 24;
        assert_eq!(may_start_on_demand(&r, 25), Ok(()));
        r.on_demand_rotations = 25;
        assert_eq!(
            may_start_on_demand(&r, 25),
            Err(RotationRefusal::OnDemandLimit(25))
        );
        r.on_demand_rotations = 0;
        r.on_demand_started = Some(5.0);
        assert_eq!(
            may_start_on_demand(&r, 25),
            Err(RotationRefusal::InProgress)
        );
        let e = refusal(RotationRefusal::InProgress, "arn");
        assert_eq!(e.type_name(), "ConflictException");
        let e = refusal(RotationRefusal::OnDemandLimit(25), "arn");
        assert_eq!(e.type_name(), "LimitExceededException");
    }

    #[test]
    fn rotator_rotates_when_due_only_enabled_keys() {
        let s = MemoryStore::in_memory();
        let mut r = key();
        r.rotation = Some(RotationSchedule::starting(1000.0, 90));
        let due = 1000.0 + 90.0 * 86_400.0;
        s.create_key(r, &crypto::new_key_material().unwrap())
            .unwrap();
        assert_eq!(rotate_due(&s, due - 1.0), 0);
        // Disabled: not rotated, rotated as soon as enabled again.
        s.modify_key("111122223333", "us-east-1", K, &mut |r| {
            r.key_state = KeyState::Disabled;
            Ok(())
        })
        .unwrap();
        assert_eq!(rotate_due(&s, due), 0);
        s.modify_key("111122223333", "us-east-1", K, &mut |r| {
            r.key_state = KeyState::Enabled;
            Ok(())
        })
        .unwrap();
        assert_eq!(rotate_due(&s, due + 10.0), 1);
        let e = s.key("111122223333", "us-east-1", K).unwrap();
        assert_eq!(e.record.current_version, 2);
        assert_eq!(e.record.materials.len(), 2);
        assert_eq!(
            e.record.rotation.unwrap().next,
            due + 10.0 + 90.0 * 86_400.0
        );
        assert_eq!(
            e.record.materials[1].rotation.unwrap().kind,
            RotationKind::Automatic
        );
        assert!(e.current().is_some() && e.version(1).is_some());
        assert_eq!(rotate_due(&s, due + 20.0), 0);
    }
}

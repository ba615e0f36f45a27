//! Aliases, tags, key policies, descriptions, scheduled deletion and
//! rotation status.

use crate::api::error::KmsError;
use crate::ids::{AliasName, KeyRef};
use crate::keyops::{now, state_error, store_error, str_field, Ctx};
use crate::keys::{KeyRecord, KeyState, Operation, DEFAULT_POLICY_NAME};
use crate::store::{AliasRecord, Refusal, Store, StoreError};
use serde_json::{json, Value};

/// Most tags AWS allows on one key.
pub const MAX_TAGS: usize = 50;

fn limit(body: &Value) -> usize {
    body.get("Limit").and_then(Value::as_u64).unwrap_or(100) as usize
}

fn page_json(mut out: Value, next: Option<String>) -> Value {
    out["Truncated"] = json!(next.is_some());
    if let Some(m) = next {
        out["NextMarker"] = json!(m);
    }
    out
}

/// Changes a key's record after checking its state for `op`.
fn modify(
    ctx: &Ctx<'_>,
    reference: &str,
    op: Operation,
    change: &mut dyn FnMut(&mut KeyRecord) -> Result<(), KmsError>,
) -> Result<KeyRecord, KmsError> {
    let entry = ctx.resolve(reference)?;
    let arn = entry.record.arn.clone();
    let s = &ctx.caller.scope;
    let updated = ctx
        .store
        .modify_key(
            s.account.as_str(),
            &s.region,
            &entry.record.key_id,
            &mut |r| {
                r.check(op).map_err(|e| Box::new(e) as Refusal)?;
                change(r).map_err(|e| Box::new(e) as Refusal)
            },
        )
        .map_err(|e| store_error(e, &arn))?;
    Ok(updated.record.clone())
}

/// A key reference for alias targets: key id or key ARN, not an alias.
fn target_key(ctx: &Ctx<'_>, reference: &str) -> Result<KeyRecord, KmsError> {
    if matches!(
        KeyRef::parse(reference),
        Ok(KeyRef::Alias(_) | KeyRef::AliasArn { .. })
    ) {
        return Err(KmsError::Validation(format!(
            "Aliases must refer to keys. Not aliases: {reference}"
        )));
    }
    Ok(ctx.resolve(reference)?.record.clone())
}

pub fn create_alias(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let name = AliasName::parse_customer(str_field(body, "AliasName").unwrap_or_default())?;
    let key = target_key(ctx, str_field(body, "TargetKeyId").unwrap_or_default())?;
    key.check(Operation::CreateAlias)
        .map_err(|e| state_error(e, &key.arn))?;
    let t = now();
    let record = AliasRecord {
        account: key.account.clone(),
        region: key.region.clone(),
        name: name.as_str().to_owned(),
        target_key_id: key.key_id.clone(),
        creation_date: t,
        last_updated_date: t,
    };
    let arn = record.arn();
    ctx.store.create_alias(record).map_err(|e| match e {
        StoreError::AlreadyExists => {
            KmsError::AlreadyExists(format!("An alias with the name {arn} already exists"))
        }
        other => store_error(other, &key.arn),
    })?;
    Ok(json!({}))
}

pub fn update_alias(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let name = AliasName::parse_customer(str_field(body, "AliasName").unwrap_or_default())?;
    let key = target_key(ctx, str_field(body, "TargetKeyId").unwrap_or_default())?;
    key.check(Operation::UpdateAlias)
        .map_err(|e| state_error(e, &key.arn))?;
    let s = &ctx.caller.scope;
    if let Some(current) = ctx
        .store
        .alias(s.account.as_str(), &s.region, name.as_str())
        .and_then(|a| {
            ctx.store
                .key(s.account.as_str(), &s.region, &a.target_key_id)
        })
    {
        crate::keyspec::alias_compatible(&current.record, &key)?;
    }
    ctx.store
        .update_alias(
            s.account.as_str(),
            &s.region,
            name.as_str(),
            &key.key_id,
            now(),
        )
        .map_err(|e| match e {
            StoreError::NotFound => {
                KmsError::NotFound(format!("Alias {} is not found.", s.alias_arn(&name)))
            }
            other => store_error(other, &key.arn),
        })?;
    Ok(json!({}))
}

pub fn delete_alias(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let name = AliasName::parse(str_field(body, "AliasName").unwrap_or_default())?;
    let s = &ctx.caller.scope;
    if name.is_aws_managed() {
        return Err(KmsError::InvalidAliasName(format!(
            "{name} is an AWS managed alias and cannot be deleted"
        )));
    }
    ctx.store
        .delete_alias(s.account.as_str(), &s.region, name.as_str())
        .map_err(|e| match e {
            StoreError::NotFound => {
                KmsError::NotFound(format!("Alias {} is not found.", s.alias_arn(&name)))
            }
            other => KmsError::Internal(format!("The key store failed: {other}")),
        })?;
    Ok(json!({}))
}

pub fn list_aliases(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let key_id = match str_field(body, "KeyId") {
        Some(r) => Some(target_key(ctx, r)?.key_id),
        None => None,
    };
    let s = &ctx.caller.scope;
    let page = ctx
        .store
        .list_aliases(
            s.account.as_str(),
            &s.region,
            key_id.as_deref(),
            limit(body),
            str_field(body, "Marker"),
        )
        .map_err(|e| store_error(e, "alias"))?;
    let aliases: Vec<Value> = page
        .items
        .iter()
        .map(|a| {
            json!({
                "AliasName": a.name,
                "AliasArn": a.arn(),
                "TargetKeyId": a.target_key_id,
                "CreationDate": a.creation_date,
                "LastUpdatedDate": a.last_updated_date,
            })
        })
        .collect();
    Ok(page_json(json!({ "Aliases": aliases }), page.next_marker))
}

fn tags_of(body: &Value) -> Result<Vec<(String, String)>, KmsError> {
    let mut out = Vec::new();
    for t in body
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(k), Some(v)) = (str_field(t, "TagKey"), str_field(t, "TagValue")) else {
            continue;
        };
        if k.starts_with("aws:") {
            return Err(KmsError::Tag(format!(
                "Tags beginning with aws: are reserved and cannot be created or changed: {k}"
            )));
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

pub fn tag_resource(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let tags = tags_of(body)?;
    modify(
        ctx,
        str_field(body, "KeyId").unwrap_or_default(),
        Operation::TagResource,
        &mut |r| {
            for (k, v) in &tags {
                r.tags.insert(k.clone(), v.clone());
            }
            if r.tags.len() > MAX_TAGS {
                return Err(KmsError::LimitExceeded(format!(
                    "A KMS key can have at most {MAX_TAGS} tags"
                )));
            }
            Ok(())
        },
    )?;
    Ok(json!({}))
}

pub fn untag_resource(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let keys: Vec<String> = body
        .get("TagKeys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    if let Some(k) = keys.iter().find(|k| k.starts_with("aws:")) {
        return Err(KmsError::Tag(format!(
            "Tags beginning with aws: are reserved and cannot be removed: {k}"
        )));
    }
    modify(
        ctx,
        str_field(body, "KeyId").unwrap_or_default(),
        Operation::UntagResource,
        &mut |r| {
            for k in &keys {
                r.tags.remove(k);
            }
            Ok(())
        },
    )?;
    Ok(json!({}))
}

pub fn list_resource_tags(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let entry = ctx.resolve(str_field(body, "KeyId").unwrap_or_default())?;
    let s = &ctx.caller.scope;
    let page = ctx
        .store
        .list_tags(
            s.account.as_str(),
            &s.region,
            &entry.record.key_id,
            limit(body),
            str_field(body, "Marker"),
        )
        .map_err(|e| store_error(e, &entry.record.arn))?;
    let tags: Vec<Value> = page
        .items
        .iter()
        .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
        .collect();
    Ok(page_json(json!({ "Tags": tags }), page.next_marker))
}

fn policy_name(body: &Value) -> Result<&str, KmsError> {
    let name = str_field(body, "PolicyName").unwrap_or(DEFAULT_POLICY_NAME);
    if name != DEFAULT_POLICY_NAME {
        return Err(KmsError::NotFound(format!(
            "Policy {name} does not exist; the only key policy name is \"default\""
        )));
    }
    Ok(name)
}

pub fn get_key_policy(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let name = policy_name(body)?;
    let entry = ctx.resolve(str_field(body, "KeyId").unwrap_or_default())?;
    entry
        .record
        .check(Operation::GetKeyPolicy)
        .map_err(|e| state_error(e, &entry.record.arn))?;
    Ok(json!({ "Policy": entry.record.policy, "PolicyName": name }))
}

/// A key policy must be a JSON object with a non-empty `Statement`.
fn check_policy(policy: &str) -> Result<(), KmsError> {
    let v: Value = serde_json::from_str(policy).map_err(|e| {
        KmsError::MalformedPolicyDocument(format!("The key policy is not valid JSON: {e}"))
    })?;
    let statements_ok = match v.get("Statement") {
        Some(Value::Array(a)) => !a.is_empty() && a.iter().all(Value::is_object),
        Some(Value::Object(_)) => true,
        _ => false,
    };
    if !v.is_object() || !statements_ok {
        return Err(KmsError::MalformedPolicyDocument(
            "The key policy must be a JSON object with at least one Statement".into(),
        ));
    }
    Ok(())
}

pub fn put_key_policy(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    policy_name(body)?;
    let policy = str_field(body, "Policy").unwrap_or_default().to_owned();
    check_policy(&policy)?;
    modify(
        ctx,
        str_field(body, "KeyId").unwrap_or_default(),
        Operation::PutKeyPolicy,
        &mut |r| {
            r.policy.clone_from(&policy);
            Ok(())
        },
    )?;
    Ok(json!({}))
}

pub fn list_key_policies(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let entry = ctx.resolve(str_field(body, "KeyId").unwrap_or_default())?;
    entry
        .record
        .check(Operation::ListKeyPolicies)
        .map_err(|e| state_error(e, &entry.record.arn))?;
    Ok(json!({ "PolicyNames": [DEFAULT_POLICY_NAME], "Truncated": false }))
}

pub fn update_key_description(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let description = str_field(body, "Description")
        .unwrap_or_default()
        .to_owned();
    modify(
        ctx,
        str_field(body, "KeyId").unwrap_or_default(),
        Operation::UpdateKeyDescription,
        &mut |r| {
            r.description.clone_from(&description);
            Ok(())
        },
    )?;
    Ok(json!({}))
}

pub fn schedule_key_deletion(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let days = body
        .get("PendingWindowInDays")
        .and_then(Value::as_u64)
        .unwrap_or(30);
    if !(7..=30).contains(&days) {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30"
        )));
    }
    let when = now() + days as f64 * 86_400.0;
    let r = modify(
        ctx,
        str_field(body, "KeyId").unwrap_or_default(),
        Operation::ScheduleKeyDeletion,
        &mut |r| {
            r.key_state = KeyState::PendingDeletion;
            r.enabled = false;
            r.deletion_date = Some(when);
            r.pending_deletion_window_days = Some(days as u32);
            Ok(())
        },
    )?;
    Ok(json!({
        "KeyId": r.arn,
        "DeletionDate": when,
        "KeyState": KeyState::PendingDeletion.as_str(),
        "PendingWindowInDays": days,
    }))
}

pub fn cancel_key_deletion(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let r = modify(
        ctx,
        str_field(body, "KeyId").unwrap_or_default(),
        Operation::CancelKeyDeletion,
        &mut |r| {
            r.key_state = KeyState::Disabled;
            r.enabled = false;
            r.deletion_date = None;
            r.pending_deletion_window_days = None;
            Ok(())
        },
    )?;
    Ok(json!({ "KeyId": r.arn }))
}

pub fn get_key_rotation_status(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KmsError> {
    let entry = ctx.resolve(str_field(body, "KeyId").unwrap_or_default())?;
    entry
        .record
        .check(Operation::GetKeyRotationStatus)
        .map_err(|e| state_error(e, &entry.record.arn))?;
    // Automatic rotation is not offered yet (EnableKeyRotation comes later).
    Ok(json!({ "KeyRotationEnabled": false, "KeyId": entry.record.arn }))
}

/// Deletes every key whose waiting period is over; returns how many.
/// Run periodically by the server.
pub fn sweep(store: &dyn Store, now: f64) -> usize {
    let mut deleted = 0;
    for (account, region, key_id) in store.due_for_deletion(now) {
        match store.delete_key(&account, &region, &key_id) {
            Ok(()) => {
                deleted += 1;
                tracing::info!(%account, %region, %key_id, "key deleted at the end of its waiting period");
            }
            Err(e) => {
                tracing::warn!(%key_id, error = %e, "scheduled key deletion failed; will retry")
            }
        }
    }
    deleted
}

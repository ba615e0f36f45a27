//! Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant,
//! RevokeGrant. The grant model and its checks are [`crate::authz::grants`];
//! grants are durable in the store ([`crate::store::grants`]) and used by
//! the pipeline's authorize step (also through grant tokens, at once).
//! Who may call these operations is decided by the authorize step (for
//! RetireGrant: the retiring principal, the grantee with RetireGrant, or
//! `kms:RetireGrant` by policy), never here.

use super::{dry_run, limit, now, state_error, truncated, Ctx};
use crate::api::error::KmsError;
use crate::api::types::{self as api, *};
use crate::authz::grants::{self as model, Grant, GrantError};
use crate::context::KeyRole;
use crate::keys::Operation;
use crate::keyspec;
use crate::store::{KeyEntry, StoreError};
use std::sync::Arc;

/// Store failures of grant operations as AWS errors.
fn grant_store_error(e: StoreError, key_arn: &str) -> KmsError {
    match e {
        StoreError::NotFound => KmsError::NotFound(format!("Key '{key_arn}' does not exist")),
        StoreError::InvalidMarker => KmsError::InvalidMarker("Invalid marker".into()),
        StoreError::Rejected(r) => match r.downcast::<GrantError>() {
            Ok(g) => KmsError::from(*g),
            Err(other) => KmsError::Internal(other.to_string()),
        },
        other => KmsError::Internal(format!("The key store failed: {other}")),
    }
}

fn grant_not_found(grant_id: &str) -> KmsError {
    KmsError::NotFound(format!("Grant ID {grant_id} not found"))
}

/// A grant as ListGrants and ListRetirableGrants show it.
fn entry_of(g: &Grant) -> GrantListEntry {
    GrantListEntry {
        constraints: g.constraints.as_ref().map(|c| api::GrantConstraints {
            encryption_context_equals: c.encryption_context_equals.clone(),
            encryption_context_subset: c.encryption_context_subset.clone(),
            source_arn: None,
        }),
        creation_date: Some(g.creation_date),
        grant_id: Some(g.grant_id.clone()),
        grantee_principal: Some(g.grantee_principal.clone()),
        grantee_service_principal: None,
        issuing_account: Some(g.issuing_account.clone()),
        key_id: Some(g.key_arn.clone()),
        name: g.name.clone(),
        operations: Some(
            g.operations
                .iter()
                .filter_map(|o| api::GrantOperation::parse(o.as_str()))
                .collect(),
        ),
        retiring_principal: g.retiring_principal.clone(),
        retiring_service_principal: None,
    }
}

pub fn create_grant(
    ctx: &Ctx<'_>,
    req: CreateGrantRequest,
) -> Result<CreateGrantResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    let record = &entry.record;
    record
        .check(Operation::CreateGrant)
        .map_err(|e| state_error(e, &record.arn))?;
    if req.grantee_service_principal.is_some() || req.retiring_service_principal.is_some() {
        return Err(KmsError::UnsupportedOperation(
            "Service principals are not supported by kms-core (no AWS service calls it).".into(),
        ));
    }
    let grantee = req
        .grantee_principal
        .as_deref()
        .ok_or_else(|| KmsError::Validation("GranteePrincipal is required.".into()))?;
    let constraints = match &req.constraints {
        Some(c) if c.source_arn.is_some() => {
            return Err(KmsError::UnsupportedOperation(
                "The SourceArn grant constraint is not supported by kms-core.".into(),
            ))
        }
        Some(c) => Some(model::GrantConstraints {
            encryption_context_subset: c.encryption_context_subset.clone(),
            encryption_context_equals: c.encryption_context_equals.clone(),
        }),
        None => None,
    };
    let operations: Vec<String> = req
        .operations
        .iter()
        .map(|o| o.as_str().to_owned())
        .collect();
    let input = model::check_create_grant(
        keyspec::class(record.key_spec, record.key_usage),
        grantee,
        req.retiring_principal.as_deref(),
        &operations,
        constraints,
        req.name.as_deref(),
    )?;
    dry_run(req.dry_run)?;
    let grant = Grant {
        key_id: record.key_id.clone(),
        key_arn: record.arn.clone(),
        account: record.account.clone(),
        region: record.region.clone(),
        grant_id: model::new_grant_id()?,
        name: input.name,
        grantee_principal: input.grantee_principal,
        retiring_principal: input.retiring_principal,
        issuing_account: format!("arn:aws:iam::{}:root", ctx.account()),
        operations: input.operations,
        constraints: input.constraints,
        creation_date: now(),
    };
    let token = model::new_grant_token()?;
    let created = ctx
        .store
        .create_grant(grant, &model::token_digest(&token))
        .map_err(|e| grant_store_error(e, &record.arn))?;
    Ok(CreateGrantResponse {
        grant_id: Some(created.grant.grant_id.clone()),
        grant_token: Some(token),
    })
}

pub fn list_grants(ctx: &Ctx<'_>, req: ListGrantsRequest) -> Result<ListGrantsResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    let r = &entry.record;
    r.check(Operation::ListGrants)
        .map_err(|e| state_error(e, &r.arn))?;
    if let Some(id) = &req.grant_id {
        model::check_grant_id(id)?;
    }
    let page = ctx
        .store
        .list_grants(
            &r.account,
            &r.region,
            &r.key_id,
            req.grant_id.as_deref(),
            req.grantee_principal.as_deref(),
            limit(req.limit),
            req.marker.as_deref(),
        )
        .map_err(|e| grant_store_error(e, &r.arn))?;
    Ok(ListGrantsResponse {
        grants: Some(page.items.iter().map(|g| entry_of(g)).collect()),
        truncated: truncated(&page.next_marker),
        next_marker: page.next_marker,
    })
}

pub fn list_retirable_grants(
    ctx: &Ctx<'_>,
    req: ListRetirableGrantsRequest,
) -> Result<ListGrantsResponse, KmsError> {
    if req.retiring_service_principal.is_some() {
        return Err(KmsError::UnsupportedOperation(
            "Service principals are not supported by kms-core.".into(),
        ));
    }
    let principal = req
        .retiring_principal
        .as_deref()
        .ok_or_else(|| KmsError::Validation("RetiringPrincipal is required.".into()))?;
    if !model::valid_grant_principal(principal) {
        return Err(KmsError::InvalidArn(format!(
            "{principal} is not a valid principal ARN."
        )));
    }
    // AWS: the retiring principal must be of the caller's account (its
    // grants may be on other accounts' keys); grants are regional.
    if principal_account(principal) != ctx.account() {
        return Err(KmsError::AccessDenied(format!(
            "User: {} is not authorized to perform: kms:ListRetirableGrants for the retiring principal {principal}, which is not in account {}",
            ctx.caller.principal_arn,
            ctx.account()
        )));
    }
    let page = ctx
        .store
        .list_retirable_grants(
            principal,
            ctx.region(),
            limit(req.limit),
            req.marker.as_deref(),
        )
        .map_err(|e| grant_store_error(e, ""))?;
    Ok(ListGrantsResponse {
        grants: Some(page.items.iter().map(|g| entry_of(g)).collect()),
        truncated: truncated(&page.next_marker),
        next_marker: page.next_marker,
    })
}

/// The account of a grant principal: an account id, or the account field
/// of an IAM ARN (`arn:aws:iam::<account>:...`).
fn principal_account(principal: &str) -> &str {
    match principal.split(':').nth(4) {
        Some(account) if principal.starts_with("arn:") => account,
        _ => principal,
    }
}

/// The grant RetireGrant names: by token, or by key and grant id.
/// (Also used by the authorize step to decide who may retire it.)
pub fn grant_to_retire(
    store: &dyn crate::store::Store,
    key: Option<&Arc<KeyEntry>>,
    req: &RetireGrantRequest,
) -> Result<Arc<Grant>, KmsError> {
    if let Some(token) = &req.grant_token {
        model::check_token_form(token)?;
        let g = store
            .grant_by_token(&model::token_digest(token))
            .ok_or_else(|| KmsError::InvalidGrantToken("The grant token is not valid.".into()))?;
        if let Some(id) = &req.grant_id {
            if *id != g.grant_id {
                return Err(KmsError::InvalidGrantId(
                    "The grant ID does not match the grant token.".into(),
                ));
            }
        }
        if let Some(k) = key {
            if k.record.key_id != g.key_id {
                return Err(KmsError::InvalidGrantToken(
                    "The grant token does not belong to the specified key.".into(),
                ));
            }
        }
        return Ok(g);
    }
    let (Some(key), Some(id)) = (key, &req.grant_id) else {
        return Err(KmsError::Validation(
            "Specify either GrantToken, or both KeyId and GrantId.".into(),
        ));
    };
    model::check_grant_id(id)?;
    store
        .grants_of_key(&key.record.key_id)
        .iter()
        .find(|g| g.grant_id == *id)
        .cloned()
        .ok_or_else(|| grant_not_found(id))
}

pub fn retire_grant(ctx: &Ctx<'_>, req: RetireGrantRequest) -> Result<(), KmsError> {
    let g = grant_to_retire(ctx.store, ctx.resolved.get(KeyRole::Key), &req)?;
    dry_run(req.dry_run)?;
    ctx.store
        .delete_grant(&g.account, &g.region, &g.key_id, &g.grant_id)
        .map_err(|e| match e {
            StoreError::NotFound => grant_not_found(&g.grant_id),
            e => grant_store_error(e, &g.key_arn),
        })?;
    Ok(())
}

pub fn revoke_grant(ctx: &Ctx<'_>, req: RevokeGrantRequest) -> Result<(), KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    let r = &entry.record;
    model::check_grant_id(&req.grant_id)?;
    dry_run(req.dry_run)?;
    ctx.store
        .delete_grant(&r.account, &r.region, &r.key_id, &req.grant_id)
        .map_err(|e| match e {
            StoreError::NotFound => grant_not_found(&req.grant_id),
            e => grant_store_error(e, &r.arn),
        })?;
    Ok(())
}

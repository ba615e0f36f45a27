//! CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

use super::{limit, now, state_error, store_error, truncated, Ctx};
use crate::api::error::KmsError;
use crate::api::types::*;
use crate::context::KeyRole;
use crate::keys::ids::AliasName;
use crate::keys::Operation;
use crate::store::{AliasRecord, StoreError};

pub fn create_alias(ctx: &Ctx<'_>, req: CreateAliasRequest) -> Result<(), KmsError> {
    let name = AliasName::parse_customer(&req.alias_name)?;
    let key = &ctx.key(KeyRole::Key)?.record;
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
    })
}

pub fn update_alias(ctx: &Ctx<'_>, req: UpdateAliasRequest) -> Result<(), KmsError> {
    let name = AliasName::parse_customer(&req.alias_name)?;
    let key = &ctx.key(KeyRole::Key)?.record;
    key.check(Operation::UpdateAlias)
        .map_err(|e| state_error(e, &key.arn))?;
    let s = &ctx.caller.scope;
    if let Some(current) = ctx
        .store
        .alias(ctx.account(), ctx.region(), name.as_str())
        .and_then(|a| ctx.store.key(ctx.account(), ctx.region(), &a.target_key_id))
    {
        crate::keys::spec::alias_compatible(&current.record, key)?;
    }
    ctx.store
        .update_alias(
            ctx.account(),
            ctx.region(),
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
    Ok(())
}

pub fn delete_alias(ctx: &Ctx<'_>, req: DeleteAliasRequest) -> Result<(), KmsError> {
    let name = AliasName::parse(&req.alias_name)?;
    if name.is_aws_managed() {
        return Err(KmsError::InvalidAliasName(format!(
            "{name} is an AWS managed alias and cannot be deleted"
        )));
    }
    let s = &ctx.caller.scope;
    ctx.store
        .delete_alias(ctx.account(), ctx.region(), name.as_str())
        .map_err(|e| match e {
            StoreError::NotFound => {
                KmsError::NotFound(format!("Alias {} is not found.", s.alias_arn(&name)))
            }
            other => KmsError::Internal(format!("The key store failed: {other}")),
        })
}

pub fn list_aliases(
    ctx: &Ctx<'_>,
    req: ListAliasesRequest,
) -> Result<ListAliasesResponse, KmsError> {
    let key_id = match &req.key_id {
        Some(_) => Some(ctx.key(KeyRole::Key)?.record.key_id.as_str()),
        None => None,
    };
    let page = ctx
        .store
        .list_aliases(
            ctx.account(),
            ctx.region(),
            key_id,
            limit(req.limit),
            req.marker.as_deref(),
        )
        .map_err(|e| store_error(e, "alias"))?;
    Ok(ListAliasesResponse {
        aliases: Some(
            page.items
                .iter()
                .map(|a| AliasListEntry {
                    alias_name: Some(a.name.clone()),
                    alias_arn: Some(a.arn()),
                    target_key_id: Some(a.target_key_id.clone()),
                    creation_date: Some(a.creation_date),
                    last_updated_date: Some(a.last_updated_date),
                })
                .collect(),
        ),
        truncated: truncated(&page.next_marker),
        next_marker: page.next_marker,
    })
}

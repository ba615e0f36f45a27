//! TagResource, UntagResource, ListResourceTags.

use super::keys::modify;
use super::{checked_tags, limit, store_error, truncated, Ctx, MAX_TAGS};
use crate::api::error::KmsError;
use crate::api::types::*;
use crate::context::KeyRole;
use crate::keys::Operation;

pub fn tag_resource(ctx: &Ctx<'_>, req: TagResourceRequest) -> Result<(), KmsError> {
    let tags = checked_tags(&req.tags)?;
    modify(ctx, Operation::TagResource, &mut |r| {
        for (k, v) in &tags {
            r.tags.insert(k.clone(), v.clone());
        }
        if r.tags.len() > MAX_TAGS {
            return Err(KmsError::LimitExceeded(format!(
                "A KMS key can have at most {MAX_TAGS} tags"
            )));
        }
        Ok(())
    })?;
    Ok(())
}

pub fn untag_resource(ctx: &Ctx<'_>, req: UntagResourceRequest) -> Result<(), KmsError> {
    if let Some(k) = req
        .tag_keys
        .iter()
        .find(|k| k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")))
    {
        return Err(KmsError::Tag(format!(
            "Tags beginning with aws: are reserved and cannot be removed: {k}"
        )));
    }
    modify(ctx, Operation::UntagResource, &mut |r| {
        for k in &req.tag_keys {
            r.tags.remove(k);
        }
        Ok(())
    })?;
    Ok(())
}

pub fn list_resource_tags(
    ctx: &Ctx<'_>,
    req: ListResourceTagsRequest,
) -> Result<ListResourceTagsResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    let page = ctx
        .store
        .list_tags(
            ctx.account(),
            ctx.region(),
            &entry.record.key_id,
            limit(req.limit),
            req.marker.as_deref(),
        )
        .map_err(|e| store_error(e, &entry.record.arn))?;
    Ok(ListResourceTagsResponse {
        tags: Some(
            page.items
                .into_iter()
                .map(|(tag_key, tag_value)| Tag { tag_key, tag_value })
                .collect(),
        ),
        truncated: truncated(&page.next_marker),
        next_marker: page.next_marker,
    })
}

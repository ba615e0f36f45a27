//! Key policies: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies. Stored, not
//! evaluated yet (authorization plugs into the pipeline's authorize step).

use super::keys::{check_policy, modify};
use super::{state_error, Ctx};
use crate::api::error::KmsError;
use crate::api::types::*;
use crate::context::KeyRole;
use crate::keys::{Operation, DEFAULT_POLICY_NAME};

fn policy_name(name: Option<&str>) -> Result<&str, KmsError> {
    let name = name.unwrap_or(DEFAULT_POLICY_NAME);
    if name != DEFAULT_POLICY_NAME {
        return Err(KmsError::NotFound(format!(
            "Policy {name} does not exist; the only key policy name is \"default\""
        )));
    }
    Ok(name)
}

pub fn get_key_policy(
    ctx: &Ctx<'_>,
    req: GetKeyPolicyRequest,
) -> Result<GetKeyPolicyResponse, KmsError> {
    let name = policy_name(req.policy_name.as_deref())?;
    let entry = ctx.key(KeyRole::Key)?;
    entry
        .record
        .check(Operation::GetKeyPolicy)
        .map_err(|e| state_error(e, &entry.record.arn))?;
    Ok(GetKeyPolicyResponse {
        policy: Some(entry.record.policy.clone()),
        policy_name: Some(name.to_owned()),
    })
}

pub fn put_key_policy(ctx: &Ctx<'_>, req: PutKeyPolicyRequest) -> Result<(), KmsError> {
    policy_name(req.policy_name.as_deref())?;
    check_policy(&req.policy)?;
    modify(ctx, Operation::PutKeyPolicy, &mut |r| {
        r.policy.clone_from(&req.policy);
        Ok(())
    })?;
    Ok(())
}

pub fn list_key_policies(
    ctx: &Ctx<'_>,
    _req: ListKeyPoliciesRequest,
) -> Result<ListKeyPoliciesResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    entry
        .record
        .check(Operation::ListKeyPolicies)
        .map_err(|e| state_error(e, &entry.record.arn))?;
    Ok(ListKeyPoliciesResponse {
        policy_names: Some(vec![DEFAULT_POLICY_NAME.to_owned()]),
        truncated: Some(false),
        next_marker: None,
    })
}

//! Key policies: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies. Policies are
//! checked here when written and evaluated by the pipeline's authorize
//! step ([`crate::pipeline::authorize::PolicyAuthorizer`]).

use super::keys::modify;
use super::{state_error, Ctx};
use crate::api::error::KmsError;
use crate::api::types::*;
use crate::authz::{self, AuthzInput, KeyFacts, PolicyDocument, PolicyKind, RequestFacts};
use crate::context::KeyRole;
use crate::keys::KeyRecord;
use crate::keys::{Operation, DEFAULT_POLICY_NAME};

/// A new key policy (CreateKey's Policy, PutKeyPolicy): parsed by
/// [`crate::authz::policy`] (MalformedPolicyDocumentException with the
/// precise grammar error, the 32 KB limit), then the policy lockout safety
/// check for the caller unless `bypass`. Nothing malformed is stored.
pub fn check_new_policy(
    ctx: &Ctx<'_>,
    text: &str,
    record: &KeyRecord,
    bypass: bool,
) -> Result<(), KmsError> {
    let doc = PolicyDocument::parse(text, PolicyKind::Key)
        .map_err(|e| KmsError::MalformedPolicyDocument(e.0))?;
    let grants = ctx.store.grants_of_key(&record.key_id);
    // The caller's later PutKeyPolicy as it would come: from here, now.
    let (current_time, epoch_time) = authz::context::clock_values(crate::clock::now());
    let source_ip = ctx.source.map(|a| a.ip().to_string());
    let input = AuthzInput {
        caller: &ctx.caller.principal,
        action: "kms:PutKeyPolicy",
        key: KeyFacts::of_record(record),
        key_policy: &doc,
        request: RequestFacts {
            bypass_policy_lockout_safety_check: Some(bypass),
            source_ip: source_ip.as_deref(),
            secure_transport: ctx.tls,
            current_time: &current_time,
            epoch_time: &epoch_time,
            ..RequestFacts::default()
        },
        grants: &grants,
        token_grants: &[],
        strict: false,
    };
    authz::lockout_check(&doc, &input, bypass).map_err(|e| KmsError::MalformedPolicyDocument(e.0))
}

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
    let entry = ctx.key(KeyRole::Key)?;
    check_new_policy(
        ctx,
        &req.policy,
        &entry.record,
        req.bypass_policy_lockout_safety_check == Some(true),
    )?;
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
